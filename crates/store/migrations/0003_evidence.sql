-- The evidence tree over the call log, stored as tlog tiles: each row holds
-- up to 256 consecutive 32-byte hashes of one level. Written in the same
-- transaction as the call records they cover. Level 0 holds full tiles only.
CREATE TABLE log_tiles (
    level   INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    hashes  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- Signed checkpoints (C2SP signed notes), oldest first.
CREATE TABLE log_checkpoints (
    id      INTEGER PRIMARY KEY,
    size    INTEGER NOT NULL,
    time_us INTEGER NOT NULL,
    key_id  TEXT NOT NULL,
    note    TEXT NOT NULL
);
CREATE INDEX log_checkpoints_size ON log_checkpoints (size);

-- Every key that has signed checkpoints, kept after rotation for verification.
CREATE TABLE log_keys (
    key_id      TEXT PRIMARY KEY,
    vkey        TEXT NOT NULL UNIQUE,
    created_us  INTEGER NOT NULL,
    retired_us  INTEGER
);

-- Bodies kept for APIs configured to keep them, until they expire. The
-- evidence tree binds only their hashes, so deleting them breaks no proof.
CREATE TABLE call_bodies (
    seq         INTEGER PRIMARY KEY,
    request     BLOB,
    response    BLOB,
    expires_us  INTEGER NOT NULL
);
CREATE INDEX call_bodies_expiry ON call_bodies (expires_us);

ALTER TABLE apis ADD COLUMN keep_bodies INTEGER NOT NULL DEFAULT 0;

-- Each record's leaf hash, written with it. Full level-0 tiles are also
-- stored in log_tiles; the last, incomplete one is read from here, so a
-- group commit does not rewrite a tile.
ALTER TABLE calls ADD COLUMN leaf_hash BLOB;
