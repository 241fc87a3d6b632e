//! Section 12: logs never carry a `person_ref`, a note, a contact person's
//! details, a CPR number or a token. A worker logging at `debug` (every
//! crate's, not only jobsync's) takes a reliability stream, then the whole
//! hostile corpus, then read API requests with a token and a search for a
//! person; `jobsync tokens create` and `jobsync erase person` run beside it,
//! logging at `debug` into the same file. Then the log is searched for every
//! such value that was sent.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aho_corasick::AhoCorasick;
use serde::Deserialize;
use serde_json::Value;

use crate::harness::*;
use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_jobsync");

/// Shorter values are too common to search for (an "Ole" would match
/// unrelated text); the corpus and the stream have thousands of longer ones.
const SHORTEST: usize = 6;

/// What kind of personal value a searched string is.
type Kind = &'static str;

/// What the test reads of a body. Unknown fields are skipped, not parsed:
/// one of the corpus's holds a number no `Value` can (`1e400`).
#[derive(Deserialize)]
struct Sent {
    #[serde(default)]
    data: SentData,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SentData {
    entries: Option<Vec<Value>>,
    contact: Option<Value>,
}

/// The personal values `body` carries: its entries' references and notes,
/// its contact person's details, and every CPR number anywhere in it (with
/// and without the hyphen).
fn personal_values(body: &[u8], out: &mut BTreeMap<String, Kind>) {
    cpr_numbers(&String::from_utf8_lossy(body), out);
    let Ok(sent) = serde_json::from_slice::<Sent>(body) else {
        return;
    };
    let mut add = |v: &Value, kind: Kind| {
        if let Some(s) = v.as_str() {
            out.insert(s.to_owned(), kind);
        }
    };
    for e in sent.data.entries.iter().flatten() {
        add(&e["person_ref"], "person_ref");
        add(&e["note"], "note");
    }
    if let Some(contact) = &sent.data.contact {
        for field in ["name", "email", "phone", "cpr"] {
            add(&contact[field], "contact");
        }
    }
}

/// The CPR numbers in `text`: ten digits, `DDMMYY-NNNN` or `DDMMYYNNNN`,
/// with a day and month that exist, not inside a longer run of digits.
fn cpr_numbers(text: &str, out: &mut BTreeMap<String, Kind>) {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    for start in 0..b.len() {
        if !digit(start) || (start > 0 && digit(start - 1)) {
            continue;
        }
        let hyphen = b.get(start + 6) == Some(&b'-');
        let len = if hyphen { 11 } else { 10 };
        let all = (start..start + len).all(|i| (hyphen && i == start + 6) || digit(i));
        if !all || digit(start + len) {
            continue;
        }
        let n = |i: usize| (b[i] - b'0') as u32 * 10 + (b[i + 1] - b'0') as u32;
        if (1..=31).contains(&n(start)) && (1..=12).contains(&n(start + 2)) {
            let s = &text[start..start + len];
            let plain: String = s.chars().filter(char::is_ascii_digit).collect();
            out.insert(format!("{}-{}", &plain[..6], &plain[6..]), "cpr");
            out.insert(plain, "cpr");
        }
    }
}

/// Where `values` (and their JSON-escaped forms, as a JSON log writes them)
/// occur in `log`: (kind, value, the line), at most `limit`. A CPR number
/// counts only where no letter or digit is beside it (a trace id's hex may
/// hold ten digits in a row).
fn occurrences(log: &str, values: &BTreeMap<String, Kind>, limit: usize) -> Vec<String> {
    let mut patterns: Vec<(String, &String)> = Vec::new();
    for value in values.keys() {
        patterns.push((value.clone(), value));
        let escaped = serde_json::to_string(value).unwrap();
        let escaped = escaped[1..escaped.len() - 1].to_owned();
        if &escaped != value {
            patterns.push((escaped, value));
        }
    }
    let search = AhoCorasick::new(patterns.iter().map(|(p, _)| p)).unwrap();
    let mut found = Vec::new();
    for line in log.lines() {
        for m in search.find_overlapping_iter(line) {
            let value = patterns[m.pattern().as_usize()].1;
            let kind = values[value];
            let bytes = line.as_bytes();
            let alnum = |i: Option<usize>| {
                i.and_then(|i| bytes.get(i))
                    .is_some_and(u8::is_ascii_alphanumeric)
            };
            if kind == "cpr" && (alnum(m.start().checked_sub(1)) || alnum(Some(m.end()))) {
                continue;
            }
            found.push(format!(
                "{kind} {value:?} in: {}",
                line.chars().take(600).collect::<String>()
            ));
            if found.len() >= limit {
                return found;
            }
        }
    }
    found
}

/// The corpus's messages: (routing key, body).
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (sub, routing_key) in [
        ("joborder", "joborder.snapshot"),
        ("mediationlog", "mediationlog.snapshot"),
    ] {
        for (_, _, body) in corpus_files(sub) {
            out.push((routing_key.to_owned(), body));
        }
    }
    for sub in ["sequences", "valid"] {
        for (file, _, bytes) in corpus_files(sub) {
            if file.ends_with(".jsonl") {
                out.extend(corpus_lines(&file, &bytes));
            } else {
                out.push((routing_key_of(&file, &bytes), bytes));
            }
        }
    }
    out
}

/// Runs `jobsync ARGS` against `env`'s database, logging JSON at `debug`
/// to `log` (appended), with `stdin`; its standard output.
fn tool(env: &TestEnv, args: &[&str], stdin: &str, log: &Path) -> String {
    let file = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("JOBSYNC_DATABASE_URL", env.db_url())
        .env("JOBSYNC_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stderr(file);
    let out = run_with_stdin(&mut command, stdin);
    assert!(out.status.success(), "jobsync {args:?}: {}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

/// Waits until the worker is idle: nothing processed for two seconds, the
/// consumed queues empty and the outbox published.
async fn wait_idle(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last = (-1, Instant::now());
    loop {
        let p = progress(env).unwrap_or(Progress {
            processed: -1,
            outbox: -1,
        });
        let t = &env.settings.topology;
        let queued =
            env.ready_in(&t.joborders_queue).await + env.ready_in(&t.mediationlogs_queue).await;
        if p.processed != last.0 {
            last = (p.processed, Instant::now());
        } else if queued == 0 && p.outbox == 0 && last.1.elapsed() > Duration::from_secs(2) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the worker went idle within 600 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn the_search_finds_a_value_escaped_and_a_cpr_number_only_standing_alone() {
    let mut values = BTreeMap::new();
    personal_values(
        br#"{"data":{"contact":{"name":"Jens \"Bo\" Hansen"},"title":"ring 010203-1234"}}"#,
        &mut values,
    );
    assert_eq!(values.len(), 3, "{values:?}");
    let log = "{\"msg\":\"x\",\"name\":\"Jens \\\"Bo\\\" Hansen\"}\n{\"trace_id\":\"ab0102031234cd\"}\n{\"n\":\"0102031234\"}";
    let found = occurrences(log, &values, 10);
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_logging_at_debug_never_logs_personal_data_or_a_token() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let env = TestEnv::with_args(&["--api-addr", &addr, "--retry-total-s", "2"]).await;
    let log = log_path("hygiene");
    std::fs::write(&log, "").unwrap();
    let worker = Process::start_logging(&env.args, &[], &log, "debug");

    let stream = Stream::generate(seed(), &Mix::about(3_000));
    let mut sent: BTreeMap<String, Kind> = BTreeMap::new();
    for m in &stream.messages {
        personal_values(&m.body, &mut sent);
    }
    publish_resiliently(&env.settings.topology.hub_exchange, &stream.messages).await;
    let corpus = corpus();
    for (n, (routing_key, body)) in corpus.iter().enumerate() {
        personal_values(body, &mut sent);
        env.publish_raw(routing_key, &format!("corpus-{n}"), body.clone())
            .await;
    }
    wait_idle(&env).await;

    // The read API, with a token made by the tool, and a search for a
    // person; a wrong token too.
    let client = ApiClient::new(port);
    client.wait_ready().await;
    let token = tool(&env, &["tokens", "create", "jobcenter:15300"], "", &log);
    let token = token.trim().to_owned();
    sent.insert(token.clone(), "token");
    let person = stream_person(&stream);
    let order = stream.orders[0].id;
    for path in [
        format!("/v1/joborders?q={person}"),
        format!("/v1/joborders/{order}/mediationlog"),
        format!("/v1/joborders/{order}"),
        "/v1/changes?limit=5".to_owned(),
    ] {
        let answer = client.get(&path, &token).await;
        assert!(answer.status < 500, "{path}: {}", answer.text);
    }
    let wrong = format!("{token}x");
    sent.insert(wrong.clone(), "token");
    assert_eq!(client.get("/v1/changes", &wrong).await.status, 401);

    // An erasure, the reference on standard input.
    let printed = tool(
        &env,
        &["erase", "person", "-"],
        &format!("{person}\n"),
        &log,
    );
    assert!(printed.starts_with("erased on "), "{printed}");
    wait_idle(&env).await;
    let status = worker.terminate();
    assert!(status.success(), "exit 0 on SIGTERM: {status}; see {log:?}");

    let text = std::fs::read_to_string(&log).unwrap();
    let count = |kind: Kind| sent.values().filter(|&&k| k == kind).count();
    eprintln!(
        "hygiene: {} messages, {} log lines; searched {} references, {} notes, {} contact details, {} CPR forms, {} tokens",
        stream.messages.len() + corpus.len(),
        text.lines().count(),
        count("person_ref"),
        count("note"),
        count("contact"),
        count("cpr"),
        count("token"),
    );
    // The log is at debug and names what it handled.
    let handled = text.matches("message handled").count();
    assert!(
        handled >= stream.distinct(),
        "{handled} messages handled at debug; see {log:?}"
    );
    assert!(
        text.contains(&order.to_string()),
        "the log names the orders; see {log:?}"
    );
    assert!(count("person_ref") >= 1_000 && count("note") >= 10 && count("contact") >= 10);
    assert!(count("cpr") >= 10 && count("token") == 2);
    sent.retain(|v, _| v.trim().chars().count() >= SHORTEST);
    let found = occurrences(&text, &sent, 30);
    assert!(
        found.is_empty(),
        "personal data in the log {log:?}:\n{}",
        found.join("\n")
    );
    let _ = std::fs::remove_file(&log);
}

/// A person of the stream: the first candidate of the first order's log.
fn stream_person(stream: &Stream) -> String {
    stream
        .messages
        .iter()
        .filter(|m| m.kind == crate::harness::Kind::Log)
        .find_map(|m| {
            let event: Value = serde_json::from_slice(&m.body).ok()?;
            Some(
                event["data"]["entries"][0]["person_ref"]
                    .as_str()?
                    .to_owned(),
            )
        })
        .expect("the stream has candidates")
}
