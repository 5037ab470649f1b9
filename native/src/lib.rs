//! Vora native media core (N-API). Modules map 1:1 to exported concepts; all
//! FFmpeg use lives behind `ffmpeg`.

mod affinity;
mod cancel;
mod checkpoint;
mod chunk;
mod codecs;
mod encode_audio;
mod encode_chunk;
mod error;
mod ffmpeg;
mod ladder;
mod model;
mod package;
mod playlist;
mod probe;
mod split;
mod thumbnails;
mod transcode;
mod worker;

pub use cancel::CancelToken;
pub use chunk::{plan_chunks, Chunk};
pub use encode_audio::{encode_audio, EncodeAudioOptions, HlsAudioResult};
pub use encode_chunk::{encode_chunk, ChunkRenditionResult, EncodeChunkOptions, EncodeChunkResult};
pub use error::{ErrorCode, MediaError};
pub use model::{AudioInfo, ProbeResult, VideoInfo};
pub use package::{package_rendition, PackageRenditionOptions};
pub use probe::probe;
pub use split::{split_source, SplitChunkFile, SplitSourceOptions};
pub use thumbnails::{thumbnails, StoryboardOptions, StoryboardResult, ThumbnailsOptions, ThumbnailsResult};
pub use transcode::{master_playlist, transcode_to_hls, HlsRenditionResult, HlsResult, HlsSegment, NativeHlsOptions, RenditionSpec};
