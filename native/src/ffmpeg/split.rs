//! Stream-copy split of the video stream into one MP4 per chunk, in ONE linear
//! pass over the source (no seeking, so it does not depend on the demuxer's seek
//! semantics). Each chunk file:
//! - starts at the last keyframe whose pts is at or before the chunk start (the
//!   previous keyframe when the chunk starts mid-GOP);
//! - holds every packet whose dts is before the chunk end: a frame's references
//!   precede it in decode order and dts <= pts, so that prefix decodes every frame
//!   with pts < end, open-GOP leading pictures included;
//! - carries a `vora_split` tag: the source-relative time of its first packet and
//!   the source frame rate, from which `encodeChunk` rebuilds source timestamps
//!   whatever shift the muxer/demuxer apply (edit lists, negative dts).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::ff::ffi;
use super::ff::{self as ff, format, Dictionary, Packet, Rational};
use super::hls::{rescale, TICK};
use super::input::{self, ReadOutcome};
use super::map_err;
use super::probe::best_video_index;
use crate::error::{ErrorCode, MediaError, MediaResult};

/// Same tolerance as the chunk encoder's boundary comparison.
const EPS_TICKS: i64 = 4;
/// Format-level tag written into split files.
pub const SPLIT_TAG: &str = "vora_split";

#[derive(Debug, Clone)]
pub struct SplitRange {
    pub name: String,
    pub start_sec: f64,
    pub end_sec: f64,
}

#[derive(Debug, Clone)]
pub struct SplitOutput {
    pub file: PathBuf,
    pub bytes: u64,
    pub packets: u64,
}

/// What a split file says about its place in the source.
#[derive(Debug, Clone, Copy)]
pub struct SplitInfo {
    /// Source-relative pts of the first packet, in `tb`.
    pub first_pts: i64,
    pub tb: Rational,
    pub fps: Rational,
}

pub fn format_tag(info: &SplitInfo) -> String {
    format!(
        "v1 first={}/{}/{} fps={}/{}",
        info.first_pts,
        info.tb.numerator(),
        info.tb.denominator(),
        info.fps.numerator(),
        info.fps.denominator()
    )
}

pub fn parse_tag(tag: &str) -> Option<SplitInfo> {
    let mut it = tag.split_whitespace();
    if it.next()? != "v1" {
        return None;
    }
    let first: Vec<i64> = it.next()?.strip_prefix("first=")?.split('/').map(str::parse).collect::<Result<_, _>>().ok()?;
    let fps: Vec<i32> = it.next()?.strip_prefix("fps=")?.split('/').map(str::parse).collect::<Result<_, _>>().ok()?;
    if first.len() != 3 || fps.len() != 2 || first[2] <= 0 || fps[0] <= 0 || fps[1] <= 0 {
        return None;
    }
    Some(SplitInfo {
        first_pts: first[0],
        tb: Rational::new(i32::try_from(first[1]).ok()?, i32::try_from(first[2]).ok()?),
        fps: Rational::new(fps[0], fps[1]),
    })
}

/// Source frame rate as every chunk encoder sees it (avg, else r_frame_rate, else 25).
pub(super) fn stream_fps(stream: &ff::format::stream::Stream) -> Rational {
    let avg = stream.avg_frame_rate();
    let fps = if avg.numerator() > 0 && avg.denominator() > 0 { avg } else { stream.rate() };
    if fps.numerator() > 0 && fps.denominator() > 0 { fps } else { Rational::new(25, 1) }
}

struct Out {
    octx: format::context::Output,
    tmp: PathBuf,
    target: PathBuf,
    out_tb: Rational,
    packets: u64,
    last_dts: Option<i64>,
    /// Reorder buffer for sources that leave dts unset (Matroska's first
    /// packets): dts = smallest of the last `delay + 1` pts, as libavformat guesses.
    pts_buffer: Vec<i64>,
}

enum State {
    Waiting,
    Open(Box<Out>),
    Done(SplitOutput),
}

struct Ctx {
    /// The source video stream; valid while the input context is open.
    ist: *const ffi::AVStream,
    vtb: Rational,
    origin: i64,
    fps: Rational,
    /// Reorder depth of the source (frames).
    delay: i64,
}

/// "mp4" when the mp4 muxer can carry `codec_id`, else "mov" (ProRes, DNxHD, raw video...).
/// Chunk files keep the `.mp4` name either way: the demuxer is the same.
fn chunk_muxer(codec_id: ffi::AVCodecID) -> &'static str {
    // SAFETY: av_guess_format returns a static muxer description or null; the name is a valid C string.
    let supported = unsafe {
        let fmt = ffi::av_guess_format(c"mp4".as_ptr(), std::ptr::null(), std::ptr::null());
        !fmt.is_null() && ffi::avformat_query_codec(fmt, codec_id, ffi::FF_COMPLIANCE_NORMAL) == 1
    };
    if supported {
        "mp4"
    } else {
        "mov"
    }
}

fn open_out(c: &Ctx, dir: &Path, name: &str, first_pts_rel: i64) -> MediaResult<Out> {
    let target = dir.join(format!("{name}.mp4"));
    let tmp = dir.join(format!(".{name}.mp4.tmp-{}", std::process::id()));
    // SAFETY: c.ist is the live source stream.
    let codec_id = unsafe { (*(*c.ist).codecpar).codec_id };
    let muxer = chunk_muxer(codec_id);
    let mut octx =
        format::output_as(&tmp, muxer).map_err(|e| map_err(ErrorCode::IoError, &format!("create {}", tmp.display()), e))?;
    {
        let mut ost = octx.add_stream(ff::encoder::find(ff::codec::Id::None)).map_err(|e| map_err(ErrorCode::Internal, "add stream", e))?;
        ost.set_time_base(c.vtb);
        ost.set_avg_frame_rate(c.fps);
        // SAFETY: c.ist is the live source stream; the new stream's fields are written before the header.
        unsafe {
            let st = ost.as_mut_ptr();
            let ret = ffi::avcodec_parameters_copy((*st).codecpar, (*c.ist).codecpar);
            if ret < 0 {
                return Err(map_err(ErrorCode::Internal, "copy codec parameters", ff::Error::from(ret)));
            }
            (*(*st).codecpar).codec_tag = 0;
            (*st).r_frame_rate = (*c.ist).r_frame_rate;
            // Display matrix (rotation) travels as stream side data.
            let mut size: usize = 0;
            let sd = ffi::av_stream_get_side_data(c.ist, ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX, &mut size);
            if !sd.is_null() && size > 0 {
                let dst = ffi::av_stream_new_side_data(st, ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX, size);
                if !dst.is_null() {
                    std::ptr::copy_nonoverlapping(sd, dst, size);
                }
            }
        }
    }
    let mut meta = Dictionary::new();
    meta.set(SPLIT_TAG, &format_tag(&SplitInfo { first_pts: first_pts_rel, tb: c.vtb, fps: c.fps }));
    octx.set_metadata(meta);
    let mut opts = Dictionary::new();
    opts.set("movflags", "use_metadata_tags");
    octx.write_header_with(opts).map_err(|e| map_err(ErrorCode::IoError, &format!("{muxer} header {}", tmp.display()), e))?;
    let out_tb = octx.stream(0).map_or(c.vtb, |s| s.time_base());
    Ok(Out { octx, tmp, target, out_tb, packets: 0, last_dts: None, pts_buffer: Vec::new() })
}

fn write(c: &Ctx, out: &mut Out, src: &Packet) -> MediaResult<()> {
    let mut p = src.clone();
    let shift = |v: Option<i64>| v.map(|x| rescale(x - c.origin, c.vtb, out.out_tb));
    let pts = shift(src.pts());
    let guessed = pts.map(|v| {
        if out.pts_buffer.is_empty() {
            let dur = if src.duration() > 0 { src.duration() } else { rescale(1, c.fps.invert(), c.vtb).max(1) };
            let dur = rescale(dur, c.vtb, out.out_tb).max(1);
            out.pts_buffer = (0..c.delay).map(|i| v - (c.delay - i) * dur).collect();
        }
        out.pts_buffer.push(v);
        out.pts_buffer.sort_unstable();
        out.pts_buffer.remove(0)
    });
    let mut dts = shift(src.dts()).or(guessed).or(pts);
    // The muxer needs strictly increasing dts; repair rather than fail.
    if let (Some(d), Some(last)) = (dts, out.last_dts) {
        if d <= last {
            dts = Some(last + 1);
        }
    }
    out.last_dts = dts;
    p.set_pts(pts);
    p.set_dts(dts);
    p.set_duration(rescale(src.duration(), c.vtb, out.out_tb));
    p.set_position(-1);
    p.set_stream(0);
    p.write_interleaved(&mut out.octx).map_err(|e| map_err(ErrorCode::IoError, &format!("write {}", out.tmp.display()), e))?;
    out.packets += 1;
    Ok(())
}

fn finish(mut out: Out) -> MediaResult<SplitOutput> {
    out.octx.write_trailer().map_err(|e| map_err(ErrorCode::IoError, &format!("finalize {}", out.tmp.display()), e))?;
    drop(out.octx);
    std::fs::rename(&out.tmp, &out.target).map_err(|e| MediaError::io(&format!("rename {}", out.target.display()), &e))?;
    let bytes = std::fs::metadata(&out.target).map_err(|e| MediaError::io(&format!("stat {}", out.target.display()), &e))?.len();
    Ok(SplitOutput { file: out.target, bytes, packets: out.packets })
}

/// Splits `input` (video only) into `out_dir/{name}.mp4` per range.
pub fn run_split(input_path: &Path, ranges: &[SplitRange], out_dir: &Path, cancel: &AtomicBool) -> MediaResult<Vec<SplitOutput>> {
    let mut opened = input::open(input_path)?;
    let ictx = &mut opened.ctx;
    let vi = best_video_index(ictx)
        .ok_or_else(|| MediaError::new(ErrorCode::NoVideoStream, format!("{} has no video stream", input_path.display())))?;
    // SAFETY: discard flags on an open context before reading: only video is demuxed.
    unsafe {
        for i in 0..(*ictx.as_ptr()).nb_streams as usize {
            if i != vi {
                (*(*(*ictx.as_mut_ptr()).streams.add(i))).discard = ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
    std::fs::create_dir_all(out_dir).map_err(|e| MediaError::io(&format!("mkdir {}", out_dir.display()), &e))?;
    let (ist, vtb, origin, fps) = {
        let s = ictx.stream(vi).ok_or_else(|| MediaError::new(ErrorCode::Internal, "video stream vanished"))?;
        let start = s.start_time();
        // SAFETY: the stream pointer stays valid while ictx is open (streams are never removed).
        (unsafe { s.as_ptr() }, s.time_base(), if start == ffi::AV_NOPTS_VALUE { 0 } else { start }, stream_fps(&s))
    };
    let tick = Rational::new(1, TICK);
    #[allow(clippy::cast_possible_truncation)]
    let to_ticks = |s: f64| (s * f64::from(TICK)).round() as i64;
    let bounds: Vec<(i64, i64)> = ranges.iter().map(|r| (to_ticks(r.start_sec), to_ticks(r.end_sec))).collect();
    let mut states: Vec<State> = ranges.iter().map(|_| State::Waiting).collect();
    // Packets since the last keyframe (decode order): the GOP a waiting chunk may start in.
    let mut gop: Vec<Packet> = Vec::new();
    let mut pkt = Packet::empty();
    let mut read = 0u64;
    // SAFETY: codecpar of the live source stream.
    let delay = i64::from(unsafe { (*(*ist).codecpar).video_delay }.max(0));
    let c = Ctx { ist, vtb, origin, fps, delay };
    loop {
        if cancel.load(Ordering::Relaxed) {
            for s in &states {
                if let State::Open(o) = s {
                    let _ = std::fs::remove_file(&o.tmp);
                }
            }
            return Err(MediaError::new(ErrorCode::Aborted, "split cancelled"));
        }
        let eof = matches!(input::read_packet(ictx, &mut pkt)?, ReadOutcome::Eof);
        if eof {
            for (i, st) in states.iter_mut().enumerate() {
                if matches!(st, State::Waiting) && !gop.is_empty() {
                    let first = gop[0].pts().unwrap_or(0) - origin;
                    let mut out = open_out(&c, out_dir, &ranges[i].name, first)?;
                    for p in &gop {
                        if past_end(p, &c, tick, bounds[i].1) {
                            break;
                        }
                        write(&c, &mut out, p)?;
                    }
                    *st = State::Open(Box::new(out));
                }
                if let State::Open(_) = st {
                    if let State::Open(o) = std::mem::replace(st, State::Waiting) {
                        *st = State::Done(finish(*o)?);
                    }
                }
            }
            break;
        }
        if pkt.stream() != vi {
            continue;
        }
        read += 1;
        if pkt.is_key() {
            let kt = pkt.pts().map(|p| rescale(p - origin, vtb, tick));
            for (i, st) in states.iter_mut().enumerate() {
                if !matches!(st, State::Waiting) {
                    continue;
                }
                let (s, _) = bounds[i];
                match kt {
                    Some(k) if k > s + EPS_TICKS && !gop.is_empty() => {
                        // The previous keyframe was the last one at or before the start.
                        let first = gop[0].pts().unwrap_or(0) - origin;
                        let mut out = open_out(&c, out_dir, &ranges[i].name, first)?;
                        let mut ended = false;
                        for p in &gop {
                            if past_end(p, &c, tick, bounds[i].1) {
                                ended = true;
                                break;
                            }
                            write(&c, &mut out, p)?;
                        }
                        *st = if ended { State::Done(finish(out)?) } else { State::Open(Box::new(out)) };
                    }
                    _ => {}
                }
            }
            gop.clear();
        }
        gop.push(pkt.clone());
        let key_pts = pkt.pts().filter(|_| pkt.is_key()).map(|p| rescale(p - origin, vtb, tick));
        for (i, st) in states.iter_mut().enumerate() {
            // A keyframe exactly on the start opens the chunk right away.
            if matches!(st, State::Waiting) && key_pts.is_some_and(|k| (k - bounds[i].0).abs() <= EPS_TICKS) {
                let first = pkt.pts().unwrap_or(0) - origin;
                *st = State::Open(Box::new(open_out(&c, out_dir, &ranges[i].name, first)?));
            }
            if let State::Open(_) = st {
                if past_end(&pkt, &c, tick, bounds[i].1) {
                    if let State::Open(o) = std::mem::replace(st, State::Waiting) {
                        *st = State::Done(finish(*o)?);
                    }
                } else if let State::Open(o) = st {
                    write(&c, o, &pkt)?;
                }
            }
        }
        if states.iter().all(|s| matches!(s, State::Done(_))) {
            break;
        }
    }
    tracing::debug!(packets = read, "split pass done");
    let mut outs = Vec::with_capacity(states.len());
    for (i, st) in states.into_iter().enumerate() {
        match st {
            State::Done(o) if o.packets > 0 => outs.push(o),
            State::Done(o) => {
                let _ = std::fs::remove_file(&o.file);
                return Err(MediaError::new(ErrorCode::CorruptInput, format!("chunk {} has no video packets", ranges[i].name)));
            }
            _ => return Err(MediaError::new(ErrorCode::CorruptInput, format!("chunk {} is beyond the video stream", ranges[i].name))),
        }
    }
    Ok(outs)
}

/// True once a packet is no longer needed for frames before `end` (see module doc).
fn past_end(p: &Packet, c: &Ctx, tick: Rational, end: i64) -> bool {
    match p.dts().or(p.pts()) {
        Some(d) => rescale(d - c.origin, c.vtb, tick) >= end,
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tag_round_trips() {
        let info = SplitInfo { first_pts: -1024, tb: Rational::new(1, 12800), fps: Rational::new(30000, 1001) };
        let back = parse_tag(&format_tag(&info)).unwrap();
        assert_eq!(back.first_pts, -1024);
        assert_eq!(back.tb, Rational::new(1, 12800));
        assert_eq!(back.fps, Rational::new(30000, 1001));
        assert!(parse_tag("v2 first=1/1/1 fps=1/1").is_none());
        assert!(parse_tag("garbage").is_none());
    }
}
