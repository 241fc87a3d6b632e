-- What the views of section 5.2 are made of, and what each unit was last
-- told, so that a unit is notified only when its view changed.

-- The snapshots as the hub sent them (canonical form, unknown fields gone).
ALTER TABLE job_orders ADD COLUMN snapshot jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE job_orders ALTER COLUMN snapshot DROP DEFAULT;
ALTER TABLE mediation_logs ADD COLUMN snapshot jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE mediation_logs ALTER COLUMN snapshot DROP DEFAULT;

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
