//! `packageRendition`: one rendition's chunk MP4s -> one fMP4 HLS rendition
//! (`init.mp4`, `seg_NNNNN.m4s`, `index.m3u8`) by stream copy. The playlist is
//! written here from exact keyframe times, not from the muxer's estimates.

use std::path::{Path, PathBuf};

use napi::bindgen_prelude::{Env, Object};
use napi_derive::napi;

use crate::checkpoint::Checkpoint;
use crate::error::{ErrorCode, MediaError, MediaResult};
use crate::ffmpeg::{self, PackageJob};
use crate::playlist;
use crate::transcode::{invalid, segment_sec, HlsRenditionResult, HlsSegment};
use crate::worker;

#[napi(object)]
#[derive(Debug, Clone)]
pub struct PackageRenditionOptions {
    pub rendition: String,
    /// encodeChunk outputs of ONE rendition, in chunk order.
    pub chunk_files: Vec<String>,
    /// The rendition directory; the master is expected in its parent.
    pub out_dir: String,
    pub segment_duration_sec: f64,
}

/// Source start of a chunk from the checkpoint record encodeChunk wrote next to it.
fn chunk_start(file: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(file.with_extension("json")).ok()?;
    let rec: Checkpoint = serde_json::from_str(&text).ok()?;
    let name = file.file_stem()?.to_string_lossy();
    (rec.chunk.name == name).then_some(rec.chunk.start_sec)
}

fn run(o: &PackageRenditionOptions) -> MediaResult<HlsRenditionResult> {
    let seg = segment_sec(Some(o.segment_duration_sec))?;
    if o.chunk_files.is_empty() {
        return Err(invalid("chunkFiles is empty"));
    }
    let span = tracing::info_span!("package", rendition = %o.rendition, chunks = o.chunk_files.len());
    let _g = span.enter();
    let out_dir = PathBuf::from(&o.out_dir);
    let files: Vec<PathBuf> = o.chunk_files.iter().map(PathBuf::from).collect();
    let starts: Vec<Option<f64>> = files.iter().map(|f| chunk_start(f)).collect();
    let job = PackageJob { name: o.rendition.clone(), chunk_files: files, chunk_starts: starts, out_dir: out_dir.clone() };
    let out = ffmpeg::run_package(&job)?;
    let pl_path = out_dir.join("index.m3u8");
    let written = std::fs::read_to_string(&pl_path).map_err(|e| MediaError::io(&format!("read {}", pl_path.display()), &e))?;
    let pl = playlist::parse_media_playlist(&written).map_err(|e| MediaError::new(ErrorCode::Internal, format!("{}: {e}", pl_path.display())))?;
    if pl.segments.len() != out.segment_durations.len() {
        return Err(MediaError::new(
            ErrorCode::Internal,
            format!("muxer wrote {} segments for {} keyframes", pl.segments.len(), out.segment_durations.len()),
        ));
    }
    let mut segments = Vec::with_capacity(pl.segments.len());
    let mut sized = Vec::with_capacity(pl.segments.len());
    for (s, &d) in pl.segments.iter().zip(&out.segment_durations) {
        let p = out_dir.join(&s.uri);
        let bytes = std::fs::metadata(&p).map_err(|e| MediaError::io(&format!("stat {}", p.display()), &e))?.len();
        if d > seg * 1.5 {
            tracing::warn!(segment = %s.uri, duration = d, "segment longer than 1.5x the grid (keyframes not forced?)");
        }
        sized.push((bytes, d));
        #[allow(clippy::cast_precision_loss)]
        segments.push(HlsSegment { file: s.uri.clone(), duration_sec: (d * 1e6).round() / 1e6, bytes: bytes as f64 });
    }
    let entries: Vec<(String, f64)> = segments.iter().map(|s| (s.file.clone(), s.duration_sec)).collect();
    let text = playlist::media_playlist("init.mp4", &entries);
    let tmp = out_dir.join(".index.m3u8.tmp");
    std::fs::write(&tmp, text).map_err(|e| MediaError::io(&format!("write {}", tmp.display()), &e))?;
    std::fs::rename(&tmp, &pl_path).map_err(|e| MediaError::io(&format!("rename {}", pl_path.display()), &e))?;
    let (peak, avg) = playlist::measure_bandwidth(&sized);
    let dir_name = out_dir.file_name().map_or_else(|| o.rendition.clone(), |n| n.to_string_lossy().into_owned());
    tracing::info!(segments = segments.len(), frames = out.frames, duration = out.duration_sec, "rendition packaged");
    #[allow(clippy::cast_precision_loss)]
    Ok(HlsRenditionResult {
        name: o.rendition.clone(),
        width: out.width,
        height: out.height,
        bandwidth: peak as f64,
        average_bandwidth: avg as f64,
        codecs: out.codecs,
        frame_rate: (out.frame_rate * 1000.0).round() / 1000.0,
        playlist: format!("{dir_name}/index.m3u8"),
        segments,
    })
}

/// Remuxes one rendition's chunk files into `outDir/{init.mp4, seg_NNNNN.m4s, index.m3u8}`.
#[napi(ts_return_type = "Promise<HlsRenditionResult>")]
#[allow(clippy::needless_pass_by_value)] // napi hands over owned values
pub fn package_rendition(env: &Env, options: PackageRenditionOptions) -> napi::Result<Object<'_>> {
    worker::spawn_promise(env, "vora-package", move || run(&options))
}
