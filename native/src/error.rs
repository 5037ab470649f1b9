//! Error taxonomy shared by every export. The code is the contract with JS
//! (`err.code`); the message only carries the human-readable cause.

use std::fmt;

use napi::bindgen_prelude::{Env, JsError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    NotMedia,
    NoVideoStream,
    UnsupportedCodec,
    CorruptInput,
    EmptyInput,
    Aborted,
    IoError,
    EncoderError,
    Internal,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotMedia => "NOT_MEDIA",
            Self::NoVideoStream => "NO_VIDEO_STREAM",
            Self::UnsupportedCodec => "UNSUPPORTED_CODEC",
            Self::CorruptInput => "CORRUPT_INPUT",
            Self::EmptyInput => "EMPTY_INPUT",
            Self::Aborted => "ABORTED",
            Self::IoError => "IO_ERROR",
            Self::EncoderError => "ENCODER_ERROR",
            Self::Internal => "INTERNAL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MediaError {
    pub code: ErrorCode,
    pub message: String,
}

pub type MediaResult<T> = Result<T, MediaError>;

impl MediaError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn io(context: &str, err: &std::io::Error) -> Self {
        Self::new(ErrorCode::IoError, format!("{context}: {err}"))
    }

    /// Builds the JS `Error` (with `code`) on the JS thread and wraps it so a
    /// deferred can reject with it verbatim: `JsDeferred::reject` only takes
    /// `Error<Status>`, whose own code would be a generic N-API status.
    pub fn into_napi(self, env: Env) -> napi::Error {
        let js = JsError::from(napi::Error::new(self.code.as_str(), self.message));
        napi::Error::from(js.into_unknown(env))
    }
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for MediaError {}
