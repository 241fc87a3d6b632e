-- Whether mediation_entries should have an index on person_ref (for
-- `jobsync erase person`): 300,000 entries inserted, updated and looked up
-- with and without it, in scratch tables. Run it twice:
--   psql -U postgres -h 127.0.0.1 -f benches/sql/person-ref-index.sql postgres
\timing on
DROP TABLE IF EXISTS jobsync_bench_e1; DROP TABLE IF EXISTS jobsync_bench_e2;
CREATE TABLE jobsync_bench_e1 (job_order_id uuid, mediation_id uuid, person_ref text, note text, status text, registered_by_type text, registered_by_code text, PRIMARY KEY (job_order_id, mediation_id));
CREATE INDEX ON jobsync_bench_e1 (registered_by_type, registered_by_code);
CREATE TABLE jobsync_bench_e2 (LIKE jobsync_bench_e1 INCLUDING ALL);
CREATE INDEX ON jobsync_bench_e2 (person_ref);
\echo without person_ref index
INSERT INTO jobsync_bench_e1 SELECT gen_random_uuid(), gen_random_uuid(), 'P-' || md5(i::text), 'Stærk på lager', 'awaiting_approval', 'jobcenter', (10100 + i % 94)::text FROM generate_series(1, 300000) i;
\echo with person_ref index
INSERT INTO jobsync_bench_e2 SELECT gen_random_uuid(), gen_random_uuid(), 'P-' || md5(i::text), 'Stærk på lager', 'awaiting_approval', 'jobcenter', (10100 + i % 94)::text FROM generate_series(1, 300000) i;
\echo update status (HOT?) without / with
UPDATE jobsync_bench_e1 SET status = 'hired', person_ref = person_ref;
UPDATE jobsync_bench_e2 SET status = 'hired', person_ref = person_ref;
\echo find one person without / with index
SELECT count(*) FROM jobsync_bench_e1 WHERE person_ref = 'P-' || md5('4711');
SELECT count(*) FROM jobsync_bench_e2 WHERE person_ref = 'P-' || md5('4711');
SELECT pg_size_pretty(pg_relation_size('jobsync_bench_e2_person_ref_idx'));
DROP TABLE jobsync_bench_e1; DROP TABLE jobsync_bench_e2;
