//! Multi-row writes as `INSERT INTO t (c1, …, cn) SELECT * FROM unnest($1,
//! …, $n)`: one array parameter per column, so the statement's text is the
//! same for any number of rows. PostgreSQL plans it in well under a
//! millisecond, where a `VALUES` list of 500 job orders × 45 columns (22,500
//! parameters) took about 12 ms to plan and its parameters as long again to
//! evaluate: a fifth of the database's time in a drain.
//!
//! `columns!` declares a row struct and its column-wise twin: rows are built
//! as before, pushed into the columns, and bound as one array each.

/// Declares `struct $row<'a>` with the given fields, and `struct $cols<'a>`
/// holding a `Vec` per field, with `push(row)`, `len()` and `query(sql)`
/// (binds each column as `Array<sql type>` in field order, `$1` first).
macro_rules! columns {
    (
        $(#[$meta:meta])*
        struct $row:ident<$lt:lifetime>, columns $cols:ident {
            $($col:ident: $ty:ty => $st:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub(super) struct $row<$lt> {
            $(pub(super) $col: $ty,)*
        }

        /// The rows of a multi-row write, column by column.
        pub(super) struct $cols<$lt> {
            $($col: Vec<$ty>,)*
        }

        #[allow(dead_code)]
        impl<$lt> $cols<$lt> {
            /// The column names, in field (and parameter) order.
            pub(super) const NAMES: &'static [&'static str] = &[$(stringify!($col)),*];

            pub(super) fn with_capacity(n: usize) -> Self {
                $cols {
                    $($col: Vec::with_capacity(n),)*
                }
            }

            pub(super) fn push(&mut self, row: $row<$lt>) {
                $(self.$col.push(row.$col);)*
            }

            pub(super) fn len(&self) -> usize {
                [$(self.$col.len()),*][0]
            }

            pub(super) fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// `text` with the columns bound, `$1` the first.
            pub(super) fn query(
                self,
                text: &$lt $crate::store::prepared::Text,
            ) -> $crate::store::prepared::Prepared<$lt> {
                self.bind_onto($crate::store::prepared::Prepared::new(text))
            }

            /// `q` with the columns bound after its parameters (for a
            /// statement that writes several tables at once).
            pub(super) fn bind_onto(
                self,
                q: $crate::store::prepared::Prepared<$lt>,
            ) -> $crate::store::prepared::Prepared<$lt> {
                $(let q = q.bind::<diesel::sql_types::Array<$st>, _>(self.$col);)*
                q
            }
        }
    };
}
pub(super) use columns;

/// `INSERT INTO table (names…) SELECT * FROM unnest($1, …)`, followed by
/// `rest` (an `ON CONFLICT` clause, `RETURNING`, …).
pub(super) fn insert_sql(table: &str, names: &[&str], rest: &str) -> String {
    insert_sql_at(table, names, 1, rest)
}

/// [`insert_sql`] with the parameters numbered from `$first`.
pub(super) fn insert_sql_at(table: &str, names: &[&str], first: usize, rest: &str) -> String {
    let params: Vec<String> = (first..first + names.len())
        .map(|i| format!("${i}"))
        .collect();
    format!(
        "INSERT INTO {table} ({}) SELECT * FROM unnest({}) {rest}",
        names.join(", "),
        params.join(", ")
    )
}

/// `c = excluded.c` for each of `names` but `except`, comma separated.
pub(super) fn set_excluded(names: &[&str], except: &str) -> String {
    names
        .iter()
        .filter(|n| **n != except)
        .map(|n| format!("{n} = excluded.{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows of one multi-row `VALUES` statement (mediation logs, former units,
/// log view hashes): PostgreSQL takes at most 65,535 bind parameters. The
/// job order, sharing, outbox and inbox writes bind one array per column
/// (`unnest`) and need no chunks.
pub(super) const ROWS_PER_STATEMENT: usize = 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_names_each_column_and_its_parameter_in_order() {
        assert_eq!(
            insert_sql("t", &["a", "b", "c"], "ON CONFLICT DO NOTHING"),
            "INSERT INTO t (a, b, c) SELECT * FROM unnest($1, $2, $3) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            insert_sql_at("t", &["a", "b"], 8, "RETURNING id"),
            "INSERT INTO t (a, b) SELECT * FROM unnest($8, $9) RETURNING id"
        );
        assert_eq!(
            set_excluded(&["id", "a", "b"], "id"),
            "a = excluded.a, b = excluded.b"
        );
    }
}
