-- Mediation logs (formidlingslog): per job order, the log as the hub last
-- sent it (its highest version), the current entries, and an append-only
-- history of every entry's status changes. And what the log rules need to
-- judge an entry by the order as it stood when the entry was made, since the
-- two streams arrive independently.

-- updated_at of the version that closed the order (null while not closed),
-- and since when coordinator_allowed has its value.
ALTER TABLE job_orders
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN coordinator_allowed_since timestamptz;
UPDATE job_orders
SET coordinator_allowed_since = created_at,
    closed_at = CASE WHEN status = 'closed' THEN updated_at END;
ALTER TABLE job_orders ALTER COLUMN coordinator_allowed_since SET NOT NULL;

-- Units that were responsible for, or shared with, an order and no longer
-- are, with the updated_at of the version that took it from them.
CREATE TABLE job_order_former_units (
    job_order_id uuid NOT NULL REFERENCES job_orders (id),
    unit_type text NOT NULL CHECK (unit_type IN ('jobcenter', 'akasse', 'workindenmark')),
    unit_code text NOT NULL,
    role text NOT NULL CHECK (role IN ('responsible', 'shared')),
    until timestamptz NOT NULL,
    PRIMARY KEY (job_order_id, unit_type, unit_code, role)
);

CREATE TABLE mediation_logs (
    job_order_id uuid PRIMARY KEY REFERENCES job_orders (id),
    version bigint NOT NULL CHECK (version >= 1),
    -- SHA-256 of the snapshot as parsed: the same version with other content
    -- is a version conflict.
    content_hash bytea NOT NULL,
    -- The counts of section 5.2 over every entry (the responsible unit's view).
    total integer NOT NULL,
    awaiting_approval integer NOT NULL,
    undecided integer NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- The entries of each log at its stored version. Entries never disappear.
CREATE TABLE mediation_entries (
    job_order_id uuid NOT NULL REFERENCES mediation_logs (job_order_id),
    mediation_id uuid NOT NULL,
    -- The log version this row was last written from.
    log_version bigint NOT NULL,
    person_ref text NOT NULL,
    registered_by_type text NOT NULL CHECK (registered_by_type IN ('jobcenter', 'akasse', 'workindenmark')),
    registered_by_code text NOT NULL,
    registered_at timestamptz NOT NULL,
    status text NOT NULL
        CHECK (status IN ('awaiting_approval', 'available_to_company', 'hired', 'not_hired', 'withdrawn')),
    status_changed_at timestamptz NOT NULL,
    status_changed_by_kind text NOT NULL CHECK (status_changed_by_kind IN ('employer', 'unit', 'system')),
    status_changed_by_unit_type text,
    status_changed_by_unit_code text,
    searchable_cv boolean NOT NULL,
    cv_active boolean NOT NULL,
    protected_identity boolean NOT NULL,
    note text,
    PRIMARY KEY (job_order_id, mediation_id)
);

-- A unit's own candidates across orders (a non-responsible unit's view).
CREATE INDEX mediation_entries_registered_by
    ON mediation_entries (registered_by_type, registered_by_code);

-- Every status change of every entry as jobsync applied it: the first row of
-- an entry has from_status NULL (put forward), later rows a change between
-- two applied log versions. Answers "who approved this candidate, and when".
-- Rows are only ever inserted; the unique key keeps a change recorded once.
CREATE TABLE mediation_entry_history (
    id bigserial PRIMARY KEY,
    job_order_id uuid NOT NULL REFERENCES mediation_logs (job_order_id),
    mediation_id uuid NOT NULL,
    log_version bigint NOT NULL,
    from_status text
        CHECK (from_status IN ('awaiting_approval', 'available_to_company', 'hired', 'not_hired', 'withdrawn')),
    to_status text NOT NULL
        CHECK (to_status IN ('awaiting_approval', 'available_to_company', 'hired', 'not_hired', 'withdrawn')),
    changed_at timestamptz NOT NULL,
    changed_by_kind text NOT NULL CHECK (changed_by_kind IN ('employer', 'unit', 'system')),
    changed_by_unit_type text,
    changed_by_unit_code text,
    -- The inbound message that carried the change.
    message_id text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_order_id, mediation_id, log_version)
);
