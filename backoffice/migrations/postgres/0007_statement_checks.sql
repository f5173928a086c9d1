-- An upload inserts its records in one statement, then their movements in another. A foreign
-- key checks each inserted row with a query of its own: half of such a statement's time with
-- 500 rows. These triggers check all of a statement's rows in one query, and refuse what the
-- foreign keys refused besides: removing a device, an account or a record that rows refer to,
-- and changing the columns that refer or are referred to (nothing changes them). It can run
-- again on a schema it already changed.
ALTER TABLE records DROP CONSTRAINT IF EXISTS records_device_fkey;
ALTER TABLE movements DROP CONSTRAINT IF EXISTS movements_account_fkey;
ALTER TABLE movements DROP CONSTRAINT IF EXISTS movements_device_seq_fkey;
CREATE OR REPLACE FUNCTION check_inserted_records() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted i
               WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = i.device)) THEN
        RAISE EXCEPTION 'a record of an unknown device' USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER records_of_known_devices AFTER INSERT ON records
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION check_inserted_records();
CREATE OR REPLACE FUNCTION check_inserted_movements() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted i
               WHERE NOT EXISTS (SELECT 1 FROM records r
                                 WHERE r.device = i.device AND r.seq = i.seq)) THEN
        RAISE EXCEPTION 'a movement without its record' USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM inserted i
               WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = i.account)) THEN
        RAISE EXCEPTION 'a movement of an unknown account'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER movements_of_known_records AFTER INSERT ON movements
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION check_inserted_movements();
CREATE OR REPLACE FUNCTION refuse_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% keys are never changed', TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation';
END
$$;
CREATE OR REPLACE TRIGGER records_keys BEFORE UPDATE OF device, seq ON records
    FOR EACH ROW EXECUTE FUNCTION refuse_key_change();
CREATE OR REPLACE TRIGGER movements_keys BEFORE UPDATE OF account, device, seq ON movements
    FOR EACH ROW EXECUTE FUNCTION refuse_key_change();
CREATE OR REPLACE TRIGGER devices_keys BEFORE UPDATE OF id ON devices
    FOR EACH ROW EXECUTE FUNCTION refuse_key_change();
CREATE OR REPLACE TRIGGER accounts_keys BEFORE UPDATE OF id ON accounts
    FOR EACH ROW EXECUTE FUNCTION refuse_key_change();
CREATE OR REPLACE FUNCTION refuse_referenced_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    referred BOOLEAN;
BEGIN
    -- One branch a table: OLD has only its own table's columns.
    IF TG_TABLE_NAME = 'devices' THEN
        referred := EXISTS (SELECT 1 FROM records WHERE device = OLD.id);
    ELSIF TG_TABLE_NAME = 'accounts' THEN
        referred := EXISTS (SELECT 1 FROM movements WHERE account = OLD.id);
    ELSE
        referred := EXISTS (SELECT 1 FROM movements WHERE device = OLD.device AND seq = OLD.seq);
    END IF;
    IF referred THEN
        RAISE EXCEPTION 'rows refer to this % row', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END
$$;
CREATE OR REPLACE TRIGGER devices_referenced BEFORE DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION refuse_referenced_delete();
CREATE OR REPLACE TRIGGER accounts_referenced BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION refuse_referenced_delete();
CREATE OR REPLACE TRIGGER records_referenced BEFORE DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION refuse_referenced_delete();
