CREATE TABLE web_sessions (
    token_hash BLOB PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    csrf TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
CREATE TABLE sign_in_failures (
    id INTEGER PRIMARY KEY,
    user_name TEXT NOT NULL,
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX sign_in_failures_by_name ON sign_in_failures (user_name, at);
CREATE INDEX sign_in_failures_by_age ON sign_in_failures (at);
CREATE INDEX movements_by_account ON movements (account, at);
CREATE INDEX operations_by_account_time ON operations (account, at);
CREATE INDEX records_by_kiosk_time ON records (device, kind, kiosk_at);
CREATE INDEX cards_by_holder ON cards (holder_kind, holder);
CREATE TABLE meal_days (
    site TEXT NOT NULL,
    service_date TEXT NOT NULL,
    meals INTEGER NOT NULL,
    revenue INTEGER NOT NULL,
    PRIMARY KEY (site, service_date)
) STRICT;
INSERT INTO meal_days (site, service_date, meals, revenue)
SELECT d.site, json_extract(r.payload, '$.service_date'),
       SUM(CASE WHEN v.id IS NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN v.id IS NULL THEN json_extract(r.payload, '$.price') ELSE 0 END)
FROM records r
JOIN devices d ON d.id = r.device
LEFT JOIN movements v ON v.device = r.device AND v.reverses_seq = r.seq
WHERE r.kind = 'meal'
GROUP BY d.site, json_extract(r.payload, '$.service_date');
