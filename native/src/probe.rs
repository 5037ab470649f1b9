//! `probe(path)`: stream inventory and keyframe index.

use std::path::PathBuf;

use napi::bindgen_prelude::{Env, Object};
use napi_derive::napi;

use crate::{ffmpeg, worker};

/// Resolves to a `ProbeResult`; rejects with `err.code` in the MediaErrorCode set.
#[napi(ts_return_type = "Promise<ProbeResult>")]
pub fn probe(env: &Env, path: String) -> napi::Result<Object<'_>> {
    worker::spawn_promise(env, "vora-probe", move || {
        let span = tracing::info_span!("probe", path = %path);
        let _g = span.enter();
        ffmpeg::probe_file(&PathBuf::from(path))
    })
}
