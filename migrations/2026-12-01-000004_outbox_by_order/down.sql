DROP INDEX outbox_job_order_id;
