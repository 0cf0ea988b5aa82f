//! The sealed local state (client.md §6.5): records encrypted with SM4-GCM under a random
//! 128-bit data key (DEK), the DEK wrapped by a key-encryption key (KEK) derived from the user's
//! passphrase with PBKDF2-HMAC-SM3 (RFC 8018 §5.2, GB/T 32905 SM3).
//!
//! Bytes in, bytes out: the caller writes the file (atomically: temporary file, fsync, rename).
//!
//! ```text
//!  magic "YKTWSEAL" (8) ‖ version (1) ‖ kdf = 01 PBKDF2-HMAC-SM3 (1) ‖ iterations (4, BE) ‖ salt (16)
//!  ‖ DEK nonce (12) ‖ wrapped DEK (16) ‖ tag (16)            AAD = the header before it (30 bytes)
//!  ‖ record count (2, BE)
//!  ‖ per record: type (1) ‖ id length (1) ‖ id ‖ nonce (12) ‖ length (4, BE) ‖ ciphertext ‖ tag
//!                                            AAD = version ‖ type ‖ id length ‖ id
//!  ‖ SM3 of everything before (32)
//! ```
//!
//! The trailing SM3 is an unkeyed check: it finds accidental damage (a torn copy, a flipped
//! bit) before any key is derived, and names it [`SealError::StoreCorrupt`]. Authenticity comes
//! from GCM: a record changed together with a recomputed checksum fails its tag (also
//! `StoreCorrupt`), and a header changed that way fails the DEK unwrap, which cannot be told
//! apart from a wrong passphrase ([`SealError::WrongPassphrase`]).

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{AesGcm, Nonce};
use hmac::Mac as _;
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

type Sm4Gcm = AesGcm<sm4::Sm4, U12>;
type HmacSm3 = hmac::Hmac<sm3::Sm3>;

/// The file's magic.
pub const MAGIC: &[u8; 8] = b"YKTWSEAL";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// The KDF id of PBKDF2-HMAC-SM3.
pub const KDF_PBKDF2_HMAC_SM3: u8 = 1;
/// PBKDF2 iterations (client.md §6.5: at least 100 000). A file that names fewer is refused,
/// so a changed header cannot weaken the KDF.
pub const PBKDF2_ITERATIONS: u32 = 100_000;
const _: () = assert!(PBKDF2_ITERATIONS >= 100_000, "client.md §6.5");
/// Salt length (client.md §6.5).
pub const SALT_LEN: usize = 16;
/// GCM nonce length (96 bits).
pub const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const DEK_LEN: usize = 16;
const HEADER_LEN: usize = 8 + 1 + 1 + 4 + SALT_LEN;
const CHECKSUM_LEN: usize = 32;
/// The largest record the format carries (16 MiB).
pub const MAX_RECORD_LEN: usize = 16 << 20;

/// Why a sealed file could not be opened or made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The file is damaged or was changed (E_STORE_CORRUPT).
    #[error("the wallet's local state is damaged ({0})")]
    StoreCorrupt(Corruption),
    /// The passphrase does not unwrap the data key.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// A record is longer than [`MAX_RECORD_LEN`], its id longer than 255 bytes, or there are
    /// more than 65 535 records.
    #[error("a record is too large for the sealed format")]
    TooLarge,
}

/// Which check of a sealed file failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// Shorter than its structure says.
    Truncated,
    /// Not a sealed wallet file.
    Magic,
    /// A format version or KDF this build does not read, or fewer than [`PBKDF2_ITERATIONS`].
    Parameters,
    /// The trailing SM3 does not match.
    Checksum,
    /// A record's tag does not verify (changed ciphertext, nonce, type or id).
    Record,
    /// Bytes after the last record.
    TrailingBytes,
}

impl core::fmt::Display for Corruption {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated",
            Self::Magic => "not a wallet file",
            Self::Parameters => "unsupported parameters",
            Self::Checksum => "checksum mismatch",
            Self::Record => "a record does not authenticate",
            Self::TrailingBytes => "trailing bytes",
        })
    }
}

/// One sealed record: a type, an id (both authenticated), and the plaintext, wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The record type (see `state::record_type`).
    pub kind: u8,
    /// The record id (at most 255 bytes; never a card number).
    pub id: Vec<u8>,
    /// The plaintext.
    pub data: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for Record {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Record({}, {:?}, {} bytes [redacted])",
            self.kind,
            String::from_utf8_lossy(&self.id),
            self.data.len()
        )
    }
}

/// PBKDF2 (RFC 8018 §5.2) with HMAC-SM3 as the PRF: `out.len()` bytes of key from `passphrase`,
/// `salt` and `iterations` (at least 1).
pub fn pbkdf2_hmac_sm3(passphrase: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    // HMAC takes a key of any length, so keying never fails; an empty key is keyed as zeros.
    let prf = match HmacSm3::new_from_slice(passphrase) {
        Ok(prf) => prf,
        Err(_) => return out.fill(0),
    };
    for (i, block) in out.chunks_mut(32).enumerate() {
        // RFC 8018 §5.2 step 3: U_1 = PRF(P, S ‖ INT(i)), i from 1.
        let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let mut mac = prf.clone();
        mac.update(salt);
        mac.update(&index.to_be_bytes());
        let mut u: Zeroizing<[u8; 32]> = Zeroizing::new(mac.finalize().into_bytes().into());
        let mut t = u.clone();
        for _ in 1..iterations.max(1) {
            let mut mac = prf.clone();
            mac.update(u.as_ref());
            u = Zeroizing::new(mac.finalize().into_bytes().into());
            t.iter_mut().zip(u.iter()).for_each(|(a, b)| *a ^= b);
        }
        block.copy_from_slice(&t[..block.len()]);
    }
}

fn cipher(key: &[u8; 16]) -> Sm4Gcm {
    Sm4Gcm::new(&(*key).into())
}

/// The unwrapped data key of one state file with its KDF parameters: opening a file gives it,
/// and it seals the next version of the file without deriving the KEK again. Each copy wipes
/// its data key on drop.
#[derive(Clone)]
pub struct SealKey {
    dek: Zeroizing<[u8; DEK_LEN]>,
    header: [u8; HEADER_LEN],
    dek_nonce: [u8; NONCE_LEN],
    wrapped: Vec<u8>,
}

impl core::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SealKey([redacted])")
    }
}

fn header(iterations: u32, salt: &[u8; SALT_LEN]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8] = FORMAT_VERSION;
    h[9] = KDF_PBKDF2_HMAC_SM3;
    h[10..14].copy_from_slice(&iterations.to_be_bytes());
    h[14..].copy_from_slice(salt);
    h
}

fn kek(passphrase: &[u8], header: &[u8; HEADER_LEN]) -> Zeroizing<[u8; 16]> {
    let iterations = u32::from_be_bytes([header[10], header[11], header[12], header[13]]);
    let mut kek = Zeroizing::new([0u8; 16]);
    pbkdf2_hmac_sm3(passphrase, &header[14..], iterations, kek.as_mut());
    kek
}

impl SealKey {
    /// A fresh random DEK wrapped under the passphrase (new salt, [`PBKDF2_ITERATIONS`]).
    pub fn create<R: CryptoRng + ?Sized>(passphrase: &[u8], rng: &mut R) -> SealKey {
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let mut dek = Zeroizing::new([0u8; DEK_LEN]);
        rng.fill_bytes(dek.as_mut());
        let mut dek_nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut dek_nonce);
        let header = header(PBKDF2_ITERATIONS, &salt);
        let kek = kek(passphrase, &header);
        let wrapped = cipher(&kek)
            .encrypt(
                &Nonce::from(dek_nonce),
                Payload {
                    msg: dek.as_ref(),
                    aad: &header,
                },
            )
            // Encryption of 16 bytes cannot exceed GCM's length limit.
            .unwrap_or_default();
        SealKey {
            dek,
            header,
            dek_nonce,
            wrapped,
        }
    }

    /// Seals `records` (fresh nonces from `rng`).
    pub fn seal<R: CryptoRng + ?Sized>(
        &self,
        records: &[Record],
        rng: &mut R,
    ) -> Result<Vec<u8>, SealError> {
        let count = u16::try_from(records.len()).map_err(|_| SealError::TooLarge)?;
        let mut out = Vec::new();
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.dek_nonce);
        out.extend_from_slice(&self.wrapped);
        out.extend_from_slice(&count.to_be_bytes());
        let cipher = cipher(&self.dek);
        for record in records {
            let id_len = u8::try_from(record.id.len()).map_err(|_| SealError::TooLarge)?;
            if record.data.len() > MAX_RECORD_LEN {
                return Err(SealError::TooLarge);
            }
            let mut nonce = [0u8; NONCE_LEN];
            rng.fill_bytes(&mut nonce);
            let aad = record_aad(record.kind, &record.id);
            let ct = cipher
                .encrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: &record.data,
                        aad: &aad,
                    },
                )
                .map_err(|_| SealError::TooLarge)?;
            out.push(record.kind);
            out.push(id_len);
            out.extend_from_slice(&record.id);
            out.extend_from_slice(&nonce);
            let len = u32::try_from(ct.len()).map_err(|_| SealError::TooLarge)?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&ct);
        }
        let sum = ykt_crypto::sm3(&out);
        out.extend_from_slice(&sum);
        Ok(out)
    }

    /// Opens a sealed file with the passphrase: the key (for the next [`Self::seal`]) and the
    /// records, in order.
    pub fn open(passphrase: &[u8], file: &[u8]) -> Result<(SealKey, Vec<Record>), SealError> {
        let parsed = parse(file)?;
        let kek = kek(passphrase, &parsed.key.header);
        let mut dek = Zeroizing::new(
            cipher(&kek)
                .decrypt(
                    &Nonce::from(parsed.key.dek_nonce),
                    Payload {
                        msg: &parsed.key.wrapped,
                        aad: &parsed.key.header,
                    },
                )
                .map_err(|_| SealError::WrongPassphrase)?,
        );
        let mut key = parsed.key;
        key.dek.copy_from_slice(&dek);
        dek.zeroize();
        let records = key.open_records(&parsed.records)?;
        Ok((key, records))
    }

    /// Opens a file sealed under this key (this key sealed it, or the file it was opened from
    /// was) without the passphrase: no KEK is derived. A file whose header or wrapped data key
    /// differs (made with another passphrase, salt or data key) is refused as
    /// [`SealError::WrongPassphrase`]: this key is not its key.
    pub fn reopen(&self, file: &[u8]) -> Result<Vec<Record>, SealError> {
        let parsed = parse(file)?;
        let same = parsed.key.header == self.header
            && parsed.key.dek_nonce == self.dek_nonce
            && parsed.key.wrapped == self.wrapped;
        if !same {
            return Err(SealError::WrongPassphrase);
        }
        self.open_records(&parsed.records)
    }

    fn open_records(&self, raw: &[RawRecord<'_>]) -> Result<Vec<Record>, SealError> {
        let cipher = cipher(&self.dek);
        raw.iter()
            .map(|r| {
                let data = cipher
                    .decrypt(
                        &Nonce::from(r.nonce),
                        Payload {
                            msg: r.ciphertext,
                            aad: &record_aad(r.kind, r.id),
                        },
                    )
                    .map_err(|_| SealError::StoreCorrupt(Corruption::Record))?;
                Ok(Record {
                    kind: r.kind,
                    id: r.id.to_vec(),
                    data: Zeroizing::new(data),
                })
            })
            .collect()
    }
}

fn record_aad(kind: u8, id: &[u8]) -> Vec<u8> {
    let mut aad = vec![FORMAT_VERSION, kind];
    aad.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(id);
    aad
}

struct RawRecord<'a> {
    kind: u8,
    id: &'a [u8],
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
}

struct Parsed<'a> {
    key: SealKey,
    records: Vec<RawRecord<'a>>,
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SealError> {
        if self.0.len() < n {
            return Err(SealError::StoreCorrupt(Corruption::Truncated));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SealError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

fn parse(file: &[u8]) -> Result<Parsed<'_>, SealError> {
    if file.len() < HEADER_LEN + CHECKSUM_LEN {
        return Err(SealError::StoreCorrupt(Corruption::Truncated));
    }
    if &file[..8] != MAGIC {
        return Err(SealError::StoreCorrupt(Corruption::Magic));
    }
    let (body, sum) = file.split_at(file.len() - CHECKSUM_LEN);
    if ykt_crypto::sm3(body)[..] != sum[..] {
        return Err(SealError::StoreCorrupt(Corruption::Checksum));
    }
    let mut c = Cursor(body);
    let header: [u8; HEADER_LEN] = c.array()?;
    let iterations = u32::from_be_bytes([header[10], header[11], header[12], header[13]]);
    if header[8] != FORMAT_VERSION
        || header[9] != KDF_PBKDF2_HMAC_SM3
        || iterations < PBKDF2_ITERATIONS
    {
        return Err(SealError::StoreCorrupt(Corruption::Parameters));
    }
    let dek_nonce = c.array()?;
    let wrapped = c.take(DEK_LEN + TAG_LEN)?.to_vec();
    let count = u16::from_be_bytes(c.array()?);
    let mut records = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let [kind, id_len] = c.array()?;
        let id = c.take(usize::from(id_len))?;
        let nonce = c.array()?;
        let len = usize::try_from(u32::from_be_bytes(c.array()?))
            .map_err(|_| SealError::StoreCorrupt(Corruption::Truncated))?;
        if !(TAG_LEN..=MAX_RECORD_LEN + TAG_LEN).contains(&len) {
            return Err(SealError::StoreCorrupt(Corruption::Truncated));
        }
        let ciphertext = c.take(len)?;
        records.push(RawRecord {
            kind,
            id,
            nonce,
            ciphertext,
        });
    }
    if !c.0.is_empty() {
        return Err(SealError::StoreCorrupt(Corruption::TrailingBytes));
    }
    Ok(Parsed {
        key: SealKey {
            dek: Zeroizing::new([0u8; DEK_LEN]),
            header,
            dek_nonce,
            wrapped,
        },
        records,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::testing::TestRng;

    fn records() -> Vec<Record> {
        vec![
            Record {
                kind: 1,
                id: b"device".to_vec(),
                data: Zeroizing::new(vec![0x11; 32]),
            },
            Record {
                kind: 3,
                id: b"card-0".to_vec(),
                data: Zeroizing::new(b"{\"card_no\":\"3100123456789012\"}".to_vec()),
            },
            Record {
                kind: 3,
                id: b"card-1".to_vec(),
                data: Zeroizing::new(b"{\"card_no\":\"3100999988887777\"}".to_vec()),
            },
        ]
    }

    fn fix_checksum(file: &mut [u8]) {
        let n = file.len() - CHECKSUM_LEN;
        let sum = ykt_crypto::sm3(&file[..n]);
        file[n..].copy_from_slice(&sum);
    }

    /// Offsets of the first record's parts in a file from `records()`.
    fn first_record() -> (usize, usize, usize) {
        let start = HEADER_LEN + NONCE_LEN + DEK_LEN + TAG_LEN + 2;
        let id = start + 2;
        let nonce = id + 6;
        let ct = nonce + NONCE_LEN + 4;
        (id, nonce, ct)
    }

    // A record changed behind the checksum's back (checksum recomputed) fails its GCM tag: in
    // the id (AAD), the type (AAD), the nonce, the ciphertext and the tag.
    #[test]
    fn gcm_catches_what_the_checksum_is_fixed_over() {
        let mut rng = TestRng::new(1);
        let key = SealKey::create(b"correct horse", &mut rng);
        let file = key.seal(&records(), &mut rng).unwrap();
        let (id, nonce, ct) = first_record();
        let tag = ct + 32; // 32 bytes of plaintext in the first record
        for (what, at) in [
            ("type", id - 2),
            ("id", id),
            ("nonce", nonce),
            ("ciphertext", ct),
            ("tag", tag),
        ] {
            let mut bad = file.clone();
            bad[at] ^= 0x01;
            fix_checksum(&mut bad);
            assert_eq!(
                SealKey::open(b"correct horse", &bad).map(|_| ()),
                Err(SealError::StoreCorrupt(Corruption::Record)),
                "{what}"
            );
        }
        // The wrapped DEK or the salt changed: the unwrap fails, as for a wrong passphrase.
        for at in [HEADER_LEN - 1, HEADER_LEN + NONCE_LEN] {
            let mut bad = file.clone();
            bad[at] ^= 0x80;
            fix_checksum(&mut bad);
            assert_eq!(
                SealKey::open(b"correct horse", &bad).map(|_| ()),
                Err(SealError::WrongPassphrase)
            );
        }
    }

    #[test]
    fn a_key_reopens_its_own_files_only() {
        let mut rng = TestRng::new(3);
        let key = SealKey::create(b"correct horse", &mut rng);
        let first = key.seal(&records(), &mut rng).unwrap();
        let (opened, _) = SealKey::open(b"correct horse", &first).unwrap();
        // A later version of the file, sealed by the key the passphrase opened.
        let mut changed = records();
        changed[2].data = Zeroizing::new(b"{}".to_vec());
        let second = opened.seal(&changed, &mut rng).unwrap();
        assert_eq!(key.reopen(&second).unwrap(), changed);
        assert_eq!(key.clone().reopen(&first).unwrap(), records());
        // A file of another key (same passphrase, new salt and DEK) is not this key's.
        let other = SealKey::create(b"correct horse", &mut rng)
            .seal(&records(), &mut rng)
            .unwrap();
        assert_eq!(key.reopen(&other), Err(SealError::WrongPassphrase));
        // Damage is still damage.
        let mut bad = second.clone();
        let (_, _, ct) = first_record();
        bad[ct] ^= 1;
        assert_eq!(
            key.reopen(&bad),
            Err(SealError::StoreCorrupt(Corruption::Checksum))
        );
        fix_checksum(&mut bad);
        assert_eq!(
            key.reopen(&bad),
            Err(SealError::StoreCorrupt(Corruption::Record))
        );
    }

    #[test]
    fn swapped_records_fail() {
        let mut rng = TestRng::new(2);
        let key = SealKey::create(b"pw", &mut rng);
        let mut recs = records();
        recs[1].data = Zeroizing::new(vec![0x22; 30]);
        recs[2].data = Zeroizing::new(vec![0x33; 30]);
        let file = key.seal(&recs, &mut rng).unwrap();
        // Records 1 and 2 have the same length: swap their nonce ‖ length ‖ ciphertext.
        let (id, _, _) = first_record();
        let r1 = id + 6 + NONCE_LEN + 4 + 32 + TAG_LEN;
        let body = 2 + 6 + NONCE_LEN + 4 + 30 + TAG_LEN;
        let mut bad = file.clone();
        let a = file[r1 + 8..r1 + body].to_vec();
        let b = file[r1 + body + 8..r1 + 2 * body].to_vec();
        bad[r1 + 8..r1 + body].copy_from_slice(&b);
        bad[r1 + body + 8..r1 + 2 * body].copy_from_slice(&a);
        fix_checksum(&mut bad);
        assert_eq!(
            SealKey::open(b"pw", &bad).map(|_| ()),
            Err(SealError::StoreCorrupt(Corruption::Record))
        );
        assert_eq!(SealKey::open(b"pw", &file).unwrap().1, recs);
    }
}
