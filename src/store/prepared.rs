//! Statements of fixed text that stay prepared on their connection.
//!
//! diesel keeps its own query builder's statements prepared, but not those
//! written as SQL (`sql_query`): each of those is prepared anew, one round
//! trip to the server, and then executed, another. The apply transaction's
//! hand-written statements (the locks, the multi-row writes of `unnest`)
//! run on every batch, so their text is made once ([`Text`], in a
//! `LazyLock`) and [`Prepared`] lets diesel cache the prepared statement by
//! that text: one round trip per execution. Only fixed texts belong here;
//! diesel's cache keeps every distinct text for the connection's life.

use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{PgConnection, QueryResult, RunQueryDsl};

/// A statement's SQL, cut at its parameters `$1`, `$2`, … (each used once,
/// in that order).
#[derive(Debug)]
pub struct Text {
    parts: Vec<String>,
}

impl Text {
    /// # Panics
    /// When the parameters are not `$1` to `$n`, each once and in order: a
    /// fixed text, so a test or its first use finds it.
    pub fn new(sql: &str) -> Text {
        let mut parts = vec![String::new()];
        let mut next = 1;
        let mut chars = sql.char_indices().peekable();
        while let Some((_, c)) = chars.next() {
            let starts_number = c == '$' && chars.peek().is_some_and(|(_, d)| d.is_ascii_digit());
            if !starts_number {
                parts.last_mut().expect("one part at least").push(c);
                continue;
            }
            let mut number = 0usize;
            while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                number = number * 10 + d.to_digit(10).expect("a digit") as usize;
                chars.next();
            }
            assert_eq!(number, next, "parameters in order, each once: {sql}");
            next += 1;
            parts.push(String::new());
        }
        Text { parts }
    }

    /// How many parameters it takes.
    pub fn parameters(&self) -> usize {
        self.parts.len() - 1
    }
}

/// A [`Text`] with its parameters bound, to run with diesel's
/// `execute`/`load` (rows as `QueryableByName`).
pub struct Prepared<'a> {
    text: &'a Text,
    binds: Vec<Box<dyn QueryFragment<Pg> + Send + 'a>>,
}

impl<'a> Prepared<'a> {
    pub fn new(text: &'a Text) -> Self {
        Prepared {
            text,
            binds: Vec::with_capacity(text.parameters()),
        }
    }

    /// Binds the next parameter, as SQL type `ST`.
    pub fn bind<ST, V>(mut self, value: V) -> Self
    where
        Pg: HasSqlType<ST>,
        V: ToSql<ST, Pg> + Send + 'a,
        ST: Send + 'a,
    {
        self.binds.push(Box::new(Bind {
            value,
            sql_type: PhantomData::<ST>,
        }));
        self
    }
}

struct Bind<ST, V> {
    value: V,
    sql_type: PhantomData<ST>,
}

impl<ST, V> QueryFragment<Pg> for Bind<ST, V>
where
    Pg: HasSqlType<ST>,
    V: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        pass.push_bind_param::<ST, V>(&self.value)
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if self.binds.len() != self.text.parameters() {
            return Err(diesel::result::Error::QueryBuilderError(
                format!(
                    "{} parameters bound to a statement of {}",
                    self.binds.len(),
                    self.text.parameters()
                )
                .into(),
            ));
        }
        let (first, rest) = self.text.parts.split_first().expect("one part at least");
        out.push_sql(first);
        for (bind, part) in self.binds.iter().zip(rest) {
            bind.walk_ast(out.reborrow())?;
            out.push_sql(part);
        }
        Ok(())
    }
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<PgConnection> for Prepared<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_cut_at_its_parameters() {
        let t = Text::new("SELECT $1, '$' || $2 FROM t WHERE a = ANY($3::int[])");
        assert_eq!(t.parameters(), 3);
        assert_eq!(
            t.parts,
            ["SELECT ", ", '$' || ", " FROM t WHERE a = ANY(", "::int[])"]
        );
    }

    #[test]
    #[should_panic(expected = "parameters in order")]
    fn parameters_out_of_order_are_refused() {
        Text::new("SELECT $2, $1");
    }
}
