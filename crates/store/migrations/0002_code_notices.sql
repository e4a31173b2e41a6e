-- Systems that want to hear of new versions of a code list, and the notices
-- sent to them (an outbox: written with the version, delivered afterwards).
CREATE TABLE code_list_callbacks (
    id           TEXT PRIMARY KEY,
    list_id      TEXT NOT NULL REFERENCES code_lists(id),
    system_id    TEXT NOT NULL REFERENCES systems(id),
    callback_url TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE UNIQUE INDEX code_list_callbacks_active ON code_list_callbacks (list_id, system_id, callback_url)
    WHERE revoked_at IS NULL;

CREATE TABLE code_notices (
    id              TEXT PRIMARY KEY,
    callback_id     TEXT NOT NULL REFERENCES code_list_callbacks(id),
    list_id         TEXT NOT NULL,
    version         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_us INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX code_notices_due ON code_notices (state, next_attempt_us);
