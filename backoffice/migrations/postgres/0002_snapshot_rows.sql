CREATE TABLE snapshot_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO snapshot_version (id, version) VALUES (1, 0);
ALTER TABLE accounts ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX accounts_by_version ON accounts (version);
CREATE TABLE pupils (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    account TEXT NOT NULL REFERENCES accounts (id),
    data TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX pupils_by_site ON pupils (site, version);
CREATE INDEX pupils_by_account ON pupils (account);
CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    data TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE TABLE cards (
    uid BYTEA PRIMARY KEY,
    site TEXT NOT NULL,
    holder_kind TEXT NOT NULL CHECK (holder_kind IN ('pupil', 'staff')),
    holder TEXT NOT NULL,
    blocked BOOLEAN NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX cards_by_site ON cards (site, version);
CREATE INDEX cards_blocked ON cards (blocked, version);
CREATE TABLE tariffs (
    site TEXT NOT NULL,
    bracket TEXT NOT NULL,
    meal_type TEXT NOT NULL,
    price BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (site, bracket, meal_type)
);
CREATE TABLE services (
    site TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (site, id)
);
CREATE TABLE kiosk_settings (
    site TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    version BIGINT NOT NULL
);
