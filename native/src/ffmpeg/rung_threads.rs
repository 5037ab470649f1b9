//! One thread per rung for a chunk encode. The decoding thread hands every frame (a new
//! reference to the same buffers, no pixel copy) to each rung's thread, which scales, encodes
//! and muxes it. libx264 then runs single-threaded per rung, its cheapest mode (frame threads
//! cost ~12% more CPU for the same output), while one chunk still spreads over several cores:
//! a video's last chunk, running alone, keeps a 2-core host busy instead of leaving a core idle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use super::ff::{ffi, frame, Packet};
use super::hls::{drain_video_encoder, feed_rungs, Rung};
use super::map_err;
use crate::error::{ErrorCode, MediaError, MediaResult};

/// Frames queued per rung. The slowest rung (the largest) sets the pace; a short queue keeps the
/// decoder just ahead of it, and bounds memory: each queued frame pins one decoded picture.
const QUEUE: usize = 16;

pub(super) struct RungThreads<'scope> {
    senders: Vec<SyncSender<frame::Video>>,
    handles: Vec<ScopedJoinHandle<'scope, MediaResult<Rung>>>,
    stop: &'scope AtomicBool,
    /// A rung thread hung up (it failed): its own error is the one to report.
    gone: bool,
}

impl<'scope> RungThreads<'scope> {
    pub(super) fn spawn<'env>(
        s: &'scope Scope<'scope, 'env>,
        rungs: Vec<Rung>,
        cancel: &'scope AtomicBool,
        stop: &'scope AtomicBool,
    ) -> MediaResult<Self> {
        let span = tracing::Span::current();
        let mut senders = Vec::with_capacity(rungs.len());
        let mut handles = Vec::with_capacity(rungs.len());
        for rung in rungs {
            let (tx, rx) = sync_channel(QUEUE);
            let span = span.clone();
            let handle = std::thread::Builder::new()
                .name(format!("vora-{}", rung.name))
                .spawn_scoped(s, move || span.in_scope(|| encode_rung(rung, &rx, cancel, stop)))
                .map_err(|e| MediaError::new(ErrorCode::Internal, format!("spawn rung thread: {e}")))?;
            senders.push(tx);
            handles.push(handle);
        }
        Ok(Self { senders, handles, stop, gone: false })
    }

    /// Queues `frame` for every rung, blocking while the slowest rung's queue is full.
    pub(super) fn send(&mut self, frame: &frame::Video) -> MediaResult<()> {
        for tx in &self.senders {
            if tx.send(share(frame)?).is_err() {
                self.gone = true;
                return Err(MediaError::new(ErrorCode::Internal, "a rung encoder stopped"));
            }
        }
        Ok(())
    }

    /// Ends the input (`fed` says whether decoding went to the end) and waits for every rung.
    /// On success each rung's file is complete (trailer written). On failure the first real cause
    /// is returned: a rung's own error when a rung hung up, else the decoder's.
    pub(super) fn finish(self, fed: MediaResult<()>) -> MediaResult<Vec<Rung>> {
        if fed.is_err() {
            // Set before the channels close, so rungs see it when their queues end.
            self.stop.store(true, Ordering::SeqCst);
        }
        drop(self.senders);
        let mut rungs = Vec::with_capacity(self.handles.len());
        let mut first_err: Option<MediaError> = None;
        for h in self.handles {
            match h.join() {
                Ok(Ok(r)) => rungs.push(r),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert_with(|| MediaError::new(ErrorCode::Internal, "rung encoder panicked"));
                }
            }
        }
        match fed {
            Err(e) if self.gone => Err(first_err.unwrap_or(e)),
            Err(e) => Err(e),
            Ok(()) => first_err.map_or(Ok(rungs), Err),
        }
    }
}

/// A new reference to `f`'s buffers and properties (`frame::Video::clone` would copy pixels).
fn share(f: &frame::Video) -> MediaResult<frame::Video> {
    // SAFETY: av_frame_clone only adds references to a valid frame's buffers; the result is owned
    // by the returned wrapper, which frees it on drop.
    let p = unsafe { ffi::av_frame_clone(f.as_ptr()) };
    if p.is_null() {
        return Err(MediaError::new(ErrorCode::Internal, "av_frame_clone: out of memory"));
    }
    // SAFETY: p is a valid, owned AVFrame.
    Ok(unsafe { frame::Video::wrap(p) })
}

fn encode_rung(mut rung: Rung, rx: &Receiver<frame::Video>, cancel: &AtomicBool, stop: &AtomicBool) -> MediaResult<Rung> {
    let halted = || cancel.load(Ordering::Relaxed) || stop.load(Ordering::SeqCst);
    let aborted = || MediaError::new(ErrorCode::Aborted, "chunk encode stopped");
    let mut filtered = frame::Video::empty();
    let mut pkt = Packet::empty();
    for f in rx {
        if halted() {
            return Err(aborted());
        }
        feed_rungs(std::slice::from_mut(&mut rung), Some(&f), &mut filtered, &mut pkt)?;
    }
    if halted() {
        return Err(aborted());
    }
    finish_rung(&mut rung)?;
    Ok(rung)
}

/// End of input for one rung: flushes its graph and encoder and completes its file.
pub(super) fn finish_rung(rung: &mut Rung) -> MediaResult<()> {
    let (mut filtered, mut pkt) = (frame::Video::empty(), Packet::empty());
    feed_rungs(std::slice::from_mut(rung), None, &mut filtered, &mut pkt)?;
    rung.enc.send_eof().map_err(|e| map_err(ErrorCode::EncoderError, "encoder flush", e))?;
    drain_video_encoder(rung, &mut pkt)?;
    rung.octx.write_trailer().map_err(|e| map_err(ErrorCode::IoError, &format!("finalize {}", rung.name), e))
}
