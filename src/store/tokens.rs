//! API tokens (contract 10): only a token's SHA-256 is stored; a request's
//! token is found by its hash (one probe of a unique index), never by
//! comparing secrets.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{api_log_reads, api_tokens};
use crate::domain::unit::Unit;

/// A token as stored (without its hash).
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Token {
    pub id: Uuid,
    pub unit_type: String,
    pub unit_code: String,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Token {
    /// The unit it acts for.
    pub fn unit(&self) -> Unit {
        Unit::from_stored(&self.unit_type, &self.unit_code)
            .expect("tokens are made for valid units")
    }
}

type Columns = (
    api_tokens::id,
    api_tokens::unit_type,
    api_tokens::unit_code,
    api_tokens::name,
    api_tokens::created_at,
    api_tokens::expires_at,
    api_tokens::revoked_at,
);

const COLUMNS: Columns = (
    api_tokens::id,
    api_tokens::unit_type,
    api_tokens::unit_code,
    api_tokens::name,
    api_tokens::created_at,
    api_tokens::expires_at,
    api_tokens::revoked_at,
);

/// Stores a new token for `unit` by the hash of its secret.
pub fn create(
    conn: &mut PgConnection,
    hash: &[u8],
    unit: &Unit,
    name: Option<&str>,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> QueryResult<Token> {
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(Uuid::new_v4()),
            api_tokens::token_hash.eq(hash),
            api_tokens::unit_type.eq(unit.kind().as_str()),
            api_tokens::unit_code.eq(unit.code()),
            api_tokens::name.eq(name),
            api_tokens::created_at.eq(now),
            api_tokens::expires_at.eq(expires_at),
        ))
        .returning(COLUMNS)
        .get_result(conn)
}

/// Every token, oldest first.
pub fn list(conn: &mut PgConnection) -> QueryResult<Vec<Token>> {
    api_tokens::table
        .select(COLUMNS)
        .order((api_tokens::created_at, api_tokens::id))
        .load(conn)
}

/// Revokes token `id` at `now` (a revoked one keeps its first revocation
/// time). `None` when there is no such token.
pub fn revoke(conn: &mut PgConnection, id: Uuid, now: DateTime<Utc>) -> QueryResult<Option<Token>> {
    diesel::update(
        api_tokens::table
            .find(id)
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(now))
    .execute(conn)?;
    api_tokens::table
        .find(id)
        .select(COLUMNS)
        .first(conn)
        .optional()
}

/// The token whose secret hashes to `hash`, if it is neither revoked nor
/// expired at `now`.
pub fn find_valid(
    conn: &mut PgConnection,
    hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<Option<Token>> {
    api_tokens::table
        .select(COLUMNS)
        .filter(api_tokens::token_hash.eq(hash))
        .filter(api_tokens::revoked_at.is_null())
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(now)),
        )
        .first(conn)
        .optional()
}

/// Records that `token` read the log views of `orders` (contract 10, audit).
pub fn audit_log_reads(
    conn: &mut PgConnection,
    token: &Token,
    orders: &[Uuid],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    if orders.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = orders
        .iter()
        .map(|id| {
            (
                api_log_reads::token_id.eq(token.id),
                api_log_reads::unit_type.eq(&token.unit_type),
                api_log_reads::unit_code.eq(&token.unit_code),
                api_log_reads::job_order_id.eq(*id),
                api_log_reads::read_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(api_log_reads::table)
        .values(rows)
        .execute(conn)?;
    Ok(())
}
