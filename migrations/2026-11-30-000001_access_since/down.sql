ALTER TABLE job_order_former_units DROP COLUMN since;
ALTER TABLE job_order_sharing DROP COLUMN since;
ALTER TABLE job_orders DROP COLUMN responsible_since;
