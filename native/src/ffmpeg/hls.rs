//! Single-decode HLS ladder: the source is decoded once; every rung gets its own
//! filter graph (rotate, scale, yuv420p), H.264 encoder and `hls` muxer; audio is
//! encoded once to AAC-LC and the same packets are muxed into every rung.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::ff::ffi;
use super::ff::{self as ff, codec, encoder, filter, format, frame, media, Dictionary, Packet, Rational};
use super::input::{self, ReadOutcome};
use super::probe::{best_video_index, display_rotation};
use super::{is_again, map_err};
use crate::codecs;
use crate::error::{ErrorCode, MediaError, MediaResult};
use crate::ladder::{self, KeyframeGrid};

/// Every output timestamp (video and audio) is expressed in this tick. One shared
/// base matters: libavformat's hls muxer compares the first packet's pts across
/// streams without rescaling, so mixed time bases would skew segment cuts.
pub(super) const TICK: i32 = 48_000;
const AUDIO_RATE: i32 = 48_000;
const AUDIO_BITRATE: usize = 128_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderPref {
    Auto,
    X264,
    Nvenc,
}

#[derive(Debug, Clone)]
pub struct RungJob {
    pub name: String,
    pub height: u32,
    pub video_bitrate: u64,
    pub maxrate: Option<u64>,
    pub bufsize: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct HlsJob {
    pub input: PathBuf,
    pub out_dir: PathBuf,
    pub rungs: Vec<RungJob>,
    pub segment_sec: f64,
    pub encoder: EncoderPref,
    pub preset: String,
    /// 0 = let each codec decide.
    pub threads: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct HlsProgress {
    pub frames_done: u64,
    pub frames_total: Option<u64>,
    pub fps: f64,
}

#[derive(Debug, Clone)]
pub struct RungOutput {
    pub name: String,
    pub dir: PathBuf,
    pub width: u32,
    pub height: u32,
    pub codecs: String,
    pub frame_rate: f64,
}

#[derive(Debug, Clone)]
pub struct HlsOutput {
    pub duration_sec: f64,
    pub encoder: String,
    pub rungs: Vec<RungOutput>,
}

pub(super) struct Rung {
    pub(super) name: String,
    pub(super) graph: filter::Graph,
    pub(super) grid: KeyframeGrid,
    pub(super) enc: encoder::Video,
    pub(super) octx: format::context::Output,
    pub(super) video_tb: Rational,
    pub(super) audio_tb: Option<Rational>,
    /// Nominal frame duration in ticks. Encoders here leave packet durations unset,
    /// and mov/fMP4 then give the last sample zero length (players drop it).
    pub(super) frame_ticks: i64,
    pub(super) out: RungOutput,
}

pub(super) fn r64(x: Rational) -> f64 {
    if x.denominator() == 0 {
        0.0
    } else {
        f64::from(x.numerator()) / f64::from(x.denominator())
    }
}

pub(super) fn rescale(v: i64, from: Rational, to: Rational) -> i64 {
    // SAFETY: pure arithmetic helper.
    unsafe { ffi::av_rescale_q(v, from.into(), to.into()) }
}

pub(super) fn extradata(ctx: *const ffi::AVCodecContext) -> Vec<u8> {
    // SAFETY: extradata/extradata_size are set together by the opened encoder.
    unsafe {
        let len = usize::try_from((*ctx).extradata_size).unwrap_or(0);
        if (*ctx).extradata.is_null() || len == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*ctx).extradata, len).to_vec()
        }
    }
}

fn rotation_filters(rotation: u32) -> &'static str {
    match rotation {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    }
}

/// What the decoder delivers, as the video graph's input needs it.
pub(super) struct GraphSource {
    pub(super) width: u32,
    pub(super) height: u32,
    /// libav pixel format number (buffer wants it, not ffmpeg-next's enum discriminant).
    pub(super) pix: i32,
    pub(super) sar: (i32, i32),
    pub(super) rotation: u32,
    /// Keep a deinterlacer in the graph (see may_be_interlaced).
    pub(super) deinterlace: bool,
}

pub(super) fn build_video_graph(src: &GraphSource, out_w: u32, out_h: u32) -> Result<filter::Graph, ff::Error> {
    let GraphSource { width: src_w, height: src_h, pix, sar, rotation, deinterlace } = *src;
    let mut graph = filter::Graph::new();
    let args = format!(
        "video_size={src_w}x{src_h}:pix_fmt={pix}:time_base=1/{TICK}:pixel_aspect={}/{}",
        sar.0, sar.1
    );
    graph.add(&filter::find("buffer").ok_or(ff::Error::FilterNotFound)?, "in", &args)?;
    graph.add(&filter::find("buffersink").ok_or(ff::Error::FilterNotFound)?, "out", "")?;
    // bwdif with deint=interlaced deinterlaces only frames flagged interlaced (field order from
    // each frame) and passes progressive ones through untouched: one output frame per input.
    // It halves the time base (field rate); settb restores 1/TICK exactly. Left out for streams
    // the demuxer knows to be progressive: even passing frames through it costs ~3% of an encode
    // (a frame of delay and a reference per frame, in every rung's graph).
    let deint = if deinterlace { format!("bwdif=mode=send_frame:parity=auto:deint=interlaced,settb=1/{TICK},") } else { String::new() };
    let spec = format!(
        "{deint}{}scale={out_w}:{out_h}:flags=bicubic,setsar=1,format=yuv420p",
        rotation_filters(rotation)
    );
    graph.output("in", 0)?.input("out", 0)?.parse(&spec)?;
    graph.validate()?;
    Ok(graph)
}

/// May the decoder's frames be interlaced? Only a stream the demuxer/parser declared progressive
/// is known not to be (an unknown field order keeps the deinterlacer in the graph).
pub(super) fn may_be_interlaced(dec: &ff::decoder::Video) -> bool {
    // SAFETY: reading a plain field of an open decoder context.
    let order = unsafe { (*dec.as_ptr()).field_order };
    order != ffi::AVFieldOrder::AV_FIELD_PROGRESSIVE
}

pub(super) struct VideoEncoderParams<'a> {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) frame_rate: Rational,
    pub(super) bitrate: u64,
    pub(super) maxrate: u64,
    pub(super) bufsize: u64,
    pub(super) gop: u32,
    pub(super) preset: &'a str,
    pub(super) threads: u32,
}

pub(super) fn open_video_encoder(name: &str, p: &VideoEncoderParams<'_>) -> Result<encoder::Video, ff::Error> {
    let codec = encoder::find_by_name(name).ok_or(ff::Error::EncoderNotFound)?;
    let mut enc = codec::context::Context::new_with_codec(codec).encoder().video()?;
    enc.set_width(p.width);
    enc.set_height(p.height);
    enc.set_format(format::Pixel::YUV420P);
    enc.set_time_base(Rational::new(1, TICK));
    enc.set_frame_rate(Some(p.frame_rate));
    enc.set_gop(p.gop);
    enc.set_max_b_frames(3);
    enc.set_aspect_ratio(Rational::new(1, 1));
    enc.set_bit_rate(usize::try_from(p.bitrate).unwrap_or(usize::MAX));
    enc.set_max_bit_rate(usize::try_from(p.maxrate).unwrap_or(usize::MAX));
    // fMP4 needs out-of-band SPS/PPS (avcC), which is also where CODECS is read from.
    enc.set_flags(codec::Flags::GLOBAL_HEADER | codec::Flags::CLOSED_GOP);
    // SAFETY: fields without setters, written before avcodec_open2.
    unsafe {
        let c = enc.as_mut_ptr();
        (*c).rc_buffer_size = i32::try_from(p.bufsize).unwrap_or(i32::MAX);
        (*c).keyint_min = i32::try_from(p.gop).unwrap_or(i32::MAX);
        (*c).thread_count = i32::try_from(p.threads).unwrap_or(0);
    }
    let mut opts = Dictionary::new();
    opts.set("profile", "high");
    // Forced keyframes (the segment grid) must be IDRs so every segment is closed.
    opts.set("forced-idr", "1");
    if name == "libx264" {
        opts.set("preset", p.preset);
        // Scene cuts would add keyframes off the grid; the grid alone decides.
        opts.set("x264-params", "scenecut=0:open-gop=0");
    } else {
        opts.set("preset", "p4");
        opts.set("rc", "vbr");
        opts.set("no-scenecut", "1");
        opts.set("strict_gop", "1");
    }
    enc.open_as_with(codec, opts)
}

pub(super) struct AudioChain {
    pub(super) stream: usize,
    pub(super) dec: ff::decoder::Audio,
    pub(super) graph: filter::Graph,
    pub(super) enc: encoder::Audio,
    pub(super) origin: i64,
    pub(super) codecs: String,
}

pub(super) fn build_audio(ictx: &ff::format::context::Input, index: usize, origin_sec: f64, threads: u32) -> MediaResult<AudioChain> {
    let stream = ictx.stream(index).ok_or_else(|| MediaError::new(ErrorCode::Internal, "audio stream vanished"))?;
    let tb = stream.time_base();
    let mut ctx = codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| map_err(ErrorCode::UnsupportedCodec, "audio decoder params", e))?;
    // SAFETY: setting packet time base and threads before open.
    unsafe {
        (*ctx.as_mut_ptr()).pkt_timebase = tb.into();
        (*ctx.as_mut_ptr()).thread_count = i32::try_from(threads).unwrap_or(0);
    }
    let dec = ctx.decoder().audio().map_err(|e| {
        map_err(ErrorCode::UnsupportedCodec, &format!("audio decoder for {}", stream.parameters().id().name()), e)
    })?;

    let aac = encoder::find_by_name("aac").ok_or_else(|| MediaError::new(ErrorCode::EncoderError, "aac encoder missing"))?;
    let mut enc = codec::context::Context::new_with_codec(aac)
        .encoder()
        .audio()
        .map_err(|e| map_err(ErrorCode::EncoderError, "aac context", e))?;
    enc.set_rate(AUDIO_RATE);
    enc.set_channel_layout(ff::ChannelLayout::STEREO);
    enc.set_channels(2);
    enc.set_format(format::Sample::F32(format::sample::Type::Planar));
    enc.set_bit_rate(AUDIO_BITRATE);
    enc.set_time_base(Rational::new(1, TICK));
    enc.set_flags(codec::Flags::GLOBAL_HEADER);
    let enc = enc.open_as(aac).map_err(|e| map_err(ErrorCode::EncoderError, "open aac", e))?;

    // abuffer needs an explicit layout; fall back to the default for the channel count.
    // SAFETY: describing/initialising a channel layout into local storage.
    let layout = unsafe {
        let par = stream.parameters();
        let mut ch = (*par.as_ptr()).ch_layout;
        let mut tmp: ffi::AVChannelLayout = std::mem::zeroed();
        if ch.order == ffi::AVChannelOrder::AV_CHANNEL_ORDER_UNSPEC {
            ffi::av_channel_layout_default(&mut tmp, ch.nb_channels.max(1));
            ch = tmp;
        }
        let mut buf = [0 as std::os::raw::c_char; 128];
        ffi::av_channel_layout_describe(&ch, buf.as_mut_ptr(), buf.len());
        super::cstr(buf.as_ptr()).unwrap_or_else(|| "stereo".into())
    };
    let mut graph = filter::Graph::new();
    let args = format!(
        "time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout={}",
        tb.numerator(),
        tb.denominator(),
        dec.rate(),
        dec.format().name(),
        layout
    );
    let build = |graph: &mut filter::Graph| -> Result<(), ff::Error> {
        graph.add(&filter::find("abuffer").ok_or(ff::Error::FilterNotFound)?, "in", &args)?;
        graph.add(&filter::find("abuffersink").ok_or(ff::Error::FilterNotFound)?, "out", "")?;
        // aformat to stereo makes swresample downmix surround with its standard matrix.
        graph.output("in", 0)?.input("out", 0)?.parse(&format!(
            "aresample={AUDIO_RATE},aformat=sample_fmts=fltp:sample_rates={AUDIO_RATE}:channel_layouts=stereo"
        ))?;
        graph.validate()?;
        Ok(())
    };
    build(&mut graph).map_err(|e| map_err(ErrorCode::Internal, &format!("audio graph ({args})"), e))?;
    if let Some(mut sink) = graph.get("out") {
        sink.sink().set_frame_size(enc.frame_size());
    }
    #[allow(clippy::cast_possible_truncation)]
    let origin = (origin_sec * f64::from(tb.denominator()) / f64::from(tb.numerator())).round() as i64;
    let codecs = codecs::mp4a_from_extradata(&extradata(unsafe { enc.as_ptr() })).unwrap_or_else(|| "mp4a.40.2".into());
    Ok(AudioChain { stream: index, dec, graph, enc, origin, codecs })
}

pub(super) fn write_packet(octx: &mut format::context::Output, pkt: &Packet, name: &str) -> MediaResult<()> {
    pkt.write_interleaved(octx).map_err(|e| match e {
        ff::Error::Other { errno } if errno == libc::ENOSPC || errno == libc::EIO || errno == libc::EACCES => {
            map_err(ErrorCode::IoError, &format!("write {name}"), e)
        }
        _ => map_err(ErrorCode::Internal, &format!("mux {name}"), e),
    })
}

/// Writes a packet the rung's encoder returned to the rung's muxer.
fn mux_encoded(rung: &mut Rung, pkt: &mut Packet) -> MediaResult<()> {
    pkt.set_stream(0);
    if pkt.duration() <= 0 {
        pkt.set_duration(rung.frame_ticks);
    }
    pkt.rescale_ts(Rational::new(1, TICK), rung.video_tb);
    write_packet(&mut rung.octx, pkt, &rung.name)
}

/// Drains one rung's encoder into its muxer.
pub(super) fn drain_video_encoder(rung: &mut Rung, pkt: &mut Packet) -> MediaResult<()> {
    loop {
        match rung.enc.receive_packet(pkt) {
            Ok(()) => mux_encoded(rung, pkt)?,
            Err(ff::Error::Eof) => return Ok(()),
            Err(e) if is_again(&e) => return Ok(()),
            Err(e) => return Err(map_err(ErrorCode::EncoderError, &format!("encode {}", rung.name), e)),
        }
    }
}

/// Pulls the next frame out of a graph's `out` sink into `frame`. buffersink moves a frame in
/// without releasing what `frame` held (av_buffersink_get_frame wants a clean frame), so the
/// previous one is released first: without this every filtered frame stayed allocated until the
/// job ended (3.4 GB for a 20 s 1080p ladder, and the page faults cost ~10% more CPU than ffmpeg).
pub(super) fn next_filtered(graph: &mut filter::Graph, frame: &mut ff::Frame) -> Option<Result<(), ff::Error>> {
    // SAFETY: unref on a frame we own; it stays a valid, empty frame.
    unsafe { ffi::av_frame_unref(frame.as_mut_ptr()) };
    graph.get("out").map(|mut c| c.sink().frame(frame))
}

/// Pulls filtered frames for one rung, stamps the grid keyframe decision, encodes.
fn drain_video_graph(rung: &mut Rung, filtered: &mut frame::Video, pkt: &mut Packet) -> MediaResult<()> {
    loop {
        let got = next_filtered(&mut rung.graph, filtered);
        match got {
            Some(Ok(())) => {}
            Some(Err(ff::Error::Eof)) | None => return Ok(()),
            Some(Err(e)) if is_again(&e) => return Ok(()),
            Some(Err(e)) => return Err(map_err(ErrorCode::Internal, &format!("filter {}", rung.name), e)),
        }
        // Always overwrite: decoded frames keep the source's picture type, which
        // libx264 would otherwise honour as extra (off-grid) keyframes.
        let force = filtered.pts().is_some_and(|p| rung.grid.should_force(p));
        filtered.set_kind(if force { ff::picture::Type::I } else { ff::picture::Type::None });
        rung.enc
            .send_frame(filtered)
            .map_err(|e| map_err(ErrorCode::EncoderError, &format!("encode {}", rung.name), e))?;
        drain_video_encoder(rung, pkt)?;
    }
}

pub(super) fn feed_rungs(rungs: &mut [Rung], frame: Option<&frame::Video>, filtered: &mut frame::Video, pkt: &mut Packet) -> MediaResult<()> {
    for rung in rungs.iter_mut() {
        let mut src = rung.graph.get("in").ok_or_else(|| MediaError::new(ErrorCode::Internal, "graph input missing"))?;
        // write_frame (not add_frame) takes a new reference, so one decoded frame feeds every rung.
        let ret = unsafe {
            // SAFETY: src is a live buffersrc; a null frame signals EOF.
            ffi::av_buffersrc_write_frame(src.as_mut_ptr(), frame.map_or(std::ptr::null(), |f| f.as_ptr()))
        };
        if ret < 0 {
            return Err(map_err(ErrorCode::CorruptInput, &format!("filter input {}", rung.name), ff::Error::from(ret)));
        }
        drain_video_graph(rung, filtered, pkt)?;
    }
    Ok(())
}

fn drain_audio(audio: &mut AudioChain, rungs: &mut [Rung], aframe: &mut frame::Audio, afilt: &mut frame::Audio, pkt: &mut Packet, eof: bool) -> MediaResult<()> {
    loop {
        match audio.dec.receive_frame(aframe) {
            Ok(()) => {
                let Some(ts) = aframe.timestamp() else { continue };
                let rel = ts - audio.origin;
                #[allow(clippy::cast_possible_wrap)]
                if rel + aframe.samples() as i64 <= 0 {
                    continue; // audio before the first video frame is not shown
                }
                aframe.set_pts(Some(rel));
                if let Some(mut src) = audio.graph.get("in") {
                    src.source().add(aframe).map_err(|e| map_err(ErrorCode::CorruptInput, "audio filter input", e))?;
                }
            }
            Err(ff::Error::Eof) => break,
            Err(e) if is_again(&e) => break,
            // A damaged audio frame is dropped like the ffmpeg CLI does; video decides validity.
            Err(ff::Error::InvalidData) => continue,
            Err(e) => return Err(map_err(ErrorCode::CorruptInput, "audio decode", e)),
        }
    }
    if eof {
        if let Some(mut src) = audio.graph.get("in") {
            src.source().flush().map_err(|e| map_err(ErrorCode::Internal, "audio filter flush", e))?;
        }
    }
    loop {
        let got = next_filtered(&mut audio.graph, afilt);
        match got {
            Some(Ok(())) => {
                audio.enc.send_frame(afilt).map_err(|e| map_err(ErrorCode::EncoderError, "encode aac", e))?;
            }
            Some(Err(e)) if is_again(&e) => break,
            Some(Err(ff::Error::Eof)) | None => break,
            Some(Err(e)) => return Err(map_err(ErrorCode::Internal, "audio filter", e)),
        }
        drain_audio_encoder(audio, rungs, pkt)?;
    }
    if eof {
        audio.enc.send_eof().map_err(|e| map_err(ErrorCode::EncoderError, "flush aac", e))?;
    }
    drain_audio_encoder(audio, rungs, pkt)
}

fn drain_audio_encoder(audio: &mut AudioChain, rungs: &mut [Rung], pkt: &mut Packet) -> MediaResult<()> {
    loop {
        match audio.enc.receive_packet(pkt) {
            Ok(()) => {
                for rung in rungs.iter_mut() {
                    let Some(atb) = rung.audio_tb else { continue };
                    let mut copy = pkt.clone();
                    copy.set_stream(1);
                    copy.rescale_ts(Rational::new(1, TICK), atb);
                    write_packet(&mut rung.octx, &copy, &rung.name)?;
                }
            }
            Err(ff::Error::Eof) => return Ok(()),
            Err(e) if is_again(&e) => return Ok(()),
            Err(e) => return Err(map_err(ErrorCode::EncoderError, "encode aac", e)),
        }
    }
}

pub(super) fn hls_options(dir: &Path, segment_sec: f64) -> Dictionary<'static> {
    let mut o = Dictionary::new();
    o.set("hls_time", &format!("{segment_sec}"));
    o.set("hls_playlist_type", "vod");
    o.set("hls_list_size", "0");
    o.set("hls_segment_type", "fmp4");
    o.set("hls_fmp4_init_filename", "init.mp4");
    o.set("hls_segment_filename", &dir.join("seg_%05d.m4s").to_string_lossy());
    o.set("hls_flags", "independent_segments");
    o
}

pub fn run_hls(job: &HlsJob, cancel: &AtomicBool, progress: &mut dyn FnMut(HlsProgress)) -> MediaResult<HlsOutput> {
    let mut opened = input::open(&job.input)?;
    let ictx = &mut opened.ctx;
    let vi = best_video_index(ictx)
        .ok_or_else(|| MediaError::new(ErrorCode::NoVideoStream, format!("{} has no video stream", job.input.display())))?;
    let ai = ictx.streams().find(|s| s.parameters().medium() == media::Type::Audio).map(|s| s.index());

    let vstream = ictx.stream(vi).ok_or_else(|| MediaError::new(ErrorCode::Internal, "video stream vanished"))?;
    let vtb = vstream.time_base();
    let rotation = display_rotation(&vstream);
    let fps = {
        let avg = vstream.avg_frame_rate();
        if avg.numerator() > 0 && avg.denominator() > 0 { avg } else { vstream.rate() }
    };
    let fps = if fps.numerator() > 0 && fps.denominator() > 0 { fps } else { Rational::new(25, 1) };
    #[allow(clippy::cast_sign_loss)]
    let frames_total = if vstream.frames() > 0 {
        Some(vstream.frames() as u64)
    } else if ictx.duration() > 0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        Some((ictx.duration() as f64 / f64::from(ffi::AV_TIME_BASE) * r64(fps)).round() as u64)
    } else {
        None
    };
    // FRAME-RATE must be the *maximum* rate (RFC 8216); for VFR sources r_frame_rate
    // is that, unless it is a bogus timebase-derived value (e.g. 90000 in some TS).
    let max_fps = {
        let (r, avg) = (r64(vstream.rate()), r64(fps));
        if r > avg && r <= avg * 2.5 && r <= 240.0 { r } else { avg }
    };
    let start = vstream.start_time();
    let origin_ts = if start == ffi::AV_NOPTS_VALUE { 0 } else { start };
    #[allow(clippy::cast_precision_loss)]
    let origin_sec = origin_ts as f64 * r64(vtb);

    let mut vctx = codec::context::Context::from_parameters(vstream.parameters())
        .map_err(|e| map_err(ErrorCode::UnsupportedCodec, "video decoder params", e))?;
    // SAFETY: decoder fields set before open.
    unsafe {
        (*vctx.as_mut_ptr()).pkt_timebase = vtb.into();
        (*vctx.as_mut_ptr()).thread_count = i32::try_from(job.threads).unwrap_or(0);
    }
    let mut vdec = vctx.decoder().video().map_err(|e| {
        map_err(ErrorCode::UnsupportedCodec, &format!("video decoder for {}", vstream.parameters().id().name()), e)
    })?;
    let (src_w, src_h) = (vdec.width(), vdec.height());
    if src_w == 0 || src_h == 0 {
        return Err(MediaError::new(ErrorCode::CorruptInput, "video stream has no dimensions"));
    }
    let sar = {
        let a = vdec.aspect_ratio();
        if a.numerator() > 0 && a.denominator() > 0 { (a.numerator(), a.denominator()) } else { (1, 1) }
    };
    let (disp_w, disp_h) = ladder::display_size(src_w, src_h, sar, rotation);

    let mut audio = match ai {
        Some(i) => Some(build_audio(ictx, i, origin_sec, job.threads)?),
        None => None,
    };

    let heights: Vec<u32> = job.rungs.iter().map(|r| r.height).collect();
    let chosen = ladder::select_rungs(&heights, disp_h);
    if chosen.is_empty() {
        return Err(MediaError::new(ErrorCode::Internal, "no renditions requested"));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let gop = ((job.segment_sec * r64(fps)).ceil() as u32).max(1) * 2;
    // buffer wants the libav pixel format number, not ffmpeg-next's enum discriminant.
    let pix = ffi::AVPixelFormat::from(vdec.format()) as i32;
    let mut encoder_name = match job.encoder {
        EncoderPref::Nvenc | EncoderPref::Auto => "h264_nvenc",
        EncoderPref::X264 => "libx264",
    };
    let mut rungs = Vec::with_capacity(chosen.len());
    for &i in &chosen {
        let spec = &job.rungs[i];
        let (w, h) = ladder::rung_size(disp_w, disp_h, spec.height);
        let dir = job.out_dir.join(&spec.name);
        std::fs::create_dir_all(&dir).map_err(|e| MediaError::io(&format!("mkdir {}", dir.display()), &e))?;
        let src = GraphSource { width: src_w, height: src_h, pix, sar, rotation, deinterlace: may_be_interlaced(&vdec) };
        let graph = build_video_graph(&src, w, h).map_err(|e| map_err(ErrorCode::Internal, &format!("video graph {}", spec.name), e))?;
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
            threads: job.threads,
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
        let codecs_v = codecs::avc1_from_extradata(&extradata(unsafe { enc.as_ptr() }))
            .ok_or_else(|| MediaError::new(ErrorCode::EncoderError, "encoder produced no SPS"))?;

        let playlist = dir.join("index.m3u8");
        let mut octx = format::output_as(&playlist, "hls")
            .map_err(|e| map_err(ErrorCode::IoError, &format!("create {}", playlist.display()), e))?;
        {
            let mut ost = octx.add_stream(encoder::find_by_name(encoder_name))
                .map_err(|e| map_err(ErrorCode::Internal, "add video stream", e))?;
            ost.set_parameters(&enc);
            ost.set_time_base(Rational::new(1, TICK));
        }
        if let Some(a) = audio.as_ref() {
            let mut ost = octx.add_stream(encoder::find_by_name("aac"))
                .map_err(|e| map_err(ErrorCode::Internal, "add audio stream", e))?;
            ost.set_parameters(&a.enc);
            ost.set_time_base(Rational::new(1, TICK));
        }
        octx.write_header_with(hls_options(&dir, job.segment_sec))
            .map_err(|e| map_err(ErrorCode::IoError, &format!("hls header {}", spec.name), e))?;
        let video_tb = octx.stream(0).map(|s| s.time_base()).unwrap_or(Rational::new(1, TICK));
        let audio_tb = audio.as_ref().and_then(|_| octx.stream(1).map(|s| s.time_base()));
        let codecs = match audio.as_ref() {
            Some(a) => format!("{codecs_v},{}", a.codecs),
            None => codecs_v,
        };
        rungs.push(Rung {
            name: spec.name.clone(),
            graph,
            grid: KeyframeGrid::new(job.segment_sec, TICK.unsigned_abs()),
            enc,
            octx,
            video_tb,
            audio_tb,
            frame_ticks: rescale(1, fps.invert(), Rational::new(1, TICK)).max(1),
            out: RungOutput { name: spec.name.clone(), dir, width: w, height: h, codecs, frame_rate: max_fps },
        });
    }
    tracing::info!(encoder = encoder_name, rungs = rungs.len(), "hls ladder opened");

    let started = Instant::now();
    let mut last_report = started;
    let mut frames_done = 0u64;
    let mut last_pts: Option<i64> = None;
    let mut decode_errors = 0u32;
    let mut pkt = Packet::empty();
    let mut out_pkt = Packet::empty();
    let mut audio_pkt = Packet::empty();
    let mut vframe = frame::Video::empty();
    let mut filtered = frame::Video::empty();
    let mut aframe = frame::Audio::empty();
    let mut afilt = frame::Audio::empty();
    let tick = Rational::new(1, TICK);
    let frame_ticks = rescale(1, fps.invert(), tick).max(1);

    let mut handle_frames = |vdec: &mut ff::decoder::Video,
                             rungs: &mut Vec<Rung>,
                             frames_done: &mut u64,
                             last_pts: &mut Option<i64>|
     -> MediaResult<()> {
        loop {
            match vdec.receive_frame(&mut vframe) {
                Ok(()) => {}
                Err(ff::Error::Eof) => return Ok(()),
                Err(e) if is_again(&e) => return Ok(()),
                Err(e) => return Err(map_err(ErrorCode::CorruptInput, "video decode", e)),
            }
            let rel = match vframe.timestamp() {
                Some(ts) => rescale(ts - origin_ts, vtb, tick),
                None => last_pts.map_or(0, |p| p + frame_ticks),
            };
            // Encoders and muxers need strictly increasing pts; repair rather than fail.
            let rel = match *last_pts {
                Some(p) if rel <= p => p + 1,
                _ => rel.max(0),
            };
            *last_pts = Some(rel);
            vframe.set_pts(Some(rel));
            *frames_done += 1;
            feed_rungs(rungs, Some(&vframe), &mut filtered, &mut out_pkt)?;
        }
    };

    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::new(ErrorCode::Aborted, "transcode cancelled"));
        }
        match input::read_packet(ictx, &mut pkt)? {
            ReadOutcome::Eof => break,
            ReadOutcome::Packet => {}
        }
        if pkt.stream() == vi {
            match vdec.send_packet(&pkt) {
                Ok(()) => {}
                Err(ff::Error::InvalidData) => decode_errors += 1,
                Err(e) if is_again(&e) => {}
                Err(e) => return Err(map_err(ErrorCode::CorruptInput, "video decode", e)),
            }
            handle_frames(&mut vdec, &mut rungs, &mut frames_done, &mut last_pts)?;
        } else if let Some(a) = audio.as_mut().filter(|a| a.stream == pkt.stream()) {
            match a.dec.send_packet(&pkt) {
                Ok(()) | Err(ff::Error::InvalidData) => {}
                Err(e) if is_again(&e) => {}
                Err(e) => return Err(map_err(ErrorCode::CorruptInput, "audio decode", e)),
            }
            drain_audio(a, &mut rungs, &mut aframe, &mut afilt, &mut audio_pkt, false)?;
        }
        if last_report.elapsed().as_millis() >= 250 {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            progress(HlsProgress { frames_done, frames_total, fps: if secs > 0.0 { frames_done as f64 / secs } else { 0.0 } });
        }
    }

    vdec.send_eof().map_err(|e| map_err(ErrorCode::CorruptInput, "video decoder flush", e))?;
    handle_frames(&mut vdec, &mut rungs, &mut frames_done, &mut last_pts)?;
    if frames_done == 0 {
        return Err(MediaError::new(
            ErrorCode::CorruptInput,
            format!("no decodable video frames ({decode_errors} packets rejected by the decoder)"),
        ));
    }
    if let Some(declared) = frames_total.filter(|_| opened_declares_frames(vi, ictx)) {
        if frames_done * 10 < declared * 9 {
            return Err(MediaError::new(
                ErrorCode::CorruptInput,
                format!("truncated: {frames_done} of {declared} declared video frames decoded"),
            ));
        }
    }
    for rung in rungs.iter_mut() {
        let mut dummy = frame::Video::empty();
        let mut p = Packet::empty();
        // Null frame = EOF on this rung's graph, then flush its encoder.
        feed_rungs(std::slice::from_mut(rung), None, &mut dummy, &mut p)?;
        rung.enc.send_eof().map_err(|e| map_err(ErrorCode::EncoderError, "encoder flush", e))?;
        drain_video_encoder(rung, &mut p)?;
    }
    if let Some(a) = audio.as_mut() {
        a.dec.send_eof().map_err(|e| map_err(ErrorCode::CorruptInput, "audio decoder flush", e))?;
        drain_audio(a, &mut rungs, &mut aframe, &mut afilt, &mut audio_pkt, true)?;
    }
    for rung in rungs.iter_mut() {
        rung.octx.write_trailer().map_err(|e| map_err(ErrorCode::IoError, &format!("finalize {}", rung.name), e))?;
    }
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    progress(HlsProgress { frames_done, frames_total: Some(frames_done), fps: if secs > 0.0 { frames_done as f64 / secs } else { 0.0 } });
    #[allow(clippy::cast_precision_loss)]
    let duration_sec = (last_pts.unwrap_or(0) + frame_ticks) as f64 / f64::from(TICK);
    Ok(HlsOutput { duration_sec, encoder: encoder_name.to_string(), rungs: rungs.into_iter().map(|r| r.out).collect() })
}

fn opened_declares_frames(vi: usize, ictx: &ff::format::context::Input) -> bool {
    ictx.stream(vi).is_some_and(|s| s.frames() > 0)
}
