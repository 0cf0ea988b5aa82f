//! Transcript tests: hex APDU exchanges run against a [`Card`].
//!
//! Format, one item per line:
//!
//! ```text
//! # comment (also: blank lines)
//! >> 00A4040008 A000000632010105      command, hex, spaces ignored
//! << 6F31...9000                      expected response; `xx` matches any byte
//! << POWER_LOST                       expect the command to fail with CardError::PowerLost
//! !power_on   !power_off   !reset     power control
//! !tear N                             arm the tearing switch at the N-th write from now
//! ```
//!
//! Every `>>` line must be followed by a `<<` line.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::{Card, CardError};

/// One step of a transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Send `command`, compare with `expected` (`None` bytes are wildcards).
    Exchange {
        /// 1-based line of the `>>`.
        line: usize,
        /// Command bytes.
        command: Vec<u8>,
        /// Expected response.
        expected: Expected,
    },
    /// `!power_on`.
    PowerOn,
    /// `!power_off`.
    PowerOff,
    /// `!reset`.
    Reset,
    /// `!tear N`.
    Tear(u64),
}

/// The expected outcome of an exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expected {
    /// Response bytes; `None` matches any byte.
    Bytes(Vec<Option<u8>>),
    /// `CardError::PowerLost`.
    PowerLost,
}

/// A transcript that does not parse, or a card that does not follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TranscriptError {
    /// Line `line` is not in the format.
    Syntax {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The card answered something else.
    Mismatch {
        /// 1-based line of the `>>`.
        line: usize,
        /// Command, hex.
        command: String,
        /// Expected response, hex (`xx` wildcards).
        expected: String,
        /// Actual response, hex, or the card error.
        actual: String,
    },
}

impl fmt::Display for TranscriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { line, reason } => write!(f, "line {line}: {reason}"),
            Self::Mismatch {
                line,
                command,
                expected,
                actual,
            } => write!(
                f,
                "line {line}: >> {command}\n  expected << {expected}\n  actual   << {actual}"
            ),
        }
    }
}

impl core::error::Error for TranscriptError {}

fn hex_nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn parse_hex(text: &str, wildcards: bool, line: usize) -> Result<Vec<Option<u8>>, TranscriptError> {
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(TranscriptError::Syntax {
            line,
            reason: "odd number of hex digits",
        });
    }
    digits
        .chunks(2)
        .map(|pair| match pair {
            [a, b]
                if wildcards && a.eq_ignore_ascii_case(&b'x') && b.eq_ignore_ascii_case(&b'x') =>
            {
                Ok(None)
            }
            [a, b] => match (hex_nibble(*a), hex_nibble(*b)) {
                (Some(h), Some(l)) => Ok(Some((h << 4) | l)),
                _ => Err(TranscriptError::Syntax {
                    line,
                    reason: "not a hex byte",
                }),
            },
            _ => Err(TranscriptError::Syntax {
                line,
                reason: "odd number of hex digits",
            }),
        })
        .collect()
}

/// Parses transcript text into steps.
pub fn parse_transcript(text: &str) -> Result<Vec<Step>, TranscriptError> {
    let mut steps = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(rest) = l.strip_prefix("<<") {
            let Some((cline, command)) = open.take() else {
                return Err(TranscriptError::Syntax {
                    line,
                    reason: "<< without a preceding >>",
                });
            };
            let rest = rest.trim();
            let expected = if rest == "POWER_LOST" {
                Expected::PowerLost
            } else {
                let bytes = parse_hex(rest, true, line)?;
                if bytes.len() < 2 {
                    return Err(TranscriptError::Syntax {
                        line,
                        reason: "a response has at least SW1 SW2",
                    });
                }
                Expected::Bytes(bytes)
            };
            steps.push(Step::Exchange {
                line: cline,
                command,
                expected,
            });
            continue;
        }
        if open.is_some() {
            return Err(TranscriptError::Syntax {
                line,
                reason: ">> not followed by <<",
            });
        }
        if let Some(rest) = l.strip_prefix(">>") {
            let command = parse_hex(rest, false, line)?
                .into_iter()
                .flatten()
                .collect();
            open = Some((line, command));
        } else if l == "!power_on" {
            steps.push(Step::PowerOn);
        } else if l == "!power_off" {
            steps.push(Step::PowerOff);
        } else if l == "!reset" {
            steps.push(Step::Reset);
        } else if let Some(n) = l.strip_prefix("!tear") {
            let n = n.trim().parse().map_err(|_| TranscriptError::Syntax {
                line,
                reason: "!tear needs a write count",
            })?;
            steps.push(Step::Tear(n));
        } else {
            return Err(TranscriptError::Syntax {
                line,
                reason: "unknown line",
            });
        }
    }
    if let Some((line, _)) = open {
        return Err(TranscriptError::Syntax {
            line,
            reason: ">> at the end without <<",
        });
    }
    Ok(steps)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn hex_expected(bytes: &[Option<u8>]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            Some(b) => format!("{b:02X}"),
            None => String::from("xx"),
        })
        .collect()
}

/// Runs a transcript against `card`; returns the number of exchanges checked.
pub fn run_transcript(card: &mut Card, text: &str) -> Result<usize, TranscriptError> {
    let mut exchanges = 0;
    for step in parse_transcript(text)? {
        match step {
            Step::PowerOn => {
                card.power_on();
            }
            Step::PowerOff => card.power_off(),
            Step::Reset => {
                card.reset();
            }
            Step::Tear(n) => card.tear().arm_at(n),
            Step::Exchange {
                line,
                command,
                expected,
            } => {
                exchanges += 1;
                let actual = card.transmit(&command);
                let ok = match (&expected, &actual) {
                    (Expected::PowerLost, Err(CardError::PowerLost)) => true,
                    (Expected::Bytes(want), Ok(got)) => {
                        want.len() == got.len()
                            && want.iter().zip(got).all(|(w, g)| w.is_none_or(|w| w == *g))
                    }
                    _ => false,
                };
                if !ok {
                    return Err(TranscriptError::Mismatch {
                        line,
                        command: hex(&command),
                        expected: match expected {
                            Expected::PowerLost => String::from("POWER_LOST"),
                            Expected::Bytes(b) => hex_expected(&b),
                        },
                        actual: match actual {
                            Ok(b) => hex(&b),
                            Err(e) => format!("{e:?}"),
                        },
                    });
                }
            }
        }
    }
    Ok(exchanges)
}

/// Reads the transcript at `path` and runs it; panics with the line, command, expected and
/// actual response on the first difference (a test helper).
#[cfg(feature = "std")]
#[allow(clippy::panic)] // Test helper: a panic is how a failed check reports.
pub fn check_transcript(card: &mut Card, path: impl AsRef<std::path::Path>) -> usize {
    let path = path.as_ref();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => panic!("{}: {e}", path.display()),
    };
    match run_transcript(card, &text) {
        Ok(n) => n,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}
