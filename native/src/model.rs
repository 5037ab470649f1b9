//! Plain data shared across the boundary. `#[napi(object)]` structs are ordinary
//! Rust structs (copied into JS objects), so the FFmpeg layer can fill them
//! without depending on the N-API runtime; serde keeps them checkpointable.

use napi_derive::napi;
use serde::{Deserialize, Serialize};

#[napi(object)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoInfo {
    pub index: u32,
    pub codec: String,
    pub profile: Option<String>,
    pub width: u32,
    pub height: u32,
    pub display_width: u32,
    pub display_height: u32,
    /// Clockwise degrees to rotate for display (0/90/180/270).
    pub rotation: u32,
    pub sar: String,
    pub dar: String,
    pub frame_rate: f64,
    pub avg_frame_rate: f64,
    pub variable_frame_rate: bool,
    pub pixel_format: String,
    pub bit_depth: u32,
    pub color_space: Option<String>,
    pub color_primaries: Option<String>,
    pub color_transfer: Option<String>,
    pub color_range: Option<String>,
    pub field_order: Option<String>,
    pub language: Option<String>,
    /// Frame count from the container index when it has one (0 = unknown).
    pub frame_count: f64,
}

#[napi(object)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioInfo {
    pub index: u32,
    pub codec: String,
    pub channels: u32,
    pub channel_layout: String,
    pub sample_rate: u32,
    pub language: Option<String>,
}

#[napi(object)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeResult {
    pub container: String,
    pub duration_sec: f64,
    pub size_bytes: f64,
    pub bit_rate: Option<f64>,
    pub video: Option<VideoInfo>,
    pub audio: Vec<AudioInfo>,
    /// Keyframe presentation times in seconds from the start of the video stream.
    pub keyframes: Vec<f64>,
}
