//! The fixture corpora under `tests/fixtures/<stream>/`, shared by the test
//! binaries: `joborder` and `mediationlog`, each with `valid/` and `invalid/`.

/// The fixtures of `stream` (`joborder` or `mediationlog`) and `kind`
/// (`valid` or `invalid`): (file stem, bytes), sorted.
pub fn fixtures(stream: &str, kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(stream)
        .join(kind);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}
