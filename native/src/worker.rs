//! Runs blocking media work on a dedicated OS thread and settles a JS promise from
//! it. Not the libuv pool: a long transcode there would starve fs/dns callbacks of
//! the whole process (the pool has 4 threads by default).

use std::panic::AssertUnwindSafe;

use napi::bindgen_prelude::{Env, Object, ToNapiValue};

use crate::error::{ErrorCode, MediaError, MediaResult};

type Resolver<T> = Box<dyn FnOnce(Env) -> napi::Result<T> + Send>;

pub fn spawn_promise<'env, T, F>(env: &'env Env, name: &str, work: F) -> napi::Result<Object<'env>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce() -> MediaResult<T> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<T, Resolver<T>>()?;
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let result = std::panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(MediaError::new(ErrorCode::Internal, format!("native worker panicked: {msg}")))
            });
            // The resolver runs on the JS thread, where the coded Error object can be built.
            deferred.resolve(Box::new(move |env| result.map_err(|e| e.into_napi(env))));
        })
        .map_err(|e| napi::Error::from_reason(format!("spawn {name} thread: {e}")))?;
    Ok(promise)
}
