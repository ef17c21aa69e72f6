//! Generates one `#[test]` per protocol vector in `fixtures/streams/` (see tests/fixtures.rs), so
//! a vector added to the folder is a test without touching any code.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let dir = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("fixtures/streams");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::new();
    for name in &names {
        let stem = name.trim_end_matches(".json");
        let ident: String = stem
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        writeln!(
            out,
            "#[test]\nfn {ident}() {{\n    check_fixture({name:?});\n}}"
        )
        .expect("writing to a String");
    }
    writeln!(out, "const FIXTURE_COUNT: usize = {};", names.len()).expect("writing to a String");
    let dest =
        Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("fixture_tests.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}
