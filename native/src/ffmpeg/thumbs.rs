//! Poster JPEG and storyboard sprite: frames go through the same rotation + SAR
//! correction as the renditions (display aspect), then libavcodec's MJPEG encoder.
//! With a storyboard, one sequential decode serves both the tiles and the poster.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::ff::ffi;
use super::ff::{self as ff, codec, encoder, filter, format, frame, Packet, Rational};
use super::input::{self, ReadOutcome};
use super::probe::{best_video_index, display_rotation};
use super::{is_again, map_err};
use crate::error::{ErrorCode, MediaError, MediaResult};
use crate::ladder;

#[derive(Debug, Clone)]
pub struct ThumbJob {
    pub input: PathBuf,
    pub out_dir: PathBuf,
    pub poster_at_sec: Option<f64>,
    /// (intervalSec, columns, tileWidth)
    pub storyboard: Option<(f64, u32, u32)>,
    /// Poster is scaled down to fit this height (display aspect kept).
    pub poster_max_height: u32,
}

#[derive(Debug, Clone)]
pub struct ThumbOutput {
    pub poster_size: (u32, u32),
    pub duration_sec: f64,
    /// (tiles, tile width, tile height, columns)
    pub storyboard: Option<(u32, u32, u32, u32)>,
}

struct Scaler {
    graph: filter::Graph,
    w: u32,
    h: u32,
}

fn rotation_filters(rotation: u32) -> &'static str {
    match rotation {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    }
}

fn scaler(src: (u32, u32), pix: i32, sar: (i32, i32), rotation: u32, tb: Rational, out: (u32, u32)) -> Result<Scaler, ff::Error> {
    let mut graph = filter::Graph::new();
    let args = format!(
        "video_size={}x{}:pix_fmt={pix}:time_base={}/{}:pixel_aspect={}/{}",
        src.0,
        src.1,
        tb.numerator(),
        tb.denominator().max(1),
        sar.0,
        sar.1
    );
    graph.add(&filter::find("buffer").ok_or(ff::Error::FilterNotFound)?, "in", &args)?;
    graph.add(&filter::find("buffersink").ok_or(ff::Error::FilterNotFound)?, "out", "")?;
    let spec = format!("{}scale={}:{}:flags=bicubic,setsar=1,format=yuvj420p", rotation_filters(rotation), out.0, out.1);
    graph.output("in", 0)?.input("out", 0)?.parse(&spec)?;
    graph.validate()?;
    Ok(Scaler { graph, w: out.0, h: out.1 })
}

fn scale(s: &mut Scaler, f: &frame::Video) -> MediaResult<frame::Video> {
    let mut src = s.graph.get("in").ok_or_else(|| MediaError::new(ErrorCode::Internal, "graph input missing"))?;
    // SAFETY: live buffersrc; write_frame takes its own reference.
    let ret = unsafe { ffi::av_buffersrc_write_frame(src.as_mut_ptr(), f.as_ptr()) };
    if ret < 0 {
        return Err(map_err(ErrorCode::Internal, "thumbnail filter input", ff::Error::from(ret)));
    }
    let mut out = frame::Video::empty();
    match s.graph.get("out").map(|mut c| c.sink().frame(&mut out)) {
        Some(Ok(())) => Ok(out),
        Some(Err(e)) => Err(map_err(ErrorCode::Internal, "thumbnail filter", e)),
        None => Err(MediaError::new(ErrorCode::Internal, "graph output missing")),
    }
}

fn write_jpeg(f: &frame::Video, path: &Path) -> MediaResult<()> {
    let mjpeg = encoder::find(codec::Id::MJPEG).ok_or_else(|| MediaError::new(ErrorCode::EncoderError, "mjpeg encoder missing"))?;
    let mut enc = codec::context::Context::new_with_codec(mjpeg)
        .encoder()
        .video()
        .map_err(|e| map_err(ErrorCode::EncoderError, "mjpeg context", e))?;
    enc.set_width(f.width());
    enc.set_height(f.height());
    enc.set_format(format::Pixel::YUVJ420P);
    enc.set_time_base(Rational::new(1, 25));
    enc.set_flags(codec::Flags::QSCALE);
    // q:v 3 (lambda units): visually clean, ~1/10 of the raw size.
    enc.set_global_quality(3 * 118);
    let mut enc = enc.open_as(mjpeg).map_err(|e| map_err(ErrorCode::EncoderError, "open mjpeg", e))?;
    let mut frame = f.clone();
    frame.set_pts(Some(0));
    // SAFETY: fixed quality per frame, as the CLI's -q:v does.
    unsafe { (*frame.as_mut_ptr()).quality = 3 * 118 };
    enc.send_frame(&frame).map_err(|e| map_err(ErrorCode::EncoderError, "encode jpeg", e))?;
    enc.send_eof().map_err(|e| map_err(ErrorCode::EncoderError, "flush jpeg", e))?;
    let mut pkt = Packet::empty();
    enc.receive_packet(&mut pkt).map_err(|e| map_err(ErrorCode::EncoderError, "encode jpeg", e))?;
    let data = pkt.data().ok_or_else(|| MediaError::new(ErrorCode::EncoderError, "empty jpeg"))?;
    let tmp = path.with_extension("jpg.tmp");
    std::fs::write(&tmp, data).map_err(|e| MediaError::io(&format!("write {}", tmp.display()), &e))?;
    std::fs::rename(&tmp, path).map_err(|e| MediaError::io(&format!("rename {}", path.display()), &e))
}

/// Copies a yuvj420p tile into the sprite at (x, y) (even coordinates).
fn blit(dst: &mut frame::Video, src: &frame::Video, x: u32, y: u32) {
    for plane in 0..3 {
        let (px, py, w, h) = if plane == 0 { (x, y, src.width(), src.height()) } else { (x / 2, y / 2, src.width() / 2, src.height() / 2) };
        let (ss, ds) = (src.stride(plane), dst.stride(plane));
        let (w, px, py) = (w as usize, px as usize, py as usize);
        for row in 0..h as usize {
            let s = &src.data(plane)[row * ss..row * ss + w];
            let off = (py + row) * ds + px;
            dst.data_mut(plane)[off..off + w].copy_from_slice(s);
        }
    }
}

fn even(v: f64) -> u32 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let v = ((v / 2.0).round() as u32) * 2;
    v.max(2)
}

pub fn run_thumbnails(job: &ThumbJob, cancel: &AtomicBool) -> MediaResult<ThumbOutput> {
    let mut opened = input::open(&job.input)?;
    let ictx = &mut opened.ctx;
    let vi = best_video_index(ictx)
        .ok_or_else(|| MediaError::new(ErrorCode::NoVideoStream, format!("{} has no video stream", job.input.display())))?;
    let (vtb, origin, rotation, params, stream_dur) = {
        let s = ictx.stream(vi).ok_or_else(|| MediaError::new(ErrorCode::Internal, "video stream vanished"))?;
        let st = s.start_time();
        #[allow(clippy::cast_precision_loss)]
        let dur = if s.duration() > 0 { s.duration() as f64 * super::hls::r64(s.time_base()) } else { 0.0 };
        (s.time_base(), if st == ffi::AV_NOPTS_VALUE { 0 } else { st }, display_rotation(&s), s.parameters(), dur)
    };
    #[allow(clippy::cast_precision_loss)]
    let duration = if stream_dur > 0.0 { stream_dur } else { (ictx.duration().max(0) as f64) / f64::from(ffi::AV_TIME_BASE) };
    // SAFETY: discard flags on an open context before reading.
    unsafe {
        for i in 0..(*ictx.as_ptr()).nb_streams as usize {
            if i != vi {
                (*(*(*ictx.as_mut_ptr()).streams.add(i))).discard = ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
    let mut vctx = codec::context::Context::from_parameters(params).map_err(|e| map_err(ErrorCode::UnsupportedCodec, "video decoder params", e))?;
    // SAFETY: decoder field before open.
    unsafe { (*vctx.as_mut_ptr()).pkt_timebase = vtb.into() };
    let mut dec = vctx.decoder().video().map_err(|e| map_err(ErrorCode::UnsupportedCodec, "video decoder", e))?;
    let (sw, sh) = (dec.width(), dec.height());
    let sar = {
        let a = dec.aspect_ratio();
        if a.numerator() > 0 && a.denominator() > 0 { (a.numerator(), a.denominator()) } else { (1, 1) }
    };
    let (dw, dh) = ladder::display_size(sw, sh, sar, rotation);
    let pix = ffi::AVPixelFormat::from(dec.format()) as i32;
    let ph = dh.min(job.poster_max_height);
    let poster_size = (even(f64::from(ph) * f64::from(dw) / f64::from(dh.max(1))), even(f64::from(ph)));
    let mut poster_scaler = scaler((sw, sh), pix, sar, rotation, vtb, poster_size).map_err(|e| map_err(ErrorCode::Internal, "poster graph", e))?;
    let poster_at = job.poster_at_sec.unwrap_or((duration * 0.1).min(10.0)).clamp(0.0, (duration - 0.001).max(0.0));
    let poster_path = job.out_dir.join("poster.jpg");

    let mut board = match job.storyboard {
        Some((interval, columns, tile_w)) => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let tiles = ((duration / interval).ceil() as u32).max(1);
            let columns = columns.clamp(1, tiles);
            let rows = tiles.div_ceil(columns);
            let tw = even(f64::from(tile_w));
            let th = even(f64::from(tw) * f64::from(dh) / f64::from(dw.max(1)));
            let sc = scaler((sw, sh), pix, sar, rotation, vtb, (tw, th)).map_err(|e| map_err(ErrorCode::Internal, "storyboard graph", e))?;
            let mut sprite = frame::Video::new(format::Pixel::YUVJ420P, tw * columns, th * rows);
            for plane in 0..3 {
                sprite.data_mut(plane).fill(if plane == 0 { 0 } else { 128 });
            }
            Some((interval, columns, tiles, sc, sprite, 0u32))
        }
        None => None,
    };
    if board.is_none() && poster_at > 0.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let target = (origin as f64 * super::hls::r64(vtb) * 1e6 + poster_at * 1e6).round() as i64;
        ictx.seek(target, ..target).map_err(|e| map_err(ErrorCode::CorruptInput, "seek", e))?;
    }
    let mut poster_done = false;
    let mut last_frame: Option<frame::Video> = None;
    let mut pkt = Packet::empty();
    let mut f = frame::Video::empty();
    let mut eof = false;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::new(ErrorCode::Aborted, "thumbnails cancelled"));
        }
        let board_done = board.as_ref().is_none_or(|b| b.5 >= b.2);
        if poster_done && board_done {
            break;
        }
        if !eof {
            match input::read_packet(ictx, &mut pkt)? {
                ReadOutcome::Eof => {
                    eof = true;
                    dec.send_eof().map_err(|e| map_err(ErrorCode::CorruptInput, "decoder flush", e))?;
                }
                ReadOutcome::Packet if pkt.stream() != vi => continue,
                ReadOutcome::Packet => match dec.send_packet(&pkt) {
                    Ok(()) | Err(ff::Error::InvalidData) => {}
                    Err(e) if is_again(&e) => {}
                    Err(e) => return Err(map_err(ErrorCode::CorruptInput, "video decode", e)),
                },
            }
        }
        let mut drained = false;
        loop {
            match dec.receive_frame(&mut f) {
                Ok(()) => {}
                Err(ff::Error::Eof) => {
                    drained = true;
                    break;
                }
                Err(e) if is_again(&e) => break,
                Err(e) => return Err(map_err(ErrorCode::CorruptInput, "video decode", e)),
            }
            #[allow(clippy::cast_precision_loss)]
            let t = f.timestamp().map_or(0.0, |ts| (ts - origin) as f64 * super::hls::r64(vtb));
            if !poster_done && t + 1e-6 >= poster_at {
                write_jpeg(&scale(&mut poster_scaler, &f)?, &poster_path)?;
                poster_done = true;
            }
            if let Some((interval, columns, tiles, sc, sprite, next)) = board.as_mut() {
                while *next < *tiles && t + 1e-6 >= f64::from(*next) * *interval {
                    let tile = scale(sc, &f)?;
                    let (x, y) = ((*next % *columns) * sc.w, (*next / *columns) * sc.h);
                    blit(sprite, &tile, x, y);
                    *next += 1;
                    // A tile whose time has already passed (long frame gap) reuses this frame.
                    if t + 1e-6 < f64::from(*next) * *interval {
                        break;
                    }
                }
            }
            last_frame = Some(f.clone());
        }
        if drained {
            break;
        }
    }
    if !poster_done {
        let lf = last_frame.as_ref().ok_or_else(|| MediaError::new(ErrorCode::CorruptInput, "no decodable video frame"))?;
        write_jpeg(&scale(&mut poster_scaler, lf)?, &poster_path)?;
    }
    let storyboard = match board {
        Some((_, columns, tiles, sc, sprite, done)) => {
            let path = job.out_dir.join("storyboard.jpg");
            write_jpeg(&sprite, &path)?;
            let _ = done;
            Some((tiles, sc.w, sc.h, columns))
        }
        None => None,
    };
    Ok(ThumbOutput { poster_size, duration_sec: duration, storyboard })
}
