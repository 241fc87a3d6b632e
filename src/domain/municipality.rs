//! The 98 Danish municipalities (kommuner), whose 3-digit codes start every
//! jobcentre's authority number (myndighedsnummer). The list is the project's
//! own copy under `reference/municipalities.csv`, compiled in.

use std::collections::HashMap;
use std::sync::OnceLock;

const CSV: &str = include_str!("../../reference/municipalities.csv");

fn table() -> &'static HashMap<u16, &'static str> {
    static TABLE: OnceLock<HashMap<u16, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| {
        CSV.lines()
            .skip(1)
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let (code, name) = line
                    .split_once(',')
                    .expect("reference/municipalities.csv: every line is code,name");
                let code = code
                    .trim()
                    .parse()
                    .expect("reference/municipalities.csv: codes are numbers");
                (code, name.trim())
            })
            .collect()
    })
}

/// The municipality's name for a 3-digit code, or `None` when no municipality
/// has that code.
pub fn name(code: u16) -> Option<&'static str> {
    table().get(&code).copied()
}

/// Every municipality code, ascending.
pub fn codes() -> Vec<u16> {
    let mut codes: Vec<u16> = table().keys().copied().collect();
    codes.sort_unstable();
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_list_has_the_98_municipalities() {
        assert_eq!(codes().len(), 98);
    }

    #[test]
    fn known_codes_have_their_danish_names() {
        assert_eq!(name(153), Some("Brøndby"));
        assert_eq!(name(101), Some("København"));
        assert_eq!(name(999), None);
    }
}
