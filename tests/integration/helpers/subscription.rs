//! A unit's queue, as a subscribing system has it, and what arrives on it.

use super::*;

/// A queue of the test's own bound like a unit's (or an observer's), to see
/// what jobsync publishes.
pub struct Subscription {
    channel: lapin::Channel,
    queue: String,
    pub label: String,
}

/// A message received on a [`Subscription`], checked against its schema.
#[derive(Debug, Clone)]
pub struct Received {
    pub routing_key: String,
    /// AMQP headers, as text.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Received {
    /// What a delivery of jobsync's carries (its body must be JSON).
    pub fn of(delivery: &lapin::message::Delivery) -> Received {
        let raw = delivery.data.clone();
        Received {
            headers: dead_letter(delivery).headers,
            routing_key: delivery.routing_key.to_string(),
            body: serde_json::from_slice(&raw).expect("a JSON body"),
            raw,
        }
    }
    pub fn id(&self) -> &str {
        self.body["id"].as_str().unwrap_or("")
    }
    pub fn event(&self) -> &str {
        self.body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("dk.jobsync."))
            .unwrap_or("")
    }
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    /// The job order it is about (its `subject`).
    #[allow(dead_code)] // by the reliability suite's oracle
    pub fn order(&self) -> Uuid {
        self.body["subject"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_default()
    }
    /// The hub version of the order it reflects.
    #[allow(dead_code)] // by the reliability suite's oracle
    pub fn version(&self) -> i64 {
        self.body["joborderversion"].as_i64().unwrap_or(0)
    }
}

impl TestEnv {
    /// What unit `unit` (written `jobcenter:15300`) receives, as a jobcentre
    /// system would bind: `unit.<type>.<code>.#` on the notifications
    /// exchange.
    pub async fn subscribe(&self, unit: &str) -> Subscription {
        let (kind, code) = unit.split_once(':').expect("type:code");
        self.bind(
            &self.settings.topology.notifications_exchange,
            &format!("unit.{kind}.{code}.#"),
            unit,
        )
        .await
    }

    /// One queue bound for several units (`unit.<type>.<code>.#` each), as
    /// a system serving them all would bind; `label` names it in failures.
    pub async fn subscribe_many(&self, label: &str, units: &[&str]) -> Subscription {
        let exchange = &self.settings.topology.notifications_exchange;
        let sub = self.bind(exchange, "unit.none.0.#", label).await;
        for unit in units {
            let (kind, code) = unit.split_once(':').expect("type:code");
            sub.channel
                .queue_bind(
                    sub.queue.as_str().into(),
                    exchange.as_str().into(),
                    format!("unit.{kind}.{code}.#").as_str().into(),
                    Default::default(),
                    Default::default(),
                )
                .await
                .unwrap();
        }
        sub
    }

    /// Every lifecycle event.
    pub async fn subscribe_events(&self) -> Subscription {
        self.bind(&self.settings.topology.events_exchange, "#", "events")
            .await
    }

    async fn bind(&self, exchange: &str, key: &str, label: &str) -> Subscription {
        let channel = self.amqp.create_channel().await.unwrap();
        let queue = jobsync::amqp::topology::watch(&channel, "", exchange, key)
            .await
            .unwrap();
        Subscription {
            channel,
            queue,
            label: label.to_owned(),
        }
    }
}

impl Subscription {
    /// Takes exactly `n` messages, waiting up to `timeout` for them, each
    /// valid under its schema; then checks no further one arrives briefly.
    pub async fn take(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while out.len() < n {
            match self.next().await {
                Some(r) => out.push(r),
                None if tokio::time::Instant::now() > deadline => panic!(
                    "{}: timed out waiting for {n} messages; got {}: {:#?}",
                    self.label,
                    out.len(),
                    out.iter().map(|r| &r.body).collect::<Vec<_>>()
                ),
                None => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
        self.assert_quiet(Duration::from_millis(300)).await;
        out
    }

    /// Takes every message until none arrives for `quiet`.
    pub async fn take_all(&self, quiet: Duration) -> Vec<Received> {
        let mut out = Vec::new();
        let mut last = tokio::time::Instant::now();
        while last.elapsed() < quiet {
            match self.next().await {
                Some(r) => {
                    out.push(r);
                    last = tokio::time::Instant::now();
                }
                None => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
        out
    }

    /// Asserts nothing arrives within `wait`.
    pub async fn assert_quiet(&self, wait: Duration) {
        tokio::time::sleep(wait).await;
        if let Some(extra) = self.next().await {
            panic!(
                "{}: an unexpected message: {} {:#}",
                self.label, extra.routing_key, extra.body
            );
        }
    }

    async fn next(&self) -> Option<Received> {
        let msg = self
            .channel
            .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()?;
        let received = Received::of(&msg.delivery);
        check_outbound_schema(&received.body);
        Some(received)
    }
}

/// Checks an outbound message against its schema under `schemas/`.
pub fn check_outbound_schema(body: &Value) {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static VALIDATORS: OnceLock<std::sync::Mutex<HashMap<String, jsonschema::Validator>>> =
        OnceLock::new();
    let event = body["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("dk.jobsync."))
        .unwrap_or_else(|| panic!("an outbound type: {body}"));
    let kind = if body.get("unit").is_some() {
        "notification"
    } else {
        "event"
    };
    let name = format!("{kind}-{}.schema.json", event.replace('.', "-"));
    let mut validators = VALIDATORS.get_or_init(Default::default).lock().unwrap();
    let validator = validators.entry(name.clone()).or_insert_with(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(&name);
        let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    });
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{body:#}");
}
