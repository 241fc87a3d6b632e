-- Expiry (section 6): the orders that can still expire, by deadline. An
-- expiry pass reads only the due head of this index, so its cost is in
-- proportion to the orders that expire, not to all orders.
CREATE INDEX job_orders_due ON job_orders (mediation_deadline, id)
    WHERE expired_at IS NULL AND status <> 'closed';
