-- A name is locked for the client that failed under it, not for everyone: failures are counted
-- per name and client address, so no one can lock a colleague out from another machine.
ALTER TABLE sign_in_failures ADD COLUMN client TEXT NOT NULL DEFAULT '';
DROP INDEX sign_in_failures_by_name;
CREATE INDEX sign_in_failures_by_name ON sign_in_failures (user_name, client, at);
-- A user city IT disabled signs in no more and their sessions end; their name stays on what
-- they did.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
