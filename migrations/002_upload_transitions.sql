-- Upload state transitions, checked in the database (src/api/states.ts holds the same table):
-- CREATED -> UPLOADING | UPLOADED | FAILED | EXPIRED, UPLOADING -> UPLOADED | FAILED | EXPIRED,
-- and nothing ever leaves UPLOADED, FAILED or EXPIRED.
CREATE OR REPLACE FUNCTION uploads_check_transition() RETURNS trigger AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
       (OLD.status = 'CREATED'   AND NEW.status IN ('UPLOADING','UPLOADED','FAILED','EXPIRED'))
    OR (OLD.status = 'UPLOADING' AND NEW.status IN ('UPLOADED','FAILED','EXPIRED'))
  ) THEN
    RAISE EXCEPTION 'upload %: illegal status transition % -> %', OLD.upload_id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER uploads_transition BEFORE UPDATE ON uploads
  FOR EACH ROW EXECUTE FUNCTION uploads_check_transition();

-- The expiration sweeper looks for unfinished uploads by age.
CREATE INDEX uploads_unfinished_idx ON uploads (created_at) WHERE status IN ('CREATED','UPLOADING');
-- The reconciler looks for finished uploads whose video has not been handed to Temporal yet.
CREATE INDEX videos_created_state_idx ON videos (created_at) WHERE state = 'CREATED';
