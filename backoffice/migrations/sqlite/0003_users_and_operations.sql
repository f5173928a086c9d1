CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('staff', 'finance', 'admin', 'payments')),
    site TEXT,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE operations (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('top_up', 'adjustment', 'online_payment')),
    account TEXT NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL,
    detail TEXT NOT NULL,
    payment_reference TEXT UNIQUE,
    user_name TEXT NOT NULL,
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX operations_by_account ON operations (account);
