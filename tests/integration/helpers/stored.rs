//! What the database holds, read back for assertions.

use super::*;

/// Whether an error sentence starts by naming a field: the part before its
/// first ": " is a path such as `data.entries[0].status`.
pub fn names_a_field(error: &str) -> bool {
    match error.split_once(": ") {
        Some((field, rest)) => !field.is_empty() && !field.contains(' ') && !rest.is_empty(),
        None => false,
    }
}

pub fn processed_count(conn: &mut PgConnection) -> i64 {
    use jobsync::store::schema::processed_messages::dsl::*;
    processed_messages.count().get_result(conn).unwrap_or(0)
}

/// The stored mediation log of order `id`: (version, total, awaiting
/// approval, undecided).
pub fn stored_log(conn: &mut PgConnection, id: Uuid) -> Option<(i64, i32, i32, i32)> {
    use jobsync::store::schema::mediation_logs::dsl as m;
    m::mediation_logs
        .select((m::version, m::total, m::awaiting_approval, m::undecided))
        .filter(m::job_order_id.eq(id))
        .first(conn)
        .optional()
        .unwrap()
}

/// The status history of the entries of order `id`, oldest first:
/// (mediation id, log version, from, to, who as `kind` or `type:code`).
pub fn history(
    conn: &mut PgConnection,
    id: Uuid,
) -> Vec<(Uuid, i64, Option<String>, String, String)> {
    use jobsync::store::schema::mediation_entry_history::dsl as h;
    type Row = (
        Uuid,
        i64,
        Option<String>,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = h::mediation_entry_history
        .select((
            h::mediation_id,
            h::log_version,
            h::from_status,
            h::to_status,
            h::changed_by_kind,
            h::changed_by_unit_type,
            h::changed_by_unit_code,
        ))
        .filter(h::job_order_id.eq(id))
        .order((h::log_version, h::mediation_id))
        .load(conn)
        .unwrap();
    rows.into_iter()
        .map(|(m, v, from, to, kind, t, c)| {
            let who = match (t, c) {
                (Some(t), Some(c)) => format!("{t}:{c}"),
                _ => kind,
            };
            (m, v, from, to, who)
        })
        .collect()
}

/// The stored version of order `id`, if any.
pub fn stored_version(conn: &mut PgConnection, id: Uuid) -> Option<i64> {
    use jobsync::store::schema::job_orders::dsl as j;
    j::job_orders
        .select(j::version)
        .filter(j::id.eq(id))
        .first(conn)
        .optional()
        .unwrap()
}

/// Asserts that the `EXPLAIN (ANALYZE, FORMAT JSON)` output `plan` reads
/// exactly `rows` rows through `index`, scans no table whole, and has no
/// node touching more rows: a query whose cost follows what it returns.
pub fn assert_reads_only(plan: &Value, index: &str, rows: u64) {
    fn walk<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
        out.push(node);
        for child in node["Plans"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let mut nodes = Vec::new();
    walk(&plan[0]["Plan"], &mut nodes);
    let used = nodes
        .iter()
        .find(|n| n["Index Name"] == json!(index))
        .unwrap_or_else(|| panic!("{index} serves the query: {plan:#}"));
    assert_eq!(used["Actual Rows"], rows, "it reads {rows} rows: {plan:#}");
    for n in &nodes {
        assert_ne!(n["Node Type"], json!("Seq Scan"), "{plan:#}");
        assert!(
            n["Actual Rows"].as_u64().unwrap_or(0) <= rows,
            "no node touches more rows: {plan:#}"
        );
    }
}

/// Stores `n` copies of the one order the environment's worker stored (each
/// with its own id, as the worker would have written it), open and
/// internal unless `columns` says otherwise: `(column, SQL expression)`
/// pairs, where `g` is the copy's number from 1 to `n`. Then `ANALYZE`, so
/// that plans see the table as it is.
pub fn store_copies(conn: &mut PgConnection, n: usize, columns: &[(&str, &str)]) {
    let mut names = vec![
        "id",
        "version",
        "content_hash",
        "origin",
        "changed_by_kind",
        "title",
        "occupation_name",
        "employer_cvr",
        "employer_name",
        "employer_conflict_affected",
        "responsible_unit_type",
        "responsible_unit_code",
        "coordinator_allowed",
        "tasks",
        "continuous",
        "positions",
        "sharing_scope",
        "created_at",
        "updated_at",
        "coordinator_allowed_since",
        "responsible_since",
        "snapshot",
    ];
    let mut values = vec![
        "id",
        "1",
        "'\\x00'",
        "'unit'",
        "'system'",
        "'T'",
        "'O'",
        "'10150817'",
        "'E'",
        "false",
        "'jobcenter'",
        "'15300'",
        "true",
        "'tasks'",
        "false",
        "1",
        "'internal'",
        "now()",
        "now()",
        "now()",
        "now()",
        "jsonb_set(t.snapshot::jsonb, '{job_order_id}', to_jsonb(id::text))::json",
    ];
    if !columns.iter().any(|(c, _)| *c == "status") {
        names.push("status");
        values.push("'open'");
    }
    for (c, v) in columns {
        names.push(c);
        values.push(v);
    }
    diesel::sql_query(format!(
        "INSERT INTO job_orders ({}) SELECT {} \
         FROM (SELECT gen_random_uuid() AS id, g FROM generate_series(1, {n}) g) s, \
              (SELECT snapshot FROM job_orders LIMIT 1) t",
        names.join(", "),
        values.join(", ")
    ))
    .execute(conn)
    .unwrap();
    diesel::sql_query("ANALYZE job_orders")
        .execute(conn)
        .unwrap();
}
