//! Decoder fuzzing: random bytes, and random mutations of a good code, into every decoder and
//! the verifier never panic; each gives a value or a typed error.

use proptest::prelude::*;
use ykt_qr::testing::GENERATION_TIME;
use ykt_qr::{
    Authorisation, Expiry, IssuerCertificate, QrCode, RootKeyEntry, RootKeyRecord, Verifier,
    VerifierConfig, Version,
};

use crate::common::{code, example, verifier};

fn all_decoders(bytes: &[u8]) {
    let _ = QrCode::decode(bytes);
    let _ = Authorisation::decode(bytes);
    let _ = IssuerCertificate::decode(bytes);
    let _ = RootKeyRecord::decode(bytes);
    let _ = RootKeyEntry::decode(bytes);
    let _ = ykt_qr::verify::WhitelistRecord::decode(bytes);
    if bytes.len() >= 2 {
        let _ = Expiry::from_bcd([bytes[0], bytes[1]]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        all_decoders(&bytes);
        let mut v = Verifier::new(VerifierConfig::default());
        prop_assert!(v.verify(&bytes, 0, u64::from(GENERATION_TIME)).is_err());
    }

    /// Random bytes of exactly the structures' lengths, with the fixed bytes set so that the
    /// decoders get past their first checks.
    #[test]
    fn shaped_random_bytes_never_panic(
        mut bytes in prop::collection::vec(any::<u8>(), 332..=364),
        n in 0u8..=32,
    ) {
        bytes.truncate(332 + usize::from(n));
        bytes.resize(332 + usize::from(n), 0);
        bytes[0] |= 0x80;
        let len = (329 + u16::from(n)).to_be_bytes();
        bytes[1] = len[0];
        bytes[2] = len[1];
        bytes[3] = 0x24;
        bytes[9] = 0x12;
        bytes[19] = 0x04;
        bytes[20] = 0x04;
        bytes[22] = 0x21;
        bytes[197] = n;
        all_decoders(&bytes);
        all_decoders(&bytes[3..120]);
        let mut v = Verifier::new(VerifierConfig::default());
        prop_assert!(v.verify(&bytes, 0, 0).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Mutations of a good code (bytes changed, cut, extended) reach the verifier's later
    /// steps; none panics and none but the field-17 tag byte is accepted.
    #[test]
    fn mutated_codes_never_panic(
        edits in prop::collection::vec((0usize..364, any::<u8>()), 1..4),
        cut in prop::option::of(0usize..400),
        now in prop::option::of(any::<u64>()),
    ) {
        let ex = example(Version::INTEROPERABLE);
        let good = code(&ex, GENERATION_TIME).encode();
        let mut bytes = good.clone();
        for (at, value) in edits {
            bytes[at] = value;
        }
        if let Some(cut) = cut {
            bytes.resize(cut, 0xAA);
        }
        all_decoders(&bytes);
        let now = now.unwrap_or(u64::from(GENERATION_TIME));
        let got = verifier(&ex).verify(&bytes, 100, now);
        let tag = 267 + 32;
        let only_tag = bytes.len() == good.len()
            && (0..good.len()).all(|i| i == tag || bytes[i] == good[i]);
        if got.is_ok() {
            prop_assert!(only_tag || bytes == good);
        }
    }
}
