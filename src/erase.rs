//! `jobsync erase person PERSON_REF`: one person's mediation data erased on
//! request (section 12). The hub stays the source of truth: a later log
//! version that carries the person again is stored again.

use std::io::Read;

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};

use crate::domain::plan::erasure::ERASED;
use crate::store::erasure::Erasure;

/// The reference to erase: `arg`, or the one line of `stdin` when `arg`
/// is `-` (which keeps it out of the shell's history and the process
/// list). Refuses what cannot be a person's reference, never quoting it.
pub fn reference(arg: &str, stdin: impl Read) -> anyhow::Result<String> {
    let reference = if arg == "-" {
        let mut text = String::new();
        stdin
            .take(64 * 1024)
            .read_to_string(&mut text)
            .context("reading the reference from standard input")?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.len() > 1 {
            bail!(
                "standard input has {} references: give one per run",
                lines.len()
            );
        }
        lines.first().copied().unwrap_or_default().to_owned()
    } else {
        arg.to_owned()
    };
    if reference.is_empty() {
        bail!(
            "the reference is empty: give the person's person_ref, or `-` and it on standard input"
        );
    }
    if reference == ERASED {
        bail!("`{ERASED}` is what erased references become, not a person's reference");
    }
    Ok(reference)
}

/// Erases `person_ref` in the database at `database_url`.
pub fn person(database_url: &str, person_ref: &str, now: DateTime<Utc>) -> anyhow::Result<Erasure> {
    let mut conn = crate::store::db::connect(database_url)?;
    Ok(crate::store::erasure::erase_person(
        &mut conn, person_ref, now,
    )?)
}

/// What `erase person` prints: counts, never the reference.
pub fn summary(e: &Erasure) -> String {
    if e.orders == 0 {
        return "nothing to erase: no stored mediation entry has that reference".to_owned();
    }
    let s = |n: usize| if n == 1 { "" } else { "s" };
    format!(
        "erased on {} order{}: {} entr{} (reference now `{ERASED}`, note deleted), {} history row{} deleted; \
         {} notification{} (mediationlog.updated) to {} unit{} in the outbox, which the worker publishes",
        e.orders,
        s(e.orders),
        e.entries,
        if e.entries == 1 { "y" } else { "ies" },
        e.history,
        s(e.history),
        e.notifications,
        s(e.notifications),
        e.units_told,
        s(e.units_told),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_comes_from_the_argument_or_standard_input_and_is_never_quoted_when_refused() {
        assert_eq!(reference("p-1", &b""[..]).unwrap(), "p-1");
        assert_eq!(reference("-", &b"\n p-2 \n\n"[..]).unwrap(), "p-2");
        let two = reference("-", &b"p-3\np-4\n"[..]).unwrap_err().to_string();
        assert_eq!(two, "standard input has 2 references: give one per run");
        for (arg, input) in [("", ""), ("-", "\n"), ("erased", ""), ("-", " erased \n")] {
            let e = reference(arg, input.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("reference"), "{e}");
        }
    }

    #[test]
    fn the_summary_has_counts_only() {
        let e = Erasure {
            orders: 3,
            entries: 4,
            history: 1,
            notifications: 5,
            units_told: 6,
        };
        assert_eq!(
            summary(&e),
            "erased on 3 orders: 4 entries (reference now `erased`, note deleted), 1 history row deleted; \
             5 notifications (mediationlog.updated) to 6 units in the outbox, which the worker publishes"
        );
        assert!(summary(&Erasure::default()).starts_with("nothing to erase"));
    }
}
