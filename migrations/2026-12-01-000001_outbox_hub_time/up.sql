-- The hub's `time` of the message that caused an outbox row, for the
-- end-to-end lag (jobsync_end_to_end_lag_seconds): NULL for rows no hub
-- message caused (expiry) and for rows written before this column.
ALTER TABLE outbox ADD COLUMN hub_time timestamptz;
