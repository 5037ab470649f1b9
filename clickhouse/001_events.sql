-- Playback events (seed 000: "partitioned by time + video_id"). ClickHouse 18.16 syntax: custom
-- PARTITION BY and ORDER BY are supported there; no TTL/CODEC/LowCardinality-only features.
--
-- Idempotent ingestion. insert_deduplicate works only for Replicated* tables (needs ZooKeeper),
-- so the gateway gives each event a deterministic event_id (`{batch_id}:{index}`) and retries a
-- batch with the same ids. ReplacingMergeTree collapses rows with equal sorting keys (an event's
-- video_id/ts/session_id never change, so equal event_id means equal key) at merge time, and the
-- analytics queries read with FINAL so duplicates that are not merged yet never count. On retry the
-- writer also asks whether the batch_id is already fully stored and skips it if so.
-- ClickHouse applies statements split on ';' by src/analytics/clickhouse.ts: one statement each.
CREATE DATABASE IF NOT EXISTS vora;
CREATE TABLE IF NOT EXISTS vora.playback_events (
  event_date     Date, -- sent by the writer: 18.16 JSONEachRow ignores DEFAULTs of omitted columns
  ts             DateTime,
  ts_ms          UInt16 DEFAULT 0,
  received_at    DateTime,
  video_id       String,
  session_id     String,
  type           String,
  segment        Nullable(Int32),
  bandwidth      Nullable(UInt32),
  watch_time_sec Nullable(Float64),
  position_sec   Nullable(Float64),
  batch_id       String,
  event_id       String
) ENGINE = ReplacingMergeTree()
PARTITION BY (toYYYYMM(event_date), cityHash64(video_id) % 16)
ORDER BY (video_id, ts, session_id, event_id);
