//! The layers point one way (docs/design.md, "Layout"): each top-level
//! module of `src/` uses only the ones below it, and the modules of
//! `src/store/` form no circle. Read from the source text: every
//! `crate::<module>` and `super::<module>` path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What each layer may use besides itself.
const ALLOWED: &[(&str, &[&str])] = &[
    ("contract", &[]),
    ("domain", &["contract", "trace"]),
    ("store", &["contract", "domain", "trace", "config"]),
    ("amqp", &["contract", "config"]),
    ("telemetry", &["contract", "domain", "config"]),
    (
        "api",
        &["contract", "domain", "store", "telemetry", "tokens"],
    ),
];

fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    out
}

/// The names after every `prefix` in `text` (`crate::domain::x` gives
/// `domain`; `crate::{a, b}` gives both).
fn paths_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        let group = if let Some(inner) = rest.strip_prefix('{') {
            &inner[..inner.find('}').unwrap_or(inner.len())]
        } else {
            rest
        };
        for part in group.split(',') {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != "self" {
                names.insert(name);
            }
            if !rest.starts_with('{') {
                break;
            }
        }
    }
    names
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for (layer, allowed) in ALLOWED {
        for (file, text) in sources(&root.join(layer)) {
            for used in paths_after(&text, "crate::") {
                if used != *layer && !allowed.contains(&used.as_str()) {
                    wrong.push(format!("{file} uses crate::{used}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_store_modules_form_no_circle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in sources(&dir) {
        let module = Path::new(&file)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if module == "mod" {
            continue;
        }
        uses.insert(module, paths_after(&text, "super::"));
    }
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut circle = path[at..].to_vec();
            circle.push(m.to_owned());
            return Some(circle);
        }
        if !done.insert(m.to_owned()) {
            return None;
        }
        path.push(m.to_owned());
        for next in uses.get(m).into_iter().flatten() {
            if uses.contains_key(next) {
                if let Some(circle) = visit(next, uses, path, done) {
                    return Some(circle);
                }
            }
        }
        path.pop();
        None
    }
    for m in uses.keys() {
        let circle = visit(m, &uses, &mut Vec::new(), &mut BTreeSet::new());
        assert!(circle.is_none(), "a circle in src/store: {circle:?}");
    }
}
