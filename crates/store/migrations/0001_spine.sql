-- Registry: units, systems, APIs, subscriptions.
CREATE TABLE units (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    parent_code TEXT REFERENCES units(code),
    created_at  TEXT NOT NULL
);

CREATE TABLE systems (
    id                TEXT PRIMARY KEY,
    unit_code         TEXT NOT NULL REFERENCES units(code),
    code              TEXT NOT NULL,
    name              TEXT NOT NULL,
    client_id         TEXT NOT NULL UNIQUE,
    secret_hash       BLOB NOT NULL,
    secret_generation INTEGER NOT NULL DEFAULT 1,
    enabled           INTEGER NOT NULL DEFAULT 1,
    builtin           INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (unit_code, code)
);

CREATE TABLE apis (
    id                TEXT PRIMARY KEY,
    provider_system   TEXT NOT NULL REFERENCES systems(id),
    name              TEXT NOT NULL,
    context           TEXT NOT NULL,
    version           TEXT NOT NULL,
    upstream_url      TEXT NOT NULL,
    protocol          TEXT NOT NULL CHECK (protocol IN ('rest', 'soap', 'builtin')),
    timeout_ms        INTEGER NOT NULL,
    shared_by_default INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    UNIQUE (context, version)
);

CREATE TABLE subscriptions (
    id              TEXT PRIMARY KEY,
    consumer_system TEXT NOT NULL REFERENCES systems(id),
    api_id          TEXT NOT NULL REFERENCES apis(id),
    created_at      TEXT NOT NULL,
    revoked_at      TEXT
);
CREATE UNIQUE INDEX subscriptions_active ON subscriptions (consumer_system, api_id)
    WHERE revoked_at IS NULL;

-- The call log: one row per data-plane request that names an API.
CREATE TABLE calls (
    seq             INTEGER PRIMARY KEY,
    request_id      TEXT NOT NULL UNIQUE,
    time_us         INTEGER NOT NULL,
    consumer        TEXT,
    api             TEXT,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    status          INTEGER NOT NULL,
    latency_us      INTEGER NOT NULL,
    request_bytes   INTEGER NOT NULL,
    response_bytes  INTEGER NOT NULL,
    request_sha256  TEXT NOT NULL,
    response_sha256 TEXT NOT NULL,
    client_addr     TEXT NOT NULL,
    reason          TEXT
);
CREATE INDEX calls_time ON calls (time_us);
CREATE INDEX calls_consumer ON calls (consumer, time_us);
CREATE INDEX calls_api ON calls (api, time_us);

-- Shared code lists: a list has versions with validity periods, a version has items.
CREATE TABLE code_lists (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    owner_unit  TEXT,
    description TEXT NOT NULL DEFAULT '',
    legal_basis TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL DEFAULT ''
);

CREATE TABLE code_list_versions (
    list_id      TEXT NOT NULL REFERENCES code_lists(id),
    version      TEXT NOT NULL,
    valid_from   TEXT,
    valid_to     TEXT,
    published_at TEXT NOT NULL,
    PRIMARY KEY (list_id, version)
);

CREATE TABLE code_items (
    list_id     TEXT NOT NULL,
    version     TEXT NOT NULL,
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,
    parent_code TEXT,
    level       INTEGER NOT NULL,
    attributes  TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (list_id, version, code),
    FOREIGN KEY (list_id, version) REFERENCES code_list_versions(list_id, version)
);

CREATE TABLE code_mappings (
    list_id      TEXT NOT NULL,
    from_version TEXT NOT NULL,
    to_version   TEXT NOT NULL,
    old_code     TEXT NOT NULL,
    new_code     TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('merged', 'divided', 'renamed', 'recoded')),
    is_default   INTEGER NOT NULL,
    PRIMARY KEY (list_id, from_version, to_version, old_code, new_code)
);
