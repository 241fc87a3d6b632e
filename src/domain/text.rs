//! Length and blank checks of free text, counted in characters (not bytes:
//! æ, ø and å are one character each).

pub use crate::contract::checks::no_nul;
use crate::contract::rejection::Rejection;

/// Checks that `value` has `min..=max` characters, no NUL character (see
/// [`no_nul`]) and, when `min` is at least 1, is not blank.
pub fn bounded(field: &str, value: &str, min: usize, max: usize) -> Result<(), Rejection> {
    no_nul(field, value)?;
    let n = value.chars().count();
    if n < min || n > max {
        return Err(Rejection::schema(
            field,
            format_args!("{n} characters; it must have {min} to {max}"),
        ));
    }
    if min > 0 && is_blank(value) {
        return Err(Rejection::schema(field, "blank"));
    }
    Ok(())
}

/// Whether `value` has nothing but white space as the schemas' `\S` pattern
/// reads it (ECMAScript `\s`: Unicode space separators, tab, line breaks and
/// the byte order mark; not U+0085).
pub fn is_blank(value: &str) -> bool {
    value.chars().all(|c| {
        matches!(
            c,
            '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
                ..='\u{200a}'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{202f}'
                    | '\u{205f}'
                    | '\u{3000}'
                    | '\u{feff}'
        )
    })
}

/// [`bounded`] for an optional value: `None` passes.
pub fn bounded_opt(field: &str, value: Option<&str>, max: usize) -> Result<(), Rejection> {
    value.map_or(Ok(()), |v| bounded(field, v, 0, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::rejection::ErrorCode;

    #[test]
    fn danish_letters_count_as_one_character_each() {
        let title = "æ".repeat(100);
        assert!(bounded("t", &title, 1, 100).is_ok());
        assert!(bounded("t", &format!("{title}ø"), 1, 100).is_err());
    }

    #[test]
    fn a_nul_character_is_rejected_in_any_text_and_names_the_field() {
        for text in ["\0", "Lager\0medarbejder", "æøå\0"] {
            let err = bounded("data.title", text, 0, 100).unwrap_err();
            assert_eq!(err.code, ErrorCode::SchemaInvalid);
            assert!(
                err.message.starts_with("data.title: contains a NUL"),
                "{}",
                err.message
            );
        }
        assert!(bounded_opt("data.status_comment", Some("a\0"), 5000).is_err());
        assert!(no_nul("id", "\\u0000 is only text").is_ok());
    }

    #[test]
    fn a_required_text_must_not_be_blank() {
        assert!(bounded("t", "   ", 1, 100).is_err());
        assert!(bounded("t", "", 1, 100).is_err());
        assert!(bounded("t", "", 0, 100).is_ok());
    }
}
