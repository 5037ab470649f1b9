//! `encodeChunk`: one chunk of the source, every rung, with per-(chunk, rendition)
//! checkpoints so a retried activity skips work that is already durable.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Env, Object};
use napi_derive::napi;

use crate::cancel::CancelToken;
use crate::checkpoint::{self, Checkpoint, CHECKPOINT_VERSION};
use crate::chunk::Chunk;
use crate::error::{ErrorCode, MediaError, MediaResult};
use crate::ffmpeg::{self, ChunkJob};
use crate::transcode::{encoder_pref, invalid, rung_jobs, segment_sec, RenditionSpec};
use crate::worker;

#[napi(object)]
#[derive(Debug, Clone)]
pub struct EncodeChunkOptions {
    pub input: String,
    /// Outputs go to `outDir/{rendition}/chunk_NNNNN.{mp4,json}`.
    pub out_dir: String,
    pub chunk: Chunk,
    pub renditions: Vec<RenditionSpec>,
    /// Keyframe grid inside the chunk, relative to its start (default 4).
    pub segment_duration_sec: Option<f64>,
    pub encoder: Option<String>,
    pub preset: Option<String>,
    pub threads: Option<u32>,
    /// Pins the encode's thread to this CPU (an index into the CPUs the process may use, modulo
    /// their count). Meant for single-threaded encodes (`threads: 1`): rung threads would inherit it.
    pub cpu: Option<u32>,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct ChunkRenditionResult {
    pub rendition: String,
    /// Relative to outDir, e.g. `360p/chunk_00003.mp4`.
    pub file: String,
    pub checkpoint: String,
    pub bytes: f64,
    pub sha256: String,
    pub duration_sec: f64,
    pub frames: f64,
    pub width: u32,
    pub height: u32,
    pub codecs: String,
    pub encoder: String,
    /// True when a valid checkpoint was found and nothing was encoded.
    pub skipped: bool,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct EncodeChunkResult {
    pub chunk: Chunk,
    pub renditions: Vec<ChunkRenditionResult>,
}

#[allow(clippy::cast_precision_loss)]
fn result_of(rec: &Checkpoint, skipped: bool) -> ChunkRenditionResult {
    ChunkRenditionResult {
        rendition: rec.rendition.clone(),
        file: format!("{}/{}", rec.rendition, rec.file),
        checkpoint: format!("{}/{}.json", rec.rendition, rec.chunk.name),
        bytes: rec.bytes as f64,
        sha256: rec.sha256.clone(),
        duration_sec: rec.duration_sec,
        frames: rec.frames as f64,
        width: rec.width,
        height: rec.height,
        codecs: rec.codecs.clone(),
        encoder: rec.encoder.clone(),
        skipped,
    }
}

fn validate_chunk(c: &Chunk) -> MediaResult<()> {
    let ok = c.start_sec.is_finite() && c.end_sec.is_finite() && c.start_sec >= 0.0 && c.end_sec > c.start_sec;
    if !ok {
        return Err(invalid(format!("chunk {} has an empty or invalid range [{}, {})", c.name, c.start_sec, c.end_sec)));
    }
    if c.name != crate::chunk::chunk_name(c.index) {
        return Err(invalid(format!("chunk name {:?} does not match index {}", c.name, c.index)));
    }
    Ok(())
}

fn run(o: &EncodeChunkOptions, cancel: &AtomicBool) -> MediaResult<EncodeChunkResult> {
    validate_chunk(&o.chunk)?;
    if let Some(index) = o.cpu {
        let cpu = crate::affinity::pin_current_thread(index);
        tracing::debug!(index, ?cpu, "chunk encode pinned");
    }
    let span = tracing::info_span!("chunk", index = o.chunk.index, name = %o.chunk.name, start = o.chunk.start_sec, end = o.chunk.end_sec);
    let _g = span.enter();
    let out_dir = PathBuf::from(&o.out_dir);
    let job = ChunkJob {
        input: PathBuf::from(&o.input),
        start_sec: o.chunk.start_sec,
        end_sec: o.chunk.end_sec,
        rungs: rung_jobs(&o.renditions)?,
        segment_sec: segment_sec(o.segment_duration_sec)?,
        encoder: encoder_pref(o.encoder.as_deref())?,
        preset: o.preset.clone().unwrap_or_else(|| "veryfast".into()),
        threads: o.threads.unwrap_or(0),
    };
    let input_size = std::fs::metadata(&job.input).map(|m| m.len()).unwrap_or(0);
    let fingerprint_of = |r: &RenditionSpec| {
        checkpoint::fingerprint(&serde_json::json!({
            "v": CHECKPOINT_VERSION,
            "input": o.input, "inputBytes": input_size, "chunk": o.chunk,
            "rendition": [r.name, r.height, r.video_bitrate, r.maxrate, r.bufsize],
            "segment": job.segment_sec, "encoder": o.encoder, "preset": job.preset,
        }))
    };
    let dir_of = |name: &str| out_dir.join(name);
    let mut done: Vec<(String, Checkpoint)> = Vec::new();
    for r in &o.renditions {
        if let Some(rec) = checkpoint::load_valid(&checkpoint::paths(&dir_of(&r.name), &o.chunk), &fingerprint_of(r)) {
            tracing::debug!(rendition = %r.name, "valid checkpoint, skipping");
            done.push((r.name.clone(), rec));
        }
    }
    let temps: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let target = |name: &str| -> Option<PathBuf> {
        if done.iter().any(|(n, _)| n == name) {
            return None;
        }
        let dir = dir_of(name);
        // A failure here surfaces as IO_ERROR when the muxer opens the file.
        let _ = std::fs::create_dir_all(&dir);
        let tmp = checkpoint::temp_path(&checkpoint::paths(&dir, &o.chunk).media);
        if let Ok(mut t) = temps.lock() {
            t.push(tmp.clone());
        }
        Some(tmp)
    };
    let encoded = ffmpeg::run_chunk(&job, &target, cancel);
    let cleanup = || {
        if let Ok(t) = temps.lock() {
            for p in t.iter() {
                let _ = std::fs::remove_file(p);
            }
        }
    };
    let (selected, outputs) = match encoded {
        Ok(v) => v,
        Err(e) => {
            cleanup();
            return Err(e);
        }
    };
    let mut results = Vec::new();
    for out in outputs {
        let spec = o.renditions.iter().find(|r| r.name == out.name);
        let paths = checkpoint::paths(&dir_of(&out.name), &o.chunk);
        let io = |what: &str, p: &Path, e: &std::io::Error| MediaError::io(&format!("{what} {}", p.display()), e);
        let committed = (|| {
            let bytes = std::fs::metadata(&out.path).map_err(|e| io("stat", &out.path, &e))?.len();
            let sha256 = checkpoint::sha256_file(&out.path).map_err(|e| io("hash", &out.path, &e))?;
            let rec = Checkpoint {
                version: CHECKPOINT_VERSION,
                chunk: o.chunk.clone(),
                rendition: out.name.clone(),
                fingerprint: spec.map(&fingerprint_of).unwrap_or_default(),
                file: format!("{}.mp4", o.chunk.name),
                bytes,
                sha256,
                duration_sec: (out.duration_sec * 1e6).round() / 1e6,
                frames: out.frames,
                width: out.width,
                height: out.height,
                codecs: out.codecs.clone(),
                encoder: out.encoder.clone(),
            };
            checkpoint::commit(&out.path, &paths, &rec).map_err(|e| io("commit", &paths.media, &e))?;
            Ok::<_, MediaError>(rec)
        })();
        match committed {
            Ok(rec) => results.push(result_of(&rec, false)),
            Err(e) => {
                cleanup();
                return Err(e);
            }
        }
    }
    for s in &selected {
        if let Some((_, rec)) = done.iter().find(|(n, _)| *n == s.name) {
            results.push(result_of(rec, true));
        }
    }
    // Stable order: lowest rung first, as selected.
    results.sort_by_key(|r| selected.iter().position(|s| s.name == r.rendition).unwrap_or(usize::MAX));
    if results.is_empty() {
        return Err(MediaError::new(ErrorCode::Internal, "no rendition selected for this source"));
    }
    Ok(EncodeChunkResult { chunk: o.chunk.clone(), renditions: results })
}

/// Encodes `options.chunk` for every applicable rendition; valid checkpoints are skipped.
#[napi(ts_return_type = "Promise<EncodeChunkResult>")]
#[allow(clippy::needless_pass_by_value)] // napi hands over owned values
pub fn encode_chunk<'env>(env: &'env Env, options: EncodeChunkOptions, cancel: &CancelToken) -> napi::Result<Object<'env>> {
    let flag: Arc<AtomicBool> = cancel.flag();
    worker::spawn_promise(env, "vora-chunk", move || run(&options, &flag))
}
