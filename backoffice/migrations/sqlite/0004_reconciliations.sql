CREATE INDEX records_day_closes ON records (device, seq) WHERE kind = 'day_close';
CREATE INDEX movements_by_time ON movements (at);
CREATE INDEX operations_by_time ON operations (at);
CREATE TABLE reconciliations (
    service_date TEXT NOT NULL,
    site TEXT NOT NULL,
    report TEXT NOT NULL,
    run_at INTEGER NOT NULL,
    run_by TEXT NOT NULL,
    signed_off_by TEXT,
    signed_off_at INTEGER,
    PRIMARY KEY (service_date, site)
) STRICT;
CREATE TRIGGER reconciliations_signed_off_update BEFORE UPDATE ON reconciliations
    WHEN OLD.signed_off_at IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'a signed-off reconciliation is immutable'); END;
CREATE TRIGGER reconciliations_signed_off_delete BEFORE DELETE ON reconciliations
    WHEN OLD.signed_off_at IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'a signed-off reconciliation is immutable'); END;
CREATE TABLE proposed_voids (
    id INTEGER PRIMARY KEY,
    service_date TEXT NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kept_device TEXT NOT NULL,
    kept_seq INTEGER NOT NULL,
    account TEXT NOT NULL,
    pupil TEXT NOT NULL,
    service TEXT NOT NULL,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by TEXT,
    decided_at INTEGER,
    correction_date TEXT,
    UNIQUE (device, seq),
    FOREIGN KEY (device, seq) REFERENCES records (device, seq)
) STRICT;
CREATE INDEX proposed_voids_by_date ON proposed_voids (service_date);
