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
/// The brief's version `80` code (§6, 364 bytes, hex), with the brief's own nonces.
pub const CODE_80_HEX: &str = "800169240101000001129999000112300000010404002102de41df510b23b8f63c3cfe30e50719b72acbb2b7d23b329f\
e9c79f3ffeec804badfb6603669e189306330dd1d19a5daa61dd01d2e6dc82b7677f6cedd58429f9e16457179e83522a\
d3ea8213c5095f4c9604ca2ca32ecdf01b255a490313f52f504159303030303030303030303030319999000112345678\
901f9999000199990002010007d0037f4a4bd7fbf2c39b71547298870555bae44a702d8475ff69633c620d9a73030369\
25d280003c20000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f15f1f5812149aa1e8bf0\
3286ddd4f2e59e0c00a40017af8e5862a1d3169eab1c123c1efb05a2dd480c79fc0e05640c321528b91861818f7a39aa\
67ff3ad6cb3a5c69248100156c780f833e51384f242a691f4b08ea79e9890a81c4af7f65100e6934ae6313d7d4be9410\
9b166b2a3e1a50043d698313dbfac5c138461ed1651ceb818d517509";

/// The brief's version `81` code (§6, hex).
pub const CODE_81_HEX: &str = "810169240101000001129999000112300000010404002102de41df510b23b8f63c3cfe30e50719b72acbb2b7d23b329f\
e9c79f3ffeec804bf5d5407cb9edd1efaae08f25540612fb98cbe847b7ad05943858b65189170dd64c31235e4c15cb79\
6c6e570852152aa21feadfbdcb1e446c3ca44b389c713c43504159303030303030303030303030319999000112345678\
901f9999000199990002010007d0037f4a4bd7fbf2c39b71547298870555bae44a702d8475ff69633c620d9a73030369\
25d280003c20000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f15a0d34c6108546f2972\
7bbc7b8f66b3e740b57527a6090a5c81ab86c9f1c7426de29e518ee221bad076b30b45bb70b3defa7f3a5091242137ba\
a74a4142cb05b26924810015b528c140a8365ecaa1b878679175f38a4815dc1a27248f6ab81407adb1d14b767499d614\
9625a1f64a0c1c30b832f1b7844941c1b5f574eaca7c19ee173f5fa3";

/// The brief's root key record (§6, index `01`, self-signed, hex).
pub const ROOT_RECORD_HEX: &str = "2101010000a000000632011230040040d10c773d617e7743b6179d68c43f40f419e45df2bf5572801dfdc5006d34cbd2\
8cc0adb36926559d27e5b515fdcec9ed144e94cd317177c7675a28f461323623d73898bc7db6ed355173edc79e1c0e21\
b8618ecfd31b3130143cb0700e9fca8d4a22e6945f90103cfeafcee15125e38936cab50e39974d4f1a14d3ca8f0fa5db";

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
