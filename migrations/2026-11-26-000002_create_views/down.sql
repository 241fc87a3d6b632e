DROP TABLE mediation_log_views;
DROP TABLE order_views;
ALTER TABLE mediation_logs DROP COLUMN snapshot;
ALTER TABLE job_orders DROP COLUMN snapshot;
