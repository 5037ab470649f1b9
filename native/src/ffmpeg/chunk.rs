//! Encodes one chunk `[start, end)` of the source into one MP4 (video only) per
//! rung, decoding the range once. Frames are assigned with the same half-open
//! comparison on both sides of a boundary, so adjacent chunks never overlap.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::ff::ffi;
use super::ff::{self as ff, codec, encoder, format, frame, Dictionary, Packet, Rational};
use super::hls::{
    build_video_graph, extradata, feed_rungs, GraphSource, may_be_interlaced, open_video_encoder, r64, rescale, EncoderPref,
    Rung, RungJob, RungOutput, VideoEncoderParams, TICK,
};
use super::input::{self, ReadOutcome};
use super::rung_threads::{finish_rung, RungThreads};
use super::split;
use super::probe::{best_video_index, display_rotation};
use super::{is_again, map_err};
use crate::codecs;
use crate::error::{ErrorCode, MediaError, MediaResult};
use crate::ladder::{self, KeyframeGrid};

/// Format-level tag of encodeChunk outputs: the chunk's source start in ticks.
pub const CHUNK_TAG: &str = "vora_chunk";

/// Source start (seconds) from a [`CHUNK_TAG`] value.
pub fn parse_chunk_tag(tag: &str) -> Option<f64> {
    let rest = tag.strip_prefix("v1 start=")?;
    let (num, den) = rest.split_once('/')?;
    let (num, den) = (num.parse::<i64>().ok()?, den.parse::<i64>().ok()?);
    #[allow(clippy::cast_precision_loss)]
    (den > 0).then(|| num as f64 / den as f64)
}

/// Boundary tolerance in ticks: far below a frame, above float/rounding noise
/// from keyframe times that went through seconds.
const EPS_TICKS: i64 = 4;

#[derive(Debug, Clone)]
pub struct ChunkJob {
    pub input: PathBuf,
    pub start_sec: f64,
    pub end_sec: f64,
    pub rungs: Vec<RungJob>,
    pub segment_sec: f64,
    pub encoder: EncoderPref,
    pub preset: String,
    pub threads: u32,
}

#[derive(Debug, Clone)]
pub struct ChunkRungOutput {
    pub name: String,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub codecs: String,
    pub frames: u64,
    pub duration_sec: f64,
    pub encoder: String,
}

#[derive(Debug, Clone)]
pub struct SelectedRung {
    pub name: String,
}

/// `target(name)` returns where to write a rung, or None when it is already
/// done (checkpointed). Returns the rungs selected for this source and the
/// outputs actually encoded.
pub fn run_chunk(
    job: &ChunkJob,
    target: &dyn Fn(&str) -> Option<PathBuf>,
    cancel: &AtomicBool,
) -> MediaResult<(Vec<SelectedRung>, Vec<ChunkRungOutput>)> {
    let mut opened = input::open(&job.input)?;
    let ictx = &mut opened.ctx;
    let vi = best_video_index(ictx)
        .ok_or_else(|| MediaError::new(ErrorCode::NoVideoStream, format!("{} has no video stream", job.input.display())))?;
    let vstream = ictx.stream(vi).ok_or_else(|| MediaError::new(ErrorCode::Internal, "video stream vanished"))?;
    let vtb = vstream.time_base();
    let rotation = display_rotation(&vstream);
    // A file written by splitSource carries the source frame rate and where its
    // first packet sits in the source, so its frames get the source's timestamps.
    let split = ictx.metadata().get(split::SPLIT_TAG).and_then(split::parse_tag);
    let fps = split.map_or_else(|| split::stream_fps(&vstream), |s| s.fps);
    let start = vstream.start_time();
    let mut origin_ts = if start == ffi::AV_NOPTS_VALUE { 0 } else { start };
    // threads == 1: decoding and every rung on this thread, the least CPU. More: each rung scales
    // and encodes on its own thread (the budget shared among the rungs' encoders) so that one
    // chunk can use several cores; 0 lets FFmpeg pick its threads.
    let parallel_rungs = job.threads != 1;
    let dec_threads = if job.threads == 0 { 0 } else { 1 };
    let mut vctx = codec::context::Context::from_parameters(vstream.parameters())
        .map_err(|e| map_err(ErrorCode::UnsupportedCodec, "video decoder params", e))?;
    // SAFETY: decoder fields set before open.
    unsafe {
        (*vctx.as_mut_ptr()).pkt_timebase = vtb.into();
        (*vctx.as_mut_ptr()).thread_count = dec_threads;
    }
    let mut vdec = vctx.decoder().video().map_err(|e| map_err(ErrorCode::UnsupportedCodec, "video decoder", e))?;
    let (src_w, src_h) = (vdec.width(), vdec.height());
    let sar = {
        let a = vdec.aspect_ratio();
        if a.numerator() > 0 && a.denominator() > 0 { (a.numerator(), a.denominator()) } else { (1, 1) }
    };
    let (disp_w, disp_h) = ladder::display_size(src_w, src_h, sar, rotation);
    let heights: Vec<u32> = job.rungs.iter().map(|r| r.height).collect();
    let selected: Vec<(usize, u32, u32)> = ladder::select_rungs(&heights, disp_h)
        .into_iter()
        .map(|i| {
            let (w, h) = ladder::rung_size(disp_w, disp_h, job.rungs[i].height);
            (i, w, h)
        })
        .collect();
    let sel_out: Vec<SelectedRung> =
        selected.iter().map(|&(i, _, _)| SelectedRung { name: job.rungs[i].name.clone() }).collect();

    let pix = ffi::AVPixelFormat::from(vdec.format()) as i32;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let gop = ((job.segment_sec * r64(fps)).ceil() as u32).max(1) * 2;
    let enc_threads = match job.threads {
        0 | 1 => job.threads,
        n => (n / u32::try_from(selected.len()).unwrap_or(1).max(1)).max(1),
    };
    let mut encoder_name = if job.encoder == EncoderPref::X264 { "libx264" } else { "h264_nvenc" };
    let mut rungs = Vec::new();
    for &(i, w, h) in &selected {
        let spec = &job.rungs[i];
        let Some(path) = target(&spec.name) else { continue };
        let src = GraphSource { width: src_w, height: src_h, pix, sar, rotation, deinterlace: may_be_interlaced(&vdec) };
        let graph = build_video_graph(&src, w, h)
            .map_err(|e| map_err(ErrorCode::Internal, &format!("video graph {}", spec.name), e))?;
        let maxrate = spec.maxrate.unwrap_or(spec.video_bitrate * 11 / 10);
        let params = VideoEncoderParams {
            width: w,
            height: h,
            frame_rate: fps,
            bitrate: spec.video_bitrate,
            maxrate,
            bufsize: spec.bufsize.unwrap_or(maxrate * 2),
            gop,
            preset: &job.preset,
            threads: enc_threads,
        };
        let enc = match open_video_encoder(encoder_name, &params) {
            Ok(e) => e,
            Err(e) if job.encoder == EncoderPref::Auto && encoder_name == "h264_nvenc" => {
                tracing::info!(error = %e, "h264_nvenc unavailable, falling back to libx264");
                encoder_name = "libx264";
                open_video_encoder(encoder_name, &params).map_err(|e| map_err(ErrorCode::EncoderError, "open libx264", e))?
            }
            Err(e) => return Err(map_err(ErrorCode::EncoderError, &format!("open {encoder_name}"), e)),
        };
        // SAFETY: reading the opened encoder's extradata.
        let codecs = codecs::avc1_from_extradata(&extradata(unsafe { enc.as_ptr() }))
            .ok_or_else(|| MediaError::new(ErrorCode::EncoderError, "encoder produced no SPS"))?;
        let mut octx = format::output_as(&path, "mp4")
            .map_err(|e| map_err(ErrorCode::IoError, &format!("create {}", path.display()), e))?;
        {
            let mut ost = octx
                .add_stream(encoder::find_by_name(encoder_name))
                .map_err(|e| map_err(ErrorCode::Internal, "add video stream", e))?;
            ost.set_parameters(&enc);
            ost.set_time_base(Rational::new(1, TICK));
        }
        // Where this chunk sits in the source, so packaging needs nothing but the file.
        let mut meta = Dictionary::new();
        #[allow(clippy::cast_possible_truncation)]
        let start_ticks = (job.start_sec * f64::from(TICK)).round() as i64;
        meta.set(CHUNK_TAG, &format!("v1 start={start_ticks}/{TICK}"));
        octx.set_metadata(meta);
        let mut mov_opts = Dictionary::new();
        mov_opts.set("movflags", "use_metadata_tags");
        octx.write_header_with(mov_opts)
            .map_err(|e| map_err(ErrorCode::IoError, &format!("mp4 header {}", path.display()), e))?;
        let video_tb = octx.stream(0).map_or(Rational::new(1, TICK), |s| s.time_base());
        rungs.push(Rung {
            name: spec.name.clone(),
            graph,
            grid: KeyframeGrid::new(job.segment_sec, TICK.unsigned_abs()),
            enc,
            octx,
            video_tb,
            audio_tb: None,
            frame_ticks: rescale(1, fps.invert(), Rational::new(1, TICK)).max(1),
            out: RungOutput { name: spec.name.clone(), dir: path, width: w, height: h, codecs, frame_rate: r64(fps) },
        });
    }
    if rungs.is_empty() {
        return Ok((sel_out, Vec::new()));
    }

    // Only the video stream is needed; skipping the rest saves demux work.
    // SAFETY: setting discard flags on an open context before reading.
    unsafe {
        for i in 0..(*ictx.as_ptr()).nb_streams as usize {
            if i != vi {
                (*(*(*ictx.as_mut_ptr()).streams.add(i))).discard = ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
    let mut pending: Option<Packet> = None;
    if let Some(info) = split {
        let mut first = Packet::empty();
        loop {
            match input::read_packet(ictx, &mut first)? {
                ReadOutcome::Eof => return Err(MediaError::new(ErrorCode::CorruptInput, "split chunk file has no video packets")),
                ReadOutcome::Packet if first.stream() == vi => break,
                ReadOutcome::Packet => {}
            }
        }
        let p0 = first.pts().or(first.dts()).unwrap_or(0);
        origin_ts = p0 - rescale(info.first_pts, info.tb, vtb);
        tracing::debug!(origin_ts, "split chunk file: source timestamps restored");
        pending = Some(first);
    }
    let tick = Rational::new(1, TICK);
    #[allow(clippy::cast_possible_truncation)]
    let to_ticks = |s: f64| (s * f64::from(TICK)).round() as i64;
    let (start_ticks, end_ticks) = (to_ticks(job.start_sec), to_ticks(job.end_sec));
    // A split file already starts at the right keyframe.
    if job.start_sec > 0.0 && split.is_none() {
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let origin_us = (origin_ts as f64 * r64(vtb) * 1e6).round() as i64;
        #[allow(clippy::cast_possible_truncation)]
        let target_us = origin_us + (job.start_sec * 1e6).round() as i64;
        // Lands on the keyframe at or before start; earlier frames are decoded and dropped.
        ictx.seek(target_us, ..target_us).map_err(|e| map_err(ErrorCode::CorruptInput, "seek", e))?;
    }
    let frame_ticks = rescale(1, fps.invert(), tick).max(1);
    let mut clock = FrameClock { origin_ts, vtb, start_ticks, end_ticks, last_rel: None, frames: 0 };
    let rungs = if parallel_rungs {
        // Decoding stays on this thread; every rung scales, encodes and muxes on its own.
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let mut pool = RungThreads::spawn(s, rungs, cancel, &stop)?;
            let fed = decode_range(ictx, &mut vdec, vi, pending, cancel, |vframe| match clock.admit(vframe) {
                Admit::Skip => Ok(true),
                Admit::End => Ok(false),
                Admit::Take => pool.send(vframe).map(|()| true),
            })
            .and_then(|()| clock.check(job));
            pool.finish(fed)
        })?
    } else {
        let (mut filtered, mut out_pkt) = (frame::Video::empty(), Packet::empty());
        decode_range(ictx, &mut vdec, vi, pending, cancel, |vframe| match clock.admit(vframe) {
            Admit::Skip => Ok(true),
            Admit::End => Ok(false),
            Admit::Take => feed_rungs(&mut rungs, Some(vframe), &mut filtered, &mut out_pkt).map(|()| true),
        })?;
        clock.check(job)?;
        for rung in &mut rungs {
            finish_rung(rung)?;
        }
        rungs
    };
    let (frames, last_rel) = (clock.frames, clock.last_rel);
    let mut outputs = Vec::with_capacity(rungs.len());
    for rung in rungs {
        #[allow(clippy::cast_precision_loss)]
        outputs.push(ChunkRungOutput {
            name: rung.name,
            path: rung.out.dir,
            width: rung.out.width,
            height: rung.out.height,
            codecs: rung.out.codecs,
            frames,
            duration_sec: (last_rel.unwrap_or(0) + frame_ticks) as f64 / f64::from(TICK),
            encoder: encoder_name.to_string(),
        });
    }
    Ok((sel_out, outputs))
}

/// Which decoded frames belong to the chunk `[start, end)`, and their chunk-relative timestamps.
struct FrameClock {
    origin_ts: i64,
    vtb: Rational,
    start_ticks: i64,
    end_ticks: i64,
    last_rel: Option<i64>,
    frames: u64,
}

enum Admit {
    /// Before the chunk (decoded from the previous keyframe): dropped.
    Skip,
    /// In the chunk: its pts is now relative to the chunk start, in ticks.
    Take,
    /// At or past the chunk end: decoding stops.
    End,
}

impl FrameClock {
    fn admit(&mut self, vframe: &mut frame::Video) -> Admit {
        let Some(ts) = vframe.timestamp() else { return Admit::Skip };
        let t = rescale(ts - self.origin_ts, self.vtb, Rational::new(1, TICK));
        if t < self.start_ticks - EPS_TICKS {
            return Admit::Skip;
        }
        if t >= self.end_ticks - EPS_TICKS {
            return Admit::End;
        }
        let rel = (t - self.start_ticks).max(0);
        // Strictly increasing, whatever the source's timestamps did.
        let rel = match self.last_rel {
            Some(p) if rel <= p => p + 1,
            _ => rel,
        };
        self.last_rel = Some(rel);
        vframe.set_pts(Some(rel));
        self.frames += 1;
        Admit::Take
    }

    fn check(&self, job: &ChunkJob) -> MediaResult<()> {
        if self.frames == 0 {
            return Err(MediaError::new(ErrorCode::CorruptInput, format!("no video frames in [{}, {}) s", job.start_sec, job.end_sec)));
        }
        Ok(())
    }
}

/// Decodes from the current read position (after `pending`, a packet already read) and hands
/// each frame to `on_frame` until it returns false or the stream ends. Checks `cancel` between
/// packets.
fn decode_range(
    ictx: &mut format::context::Input,
    vdec: &mut ff::decoder::Video,
    vi: usize,
    mut pending: Option<Packet>,
    cancel: &AtomicBool,
    mut on_frame: impl FnMut(&mut frame::Video) -> MediaResult<bool>,
) -> MediaResult<()> {
    let mut pkt = Packet::empty();
    let mut vframe = frame::Video::empty();
    let mut eof = false;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::new(ErrorCode::Aborted, "chunk encode cancelled"));
        }
        let next = pending.take();
        if let Some(first) = next.as_ref() {
            send_video_packet(vdec, first)?;
        } else if !eof {
            match input::read_packet(ictx, &mut pkt)? {
                ReadOutcome::Eof => {
                    eof = true;
                    vdec.send_eof().map_err(|e| map_err(ErrorCode::CorruptInput, "video decoder flush", e))?;
                }
                ReadOutcome::Packet if pkt.stream() == vi => send_video_packet(vdec, &pkt)?,
                ReadOutcome::Packet => continue,
            }
        }
        loop {
            match vdec.receive_frame(&mut vframe) {
                Ok(()) => {}
                Err(ff::Error::Eof) => return Ok(()),
                Err(e) if is_again(&e) => break,
                Err(e) => return Err(map_err(ErrorCode::CorruptInput, "video decode", e)),
            }
            if !on_frame(&mut vframe)? {
                return Ok(());
            }
        }
        if eof {
            // A drained decoder answers Eof above; this only guards a decoder that never does.
            return Ok(());
        }
    }
}

fn send_video_packet(vdec: &mut ff::decoder::Video, pkt: &Packet) -> MediaResult<()> {
    match vdec.send_packet(pkt) {
        // A damaged packet is skipped like the ffmpeg CLI does; frame counts decide validity.
        Ok(()) | Err(ff::Error::InvalidData) => Ok(()),
        Err(e) if is_again(&e) => Ok(()),
        Err(e) => Err(map_err(ErrorCode::CorruptInput, "video decode", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_tag_parses() {
        assert_eq!(parse_chunk_tag("v1 start=384000/48000"), Some(8.0));
        assert_eq!(parse_chunk_tag("v1 start=1/0"), None);
        assert_eq!(parse_chunk_tag("v2 start=1/1"), None);
    }
}
