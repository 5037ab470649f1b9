//! HLS playlist text: parsing the media playlists libavformat wrote (to report what
//! is really on disk) and writing the RFC 8216 master playlist.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaSegment {
    pub uri: String,
    pub duration_sec: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MediaPlaylist {
    pub init_uri: Option<String>,
    pub target_duration: Option<u32>,
    pub segments: Vec<MediaSegment>,
    pub ended: bool,
}

/// Parses the subset of a media playlist we need: EXT-X-MAP, EXTINF + URI pairs.
pub fn parse_media_playlist(text: &str) -> Result<MediaPlaylist, String> {
    let mut pl = MediaPlaylist::default();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err("missing #EXTM3U header".into());
    }
    let mut pending: Option<f64> = None;
    for line in lines {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let dur = rest.split(',').next().unwrap_or("").trim();
            pending = Some(dur.parse::<f64>().map_err(|e| format!("bad EXTINF {dur:?}: {e}"))?);
        } else if let Some(rest) = line.strip_prefix("#EXT-X-MAP:") {
            pl.init_uri = attr(rest, "URI");
        } else if let Some(rest) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            pl.target_duration = rest.trim().parse().ok();
        } else if line == "#EXT-X-ENDLIST" {
            pl.ended = true;
        } else if !line.starts_with('#') {
            let duration_sec = pending.take().ok_or_else(|| format!("URI {line:?} without EXTINF"))?;
            pl.segments.push(MediaSegment { uri: line.to_string(), duration_sec });
        }
    }
    Ok(pl)
}

/// Rewrites the last segment's EXTINF. libavformat's hls muxer estimates the final
/// segment from the last packet in *decode* order plus one frame, which with
/// B-frames undercounts by up to the reorder depth (and differently per rung).
pub fn set_last_duration(text: &str, duration_sec: f64) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(last) = lines.iter().rposition(|l| l.starts_with("#EXTINF:")) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    for (i, l) in lines.iter().enumerate() {
        if i == last {
            out.push_str(&format!("#EXTINF:{duration_sec:.6},"));
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

fn attr(list: &str, key: &str) -> Option<String> {
    let start = list.find(&format!("{key}="))? + key.len() + 1;
    let rest = &list[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next().map(str::to_string)
    } else {
        rest.split(',').next().map(str::to_string)
    }
}

/// RFC 8216 VOD media playlist for fMP4 segments with exact durations.
/// TARGETDURATION is the largest duration rounded up (never below any EXTINF
/// rounded to the nearest integer, as 4.3.3.1 requires).
pub fn media_playlist(init_uri: &str, segments: &[(String, f64)]) -> String {
    let max = segments.iter().map(|s| s.1).fold(0.0f64, f64::max);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let target = ((max - 1e-6).ceil().max(1.0)) as u64;
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{init_uri}\"\n"
    );
    for (uri, d) in segments {
        out.push_str(&format!("#EXTINF:{d:.6},\n{uri}\n"));
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// One `EXT-X-STREAM-INF` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantEntry {
    pub uri: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub width: u32,
    pub height: u32,
    pub codecs: String,
    pub frame_rate: f64,
}

/// A separate audio rendition (`EXT-X-MEDIA TYPE=AUDIO`) shared by every variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioEntry {
    pub uri: String,
    pub name: String,
    pub language: Option<String>,
    pub channels: u32,
    pub codecs: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
}

pub const AUDIO_GROUP: &str = "aud";

/// Master playlist, lowest bandwidth first (players start at the first entry).
/// With `audio`, every variant references the audio group and its BANDWIDTH /
/// CODECS include the audio rendition's (RFC 8216 4.3.4.2).
/// `audio`: the group's renditions, the first one DEFAULT; variant bandwidth counts
/// the most demanding one.
pub fn master_playlist(variants: &[VariantEntry], audio: &[AudioEntry]) -> String {
    let mut sorted: Vec<&VariantEntry> = variants.iter().collect();
    sorted.sort_by_key(|v| v.bandwidth);
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (i, a) in audio.iter().enumerate() {
        let lang = a.language.as_deref().map(|l| format!("LANGUAGE=\"{l}\",")).unwrap_or_default();
        out.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"{}\",{lang}DEFAULT={},AUTOSELECT=YES,CHANNELS=\"{}\",URI=\"{}\"\n",
            a.name.replace('"', "'"),
            if i == 0 { "YES" } else { "NO" },
            a.channels,
            a.uri
        ));
    }
    let peak = audio.iter().max_by_key(|a| a.bandwidth).cloned();
    let peak = peak.map(|p| AudioEntry { average_bandwidth: audio.iter().map(|a| a.average_bandwidth).max().unwrap_or(0), ..p });
    for v in sorted {
        let (bw, avg, codecs, group) = match peak.as_ref() {
            Some(a) => {
                let codecs = if v.codecs.contains("mp4a") { v.codecs.clone() } else { format!("{},{}", v.codecs, a.codecs) };
                (v.bandwidth + a.bandwidth, v.average_bandwidth + a.average_bandwidth, codecs, format!(",AUDIO=\"{AUDIO_GROUP}\""))
            }
            None => (v.bandwidth, v.average_bandwidth, v.codecs.clone(), String::new()),
        };
        out.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={bw},AVERAGE-BANDWIDTH={avg},RESOLUTION={}x{},CODECS=\"{codecs}\",FRAME-RATE={:.3}{group}\n{}\n",
            v.width, v.height, v.frame_rate, v.uri
        ));
    }
    out
}

/// (peak, average) bits per second over segments given as (bytes, seconds).
/// Peak is the max per-segment rate, which is what BANDWIDTH must bound (RFC 8216 4.3.4.2).
pub fn measure_bandwidth(segments: &[(u64, f64)]) -> (u64, u64) {
    let mut peak = 0.0f64;
    let (mut bytes, mut secs) = (0u64, 0.0f64);
    for &(b, d) in segments {
        bytes += b;
        secs += d;
        if d > 0.0 {
            #[allow(clippy::cast_precision_loss)]
            let rate = b as f64 * 8.0 / d;
            peak = peak.max(rate);
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let avg = if secs > 0.0 { bytes as f64 * 8.0 / secs } else { 0.0 };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (peak.ceil() as u64, avg.ceil() as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    const MEDIA: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.000000,\nseg_00000.m4s\n#EXTINF:2.000000,\nseg_00001.m4s\n#EXT-X-ENDLIST\n";

    #[test]
    fn parses_ffmpeg_media_playlist() {
        let pl = parse_media_playlist(MEDIA).expect("parse");
        assert_eq!(pl.init_uri.as_deref(), Some("init.mp4"));
        assert_eq!(pl.target_duration, Some(4));
        assert!(pl.ended);
        assert_eq!(pl.segments.len(), 2);
        assert_eq!(pl.segments[1].uri, "seg_00001.m4s");
        assert!((pl.segments[0].duration_sec - 4.0).abs() < 1e-9);
    }

    #[test]
    fn rewrites_only_the_last_extinf() {
        let fixed = set_last_duration(MEDIA, 2.033333);
        let pl = parse_media_playlist(&fixed).expect("parse");
        assert!((pl.segments[0].duration_sec - 4.0).abs() < 1e-9);
        assert!((pl.segments[1].duration_sec - 2.033333).abs() < 1e-9);
        assert!(fixed.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_media_playlist("hello").is_err());
        assert!(parse_media_playlist("#EXTM3U\nseg.m4s\n").is_err());
    }

    #[test]
    fn master_is_sorted_and_complete() {
        let v = |h: u32, bw: u64| VariantEntry {
            uri: format!("{h}p/index.m3u8"),
            bandwidth: bw,
            average_bandwidth: bw / 2,
            width: h * 16 / 9,
            height: h,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            frame_rate: 29.97,
        };
        let text = master_playlist(&[v(720, 3_000_000), v(360, 800_000)], &[]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#EXTM3U");
        assert!(lines.contains(&"#EXT-X-INDEPENDENT-SEGMENTS"));
        assert_eq!(
            lines[3],
            "#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=400000,RESOLUTION=640x360,CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=29.970"
        );
        assert_eq!(lines[4], "360p/index.m3u8");
        assert_eq!(lines[6], "720p/index.m3u8");
    }

    #[test]
    fn master_with_audio_group() {
        let v = VariantEntry {
            uri: "360p/index.m3u8".into(),
            bandwidth: 800_000,
            average_bandwidth: 700_000,
            width: 640,
            height: 360,
            codecs: "avc1.64001e".into(),
            frame_rate: 25.0,
        };
        let a = AudioEntry {
            uri: "audio/index.m3u8".into(),
            name: "English".into(),
            language: Some("en".into()),
            channels: 2,
            codecs: "mp4a.40.2".into(),
            bandwidth: 140_000,
            average_bandwidth: 130_000,
        };
        let text = master_playlist(&[v], &[a]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[3],
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\""
        );
        assert_eq!(
            lines[4],
            "#EXT-X-STREAM-INF:BANDWIDTH=940000,AVERAGE-BANDWIDTH=830000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",FRAME-RATE=25.000,AUDIO=\"aud\""
        );
    }

    #[test]
    fn media_playlist_is_exact() {
        let text = media_playlist("init.mp4", &[("seg_00000.m4s".into(), 4.0), ("seg_00001.m4s".into(), 4.5)]);
        assert!(text.contains("#EXT-X-TARGETDURATION:5\n"));
        assert!(text.contains("#EXTINF:4.500000,\nseg_00001.m4s\n"));
        let pl = parse_media_playlist(&text).unwrap();
        assert!(pl.ended);
        assert_eq!(pl.segments.len(), 2);
    }

    #[test]
    fn bandwidth_peak_and_average() {
        let (peak, avg) = measure_bandwidth(&[(500_000, 4.0), (400_000, 2.0)]);
        assert_eq!(peak, 1_600_000);
        assert_eq!(avg, 1_200_000);
        assert_eq!(measure_bandwidth(&[]), (0, 0));
    }
}
