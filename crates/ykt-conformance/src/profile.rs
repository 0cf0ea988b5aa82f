//! The sample's declared profile: the optional features it claims (conformance.md §1.2, after
//! GlobalPlatform's declared configuration). An item runs only if the profile declares every
//! feature the item lists; otherwise its verdict is N/A.

use std::collections::BTreeSet;
use std::fmt;

/// Every feature tag an item or a profile may name, with what declaring it means.
pub const FEATURES: &[(&str, &str)] = &[
    ("ep", "the transit e-purse at A000000632010105 (e-purse.md)"),
    ("alg-3des", "e-purse keys under 3DES (algorithm id 00)"),
    (
        "alg-sm4",
        "e-purse keys under SM4 with the brief's rules (algorithm id 04, L)",
    ),
    ("t2", "the second ticket type at A000000632010106 (L)"),
    (
        "tearing",
        "power can be cut at any persistent write (simulator only)",
    ),
    (
        "fixture",
        "a card can be personalised per item, e.g. with counters near FFFF (simulator only)",
    ),
    ("te", "a terminal under test with the e-purse flows"),
    (
        "gp",
        "the GP issuer security domain at A000000151000000 with the public GP test keys 40..4F at KVN 30",
    ),
    (
        "isd-scp03",
        "the ISD's channel is SCP03 i=70, AES-128 (the default with gp)",
    ),
    ("isd-scp02", "the ISD's channel is SCP02 i=55, 3DES"),
    ("isd-sm4", "the ISD's channel is the SM4 channel, i=70 (L)"),
    (
        "gp-content",
        "the ISD can load and install: its library holds the e-purse package A0000006320101 v1.0 (module A000000632010101) besides the security-domain package, and it holds the test token and receipt keys (crate::isd)",
    ),
    ("nfcqr", "the NFC QR applet at A000000632515201 (L)"),
    (
        "qr-terminal",
        "a QR scanning terminal: ykt_qr::Verifier with its record store (in process)",
    ),
    (
        "tsm",
        "a TSM with the business API of tsm-gp.md §7 (signed envelopes, POST /v1/{msg_type}) at the target URL",
    ),
    (
        "tsm-test-keys",
        "the TSM uses the PUBLIC test key hierarchy (ykt_tsm::vault::test_keys), so the harness's blank SEs are keyed for it",
    ),
    (
        "tsm-test-payments",
        "the TSM accepts the built-in test payment provider (TestPayReq, pay channel 99)",
    ),
    (
        "client",
        "the client software is this project's wallet SDK (ykt-wallet), driven by the harness against the TSM at the target URL",
    ),
];

/// The profile `ykt se serve` presents (the §8 3DES test card with the test ISD, SCP03, and the
/// library INSTALL draws on) and that `--target pcsc:..` assumes unless `--profile` says
/// otherwise.
pub const SAMPLE_SERVE_3DES: &str = "ep,alg-3des,gp,isd-scp03,gp-content";
/// Everything the in-process simulator offers.
pub const SAMPLE_SIM: &str = "ep,alg-3des,alg-sm4,t2,tearing,fixture,gp,isd-scp03,gp-content,nfcqr";
/// The terminal target: the `ykt_terminal` flows, with the second-ticket priority rule
/// (`ykt_terminal::ticket`).
pub const SAMPLE_TERMINAL: &str = "te,t2";
/// The QR scanning terminal target: `ykt_qr::Verifier` and `ykt_qr::store::RecordStore`.
pub const SAMPLE_QR_TERMINAL: &str = "qr-terminal";

/// `--target tsm:URL`: a TSM run as `ykt tsm serve --test-keys --test-payments`.
pub const SAMPLE_TSM: &str = "tsm,tsm-test-keys,tsm-test-payments";
/// `--target client:URL`: the wallet SDK against such a TSM.
pub const SAMPLE_CLIENT: &str = "client,tsm-test-keys,tsm-test-payments";

/// A set of feature tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile(BTreeSet<String>);

/// A feature tag that is not in [`FEATURES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFeature(pub String);

impl fmt::Display for UnknownFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = FEATURES.iter().map(|(n, _)| *n).collect();
        write!(
            f,
            "unknown profile feature {:?} (known: {})",
            self.0,
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownFeature {}

/// Whether `tag` is a known feature.
pub fn is_known(tag: &str) -> bool {
    FEATURES.iter().any(|(n, _)| *n == tag)
}

impl Profile {
    /// Parses a comma-separated list such as `ep,alg-3des`; empty entries are ignored.
    pub fn parse(text: &str) -> Result<Profile, UnknownFeature> {
        let mut set = BTreeSet::new();
        for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if !is_known(tag) {
                return Err(UnknownFeature(tag.to_owned()));
            }
            set.insert(tag.to_owned());
        }
        Ok(Profile(set))
    }

    /// Whether `tag` is declared.
    pub fn has(&self, tag: &str) -> bool {
        self.0.contains(tag)
    }

    /// The tags of `needed` that are not declared.
    pub fn missing<'a>(&self, needed: &'a [String]) -> Vec<&'a str> {
        needed
            .iter()
            .filter(|t| !self.has(t))
            .map(String::as_str)
            .collect()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tags: Vec<&str> = self.0.iter().map(String::as_str).collect();
        f.write_str(&tags.join(","))
    }
}
