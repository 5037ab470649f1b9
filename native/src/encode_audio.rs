//! `encodeAudio`: the source's first audio stream encoded once into an fMP4 HLS
//! audio rendition (`audio/index.m3u8`), for the chunked pipeline's master.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use napi::bindgen_prelude::{Env, Object};
use napi_derive::napi;

use crate::cancel::CancelToken;
use crate::error::{ErrorCode, MediaError, MediaResult};
use crate::ffmpeg::{self, AudioJob};
use crate::playlist;
use crate::transcode::{segment_sec, HlsSegment};
use crate::worker;

#[napi(object)]
#[derive(Debug, Clone)]
pub struct EncodeAudioOptions {
    pub input: String,
    /// The rendition goes to `outDir/audio/`.
    pub out_dir: String,
    pub segment_duration_sec: f64,
}

#[napi(object)]
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HlsAudioResult {
    /// EXT-X-MEDIA NAME, e.g. 'audio' or the language.
    pub name: String,
    pub language: Option<String>,
    /// Output channels (2).
    pub channels: u32,
    pub source_channels: u32,
    pub sample_rate: u32,
    /// RFC 6381, from the encoder's AudioSpecificConfig: 'mp4a.40.2'.
    pub codecs: String,
    pub bandwidth: f64,
    pub average_bandwidth: f64,
    pub duration_sec: f64,
    /// Relative to outDir: 'audio/index.m3u8' (alternates: 'audio_1/index.m3u8', ...).
    pub playlist: String,
    pub segments: Vec<HlsSegment>,
    /// The source's other audio streams, same settings and grid, in stream order
    /// (listed in the same EXT-X-MEDIA group, not DEFAULT). Empty on alternates themselves.
    pub alternates: Vec<HlsAudioResult>,
}

/// RFC 8216 LANGUAGE is an RFC 5646 tag, whose primary subtag is the shortest ISO
/// 639 code: containers carry ISO 639-2 ('eng'), players match 'en'.
pub fn bcp47_language(tag: &str) -> String {
    let t = tag.trim().to_ascii_lowercase();
    let short = match t.as_str() {
        "eng" => "en",
        "fra" | "fre" => "fr",
        "deu" | "ger" => "de",
        "spa" => "es",
        "ita" => "it",
        "por" => "pt",
        "rus" => "ru",
        "jpn" => "ja",
        "zho" | "chi" => "zh",
        "kor" => "ko",
        "ara" => "ar",
        "hin" => "hi",
        "nld" | "dut" => "nl",
        "swe" => "sv",
        "pol" => "pl",
        "tur" => "tr",
        "ukr" => "uk",
        "ces" | "cze" => "cs",
        "ell" | "gre" => "el",
        "heb" => "he",
        _ => return t,
    };
    short.to_string()
}

fn run(o: &EncodeAudioOptions, cancel: &AtomicBool) -> MediaResult<Option<HlsAudioResult>> {
    let seg = segment_sec(Some(o.segment_duration_sec))?;
    let span = tracing::info_span!("encode_audio", input = %o.input);
    let _g = span.enter();
    let Some(mut first) = encode_track(o, seg, 0, "audio", cancel)? else {
        return Ok(None);
    };
    let mut names = vec![first.name.clone()];
    for track in 1.. {
        let Some(mut alt) = encode_track(o, seg, track, &format!("audio_{track}"), cancel)? else { break };
        if names.contains(&alt.name) {
            alt.name = format!("{} {}", alt.name, track + 1);
        }
        names.push(alt.name.clone());
        first.alternates.push(alt);
    }
    Ok(Some(first))
}

fn encode_track(o: &EncodeAudioOptions, seg: f64, track: usize, dir_name: &str, cancel: &AtomicBool) -> MediaResult<Option<HlsAudioResult>> {
    let span = tracing::info_span!("audio_track", track);
    let _g = span.enter();
    let dir = PathBuf::from(&o.out_dir).join(dir_name);
    let job = AudioJob { input: PathBuf::from(&o.input), out_dir: dir.clone(), segment_sec: seg, track };
    let Some(out) = ffmpeg::run_audio(&job, cancel).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&dir);
    })?
    else {
        return Ok(None);
    };
    let pl_path = dir.join("index.m3u8");
    let text = std::fs::read_to_string(&pl_path).map_err(|e| MediaError::io(&format!("read {}", pl_path.display()), &e))?;
    let pl = playlist::parse_media_playlist(&text).map_err(|e| MediaError::new(ErrorCode::Internal, format!("{}: {e}", pl_path.display())))?;
    // Exact EXTINF: the muxer counts the encoder priming into the first segment and
    // the last frame's padding into the last; the rendition is exactly the source's audio.
    let mut durations: Vec<f64> = pl.segments.iter().map(|s| s.duration_sec).collect();
    if let Some(first) = durations.first_mut() {
        *first -= out.priming_sec;
    }
    if let Some((last, before)) = durations.split_last_mut() {
        let rest = out.duration_sec - before.iter().sum::<f64>();
        if rest > 0.0 {
            *last = rest;
        }
    }
    let mut segments = Vec::new();
    let mut sized = Vec::new();
    for (s, &d) in pl.segments.iter().zip(&durations) {
        let d = (d * 1e6).round() / 1e6;
        let p = dir.join(&s.uri);
        let bytes = std::fs::metadata(&p).map_err(|e| MediaError::io(&format!("stat {}", p.display()), &e))?.len();
        sized.push((bytes, d));
        #[allow(clippy::cast_precision_loss)]
        segments.push(HlsSegment { file: s.uri.clone(), duration_sec: d, bytes: bytes as f64 });
    }
    tracing::info!(encoded_sec = out.duration_sec, playlist_sec = sized.iter().map(|s| s.1).sum::<f64>(), "audio rendition written");
    let (peak, avg) = playlist::measure_bandwidth(&sized);
    let entries: Vec<(String, f64)> = segments.iter().map(|s| (s.file.clone(), s.duration_sec)).collect();
    std::fs::write(&pl_path, playlist::media_playlist("init.mp4", &entries))
        .map_err(|e| MediaError::io(&format!("write {}", pl_path.display()), &e))?;
    let language = out.language.as_deref().map(bcp47_language);
    #[allow(clippy::cast_precision_loss)]
    Ok(Some(HlsAudioResult {
        name: language.clone().unwrap_or_else(|| "audio".into()),
        language,
        channels: out.channels,
        source_channels: out.source_channels,
        sample_rate: 48_000,
        codecs: out.codecs,
        bandwidth: peak as f64,
        average_bandwidth: avg as f64,
        duration_sec: (segments.iter().map(|s| s.duration_sec).sum::<f64>() * 1e6).round() / 1e6,
        playlist: format!("{dir_name}/index.m3u8"),
        segments,
        alternates: Vec::new(),
    }))
}

/// Encodes the first audio stream once into `outDir/audio/`; resolves null without audio.
#[napi(ts_return_type = "Promise<HlsAudioResult | null>")]
#[allow(clippy::needless_pass_by_value)] // napi hands over owned values
pub fn encode_audio<'env>(env: &'env Env, options: EncodeAudioOptions, cancel: &CancelToken) -> napi::Result<Object<'env>> {
    let flag: Arc<AtomicBool> = cancel.flag();
    worker::spawn_promise(env, "vora-audio", move || run(&options, &flag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_become_bcp47() {
        assert_eq!(bcp47_language("eng"), "en");
        assert_eq!(bcp47_language("FRE"), "fr");
        assert_eq!(bcp47_language("pt-BR"), "pt-br");
        assert_eq!(bcp47_language("tlh"), "tlh");
    }
}
