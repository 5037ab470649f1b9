//! `splitSource`: stream-copy the video of each chunk into its own MP4 so chunk
//! encodes can run on other hosts without the whole source (see `ffmpeg::split`).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use napi::bindgen_prelude::{Env, Object};
use napi_derive::napi;

use crate::cancel::CancelToken;
use crate::chunk::{chunk_name, Chunk};
use crate::error::MediaResult;
use crate::ffmpeg::{self, SplitRange};
use crate::transcode::invalid;
use crate::worker;

#[napi(object)]
#[derive(Debug, Clone)]
pub struct SplitSourceOptions {
    pub input: String,
    pub chunks: Vec<Chunk>,
    pub out_dir: String,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct SplitChunkFile {
    pub index: u32,
    pub name: String,
    /// Relative to outDir: `chunk_00003.mp4`.
    pub file: String,
    pub bytes: f64,
}

fn run(o: &SplitSourceOptions, cancel: &AtomicBool) -> MediaResult<Vec<SplitChunkFile>> {
    if o.chunks.is_empty() {
        return Err(invalid("chunks is empty"));
    }
    for c in &o.chunks {
        let ok = c.start_sec.is_finite() && c.end_sec.is_finite() && c.start_sec >= 0.0 && c.end_sec > c.start_sec;
        if !ok || c.name != chunk_name(c.index) {
            return Err(invalid(format!("bad chunk {:?} [{}, {})", c.name, c.start_sec, c.end_sec)));
        }
    }
    let span = tracing::info_span!("split", input = %o.input, chunks = o.chunks.len());
    let _g = span.enter();
    let ranges: Vec<SplitRange> =
        o.chunks.iter().map(|c| SplitRange { name: c.name.clone(), start_sec: c.start_sec, end_sec: c.end_sec }).collect();
    let outs = ffmpeg::run_split(&PathBuf::from(&o.input), &ranges, &PathBuf::from(&o.out_dir), cancel)?;
    #[allow(clippy::cast_precision_loss)]
    Ok(o.chunks
        .iter()
        .zip(outs)
        .map(|(c, out)| {
            tracing::debug!(chunk = %c.name, bytes = out.bytes, packets = out.packets, "chunk split");
            SplitChunkFile {
                index: c.index,
                name: c.name.clone(),
                file: out.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                bytes: out.bytes as f64,
            }
        })
        .collect())
}

/// Stream-copies each chunk's video (from the keyframe at or before its start) to `outDir/{name}.mp4`.
#[napi(ts_return_type = "Promise<Array<SplitChunkFile>>")]
#[allow(clippy::needless_pass_by_value)] // napi hands over owned values
pub fn split_source<'env>(env: &'env Env, options: SplitSourceOptions, cancel: &CancelToken) -> napi::Result<Object<'env>> {
    let flag: Arc<AtomicBool> = cancel.flag();
    worker::spawn_promise(env, "vora-split", move || run(&options, &flag))
}
