//! `transcodeToHls`: runs the single-decode ladder, then reads back what libavformat
//! wrote (segment durations and sizes) and writes the master playlist from it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use napi::bindgen_prelude::{Env, Object};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

use crate::cancel::CancelToken;
use crate::encode_audio::HlsAudioResult;
use crate::error::{ErrorCode, MediaError, MediaResult};
use crate::ffmpeg::{self, EncoderPref, HlsJob, HlsProgress, RungJob, RungOutput};
use crate::playlist::{self, VariantEntry};
use crate::worker;

#[napi(object)]
#[derive(Debug, Clone)]
pub struct RenditionSpec {
    pub name: String,
    pub height: u32,
    pub video_bitrate: f64,
    pub maxrate: Option<f64>,
    pub bufsize: Option<f64>,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeHlsOptions {
    pub input: String,
    pub out_dir: String,
    pub renditions: Vec<RenditionSpec>,
    pub segment_duration_sec: Option<f64>,
    /// 'auto' | 'libx264' | 'h264_nvenc'
    pub encoder: Option<String>,
    pub preset: Option<String>,
    pub threads: Option<u32>,
}

#[napi(object)]
#[derive(Debug, Clone, Copy)]
pub struct HlsProgressEvent {
    pub frames_done: f64,
    pub frames_total: Option<f64>,
    pub fps: f64,
}

#[napi(object)]
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HlsSegment {
    pub file: String,
    pub duration_sec: f64,
    pub bytes: f64,
}

#[napi(object)]
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HlsRenditionResult {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bandwidth: f64,
    pub average_bandwidth: f64,
    pub codecs: String,
    pub frame_rate: f64,
    pub playlist: String,
    pub segments: Vec<HlsSegment>,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct HlsResult {
    pub duration_sec: f64,
    pub encoder: String,
    pub renditions: Vec<HlsRenditionResult>,
    pub master: String,
}

/// Progress is fire-and-forget (NonBlocking) and weak: a slow or absent JS
/// consumer must never stall the encoder nor keep the event loop alive.
pub type ProgressFn = ThreadsafeFunction<HlsProgressEvent, (), HlsProgressEvent, Status, false, true>;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(crate) fn invalid(m: impl std::fmt::Display) -> MediaError {
    MediaError::new(ErrorCode::Internal, format!("invalid options: {m}"))
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(crate) fn rung_jobs(specs: &[RenditionSpec]) -> MediaResult<Vec<RungJob>> {
    if specs.is_empty() {
        return Err(invalid("renditions is empty"));
    }
    specs
        .iter()
        .map(|r| {
            if !valid_name(&r.name) {
                return Err(invalid(format!("rendition name {:?} must match [A-Za-z0-9_-]{{1,64}}", r.name)));
            }
            if r.height < 2 || r.video_bitrate.is_nan() || r.video_bitrate < 1000.0 {
                return Err(invalid(format!("rendition {}: height >= 2 and videoBitrate >= 1000 required", r.name)));
            }
            Ok(RungJob {
                name: r.name.clone(),
                height: r.height,
                video_bitrate: r.video_bitrate as u64,
                maxrate: r.maxrate.map(|v| v as u64),
                bufsize: r.bufsize.map(|v| v as u64),
            })
        })
        .collect()
}

pub(crate) fn encoder_pref(name: Option<&str>) -> MediaResult<EncoderPref> {
    match name.unwrap_or("auto") {
        "auto" => Ok(EncoderPref::Auto),
        "libx264" => Ok(EncoderPref::X264),
        "h264_nvenc" => Ok(EncoderPref::Nvenc),
        other => Err(invalid(format!("unknown encoder {other:?}"))),
    }
}

pub(crate) fn segment_sec(v: Option<f64>) -> MediaResult<f64> {
    let s = v.unwrap_or(4.0);
    if (0.5..=60.0).contains(&s) {
        Ok(s)
    } else {
        Err(invalid(format!("segmentDurationSec {s} outside 0.5..=60")))
    }
}

fn to_job(o: &NativeHlsOptions) -> MediaResult<HlsJob> {
    Ok(HlsJob {
        input: PathBuf::from(&o.input),
        out_dir: PathBuf::from(&o.out_dir),
        rungs: rung_jobs(&o.renditions)?,
        segment_sec: segment_sec(o.segment_duration_sec)?,
        encoder: encoder_pref(o.encoder.as_deref())?,
        preset: o.preset.clone().unwrap_or_else(|| "veryfast".into()),
        threads: o.threads.unwrap_or(0),
    })
}

/// Reads one rung's media playlist and the sizes of the files it references.
/// `video_end_sec`: exact end of the last video frame, used to correct the muxer's
/// estimate of the final segment (see `playlist::set_last_duration`).
pub fn read_back(rung: &RungOutput, out_dir: &Path, video_end_sec: Option<f64>) -> MediaResult<HlsRenditionResult> {
    let pl_path = rung.dir.join("index.m3u8");
    let mut text = std::fs::read_to_string(&pl_path).map_err(|e| MediaError::io(&format!("read {}", pl_path.display()), &e))?;
    let parse = |t: &str| {
        playlist::parse_media_playlist(t).map_err(|e| MediaError::new(ErrorCode::Internal, format!("{}: {e}", pl_path.display())))
    };
    let mut pl = parse(&text)?;
    if let (Some(end), Some((_, before))) = (video_end_sec, pl.segments.split_last()) {
        let last = end - before.iter().map(|s| s.duration_sec).sum::<f64>();
        let current = pl.segments.last().map_or(0.0, |s| s.duration_sec);
        if last > 0.0 && (last - current).abs() > 5e-7 {
            text = playlist::set_last_duration(&text, last);
            std::fs::write(&pl_path, &text).map_err(|e| MediaError::io(&format!("rewrite {}", pl_path.display()), &e))?;
            pl = parse(&text)?;
        }
    }
    let mut segments = Vec::with_capacity(pl.segments.len());
    let mut sized = Vec::with_capacity(pl.segments.len());
    for s in &pl.segments {
        let p = rung.dir.join(&s.uri);
        let bytes = std::fs::metadata(&p).map_err(|e| MediaError::io(&format!("stat {}", p.display()), &e))?.len();
        sized.push((bytes, s.duration_sec));
        #[allow(clippy::cast_precision_loss)]
        segments.push(HlsSegment { file: s.uri.clone(), duration_sec: s.duration_sec, bytes: bytes as f64 });
    }
    let (peak, avg) = playlist::measure_bandwidth(&sized);
    let rel = rung.dir.strip_prefix(out_dir).unwrap_or(&rung.dir).join("index.m3u8");
    #[allow(clippy::cast_precision_loss)]
    Ok(HlsRenditionResult {
        name: rung.name.clone(),
        width: rung.width,
        height: rung.height,
        bandwidth: peak as f64,
        average_bandwidth: avg as f64,
        codecs: rung.codecs.clone(),
        frame_rate: (rung.frame_rate * 1000.0).round() / 1000.0,
        playlist: rel.to_string_lossy().replace('\\', "/"),
        segments,
    })
}

pub fn variant_entries(renditions: &[HlsRenditionResult]) -> Vec<VariantEntry> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    renditions
        .iter()
        .map(|r| VariantEntry {
            uri: r.playlist.clone(),
            bandwidth: r.bandwidth as u64,
            average_bandwidth: r.average_bandwidth as u64,
            width: r.width,
            height: r.height,
            codecs: r.codecs.clone(),
            frame_rate: r.frame_rate,
        })
        .collect()
}

/// Removes what this call created, so a failed/cancelled job leaves no half ladder.
fn cleanup(out_dir: &Path, created_dirs: &[PathBuf], created_out_dir: bool) {
    for d in created_dirs {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = std::fs::remove_file(out_dir.join("master.m3u8"));
    if created_out_dir {
        let _ = std::fs::remove_dir(out_dir); // only succeeds when empty
    }
}

fn run(job: &HlsJob, cancel: &AtomicBool, on_progress: Option<&ProgressFn>) -> MediaResult<HlsResult> {
    let span = tracing::info_span!("transcode_hls", input = %job.input.display(), out = %job.out_dir.display());
    let _g = span.enter();
    let created_out_dir = !job.out_dir.exists();
    let created_dirs: Vec<PathBuf> =
        job.rungs.iter().map(|r| job.out_dir.join(&r.name)).filter(|d| !d.exists()).collect();
    let mut report = |p: HlsProgress| {
        if let Some(f) = on_progress {
            #[allow(clippy::cast_precision_loss)]
            let ev = HlsProgressEvent {
                frames_done: p.frames_done as f64,
                frames_total: p.frames_total.map(|t| t as f64),
                fps: (p.fps * 100.0).round() / 100.0,
            };
            f.call(ev, ThreadsafeFunctionCallMode::NonBlocking);
        }
    };
    let result: MediaResult<HlsResult> = (|| {
        let out = ffmpeg::run_hls(job, cancel, &mut report)?;
        let renditions = out
            .rungs
            .iter()
            .map(|r| read_back(r, &job.out_dir, Some(out.duration_sec)))
            .collect::<MediaResult<Vec<_>>>()?;
        let master = playlist::master_playlist(&variant_entries(&renditions), &[]);
        let master_path = job.out_dir.join("master.m3u8");
        std::fs::write(&master_path, master).map_err(|e| MediaError::io(&format!("write {}", master_path.display()), &e))?;
        let duration_sec = renditions
            .first()
            .map_or(out.duration_sec, |r| r.segments.iter().map(|s| s.duration_sec).sum());
        Ok(HlsResult {
            duration_sec: (duration_sec * 1e6).round() / 1e6,
            encoder: out.encoder,
            renditions,
            master: "master.m3u8".into(),
        })
    })();
    if let Err(e) = &result {
        tracing::warn!(code = e.code.as_str(), error = %e.message, "transcode failed, removing partial output");
        cleanup(&job.out_dir, &created_dirs, created_out_dir);
    }
    result
}

/// Decodes `options.input` once and writes an fMP4 HLS ladder under `options.outDir`.
#[napi(ts_return_type = "Promise<HlsResult>")]
#[allow(clippy::needless_pass_by_value)] // napi hands over owned values
pub fn transcode_to_hls<'env>(
    env: &'env Env,
    options: NativeHlsOptions,
    cancel: &CancelToken,
    #[napi(ts_arg_type = "((p: HlsProgressEvent) => void) | undefined | null")] on_progress: Option<ProgressFn>,
) -> napi::Result<Object<'env>> {
    let flag: Arc<AtomicBool> = cancel.flag();
    worker::spawn_promise(env, "vora-hls", move || {
        let job = to_job(&options)?;
        run(&job, &flag, on_progress.as_ref())
    })
}

/// Master playlist text for finished renditions (e.g. a PARTIALLY_READY ladder),
/// with the separate audio rendition when given.
#[napi]
#[allow(clippy::needless_pass_by_value)] // napi hands over owned values
pub fn master_playlist(renditions: Vec<HlsRenditionResult>, audio: Option<HlsAudioResult>) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let entry = |a: &HlsAudioResult| playlist::AudioEntry {
        uri: a.playlist.clone(),
        name: a.name.clone(),
        language: a.language.clone(),
        channels: a.channels,
        codecs: a.codecs.clone(),
        bandwidth: a.bandwidth as u64,
        average_bandwidth: a.average_bandwidth as u64,
    };
    let entries: Vec<playlist::AudioEntry> =
        audio.iter().flat_map(|a| std::iter::once(a).chain(a.alternates.iter())).map(entry).collect();
    playlist::master_playlist(&variant_entries(&renditions), &entries)
}
