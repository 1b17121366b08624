-- One row the AMQP intake rewrites to learn whether the store takes writes
-- again after a failure (a standby promoted or a database no longer read
-- only, space freed, locks released). Reading alone is not enough: a
-- read-only database answers queries, and consuming again while it refuses
-- writes would cost every waiting message a delivery of the queue's limit.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at TEXT NOT NULL
);
