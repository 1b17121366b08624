-- The broker a store's outbox is published to, recorded by the hub
-- instances that publish it (serve with --amqp-url: the AMQP prefix they
-- use). An instance without a broker, or with another prefix, refuses to
-- start on such a store: its relay would take the others' rows and mark
-- them published without sending them where their consumers are.
CREATE TABLE outbox_broker (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    amqp_prefix TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
