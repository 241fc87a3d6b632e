-- When each unit gained its role on an order, so that a mediation entry is
-- judged by when its unit could see the order as well as by when it lost it
-- (contract 4.2). Rows written before are given the order's created_at (the
-- most lenient reading: what is not known is not held against an entry);
-- the responsible unit of an order handed over before, the time of the
-- latest handover away from another unit.

ALTER TABLE job_orders ADD COLUMN responsible_since timestamptz;
UPDATE job_orders j SET responsible_since = COALESCE(
    (SELECT max(f.until) FROM job_order_former_units f
      WHERE f.job_order_id = j.id AND f.role = 'responsible'),
    j.created_at);
ALTER TABLE job_orders ALTER COLUMN responsible_since SET NOT NULL;

ALTER TABLE job_order_sharing ADD COLUMN since timestamptz;
UPDATE job_order_sharing s SET since = j.created_at
  FROM job_orders j WHERE j.id = s.job_order_id;
UPDATE job_order_sharing SET since = '-infinity' WHERE since IS NULL;
ALTER TABLE job_order_sharing ALTER COLUMN since SET NOT NULL;

ALTER TABLE job_order_former_units ADD COLUMN since timestamptz;
UPDATE job_order_former_units f SET since = j.created_at
  FROM job_orders j WHERE j.id = f.job_order_id;
UPDATE job_order_former_units SET since = '-infinity' WHERE since IS NULL;
ALTER TABLE job_order_former_units ALTER COLUMN since SET NOT NULL;
