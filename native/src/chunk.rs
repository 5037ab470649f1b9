//! GOP-aligned chunk planning for parallel / resumable encodes (issue 3).
//! Pure: works from a probe's keyframe list, so plans are reproducible and testable.

use napi_derive::napi;
use serde::{Deserialize, Serialize};


/// A half-open time range `[startSec, endSec)` of the source (seconds from the
/// start of the video stream). Adjacent chunks share the boundary value exactly,
/// so every frame belongs to exactly one chunk.
#[napi(object)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chunk {
    pub index: u32,
    /// Zero-padded, sorts lexically: `chunk_00007`.
    pub name: String,
    pub start_sec: f64,
    /// Exclusive.
    pub end_sec: f64,
    /// False when keyframes were too sparse and the cut is mid-GOP: the encoder
    /// then decodes from the previous keyframe and drops frames before `startSec`.
    pub starts_on_keyframe: bool,
}

pub fn chunk_name(index: u32) -> String {
    format!("chunk_{index:05}")
}

#[derive(Debug, Clone, Copy)]
pub struct PlanParams {
    pub target_sec: f64,
    /// Chunks never exceed this (sparse keyframes force a mid-GOP cut instead).
    pub max_sec: f64,
    /// A trailing remainder shorter than this is merged into the previous chunk.
    pub min_sec: f64,
}

impl PlanParams {
    pub fn for_target(target_sec: f64) -> Self {
        Self { target_sec, max_sec: target_sec * 1.5, min_sec: target_sec * 0.5 }
    }
}

/// Plans chunks over `[0, duration)`: each cut is the keyframe nearest to
/// `start + target` within `(start + min, start + max]`, else a forced cut at
/// `start + target`. Keyframe times are those of `probe` (ascending seconds).
pub fn plan(keyframes: &[f64], duration_sec: f64, p: PlanParams) -> Vec<Chunk> {
    let mut cuts = vec![0.0f64];
    let mut kf: Vec<f64> = keyframes.iter().copied().filter(|t| t.is_finite() && *t > 0.0 && *t < duration_sec).collect();
    kf.sort_by(f64::total_cmp);
    kf.dedup();
    let mut on_kf = vec![true];
    let mut start = 0.0;
    while duration_sec - start > p.max_sec {
        let ideal = start + p.target_sec;
        let best = kf
            .iter()
            .copied()
            .filter(|&t| t > start + p.min_sec && t <= start + p.max_sec)
            .min_by(|a, b| (a - ideal).abs().total_cmp(&(b - ideal).abs()));
        let (cut, is_kf) = best.map_or((ideal, false), |t| (t, true));
        cuts.push(cut);
        on_kf.push(is_kf);
        start = cut;
    }
    // The tail fits in one chunk; split it only if both halves stay above min.
    if duration_sec - start > p.target_sec {
        let ideal = start + (duration_sec - start) / 2.0;
        let best = kf
            .iter()
            .copied()
            .filter(|&t| t - start >= p.min_sec && duration_sec - t >= p.min_sec)
            .min_by(|a, b| (a - ideal).abs().total_cmp(&(b - ideal).abs()));
        if let Some(t) = best {
            cuts.push(t);
            on_kf.push(true);
        }
    }
    cuts.push(duration_sec);
    cuts.windows(2)
        .enumerate()
        .map(|(i, w)| {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            Chunk { index, name: chunk_name(index), start_sec: w[0], end_sec: w[1], starts_on_keyframe: on_kf[i] }
        })
        .collect()
}

/// Chunk plan over `[0, durationSec)` from a probe's keyframe times. The TS front
/// exposes it as `planChunks(probe, targetSec)`.
#[napi]
#[allow(clippy::needless_pass_by_value)] // napi hands over owned values
pub fn plan_chunks(keyframes: Vec<f64>, duration_sec: f64, target_sec: f64) -> napi::Result<Vec<Chunk>> {
    if !(target_sec.is_finite() && target_sec > 0.0) {
        return Err(napi::Error::new(napi::Status::InvalidArg, format!("targetSec must be > 0, got {target_sec}")));
    }
    if !(duration_sec.is_finite() && duration_sec > 0.0) {
        return Err(napi::Error::new(napi::Status::InvalidArg, format!("durationSec must be > 0, got {duration_sec}")));
    }
    Ok(plan(&keyframes, duration_sec, PlanParams::for_target(target_sec)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_possible_truncation, clippy::float_cmp)]
mod tests {
    use super::*;

    fn assert_tiles(chunks: &[Chunk], duration: f64) {
        assert_eq!(chunks.first().unwrap().start_sec, 0.0);
        assert_eq!(chunks.last().unwrap().end_sec, duration);
        for (i, w) in chunks.windows(2).enumerate() {
            assert_eq!(w[0].end_sec, w[1].start_sec, "gap/overlap after chunk {i}");
        }
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.index as usize, i);
            assert!(c.end_sec > c.start_sec);
        }
    }

    #[test]
    fn cuts_on_keyframes_near_target() {
        let kf: Vec<f64> = (0..60).map(|i| f64::from(i) * 2.0).collect(); // GOP 2 s, 120 s
        let chunks = plan(&kf, 120.0, PlanParams::for_target(10.0));
        assert_tiles(&chunks, 120.0);
        assert_eq!(chunks.len(), 12);
        assert!(chunks.iter().all(|c| c.starts_on_keyframe && (c.end_sec - c.start_sec - 10.0).abs() < 1e-9));
        assert_eq!(chunks[3].name, "chunk_00003");
    }

    #[test]
    fn sparse_keyframes_are_bounded() {
        // a single keyframe at 0 (e.g. x264 keyint=infinite): forced cuts every target
        let chunks = plan(&[0.0], 35.0, PlanParams::for_target(10.0));
        assert_tiles(&chunks, 35.0);
        assert!(chunks.iter().all(|c| c.end_sec - c.start_sec <= 15.0 + 1e-9));
        assert!(chunks[0].starts_on_keyframe);
        assert!(!chunks[1].starts_on_keyframe);
    }

    #[test]
    fn irregular_gops_prefer_nearest_keyframe() {
        let kf = [0.0, 3.0, 9.0, 11.5, 14.0, 26.0, 31.0];
        let chunks = plan(&kf, 40.0, PlanParams::for_target(10.0));
        assert_tiles(&chunks, 40.0);
        assert_eq!(chunks[0].end_sec, 9.0);
        // from 9: 14 is too close (min 5) and 26 too far (max 15) -> forced cut at 19
        assert_eq!(chunks[1].end_sec, 19.0);
        assert!(!chunks[2].starts_on_keyframe);
        assert_eq!(chunks[2].end_sec, 31.0); // nearest to the ideal 29
        assert_eq!(chunks.len(), 4);
        for c in &chunks {
            assert!(c.end_sec - c.start_sec <= 15.0 + 1e-9, "{c:?}");
        }
    }

    #[test]
    fn short_inputs_are_one_chunk() {
        let chunks = plan(&[0.0, 1.0, 2.0], 3.0, PlanParams::for_target(10.0));
        assert_eq!(chunks.len(), 1);
        assert_tiles(&chunks, 3.0);
    }

    #[test]
    fn chunk_serializes_camel_case() {
        let c = plan(&[0.0], 1.0, PlanParams::for_target(10.0)).remove(0);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"index":0,"name":"chunk_00000","startSec":0.0,"endSec":1.0,"startsOnKeyframe":true}"#);
        assert_eq!(serde_json::from_str::<Chunk>(&json).unwrap(), c);
    }
}
