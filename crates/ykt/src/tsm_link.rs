//! How this process reaches a TSM (client.md §6.4, Transport), the one place the choice is made
//! for the wallet, the wallet's local API, the SP-TSM's link to the SEI-TSM, the conformance
//! harness and the demo:
//!
//! - `https://HOST:PORT` with one or more SPKI pins (`sha256/<base64>`, the current key and a
//!   backup): TLS 1.3 (rustls), the server's key checked against the pins in the handshake,
//!   before any request byte; a miss is fatal (`ykt_tsm_service::http::tls`). This is the
//!   brief's profile B.
//! - `http://HOST:PORT` only with `--danger-insecure-http`: plain HTTP, for tests on loopback.
//!
//! The brief's profile A, TLCP (GB/T 38636) with SM2 sign and encryption certificates, needs
//! Tongsuo, which this machine's package sources do not carry, and rustls has no ShangMi cipher
//! suites: it is not provided. The application layer is signed and replay-guarded with SM2/SM3
//! either way (client.md §6.3); TLS adds confidentiality of the messages on the wire.
//!
//! A wallet directory keeps the address in `tsm.url`: the URL on the first line, then one
//! `pin sha256/…` line per pin, or the line `danger-insecure-http`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};
use ykt_tsm_service::TsmClient;
use ykt_tsm_service::http::tls::SpkiPin;

/// The file in a wallet directory that holds the TSM's address and pins.
pub const ADDRESS_FILE: &str = "tsm.url";

/// The line of [`ADDRESS_FILE`] that allows plain HTTP.
const INSECURE_LINE: &str = "danger-insecure-http";

/// The TSM's address and how its identity is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsmAddress {
    url: String,
    security: Security,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Security {
    /// TLS 1.3, the server's key one of these.
    Pinned(Vec<SpkiPin>),
    /// Plain HTTP, asked for with `--danger-insecure-http`.
    InsecurePlain,
}

impl TsmAddress {
    /// From the command line: `url` with `pins` (`https://`) or the danger flag (`http://`).
    pub fn new(url: &str, pins: &[String], danger_insecure_http: bool) -> anyhow::Result<Self> {
        let url = url.trim().trim_end_matches('/').to_string();
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("https") => {
                if danger_insecure_http {
                    bail!("--danger-insecure-http is for http:// addresses; {url} is https://");
                }
                if pins.is_empty() {
                    bail!(
                        "{url}: give the TSM's TLS key pin with --tsm-pin sha256/… (printed by \
                         `ykt tsm serve` and `ykt tsm pin`; a second --tsm-pin for the backup key)"
                    );
                }
                let pins = pins
                    .iter()
                    .map(|p| SpkiPin::parse(p).with_context(|| format!("the pin {p:?}")))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok(Self {
                    url,
                    security: Security::Pinned(pins),
                })
            }
            Some("http") => {
                if !danger_insecure_http {
                    bail!(
                        "{url} is plain HTTP: the TSM's messages would cross the network unencrypted. \
                         Use https:// with --tsm-pin, or --danger-insecure-http for a test on this machine"
                    );
                }
                if !pins.is_empty() {
                    bail!("a pin checks a TLS key; {url} is plain http://");
                }
                Ok(Self {
                    url,
                    security: Security::InsecurePlain,
                })
            }
            _ => bail!(
                "the TSM address must be https://HOST:PORT (or http:// for tests), not {url:?}"
            ),
        }
    }

    /// TLS with these pins (the demo, the conformance harness's own TSM).
    pub fn pinned(url: &str, pins: Vec<SpkiPin>) -> Self {
        Self {
            url: url.trim_end_matches('/').to_string(),
            security: Security::Pinned(pins),
        }
    }

    /// The URL (`https://HOST:PORT` or `http://HOST:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The pins (empty for plain HTTP).
    pub fn pins(&self) -> &[SpkiPin] {
        match &self.security {
            Security::Pinned(pins) => pins,
            Security::InsecurePlain => &[],
        }
    }

    /// A client of the TSM there.
    pub fn client(&self) -> anyhow::Result<TsmClient> {
        match &self.security {
            Security::Pinned(pins) => TsmClient::with_tls(&self.url, pins),
            Security::InsecurePlain => TsmClient::danger_plain_http(&self.url),
        }
        .with_context(|| format!("the TSM address {}", self.url))
    }

    /// The text of [`ADDRESS_FILE`].
    fn to_file_text(&self) -> String {
        let mut text = format!("{}\n", self.url);
        match &self.security {
            Security::Pinned(pins) => {
                for pin in pins {
                    let _ = writeln!(text, "pin {pin}");
                }
            }
            Security::InsecurePlain => text.push_str(INSECURE_LINE),
        }
        text
    }

    /// Writes [`ADDRESS_FILE`] in `dir`.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(ADDRESS_FILE);
        fs::write(&path, self.to_file_text()).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads [`ADDRESS_FILE`] in `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(ADDRESS_FILE);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_file_text(&text).with_context(|| format!("{}", path.display()))
    }

    fn from_file_text(text: &str) -> anyhow::Result<Self> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let url = lines.next().context("no TSM address")?;
        let mut pins = Vec::new();
        let mut insecure = false;
        for line in lines {
            if let Some(pin) = line.strip_prefix("pin ") {
                pins.push(pin.trim().to_string());
            } else if line == INSECURE_LINE {
                insecure = true;
            } else {
                bail!("unexpected line {line:?} (expected `pin sha256/…` or `{INSECURE_LINE}`)");
            }
        }
        Self::new(url, &pins, insecure).context(
            "a wallet enrolled before TLS: enrol again with an https:// address and --tsm-pin, \
             or add the line danger-insecure-http for a test TSM",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn https_needs_a_pin_and_http_the_danger_flag() {
        assert!(TsmAddress::new("https://tsm.example:8480", &[], false).is_err());
        assert!(TsmAddress::new("https://tsm.example:8480", &[PIN.into()], true).is_err());
        assert!(TsmAddress::new("http://127.0.0.1:8480", &[], false).is_err());
        assert!(TsmAddress::new("http://127.0.0.1:8480", &[PIN.into()], true).is_err());
        assert!(TsmAddress::new("ftp://x", &[], true).is_err());
        assert!(
            TsmAddress::new("https://tsm.example:8480", &["sha256/short".into()], false).is_err()
        );
        let a = TsmAddress::new("https://tsm.example:8480/", &[PIN.into()], false).unwrap();
        assert_eq!(a.url(), "https://tsm.example:8480");
        assert_eq!(a.pins().len(), 1);
        assert_ne!(a.security, Security::InsecurePlain);
        let plain = TsmAddress::new("http://127.0.0.1:1", &[], true).unwrap();
        assert!(plain.pins().is_empty());
        assert_eq!(plain.security, Security::InsecurePlain);
    }

    #[test]
    fn the_address_file_round_trips() {
        for a in [
            TsmAddress::new("https://tsm.example:8480", &[PIN.into(), PIN.into()], false).unwrap(),
            TsmAddress::new("http://127.0.0.1:8480", &[], true).unwrap(),
        ] {
            assert_eq!(TsmAddress::from_file_text(&a.to_file_text()).unwrap(), a);
        }
        // A file of an older wallet (the URL alone, plain HTTP) is refused with what to do.
        let old = TsmAddress::from_file_text("http://127.0.0.1:8480\n").unwrap_err();
        assert!(format!("{old:#}").contains("enrol again"), "{old:#}");
        assert!(TsmAddress::from_file_text("https://x\nbogus\n").is_err());
        assert!(TsmAddress::from_file_text("").is_err());
    }
}
