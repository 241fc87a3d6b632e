DROP TABLE outbox;
DROP TABLE processed_messages;
DROP TABLE job_order_sharing;
DROP TABLE job_orders;
