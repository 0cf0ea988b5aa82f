//! Reports as strings: one self-contained HTML page per run ([`html`]) and JUnit XML
//! ([`junit`]). The binary writes them to files.

mod html;
mod junit;

pub use html::html;
pub use junit::junit;

/// Escapes text for HTML and XML element content and attribute values. Characters XML 1.0 does
/// not allow (C0 controls other than tab, newline, carriage return) become `?`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}
