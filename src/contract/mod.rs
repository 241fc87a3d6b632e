//! The wire format: serde structs of every message in and out, exactly as the
//! contract spells them, and the first checks on an inbound body.

pub mod checks;
mod de;
pub mod envelope;
pub mod headers;
pub mod joborder;
pub mod mediationlog;
pub mod outbound;
pub mod rejection;

use serde::Deserialize;

use self::rejection::{ErrorCode, Rejection};

/// Deserializes `text`, naming the failing field in the rejection: a syntax
/// error is `json.malformed`, a well-formed value of the wrong shape
/// `schema.invalid` with its path under `prefix` (e.g. `data.employer.cvr`).
pub(crate) fn from_json<'de, T: Deserialize<'de>>(
    prefix: &str,
    text: &'de str,
) -> Result<T, Rejection> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let wrong_shape = rejection(prefix, &e);
        // The text is read as a stream: a field of the wrong shape can come
        // before the point where a body that is no JSON at all breaks off.
        // Such a body is `json.malformed`, whatever comes before the break.
        match malformed(prefix, text) {
            Some(malformed) if wrong_shape.code == ErrorCode::SchemaInvalid => malformed,
            _ => wrong_shape,
        }
    })?;
    de.end().map_err(|e| rejection_inner(prefix, "", &e))?;
    Ok(value)
}

/// The rejection of `text` when it is no JSON at all; only asked of a text
/// already being rejected, so a valid message never pays for a second read.
fn malformed(prefix: &str, text: &str) -> Option<Rejection> {
    let e = serde_json::from_str::<serde::de::IgnoredAny>(text).err()?;
    let rejection = rejection_inner(prefix, "", &e);
    (rejection.code == ErrorCode::JsonMalformed).then_some(rejection)
}

fn rejection(prefix: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> Rejection {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    rejection_inner(prefix, &path, e.inner())
}

fn rejection_inner(prefix: &str, path: &str, e: &serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    let field = || match (prefix.is_empty(), path.is_empty()) {
        (true, true) => "body".to_owned(),
        (true, false) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{path}"),
    };
    match e.classify() {
        // A number too large for a double (`1e400`) is well-formed JSON that
        // serde_json cannot hold: a value out of its field's range.
        Category::Syntax if e.to_string().starts_with("number out of range") => {
            Rejection::schema(&field(), "a number out of range (too large for any field)")
        }
        Category::Syntax | Category::Eof | Category::Io => {
            Rejection::new(ErrorCode::JsonMalformed, format!("body: not JSON ({e})"))
        }
        Category::Data => {
            Rejection::schema(&field(), without_values(&strip_position(&e.to_string())))
        }
    }
}

/// serde's message without the value it found (`invalid type: string
/// "Kim Hansen", expected a boolean` becomes `invalid type: a string,
/// expected a boolean`): a rejection's text is logged and sent with the dead
/// letter, and a value in the wrong place may be personal data (section 12).
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let next = [
            ("string \"", '"', "a string"),
            ("integer `", '`', "an integer"),
            ("floating point `", '`', "a number"),
            ("character `", '`', "a character"),
        ]
        .into_iter()
        .filter_map(|(start, end, what)| rest.find(start).map(|i| (i, start, end, what)))
        .min_by_key(|(i, ..)| *i);
        let Some((i, start, end, what)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        out.push_str(what);
        // Past the closing quote (a quoted string escapes its own quotes).
        let value = &rest[i + start.len()..];
        let mut chars = value.char_indices();
        let mut close = value.len();
        while let Some((j, c)) = chars.next() {
            if c == '\\' {
                chars.next();
            } else if c == end {
                close = j + c.len_utf8();
                break;
            }
        }
        rest = &value[close..];
    }
}

/// serde_json appends " at line L column C"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Data {
        #[serde(deserialize_with = "de::unsigned")]
        version: u64,
        #[serde(default, deserialize_with = "de::optional_signed")]
        positions: Option<i64>,
    }

    #[test]
    fn a_value_in_the_wrong_place_is_not_repeated_in_the_rejection() {
        assert_eq!(
            without_values(r#"invalid type: string "Kim \"K\" Hansen", expected a boolean"#),
            "invalid type: a string, expected a boolean"
        );
        assert_eq!(
            without_values("invalid type: integer `43212345`, expected a string"),
            "invalid type: an integer, expected a string"
        );
        assert_eq!(
            without_values("missing field `title`"),
            "missing field `title`"
        );
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Flag {
            cv_active: bool,
        }
        let text = r#"{"cv_active": "kim@example.dk"}"#;
        let mut de = serde_json::Deserializer::from_str(text);
        let e = serde_path_to_error::deserialize::<_, Flag>(&mut de).unwrap_err();
        let r = rejection("data", &e);
        assert_eq!(r.code, ErrorCode::SchemaInvalid);
        assert!(!r.message.contains("kim@"), "{}", r.message);
        assert!(r.message.contains("data.cv_active"), "{}", r.message);
    }

    #[test]
    fn a_number_beyond_a_double_is_out_of_its_fields_range_not_malformed() {
        for (text, field) in [
            (r#"{"version": 1e400}"#, "data.version: "),
            (r#"{"version": 1, "positions": -1e400}"#, "data.positions: "),
        ] {
            let err = from_json::<Data>("data", text).unwrap_err();
            assert_eq!(err.code, ErrorCode::SchemaInvalid, "{text}");
            assert!(err.message.starts_with(field), "{}", err.message);
        }
        // An unknown field is ignored, whatever number it holds.
        assert!(from_json::<Data>("data", r#"{"version": 1, "x": 1e400}"#).is_ok());
        let err = from_json::<Data>("data", r#"{"version": 1, "x": [1e400"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::JsonMalformed);
    }

    #[test]
    fn a_body_cut_off_after_a_field_of_the_wrong_type_is_malformed() {
        // Found by the property tests: the wrong type came first and won.
        let err = from_json::<Data>("data", r#"{"version": "1", "positions": 2"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::JsonMalformed, "{}", err.message);
        // Whole, it is the wrong type it is.
        let err = from_json::<Data>("data", r#"{"version": "1", "positions": 2}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::SchemaInvalid, "{}", err.message);
        assert!(err.message.starts_with("data.version: "), "{}", err.message);
    }
}
