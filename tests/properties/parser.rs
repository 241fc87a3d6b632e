//! Property 1: the parser never panics and rejects only with contract codes.

use super::*;

pub(crate) fn token_soup() -> BoxedStrategy<Vec<u8>> {
    let tokens: Vec<&'static [u8]> = vec![
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\"",
        b"\\",
        b" ",
        b"null",
        b"true",
        b"-0",
        b"1e999",
        b"0.5",
        b"18446744073709551616",
        b"\"specversion\"",
        b"\"1.0\"",
        b"\"type\"",
        b"\"dk.dfdg.joborder.snapshot\"",
        b"\"dk.dfdg.mediationlog.snapshot\"",
        b"\"data\"",
        b"\"id\"",
        b"\"source\"",
        b"\"subject\"",
        b"\"\\ud800\"",
        b"\"\\u0000\"",
        b"\xef\xbb\xbf",
        b"\xff",
        b"\xc3",
        b"\xa6",
        "æ".as_bytes(),
    ];
    proptest::collection::vec(select(tokens), 0..60)
        .prop_map(|t| t.concat())
        .boxed()
}

pub(crate) fn arbitrary_event() -> BoxedStrategy<Vec<u8>> {
    (
        select(vec![
            "dk.dfdg.joborder.snapshot",
            "dk.dfdg.mediationlog.snapshot",
            "dk.dfdg.joborder.deleted",
        ]),
        arbitrary_json(),
        proptest::collection::btree_map(select(FIELD_NAMES), arbitrary_json(), 0..12),
    )
        .prop_map(|(kind, id, fields)| {
            let data: Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let subject = data.get("job_order_id").cloned().unwrap_or(id);
            // The required attributes only, with any subject.
            let mut event = object(cloudevent(kind, "m-1", &Value::Object(data)));
            event.insert("subject".into(), subject);
            event.remove("time");
            event.remove("datacontenttype");
            serde_json::to_vec(&event).unwrap()
        })
        .boxed()
}

proptest! {
    #![proptest_config(config(1024))]

    /// Random bytes and soups of JSON tokens (invalid UTF-8, lone
    /// surrogates, huge numbers) for either queue.
    #[test]
    fn arbitrary_bytes_are_parsed_or_rejected_with_a_contract_code(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            token_soup(),
        ],
    ) {
        for expects in [JOB_ORDER, MEDIATION_LOG] {
            if let Err(r) = parse(&body, expects) {
                check_rejection(&r, BODY_CODES)?;
            }
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Any JSON value as the body, and envelopes of either type whose data
    /// is an object of the contract's field names with any values.
    #[test]
    fn arbitrary_json_is_parsed_or_rejected_with_a_contract_code(
        body in prop_oneof![
            arbitrary_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            arbitrary_event(),
        ],
    ) {
        if let Err(r) = parse(&body, JOB_ORDER) {
            check_rejection(&r, JOB_ORDER_CODES)?;
        }
        if let Err(r) = parse(&body, MEDIATION_LOG) {
            check_rejection(&r, LOG_CODES)?;
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// No false rejection: every snapshot generated per 4.1/4.2 parses, and
    /// only on its own queue.
    #[test]
    fn every_valid_job_order_and_mediation_log_parses((order, log) in order_and_log()) {
        let parsed = job_order_of(parse_valid(&order, JOB_ORDER)?);
        prop_assert_eq!(parsed.wire.title, order.data()["title"].as_str().unwrap(), "data.title");
        let parsed = log_of(parse_valid(&log, MEDIATION_LOG)?);
        prop_assert_eq!(
            parsed.entries.len(),
            log.data()["entries"].as_array().unwrap().len(),
            "data.entries"
        );
    }

    /// A valid order with an unknown field nested `depth` arrays deep: the
    /// body nests `depth + 2` levels, accepted up to 64 (brackets inside
    /// strings do not count), `json.malformed` beyond.
    #[test]
    fn nesting_is_accepted_up_to_64_levels_and_malformed_beyond(
        order in job_order(),
        depth in prop_oneof![55usize..75, 1usize..200],
    ) {
        let mut event = order.event.clone();
        // `depth` arrays, one in the other.
        event["data"]["x_deep"] = (1..depth).fold(json!([]), |v, _| json!([v]));
        let body = Message { event, pretty: order.pretty }.body();
        let outcome = parse(&body, JOB_ORDER);
        if depth + 2 <= 64 {
            prop_assert!(outcome.is_ok(), "{} levels were rejected: {:?}", depth + 2, outcome.err());
        } else {
            prop_assert_eq!(
                outcome.err().map(|r| r.code.as_str()),
                Some("json.malformed"),
                "{} levels",
                depth + 2
            );
        }
    }
}

proptest! {
    #![proptest_config(config(384))]

    /// A valid order with up to two fields removed, nulled, replaced (any
    /// JSON, a word of the contract, a digit changed, a huge string), then
    /// maybe truncated or with a byte flipped. What still parses keeps the
    /// promises of the views.
    #[test]
    fn mutated_job_orders_are_parsed_or_rejected_with_a_contract_code(
        (order, log) in order_and_log(),
        edits in proptest::collection::vec(edit(), 0..3),
        damage in damage(),
        extras in extras(),
        outsider in any_unit(),
    ) {
        let Some(parsed) = check_mutated(&order, &edits, &damage, JOB_ORDER, JOB_ORDER_CODES)? else {
            return Ok(());
        };
        let parsed = job_order_of(parsed);
        let snapshot = serde_json::to_value(&parsed.wire).unwrap();
        check_order_views(&parsed, &snapshot, extras, false)?;
        // The log of the order, with the units the mutated order has.
        if let Ok(l) = parse(&log.body(), MEDIATION_LOG) {
            check_log_views(&log_of(l), log.data(), &parsed, &outsider, false)?;
        }
    }

    /// The same for a valid log.
    #[test]
    fn mutated_mediation_logs_are_parsed_or_rejected_with_a_contract_code(
        (order, log) in order_and_log(),
        edits in proptest::collection::vec(edit(), 0..3),
        damage in damage(),
        outsider in any_unit(),
    ) {
        let Some(parsed) = check_mutated(&log, &edits, &damage, MEDIATION_LOG, LOG_CODES)? else {
            return Ok(());
        };
        let order = job_order_of(parse_valid(&order, JOB_ORDER)?);
        check_log_views(&log_of(parsed), log.data(), &order, &outsider, false)?;
    }
}

/// Found by `mutated_mediation_logs_are_parsed_or_rejected_with_a_contract_code`:
/// the body is read as a stream, so a field of the wrong type before the
/// point where a body is cut off wins over the cut, and the dead letter says
/// `schema.invalid` (`type: invalid type: sequence, expected a string`) for
/// a body that is no JSON at all.
#[test]
pub(crate) fn a_truncated_body_is_malformed_even_after_a_field_of_the_wrong_type() {
    let body =
        br#"{"specversion":"1.0","id":"m1","source":"/dfdg","type":["x"],"subject":"s","data":{"#;
    let r = parse(body, JOB_ORDER).expect_err("a truncated body is rejected");
    assert_eq!(r.code.as_str(), "json.malformed", "{r}");
}
