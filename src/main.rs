//! The `jobsync` binary: telemetry, settings, the command; errors become exit
//! codes (1 for a failure, 2 for a usage error or a bad setting). A closed
//! standard output (`jobsync dead-letters list | head -1`) ends a command
//! quietly.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use jobsync::config::{self, Command, DeadLettersAction};
use jobsync::deadletters;
use tokio_util::sync::CancellationToken;

/// At most two glibc malloc arenas (instead of eight per core): the apply
/// transactions run on changing blocking threads, and each thread's arena
/// kept its own high-water mark; with two the worker's peak resident memory
/// in the 94-jobcentre benchmark went from 156 MB to 134 MB, at no measurable
/// cost in speed.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = match config::parse_cli(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to standard output and exit 0; usage
            // errors to standard error, with exit status 2.
            let text = config::error_text(&err);
            if err.use_stderr() {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            return ExitCode::from(err.exit_code().clamp(0, 255) as u8);
        }
    };
    jobsync::telemetry::init(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let worker = matches!(cli.command, Command::Run(_));
    match runtime.block_on(command(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Once: the worker's in its log (JSON lines stay JSON lines), a
            // tool's as a line for the person who ran it.
            let line = format!("{e:#}");
            if worker {
                tracing::error!(error = %line, "jobsync failed");
            } else {
                eprintln!("jobsync: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether `e` is a write to a standard output whose reader has gone.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(settings) => run(*settings).await,
        Command::Migrate(database) => {
            let applied = jobsync::commands::migrate(&database.url).await?;
            tracing::info!(migrations.applied = applied, "database is up to date");
            Ok(())
        }
        Command::Publish(args) => {
            let n = jobsync::commands::publish(&args).await?;
            writeln!(std::io::stdout(), "published {n} events")?;
            Ok(())
        }
        Command::DeadLetters(args) => dead_letters(&args.queue, args.action).await,
        Command::Report(args) => {
            tokio::task::spawn_blocking(move || report(&args.database.url, args.what)).await?
        }
        Command::Tokens(args) => {
            tokio::task::spawn_blocking(move || tokens(&args.database.url, args.action)).await?
        }
        Command::Erase(args) => {
            let config::EraseWhat::Person { person_ref } = args.what;
            let person_ref = jobsync::erase::reference(&person_ref, std::io::stdin().lock())?;
            let url = args.database.url;
            let erased = tokio::task::spawn_blocking(move || {
                jobsync::erase::person(&url, &person_ref, chrono::Utc::now())
            })
            .await??;
            writeln!(std::io::stdout(), "{}", jobsync::erase::summary(&erased))?;
            Ok(())
        }
        Command::Tail(args) => {
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            jobsync::commands::tail(&args, shutdown).await
        }
    }
}

/// `jobsync run`: the worker, until SIGTERM or SIGINT and at most the grace
/// period after it.
async fn run(settings: config::Settings) -> anyhow::Result<()> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        settings = %settings.redacted(),
        "jobsync starting"
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let grace = std::time::Duration::from_secs(settings.shutdown_grace_s);
    let run = jobsync::worker::run(settings, shutdown.clone());
    tokio::pin!(run);
    let over = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = &mut run => {
            result?;
            tracing::info!("jobsync stopped");
            Ok(())
        }
        _ = over => Err(anyhow::anyhow!(
            "not stopped within the grace period of {} s (JOBSYNC_SHUTDOWN_GRACE_S); what was in hand is redelivered",
            grace.as_secs()
        )),
    }
}

/// `jobsync report promises`.
fn report(database_url: &str, what: config::ReportWhat) -> anyhow::Result<()> {
    let config::ReportWhat::Promises {
        from,
        to,
        unit,
        format,
    } = what;
    let unit = unit
        .map(|u| jobsync::commands::parse_unit(&u))
        .transpose()?;
    let (from, to) = jobsync::report::window(from, to)?;
    let figures = jobsync::report::figures(database_url, from, to, unit.as_ref())?;
    let rows: Vec<_> = figures.iter().map(jobsync::report::Row::of).collect();
    jobsync::report::write(&mut std::io::stdout().lock(), &rows, format)?;
    Ok(())
}

/// `jobsync tokens create|list|revoke`.
fn tokens(database_url: &str, action: config::TokensAction) -> anyhow::Result<()> {
    use config::TokensAction;
    use jobsync::tokens;
    let mut out = std::io::stdout().lock();
    let now = chrono::Utc::now();
    match action {
        TokensAction::Create {
            unit,
            name,
            expires_days,
        } => {
            let unit = jobsync::commands::parse_unit(&unit)?;
            let (token, secret) =
                tokens::create(database_url, &unit, name.as_deref(), expires_days, now)?;
            // The secret alone on standard output, so a script can take it;
            // what it is, on standard error.
            writeln!(out, "{secret}")?;
            let expires = token
                .expires_at
                .map_or("never".to_owned(), |e| e.to_rfc3339());
            eprintln!(
                "token {} for {unit} made (expires: {expires}); it is shown only now",
                token.id
            );
        }
        TokensAction::List { json } => {
            let all = tokens::list(database_url)?;
            if json {
                for t in &all {
                    writeln!(out, "{}", tokens::to_json(t))?;
                }
            } else {
                writeln!(
                    out,
                    "{:<36}  {:<22}  {:<8}  {:<20}  {:<20}  NAME",
                    "ID", "UNIT", "STATE", "CREATED", "EXPIRES"
                )?;
                let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map_or("-".to_owned(), |t| {
                        t.format("%Y-%m-%d %H:%M:%S").to_string()
                    })
                };
                for t in &all {
                    writeln!(
                        out,
                        "{:<36}  {:<22}  {:<8}  {:<20}  {:<20}  {}",
                        t.id,
                        t.unit().to_string(),
                        tokens::state(t, now),
                        time(Some(t.created_at)),
                        time(t.expires_at),
                        t.name.as_deref().unwrap_or("")
                    )?;
                }
            }
        }
        TokensAction::Revoke { id } => {
            let t = tokens::revoke(database_url, id, now)?;
            writeln!(out, "token {} for {} revoked", t.id, t.unit())?;
        }
    }
    Ok(())
}

/// `jobsync dead-letters list|show|replay|delete`.
async fn dead_letters(
    queue: &config::DeadLetterQueue,
    action: DeadLettersAction,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match action {
        DeadLettersAction::List {
            code,
            summary,
            json,
        } => {
            let listed = deadletters::list(queue, code.as_deref()).await?;
            if summary {
                let mut counts = std::collections::BTreeMap::<&str, usize>::new();
                for d in &listed {
                    *counts
                        .entry(d.error_code.as_deref().unwrap_or("-"))
                        .or_default() += 1;
                }
                if json {
                    writeln!(out, "{}", serde_json::to_string(&counts)?)?;
                } else {
                    writeln!(out, "{:<40} {:>7}", "code", "count")?;
                    for (code, n) in &counts {
                        writeln!(out, "{code:<40} {n:>7}")?;
                    }
                    writeln!(out, "{:<40} {:>7}", "total", listed.len())?;
                }
            } else if json {
                for d in &listed {
                    writeln!(out, "{}", serde_json::to_string(d)?)?;
                }
            } else {
                writeln!(
                    out,
                    "{:<38} {:<30} {:<26} {:<25} {:<28} error",
                    "id", "type", "code", "rejected at", "source queue"
                )?;
                let or = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".to_owned());
                for d in &listed {
                    writeln!(
                        out,
                        "{:<38} {:<30} {:<26} {:<25} {:<28} {}",
                        or(&d.id),
                        or(&d.kind),
                        or(&d.error_code),
                        or(&d.rejected_at),
                        or(&d.source_queue),
                        or(&d.error)
                    )?;
                }
                out.flush()?;
                eprintln!("{} dead letters", listed.len());
            }
        }
        DeadLettersAction::Show { id } => {
            for (n, shown) in deadletters::show(queue, &id).await?.iter().enumerate() {
                if n > 0 {
                    writeln!(out)?;
                }
                writeln!(
                    out,
                    "message_id: {}",
                    shown.letter.id.as_deref().unwrap_or("-")
                )?;
                writeln!(out, "routing_key: {}", shown.letter.routing_key)?;
                for (name, value) in &shown.headers {
                    writeln!(out, "{name}: {value}")?;
                }
                // The body exactly as it came (pipe it to `jq` to read it).
                writeln!(out)?;
                writeln!(out, "{}", String::from_utf8_lossy(&shown.body))?;
            }
        }
        DeadLettersAction::Replay {
            which,
            limit,
            dry_run,
        } => {
            let terminal = std::io::stderr().is_terminal();
            let taken =
                deadletters::replay(queue, &which.selection(), limit, dry_run, |done, all| {
                    if terminal && all > 200 {
                        eprint!("\rreplayed {done} of {all}");
                        if done == all {
                            eprintln!();
                        }
                    }
                })
                .await?;
            if taken.dry_run {
                for d in &taken.letters {
                    writeln!(out, "{}", serde_json::to_string(d)?)?;
                }
                out.flush()?;
                eprintln!("would replay {} dead letters", taken.letters.len());
            } else {
                writeln!(out, "replayed {} dead letters", taken.letters.len())?;
            }
        }
        DeadLettersAction::Delete { which, yes } => {
            let taken = deadletters::delete(queue, &which.selection(), !yes).await?;
            if taken.dry_run {
                writeln!(
                    out,
                    "would delete {} dead letters; add --yes to delete them",
                    taken.letters.len()
                )?;
            } else {
                writeln!(out, "deleted {} dead letters", taken.letters.len())?;
            }
        }
    }
    Ok(())
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "stopping: finishing the batch in hand");
    shutdown.cancel();
}
