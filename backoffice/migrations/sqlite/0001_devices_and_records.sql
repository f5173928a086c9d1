CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    public_key BLOB NOT NULL,
    added_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE TABLE nonces (
    device TEXT NOT NULL REFERENCES devices (id),
    nonce TEXT NOT NULL,
    request_at INTEGER NOT NULL,
    PRIMARY KEY (device, nonce)
) STRICT;
CREATE INDEX nonces_by_age ON nonces (device, request_at);
CREATE TABLE records (
    device TEXT NOT NULL REFERENCES devices (id),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    hash BLOB NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    kiosk_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (device, seq)
) STRICT;
CREATE TABLE held_records (
    device TEXT NOT NULL REFERENCES devices (id),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (device, seq)
) STRICT;
CREATE TABLE anomalies (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices (id),
    seq INTEGER,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    evidence_hash BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (device, reason, evidence_hash)
) STRICT;
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    balance INTEGER NOT NULL,
    overdraft_floor INTEGER NOT NULL CHECK (overdraft_floor <= 0),
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE movements (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    reverses_seq INTEGER,
    at INTEGER NOT NULL,
    FOREIGN KEY (device, seq) REFERENCES records (device, seq)
) STRICT;
CREATE INDEX movements_by_record ON movements (device, seq);
CREATE UNIQUE INDEX movements_one_reversal ON movements (device, reverses_seq, account)
    WHERE reverses_seq IS NOT NULL;
CREATE TABLE kiosks (
    device TEXT PRIMARY KEY REFERENCES devices (id),
    last_seen INTEGER NOT NULL,
    report TEXT NOT NULL
) STRICT;
