-- The hot path of a drain, made cheaper where a profile showed the server's
-- time going (issue 7).

-- Rows of a few kilobytes are stored as they are. By default PostgreSQL
-- compresses any row over 2 kB (pglz), which made compressing the snapshot
-- of every order and the body of every outbox row a tenth of the server's
-- work; outbox rows live for milliseconds, and an order's row is rewritten
-- with each version. Larger values still go to TOAST.
ALTER TABLE job_orders SET (toast_tuple_target = 8160);
ALTER TABLE outbox SET (toast_tuple_target = 8160);

-- What the units of an order were last told lives in the order's row: it is
-- written by the same upsert, instead of a second table whose upsert and
-- foreign key check cost as much as the order's own. NULL for an order no
-- unit was told of yet.
ALTER TABLE job_orders ADD COLUMN responsible_view_hash bytea,
                       ADD COLUMN shared_view_hash bytea;
UPDATE job_orders j
   SET responsible_view_hash = v.responsible_hash, shared_view_hash = v.shared_hash
  FROM order_views v WHERE v.job_order_id = j.id;
DROP TABLE order_views;

-- The units an order is or was shared with are written by the statement
-- after the order's upsert, in the same transaction, by the only code that
-- writes either: their foreign key checks (one query per row, run as a
-- trigger) were a sixth of a drain's database time.
ALTER TABLE job_order_sharing DROP CONSTRAINT job_order_sharing_job_order_id_fkey;
ALTER TABLE job_order_former_units DROP CONSTRAINT job_order_former_units_job_order_id_fkey;

-- The snapshots are kept as the JSON text jobsync writes (`json`, checked
-- but not converted to `jsonb`'s binary form on every write; the JSON
-- operators work on both).
ALTER TABLE job_orders ALTER COLUMN snapshot TYPE json USING snapshot::json;
ALTER TABLE mediation_logs ALTER COLUMN snapshot TYPE json USING snapshot::json;
