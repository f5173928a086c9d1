CREATE INDEX records_day_closes ON records (device, seq) WHERE kind = 'day_close';
CREATE INDEX movements_by_time ON movements (at);
CREATE INDEX operations_by_time ON operations (at);
CREATE TABLE reconciliations (
    service_date TEXT NOT NULL,
    site TEXT NOT NULL,
    report TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    run_by TEXT NOT NULL,
    signed_off_by TEXT,
    signed_off_at BIGINT,
    PRIMARY KEY (service_date, site)
);
CREATE FUNCTION refuse_signed_off_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.signed_off_at IS NOT NULL THEN
        RAISE EXCEPTION 'a signed-off reconciliation is immutable';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER reconciliations_signed_off BEFORE UPDATE OR DELETE ON reconciliations
    FOR EACH ROW EXECUTE FUNCTION refuse_signed_off_change();
CREATE TABLE proposed_voids (
    id BIGSERIAL PRIMARY KEY,
    service_date TEXT NOT NULL,
    device TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kept_device TEXT NOT NULL,
    kept_seq BIGINT NOT NULL,
    account TEXT NOT NULL,
    pupil TEXT NOT NULL,
    service TEXT NOT NULL,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by TEXT,
    decided_at BIGINT,
    correction_date TEXT,
    UNIQUE (device, seq),
    FOREIGN KEY (device, seq) REFERENCES records (device, seq)
);
CREATE INDEX proposed_voids_by_date ON proposed_voids (service_date);
