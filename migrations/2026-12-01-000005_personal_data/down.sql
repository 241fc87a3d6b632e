DROP INDEX job_orders_personal_data_due;
ALTER TABLE job_orders DROP COLUMN personal_data_deleted_at;
