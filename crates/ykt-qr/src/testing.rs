//! The brief's worked example (qr-code.md §6) as values, for tests, the vector generator and
//! demonstrations. **Test keys only**: the private keys are published in the brief.
//!
//! [`TestRng`] is a seeded generator for reproducible signatures; it is not secure.

use alloc::vec::Vec;
use core::convert::Infallible;

use rand_core::{CryptoRng, TryCryptoRng, TryRng};
use ykt_crypto::Sm2PrivateKey;

use crate::ca::{CertificateRequest, RootCa};
use crate::cert::Expiry;
use crate::code::{Authorisation, QrCode, Version};
use crate::error::Error;
use crate::issuer::{self, Issuer, Terms};
use crate::verify::{Verifier, VerifierConfig, WhitelistEntry};
use crate::wallet;

/// d_root of §6 (SM3("jtqr-example-root-CA") mod (n − 1) + 1). Test key.
pub const ROOT_D: [u8; 32] =
    hex32("b5d5c28e12e1dfef5062b2168c243f776801aa2f32489ff77aa1bb08fa07f16c");
/// d_iss of §6 (label `jtqr-example-issuer`). Test key.
pub const ISSUER_D: [u8; 32] =
    hex32("d49f05cac8a815386cac13b4b4087bcd2533a85165ed740ca7f5a7c593c14ee5");
/// d_usr of §6 (label `jtqr-example-user`). Test key.
pub const USER_D: [u8; 32] =
    hex32("00972f2effce4a23ef40c593c15cf15098a2d4d141b4e6572b023ac331165b1c");

/// Field 5 of §6.
pub const USER_ACCOUNT: [u8; 10] = [0x99, 0x99, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78, 0x90, 0x1F];
/// Field 6 of §6.
pub const ORG_CODE: [u8; 4] = [0x99, 0x99, 0x00, 0x01];
/// Field 7 of §6.
pub const PLATFORM_ID: [u8; 4] = [0x99, 0x99, 0x00, 0x02];
/// Field 9 of §6: 20.00 CNY.
pub const LIMIT: u32 = 0x0007D0;
/// Field 11 of §6: 2025-11-25T16:00Z.
pub const AUTHORISATION_EXPIRY: u32 = 0x6925_D280;
/// Field 12 of §6.
pub const VALIDITY: u16 = 60;
/// Field 16 of §6: 2025-11-24T16:00Z.
pub const GENERATION_TIME: u32 = 0x6924_8100;
/// The ticket type our example whitelist maps the issuer to.
pub const TICKET_TYPE: u8 = 0x01;

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 && 2 * i + 1 < b.len() {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// The root CA of §6: index `01`, expiry `1230`.
pub fn root_ca() -> Result<RootCa, Error> {
    let key = Sm2PrivateKey::from_bytes(&ROOT_D).map_err(Error::Crypto)?;
    Ok(RootCa::new(key, 0x01, december_2030()))
}

fn december_2030() -> Expiry {
    Expiry::clamped(12, 30)
}

/// The issuer certificate request of §6 (issuer `99990001`, expiry `1230`, serial `000001`).
pub fn certificate_request(version: Version) -> CertificateRequest {
    CertificateRequest {
        version,
        issuer_id: ORG_CODE,
        expiry: december_2030(),
        serial: [0x00, 0x00, 0x01],
    }
}

/// The terms of §6: fields 4–9 and 11–14.
pub fn terms() -> Terms {
    Terms {
        payment_account: *b"PAY0000000000001",
        user_account: USER_ACCOUNT,
        org_code: ORG_CODE,
        platform_id: PLATFORM_ID,
        account_type: 0x01,
        limit: LIMIT,
        authorisation_expiry: AUTHORISATION_EXPIRY,
        validity: VALIDITY,
        issuer_data: (0u8..32).collect::<Vec<u8>>(),
    }
}

/// The whole §6 chain for one version: the root CA, the certified issuer, the user's key and
/// the issuer's authorisation of it.
#[derive(Debug, Clone)]
pub struct Example {
    /// The root CA.
    pub root: RootCa,
    /// The issuer with its certificate.
    pub issuer: Issuer,
    /// The user's device key.
    pub user: Sm2PrivateKey,
    /// Fields 1–15.
    pub authorisation: Authorisation,
}

impl Example {
    /// Builds the chain with signatures drawn from `rng`.
    pub fn new<R: CryptoRng>(version: Version, terms: &Terms, rng: &mut R) -> Result<Self, Error> {
        let root = root_ca()?;
        let issuer_key = Sm2PrivateKey::from_bytes(&ISSUER_D).map_err(Error::Crypto)?;
        let cert = root.certify(rng, issuer_key.public_key(), &certificate_request(version))?;
        let issuer = Issuer::new(issuer_key, cert, version)?;
        let user = Sm2PrivateKey::from_bytes(&USER_D).map_err(Error::Crypto)?;
        let authorisation = issuer::authorise(&issuer, user.public_key(), terms, rng)?;
        Ok(Self {
            root,
            issuer,
            user,
            authorisation,
        })
    }

    /// A code generated at `now`.
    pub fn code<R: CryptoRng>(&self, now: u32, rng: &mut R) -> Result<QrCode, Error> {
        wallet::generate(&self.authorisation, &self.user, now, rng)
    }

    /// A verifier holding this root key (for both versions), the issuer on the whitelist
    /// (ticket type [`TICKET_TYPE`]) and its org code as local.
    pub fn verifier<R: CryptoRng>(
        &self,
        config: VerifierConfig,
        rng: &mut R,
    ) -> Result<Verifier, Error> {
        let record = self.root.record(rng)?;
        let mut verifier = Verifier::new(config);
        verifier.add_root_key(Version::INTEROPERABLE, &record)?;
        verifier.add_root_key(Version::LOCAL, &record)?;
        verifier.allow_issuer(WhitelistEntry {
            org_code: ORG_CODE,
            platform_id: PLATFORM_ID,
            ticket_type: TICKET_TYPE,
        });
        verifier.allow_local_org(ORG_CODE);
        Ok(verifier)
    }
}

/// SplitMix64 seeded by the caller: reproducible, **not** a secure generator.
#[derive(Debug, Clone)]
pub struct TestRng(u64);

impl TestRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn step(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl TryRng for TestRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.step() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.step())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.step().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for TestRng {}
