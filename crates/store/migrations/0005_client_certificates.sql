-- A system bound to a client certificate: its calls are taken only over
-- mutual TLS with that certificate. The certificate itself is kept so that an
-- operator can see what was bound; the gateway compares fingerprints.
CREATE TABLE system_certificates (
    system_id TEXT PRIMARY KEY REFERENCES systems(id),
    -- Lower-case hex SHA-256 of the certificate's DER encoding.
    sha256    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    issuer    TEXT NOT NULL,
    not_after TEXT NOT NULL,
    pem       TEXT NOT NULL,
    bound_by  TEXT NOT NULL,
    bound_at  TEXT NOT NULL
);
