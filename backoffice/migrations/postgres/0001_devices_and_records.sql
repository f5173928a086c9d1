CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    added_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE nonces (
    device TEXT NOT NULL REFERENCES devices (id),
    nonce TEXT NOT NULL,
    request_at BIGINT NOT NULL,
    PRIMARY KEY (device, nonce)
);
CREATE INDEX nonces_by_age ON nonces (device, request_at);
CREATE TABLE records (
    device TEXT NOT NULL REFERENCES devices (id),
    seq BIGINT NOT NULL CHECK (seq >= 1),
    hash BYTEA NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    kiosk_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE TABLE held_records (
    device TEXT NOT NULL REFERENCES devices (id),
    seq BIGINT NOT NULL CHECK (seq >= 1),
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE TABLE anomalies (
    id BIGSERIAL PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices (id),
    seq BIGINT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    evidence_hash BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (device, reason, evidence_hash)
);
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    balance BIGINT NOT NULL,
    overdraft_floor BIGINT NOT NULL CHECK (overdraft_floor <= 0),
    created_at BIGINT NOT NULL
);
CREATE TABLE movements (
    id BIGSERIAL PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL,
    device TEXT NOT NULL,
    seq BIGINT NOT NULL,
    reverses_seq BIGINT,
    at BIGINT NOT NULL,
    FOREIGN KEY (device, seq) REFERENCES records (device, seq)
);
CREATE INDEX movements_by_record ON movements (device, seq);
CREATE UNIQUE INDEX movements_one_reversal ON movements (device, reverses_seq, account)
    WHERE reverses_seq IS NOT NULL;
CREATE TABLE kiosks (
    device TEXT PRIMARY KEY REFERENCES devices (id),
    last_seen BIGINT NOT NULL,
    report TEXT NOT NULL
);
