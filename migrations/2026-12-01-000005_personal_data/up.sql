-- Personal data has a lifetime (contract section 12): a number of days after
-- an order closed or expired, its candidates' references and notes, their
-- history, its contact person and the audit of who read its log are
-- deleted. `personal_data_deleted_at` says when that was done; a new version
-- of the order clears it (what the new version brought is kept anew, and a
-- reopened order starts the clock again).
ALTER TABLE job_orders ADD COLUMN personal_data_deleted_at timestamptz;

-- The orders whose personal data still waits, by when they ended: the due
-- ones are the head of this index, so a pass costs what falls due.
CREATE INDEX job_orders_personal_data_due
    ON job_orders (GREATEST(closed_at, expired_at), id)
 WHERE personal_data_deleted_at IS NULL
   AND (closed_at IS NOT NULL OR expired_at IS NOT NULL);
