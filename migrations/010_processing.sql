-- Processing bookkeeping for VideoProcessingWorkflow.
-- encode_log: one row per (chunk, rendition) encode or skip, so "work is not redone" is measurable.
CREATE TABLE encode_log (
  id          bigserial PRIMARY KEY,
  video_id    text NOT NULL,
  chunk       integer NOT NULL,
  rendition   text NOT NULL,
  attempt     integer NOT NULL,
  skipped     boolean NOT NULL,
  encoder     text,
  worker      text NOT NULL,
  duration_ms integer,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX encode_log_video_idx ON encode_log (video_id, rendition, chunk);

ALTER TABLE renditions
  ADD COLUMN chunks_done  integer NOT NULL DEFAULT 0,
  ADD COLUMN chunks_total integer;

-- Live status: every change of a video or one of its renditions is announced on channel
-- 'vora_video' with the video id, for the gateway's WebSocket push.
CREATE FUNCTION vora_notify_video_change() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('vora_video', COALESCE(NEW.video_id, OLD.video_id));
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER videos_notify AFTER INSERT OR UPDATE OR DELETE ON videos
  FOR EACH ROW EXECUTE FUNCTION vora_notify_video_change();
CREATE TRIGGER renditions_notify AFTER INSERT OR UPDATE OR DELETE ON renditions
  FOR EACH ROW EXECUTE FUNCTION vora_notify_video_change();
