//! Property 2: the views show each unit what 5.2 allows it, and no CPR number.

use super::*;

/// A text dense with CPR numbers and runs that only look like them.
pub(crate) fn cpr_dense_text() -> BoxedStrategy<String> {
    (
        re("[a-zæøå]"),
        proptest::collection::vec(
            prop_oneof![
                3 => cpr_number(),
                1 => cpr_no_date(),
                1 => re("[0-9]{1,11}"),
                2 => select(vec!["", " ", "-", "x", "æ", "\n", "\"", "/"]).prop_map(String::from),
            ],
            1..25,
        ),
    )
        .prop_map(|(first, pieces)| first + &pieces.concat())
        .boxed()
}

proptest! {
    #![proptest_config(config(256))]

    /// Each unit that can see the order gets its view from the fan-out: the
    /// responsible unit all of the snapshot, any other unit the fields of
    /// 5.2 and nothing else; each unit's log view shows what 5.2 lets it.
    #[test]
    fn order_views_show_a_unit_that_is_not_responsible_only_what_5_2_allows(
        (order, log) in order_and_log(),
        extras in extras(),
        outsider in any_unit(),
    ) {
        let parsed = job_order_of(parse_valid(&order, JOB_ORDER)?);
        check_order_views(&parsed, order.data(), extras, true)?;
        let parsed_log = log_of(parse_valid(&log, MEDIATION_LOG)?);
        check_log_views(&parsed_log, log.data(), &parsed, &outsider, true)?;
    }

    /// Free texts and notes dense with CPR numbers (and runs that only look
    /// like them): every one is replaced in every view, nothing else is.
    #[test]
    fn no_view_carries_a_cpr_number(
        (order, log) in order_and_log(),
        texts in proptest::collection::vec((select(FREE_TEXT_MAX), cpr_dense_text()), 1..6),
        notes in proptest::collection::vec(cpr_dense_text(), 0..4),
        extras in extras(),
        outsider in any_unit(),
    ) {
        let mut order = order;
        for ((path, max), text) in &texts {
            let (parent, key) = path.rsplit_once('.').map_or(("", *path), |(p, k)| (p, k));
            let data = &mut order.event["data"];
            let target = if parent.is_empty() { Some(data) } else { data.get_mut(parent) };
            if let Some(Value::Object(m)) = target {
                m.insert(key.to_owned(), truncate_chars(text, *max).into());
            }
        }
        let mut log = log;
        if let Some(entries) = log.event["data"]["entries"].as_array_mut() {
            for (e, note) in entries.iter_mut().zip(&notes) {
                e["note"] = note.clone().into();
            }
        }
        let parsed = job_order_of(parse_valid(&order, JOB_ORDER)?);
        check_order_views(&parsed, order.data(), extras, true)?;
        let parsed_log = log_of(parse_valid(&log, MEDIATION_LOG)?);
        check_log_views(&parsed_log, log.data(), &parsed, &outsider, true)?;
    }
}
