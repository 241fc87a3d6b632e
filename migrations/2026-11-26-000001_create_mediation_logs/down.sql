DROP TABLE mediation_entry_history;
DROP TABLE mediation_entries;
DROP TABLE mediation_logs;
DROP TABLE job_order_former_units;
ALTER TABLE job_orders DROP COLUMN closed_at, DROP COLUMN coordinator_allowed_since;
