-- API management: lifecycle and description of APIs, their specifications,
-- data standards, plans, onboarding requests, network rules, API keys,
-- several upstreams, feedback tickets.

-- Plans: a rate with burst, and quotas.
CREATE TABLE plans (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    rate        INTEGER NOT NULL CHECK (rate > 0),
    burst       INTEGER NOT NULL CHECK (burst > 0),
    per_day     INTEGER CHECK (per_day > 0),
    per_month   INTEGER CHECK (per_month > 0),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Lifecycle: draft -> published -> deprecated -> retired. APIs registered
-- before lifecycles existed were taking calls, so they start published.
ALTER TABLE apis ADD COLUMN status TEXT NOT NULL DEFAULT 'published'
    CHECK (status IN ('draft', 'published', 'deprecated', 'retired'));
ALTER TABLE apis ADD COLUMN description TEXT NOT NULL DEFAULT '';
-- JSON array of strings.
ALTER TABLE apis ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apis ADD COLUMN contact TEXT NOT NULL DEFAULT '';
ALTER TABLE apis ADD COLUMN deprecated_at TEXT;
-- Day (YYYY-MM-DD) from which a deprecated API is retired.
ALTER TABLE apis ADD COLUMN retire_on TEXT;
-- JSON array of further upstream base URLs, balanced with upstream_url.
ALTER TABLE apis ADD COLUMN extra_upstreams TEXT NOT NULL DEFAULT '[]';
-- Path the active health check asks of every upstream (NULL: no check).
ALTER TABLE apis ADD COLUMN health_path TEXT;
-- Plan given to subscriptions that do not name one (NULL: no limit).
ALTER TABLE apis ADD COLUMN default_plan TEXT REFERENCES plans(id);
ALTER TABLE apis ADD COLUMN updated_at TEXT;
-- The unit that owns the API: its provider system's unit.
ALTER TABLE apis ADD COLUMN owner_unit TEXT REFERENCES units(code);
UPDATE apis SET owner_unit = (SELECT unit_code FROM systems WHERE systems.id = apis.provider_system);

-- Every change of an API's lifecycle, with who and when.
CREATE TABLE api_events (
    id      INTEGER PRIMARY KEY,
    api_id  TEXT NOT NULL REFERENCES apis(id),
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX api_events_api ON api_events (api_id, id);

-- The specification of an API: OpenAPI (JSON or YAML) or WSDL, as uploaded.
CREATE TABLE api_specs (
    api_id       TEXT PRIMARY KEY REFERENCES apis(id),
    kind         TEXT NOT NULL CHECK (kind IN ('openapi', 'wsdl')),
    media_type   TEXT NOT NULL,
    content      BLOB NOT NULL,
    sha256       TEXT NOT NULL,
    summary      TEXT NOT NULL,
    uploaded_at  TEXT NOT NULL
);

-- Data standards: JSON Schema documents with versions.
CREATE TABLE data_standards (
    id          TEXT NOT NULL,
    version     TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    owner_unit  TEXT REFERENCES units(code),
    tags        TEXT NOT NULL DEFAULT '[]',
    schema      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (id, version)
);

-- An operation of an API whose request body must validate against a standard.
CREATE TABLE api_validations (
    api_id           TEXT NOT NULL REFERENCES apis(id),
    method           TEXT NOT NULL,
    path             TEXT NOT NULL,
    standard_id      TEXT NOT NULL,
    standard_version TEXT NOT NULL,
    PRIMARY KEY (api_id, method, path),
    FOREIGN KEY (standard_id, standard_version) REFERENCES data_standards(id, version)
);

ALTER TABLE subscriptions ADD COLUMN plan_id TEXT REFERENCES plans(id);

-- Onboarding: a consumer asks for a subscription; the provider decides.
CREATE TABLE subscription_requests (
    id              TEXT PRIMARY KEY,
    consumer_system TEXT NOT NULL REFERENCES systems(id),
    api_id          TEXT NOT NULL REFERENCES apis(id),
    plan_id         TEXT REFERENCES plans(id),
    purpose         TEXT NOT NULL,
    legal_basis     TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused', 'withdrawn')),
    requested_by    TEXT NOT NULL,
    requested_at    TEXT NOT NULL,
    due_at          TEXT NOT NULL,
    decided_by      TEXT,
    decided_at      TEXT,
    reason          TEXT,
    subscription_id TEXT REFERENCES subscriptions(id)
);
CREATE UNIQUE INDEX subscription_requests_pending
    ON subscription_requests (consumer_system, api_id) WHERE status = 'pending';
CREATE INDEX subscription_requests_due ON subscription_requests (status, due_at);

CREATE TABLE subscription_request_events (
    id          INTEGER PRIMARY KEY,
    request_id  TEXT NOT NULL REFERENCES subscription_requests(id),
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX subscription_request_events_request ON subscription_request_events (request_id, id);

-- Public holidays: not working days for the onboarding deadline.
CREATE TABLE holidays (
    day  TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

-- Networks a system may call from (none: any).
CREATE TABLE system_networks (
    system_id  TEXT NOT NULL REFERENCES systems(id),
    cidr       TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (system_id, cidr)
);

-- API keys: a second credential of one system, stored as a SHA-256 hash.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    system_id   TEXT NOT NULL REFERENCES systems(id),
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    key_hash    BLOB NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX api_keys_system ON api_keys (system_id);

-- Feedback tickets on APIs.
CREATE TABLE tickets (
    id              TEXT PRIMARY KEY,
    api_id          TEXT NOT NULL REFERENCES apis(id),
    consumer_system TEXT NOT NULL REFERENCES systems(id),
    kind            TEXT NOT NULL CHECK (kind IN ('problem', 'question', 'request')),
    subject         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX tickets_api ON tickets (api_id, status);
CREATE INDEX tickets_consumer ON tickets (consumer_system, status);

CREATE TABLE ticket_messages (
    id         INTEGER PRIMARY KEY,
    ticket_id  TEXT NOT NULL REFERENCES tickets(id),
    at         TEXT NOT NULL,
    author     TEXT NOT NULL,
    side       TEXT NOT NULL CHECK (side IN ('consumer', 'provider', 'operator')),
    body       TEXT NOT NULL,
    status     TEXT NOT NULL
);
CREATE INDEX ticket_messages_ticket ON ticket_messages (ticket_id, id);
