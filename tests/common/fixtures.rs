//! The fixture corpus under `tests/fixtures/joborder/`, shared by the test
//! binaries.

/// The fixtures of `kind` (`valid` or `invalid`): (file stem, bytes), sorted.
pub fn fixtures(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/joborder")
        .join(kind);
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
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
