//! Settings: every one has a flag and a `JOBSYNC_*` environment variable, with
//! the defaults of the contract (section 7).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// jobsync keeps Danish jobcentres and unemployment funds in sync on job
/// orders: it applies the data hub's snapshots to PostgreSQL and publishes to
/// every unit the part of each order it may see.
#[derive(Debug, Parser)]
#[command(name = "jobsync", version, about, args_override_self = true)]
pub struct Cli {
    /// Log format: pretty on a terminal, json otherwise, unless set.
    #[arg(long, env = "JOBSYNC_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the worker: migrate, declare the topology, consume, apply, publish;
    /// stop cleanly on SIGTERM or SIGINT.
    Run(Box<Settings>),
    /// Apply pending database migrations (creating the database if missing)
    /// and exit.
    Migrate(DatabaseSettings),
    /// Publish CloudEvents to the hub exchange under publisher confirms,
    /// routing key from the type (for demos and tests).
    Publish(PublishArgs),
    /// Watch a unit's notifications: declare a temporary queue bound to
    /// them and print each, until stopped.
    Tail(TailArgs),
    /// The rejected messages in the dead-letter queue: list, show, replay,
    /// delete.
    DeadLetters(DeadLettersArgs),
    /// Tokens of the read API: create (printed once), list, revoke.
    Tokens(TokensArgs),
    /// Reports: how the service promises were kept.
    Report(ReportArgs),
    /// Erase personal data on request.
    Erase(EraseArgs),
}

#[derive(Debug, Clone, Args)]
pub struct EraseArgs {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(subcommand)]
    pub what: EraseWhat,
}

#[derive(Debug, Clone, Subcommand)]
pub enum EraseWhat {
    /// Erase one person on every order: their entries' person_ref becomes
    /// `erased`, their notes and history are deleted, and each unit whose
    /// log view changed is told (mediationlog.updated). Prints counts, never
    /// the reference; running it again changes nothing. The hub stays the
    /// source of truth: a later log version that carries the person again
    /// is stored again.
    Person {
        /// The person's reference as the hub sends it, or `-` to read it
        /// from standard input (out of the shell's history and the process
        /// list).
        #[arg(value_name = "PERSON_REF")]
        person_ref: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(subcommand)]
    pub what: ReportWhat,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ReportWhat {
    /// Per responsible unit, for the orders created from FROM to TO (days in
    /// Copenhagen, both included): orders with promises, the share of each
    /// promise met on time, the median time to contact and to delivery, and
    /// how many promises were missed and are still open.
    Promises {
        /// The first day (YYYY-MM-DD).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// The last day (YYYY-MM-DD).
        #[arg(long)]
        to: chrono::NaiveDate,
        /// Only this responsible unit, as `jobcenter:15300`.
        #[arg(long)]
        unit: Option<String>,
        /// `table` for a person, `csv` or `json` (one object per line) for a
        /// spreadsheet or a dashboard.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
}

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct TokensArgs {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(subcommand)]
    pub action: TokensAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokensAction {
    /// Make a token for UNIT and print it, alone on standard output. Only
    /// its hash is kept: it cannot be shown again.
    Create {
        /// The unit it acts for, as `jobcenter:15300`, `akasse:1234` or
        /// `workindenmark:1`.
        unit: String,
        /// What it is for (e.g. the system that uses it).
        #[arg(long)]
        name: Option<String>,
        /// Days until it expires; without it, it never does.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        expires_days: Option<u32>,
    },
    /// Every token's id, unit, name and dates (never the token itself).
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: from now on it gets 401.
    Revoke {
        /// The token's id (from `create` or `list`).
        id: uuid::Uuid,
    },
}

/// The broker, for the commands that only talk to it.
#[derive(Debug, Clone, Args)]
pub struct BrokerUrl {
    /// The broker (AMQP 0-9-1 URL; amqps for TLS).
    #[arg(id = "amqp_url", value_name = "URL", long = "amqp-url", env = "JOBSYNC_AMQP_URL", hide_env_values = true, default_value = defaults::AMQP_URL, value_parser = parse_amqp_url, global = true)]
    pub amqp_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// A file of CloudEvents: JSON lines, a JSON array, or JSON objects one
    /// after another (pretty-printed or not); `-` reads standard input.
    pub file: String,
    #[command(flatten)]
    pub broker: BrokerUrl,
    /// Topic exchange where the hub publishes.
    #[arg(long, env = "JOBSYNC_HUB_EXCHANGE", default_value = defaults::HUB_EXCHANGE)]
    pub hub_exchange: String,
}

#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// The unit, as `jobcenter:15300`, `akasse:1234` or `workindenmark:1`.
    pub unit: String,
    /// Stop after this many notifications.
    #[arg(long)]
    pub count: Option<u64>,
    /// One readable line per notification (time, event, order, version,
    /// unit) instead of JSON lines.
    #[arg(long)]
    pub pretty: bool,
    #[command(flatten)]
    pub broker: BrokerUrl,
    /// Topic exchange of per-unit notifications.
    #[arg(long, env = "JOBSYNC_NOTIFICATIONS_EXCHANGE", default_value = defaults::NOTIFICATIONS_EXCHANGE)]
    pub notifications_exchange: String,
}

#[derive(Debug, Clone, Args)]
pub struct DeadLettersArgs {
    #[command(flatten)]
    pub queue: DeadLetterQueue,
    #[command(subcommand)]
    pub action: DeadLettersAction,
}

/// Where the dead letters are, and where a replay sends them.
#[derive(Debug, Clone, Args)]
pub struct DeadLetterQueue {
    #[command(flatten)]
    pub broker: BrokerUrl,
    /// Queue keeping rejected messages.
    #[arg(long, env = "JOBSYNC_DEAD_LETTERS_QUEUE", default_value = defaults::DEAD_LETTERS_QUEUE, global = true)]
    pub dead_letters_queue: String,
    /// Topic exchange where the hub publishes (a replay publishes there).
    #[arg(long, env = "JOBSYNC_HUB_EXCHANGE", default_value = defaults::HUB_EXCHANGE, global = true)]
    pub hub_exchange: String,
}

/// Which dead letters a command takes: `--id` (repeatable), `--code` or
/// `--all`.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct Which {
    /// The ones with these message ids (repeat the flag, or separate with
    /// commas); every one must be there.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub id: Vec<String>,
    /// The ones with this error code (e.g. joborder.unknown).
    #[arg(long)]
    pub code: Option<String>,
    /// All of them.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DeadLettersAction {
    /// Show the dead letters, oldest first, with their error code, error,
    /// time and source queue. They stay in the queue, unchanged.
    List {
        /// Only those with this error code.
        #[arg(long)]
        code: Option<String>,
        /// Only how many there are per error code.
        #[arg(long)]
        summary: bool,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print dead letters in full: every header, then the body.
    Show {
        /// Message ids.
        #[arg(required = true)]
        id: Vec<String>,
    },
    /// Republish dead letters to the hub exchange with their routing key,
    /// under publisher confirms, and remove them once confirmed (only those
    /// in the queue when it starts).
    Replay {
        #[command(flatten)]
        which: Which,
        /// At most this many (the oldest).
        #[arg(long)]
        limit: Option<usize>,
        /// Only say which would be replayed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete dead letters for good.
    Delete {
        #[command(flatten)]
        which: Which,
        /// Really delete; without it, only say how many would be.
        #[arg(long)]
        yes: bool,
    },
}

impl Which {
    pub fn selection(&self) -> crate::deadletters::Selection {
        use crate::deadletters::Selection;
        match (&self.code, self.all) {
            (Some(code), _) => Selection::Code(code.clone()),
            (None, true) => Selection::All,
            (None, false) => Selection::Ids(self.id.clone()),
        }
    }
}

/// The defaults of the contract's section 2 and 7.
pub mod defaults {
    pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
    pub const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/jobsync";
    pub const HUB_EXCHANGE: &str = "dfdg.hub";
    pub const DEAD_LETTERS_QUEUE: &str = "jobsync.dead-letters";
    pub const NOTIFICATIONS_EXCHANGE: &str = "jobsync.notifications";
}

/// Every setting of the worker, grouped by concern.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct Settings {
    #[command(flatten)]
    pub amqp: AmqpSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub batching: BatchSettings,
    #[command(flatten)]
    pub topology: Topology,
    #[command(flatten)]
    pub api: ApiSettings,
    #[command(flatten)]
    pub promises: PromiseSettings,
    /// Address of the operations endpoints (/healthz, /readyz, /metrics).
    #[arg(long, env = "JOBSYNC_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// How long, in seconds in all, a mediation log that cannot be applied
    /// yet (its job order is not stored, or its entries are newer than the
    /// stored order version and break a rule of it) is retried with growing
    /// delays through the retry exchange before it is rejected.
    #[arg(long, env = "JOBSYNC_RETRY_TOTAL_S", default_value_t = 600)]
    pub retry_total_s: u64,
    /// Seconds `jobsync run` may take to stop after SIGTERM or SIGINT
    /// (finish the batch in hand, publish what is committed); past it, it
    /// exits with status 1 and what was in hand is redelivered.
    #[arg(long, env = "JOBSYNC_SHUTDOWN_GRACE_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub shutdown_grace_s: u64,
    /// Whether this instance runs the outbox relay (publishes committed
    /// notifications and events). With several instances, one relay
    /// publishes at a time; turn it off to run consume-only instances.
    #[arg(long, env = "JOBSYNC_RELAY", default_value_t = true, action = clap::ArgAction::Set)]
    pub relay: bool,
    /// Seconds between expiry passes.
    #[arg(long, env = "JOBSYNC_EXPIRY_INTERVAL_S", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub expiry_interval_s: u64,
    /// Days an inbound message id is kept in the inbox
    /// (`processed_messages`): a redelivery after that is no longer known
    /// as a duplicate by id (a stale or same version still is, by version).
    #[arg(long, env = "JOBSYNC_INBOX_RETENTION_DAYS", default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..))]
    pub inbox_retention_days: u32,
    /// Days after an order closed or expired that its personal data is
    /// kept: then its candidates' references and notes, their history, its
    /// contact person and the audit of its log reads are deleted (0: at the
    /// next pass). Also the dead-letter queue's message TTL, hence at most
    /// 3,650: RabbitMQ's longest.
    #[arg(
        long,
        env = "JOBSYNC_PERSONAL_DATA_RETENTION_DAYS",
        default_value_t = 365,
        value_parser = clap::value_parser!(u32).range(..=3_650)
    )]
    pub personal_data_retention_days: u32,
}

/// The read API (section 10).
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct ApiSettings {
    /// Address of the read API (search, fetch, change feed); empty turns it
    /// off.
    #[arg(id = "api_addr", value_name = "ADDR", long = "api-addr", env = "JOBSYNC_API_ADDR", default_value = "127.0.0.1:8081", value_parser = parse_api_addr)]
    pub addr: ApiAddr,
    /// Requests a second each token may make (bursts of twice that).
    #[arg(id = "api_rate_per_s", value_name = "N", long = "api-rate-per-s", env = "JOBSYNC_API_RATE_PER_S", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate_per_s: u32,
}

/// The service promises (section 11): how long each gives, in seconds.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct PromiseSettings {
    /// Seconds from an employer's order's creation to contact.
    #[arg(id = "promise_contact_s", value_name = "S", long = "promise-contact-s", env = "JOBSYNC_PROMISE_CONTACT_S", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub contact_s: u64,
    /// Seconds from an employer's order's creation to delivery of
    /// candidates.
    #[arg(id = "promise_delivery_s", value_name = "S", long = "promise-delivery-s", env = "JOBSYNC_PROMISE_DELIVERY_S", default_value_t = 259_200, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub delivery_s: u64,
    /// Seconds from delivery to the follow-up with the employer.
    #[arg(id = "promise_follow_up_s", value_name = "S", long = "promise-follow-up-s", env = "JOBSYNC_PROMISE_FOLLOW_UP_S", default_value_t = 1_209_600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub follow_up_s: u64,
}

impl PromiseSettings {
    pub fn durations(&self) -> crate::domain::promises::Durations {
        let s = |secs: u64| chrono::Duration::seconds(secs as i64);
        crate::domain::promises::Durations {
            contact: s(self.contact_s),
            delivery: s(self.delivery_s),
            follow_up: s(self.follow_up_s),
        }
    }
}

/// Where the read API listens, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ApiAddr(pub Option<SocketAddr>);

fn parse_prefetch_bytes(s: &str) -> Result<u64, String> {
    let min = crate::contract::envelope::MAX_BODY_BYTES as u64;
    match s.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        Ok(n) => Err(format!(
            "{n} bytes is less than one message at the body limit: at least {min} (256 KiB)"
        )),
        Err(_) => Err(format!(
            "'{s}' is not a number of bytes (e.g. 33554432 for 32 MiB)"
        )),
    }
}

fn parse_api_addr(s: &str) -> Result<ApiAddr, String> {
    if s.trim().is_empty() {
        return Ok(ApiAddr(None));
    }
    s.parse().map(|a| ApiAddr(Some(a))).map_err(|e| {
        format!("{e} (an address such as 127.0.0.1:8081, or empty to turn the API off)")
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct AmqpSettings {
    /// The broker (AMQP 0-9-1 URL; amqps for TLS).
    #[arg(id = "amqp_url", value_name = "URL", long = "amqp-url", env = "JOBSYNC_AMQP_URL", hide_env_values = true, default_value = defaults::AMQP_URL, value_parser = parse_amqp_url)]
    pub url: String,
    /// Unacknowledged deliveries the broker may have in flight per consumer.
    /// At least the batch size, so that a batch can fill.
    #[arg(long, env = "JOBSYNC_PREFETCH", default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: u16,
    /// Bytes of message bodies the broker may have in flight per consumer:
    /// when recent messages are large, the prefetch is lowered below
    /// `--prefetch` to fit (RabbitMQ limits deliveries by count only).
    #[arg(long, env = "JOBSYNC_PREFETCH_BYTES", default_value_t = 32 * 1024 * 1024, value_parser = parse_prefetch_bytes)]
    pub prefetch_bytes: u64,
    /// How often a delivery may be redelivered before the broker dead-letters
    /// it (`x-delivery-limit` of the consumed queues).
    #[arg(long, env = "JOBSYNC_DELIVERY_LIMIT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub delivery_limit: u32,
}

#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct DatabaseSettings {
    /// The PostgreSQL database (created if missing).
    #[arg(id = "database_url", value_name = "URL", long = "database-url", env = "JOBSYNC_DATABASE_URL", hide_env_values = true, default_value = defaults::DATABASE_URL, value_parser = parse_database_url)]
    pub url: String,
    /// Connections in the pool.
    #[arg(id = "database_pool_size", value_name = "N", long = "database-pool-size", env = "JOBSYNC_DATABASE_POOL_SIZE", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub pool_size: u32,
}

#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct BatchSettings {
    /// Deliveries applied in one database transaction, at most.
    #[arg(id = "batch_size", value_name = "N", long = "batch-size", env = "JOBSYNC_BATCH_SIZE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub size: u32,
    /// How long a batch waits for more deliveries after its first, in ms.
    /// 0: a batch takes what is already buffered and waits for nothing.
    #[arg(
        id = "batch_wait_ms",
        value_name = "MS",
        long = "batch-wait-ms",
        env = "JOBSYNC_BATCH_WAIT_MS",
        default_value_t = 0
    )]
    pub wait_ms: u64,
}

impl Settings {
    /// The effective settings, for the start-up line: passwords hidden.
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value["amqp"]["url"] = redact_url(&self.amqp.url).into();
        value["database"]["url"] = redact_url(&self.database.url).into();
        value
    }
}

impl BatchSettings {
    pub fn wait(&self) -> Duration {
        Duration::from_millis(self.wait_ms)
    }
}

/// Exchange and queue names (section 2).
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct Topology {
    /// Topic exchange where the hub publishes.
    #[arg(
        long,
        env = "JOBSYNC_HUB_EXCHANGE",
        default_value = defaults::HUB_EXCHANGE
    )]
    pub hub_exchange: String,
    /// Quorum queue of job order snapshots.
    #[arg(
        long,
        env = "JOBSYNC_JOBORDERS_QUEUE",
        default_value = "jobsync.joborders"
    )]
    pub joborders_queue: String,
    /// Quorum queue of mediation log snapshots.
    #[arg(
        long,
        env = "JOBSYNC_MEDIATIONLOGS_QUEUE",
        default_value = "jobsync.mediationlogs"
    )]
    pub mediationlogs_queue: String,
    /// Exchange of delayed redelivery.
    #[arg(long, env = "JOBSYNC_RETRY_EXCHANGE", default_value = "jobsync.retry")]
    pub retry_exchange: String,
    /// Exchange of rejected messages.
    #[arg(long, env = "JOBSYNC_DEAD_EXCHANGE", default_value = "jobsync.dead")]
    pub dead_exchange: String,
    /// Queue keeping rejected messages.
    #[arg(
        long,
        env = "JOBSYNC_DEAD_LETTERS_QUEUE",
        default_value = defaults::DEAD_LETTERS_QUEUE
    )]
    pub dead_letters_queue: String,
    /// Topic exchange of per-unit notifications.
    #[arg(
        long,
        env = "JOBSYNC_NOTIFICATIONS_EXCHANGE",
        default_value = defaults::NOTIFICATIONS_EXCHANGE
    )]
    pub notifications_exchange: String,
    /// Topic exchange of lifecycle events.
    #[arg(
        long,
        env = "JOBSYNC_EVENTS_EXCHANGE",
        default_value = "jobsync.events"
    )]
    pub events_exchange: String,
}

impl Topology {
    /// The delay queue of `queue` for a delay of `seconds`.
    pub fn retry_queue(&self, queue: &str, seconds: u64) -> String {
        format!("{}.{}.{}s", self.retry_exchange, queue, seconds)
    }

    /// Every name with `prefix.` in front: a topology of its own beside
    /// others on one broker (tests, benchmarks, a staging copy).
    pub fn with_prefix(&self, prefix: &str) -> Topology {
        let p = |name: &str| format!("{prefix}.{name}");
        Topology {
            hub_exchange: p(&self.hub_exchange),
            joborders_queue: p(&self.joborders_queue),
            mediationlogs_queue: p(&self.mediationlogs_queue),
            retry_exchange: p(&self.retry_exchange),
            dead_exchange: p(&self.dead_exchange),
            dead_letters_queue: p(&self.dead_letters_queue),
            notifications_exchange: p(&self.notifications_exchange),
            events_exchange: p(&self.events_exchange),
        }
    }

    /// The environment variables that select these names.
    pub fn as_envs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("JOBSYNC_HUB_EXCHANGE", self.hub_exchange.clone()),
            ("JOBSYNC_JOBORDERS_QUEUE", self.joborders_queue.clone()),
            (
                "JOBSYNC_MEDIATIONLOGS_QUEUE",
                self.mediationlogs_queue.clone(),
            ),
            ("JOBSYNC_RETRY_EXCHANGE", self.retry_exchange.clone()),
            ("JOBSYNC_DEAD_EXCHANGE", self.dead_exchange.clone()),
            (
                "JOBSYNC_DEAD_LETTERS_QUEUE",
                self.dead_letters_queue.clone(),
            ),
            (
                "JOBSYNC_NOTIFICATIONS_EXCHANGE",
                self.notifications_exchange.clone(),
            ),
            ("JOBSYNC_EVENTS_EXCHANGE", self.events_exchange.clone()),
        ]
    }

    /// The command-line flags that select these names.
    pub fn as_args(&self) -> Vec<String> {
        [
            ("--hub-exchange", &self.hub_exchange),
            ("--joborders-queue", &self.joborders_queue),
            ("--mediationlogs-queue", &self.mediationlogs_queue),
            ("--retry-exchange", &self.retry_exchange),
            ("--dead-exchange", &self.dead_exchange),
            ("--dead-letters-queue", &self.dead_letters_queue),
            ("--notifications-exchange", &self.notifications_exchange),
            ("--events-exchange", &self.events_exchange),
        ]
        .into_iter()
        .flat_map(|(flag, name)| [flag.to_owned(), name.clone()])
        .collect()
    }
}

fn parse_amqp_url(s: &str) -> Result<String, String> {
    s.parse::<lapin::uri::AMQPUri>()
        .map(|_| s.to_owned())
        .map_err(|e| format!("not an AMQP URL ({e})"))
}

fn parse_database_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(format!("scheme {:?} is not postgres", url.scheme()));
    }
    if url.path().trim_start_matches('/').is_empty() {
        return Err("names no database".to_owned());
    }
    Ok(s.to_owned())
}

/// `url` with its password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// Parses the command line and environment.
pub fn parse_cli<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args)
}

/// The worker's settings from `args` (flags as after `jobsync run`) and the
/// environment.
pub fn worker_settings<I, T>(args: I) -> Result<Settings, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = ["jobsync".into(), "run".into()]
        .into_iter()
        .chain(args.into_iter().map(Into::into));
    match Cli::try_parse_from(args)?.command {
        Command::Run(settings) => Ok(*settings),
        _ => unreachable!("`jobsync run` parses as Run"),
    }
}

/// The text of a clap error as the user sees it: clap's own message, with
/// the environment variable of the setting named beside its flag, and the
/// password of a URL hidden. Help and version are returned as they are.
pub fn error_text(err: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let mut text = err.to_string();
    if let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) {
        let flag = arg.split_whitespace().next().unwrap_or(arg);
        if let Some(env) = env_of_flag(flag) {
            text = text.replacen(&format!("'{arg}'"), &format!("'{arg}' ({env})"), 1);
        }
        if let Some(ContextValue::String(value)) = err.get(ContextKind::InvalidValue) {
            if flag.ends_with("-url") && !value.is_empty() {
                text = text.replace(value.as_str(), &redact_url(value));
            }
        }
    }
    text
}

/// The environment variable of the flag `flag` (`--prefetch`), in any
/// subcommand.
fn env_of_flag(flag: &str) -> Option<String> {
    use clap::CommandFactory;
    fn find(cmd: &clap::Command, long: &str) -> Option<String> {
        cmd.get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .or_else(|| cmd.get_subcommands().find_map(|c| find(c, long)))
    }
    find(&Cli::command(), flag.trim_start_matches("--"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_waits_for_nothing_by_default() {
        let settings = worker_settings::<_, &str>([]).unwrap();
        assert_eq!(settings.batching.wait_ms, 0);
        assert_eq!(settings.batching.wait(), std::time::Duration::ZERO);
    }

    #[test]
    fn defaults_are_those_of_the_contract() {
        let s = worker_settings::<_, &str>([]).unwrap();
        assert_eq!(s.amqp.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(s.database.url, "postgres://postgres@127.0.0.1:5432/jobsync");
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.expiry_interval_s, 60);
        assert_eq!(s.retry_total_s, 600);
        assert_eq!(s.topology.joborders_queue, "jobsync.joborders");
        assert_eq!(s.topology.dead_letters_queue, "jobsync.dead-letters");
        assert_eq!(s.personal_data_retention_days, 365);
    }

    #[test]
    fn a_byte_budget_below_one_message_says_what_is_needed() {
        let err = parse_cli(["jobsync", "run", "--prefetch-bytes", "1000"]).unwrap_err();
        let text = error_text(&err);
        assert!(text.contains("JOBSYNC_PREFETCH_BYTES"), "{text}");
        assert!(text.contains("at least 262144 (256 KiB)"), "{text}");
    }

    #[test]
    fn a_bad_setting_names_its_flag_and_variable() {
        let err = parse_cli(["jobsync", "run", "--prefetch", "lots"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = error_text(&err);
        assert!(
            text.lines()
                .next()
                .unwrap()
                .contains("'--prefetch <PREFETCH>' (JOBSYNC_PREFETCH)"),
            "{text}"
        );
        assert!(text.contains("'lots'"), "{text}");
    }

    #[test]
    fn a_retention_beyond_the_brokers_longest_message_ttl_is_refused() {
        // RabbitMQ refuses an x-message-ttl above ten years
        // (`value_too_large`), and the retention is the dead letters' TTL.
        let ok = ["jobsync", "run", "--personal-data-retention-days", "3650"];
        assert!(parse_cli(ok).is_ok());
        let err =
            parse_cli(["jobsync", "run", "--personal-data-retention-days", "3651"]).unwrap_err();
        let text = error_text(&err);
        assert!(
            text.contains("JOBSYNC_PERSONAL_DATA_RETENTION_DAYS"),
            "{text}"
        );
        assert!(text.contains("0..=3650"), "{text}");
    }

    #[test]
    fn a_bad_choice_lists_the_valid_ones() {
        let err = parse_cli(["jobsync", "run", "--log-format", "xml"]).unwrap_err();
        let text = error_text(&err);
        assert!(text.contains("JOBSYNC_LOG_FORMAT"), "{text}");
        assert!(text.contains("pretty, json"), "{text}");
    }

    #[test]
    fn a_bad_url_never_shows_its_password() {
        let err =
            parse_cli(["jobsync", "run", "--database-url", "mysql://u:hunter2@h/db"]).unwrap_err();
        let text = error_text(&err);
        assert!(text.contains("JOBSYNC_DATABASE_URL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn the_tools_take_only_their_own_settings() {
        // A worker setting is no flag of `dead-letters list`…
        let err = parse_cli(["jobsync", "dead-letters", "list", "--prefetch", "5"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        // …and a bad worker setting in the environment is not its concern.
        let cli = parse_cli([
            "jobsync",
            "dead-letters",
            "replay",
            "--id",
            "a,b",
            "--amqp-url",
            "amqp://h/%2f",
        ])
        .unwrap();
        let Command::DeadLetters(dl) = cli.command else {
            panic!()
        };
        assert_eq!(dl.queue.broker.amqp_url, "amqp://h/%2f");
        let DeadLettersAction::Replay { which, .. } = dl.action else {
            panic!()
        };
        assert_eq!(which.id, ["a", "b"]);
    }

    #[test]
    fn replay_needs_exactly_one_choice() {
        for args in [
            &["jobsync", "dead-letters", "replay"][..],
            &["jobsync", "dead-letters", "replay", "--all", "--code", "x"],
            &["jobsync", "dead-letters", "delete", "--yes"],
        ] {
            let err = parse_cli(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn no_command_is_a_usage_error() {
        let err = parse_cli(["jobsync"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_prefixed_topology_round_trips_through_its_flags() {
        let defaults = worker_settings::<_, &str>([]).unwrap().topology;
        let prefixed = defaults.with_prefix("t1");
        assert_eq!(prefixed.joborders_queue, "t1.jobsync.joborders");
        let parsed = worker_settings(prefixed.as_args()).unwrap().topology;
        assert_eq!(parsed.as_args(), prefixed.as_args());
    }

    #[test]
    fn redaction_hides_the_password_only() {
        assert_eq!(
            redact_url("postgres://jobsync:secret@db:5432/jobsync"),
            "postgres://jobsync:***@db:5432/jobsync"
        );
        assert_eq!(
            redact_url("postgres://postgres@db/jobsync"),
            "postgres://postgres@db/jobsync"
        );
    }
}
