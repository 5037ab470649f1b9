//! The only place that touches `ffmpeg-next` / libav*. Everything outside this
//! module works with plain Rust types, so the FFmpeg surface stays auditable.

mod audio;
mod chunk;
mod hls;
mod input;
mod package;
mod probe;
mod rung_threads;
mod split;
mod thumbs;

use std::ffi::CStr;
use std::os::raw::c_char;
use std::sync::Once;

pub use ffmpeg_next as ff;

pub use audio::{run_audio, AudioJob};
pub use hls::{run_hls, EncoderPref, HlsJob, HlsProgress, RungJob, RungOutput};
pub use package::{run_package, PackageJob};
pub use probe::probe_file;
pub use chunk::{run_chunk, ChunkJob};
pub use thumbs::{run_thumbnails, ThumbJob};
pub use split::{run_split, SplitRange};

use crate::error::{ErrorCode, MediaError};

static INIT: Once = Once::new();

/// Idempotent global setup. FFmpeg logs straight to stderr, which would interleave
/// with the host's structured logs, so it is silenced unless VORA_FFMPEG_LOG asks.
pub fn init() {
    INIT.call_once(|| {
        let _ = ff::init();
        let level = match std::env::var("VORA_FFMPEG_LOG").as_deref() {
            Ok("error") => ff::log::Level::Error,
            Ok("warning") => ff::log::Level::Warning,
            Ok("info") => ff::log::Level::Info,
            Ok("debug") => ff::log::Level::Debug,
            _ => ff::log::Level::Quiet,
        };
        ff::log::set_level(level);
    });
}

/// Copies a C string owned by FFmpeg (static tables) into an owned `String`.
pub(crate) fn cstr(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: FFmpeg name getters return NUL-terminated static strings or null.
    Some(unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

/// Maps an FFmpeg error from a given pipeline stage to our taxonomy.
pub(crate) fn map_err(code: ErrorCode, stage: &str, err: ff::Error) -> MediaError {
    MediaError::new(code, format!("{stage}: {err}"))
}

/// True for the errors that are control flow in the send/receive API, not failures.
pub(crate) fn is_again(err: &ff::Error) -> bool {
    matches!(err, ff::Error::Other { errno } if *errno == libc::EAGAIN)
}
