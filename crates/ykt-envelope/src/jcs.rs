//! Canonical JSON (RFC 8785, JCS): the bytes every signature over JSON covers (tsm-gp.md §7).
//!
//! Object members sorted by their names' UTF-16 code units, no white space, strings escaped as
//! RFC 8785 §3.2.2.2 says (`"`, `\`, the short escapes, other control characters as `\u00xx`;
//! the rest as UTF-8) and numbers as integers. Our messages carry only integers, strings,
//! booleans, `null`, arrays and objects, for which this is exactly JCS. A number with a fraction
//! or an exponent is refused rather than given the ECMAScript spelling JCS would need.

use serde_json::Value;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// A number that is not an integer.
    #[error("numbers must be integers")]
    NotAnInteger,
}

/// The canonical bytes of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write(value, &mut out)?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(CanonicalError::NotAnInteger);
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (name, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(name, out);
                out.push(b':');
                write(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0C}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn members_are_sorted_and_compact() {
        let v: Value = serde_json::from_str(
            r#"{ "b": [1, -2, null, true], "a": {"z": "x\ny", "é": 0}, "A": "\u0001" }"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(to_vec(&v).unwrap()).unwrap(),
            "{\"A\":\"\\u0001\",\"a\":{\"z\":\"x\\ny\",\"é\":0},\"b\":[1,-2,null,true]}"
        );
        let f: Value = serde_json::from_str("{\"a\": 1.5}").unwrap();
        assert_eq!(to_vec(&f), Err(CanonicalError::NotAnInteger));
    }
}
