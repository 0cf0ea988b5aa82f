//! Integration tests of ykt-apdu: hex vectors (tests/data) and properties.

// Test helpers outside #[test] functions unwrap and panic to report failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod command;
mod props;
mod status;
mod tlv;

/// Non-comment lines of a data file as (1-based line, hex bytes, expectation).
pub fn vectors(file: &str) -> Vec<(usize, Vec<u8>, String)> {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let (bytes, expect) = l
                .split_once('|')
                .unwrap_or_else(|| panic!("{path}:{}", i + 1));
            let bytes: String = bytes.chars().filter(|c| !c.is_whitespace()).collect();
            (i + 1, hex::decode(bytes).unwrap(), expect.trim().to_owned())
        })
        .collect()
}

/// `key=value` fields of an expectation (`ext` alone is `ext=`).
pub fn fields(expect: &str) -> std::collections::BTreeMap<String, String> {
    expect
        .split_whitespace()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (f.to_owned(), String::new()),
        })
        .collect()
}
