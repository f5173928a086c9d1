CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('staff', 'finance', 'admin', 'payments')),
    site TEXT,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE operations (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('top_up', 'adjustment', 'online_payment')),
    account TEXT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL,
    detail TEXT NOT NULL,
    payment_reference TEXT UNIQUE,
    user_name TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX operations_by_account ON operations (account);
