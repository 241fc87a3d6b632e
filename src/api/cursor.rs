//! Opaque cursors: where a page ended, in base64url. A search cursor also
//! carries a fingerprint of the search it belongs to, so that one used with
//! other parameters is refused instead of paging something else.

use base64::Engine as _;
use chrono::DateTime;
use uuid::Uuid;

use crate::store::feed::Cursor;
use crate::store::read::Position;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The cursor after `position` of the search with `fingerprint`.
pub fn search(position: Position, fingerprint: u64) -> String {
    let text = match position {
        Position::Rank { rank, id } => format!("s1:r:{}:{id}:{fingerprint:016x}", rank.to_bits()),
        Position::Updated { updated_at, id } => format!(
            "s1:u:{}:{id}:{fingerprint:016x}",
            updated_at.timestamp_micros()
        ),
    };
    B64.encode(text)
}

/// The position a search cursor holds, if it is one of the search with
/// `fingerprint`.
pub fn parse_search(cursor: &str, fingerprint: u64) -> Result<Position, &'static str> {
    let text = decode(cursor)?;
    let parts: Vec<&str> = text.split(':').collect();
    let ["s1", kind, value, id, print] = parts.as_slice() else {
        return Err("not a cursor of this list");
    };
    if u64::from_str_radix(print, 16).ok() != Some(fingerprint) {
        return Err("the cursor belongs to a search with other parameters");
    }
    let id = Uuid::parse_str(id).map_err(|_| "not a cursor of this list")?;
    match *kind {
        "r" => value
            .parse::<u32>()
            .map(|bits| Position::Rank {
                rank: f32::from_bits(bits),
                id,
            })
            .map_err(|_| "not a cursor of this list"),
        "u" => value
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .map(|updated_at| Position::Updated { updated_at, id })
            .ok_or("not a cursor of this list"),
        _ => Err("not a cursor of this list"),
    }
}

/// The cursor of a place in the change feed.
pub fn feed(at: Cursor) -> String {
    B64.encode(format!("c1:{}:{}", at.xid, at.position))
}

/// The place in the change feed a cursor holds.
pub fn parse_feed(cursor: &str) -> Result<Cursor, &'static str> {
    let text = decode(cursor)?;
    let mut parts = text.strip_prefix("c1:").unwrap_or("").split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(x), Some(p), None) => match (x.parse::<u64>(), p.parse::<i64>()) {
            (Ok(xid), Ok(position)) if position >= 0 => Ok(Cursor { xid, position }),
            _ => Err("not a cursor of the change feed"),
        },
        _ => Err("not a cursor of the change feed"),
    }
}

fn decode(cursor: &str) -> Result<String, &'static str> {
    B64.decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or("not a cursor (use `next` as given)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_come_back_as_they_went() {
        let id = Uuid::new_v4();
        let rank = Position::Rank {
            rank: 0.0607927,
            id,
        };
        assert_eq!(parse_search(&search(rank, 7), 7), Ok(rank));
        let t = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let updated = Position::Updated { updated_at: t, id };
        assert_eq!(parse_search(&search(updated, 7), 7), Ok(updated));
        assert!(
            parse_search(&search(updated, 7), 8).is_err(),
            "another search"
        );
        let at = Cursor {
            xid: 9_000_000_001,
            position: 42,
        };
        assert_eq!(parse_feed(&feed(at)), Ok(at));
        assert!(parse_feed(&search(updated, 7)).is_err());
        assert!(parse_search(&feed(at), 7).is_err());
        assert!(parse_feed("!!").is_err());
    }
}
