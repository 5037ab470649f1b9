//! `thumbnails`: poster JPEG plus an optional storyboard sprite and its WebVTT
//! (`storyboard.jpg#xywh=x,y,w,h` cues) for scrubbing previews.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use napi::bindgen_prelude::{Env, Object};
use napi_derive::napi;

use crate::cancel::CancelToken;
use crate::error::{MediaError, MediaResult};
use crate::ffmpeg::{self, ThumbJob};
use crate::transcode::invalid;
use crate::worker;

#[napi(object)]
#[derive(Debug, Clone)]
pub struct StoryboardOptions {
    pub interval_sec: f64,
    pub columns: u32,
    pub tile_width: u32,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct ThumbnailsOptions {
    pub input: String,
    pub out_dir: String,
    /// Default: 10% into the video, at most 10 s.
    pub poster_at_sec: Option<f64>,
    pub storyboard: Option<StoryboardOptions>,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct StoryboardResult {
    #[napi(ts_type = "'storyboard.jpg'")]
    pub image: String,
    #[napi(ts_type = "'storyboard.vtt'")]
    pub vtt: String,
    pub tiles: u32,
    pub tile_width: u32,
    pub tile_height: u32,
    pub columns: u32,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct ThumbnailsResult {
    #[napi(ts_type = "'poster.jpg'")]
    pub poster: String,
    pub poster_width: u32,
    pub poster_height: u32,
    pub storyboard: Option<StoryboardResult>,
}

fn vtt_time(t: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ms = (t.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// WebVTT with one cue per tile, each pointing at its rectangle in the sprite.
pub fn storyboard_vtt(image: &str, tiles: u32, columns: u32, tile: (u32, u32), interval: f64, duration: f64) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for i in 0..tiles {
        let start = f64::from(i) * interval;
        let end = (start + interval).min(duration.max(start + 0.001));
        let (x, y) = ((i % columns) * tile.0, (i / columns) * tile.1);
        out.push_str(&format!(
            "{} --> {}\n{image}#xywh={x},{y},{},{}\n\n",
            vtt_time(start),
            vtt_time(end),
            tile.0,
            tile.1
        ));
    }
    out
}

fn run(o: &ThumbnailsOptions, cancel: &AtomicBool) -> MediaResult<ThumbnailsResult> {
    if let Some(s) = &o.storyboard {
        if !(s.interval_sec.is_finite() && s.interval_sec >= 0.1) || s.columns == 0 || !(16..=1920).contains(&s.tile_width) {
            return Err(invalid("storyboard needs intervalSec >= 0.1, columns >= 1, tileWidth in 16..=1920"));
        }
    }
    if o.poster_at_sec.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
        return Err(invalid("posterAtSec must be >= 0"));
    }
    let span = tracing::info_span!("thumbnails", input = %o.input);
    let _g = span.enter();
    let out_dir = PathBuf::from(&o.out_dir);
    std::fs::create_dir_all(&out_dir).map_err(|e| MediaError::io(&format!("mkdir {}", out_dir.display()), &e))?;
    let job = ThumbJob {
        input: PathBuf::from(&o.input),
        out_dir: out_dir.clone(),
        poster_at_sec: o.poster_at_sec,
        storyboard: o.storyboard.as_ref().map(|s| (s.interval_sec, s.columns, s.tile_width)),
        poster_max_height: 720,
    };
    let out = ffmpeg::run_thumbnails(&job, cancel)?;
    let storyboard = match (out.storyboard, &o.storyboard) {
        (Some((tiles, tw, th, columns)), Some(s)) => {
            let vtt = storyboard_vtt("storyboard.jpg", tiles, columns, (tw, th), s.interval_sec, out.duration_sec);
            let path = out_dir.join("storyboard.vtt");
            std::fs::write(&path, vtt).map_err(|e| MediaError::io(&format!("write {}", path.display()), &e))?;
            Some(StoryboardResult {
                image: "storyboard.jpg".into(),
                vtt: "storyboard.vtt".into(),
                tiles,
                tile_width: tw,
                tile_height: th,
                columns,
            })
        }
        _ => None,
    };
    Ok(ThumbnailsResult { poster: "poster.jpg".into(), poster_width: out.poster_size.0, poster_height: out.poster_size.1, storyboard })
}

/// Writes `outDir/poster.jpg` and, when asked, `storyboard.jpg` + `storyboard.vtt`.
#[napi(ts_return_type = "Promise<ThumbnailsResult>")]
#[allow(clippy::needless_pass_by_value)] // napi hands over owned values
pub fn thumbnails<'env>(env: &'env Env, options: ThumbnailsOptions, cancel: &CancelToken) -> napi::Result<Object<'env>> {
    let flag: Arc<AtomicBool> = cancel.flag();
    worker::spawn_promise(env, "vora-thumbs", move || run(&options, &flag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vtt_cues_point_at_tiles() {
        let vtt = storyboard_vtt("storyboard.jpg", 3, 2, (160, 90), 2.0, 5.0);
        assert!(vtt.starts_with("WEBVTT\n\n"));
        assert!(vtt.contains("00:00:00.000 --> 00:00:02.000\nstoryboard.jpg#xywh=0,0,160,90\n"));
        assert!(vtt.contains("00:00:02.000 --> 00:00:04.000\nstoryboard.jpg#xywh=160,0,160,90\n"));
        assert!(vtt.contains("00:00:04.000 --> 00:00:05.000\nstoryboard.jpg#xywh=0,90,160,90\n"));
        assert_eq!(vtt_time(3725.5), "01:02:05.500");
    }
}
