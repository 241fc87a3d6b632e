ALTER TABLE outbox DROP COLUMN hub_time;
