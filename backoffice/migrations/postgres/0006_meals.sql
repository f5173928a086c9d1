-- Derived from the records, as meal_days is: no foreign key to them, so a record removed
-- behind the back-office's back is for reconciliation to find missing, not refused here.
CREATE TABLE meals (
    site TEXT NOT NULL,
    service_date TEXT NOT NULL,
    kiosk_at BIGINT NOT NULL,
    device TEXT NOT NULL,
    seq BIGINT NOT NULL,
    service TEXT NOT NULL,
    meal_type TEXT NOT NULL,
    account TEXT NOT NULL,
    pupil TEXT NOT NULL,
    via_card TEXT,
    via_staff TEXT,
    price BIGINT NOT NULL,
    PRIMARY KEY (site, service_date, kiosk_at, device, seq),
    CHECK ((via_card IS NULL) <> (via_staff IS NULL))
);
INSERT INTO meals (site, service_date, kiosk_at, device, seq, service, meal_type, account, pupil,
                   via_card, via_staff, price)
SELECT d.site, m.p ->> 'service_date', r.kiosk_at, r.device, r.seq, m.p ->> 'service',
       m.p ->> 'meal_type', m.p ->> 'account', m.p ->> 'pupil', m.p -> 'via' ->> 'card',
       m.p -> 'via' ->> 'staff', (m.p ->> 'price')::BIGINT
FROM records r
JOIN devices d ON d.id = r.device
CROSS JOIN LATERAL (SELECT r.payload::jsonb AS p) m
WHERE r.kind = 'meal';
