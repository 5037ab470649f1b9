-- API keys (issue 4): write endpoints need `Authorization: Bearer <key>`; only the key's sha256 is
-- stored. Uploads and videos record the key that made them (owner), whether the video is private,
-- and whether the upload asked for deduplication (on finish, a file whose sha256 matches a live
-- video of the same owner answers with that video instead of making a new one).
CREATE TABLE api_keys (
  id         text PRIMARY KEY,
  name       text NOT NULL,
  hash       text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);

ALTER TABLE uploads
  ADD COLUMN owner_key_id   text REFERENCES api_keys(id),
  ADD COLUMN private        boolean NOT NULL DEFAULT false,
  ADD COLUMN dedup          boolean NOT NULL DEFAULT false,
  -- dedup: the existing video this upload resolved to (it made none of its own)
  ADD COLUMN dedup_video_id text REFERENCES videos(video_id) ON DELETE SET NULL;

ALTER TABLE videos
  ADD COLUMN owner_key_id text REFERENCES api_keys(id),
  ADD COLUMN private      boolean NOT NULL DEFAULT false;

-- dedup lookup: verified uploads by digest
CREATE INDEX uploads_sha256_idx ON uploads (sha256_actual) WHERE status = 'UPLOADED';
