-- Service promises (contract section 11): one row per tracked promise of an
-- order the employer made. The partial index holds exactly the open ones
-- (neither met, missed nor released) by due time, so a check costs time in
-- proportion to the promises falling due.
CREATE TABLE promises (
    job_order_id  uuid NOT NULL,
    promise       text NOT NULL CHECK (promise IN ('contact', 'delivery', 'follow_up')),
    due_at        timestamptz NOT NULL,
    met_at        timestamptz,
    missed_at     timestamptz,
    released_at   timestamptz,
    -- On the contact row: whether the first version seen named a
    -- coordinator (then naming one later is no contact).
    first_named_coordinator boolean NOT NULL DEFAULT false,
    PRIMARY KEY (job_order_id, promise)
);
CREATE INDEX promises_open_due ON promises (due_at, job_order_id)
    WHERE met_at IS NULL AND missed_at IS NULL AND released_at IS NULL;
