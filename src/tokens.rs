//! `jobsync tokens create|list|revoke`: the tokens of the read API. A token
//! is 256 random bits, written `jst_` and 43 base64url characters; only its
//! SHA-256 is stored, so it is printed once, at creation.

use anyhow::Context as _;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::domain::unit::Unit;
use crate::store::{self, tokens::Token};

/// What every token starts with, so that one found in a file or a log is
/// recognised for what it is.
pub const PREFIX: &str = "jst_";

/// A new secret: [`PREFIX`] and 256 bits from the operating system's
/// random source.
pub fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    Ok(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The hash a token is stored and looked up by.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The database, created if missing (tokens may be made before the worker
/// first runs) and migrated.
fn connect(url: &str) -> anyhow::Result<diesel::PgConnection> {
    store::db::create_database_if_missing(url)?;
    store::db::connect(url)
}

/// Makes a token for `unit`: returns it with its secret (which nothing
/// keeps).
pub fn create(
    database_url: &str,
    unit: &Unit,
    name: Option<&str>,
    expires_days: Option<u32>,
    now: DateTime<Utc>,
) -> anyhow::Result<(Token, String)> {
    let mut conn = connect(database_url)?;
    let secret = new_secret()?;
    let expires_at = expires_days.map(|d| now + chrono::Duration::days(i64::from(d)));
    let token = store::tokens::create(&mut conn, &hash(&secret), unit, name, now, expires_at)?;
    Ok((token, secret))
}

/// Every token, oldest first.
pub fn list(database_url: &str) -> anyhow::Result<Vec<Token>> {
    let mut conn = connect(database_url)?;
    Ok(store::tokens::list(&mut conn)?)
}

/// Revokes token `id`; an error if there is none.
pub fn revoke(database_url: &str, id: uuid::Uuid, now: DateTime<Utc>) -> anyhow::Result<Token> {
    let mut conn = connect(database_url)?;
    store::tokens::revoke(&mut conn, id, now)?
        .with_context(|| format!("no token has the id {id} (see `jobsync tokens list`)"))
}

/// A token as `list --json` prints it.
pub fn to_json(t: &Token) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "unit": t.unit().to_string(),
        "name": t.name,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "revoked_at": t.revoked_at,
    })
}

/// Whether `t` is usable at `now`, in a word.
pub fn state(t: &Token, now: DateTime<Utc>) -> &'static str {
    if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "valid"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_has_256_random_bits_and_its_prefix() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX));
        let bits = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&a[PREFIX.len()..])
            .unwrap();
        assert_eq!(bits.len(), 32);
        assert_ne!(hash(&a), hash(&b));
    }
}
