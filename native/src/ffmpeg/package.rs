//! Stream-copy remux of one rendition's chunk MP4s (encodeChunk outputs, in chunk
//! order) into one fMP4 HLS rendition. Every keyframe starts a segment: encodeChunk
//! forces keyframes only on its segment grid and at each chunk's first frame, so
//! all renditions of the same plan get identical boundaries.

use std::path::PathBuf;

use super::ff::ffi;
use super::ff::{self as ff, format, Dictionary, Packet, Rational};
use super::hls::{r64, rescale, write_packet, TICK};
use super::input::{self, ReadOutcome};
use super::map_err;
use super::probe::best_video_index;
use crate::codecs;
use crate::error::{ErrorCode, MediaError, MediaResult};

#[derive(Debug, Clone)]
pub struct PackageJob {
    pub name: String,
    pub chunk_files: Vec<PathBuf>,
    /// Source time of each chunk's start from its checkpoint record, used when the
    /// file lacks encodeChunk's `vora_chunk` tag; with neither, chunks are laid end to end.
    pub chunk_starts: Vec<Option<f64>>,
    pub out_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct PackageOutput {
    pub width: u32,
    pub height: u32,
    pub codecs: String,
    pub frame_rate: f64,
    /// Exact segment durations (keyframe to keyframe, last one to the end of the last frame).
    pub segment_durations: Vec<f64>,
    pub duration_sec: f64,
    pub frames: u64,
}

fn extradata_of(par: *const ffi::AVCodecParameters) -> Vec<u8> {
    // SAFETY: extradata/extradata_size describe one buffer of live parameters.
    unsafe {
        let len = usize::try_from((*par).extradata_size).unwrap_or(0);
        if (*par).extradata.is_null() || len == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*par).extradata, len).to_vec()
        }
    }
}

/// Source time 0 sits at this presentation time in every packaged rendition, video
/// and audio alike. fMP4 cannot start with a negative dts, so without it the muxer
/// would shift video by its B-frame delay and audio by the AAC priming: different
/// amounts, i.e. lip-sync error. 0.2 s covers a 2-frame reorder delay down to 10 fps.
pub const TIMELINE_OFFSET_SEC: f64 = 0.2;

#[allow(clippy::cast_possible_truncation)]
pub(super) fn timeline_offset_ticks() -> i64 {
    (TIMELINE_OFFSET_SEC * f64::from(TICK)).round() as i64
}

pub fn run_package(job: &PackageJob) -> MediaResult<PackageOutput> {
    if job.chunk_files.is_empty() {
        return Err(MediaError::new(ErrorCode::Internal, "invalid options: chunkFiles is empty"));
    }
    std::fs::create_dir_all(&job.out_dir).map_err(|e| MediaError::io(&format!("mkdir {}", job.out_dir.display()), &e))?;
    let tick = Rational::new(1, TICK);
    let playlist = job.out_dir.join("index.m3u8");
    let mut octx: Option<format::context::Output> = None;
    let mut out_tb = tick;
    let mut header: Vec<u8> = Vec::new();
    let (mut width, mut height, mut codecs_v, mut frame_rate) = (0u32, 0u32, String::new(), 0.0f64);
    let mut keyframes: Vec<i64> = Vec::new();
    let mut end = timeline_offset_ticks();
    let mut last_dts: Option<i64> = None;
    let mut frames = 0u64;
    let mut pkt = Packet::empty();
    for (ci, file) in job.chunk_files.iter().enumerate() {
        let span = tracing::debug_span!("package_chunk", rendition = %job.name, chunk = ci);
        let _g = span.enter();
        let mut opened = input::open(file)?;
        let ictx = &mut opened.ctx;
        let vi = best_video_index(ictx)
            .ok_or_else(|| MediaError::new(ErrorCode::NoVideoStream, format!("{} has no video stream", file.display())))?;
        let (itb, par, rate, stream_end) = {
            let s = ictx.stream(vi).ok_or_else(|| MediaError::new(ErrorCode::Internal, "video stream vanished"))?;
            let start = if s.start_time() == ffi::AV_NOPTS_VALUE { 0 } else { s.start_time() };
            let end = (s.duration() > 0).then(|| start + s.duration());
            // SAFETY: the parameters pointer stays valid while ictx is open.
            (s.time_base(), unsafe { s.parameters().as_ptr() }, s.avg_frame_rate(), end)
        };
        let nominal = if rate.numerator() > 0 { rescale(1, rate.invert(), tick).max(1) } else { 1 };
        let extra = extradata_of(par);
        let tagged_start = ictx.metadata().get(super::chunk::CHUNK_TAG).and_then(super::chunk::parse_chunk_tag);
        if ci == 0 {
            header = extra;
            codecs_v = codecs::avc1_from_extradata(&header)
                .ok_or_else(|| MediaError::new(ErrorCode::UnsupportedCodec, format!("{}: no H.264 SPS", file.display())))?;
            // SAFETY: plain field reads on live parameters.
            unsafe {
                width = u32::try_from((*par).width).unwrap_or(0);
                height = u32::try_from((*par).height).unwrap_or(0);
            }
            frame_rate = r64(rate);
            let mut o = format::output_as(&playlist, "hls")
                .map_err(|e| map_err(ErrorCode::IoError, &format!("create {}", playlist.display()), e))?;
            {
                let mut ost = o.add_stream(ff::encoder::find(ff::codec::Id::None)).map_err(|e| map_err(ErrorCode::Internal, "add stream", e))?;
                ost.set_time_base(tick);
                ost.set_avg_frame_rate(rate);
                // SAFETY: copying the first chunk's parameters into the new stream before the header.
                unsafe {
                    let st = ost.as_mut_ptr();
                    let ret = ffi::avcodec_parameters_copy((*st).codecpar, par);
                    if ret < 0 {
                        return Err(map_err(ErrorCode::Internal, "copy codec parameters", ff::Error::from(ret)));
                    }
                    (*(*st).codecpar).codec_tag = 0;
                }
            }
            let mut opts = Dictionary::new();
            // Far below any GOP: the muxer then cuts at every keyframe, i.e. exactly on
            // the keyframes encodeChunk forced.
            opts.set("hls_time", "0.001");
            opts.set("hls_playlist_type", "vod");
            opts.set("hls_list_size", "0");
            opts.set("hls_segment_type", "fmp4");
            opts.set("hls_fmp4_init_filename", "init.mp4");
            opts.set("hls_segment_filename", &job.out_dir.join("seg_%05d.m4s").to_string_lossy());
            opts.set("hls_flags", "independent_segments");
            o.write_header_with(opts).map_err(|e| map_err(ErrorCode::IoError, &format!("hls header {}", job.name), e))?;
            out_tb = o.stream(0).map_or(tick, |s| s.time_base());
            octx = Some(o);
        } else if extra != header {
            // One init segment serves every chunk only if the parameter sets are identical.
            return Err(MediaError::new(
                ErrorCode::EncoderError,
                format!("{}: SPS/PPS differ from the first chunk's (one init segment cannot serve both)", file.display()),
            ));
        }
        frame_rate = frame_rate.max(r64(rate));
        #[allow(clippy::cast_possible_truncation)]
        let offset = tagged_start
            .or_else(|| job.chunk_starts.get(ci).copied().flatten())
            .map_or(end, |s| (s * f64::from(TICK)).round() as i64 + timeline_offset_ticks());
        // The mov demuxer leaves packet durations unset; the stream duration (sum of
        // sample durations, last frame included) gives the chunk's exact end.
        if let Some(e) = stream_end {
            end = end.max(rescale(e, itb, tick) + offset);
        }
        let Some(o) = octx.as_mut() else { return Err(MediaError::new(ErrorCode::Internal, "muxer missing")) };
        loop {
            match input::read_packet(ictx, &mut pkt)? {
                ReadOutcome::Eof => break,
                ReadOutcome::Packet if pkt.stream() != vi => continue,
                ReadOutcome::Packet => {}
            }
            let pts = pkt.pts().map(|v| rescale(v, itb, tick) + offset);
            let mut dts = pkt.dts().map(|v| rescale(v, itb, tick) + offset).or(pts);
            if let (Some(d), Some(l)) = (dts, last_dts) {
                if d <= l {
                    dts = Some(l + 1);
                }
            }
            if last_dts.is_none() && dts.is_some_and(|d| d < 0) {
                tracing::warn!(dts = ?dts, "B-frame delay exceeds the timeline offset: the muxer will shift video against audio");
            }
            last_dts = dts;
            let dur = if pkt.duration() > 0 { rescale(pkt.duration(), itb, tick) } else { nominal };
            if let Some(p) = pts {
                end = end.max(p + dur.max(0));
                if pkt.is_key() {
                    keyframes.push(p);
                }
            }
            frames += 1;
            pkt.set_pts(pts.map(|v| rescale(v, tick, out_tb)));
            pkt.set_dts(dts.map(|v| rescale(v, tick, out_tb)));
            pkt.set_duration(rescale(dur, tick, out_tb));
            pkt.set_position(-1);
            pkt.set_stream(0);
            write_packet(o, &pkt, &job.name)?;
        }
    }
    let Some(mut o) = octx else { return Err(MediaError::new(ErrorCode::Internal, "muxer missing")) };
    o.write_trailer().map_err(|e| map_err(ErrorCode::IoError, &format!("finalize {}", job.name), e))?;
    keyframes.sort_unstable();
    keyframes.dedup();
    let mut bounds = keyframes.clone();
    bounds.push(end);
    #[allow(clippy::cast_precision_loss)]
    let segment_durations: Vec<f64> = bounds.windows(2).map(|w| (w[1] - w[0]) as f64 / f64::from(TICK)).collect();
    #[allow(clippy::cast_precision_loss)]
    let duration_sec = (end - keyframes.first().copied().unwrap_or(0)) as f64 / f64::from(TICK);
    let _ = &job.name;
    Ok(PackageOutput { width, height, codecs: codecs_v, frame_rate, segment_durations, duration_sec, frames })
}
