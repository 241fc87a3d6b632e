ALTER TABLE mediation_logs ALTER COLUMN snapshot TYPE jsonb USING snapshot::jsonb;
ALTER TABLE job_orders ALTER COLUMN snapshot TYPE jsonb USING snapshot::jsonb;

CREATE TABLE order_views (
    job_order_id uuid PRIMARY KEY REFERENCES job_orders (id),
    responsible_hash bytea NOT NULL,
    shared_hash bytea NOT NULL
);
INSERT INTO order_views (job_order_id, responsible_hash, shared_hash)
SELECT id, responsible_view_hash, shared_view_hash FROM job_orders
 WHERE responsible_view_hash IS NOT NULL AND shared_view_hash IS NOT NULL;
ALTER TABLE job_orders DROP COLUMN responsible_view_hash, DROP COLUMN shared_view_hash;

ALTER TABLE job_order_sharing ADD CONSTRAINT job_order_sharing_job_order_id_fkey
    FOREIGN KEY (job_order_id) REFERENCES job_orders (id) ON DELETE CASCADE;
ALTER TABLE job_order_former_units ADD CONSTRAINT job_order_former_units_job_order_id_fkey
    FOREIGN KEY (job_order_id) REFERENCES job_orders (id);

ALTER TABLE job_orders RESET (toast_tuple_target);
ALTER TABLE outbox RESET (toast_tuple_target);
