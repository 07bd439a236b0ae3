-- The desk's read model: complaints projected from aduan.routes.v1 / aduan.sla.v1, their
-- append-only history (also aduan.commands.v1: who did what), who may see each complaint,
-- the consumer's offsets (written in the same transaction as the rows), API tokens,
-- web sessions and idempotency keys.

-- Trigram index for the excerpt search (trusted extension: a database owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE desk_complaints (
    complaint_id text PRIMARY KEY,
    thread_key text NOT NULL,
    agency_id text NOT NULL,                 -- the agency responsible now
    agency_kind text,
    kind text NOT NULL DEFAULT 'complaint',  -- message kind (complaint, question, ...)
    category text,
    subcategory text,
    region_code text,
    urgency text,
    platform text,
    excerpt text NOT NULL DEFAULT '',
    policy text,
    status text NOT NULL,                    -- open | resolved
    is_open boolean NOT NULL,
    routed_at timestamptz,
    acknowledged_at timestamptz,
    resolved_at timestamptz,
    escalation_level integer NOT NULL DEFAULT 0,
    reroutes integer NOT NULL DEFAULT 0,
    clocks jsonb NOT NULL DEFAULT '{}',      -- {clock: {due_at, warned, overdue, level}}
    access jsonb NOT NULL DEFAULT '{}',      -- {agency_id: assigned|escalation|former}
    due_sort timestamptz NOT NULL,           -- open: nearest due; resolved: resolution time
    first_response_at timestamptz,
    first_response_business_s double precision,
    first_response_met boolean,
    last_ts bigint NOT NULL,                 -- order key of the last applied event
    last_rank smallint NOT NULL,
    last_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Admin queue: every complaint, open first, by nearest due time (keyset pagination).
CREATE INDEX desk_complaints_queue ON desk_complaints ((NOT is_open), due_sort, complaint_id);
CREATE INDEX desk_complaints_excerpt_trgm ON desk_complaints USING gin (excerpt gin_trgm_ops);

-- Who may see a complaint: every agency it was routed, rerouted or escalated to. The sort
-- key is copied here so one agency's queue is a range scan of one index, whatever the
-- size of the table (measured: bench/desk.py, 1,000,000 complaints).
CREATE TABLE desk_access (
    agency_id text NOT NULL,
    complaint_id text NOT NULL REFERENCES desk_complaints (complaint_id),
    role text NOT NULL,                      -- assigned | escalation | former
    closed_here boolean NOT NULL,            -- not open, or no longer this agency's to act on
    due_sort timestamptz NOT NULL,
    PRIMARY KEY (agency_id, complaint_id)
);
CREATE INDEX desk_access_queue ON desk_access (agency_id, closed_here, due_sort, complaint_id);
CREATE INDEX desk_access_complaint ON desk_access (complaint_id);

-- Append-only history; the event id makes a redelivered record a no-op.
CREATE TABLE desk_history (
    event_id text PRIMARY KEY,
    complaint_id text NOT NULL,
    source text NOT NULL,                    -- routes | sla | commands
    event_type text NOT NULL,
    known boolean NOT NULL,                  -- false: a type this release does not know
    agency_id text,
    clock text,
    clock_seq integer,
    occurred_at timestamptz NOT NULL,
    actor text,
    reason text,
    target_agency_id text,
    escalation_level integer,
    escalate_to text,
    met boolean,
    business_s double precision,
    response_s double precision,
    ts_ms bigint NOT NULL,
    rank smallint NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    payload jsonb NOT NULL
);
CREATE INDEX desk_history_complaint ON desk_history (complaint_id, ts_ms, rank, kafka_offset);
CREATE INDEX desk_history_stats ON desk_history (agency_id, event_type, occurred_at);

-- Consumer positions, committed with the rows they produced (never in Kafka).
CREATE TABLE desk_offsets (
    consumer text NOT NULL,
    topic text NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, kafka_partition)
);

CREATE TABLE desk_tokens (
    token_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,        -- SHA-256 of the token; the token is never stored
    scope text NOT NULL CHECK (scope IN ('agency', 'admin')),
    agency_id text,
    label text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CHECK ((scope = 'agency') = (agency_id IS NOT NULL))
);

CREATE TABLE desk_sessions (
    session_hash bytea PRIMARY KEY,          -- SHA-256 of the cookie value
    token_id bigint NOT NULL REFERENCES desk_tokens (token_id),
    csrf text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE TABLE desk_idempotency (
    token_id bigint NOT NULL REFERENCES desk_tokens (token_id),
    idempotency_key text NOT NULL,
    request_hash bytea NOT NULL,
    command_id text NOT NULL,
    status_code integer,                     -- NULL while the first request is in flight
    response jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, idempotency_key)
);
