//! The wire format: serde structs of every message in and out, exactly as the
//! contract spells them, and the first checks on an inbound body.

mod de;
pub mod envelope;
pub mod joborder;
pub mod mediationlog;

use serde::Deserialize;

use crate::domain::rejection::{ErrorCode, Rejection};

/// Deserializes `text`, naming the failing field in the rejection: a syntax
/// error is `json.malformed`, a well-formed value of the wrong shape
/// `schema.invalid` with its path under `prefix` (e.g. `data.employer.cvr`).
pub(crate) fn from_json<'de, T: Deserialize<'de>>(
    prefix: &str,
    text: &'de str,
) -> Result<T, Rejection> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| rejection(prefix, &e))?;
    de.end().map_err(|e| rejection_inner(prefix, "", &e))?;
    Ok(value)
}

fn rejection(prefix: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> Rejection {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    rejection_inner(prefix, &path, e.inner())
}

fn rejection_inner(prefix: &str, path: &str, e: &serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            Rejection::new(ErrorCode::JsonMalformed, format!("body: not JSON ({e})"))
        }
        Category::Data => {
            let field = match (prefix.is_empty(), path.is_empty()) {
                (true, true) => "body".to_owned(),
                (true, false) => path.to_owned(),
                (false, true) => prefix.to_owned(),
                (false, false) => format!("{prefix}.{path}"),
            };
            Rejection::schema(&field, strip_position(&e.to_string()))
        }
    }
}

/// serde_json appends " at line L column C"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
