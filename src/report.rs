//! `jobsync report promises`: how the service promises (contract 11) were
//! kept, per responsible unit, for the orders created in a window of days
//! (Copenhagen time): as an aligned table for a person, or CSV or JSON lines
//! with a stable column order for a spreadsheet or a dashboard.

use std::io::Write;

use anyhow::Context as _;
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;
use serde::Serialize;

use crate::config::ReportFormat;
use crate::domain::unit::Unit;
use crate::store::report::PromiseFigures;

/// One row of the report, in column order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub unit: String,
    /// The jobcentre's municipality, for a jobcentre.
    pub name: String,
    pub orders: i64,
    /// Shares met on time, of the tracked and not released; null when none.
    pub contact_on_time: Option<f64>,
    pub delivery_on_time: Option<f64>,
    pub follow_up_on_time: Option<f64>,
    /// Median hours from creation to contact and to delivery.
    pub median_contact_hours: Option<f64>,
    pub median_delivery_hours: Option<f64>,
    pub missed: i64,
    pub open: i64,
}

const COLUMNS: [&str; 10] = [
    "unit",
    "name",
    "orders",
    "contact_on_time",
    "delivery_on_time",
    "follow_up_on_time",
    "median_contact_hours",
    "median_delivery_hours",
    "missed",
    "open",
];

impl Row {
    pub fn of(f: &PromiseFigures) -> Row {
        let share = |met: i64, of: i64| (of > 0).then(|| round(met as f64 / of as f64, 3));
        let unit = Unit::from_stored(&f.unit_type, &f.unit_code);
        Row {
            unit: unit.as_ref().map_or_else(
                || format!("{}:{}", f.unit_type, f.unit_code),
                Unit::to_string,
            ),
            name: unit
                .as_ref()
                .and_then(Unit::municipality_name)
                .unwrap_or("")
                .to_owned(),
            orders: f.orders,
            contact_on_time: share(f.contact_on_time, f.contact),
            delivery_on_time: share(f.delivery_on_time, f.delivery),
            follow_up_on_time: share(f.follow_up_on_time, f.follow_up),
            median_contact_hours: f.median_contact_s.map(|s| round(s / 3600.0, 1)),
            median_delivery_hours: f.median_delivery_s.map(|s| round(s / 3600.0, 1)),
            missed: f.missed,
            open: f.open,
        }
    }

    fn cells(&self) -> [String; 10] {
        let num = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        [
            self.unit.clone(),
            self.name.clone(),
            self.orders.to_string(),
            num(self.contact_on_time),
            num(self.delivery_on_time),
            num(self.follow_up_on_time),
            num(self.median_contact_hours),
            num(self.median_delivery_hours),
            self.missed.to_string(),
            self.open.to_string(),
        ]
    }
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// The window `[from, to]` of days in Copenhagen as instants: from the start
/// of `from` to the end of `to`.
pub fn window(from: NaiveDate, to: NaiveDate) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    let start = |d: NaiveDate| {
        Copenhagen
            .from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
            .single()
            .expect("midnight is unambiguous in Copenhagen")
            .with_timezone(&Utc)
    };
    let after = to
        .checked_add_days(Days::new(1))
        .context("--to is too far in the future")?;
    Ok((start(from), start(after)))
}

/// The figures of the orders created in `[from, to)`, from the database at
/// `database_url` (migrated if need be).
pub fn figures(
    database_url: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    unit: Option<&Unit>,
) -> anyhow::Result<Vec<PromiseFigures>> {
    let mut conn = crate::store::db::connect(database_url)?;
    Ok(crate::store::report::promises(&mut conn, from, to, unit)?)
}

/// Writes `rows` in `format` (an empty window gives the header alone, or
/// nothing for JSON lines).
pub fn write(out: &mut impl Write, rows: &[Row], format: ReportFormat) -> std::io::Result<()> {
    match format {
        ReportFormat::Json => {
            for r in rows {
                writeln!(out, "{}", serde_json::to_string(r).expect("rows serialize"))?;
            }
        }
        ReportFormat::Csv => {
            writeln!(out, "{}", COLUMNS.join(","))?;
            for r in rows {
                let cells: Vec<String> = r.cells().iter().map(|c| csv_cell(c)).collect();
                writeln!(out, "{}", cells.join(","))?;
            }
        }
        ReportFormat::Table => {
            let header = [
                "UNIT",
                "JOBCENTRE",
                "ORDERS",
                "CONTACT",
                "DELIVERY",
                "FOLLOW-UP",
                "TO CONTACT",
                "TO DELIVERY",
                "MISSED",
                "OPEN",
            ];
            let body: Vec<[String; 10]> = rows.iter().map(table_cells).collect();
            let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
            for cells in &body {
                for (w, c) in widths.iter_mut().zip(cells) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cells: Vec<String>| {
                cells
                    .iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(i, (c, w))| {
                        let pad = w - c.chars().count();
                        // Text left, figures right.
                        if i < 2 {
                            format!("{c}{}", " ".repeat(pad))
                        } else {
                            format!("{}{c}", " ".repeat(pad))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            writeln!(
                out,
                "{}",
                line(header.iter().map(|h| h.to_string()).collect())
            )?;
            for cells in body {
                writeln!(out, "{}", line(cells.to_vec()))?;
            }
            if rows.is_empty() {
                writeln!(out, "(no orders with service promises in the window)")?;
            } else {
                writeln!(
                    out,
                    "CONTACT, DELIVERY, FOLLOW-UP: share met on time; TO CONTACT, TO DELIVERY: median time from creation"
                )?;
            }
        }
    }
    Ok(())
}

/// The cells of a row for a person: shares as percentages, times in hours.
fn table_cells(r: &Row) -> [String; 10] {
    let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.0} %", v * 100.0));
    let hours = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} h"));
    [
        r.unit.clone(),
        r.name.clone(),
        r.orders.to_string(),
        pct(r.contact_on_time),
        pct(r.delivery_on_time),
        pct(r.follow_up_on_time),
        hours(r.median_contact_hours),
        hours(r.median_delivery_hours),
        r.missed.to_string(),
        r.open.to_string(),
    ]
}

fn csv_cell(c: &str) -> String {
    if c.contains([',', '"', '\n']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_whole_days_in_copenhagen() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let (from, to) = window(d("2026-12-01"), d("2026-12-31")).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-11-30T23:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-12-31T23:00:00+00:00");
        let (_, summer) = window(d("2026-07-01"), d("2026-07-01")).unwrap();
        assert_eq!(summer.to_rfc3339(), "2026-07-01T22:00:00+00:00");
        assert!(window(d("2026-12-02"), d("2026-12-01")).is_err());
    }
}
