//! Every function in `tests/functions/` is exercised by some test: a fixture
//! nobody runs is a test that silently stopped testing.

use std::path::Path;

#[test]
fn every_fixture_is_used_by_a_test() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
    let mut sources = String::new();
    for entry in std::fs::read_dir(&tests).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("fixtures.rs") {
            sources.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    let mut unused = Vec::new();
    for entry in std::fs::read_dir(tests.join("functions")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if !sources.contains(&format!("\"{stem}\"")) {
            unused.push(stem);
        }
    }
    assert!(unused.is_empty(), "fixtures no test deploys: {unused:?}");
}
