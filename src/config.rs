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
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the worker: migrate, declare the topology, consume, apply, publish;
    /// stop cleanly on SIGTERM or SIGINT.
    Run,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Publish the CloudEvents in FILE (JSON lines; `-` for standard input) to
    /// the hub exchange under publisher confirms, routing key from the type.
    Publish {
        /// A file of CloudEvents, one JSON object per line.
        file: String,
    },
    /// The rejected messages in the dead-letter queue.
    DeadLetters {
        #[command(subcommand)]
        action: DeadLettersAction,
    },
    /// Watch a unit's notifications: declare a temporary queue bound to
    /// them and print each as one JSON line, until stopped.
    Tail {
        /// The unit, as `jobcenter:15300`, `akasse:1234` or `workindenmark:1`.
        unit: String,
        /// Stop after this many notifications.
        #[arg(long)]
        count: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadLettersAction {
    /// Show every dead letter with its error code, error, time, source
    /// queue (and delivery count for those the broker dead-lettered); they
    /// stay in the queue.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Republish dead letters to the hub exchange with their routing key,
    /// under publisher confirms, and remove them: only those in the queue
    /// when it starts.
    Replay {
        /// The one with this message id.
        #[arg(long, group = "which")]
        id: Option<String>,
        /// Those with this error code (e.g. joborder.unknown).
        #[arg(long, group = "which")]
        code: Option<String>,
        /// All of them.
        #[arg(long, group = "which")]
        all: bool,
    },
}

/// Every setting of the worker, grouped by concern.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub amqp: AmqpSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub batching: BatchSettings,
    #[command(flatten)]
    pub topology: Topology,
    /// Address of the operations endpoints (/healthz, /readyz, /metrics).
    #[arg(
        long,
        env = "JOBSYNC_HTTP_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub http_addr: SocketAddr,
    /// How long, in seconds in all, a mediation log that cannot be applied
    /// yet (its job order is not stored, or its entries are newer than the
    /// stored order version and break a rule of it) is retried with growing
    /// delays through the retry exchange before it is rejected.
    #[arg(
        long,
        env = "JOBSYNC_RETRY_TOTAL_S",
        default_value_t = 600,
        global = true
    )]
    pub retry_total_s: u64,
    /// Seconds `jobsync run` may take to stop after SIGTERM or SIGINT
    /// (finish the batch in hand, publish what is committed); past it, it
    /// exits with status 1 and what was in hand is redelivered.
    #[arg(long, env = "JOBSYNC_SHUTDOWN_GRACE_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub shutdown_grace_s: u64,
    /// Whether this instance runs the outbox relay (publishes committed
    /// notifications and events). With several instances, one relay
    /// publishes at a time; turn it off to run consume-only instances.
    #[arg(long, env = "JOBSYNC_RELAY", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub relay: bool,
    /// Seconds between expiry passes.
    #[arg(long, env = "JOBSYNC_EXPIRY_INTERVAL_S", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub expiry_interval_s: u64,
    /// Days an inbound message id is kept in the inbox
    /// (`processed_messages`): a redelivery after that is no longer known
    /// as a duplicate by id (a stale or same version still is, by version).
    #[arg(long, env = "JOBSYNC_INBOX_RETENTION_DAYS", default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub inbox_retention_days: u32,
    /// Log format: pretty on a terminal, json otherwise, unless set.
    #[arg(long, env = "JOBSYNC_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct AmqpSettings {
    /// The broker (AMQP 0-9-1 URL; amqps for TLS).
    #[arg(id = "amqp_url", long = "amqp-url", env = "JOBSYNC_AMQP_URL", hide_env_values = true, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f", value_parser = parse_amqp_url, global = true)]
    pub url: String,
    /// Unacknowledged deliveries the broker may have in flight per consumer.
    /// At least the batch size, so that a batch can fill.
    #[arg(long, env = "JOBSYNC_PREFETCH", default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..), global = true)]
    pub prefetch: u16,
    /// How often a delivery may be redelivered before the broker dead-letters
    /// it (`x-delivery-limit` of the consumed queues).
    #[arg(long, env = "JOBSYNC_DELIVERY_LIMIT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub delivery_limit: u32,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// The PostgreSQL database (created if missing).
    #[arg(id = "database_url", long = "database-url", env = "JOBSYNC_DATABASE_URL", hide_env_values = true, default_value = "postgres://postgres@127.0.0.1:5432/jobsync", value_parser = parse_database_url, global = true)]
    pub url: String,
    /// Connections in the pool.
    #[arg(id = "database_pool_size", long = "database-pool-size", env = "JOBSYNC_DATABASE_POOL_SIZE", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256), global = true)]
    pub pool_size: u32,
}

#[derive(Debug, Clone, Args)]
pub struct BatchSettings {
    /// Deliveries applied in one database transaction, at most.
    #[arg(id = "batch_size", long = "batch-size", env = "JOBSYNC_BATCH_SIZE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=5000), global = true)]
    pub size: u32,
    /// How long a batch waits to fill after its first delivery, in ms.
    #[arg(
        id = "batch_wait_ms",
        long = "batch-wait-ms",
        env = "JOBSYNC_BATCH_WAIT_MS",
        default_value_t = 5,
        global = true
    )]
    pub wait_ms: u64,
}

impl BatchSettings {
    pub fn wait(&self) -> Duration {
        Duration::from_millis(self.wait_ms)
    }
}

/// Exchange and queue names (section 2).
#[derive(Debug, Clone, Args)]
pub struct Topology {
    /// Topic exchange where the hub publishes.
    #[arg(
        long,
        env = "JOBSYNC_HUB_EXCHANGE",
        default_value = "dfdg.hub",
        global = true
    )]
    pub hub_exchange: String,
    /// Quorum queue of job order snapshots.
    #[arg(
        long,
        env = "JOBSYNC_JOBORDERS_QUEUE",
        default_value = "jobsync.joborders",
        global = true
    )]
    pub joborders_queue: String,
    /// Quorum queue of mediation log snapshots.
    #[arg(
        long,
        env = "JOBSYNC_MEDIATIONLOGS_QUEUE",
        default_value = "jobsync.mediationlogs",
        global = true
    )]
    pub mediationlogs_queue: String,
    /// Exchange of delayed redelivery.
    #[arg(
        long,
        env = "JOBSYNC_RETRY_EXCHANGE",
        default_value = "jobsync.retry",
        global = true
    )]
    pub retry_exchange: String,
    /// Exchange of rejected messages.
    #[arg(
        long,
        env = "JOBSYNC_DEAD_EXCHANGE",
        default_value = "jobsync.dead",
        global = true
    )]
    pub dead_exchange: String,
    /// Queue keeping rejected messages.
    #[arg(
        long,
        env = "JOBSYNC_DEAD_LETTERS_QUEUE",
        default_value = "jobsync.dead-letters",
        global = true
    )]
    pub dead_letters_queue: String,
    /// Topic exchange of per-unit notifications.
    #[arg(
        long,
        env = "JOBSYNC_NOTIFICATIONS_EXCHANGE",
        default_value = "jobsync.notifications",
        global = true
    )]
    pub notifications_exchange: String,
    /// Topic exchange of lifecycle events.
    #[arg(
        long,
        env = "JOBSYNC_EVENTS_EXCHANGE",
        default_value = "jobsync.events",
        global = true
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

/// Parses the command line and environment. On a bad setting, the error is
/// one line naming the setting (flag and environment variable) and what is
/// wrong, with any password hidden.
pub fn parse_cli<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args)
}

/// One line for a clap error: the setting, its environment variable and what
/// is wrong. Help and version requests are not errors and keep clap's text.
pub fn one_line_error(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return None;
    }
    let arg = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => {
            let text = err.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid command line")
                .trim_start_matches("error: ");
            return Some(format!("jobsync: {first}"));
        }
    };
    let flag = arg.split_whitespace().next().unwrap_or(&arg).to_owned();
    let env = env_of_flag(&flag);
    let value = match err.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => {
            if flag.ends_with("-url") {
                redact_url(v)
            } else {
                v.clone()
            }
        }
        _ => String::new(),
    };
    let why = match (err.source(), err.get(ContextKind::ValidValue)) {
        (Some(source), _) => source.to_string(),
        (None, Some(ContextValue::Strings(valid))) => {
            format!("expected one of {}", valid.join(", "))
        }
        (None, _) => "invalid value".to_owned(),
    };
    let setting = match env {
        Some(env) => format!("{env} ({flag})"),
        None => flag,
    };
    Some(format!(
        "jobsync: invalid setting {setting}: {value:?}: {why}"
    ))
}

fn env_of_flag(flag: &str) -> Option<String> {
    use clap::CommandFactory;
    let long = flag.trim_start_matches("--");
    let cmd = Cli::command();
    let env = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned());
    env
}

use std::error::Error as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_those_of_the_contract() {
        let cli = parse_cli(["jobsync", "run"]).unwrap();
        let s = cli.settings;
        assert_eq!(s.amqp.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(s.database.url, "postgres://postgres@127.0.0.1:5432/jobsync");
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.expiry_interval_s, 60);
        assert_eq!(s.retry_total_s, 600);
        assert_eq!(s.topology.joborders_queue, "jobsync.joborders");
        assert_eq!(s.topology.dead_letters_queue, "jobsync.dead-letters");
    }

    #[test]
    fn a_bad_setting_is_one_line_naming_it() {
        let err = parse_cli(["jobsync", "--prefetch", "lots", "run"]).unwrap_err();
        let line = one_line_error(&err).unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("JOBSYNC_PREFETCH (--prefetch)"), "{line}");
        assert!(line.contains("\"lots\""), "{line}");
    }

    #[test]
    fn a_bad_choice_lists_the_valid_ones() {
        let err = parse_cli(["jobsync", "--log-format", "xml", "run"]).unwrap_err();
        let line = one_line_error(&err).unwrap();
        assert!(line.contains("JOBSYNC_LOG_FORMAT (--log-format)"), "{line}");
        assert!(line.ends_with("expected one of pretty, json"), "{line}");
    }

    #[test]
    fn a_bad_url_never_shows_its_password() {
        let err =
            parse_cli(["jobsync", "--database-url", "mysql://u:hunter2@h/db", "run"]).unwrap_err();
        let line = one_line_error(&err).unwrap();
        assert!(line.contains("JOBSYNC_DATABASE_URL"), "{line}");
        assert!(!line.contains("hunter2"), "{line}");
    }

    #[test]
    fn a_prefixed_topology_round_trips_through_its_flags() {
        let defaults = parse_cli(["jobsync", "run"]).unwrap().settings.topology;
        let prefixed = defaults.with_prefix("t1");
        assert_eq!(prefixed.joborders_queue, "t1.jobsync.joborders");
        let mut args = vec!["jobsync".to_owned()];
        args.extend(prefixed.as_args());
        args.push("run".into());
        let parsed = parse_cli(args).unwrap().settings.topology;
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
