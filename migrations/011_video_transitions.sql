-- Video and rendition state transitions, checked in the database as uploads' are (002). The same
-- tables are in src/common/video-state.ts, whose moves (video-store.ts) name their source states,
-- so these triggers only ever fire on a bug or a hand-written UPDATE. A state to itself is allowed.
--   video:     CREATED -> PROCESSING | PARTIALLY_READY | READY | FAILED,
--              PROCESSING -> PARTIALLY_READY | READY | FAILED, PARTIALLY_READY -> READY | FAILED;
--              nothing leaves READY or FAILED.
--   rendition: PENDING -> PROCESSING | FAILED, PROCESSING -> RETRYING | DONE | FAILED,
--              RETRYING -> PROCESSING | FAILED; nothing leaves DONE or FAILED.
-- Deleting a video removes its row from any state and leaves a tombstone: a deleted video id is
-- never inserted again (DELETED is final; its renditions cannot come back either, by foreign key).
CREATE FUNCTION videos_check_transition() RETURNS trigger AS $$
BEGIN
  IF NEW.state IS DISTINCT FROM OLD.state AND NOT (
       (OLD.state = 'CREATED'         AND NEW.state IN ('PROCESSING','PARTIALLY_READY','READY','FAILED'))
    OR (OLD.state = 'PROCESSING'      AND NEW.state IN ('PARTIALLY_READY','READY','FAILED'))
    OR (OLD.state = 'PARTIALLY_READY' AND NEW.state IN ('READY','FAILED'))
  ) THEN
    RAISE EXCEPTION 'video %: illegal state transition % -> %', OLD.video_id, OLD.state, NEW.state
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER videos_transition BEFORE UPDATE ON videos
  FOR EACH ROW EXECUTE FUNCTION videos_check_transition();

CREATE FUNCTION renditions_check_transition() RETURNS trigger AS $$
BEGIN
  IF NEW.state IS DISTINCT FROM OLD.state AND NOT (
       (OLD.state = 'PENDING'    AND NEW.state IN ('PROCESSING','FAILED'))
    OR (OLD.state = 'PROCESSING' AND NEW.state IN ('RETRYING','DONE','FAILED'))
    OR (OLD.state = 'RETRYING'   AND NEW.state IN ('PROCESSING','FAILED'))
  ) THEN
    RAISE EXCEPTION 'rendition %/%: illegal state transition % -> %', OLD.video_id, OLD.name, OLD.state, NEW.state
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER renditions_transition BEFORE UPDATE ON renditions
  FOR EACH ROW EXECUTE FUNCTION renditions_check_transition();

CREATE TABLE video_tombstones (
  video_id   text PRIMARY KEY,
  deleted_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION videos_leave_tombstone() RETURNS trigger AS $$
BEGIN
  INSERT INTO video_tombstones (video_id) VALUES (OLD.video_id) ON CONFLICT DO NOTHING;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER videos_tombstone AFTER DELETE ON videos
  FOR EACH ROW EXECUTE FUNCTION videos_leave_tombstone();

CREATE FUNCTION videos_check_insert() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM video_tombstones WHERE video_id = NEW.video_id) THEN
    RAISE EXCEPTION 'video %: illegal state transition DELETED -> %', NEW.video_id, NEW.state
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER videos_not_deleted BEFORE INSERT ON videos
  FOR EACH ROW EXECUTE FUNCTION videos_check_insert();
