//! The audio rendition of the chunked pipeline: one audio stream decoded and
//! encoded ONCE for the whole source (AAC-LC, stereo, 48 kHz, surround downmixed)
//! into an fMP4 HLS rendition on the same segment grid as the video.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::ff::ffi;
use super::ff::{self as ff, encoder, format, frame, media, Packet, Rational};
use super::hls::{build_audio, hls_options, r64, write_packet, AudioChain, TICK};
use super::input::{self, ReadOutcome};
use super::package::timeline_offset_ticks;
use super::probe::best_video_index;
use super::{is_again, map_err};
use crate::error::{ErrorCode, MediaError, MediaResult};

#[derive(Debug, Clone)]
pub struct AudioJob {
    pub input: PathBuf,
    pub out_dir: PathBuf,
    pub segment_sec: f64,
    /// Index among the source's audio streams (0 = first).
    pub track: usize,
}

#[derive(Debug, Clone)]
pub struct AudioOutput {
    pub codecs: String,
    pub channels: u32,
    pub language: Option<String>,
    pub source_channels: u32,
    /// Seconds of audio encoded (source samples, after alignment to the video start).
    pub duration_sec: f64,
    /// Encoder priming (AAC: 1024 samples) before time 0, which the muxer counts
    /// into the first segment's duration.
    pub priming_sec: f64,
}

struct Sink<'a> {
    octx: &'a mut format::context::Output,
    tb: Rational,
    offset: i64,
    samples_out: i64,
}

fn drain_encoder(chain: &mut AudioChain, sink: &mut Sink<'_>, pkt: &mut Packet) -> MediaResult<()> {
    loop {
        match chain.enc.receive_packet(pkt) {
            Ok(()) => {
                pkt.set_stream(0);
                pkt.set_pts(pkt.pts().map(|v| v + sink.offset));
                pkt.set_dts(pkt.dts().map(|v| v + sink.offset));
                pkt.rescale_ts(Rational::new(1, TICK), sink.tb);
                write_packet(sink.octx, pkt, "audio")?;
            }
            Err(ff::Error::Eof) => return Ok(()),
            Err(e) if is_again(&e) => return Ok(()),
            Err(e) => return Err(map_err(ErrorCode::EncoderError, "encode aac", e)),
        }
    }
}

fn drain(chain: &mut AudioChain, sink: &mut Sink<'_>, aframe: &mut frame::Audio, afilt: &mut frame::Audio, pkt: &mut Packet, eof: bool) -> MediaResult<()> {
    loop {
        match chain.dec.receive_frame(aframe) {
            Ok(()) => {
                let Some(ts) = aframe.timestamp() else { continue };
                let rel = ts - chain.origin;
                #[allow(clippy::cast_possible_wrap)]
                if rel + aframe.samples() as i64 <= 0 {
                    continue; // audio before the first video frame is not shown
                }
                aframe.set_pts(Some(rel));
                if let Some(mut src) = chain.graph.get("in") {
                    src.source().add(aframe).map_err(|e| map_err(ErrorCode::CorruptInput, "audio filter input", e))?;
                }
            }
            Err(ff::Error::Eof) => break,
            Err(e) if is_again(&e) => break,
            Err(ff::Error::InvalidData) => continue,
            Err(e) => return Err(map_err(ErrorCode::CorruptInput, "audio decode", e)),
        }
    }
    if eof {
        if let Some(mut src) = chain.graph.get("in") {
            src.source().flush().map_err(|e| map_err(ErrorCode::Internal, "audio filter flush", e))?;
        }
    }
    loop {
        let got = super::hls::next_filtered(&mut chain.graph, afilt);
        match got {
            Some(Ok(())) => {
                #[allow(clippy::cast_possible_wrap)]
                {
                    sink.samples_out += afilt.samples() as i64;
                }
                chain.enc.send_frame(afilt).map_err(|e| map_err(ErrorCode::EncoderError, "encode aac", e))?;
            }
            Some(Err(e)) if is_again(&e) => break,
            Some(Err(ff::Error::Eof)) | None => break,
            Some(Err(e)) => return Err(map_err(ErrorCode::Internal, "audio filter", e)),
        }
        drain_encoder(chain, sink, pkt)?;
    }
    if eof {
        chain.enc.send_eof().map_err(|e| map_err(ErrorCode::EncoderError, "flush aac", e))?;
    }
    drain_encoder(chain, sink, pkt)
}

/// Encodes the `track`-th audio stream; `Ok(None)` when the source has no such stream.
pub fn run_audio(job: &AudioJob, cancel: &AtomicBool) -> MediaResult<Option<AudioOutput>> {
    let mut opened = input::open(&job.input)?;
    let ictx = &mut opened.ctx;
    let Some(ai) = ictx.streams().filter(|s| s.parameters().medium() == media::Type::Audio).nth(job.track).map(|s| s.index()) else {
        return Ok(None);
    };
    // Time 0 is the first video frame, as for the video renditions.
    let origin_sec = {
        let vi = best_video_index(ictx);
        let s = ictx.stream(vi.unwrap_or(ai)).ok_or_else(|| MediaError::new(ErrorCode::Internal, "stream vanished"))?;
        let st = s.start_time();
        #[allow(clippy::cast_precision_loss)]
        if st == ffi::AV_NOPTS_VALUE { 0.0 } else { st as f64 * r64(s.time_base()) }
    };
    let (language, source_channels) = {
        let s = ictx.stream(ai).ok_or_else(|| MediaError::new(ErrorCode::Internal, "audio stream vanished"))?;
        // SAFETY: plain field read on live parameters.
        let ch = unsafe { (*s.parameters().as_ptr()).ch_layout.nb_channels };
        (s.metadata().get("language").map(str::to_string).filter(|l| l != "und"), u32::try_from(ch).unwrap_or(0))
    };
    // SAFETY: discard flags on an open context before reading: only this audio stream is demuxed.
    unsafe {
        for i in 0..(*ictx.as_ptr()).nb_streams as usize {
            if i != ai {
                (*(*(*ictx.as_mut_ptr()).streams.add(i))).discard = ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
    let mut chain = build_audio(ictx, ai, origin_sec, 0)?;
    std::fs::create_dir_all(&job.out_dir).map_err(|e| MediaError::io(&format!("mkdir {}", job.out_dir.display()), &e))?;
    let playlist = job.out_dir.join("index.m3u8");
    let mut octx = format::output_as(&playlist, "hls")
        .map_err(|e| map_err(ErrorCode::IoError, &format!("create {}", playlist.display()), e))?;
    {
        let mut ost = octx.add_stream(encoder::find_by_name("aac")).map_err(|e| map_err(ErrorCode::Internal, "add audio stream", e))?;
        ost.set_parameters(&chain.enc);
        ost.set_time_base(Rational::new(1, TICK));
    }
    octx.write_header_with(hls_options(&job.out_dir, job.segment_sec))
        .map_err(|e| map_err(ErrorCode::IoError, &format!("hls header {}", playlist.display()), e))?;
    let tb = octx.stream(0).map_or(Rational::new(1, TICK), |s| s.time_base());
    let mut sink = Sink { octx: &mut octx, tb, offset: timeline_offset_ticks(), samples_out: 0 };
    let (mut pkt, mut out_pkt) = (Packet::empty(), Packet::empty());
    let (mut aframe, mut afilt) = (frame::Audio::empty(), frame::Audio::empty());
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::new(ErrorCode::Aborted, "audio encode cancelled"));
        }
        match input::read_packet(ictx, &mut pkt)? {
            ReadOutcome::Eof => break,
            ReadOutcome::Packet if pkt.stream() != ai => continue,
            ReadOutcome::Packet => {}
        }
        match chain.dec.send_packet(&pkt) {
            Ok(()) | Err(ff::Error::InvalidData) => {}
            Err(e) if is_again(&e) => {}
            Err(e) => return Err(map_err(ErrorCode::CorruptInput, "audio decode", e)),
        }
        drain(&mut chain, &mut sink, &mut aframe, &mut afilt, &mut out_pkt, false)?;
    }
    chain.dec.send_eof().map_err(|e| map_err(ErrorCode::CorruptInput, "audio decoder flush", e))?;
    drain(&mut chain, &mut sink, &mut aframe, &mut afilt, &mut out_pkt, true)?;
    let samples = sink.samples_out;
    // SAFETY: plain field read on the opened encoder.
    let priming = unsafe { (*chain.enc.as_ptr()).initial_padding };
    octx.write_trailer().map_err(|e| map_err(ErrorCode::IoError, "finalize audio", e))?;
    #[allow(clippy::cast_precision_loss)]
    Ok(Some(AudioOutput {
        codecs: chain.codecs.clone(),
        channels: 2,
        language,
        source_channels,
        duration_sec: samples as f64 / 48_000.0,
        priming_sec: f64::from(priming) / 48_000.0,
    }))
}
