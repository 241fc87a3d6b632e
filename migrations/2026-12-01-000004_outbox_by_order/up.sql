-- The apply transaction asks whether the outbox still holds a row of the
-- orders it wrote for: if not, the relay may publish its rows at once,
-- without first looking for older rows of other instances.
CREATE INDEX outbox_job_order_id ON outbox (job_order_id);
