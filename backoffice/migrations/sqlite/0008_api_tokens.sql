-- Machine clients (the online payment provider, scripts) sign in with a token city IT made:
-- stored as its SHA-256, with a role, a site for staff, an expiry, and revocable.
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('staff', 'finance', 'admin', 'payments')),
    site TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
