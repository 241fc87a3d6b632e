//! The database: created when missing, migrated, and a connection pool.

use std::time::Duration;

use anyhow::Context as _;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::redact_url;

pub type PgPool = Pool<ConnectionManager<PgConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Creates the database named in `url` when it does not exist, connecting to
/// the server's `postgres` database to do so. Safe when several instances
/// race to create it.
pub fn create_database_if_missing(url: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url)
        .with_context(|| format!("invalid database URL {}", redact_url(url)))?;
    let name = parsed.path().trim_start_matches('/').to_owned();
    if name.is_empty() {
        anyhow::bail!("the database URL {} names no database", redact_url(url));
    }
    if PgConnection::establish(url).is_ok() {
        return Ok(());
    }
    let mut admin_url = parsed.clone();
    admin_url.set_path("/postgres");
    let mut admin = PgConnection::establish(admin_url.as_str()).with_context(|| {
        format!(
            "cannot connect to PostgreSQL at {}",
            redact_url(admin_url.as_str())
        )
    })?;
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result::<Exists>(&mut admin)?
            .exists;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match diesel::sql_query(format!("CREATE DATABASE {quoted}")).execute(&mut admin) {
            Ok(_) => tracing::info!(database.name = %name, "created the database"),
            // Another instance created it first (duplicate_database is not
            // mapped to a kind by diesel; pg_database's unique index may be).
            Err(e) if e.to_string().contains("already exists") => {}
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create database {name}")),
        }
    }
    Ok(())
}

/// Applies pending migrations; returns how many were applied.
pub fn migrate(conn: &mut PgConnection) -> anyhow::Result<usize> {
    // One instance migrates at a time; the others wait and find nothing to do.
    diesel::sql_query("SELECT pg_advisory_lock(7370766163)").execute(conn)?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.len())
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
    diesel::sql_query("SELECT pg_advisory_unlock(7370766163)").execute(conn)?;
    result
}

/// One connection for a tool (`tokens`, `report`, `erase`), the database
/// migrated. A database that does not exist is an error (a mistyped name
/// must not read as "nothing there"); `tokens` creates it first, since
/// tokens may be made before the worker first runs.
pub fn connect(url: &str) -> anyhow::Result<PgConnection> {
    use anyhow::Context as _;
    let mut conn = PgConnection::establish(url).with_context(|| {
        format!(
            "cannot connect to PostgreSQL at {}",
            crate::config::redact_url(url)
        )
    })?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Creates the database when missing, migrates it and opens a pool.
pub fn prepare(url: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    create_database_if_missing(url)?;
    let mut conn = PgConnection::establish(url)
        .with_context(|| format!("cannot connect to PostgreSQL at {}", redact_url(url)))?;
    let applied = migrate(&mut conn)?;
    if applied > 0 {
        tracing::info!(migrations.applied = applied, "applied database migrations");
    }
    pool(url, pool_size)
}

/// A pool that does not connect up front, so a database that is down at
/// this moment delays work instead of failing start-up twice.
pub fn pool(url: &str, size: u32) -> anyhow::Result<PgPool> {
    Ok(Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        // No `SELECT 1` before each use: a round trip on every batch. A
        // connection that broke fails its statement, which is retried on
        // another (the pool drops a broken one when it comes back).
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(5))
        .connection_customizer(Box::new(Session))
        .build_unchecked(ConnectionManager::new(url)))
}

/// The session settings of every pooled connection.
#[derive(Debug)]
struct Session;

impl diesel::r2d2::CustomizeConnection<PgConnection, diesel::r2d2::Error> for Session {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        prefer_custom_plans(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Plans every execution of a prepared statement for its parameters.
///
/// diesel prepares and caches its statements, and PostgreSQL switches a
/// prepared statement to a generic plan after five executions, planned with
/// the table sizes of that moment. On a new or fast-growing database those
/// are tiny: the `id = ANY($1)` lookups of a batch then stay sequential scans
/// (each row compared with every id of the batch) until the next ANALYZE,
/// which made a drain of a new database quadratic. Planning a batch's dozen
/// statements costs far less than one such scan.
pub fn prefer_custom_plans(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SET plan_cache_mode = force_custom_plan").execute(conn)?;
    Ok(())
}
