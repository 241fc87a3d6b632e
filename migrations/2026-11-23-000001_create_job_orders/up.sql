-- Job orders (jobordrer) as the hub last sent them: one row per order, at the
-- highest version seen. Fields that are queried or validated are columns;
-- enumerations are text with CHECK constraints so that psql shows words.
CREATE TABLE job_orders (
    id uuid PRIMARY KEY,
    version bigint NOT NULL CHECK (version >= 1),
    -- SHA-256 of the snapshot as parsed (unknown fields dropped): the same
    -- version with other content is a version conflict.
    content_hash bytea NOT NULL,
    request_id text,
    origin text NOT NULL CHECK (origin IN ('jobag', 'unit')),
    changed_by_kind text NOT NULL CHECK (changed_by_kind IN ('employer', 'unit', 'system')),
    changed_by_unit_type text,
    changed_by_unit_code text,
    title text NOT NULL,
    occupation_name text NOT NULL,
    occupation_alias text,
    occupation_code text,
    employer_cvr text NOT NULL,
    employer_p_number text,
    employer_name text NOT NULL,
    employer_conflict_affected boolean NOT NULL,
    contact_name text,
    contact_email text,
    contact_phone text,
    responsible_unit_type text NOT NULL CHECK (responsible_unit_type IN ('jobcenter', 'akasse')),
    responsible_unit_code text NOT NULL,
    coordinator_id text,
    coordinator_name text,
    coordinator_allowed boolean NOT NULL,
    tasks text NOT NULL,
    qualifications_and_pay text,
    working_hours text,
    continuous boolean NOT NULL,
    positions integer,
    expected_start date,
    mediation_deadline date,
    status text NOT NULL CHECK (status IN ('open', 'temporarily_inactive', 'closed')),
    status_reason text,
    status_comment text,
    sharing_scope text NOT NULL
        CHECK (sharing_scope IN ('internal', 'neighbours', 'recruitment_community', 'national', 'selected')),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    -- Set by a handover (change of responsible unit) until a later version
    -- names another coordinator than handover_coordinator_id.
    coordinator_reassignment_needed boolean NOT NULL DEFAULT false,
    handover_coordinator_id text,
    expired_at timestamptz,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX job_orders_responsible_unit ON job_orders (responsible_unit_type, responsible_unit_code);

-- The units an order is shared with (besides its responsible unit).
CREATE TABLE job_order_sharing (
    job_order_id uuid NOT NULL REFERENCES job_orders (id) ON DELETE CASCADE,
    unit_type text NOT NULL CHECK (unit_type IN ('jobcenter', 'akasse', 'workindenmark')),
    unit_code text NOT NULL,
    PRIMARY KEY (job_order_id, unit_type, unit_code)
);

CREATE INDEX job_order_sharing_unit ON job_order_sharing (unit_type, unit_code);

-- The inbox: ids of inbound messages whose effects are committed. A
-- redelivered message whose id is here has no further effect.
CREATE TABLE processed_messages (
    message_id text PRIMARY KEY,
    queue text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('applied', 'stale', 'duplicate')),
    job_order_id uuid,
    version bigint,
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX processed_messages_processed_at ON processed_messages (processed_at);

-- The transactional outbox: messages to publish, written in the transaction
-- that caused them and deleted once the broker confirmed them.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    event_id text NOT NULL,
    exchange text NOT NULL,
    routing_key text NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    body bytea NOT NULL,
    job_order_id uuid,
    created_at timestamptz NOT NULL DEFAULT now()
);
