//! The transcript of one item: every APDU (`>>` command, `<<` response, hex) and every event,
//! in order. Reports show it for failed and inconclusive items.

use std::fmt::{self, Write as _};

/// One line of a transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    /// A command sent to the target (redacted for PIN commands, see [`Transcript::command`]).
    Command(String),
    /// The target's response, hex data then SW.
    Response(String),
    /// No response came back.
    NoResponse(String),
    /// Something the harness or the lower tester did or saw.
    Event(String),
}

/// Everything exchanged and observed during one item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    entries: Vec<Entry>,
    /// When set, APDUs are not recorded (long loops record a summary instead).
    quiet: bool,
    /// Card numbers (ASN hex) shown masked wherever they appear.
    masked: Vec<(String, String)>,
}

/// Upper-case hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// Bytes from hex text; characters other than hex digits are skipped (catalogue parameters such
/// as `"80 5C 00 02"`). A trailing odd digit counts as its own low nibble.
pub fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .chars()
        .filter_map(|c| c.to_digit(16))
        .map(|d| d as u8)
        .collect();
    digits
        .chunks(2)
        .map(|c| match c {
            [hi, lo] => (hi << 4) | lo,
            [lo] => *lo,
            _ => 0,
        })
        .collect()
}

/// INS codes whose data field is a PIN (VERIFY, CHANGE/RELOAD PIN, PIN UNBLOCK): never shown.
const PIN_INS: [u8; 3] = [0x20, 0x5E, 0x24];

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Transcript {
        Transcript::default()
    }

    /// Records a command. The data of PIN commands is replaced by its length.
    pub fn command(&mut self, bytes: &[u8]) {
        if self.quiet {
            return;
        }
        let text = match bytes {
            [cla, ins, p1, p2, lc, rest @ ..] if PIN_INS.contains(ins) && !rest.is_empty() => {
                format!(
                    "{} [{} data bytes redacted]",
                    hex(&[*cla, *ins, *p1, *p2, *lc]),
                    rest.len()
                )
            }
            _ => hex(bytes),
        };
        self.entries.push(Entry::Command(text));
    }

    /// Records a response (data ‖ SW1 SW2).
    pub fn response(&mut self, bytes: &[u8]) {
        if self.quiet {
            return;
        }
        let text = match bytes.len() {
            0 | 1 => hex(bytes),
            n => {
                let (data, sw) = bytes.split_at(n - 2);
                if data.is_empty() {
                    hex(sw)
                } else {
                    format!("{} {}", hex(data), hex(sw))
                }
            }
        };
        self.entries.push(Entry::Response(text));
    }

    /// Records that no response came back, and why.
    pub fn no_response(&mut self, why: impl Into<String>) {
        self.entries.push(Entry::NoResponse(why.into()));
    }

    /// Records an event (always, even when quiet).
    pub fn event(&mut self, text: impl Into<String>) {
        self.entries.push(Entry::Event(text.into()));
    }

    /// Shows the card number `asn` masked (first and last 4 digits kept) wherever it appears,
    /// as everywhere else in the project: reports never carry a full card number.
    pub fn mask_card_number(&mut self, asn: &[u8; 10]) {
        let full = hex(asn);
        if self.masked.iter().any(|(f, _)| *f == full) {
            return;
        }
        let masked = format!("{}{}{}", &full[..4], "*".repeat(12), &full[16..]);
        self.masked.push((full, masked));
    }

    fn masked(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (full, masked) in &self.masked {
            out = out.replace(full.as_str(), masked);
        }
        out
    }

    /// Stops (`true`) or resumes recording APDUs.
    pub fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
    }

    /// The entries, in order, as recorded (card numbers not yet masked: use `Display`).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Display for Transcript {
    /// `>> hex`, `<< hex`, `!! no response`, `# event`, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            match e {
                Entry::Command(c) => writeln!(f, ">> {}", self.masked(c))?,
                Entry::Response(r) => writeln!(f, "<< {}", self.masked(r))?,
                Entry::NoResponse(w) => writeln!(f, "!! no response: {}", self.masked(w))?,
                Entry::Event(t) => writeln!(f, "# {}", self.masked(t))?,
            }
        }
        Ok(())
    }
}
