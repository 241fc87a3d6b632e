DROP INDEX job_orders_updated;
DROP INDEX job_orders_search_missing;
DROP INDEX job_orders_search;
ALTER TABLE job_orders DROP COLUMN search;
DROP TABLE unit_changes;
ALTER TABLE job_order_former_units DROP COLUMN version;
DROP SEQUENCE unit_changes_position;
DROP TABLE api_log_reads;
DROP TABLE api_tokens;
