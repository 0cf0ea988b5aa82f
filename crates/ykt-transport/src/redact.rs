//! APDU summaries for logs that never print secrets.
//!
//! The header and status word go to `debug`; data goes to `trace` only, and the data field of
//! sensitive commands is replaced by `[redacted N bytes]`: VERIFY (`20`), CHANGE REFERENCE DATA
//! (`24`), RESET RETRY COUNTER (`2C`), RELOAD/CHANGE PIN (`5E`), PUT KEY (`D8`), GlobalPlatform
//! STORE DATA (`E2` with a proprietary CLA), and every command under secure messaging (CLA bits
//! `0C`), whose data may be enciphered keys.

use core::fmt;

/// INS codes whose data field carries a PIN or a key.
const SENSITIVE_INS: [u8; 5] = [0x20, 0x24, 0x2C, 0x5E, 0xD8];

/// Whether the data field of a command with this CLA and INS must not be logged.
pub fn is_sensitive(cla: u8, ins: u8) -> bool {
    SENSITIVE_INS.contains(&ins) || (ins == 0xE2 && cla & 0x80 != 0) || cla & 0x0C != 0
}

/// `Display` of a raw C-APDU as `CLA INS P1 P2` plus its body length, e.g. `80 50 00 02 +12`.
#[derive(Clone, Copy)]
pub struct Header<'a>(pub &'a [u8]);

impl fmt::Display for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = self.0.get(..4).unwrap_or(self.0);
        for (i, b) in header.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02X}")?;
        }
        let body = self.0.len().saturating_sub(4);
        if body > 0 {
            write!(f, " +{body}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `Display` of a whole raw C-APDU in hex, with the body replaced by `[redacted N bytes]` when
/// [`is_sensitive`] says so.
#[derive(Clone, Copy)]
pub struct Command<'a>(pub &'a [u8]);

impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [cla, ins, _, _, _, ..] if is_sensitive(*cla, *ins) => {
                write!(
                    f,
                    "{} [redacted {} bytes]",
                    Hex(&self.0[..4]),
                    self.0.len() - 4
                )
            }
            _ => write!(f, "{}", Hex(self.0)),
        }
    }
}

impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Uppercase hex without separators.
#[derive(Clone, Copy)]
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The status word of a raw R-APDU as four hex digits, or `----` when it is too short.
pub fn status_of(response: &[u8]) -> StatusText {
    match response {
        [.., sw1, sw2] => StatusText(Some([*sw1, *sw2])),
        _ => StatusText(None),
    }
}

/// See [`status_of`].
#[derive(Clone, Copy)]
pub struct StatusText(Option<[u8; 2]>);

impl fmt::Display for StatusText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some([a, b]) => write!(f, "{a:02X}{b:02X}"),
            None => f.write_str("----"),
        }
    }
}

impl fmt::Debug for StatusText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_data_is_redacted() {
        let verify = [0x00, 0x20, 0x00, 0x00, 0x03, 0x12, 0x34, 0x56];
        assert_eq!(Command(&verify).to_string(), "00200000 [redacted 4 bytes]");
        assert_eq!(Header(&verify).to_string(), "00 20 00 00 +4");
    }

    #[test]
    fn ordinary_command_is_shown() {
        let balance = [0x80, 0x5C, 0x00, 0x02, 0x04];
        assert_eq!(Command(&balance).to_string(), "805C000204");
        assert_eq!(status_of(&[0x00, 0x90, 0x00]).to_string(), "9000");
        assert_eq!(status_of(&[0x90]).to_string(), "----");
    }

    #[test]
    fn secure_messaging_and_store_data_are_redacted() {
        assert!(is_sensitive(0x84, 0xD6));
        assert!(is_sensitive(0x04, 0xD6));
        assert!(is_sensitive(0x80, 0xE2));
        assert!(!is_sensitive(0x00, 0xE2));
        assert!(!is_sensitive(0x80, 0x54));
    }
}
