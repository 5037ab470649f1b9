-- Playback events (seed 000: "partitioned by time + video_id"). ClickHouse 18.16 syntax: custom
-- PARTITION BY and ORDER BY are supported there; no TTL/CODEC/LowCardinality-only features.
CREATE DATABASE IF NOT EXISTS vora;
CREATE TABLE IF NOT EXISTS vora.playback_events (
  event_date     Date DEFAULT toDate(ts),
  ts             DateTime,
  received_at    DateTime,
  video_id       String,
  session_id     String,
  type           String,
  segment        Nullable(Int32),
  bandwidth      Nullable(UInt32),
  watch_time_sec Nullable(Float64),
  position_sec   Nullable(Float64),
  batch_id       String
) ENGINE = MergeTree()
PARTITION BY (toYYYYMM(event_date), cityHash64(video_id) % 16)
ORDER BY (video_id, ts, session_id);
