//! Pure ladder math: display geometry, rung selection and the keyframe grid.
//! Kept free of FFmpeg so it is unit-testable and shared by HLS and chunked encodes.

/// Rotation (clockwise degrees to apply for display, one of 0/90/180/270) from an
/// ISO-BMFF/FFmpeg display matrix (9 x i32, 16.16 fixed point for a,b,c,d).
/// Mirrors `-av_display_rotation_get`, which is what the ffmpeg CLI autorotates by.
pub fn rotation_from_matrix(m: &[i32; 9]) -> u32 {
    let scale0 = f64::from(m[0]).hypot(f64::from(m[3]));
    let scale1 = f64::from(m[1]).hypot(f64::from(m[4]));
    if scale0 == 0.0 || scale1 == 0.0 {
        return 0;
    }
    let ccw = (f64::from(m[1]) / scale1).atan2(f64::from(m[0]) / scale0).to_degrees();
    normalize_rotation(ccw)
}

/// Snaps an arbitrary angle to the nearest quarter turn in [0, 360).
pub fn normalize_rotation(deg: f64) -> u32 {
    let quarter = (deg / 90.0).round().rem_euclid(4.0);
    // quarter is an exact small integer in [0, 4)
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let q = quarter as u32;
    q * 90
}

/// Display size after sample aspect ratio and rotation.
pub fn display_size(width: u32, height: u32, sar: (i32, i32), rotation: u32) -> (u32, u32) {
    let (num, den) = if sar.0 > 0 && sar.1 > 0 { sar } else { (1, 1) };
    let w = (f64::from(width) * f64::from(num) / f64::from(den)).round();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let w = (w.max(1.0)) as u32;
    if rotation % 180 == 90 {
        (height, w)
    } else {
        (w, height)
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Reduced "w:h" ratio string.
pub fn ratio_string(w: u64, h: u64) -> String {
    if w == 0 || h == 0 {
        return "0:1".to_string();
    }
    let g = gcd(w, h);
    format!("{}:{}", w / g, h / g)
}

/// Output size for a rung: even height (never above the source), width from the
/// display aspect, rounded to even because 4:2:0 chroma needs it.
pub fn rung_size(display_w: u32, display_h: u32, target_h: u32) -> (u32, u32) {
    let h = target_h.min(display_h).max(2) & !1;
    let w = f64::from(h) * f64::from(display_w) / f64::from(display_h.max(1));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let w = ((w / 2.0).round() as u32 * 2).max(2);
    (w, h)
}

/// Indices of the rungs to produce, lowest first: every rung not above the source
/// height; when the source is smaller than all rungs, the lowest one alone (it is
/// then clamped to the source height by [`rung_size`]).
pub fn select_rungs(heights: &[u32], source_display_h: u32) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..heights.len()).collect();
    idx.sort_by_key(|&i| heights[i]);
    let fitting: Vec<usize> = idx.iter().copied().filter(|&i| heights[i] <= source_display_h).collect();
    if fitting.is_empty() {
        idx.into_iter().take(1).collect()
    } else {
        fitting
    }
}

/// Keyframe grid shared by every rung so segment boundaries align. A keyframe is
/// forced on the first frame at or after each multiple of the segment duration;
/// "at or after" (not "nearest") matches the hls muxer, which only cuts on a
/// keyframe whose pts has reached the boundary.
#[derive(Debug, Clone)]
pub struct KeyframeGrid {
    segment_ms: u64,
    tick_rate: u64,
    next_index: u64,
}

impl KeyframeGrid {
    /// `tick_rate`: timestamps are in 1/tick_rate seconds.
    pub fn new(segment_sec: f64, tick_rate: u32) -> Self {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let segment_ms = (segment_sec * 1000.0).round().max(1.0) as u64;
        Self { segment_ms, tick_rate: u64::from(tick_rate), next_index: 0 }
    }

    /// Boundary `k` in ticks, exact integer math (no float drift over long inputs).
    pub fn boundary_ticks(&self, k: u64) -> u64 {
        k * self.segment_ms * self.tick_rate / 1000
    }

    /// True when the frame at `pts` (ticks, relative to the first video frame) must be a keyframe.
    pub fn should_force(&mut self, pts: i64) -> bool {
        let Ok(pts) = u64::try_from(pts) else {
            return false;
        };
        if pts < self.boundary_ticks(self.next_index) {
            return false;
        }
        // Skip boundaries a long frame gap jumped over: one keyframe covers them all.
        let ms = pts * 1000 / self.tick_rate;
        self.next_index = ms / self.segment_ms + 1;
        while self.boundary_ticks(self.next_index) <= pts {
            self.next_index += 1;
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn rotation_matrices() {
        let one = 1 << 16;
        assert_eq!(rotation_from_matrix(&[one, 0, 0, 0, one, 0, 0, 0, 1 << 30]), 0);
        // The matrix iPhones write for portrait video: displayed rotated 90 degrees clockwise.
        assert_eq!(rotation_from_matrix(&[0, one, 0, -one, 0, 0, 0, 0, 1 << 30]), 90);
        assert_eq!(rotation_from_matrix(&[-one, 0, 0, 0, -one, 0, 0, 0, 1 << 30]), 180);
        assert_eq!(rotation_from_matrix(&[0, -one, 0, one, 0, 0, 0, 0, 1 << 30]), 270);
        assert_eq!(normalize_rotation(-90.0), 270);
        assert_eq!(normalize_rotation(89.4), 90);
    }

    #[test]
    fn display_geometry() {
        assert_eq!(display_size(1920, 1080, (1, 1), 0), (1920, 1080));
        assert_eq!(display_size(1920, 1080, (1, 1), 90), (1080, 1920));
        // anamorphic DVD: 720x576 with 16:15 SAR displays at 768x576
        assert_eq!(display_size(720, 576, (16, 15), 0), (768, 576));
        assert_eq!(display_size(640, 480, (0, 1), 0), (640, 480));
        assert_eq!(ratio_string(1920, 1080), "16:9");
    }

    #[test]
    fn rung_sizes_are_even_and_keep_aspect() {
        assert_eq!(rung_size(1280, 720, 360), (640, 360));
        assert_eq!(rung_size(1920, 1080, 720), (1280, 720));
        assert_eq!(rung_size(1080, 1920, 360), (202, 360));
        assert_eq!(rung_size(768, 576, 360), (480, 360));
        // never upscales, odd source heights round down to even
        assert_eq!(rung_size(640, 361, 720), (638, 360));
    }

    #[test]
    fn rung_selection_skips_above_source_but_keeps_lowest() {
        assert_eq!(select_rungs(&[720, 360, 1080], 720), vec![1, 0]);
        assert_eq!(select_rungs(&[360, 720], 240), vec![0]);
        assert_eq!(select_rungs(&[720, 360], 240), vec![1]);
        assert!(select_rungs(&[], 240).is_empty());
    }

    #[test]
    fn grid_forces_first_frame_at_or_after_each_boundary() {
        // 29.97 fps in a 1/48000 tick: frame n at n*1601.6 ticks
        let mut grid = KeyframeGrid::new(4.0, 48_000);
        let forced: Vec<u64> = (0..400u64)
            .filter(|n| {
                #[allow(clippy::cast_possible_wrap)]
                let pts = (n * 16016 / 10) as i64;
                grid.should_force(pts)
            })
            .collect();
        // boundaries at 0, 4 s (frame 120 = 4.004 s), 8 s (frame 240 = 8.008 s), 12 s (frame 360 = 12.012 s)
        assert_eq!(forced, vec![0, 120, 240, 360]);
    }

    #[test]
    fn grid_handles_gaps_and_negative_pts() {
        let mut grid = KeyframeGrid::new(2.0, 1000);
        assert!(!grid.should_force(-5));
        assert!(grid.should_force(0));
        assert!(!grid.should_force(1999));
        // a 5 s gap jumps two boundaries: one keyframe, next boundary is 8 s
        assert!(grid.should_force(7000));
        assert!(!grid.should_force(7999));
        assert!(grid.should_force(8000));
    }
}
