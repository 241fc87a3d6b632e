//! The hub's messages as every test binary and bench builds them: one valid
//! job order snapshot ([`JobOrder`]) and one CloudEvent around a snapshot
//! ([`cloudevent`]).

// Each test binary and bench uses a part of this module.
#![allow(dead_code)]

use serde_json::{json, Value};
use uuid::Uuid;

/// The hub's CloudEvent of type `kind` with message id `id` around `data`,
/// whose `job_order_id` is the subject.
pub fn cloudevent(kind: &str, id: &str, data: &Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": "/dfdg",
        "type": kind,
        "time": "2026-11-22T09:30:00Z",
        "subject": data["job_order_id"],
        "datacontenttype": "application/json",
        "data": data,
    })
}

/// A valid job order snapshot. Unless told otherwise: version 1 of an
/// order of Brøndby's jobcentre (15300), shared with two neighbours, every
/// optional field filled, titled and updated at 09:MM by its version.
#[derive(Debug, Clone)]
pub struct JobOrder {
    id: Uuid,
    version: u64,
    request_id: String,
    title: Option<String>,
    responsible: String,
    tasks: String,
    deadline: bool,
    scope: String,
    shared: Vec<String>,
}

impl JobOrder {
    /// Order `id` as above.
    pub fn new(id: Uuid) -> JobOrder {
        JobOrder {
            id,
            version: 1,
            request_id: "ANM-2026-0042".into(),
            title: None,
            responsible: "15300".into(),
            tasks: "Pluk og pak på nathold.".into(),
            deadline: true,
            scope: "neighbours".into(),
            shared: vec!["16700".into(), "18300".into()],
        }
    }

    /// Version `version`, also in the title and `updated_at`.
    pub fn version(mut self, version: u64) -> JobOrder {
        self.version = version;
        self
    }

    pub fn request_id(mut self, request_id: impl Into<String>) -> JobOrder {
        self.request_id = request_id.into();
        self
    }

    /// Title `title` instead of "Lagermedarbejder v<version>".
    pub fn title(mut self, title: impl Into<String>) -> JobOrder {
        self.title = Some(title.into());
        self
    }

    /// Responsible jobcentre `code`, which also made this version.
    pub fn responsible(mut self, code: &str) -> JobOrder {
        self.responsible = code.into();
        self
    }

    /// Task text `tasks` instead of one short line.
    pub fn task_text(mut self, tasks: impl Into<String>) -> JobOrder {
        self.tasks = tasks.into();
        self
    }

    /// No mediation deadline (null): the order never expires.
    pub fn no_deadline(mut self) -> JobOrder {
        self.deadline = false;
        self
    }

    /// Shared under `scope` with the jobcentres `codes` (none for
    /// `internal`).
    pub fn shared<S: AsRef<str>>(
        mut self,
        scope: &str,
        codes: impl IntoIterator<Item = S>,
    ) -> JobOrder {
        self.scope = scope.into();
        self.shared = codes.into_iter().map(|c| c.as_ref().to_owned()).collect();
        self
    }

    /// The snapshot as the hub sends it.
    pub fn build(self) -> Value {
        let version = self.version;
        let units: Vec<Value> = self
            .shared
            .iter()
            .map(|code| json!({"type": "jobcenter", "code": code}))
            .collect();
        let responsible = json!({"type": "jobcenter", "code": self.responsible});
        json!({
            "job_order_id": self.id.to_string(),
            "version": version,
            "request_id": self.request_id,
            "origin": "unit",
            "changed_by": {"kind": "unit", "unit": responsible},
            "title": self.title.unwrap_or_else(|| format!("Lagermedarbejder v{version}")),
            "occupation": {"name": "Lagermedarbejder", "alias": "Lagerarbejder", "code": "932920"},
            "employer": {"cvr": "10150817", "p_number": "1003456789", "name": "Brøndby Lager ApS", "conflict_affected": false},
            "contact": {"name": "Søren Østergård", "email": "soeren@brondbylager.dk", "phone": "+4543212345"},
            "responsible_unit": responsible,
            "coordinator": {"id": "c-17", "name": "Åse Nørgaard"},
            "coordinator_allowed": true,
            "descriptions": {
                "tasks": self.tasks,
                "qualifications_and_pay": "Truckcertifikat. Løn efter overenskomst.",
                "working_hours": "37 timer, nat"
            },
            "continuous": false,
            "positions": 3,
            "expected_start": "2027-01-04",
            "mediation_deadline": if self.deadline { json!("2026-12-18") } else { Value::Null },
            "status": "open",
            "status_reason": null,
            "status_comment": null,
            "sharing": {"scope": self.scope, "units": units},
            "created_at": "2026-11-20T08:00:00Z",
            "updated_at": format!("2026-11-22T09:{:02}:00Z", version % 60)
        })
    }
}

/// The main jobcentre of 94 municipalities besides Brøndby (153), the
/// responsible unit of every order.
pub fn ninety_four_jobcentres() -> Vec<String> {
    let codes: Vec<String> = jobsync::domain::municipality::codes()
        .into_iter()
        .filter(|&c| c != 153)
        .take(94)
        .map(|c| format!("{c}00"))
        .collect();
    assert_eq!(codes.len(), 94, "reference/municipalities.csv has 98 codes");
    codes
}
