//! The `jobsync` binary: telemetry, settings, the command; errors become exit
//! codes (1 for a failure, 2 for a bad setting).

use std::process::ExitCode;

use jobsync::config::{self, Command};
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
            return match config::one_line_error(&err) {
                Some(line) => {
                    eprintln!("{line}");
                    ExitCode::from(2)
                }
                None => {
                    let _ = err.print();
                    ExitCode::SUCCESS
                }
            };
        }
    };
    jobsync::telemetry::init(cli.settings.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run => {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                let grace = std::time::Duration::from_secs(cli.settings.shutdown_grace_s);
                let run = jobsync::worker::run(cli.settings, shutdown.clone());
                tokio::pin!(run);
                let over = async {
                    shutdown.cancelled().await;
                    tokio::time::sleep(grace).await;
                };
                tokio::select! {
                    result = &mut run => result,
                    _ = over => Err(anyhow::anyhow!(
                        "not stopped within the grace period of {} s (JOBSYNC_SHUTDOWN_GRACE_S); what was in hand is redelivered",
                        grace.as_secs()
                    )),
                }
            }
            Command::Migrate => {
                let applied = jobsync::commands::migrate(&cli.settings).await?;
                tracing::info!(migrations.applied = applied, "database is up to date");
                Ok(())
            }
            Command::Publish { file } => {
                let n = jobsync::commands::publish(&cli.settings, &file).await?;
                println!("published {n} events");
                Ok(())
            }
            Command::DeadLetters { action } => dead_letters(&cli.settings, action).await,
            Command::Tail { unit, count } => {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                jobsync::commands::tail(&cli.settings, &unit, count, shutdown).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{e:#}");
            tracing::error!(error = %line, "jobsync failed");
            eprintln!("jobsync: {line}");
            ExitCode::FAILURE
        }
    }
}

/// `jobsync dead-letters list|replay`.
async fn dead_letters(
    settings: &jobsync::config::Settings,
    action: config::DeadLettersAction,
) -> anyhow::Result<()> {
    use jobsync::deadletters::{self, Selection};
    match action {
        config::DeadLettersAction::List { json } => {
            let listed = deadletters::list(settings).await?;
            if json {
                for d in &listed {
                    println!("{}", serde_json::to_string(d)?);
                }
            } else {
                println!(
                    "{:<38} {:<30} {:<26} {:<25} {:<28} {:>5}  error",
                    "id", "type", "code", "rejected at", "source queue", "count"
                );
                let or = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".to_owned());
                for d in &listed {
                    println!(
                        "{:<38} {:<30} {:<26} {:<25} {:<28} {:>5}  {}",
                        or(&d.id),
                        or(&d.kind),
                        or(&d.error_code),
                        or(&d.rejected_at),
                        or(&d.source_queue),
                        d.delivery_count.map_or("-".to_owned(), |n| n.to_string()),
                        or(&d.error)
                    );
                }
                eprintln!("{} dead letters", listed.len());
            }
            Ok(())
        }
        config::DeadLettersAction::Replay { id, code, all } => {
            let which = match (id, code, all) {
                (Some(id), _, _) => Selection::Id(id),
                (_, Some(code), _) => Selection::Code(code),
                (_, _, true) => Selection::All,
                _ => anyhow::bail!("say which: --id ID, --code CODE or --all"),
            };
            let replayed = deadletters::replay(settings, &which).await?;
            println!("replayed {} dead letters", replayed.len());
            Ok(())
        }
    }
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
