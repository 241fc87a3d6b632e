//! The generated stream: orders, their versions and logs, duplicated, reordered and resent.

use super::*;

/// The jobcentres orders are given to, and the ones they are shared with
/// (Brøndby, Hvidovre, Ishøj, København; Gladsaxe, Glostrup, Herlev,
/// Albertslund, Lyngby-Taarbæk, Tårnby).
pub(super) const RESPONSIBLE: [&str; 4] = ["15300", "16700", "18300", "10100"];

pub(super) const SHARED: [&str; 6] = ["15900", "16100", "16300", "16500", "17300", "18500"];

/// Every unit a stream may involve.
pub fn units() -> Vec<&'static str> {
    RESPONSIBLE.iter().chain(SHARED.iter()).copied().collect()
}

/// One version of an order in the stream.
#[derive(Debug, Clone)]
pub struct OrderVersion {
    pub title: String,
    pub responsible: &'static str,
    pub shared: BTreeSet<&'static str>,
}

impl OrderVersion {
    /// The units that may see this version.
    pub fn audience(&self) -> BTreeSet<&'static str> {
        let mut all = self.shared.clone();
        all.insert(self.responsible);
        all
    }
}

/// One version of an order's mediation log.
#[derive(Debug, Clone)]
pub struct LogVersion {
    pub total: usize,
    pub awaiting: usize,
    /// Entries available to the employer (every CV is active).
    pub undecided: usize,
}

#[derive(Debug, Clone)]
pub struct OrderPlan {
    pub id: Uuid,
    /// Version `v` at index `v - 1`.
    pub versions: Vec<OrderVersion>,
    pub logs: Vec<LogVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Order,
    Log,
}

/// A message of the stream, ready to publish.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub kind: Kind,
    pub order: Uuid,
    pub version: i64,
    pub body: Vec<u8>,
}

impl Message {
    pub(super) fn routing_key(&self) -> &'static str {
        match self.kind {
            Kind::Order => "joborder.snapshot",
            Kind::Log => "mediationlog.snapshot",
        }
    }
}

/// A stream and the plan it was made from.
pub struct Stream {
    pub seed: u64,
    pub orders: Vec<OrderPlan>,
    /// In publishing order, repeats and stale resends included.
    pub messages: Vec<Message>,
}

/// How a stream is mixed.
pub struct Mix {
    pub orders: usize,
    /// Versions per order (uniform, inclusive).
    pub order_versions: (usize, usize),
    /// Log versions per order (uniform, inclusive; 0 = no log).
    pub log_versions: (usize, usize),
    /// The share of messages published twice (same id).
    pub duplicates: f64,
    /// The share of order versions above 1 resent later under a new id.
    pub stale_resends: f64,
    /// How far (in messages) one may move from its place.
    pub reorder_window: usize,
}

impl Mix {
    /// About `n` messages: the chaos mix.
    pub fn about(n: usize) -> Mix {
        // Per order: 5 versions and 2 log versions on average, 15 % of
        // them repeated, and 8 % of the 4 versions above 1 resent: about
        // 8.4 messages; a little more than `n` comes out.
        let orders = (n as f64 / 8.0).ceil() as usize;
        Mix {
            orders,
            order_versions: (3, 7),
            log_versions: (0, 4),
            duplicates: 0.15,
            stale_resends: 0.08,
            reorder_window: 1_500,
        }
    }
}

/// The seed of a run: `JOBSYNC_CHAOS_SEED` repeats a run, otherwise random.
pub fn seed() -> u64 {
    std::env::var("JOBSYNC_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random())
}

impl Stream {
    pub fn generate(seed: u64, mix: &Mix) -> Stream {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut orders = Vec::with_capacity(mix.orders);
        // (when, message): each order's messages in version order, spread
        // over the stream; a log version follows the order's first version.
        let mut timed: Vec<(f64, Message)> = Vec::new();
        for n in 0..mix.orders {
            let id = Uuid::from_u128(rng.random());
            let responsible = RESPONSIBLE[rng.random_range(0..RESPONSIBLE.len())];
            let count = rng.random_range(mix.order_versions.0..=mix.order_versions.1);
            let mut versions = Vec::with_capacity(count);
            let start: f64 = rng.random();
            let mut when = start;
            for v in 1..=count {
                let shared: BTreeSet<&'static str> = SHARED
                    .iter()
                    .filter(|_| rng.random_bool(0.3))
                    .copied()
                    .collect();
                let version = OrderVersion {
                    title: format!("Chaos {n} v{v} · Lagermedarbejder i Brøndby"),
                    responsible,
                    shared,
                };
                let body = order_event(id, v as i64, &version);
                timed.push((when, message(&mut rng, Kind::Order, id, v as i64, body)));
                when += rng.random::<f64>() * 0.01;
                versions.push(version);
            }
            let log_count = rng.random_range(mix.log_versions.0..=mix.log_versions.1);
            let mut logs = Vec::with_capacity(log_count);
            // Candidates: (id, available to the employer).
            let mut entries: Vec<(Uuid, bool)> = Vec::new();
            let mut when = start + rng.random::<f64>() * 0.005;
            for v in 1..=log_count {
                let awaiting: Vec<usize> = (0..entries.len()).filter(|&i| !entries[i].1).collect();
                if !awaiting.is_empty() && rng.random_bool(0.5) {
                    entries[awaiting[rng.random_range(0..awaiting.len())]].1 = true;
                } else {
                    entries.push((Uuid::from_u128(rng.random()), false));
                }
                let undecided = entries.iter().filter(|e| e.1).count();
                logs.push(LogVersion {
                    total: entries.len(),
                    awaiting: entries.len() - undecided,
                    undecided,
                });
                let body = log_event(id, v as i64, responsible, &entries);
                timed.push((when, message(&mut rng, Kind::Log, id, v as i64, body)));
                when += rng.random::<f64>() * 0.01;
            }
            orders.push(OrderPlan { id, versions, logs });
        }
        timed.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut messages: Vec<Message> = timed.into_iter().map(|(_, m)| m).collect();

        // Reordering: each message moves up to the window from its place.
        let w = mix.reorder_window as f64;
        let mut keyed: Vec<(f64, Message)> = messages
            .drain(..)
            .enumerate()
            .map(|(i, m)| (i as f64 + rng.random::<f64>() * w, m))
            .collect();
        // Repeats (the same id, as a redelivery or a resend brings it) and
        // stale resends (an older version under a new id, later).
        let mut extra = Vec::new();
        for (at, m) in &keyed {
            if rng.random_bool(mix.duplicates) {
                extra.push((at + rng.random::<f64>() * w * 2.0, m.clone()));
            }
            if m.kind == Kind::Order && m.version > 1 && rng.random_bool(mix.stale_resends) {
                let plan = orders.iter().find(|o| o.id == m.order).expect("planned");
                let older = rng.random_range(1..m.version);
                let body = order_event(m.order, older, &plan.versions[older as usize - 1]);
                let resend = message(&mut rng, Kind::Order, m.order, older, body);
                extra.push((at + rng.random::<f64>() * w, resend));
            }
        }
        keyed.extend(extra);
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        Stream {
            seed,
            orders,
            messages: keyed.into_iter().map(|(_, m)| m).collect(),
        }
    }

    /// The distinct message ids.
    pub fn distinct(&self) -> usize {
        self.messages
            .iter()
            .map(|m| m.id.as_str())
            .collect::<HashSet<_>>()
            .len()
    }
}

pub(super) fn message(
    rng: &mut StdRng,
    kind: Kind,
    order: Uuid,
    version: i64,
    data: Value,
) -> Message {
    let id = Uuid::from_u128(rng.random()).to_string();
    let event = match kind {
        Kind::Order => event_with_id(&id, &data),
        Kind::Log => log_event_with_id(&id, &data),
    };
    Message {
        id,
        kind,
        order,
        version,
        body: serde_json::to_vec(&event).expect("serializes"),
    }
}

/// The snapshot of `version` of order `id`: every version changes the title
/// (so every unit that sees it has a new view) and the sharing.
pub(super) fn order_event(id: Uuid, version: i64, v: &OrderVersion) -> Value {
    let scope = if v.shared.is_empty() {
        "internal"
    } else {
        "selected"
    };
    JobOrder::new(id)
        .version(version as u64)
        .title(&v.title)
        .responsible(v.responsible)
        // No deadline: expiry is not what this stream is about.
        .no_deadline()
        .shared(scope, &v.shared)
        .build()
}

/// A log whose candidates the responsible unit put forward and approved.
pub(super) fn log_event(
    id: Uuid,
    version: i64,
    responsible: &str,
    entries: &[(Uuid, bool)],
) -> Value {
    let entries = entries
        .iter()
        .map(|&(candidate_id, available)| {
            let status = if available {
                "available_to_company"
            } else {
                "awaiting_approval"
            };
            candidate(
                candidate_id,
                ("jobcenter", responsible),
                status,
                by_unit("jobcenter", responsible),
            )
        })
        .collect();
    mediation_log(id, version as u64, entries)
}
