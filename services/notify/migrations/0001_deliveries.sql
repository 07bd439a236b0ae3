-- notify's durable record: one row per (event id, channel, target), the delivery's whole life.
CREATE TABLE notify_deliveries (
    id              bigserial PRIMARY KEY,
    event_id        text        NOT NULL,
    channel         text        NOT NULL,  -- email, webhook, telegram, whatsapp, log, reply
    target          text        NOT NULL,  -- address, endpoint id, chat id, number, complaint
    lane            text        NOT NULL,  -- the queue it waits in (one per transport instance)
    source          text        NOT NULL,  -- '<topic>:<partition>' it was read from (ownership)
    source_offset   bigint      NOT NULL,
    source_key      bytea,
    event           bytea       NOT NULL,  -- the event record's bytes (dead letters carry them)
    notice          bytea       NOT NULL,  -- what the recipient is told: JSON (rendered when sent)
    event_time      timestamptz NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    parks           integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    last_error      text,
    receipt         text,                  -- the platform's message id, the SMTP reply
    UNIQUE (event_id, channel, target)
);
-- What a lane's feeder asks: this lane's pending rows of the partitions I own, due now.
CREATE INDEX notify_deliveries_pending ON notify_deliveries (lane, source, next_attempt_at, id)
    WHERE status = 'pending';

-- The latest route event of each complaint: SLA events carry no category or excerpt.
-- JSON kept as bytes: read back whole, never queried inside (bytea costs no JSON parse).
CREATE TABLE notify_complaints (
    complaint_id text PRIMARY KEY,
    route        bytea       NOT NULL,  -- the route event's JSON as consumed
    routed_at    timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
