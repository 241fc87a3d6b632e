-- What the views of section 5.2 are made of, and what each unit was last
-- told, so that a unit is notified only when its view changed.

-- The snapshots as the hub sent them (canonical form, unknown fields gone).
ALTER TABLE job_orders ADD COLUMN snapshot jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE job_orders ALTER COLUMN snapshot DROP DEFAULT;
ALTER TABLE mediation_logs ADD COLUMN snapshot jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE mediation_logs ALTER COLUMN snapshot DROP DEFAULT;

-- Orders and logs stored before this migration: their snapshots rebuilt from
-- the columns (timestamps in UTC with Z, as the worker writes them).
CREATE FUNCTION pg_temp.rfc3339(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT regexp_replace(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '\.?0+$', '') || 'Z' $$;

UPDATE job_orders j SET snapshot = jsonb_build_object(
    'job_order_id', j.id::text,
    'version', j.version,
    'request_id', j.request_id,
    'origin', j.origin,
    'changed_by', CASE j.changed_by_kind
        WHEN 'unit' THEN jsonb_build_object('kind', 'unit', 'unit',
            jsonb_build_object('type', j.changed_by_unit_type, 'code', j.changed_by_unit_code))
        ELSE jsonb_build_object('kind', j.changed_by_kind) END,
    'title', j.title,
    'occupation', jsonb_build_object('name', j.occupation_name, 'alias', j.occupation_alias,
        'code', j.occupation_code),
    'employer', jsonb_build_object('cvr', j.employer_cvr, 'p_number', j.employer_p_number,
        'name', j.employer_name, 'conflict_affected', j.employer_conflict_affected),
    'contact', CASE WHEN j.contact_name IS NULL THEN 'null'::jsonb
        ELSE jsonb_build_object('name', j.contact_name, 'email', j.contact_email,
            'phone', j.contact_phone) END,
    'responsible_unit', jsonb_build_object('type', j.responsible_unit_type,
        'code', j.responsible_unit_code),
    'coordinator', CASE WHEN j.coordinator_id IS NULL THEN 'null'::jsonb
        ELSE jsonb_build_object('id', j.coordinator_id, 'name', j.coordinator_name) END,
    'coordinator_allowed', j.coordinator_allowed,
    'descriptions', jsonb_build_object('tasks', j.tasks,
        'qualifications_and_pay', j.qualifications_and_pay, 'working_hours', j.working_hours),
    'continuous', j.continuous,
    'positions', j.positions,
    'expected_start', j.expected_start,
    'mediation_deadline', j.mediation_deadline,
    'status', j.status,
    'status_reason', j.status_reason,
    'status_comment', j.status_comment,
    'sharing', jsonb_build_object('scope', j.sharing_scope, 'units', COALESCE(
        (SELECT jsonb_agg(jsonb_build_object('type', s.unit_type, 'code', s.unit_code)
                ORDER BY s.unit_type, s.unit_code)
         FROM job_order_sharing s WHERE s.job_order_id = j.id), '[]'::jsonb)),
    'created_at', pg_temp.rfc3339(j.created_at),
    'updated_at', pg_temp.rfc3339(j.updated_at));

UPDATE mediation_logs l SET snapshot = jsonb_build_object(
    'job_order_id', l.job_order_id::text,
    'version', l.version,
    'entries', COALESCE((SELECT jsonb_agg(jsonb_build_object(
            'mediation_id', e.mediation_id::text,
            'person_ref', e.person_ref,
            'registered_by', jsonb_build_object('type', e.registered_by_type,
                'code', e.registered_by_code),
            'registered_at', pg_temp.rfc3339(e.registered_at),
            'status', e.status,
            'status_changed_at', pg_temp.rfc3339(e.status_changed_at),
            'status_changed_by', CASE e.status_changed_by_kind
                WHEN 'unit' THEN jsonb_build_object('kind', 'unit', 'unit', jsonb_build_object(
                    'type', e.status_changed_by_unit_type, 'code', e.status_changed_by_unit_code))
                ELSE jsonb_build_object('kind', e.status_changed_by_kind) END,
            'searchable_cv', e.searchable_cv,
            'cv_active', e.cv_active,
            'protected_identity', e.protected_identity,
            'note', e.note) ORDER BY e.mediation_id)
        FROM mediation_entries e WHERE e.job_order_id = l.job_order_id), '[]'::jsonb));

-- Per order: the content hash of the last view the responsible unit got,
-- and of the last view every unit it is shared with got (they all get the
-- same one). Which units those are is job_orders and job_order_sharing.
CREATE TABLE order_views (
    job_order_id uuid PRIMARY KEY REFERENCES job_orders (id),
    responsible_hash bytea NOT NULL,
    shared_hash bytea NOT NULL
);

-- Per order and unit that sees its mediation log: the content hash of the
-- last log view the unit got.
CREATE TABLE mediation_log_views (
    job_order_id uuid NOT NULL REFERENCES job_orders (id),
    unit_type text NOT NULL CHECK (unit_type IN ('jobcenter', 'akasse', 'workindenmark')),
    unit_code text NOT NULL,
    view_hash bytea NOT NULL,
    PRIMARY KEY (job_order_id, unit_type, unit_code)
);

-- The relay reads the outbox in id order.
COMMENT ON TABLE outbox IS 'Notifications and events to publish, written in the transaction that caused them; the relay publishes them in id order under publisher confirms and deletes them once confirmed.';
