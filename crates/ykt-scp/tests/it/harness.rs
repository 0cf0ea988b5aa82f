//! Reader of the `key = value` vector files: blank lines separate cases, `#` starts a comment,
//! values are hex (spaces allowed) unless double-quoted.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One case of a vector file.
#[derive(Debug)]
pub struct Case {
    /// File name and first line number, for failure messages.
    pub location: String,
    fields: BTreeMap<String, String>,
}

impl Case {
    /// The raw text of a field.
    pub fn text(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("{}: missing field {key}", self.location))
    }

    /// A hex field as bytes, if the case has it.
    pub fn optional_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.fields.contains_key(key).then(|| self.bytes(key))
    }

    /// A field as bytes: the contents of a quoted string, or hex with spaces removed.
    pub fn bytes(&self, key: &str) -> Vec<u8> {
        let v = self.text(key);
        if let Some(s) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            return s.as_bytes().to_vec();
        }
        let compact: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        hex::decode(&compact).unwrap_or_else(|e| panic!("{}: {key}: {e}", self.location))
    }

    /// A field as a command APDU.
    pub fn command(&self, key: &str) -> ykt_apdu::CommandApdu {
        ykt_apdu::CommandApdu::parse(&self.bytes(key))
            .unwrap_or_else(|e| panic!("{}: {key}: {e}", self.location))
    }

    /// A one-byte hex field.
    pub fn byte(&self, key: &str) -> u8 {
        self.array::<1>(key)[0]
    }

    /// A hex field as a fixed-size array.
    pub fn array<const N: usize>(&self, key: &str) -> [u8; N] {
        let b = self.bytes(key);
        b.try_into().unwrap_or_else(|b: Vec<u8>| {
            panic!("{}: {key} has {} bytes, want {N}", self.location, b.len())
        })
    }
}

/// Reads every case of `tests/data/<name>`.
pub fn cases(name: &str) -> Vec<Case> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", name]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut current: Option<Case> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            out.extend(current.take());
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}:{}: not `key = value`", n + 1));
        let case = current.get_or_insert_with(|| Case {
            location: format!("{name}:{}", n + 1),
            fields: BTreeMap::new(),
        });
        case.fields.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    out.extend(current);
    assert!(!out.is_empty(), "{name}: no cases");
    out
}

/// Upper-case hex, for readable assertion messages.
pub fn hx(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}
