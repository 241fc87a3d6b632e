-- The read API (contract section 10): tokens, the audit of log reads, the
-- change feed and full-text search.

-- A token is kept only as its SHA-256 (a token carries 256 random bits, so
-- a fast hash is enough); it is looked up by that hash, one index probe.
CREATE TABLE api_tokens (
    id          uuid PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    unit_type   text NOT NULL,
    unit_code   text NOT NULL,
    name        text,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    revoked_at  timestamptz
);

-- Every read of a mediation log view: which token, for which unit, of which
-- order, when. Kept as long as personal data.
CREATE TABLE api_log_reads (
    id            bigserial PRIMARY KEY,
    token_id      uuid NOT NULL,
    unit_type     text NOT NULL,
    unit_code     text NOT NULL,
    job_order_id  uuid NOT NULL,
    read_at       timestamptz NOT NULL
);
CREATE INDEX api_log_reads_job_order ON api_log_reads (job_order_id);

-- The change feed: one row per unit, order and kind of view (`order`,
-- `log`), holding where the last change of that view for that unit stands:
-- the writing transaction's id and a position within it. A change moves the
-- row to the end, so the feed is compacted by construction and a page is one
-- range scan of the unit's index. A reader returns only rows of transactions
-- older than every transaction still running (store/feed.rs), so no row can
-- later appear behind its cursor.
CREATE SEQUENCE unit_changes_position;
CREATE TABLE unit_changes (
    unit_type     text NOT NULL,
    unit_code     text NOT NULL,
    job_order_id  uuid NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('order', 'log')),
    xid           xid8 NOT NULL,
    position      bigint NOT NULL,
    PRIMARY KEY (unit_type, unit_code, job_order_id, kind)
);
CREATE INDEX unit_changes_feed ON unit_changes (unit_type, unit_code, xid, position);

-- The version that took an order from a unit: what its revocation says,
-- in the feed as in the notification (NULL for losses before this column:
-- the order's current version stands in).
ALTER TABLE job_order_former_units ADD COLUMN version bigint;

-- What every unit was told before the feed existed: the orders it sees, the
-- orders it lost, the logs it sees.
INSERT INTO unit_changes
SELECT responsible_unit_type, responsible_unit_code, id, 'order', pg_current_xact_id(), nextval('unit_changes_position')
  FROM job_orders WHERE responsible_view_hash IS NOT NULL;
INSERT INTO unit_changes
SELECT s.unit_type, s.unit_code, s.job_order_id, 'order', pg_current_xact_id(), nextval('unit_changes_position')
  FROM job_order_sharing s JOIN job_orders o ON o.id = s.job_order_id
 WHERE o.shared_view_hash IS NOT NULL
ON CONFLICT DO NOTHING;
INSERT INTO unit_changes
SELECT f.unit_type, f.unit_code, f.job_order_id, 'order', pg_current_xact_id(), nextval('unit_changes_position')
  FROM job_order_former_units f
ON CONFLICT DO NOTHING;
INSERT INTO unit_changes
SELECT unit_type, unit_code, job_order_id, 'log', pg_current_xact_id(), nextval('unit_changes_position')
  FROM mediation_log_views
ON CONFLICT DO NOTHING;

-- Full-text search over what every unit that sees an order may see of it
-- (title, occupation name and alias, employer name, tasks), CPR numbers
-- replaced as in the views, Danish stemming. Written with each version;
-- orders stored before this column get it in the background (the
-- scheduler, 5,000 a pass).
ALTER TABLE job_orders ADD COLUMN search tsvector;
CREATE INDEX job_orders_search ON job_orders USING gin (search);
-- The orders still without it: empty once they are filled, so looking for
-- them costs nothing then.
CREATE INDEX job_orders_search_missing ON job_orders (id) WHERE search IS NULL;
-- Without `q`, a search lists newest first.
CREATE INDEX job_orders_updated ON job_orders (updated_at DESC, id DESC);
