-- Upload and video are different things (seed 000): a video row exists only once its upload is
-- UPLOADED, and points back to it. States are docs/states.md's; CHECKs keep bad ones out.
CREATE TABLE uploads (
  upload_id       text PRIMARY KEY,
  status          text NOT NULL DEFAULT 'CREATED'
                  CHECK (status IN ('CREATED','UPLOADING','UPLOADED','FAILED','EXPIRED')),
  bytes_uploaded  bigint NOT NULL DEFAULT 0,
  size            bigint,
  filename        text,
  filetype        text,
  sha256_expected text,
  sha256_actual   text,
  object_key      text,
  error_code      text,
  error_message   text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE videos (
  video_id        text PRIMARY KEY,
  upload_id       text NOT NULL UNIQUE REFERENCES uploads(upload_id),
  state           text NOT NULL DEFAULT 'CREATED'
                  CHECK (state IN ('CREATED','PROCESSING','PARTIALLY_READY','READY','FAILED')),
  failure_code    text,
  failure_message text,
  duration_sec    double precision,
  source          jsonb,
  source_key      text NOT NULL,
  workflow_id     text NOT NULL UNIQUE,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX videos_created_idx ON videos (created_at DESC, video_id DESC);
CREATE INDEX videos_state_idx ON videos (state, created_at DESC);

CREATE TABLE renditions (
  video_id   text NOT NULL REFERENCES videos(video_id) ON DELETE CASCADE,
  name       text NOT NULL,
  state      text NOT NULL DEFAULT 'PENDING'
             CHECK (state IN ('PENDING','PROCESSING','DONE','RETRYING','FAILED')),
  width      integer,
  height     integer,
  bandwidth  integer,
  attempts   integer NOT NULL DEFAULT 0,
  error      text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (video_id, name)
);
