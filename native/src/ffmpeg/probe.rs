//! Stream inventory plus a full keyframe scan (needed for GOP-aligned chunking).

use std::os::raw::c_char;
use std::path::Path;

use super::ff::ffi;
use super::ff::{self as ff, media, Rational};
use super::input::{self, ReadOutcome};
use super::cstr;
use crate::error::{ErrorCode, MediaError, MediaResult};
use crate::ladder;
use crate::model::{AudioInfo, ProbeResult, VideoInfo};

fn rate(r: Rational) -> f64 {
    if r.denominator() == 0 {
        0.0
    } else {
        f64::from(r.numerator()) / f64::from(r.denominator())
    }
}

/// Drops FFmpeg's placeholder names so JS sees `null` for "not signalled".
fn known(name: Option<String>) -> Option<String> {
    name.filter(|n| !matches!(n.as_str(), "unknown" | "unspecified" | "reserved" | ""))
}

pub(crate) fn display_rotation(stream: &ff::format::stream::Stream) -> u32 {
    for sd in stream.side_data() {
        if sd.kind() == ff::codec::packet::side_data::Type::DisplayMatrix && sd.data().len() >= 36 {
            let mut m = [0i32; 9];
            for (i, v) in m.iter_mut().enumerate() {
                let b = &sd.data()[i * 4..i * 4 + 4];
                *v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            return ladder::rotation_from_matrix(&m);
        }
    }
    0
}

/// Pixel format of a stream's parameters, validated before becoming a Rust enum.
pub(crate) fn pixel_format(par: *const ffi::AVCodecParameters) -> Option<ffi::AVPixelFormat> {
    // SAFETY: par comes from a live stream; the range check keeps the transmute to
    // a declared discriminant (FFmpeg only stores valid AVPixelFormat values).
    unsafe {
        let f = (*par).format;
        if f < 0 || f >= ffi::AVPixelFormat::AV_PIX_FMT_NB as i32 {
            return None;
        }
        Some(std::mem::transmute::<i32, ffi::AVPixelFormat>(f))
    }
}

fn language(stream: &ff::format::stream::Stream) -> Option<String> {
    stream.metadata().get("language").map(str::to_string).filter(|l| l != "und")
}

fn video_info(stream: &ff::format::stream::Stream) -> VideoInfo {
    let params = stream.parameters();
    // SAFETY: the parameters outlive every read below.
    let par = unsafe { params.as_ptr() };
    // SAFETY: plain field reads and FFmpeg name lookups on live parameters.
    unsafe {
        let (w, h) = (u32::try_from((*par).width).unwrap_or(0), u32::try_from((*par).height).unwrap_or(0));
        let sar = (*par).sample_aspect_ratio;
        let sar = if sar.num > 0 && sar.den > 0 { (sar.num, sar.den) } else { (1, 1) };
        let rotation = display_rotation(stream);
        let (dw, dh) = ladder::display_size(w, h, sar, rotation);
        let pix = pixel_format(par);
        let (pix_name, depth) = match pix {
            Some(p) => {
                let desc = ffi::av_pix_fmt_desc_get(p);
                let depth = if desc.is_null() { 8 } else { u32::try_from((*desc).comp[0].depth).unwrap_or(8) };
                (cstr(ffi::av_get_pix_fmt_name(p)).unwrap_or_default(), depth)
            }
            None => ("unknown".to_string(), 0),
        };
        let field_order = match (*par).field_order {
            ffi::AVFieldOrder::AV_FIELD_PROGRESSIVE => Some("progressive"),
            ffi::AVFieldOrder::AV_FIELD_TT => Some("tt"),
            ffi::AVFieldOrder::AV_FIELD_BB => Some("bb"),
            ffi::AVFieldOrder::AV_FIELD_TB => Some("tb"),
            ffi::AVFieldOrder::AV_FIELD_BT => Some("bt"),
            _ => None,
        };
        #[allow(clippy::cast_sign_loss)]
        let sar_u = (sar.0 as u64, sar.1 as u64);
        VideoInfo {
            index: u32::try_from(stream.index()).unwrap_or(0),
            codec: params.id().name().to_string(),
            profile: cstr(ffi::avcodec_profile_name((*par).codec_id, (*par).profile)),
            width: w,
            height: h,
            display_width: dw,
            display_height: dh,
            rotation,
            sar: ladder::ratio_string(sar_u.0, sar_u.1),
            // DAR is of the stored picture (pre-rotation), as ffprobe reports it.
            dar: ladder::ratio_string(u64::from(w) * sar_u.0, u64::from(h) * sar_u.1),
            frame_rate: rate(stream.rate()),
            avg_frame_rate: rate(stream.avg_frame_rate()),
            variable_frame_rate: false,
            pixel_format: pix_name,
            bit_depth: depth,
            color_space: known(cstr(ffi::av_color_space_name((*par).color_space))),
            color_primaries: known(cstr(ffi::av_color_primaries_name((*par).color_primaries))),
            color_transfer: known(cstr(ffi::av_color_transfer_name((*par).color_trc))),
            color_range: known(cstr(ffi::av_color_range_name((*par).color_range))),
            field_order: field_order.map(str::to_string),
            language: language(stream),
            #[allow(clippy::cast_precision_loss)]
            frame_count: stream.frames().max(0) as f64,
        }
    }
}

fn audio_info(stream: &ff::format::stream::Stream) -> AudioInfo {
    let params = stream.parameters();
    // SAFETY: the parameters outlive every read below.
    let par = unsafe { params.as_ptr() };
    // SAFETY: field reads and av_channel_layout_describe into a local buffer.
    unsafe {
        let mut buf = [0 as c_char; 128];
        let n = ffi::av_channel_layout_describe(&(*par).ch_layout, buf.as_mut_ptr(), buf.len());
        let layout = if n > 0 { cstr(buf.as_ptr()).unwrap_or_default() } else { String::new() };
        AudioInfo {
            index: u32::try_from(stream.index()).unwrap_or(0),
            codec: params.id().name().to_string(),
            channels: u32::try_from((*par).ch_layout.nb_channels).unwrap_or(0),
            channel_layout: layout,
            sample_rate: u32::try_from((*par).sample_rate).unwrap_or(0),
            language: language(stream),
        }
    }
}

/// A stream counts as "the video" unless it is cover art (attached picture).
pub(crate) fn best_video_index(ctx: &ff::format::context::Input) -> Option<usize> {
    ctx.streams()
        .filter(|s| s.parameters().medium() == media::Type::Video)
        .find(|s| !s.disposition().contains(ff::format::stream::Disposition::ATTACHED_PIC))
        .map(|s| s.index())
}

/// CFR unless the sorted frame spacing varies by more than half a frame.
fn is_variable(mut pts: Vec<i64>) -> bool {
    pts.sort_unstable();
    pts.dedup();
    let deltas: Vec<i64> = pts.windows(2).map(|w| w[1] - w[0]).collect();
    let (Some(min), Some(max)) = (deltas.iter().min(), deltas.iter().max()) else { return false };
    *max * 2 > *min * 3
}

pub fn probe_file(path: &Path) -> MediaResult<ProbeResult> {
    let mut opened = input::open(path)?;
    let ctx = &mut opened.ctx;
    let video_idx = best_video_index(ctx);
    let mut video = video_idx.and_then(|i| ctx.stream(i)).map(|s| video_info(&s));
    let audio: Vec<AudioInfo> = ctx
        .streams()
        .filter(|s| s.parameters().medium() == media::Type::Audio)
        .map(|s| audio_info(&s))
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let duration_sec = if ctx.duration() > 0 { ctx.duration() as f64 / f64::from(ffi::AV_TIME_BASE) } else { 0.0 };
    // SAFETY: plain field read on the open context.
    let bit_rate = unsafe { (*ctx.as_ptr()).bit_rate };
    let container = ctx.format().name().to_string();

    let mut keyframes = Vec::new();
    if let (Some(vi), Some(v)) = (video_idx, video.as_mut()) {
        let stream = ctx.stream(vi).ok_or_else(|| MediaError::new(ErrorCode::Internal, "video stream vanished"))?;
        let tb = stream.time_base();
        let declared = stream.frames();
        let start = stream.start_time();
        // Only the video stream matters for keyframes; discarding the rest skips their I/O cost.
        // SAFETY: setting discard on streams of an open context before reading.
        unsafe {
            for i in 0..(*ctx.as_ptr()).nb_streams as usize {
                let st = *(*ctx.as_mut_ptr()).streams.add(i);
                if i != vi {
                    (*st).discard = ffi::AVDiscard::AVDISCARD_ALL;
                }
            }
        }
        let mut pts_all = Vec::new();
        let mut first = None;
        let mut pkt = ff::Packet::empty();
        loop {
            match input::read_packet(ctx, &mut pkt)? {
                ReadOutcome::Eof => break,
                ReadOutcome::Packet => {}
            }
            if pkt.stream() != vi {
                continue;
            }
            let Some(ts) = pkt.pts().or(pkt.dts()) else { continue };
            pts_all.push(ts);
            if pkt.is_key() {
                keyframes.push(ts);
            }
            first = Some(first.map_or(ts, |f: i64| f.min(ts)));
        }
        if pts_all.is_empty() {
            return Err(MediaError::new(ErrorCode::CorruptInput, "video stream has no readable packets"));
        }
        // An index promising far more frames than the file holds means it was truncated.
        #[allow(clippy::cast_possible_wrap)]
        let read = pts_all.len() as i64;
        if declared > 0 && read * 10 < declared * 9 {
            return Err(MediaError::new(
                ErrorCode::CorruptInput,
                format!("truncated: container declares {declared} video frames, only {read} readable"),
            ));
        }
        let origin = if start != ffi::AV_NOPTS_VALUE { start } else { first.unwrap_or(0) };
        let secs = |ts: i64| {
            #[allow(clippy::cast_precision_loss)]
            let x = (ts - origin) as f64 * f64::from(tb.numerator()) / f64::from(tb.denominator());
            (x * 1e6).round() / 1e6
        };
        let mut kf: Vec<f64> = keyframes.iter().map(|&t| secs(t)).collect();
        kf.sort_by(f64::total_cmp);
        kf.dedup();
        v.variable_frame_rate = is_variable(pts_all);
        #[allow(clippy::cast_precision_loss)]
        if v.frame_count == 0.0 {
            v.frame_count = read as f64;
        }
        return Ok(ProbeResult {
            container,
            duration_sec,
            #[allow(clippy::cast_precision_loss)]
            size_bytes: opened.size_bytes as f64,
            #[allow(clippy::cast_precision_loss)]
            bit_rate: (bit_rate > 0).then_some(bit_rate as f64),
            video,
            audio,
            keyframes: kf,
        });
    }
    Ok(ProbeResult {
        container,
        duration_sec,
        #[allow(clippy::cast_precision_loss)]
        size_bytes: opened.size_bytes as f64,
        #[allow(clippy::cast_precision_loss)]
        bit_rate: (bit_rate > 0).then_some(bit_rate as f64),
        video,
        audio,
        keyframes: Vec::new(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_possible_truncation)]
pub(crate) mod tests {
    use super::{is_variable, probe_file};
    use crate::error::ErrorCode;
    use std::process::Command;

    /// 3 s lavfi clip (H.264 High, keyframe every second, AAC stereo) via the ffmpeg CLI.
    pub(crate) fn lavfi_clip(dir: &std::path::Path, secs: u32, size: &str) -> std::path::PathBuf {
        let out = dir.join("clip.mp4");
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={size}:rate=25:duration={secs}"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!("sine=frequency=440:sample_rate=48000:duration={secs}"))
            .args(["-c:v", "libx264", "-preset", "superfast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2"])
            .arg(&out)
            .status()
            .expect("ffmpeg CLI must be installed for media tests");
        assert!(status.success());
        out
    }

    #[test]
    fn probes_a_generated_clip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clip = lavfi_clip(dir.path(), 3, "320x240");
        let p = probe_file(&clip).expect("probe");
        assert!(p.container.contains("mp4"));
        assert!((p.duration_sec - 3.0).abs() < 0.1, "duration {}", p.duration_sec);
        let v = p.video.expect("video");
        assert_eq!((v.codec.as_str(), v.width, v.height, v.rotation), ("h264", 320, 240, 0));
        assert_eq!(v.profile.as_deref(), Some("High"));
        assert_eq!((v.sar.as_str(), v.dar.as_str()), ("1:1", "4:3"));
        assert!(!v.variable_frame_rate);
        assert_eq!(p.keyframes, vec![0.0, 1.0, 2.0]);
        assert_eq!(p.audio.len(), 1);
        assert_eq!((p.audio[0].channels, p.audio[0].sample_rate), (2, 48_000));
    }

    #[test]
    fn classifies_bad_inputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.mp4");
        std::fs::write(&empty, b"").expect("write");
        assert_eq!(probe_file(&empty).map(|_| ()).unwrap_err().code, ErrorCode::EmptyInput);
        let noise = dir.path().join("noise.mp4");
        let bytes: Vec<u8> = (0..65_536u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(&noise, bytes).expect("write");
        assert_eq!(probe_file(&noise).map(|_| ()).unwrap_err().code, ErrorCode::NotMedia);
        let missing = dir.path().join("missing.mp4");
        assert_eq!(probe_file(&missing).map(|_| ()).unwrap_err().code, ErrorCode::IoError);
    }

    #[test]
    fn vfr_detection() {
        assert!(!is_variable(vec![0, 512, 1024, 1536, 2048]));
        // B-frame reordering does not make a stream VFR
        assert!(!is_variable(vec![0, 1536, 512, 1024, 2048]));
        assert!(is_variable(vec![0, 512, 1024, 3072, 3584]));
    }
}
