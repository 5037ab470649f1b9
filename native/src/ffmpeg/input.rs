//! Opening inputs with failure classification: the reason an open fails decides
//! whether a job is retried (IO) or the upload is rejected (not media / corrupt).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::ff;
use super::ff::ffi;
use crate::error::{ErrorCode, MediaError, MediaResult};

/// libavformat's AVPROBE_SCORE_RETRY (a macro, so bindgen does not emit it): above
/// this the bytes are confidently a known container.
const AVPROBE_SCORE_RETRY: i32 = 25;

pub struct OpenedInput {
    pub ctx: ff::format::context::Input,
    pub size_bytes: u64,
}

/// Content-only probe score of the file head (extension ignored, so `x.mp4`
/// full of noise still counts as "not media").
fn content_probe_score(path: &Path) -> i32 {
    let mut head = Vec::with_capacity(1 << 20);
    if File::open(path).and_then(|f| f.take(1 << 20).read_to_end(&mut head)).is_err() {
        return 0;
    }
    let len = head.len();
    // libavformat probers may read up to AVPROBE_PADDING_SIZE past the end.
    head.resize(len + ffi::AVPROBE_PADDING_SIZE as usize, 0);
    let Ok(buf_size) = i32::try_from(len) else { return 0 };
    let pd = ffi::AVProbeData {
        filename: c"".as_ptr(),
        buf: head.as_mut_ptr(),
        buf_size,
        mime_type: std::ptr::null(),
    };
    let mut score = 0;
    // SAFETY: pd points at a live, padded buffer for the duration of the call.
    unsafe { ffi::av_probe_input_format3(&pd, 1, &mut score) };
    score
}

pub fn open(path: &Path) -> MediaResult<OpenedInput> {
    super::init();
    let meta = std::fs::metadata(path).map_err(|e| MediaError::io(&format!("stat {}", path.display()), &e))?;
    if meta.is_dir() {
        return Err(MediaError::new(ErrorCode::IoError, format!("{} is a directory", path.display())));
    }
    if meta.len() == 0 {
        return Err(MediaError::new(ErrorCode::EmptyInput, format!("{} is empty (0 bytes)", path.display())));
    }
    match ff::format::input(&path) {
        Ok(ctx) => {
            // SAFETY: plain field read on an open context.
            let score = unsafe { (*ctx.as_ptr()).probe_score };
            // libavformat accepts its best weak guess once the probe buffer is exhausted;
            // about 1 in 200 random files then "opens" as raw H.263. That is noise, not media.
            if score <= AVPROBE_SCORE_RETRY {
                return Err(MediaError::new(
                    ErrorCode::NotMedia,
                    format!("{}: only a weak guess ({}, probe score {score})", path.display(), ctx.format().name()),
                ));
            }
            let has_av = ctx.streams().any(|s| {
                matches!(s.parameters().medium(), ff::media::Type::Video | ff::media::Type::Audio)
            });
            if !has_av {
                return Err(MediaError::new(
                    ErrorCode::NotMedia,
                    format!("{}: no audio or video streams ({})", path.display(), ctx.format().name()),
                ));
            }
            Ok(OpenedInput { ctx, size_bytes: meta.len() })
        }
        Err(ff::Error::Other { errno }) if errno == libc::ENOENT || errno == libc::EACCES || errno == libc::EIO => {
            Err(MediaError::new(ErrorCode::IoError, format!("open {}: {}", path.display(), ff::Error::Other { errno })))
        }
        Err(err) => {
            // A container that is recognised from its bytes but fails to open is damaged
            // (e.g. an MP4 cut before its moov box); anything else is not media at all.
            let score = content_probe_score(path);
            let code = if score > AVPROBE_SCORE_RETRY { ErrorCode::CorruptInput } else { ErrorCode::NotMedia };
            Err(MediaError::new(code, format!("open {}: {err} (content probe score {score})", path.display())))
        }
    }
}

/// Outcome of reading one packet, with FFmpeg's EAGAIN/EOF folded into control flow.
pub enum ReadOutcome {
    Packet,
    Eof,
}

/// Reads the next packet. Transient EAGAIN is retried; a hard demux error after the
/// header parsed means the payload is damaged or truncated.
pub fn read_packet(ctx: &mut ff::format::context::Input, pkt: &mut ff::Packet) -> MediaResult<ReadOutcome> {
    let mut again = 0;
    loop {
        // av_read_frame overwrites the packet without releasing what it held: callers reuse one
        // packet and decoding only borrows it, so without this every packet read was leaked
        // (heaptrack: ~40 MB per 2 s of 4K60 chunk; the fleet worker grew by hundreds of MB per video).
        // SAFETY: unref of a packet we own leaves it valid and blank.
        unsafe { ffi::av_packet_unref(ff::packet::Mut::as_mut_ptr(pkt)) };
        match pkt.read(ctx) {
            Ok(()) => return Ok(ReadOutcome::Packet),
            Err(ff::Error::Eof) => return Ok(ReadOutcome::Eof),
            Err(e) if super::is_again(&e) && again < 1000 => {
                again += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(MediaError::new(ErrorCode::CorruptInput, format!("demux: {e}"))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A reused packet must give its previous buffer back on every read: av_read_frame does not, and
    /// forgetting it leaked every packet of every job (the worker's growth of hundreds of MB a video).
    #[test]
    fn reading_into_a_reused_packet_releases_the_previous_buffer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clip = crate::ffmpeg::probe::tests::lavfi_clip(dir.path(), 2, "320x240");
        let mut opened = open(&clip).expect("open");
        let mut pkt = ff::Packet::empty();
        let mut checked = 0;
        loop {
            if matches!(read_packet(&mut opened.ctx, &mut pkt).expect("read"), ReadOutcome::Eof) {
                break;
            }
            // SAFETY: a second reference to the packet's buffer, released below.
            let mut held = unsafe { ffi::av_buffer_ref((*ff::packet::Ref::as_ptr(&pkt)).buf) };
            assert!(!held.is_null());
            if matches!(read_packet(&mut opened.ctx, &mut pkt).expect("read"), ReadOutcome::Eof) {
                unsafe { ffi::av_buffer_unref(&mut held) };
                break;
            }
            // SAFETY: `held` is a live reference we own.
            let refs = unsafe { ffi::av_buffer_get_ref_count(held) };
            unsafe { ffi::av_buffer_unref(&mut held) };
            assert_eq!(refs, 1, "the packet kept its previous buffer after the next read");
            checked += 1;
        }
        assert!(checked > 10, "only {checked} packets checked");
    }
}
