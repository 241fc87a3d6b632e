//! The CloudEvents 1.0 envelope (JSON structured mode) of every message in and
//! out, and the first checks on an inbound body: size, UTF-8, JSON, nesting,
//! envelope fields and type.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::contract::rejection::{ErrorCode, Rejection};

/// Bodies over this many bytes are rejected (`message.too_large`).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// JSON nesting deeper than this is rejected (`json.malformed`).
pub const MAX_DEPTH: usize = 64;
/// The AMQP content type of every message in and out.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The inbound event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundType {
    JobOrderSnapshot,
    MediationLogSnapshot,
}

impl InboundType {
    /// The CloudEvents `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            InboundType::JobOrderSnapshot => "dk.dfdg.joborder.snapshot",
            InboundType::MediationLogSnapshot => "dk.dfdg.mediationlog.snapshot",
        }
    }

    /// The routing key the hub publishes it with.
    pub fn routing_key(self) -> &'static str {
        match self {
            InboundType::JobOrderSnapshot => "joborder.snapshot",
            InboundType::MediationLogSnapshot => "mediationlog.snapshot",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            InboundType::JobOrderSnapshot,
            InboundType::MediationLogSnapshot,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// An inbound envelope whose fields passed their checks; `data` is still raw.
#[derive(Debug)]
pub struct Envelope<'a> {
    pub id: String,
    pub kind: InboundType,
    pub subject: Option<String>,
    /// When the hub says the change happened.
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    pub data: &'a RawValue,
}

#[derive(Deserialize)]
struct Wire<'a> {
    specversion: Option<String>,
    id: Option<String>,
    source: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    time: Option<String>,
    subject: Option<String>,
    datacontenttype: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// Checks an inbound body up to its envelope. Errors are rejections with the
/// contract's codes: `message.too_large`, `json.malformed`, `type.unknown`,
/// `schema.invalid`.
pub fn parse(body: &[u8]) -> Result<Envelope<'_>, Rejection> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Rejection::new(
            ErrorCode::MessageTooLarge,
            format!(
                "body: {} bytes is over the limit of {MAX_BODY_BYTES} bytes (256 KiB)",
                body.len()
            ),
        ));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        Rejection::new(
            ErrorCode::JsonMalformed,
            format!(
                "body: not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    check_text(text)?;
    let wire: Wire<'_> = super::from_json("", text)?;

    let kind = match wire.kind.as_deref() {
        None => return Err(Rejection::schema("type", "missing")),
        Some(t) => InboundType::parse(t).ok_or_else(|| {
            Rejection::new(
                ErrorCode::TypeUnknown,
                format!(
                    "type: {t:?} is not an inbound type ({} or {})",
                    InboundType::JobOrderSnapshot.as_str(),
                    InboundType::MediationLogSnapshot.as_str()
                ),
            )
        })?,
    };
    match wire.specversion.as_deref() {
        Some("1.0") => {}
        Some(v) => {
            return Err(Rejection::schema(
                "specversion",
                format_args!("{v:?} is not \"1.0\""),
            ))
        }
        None => return Err(Rejection::schema("specversion", "missing")),
    }
    let id = wire.id.ok_or_else(|| Rejection::schema("id", "missing"))?;
    let id_chars = id.chars().count();
    if !(1..=128).contains(&id_chars) {
        return Err(Rejection::schema(
            "id",
            format_args!("{id_chars} characters; an id has 1 to 128"),
        ));
    }
    // The id is stored in the inbox.
    super::checks::no_nul("id", &id)?;
    match wire.source.as_deref() {
        Some(s) if !s.is_empty() => {}
        Some(_) => return Err(Rejection::schema("source", "empty")),
        None => return Err(Rejection::schema("source", "missing")),
    }
    let time = match wire.time.as_deref() {
        Some(time) => match super::checks::parse_rfc3339(time) {
            Some(t) => Some(t.with_timezone(&chrono::Utc)),
            None => {
                return Err(Rejection::schema(
                    "time",
                    format_args!("{time:?} is not an RFC 3339 timestamp"),
                ))
            }
        },
        None => None,
    };
    if let Some(ct) = wire.datacontenttype.as_deref() {
        if !is_json_media_type(ct) {
            return Err(Rejection::schema(
                "datacontenttype",
                format_args!(
                    "{ct:?} is not the media type application/json (parameters such as \"; charset=utf-8\" may follow it)"
                ),
            ));
        }
    }
    let data = match wire.data {
        Some(data) if data.get().trim_start().starts_with('{') => data,
        Some(_) => return Err(Rejection::schema("data", "not an object")),
        None => return Err(Rejection::schema("data", "missing")),
    };
    Ok(Envelope {
        id,
        kind,
        subject: wire.subject,
        time,
        data,
    })
}

/// Whether `ct` is the media type `application/json`, with or without
/// parameters (section 3): the type and subtype compare without regard to
/// case (RFC 9110 8.3.1), white space may stand before the `;`.
fn is_json_media_type(ct: &str) -> bool {
    let essence = ct.split_once(';').map_or(ct, |(essence, _)| essence);
    essence
        .trim_end_matches([' ', '\t'])
        .eq_ignore_ascii_case("application/json")
}

/// Rejects, before the parser sees it, what it would take but is no JSON
/// text of Unicode strings the contract accepts: nesting deeper than
/// [`MAX_DEPTH`], and a `\u` escape of a lone UTF-16 surrogate (`\ud800`
/// not followed by a low surrogate, or a low one alone), which names no
/// character — anywhere in the body, an unknown field included, so that a
/// body is judged the same whichever of its fields the worker reads.
fn check_text(text: &str) -> Result<(), Rejection> {
    let lone = |at: usize| {
        let escape = text.get(at..at + 6).unwrap_or("\\u");
        Rejection::new(
            ErrorCode::JsonMalformed,
            format!(
                "body: the escape {escape} at byte {at} is a lone UTF-16 surrogate, which is no Unicode character"
            ),
        )
    };
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // Inside a `\u` escape: hex digits read so far and their value.
    let mut hex: Option<(u8, u32)> = None;
    // Where a high surrogate's escape starts, while its low one must follow.
    let mut high: Option<usize> = None;
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            if let Some((n, value)) = hex {
                hex = None;
                // A byte that is no hex digit: a bad escape the parser rejects.
                let Some(digit) = char::from(b).to_digit(16) else {
                    continue;
                };
                let value = value * 16 + digit;
                if n < 3 {
                    hex = Some((n + 1, value));
                    continue;
                }
                let at = i - 5;
                match (high.take(), value) {
                    (Some(_), 0xDC00..=0xDFFF) => {}
                    (Some(first), _) => return Err(lone(first)),
                    (None, 0xD800..=0xDBFF) => high = Some(at),
                    (None, 0xDC00..=0xDFFF) => return Err(lone(at)),
                    (None, _) => {}
                }
                continue;
            }
            if escaped {
                escaped = false;
                if b == b'u' {
                    hex = Some((0, 0));
                } else if let Some(first) = high {
                    return Err(lone(first));
                }
                continue;
            }
            if b == b'\\' {
                escaped = true;
            } else if let Some(first) = high {
                return Err(lone(first));
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Rejection::new(
                        ErrorCode::JsonMalformed,
                        format!("body: JSON nests deeper than {MAX_DEPTH} levels"),
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str) -> String {
        format!(
            r#"{{"specversion":"1.0","id":"m1","source":"/dfdg","type":"{kind}","subject":"s","data":{{}}}}"#
        )
    }

    #[test]
    fn a_well_formed_envelope_parses() {
        let body = event("dk.dfdg.joborder.snapshot");
        let env = parse(body.as_bytes()).unwrap();
        assert_eq!(env.id, "m1");
        assert_eq!(env.kind, InboundType::JobOrderSnapshot);
    }

    #[test]
    fn datacontenttype_is_application_json_with_or_without_parameters() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "Application/JSON",
            "application/json ; charset=utf-8",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/jsonx",
            "application/json+x; a=b",
            " application/json",
            "application/cloudevents+json",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
        let body = r#"{"specversion":"1.0","id":"m1","source":"/dfdg","type":"dk.dfdg.joborder.snapshot","datacontenttype":"text/plain","data":{}}"#;
        let r = parse(body.as_bytes()).unwrap_err();
        assert_eq!(r.code, ErrorCode::SchemaInvalid);
        assert!(r.message.starts_with("datacontenttype: "), "{r}");
    }

    #[test]
    fn an_unknown_type_is_rejected_as_such() {
        let body = event("dk.dfdg.joborder.deleted");
        assert_eq!(
            parse(body.as_bytes()).unwrap_err().code,
            ErrorCode::TypeUnknown
        );
    }

    #[test]
    fn a_body_over_256_kib_is_too_large() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse(&body).unwrap_err().code, ErrorCode::MessageTooLarge);
    }

    #[test]
    fn invalid_utf8_truncated_json_and_deep_nesting_are_malformed() {
        assert_eq!(
            parse(b"\xff\xfe{}").unwrap_err().code,
            ErrorCode::JsonMalformed
        );
        assert_eq!(
            parse(b"{\"specversion\":").unwrap_err().code,
            ErrorCode::JsonMalformed
        );
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().code,
            ErrorCode::JsonMalformed
        );
        let fine = format!(r#"{{"a":"{}"}}"#, "[".repeat(100));
        assert_ne!(
            parse(fine.as_bytes()).unwrap_err().code,
            ErrorCode::JsonMalformed
        );
    }

    #[test]
    fn a_lone_surrogate_escape_is_malformed_wherever_it_is() {
        let with = |title: &str, extra: &str| {
            format!(
                r#"{{"specversion":"1.0","id":"m1","source":"/dfdg","type":"dk.dfdg.joborder.snapshot","subject":"s",{extra}"data":{{"title":"{title}"}}}}"#
            )
        };
        for (title, extra) in [
            (r"\ud800", ""),
            (r"\uDBFF x", ""),
            (r"\udc00", ""),
            (r"\ud800\u0041", ""),
            (r"\ud800\n", ""),
            (r"\udc00\ud800", ""),
            (r"\ud800\ud800\udc00", ""),
            ("fine", r#""x-unknown":"\ud83d","#),
            ("fine", r#""x-unknown":["\udfff"],"#),
        ] {
            let body = with(title, extra);
            let err = parse(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, ErrorCode::JsonMalformed, "{body}");
            assert!(
                err.message.contains("lone UTF-16 surrogate"),
                "{}",
                err.message
            );
        }
        for (title, extra) in [
            (r"\ud83d\ude00 \u00e6\u00F8", ""),
            (r"\\ud800 is text", ""),
            (r"\\\ud83d\uDE00", ""),
            ("fine", r#""x-unknown":"\uD83D\uDE00","#),
        ] {
            let body = with(title, extra);
            assert!(parse(body.as_bytes()).is_ok(), "{body}");
        }
    }

    #[test]
    fn a_nul_character_in_the_id_is_a_schema_error() {
        let body = r#"{"specversion":"1.0","id":"m\u00001","source":"/dfdg","type":"dk.dfdg.joborder.snapshot","subject":"s","data":{}}"#;
        let err = parse(body.as_bytes()).unwrap_err();
        assert_eq!(err.code, ErrorCode::SchemaInvalid);
        assert!(
            err.message.starts_with("id: contains a NUL"),
            "{}",
            err.message
        );
    }

    #[test]
    fn an_envelope_field_of_the_wrong_type_is_a_schema_error() {
        let body = r#"{"specversion":"1.0","id":7,"source":"/dfdg","type":"dk.dfdg.joborder.snapshot","data":{}}"#;
        let err = parse(body.as_bytes()).unwrap_err();
        assert_eq!(err.code, ErrorCode::SchemaInvalid);
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }
}
