-- Derived from the records, as meal_days is: no foreign key to them, so a record removed
-- behind the back-office's back is for reconciliation to find missing, not refused here.
CREATE TABLE meals (
    site TEXT NOT NULL,
    service_date TEXT NOT NULL,
    kiosk_at INTEGER NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    service TEXT NOT NULL,
    meal_type TEXT NOT NULL,
    account TEXT NOT NULL,
    pupil TEXT NOT NULL,
    via_card TEXT,
    via_staff TEXT,
    price INTEGER NOT NULL,
    PRIMARY KEY (site, service_date, kiosk_at, device, seq),
    CHECK ((via_card IS NULL) <> (via_staff IS NULL))
) STRICT, WITHOUT ROWID;
INSERT INTO meals (site, service_date, kiosk_at, device, seq, service, meal_type, account, pupil,
                   via_card, via_staff, price)
SELECT d.site, json_extract(r.payload, '$.service_date'), r.kiosk_at, r.device, r.seq,
       json_extract(r.payload, '$.service'), json_extract(r.payload, '$.meal_type'),
       json_extract(r.payload, '$.account'), json_extract(r.payload, '$.pupil'),
       json_extract(r.payload, '$.via.card'), json_extract(r.payload, '$.via.staff'),
       json_extract(r.payload, '$.price')
FROM records r
JOIN devices d ON d.id = r.device
WHERE r.kind = 'meal';
