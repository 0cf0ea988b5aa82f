//! Card production keyed from a production TSM's hierarchy: the ISD master file the SE maker
//! and the SEI-TSM share, and the blank SEs made from it (`ykt se produce`, `ykt se serve
//! --blank --isd-master FILE`).
//!
//! \[PROPOSAL\] (tsm-gp.md §6 leaves open how card production gets the keys it keys SEs with;
//! this is the one place the choice is made): the SE maker and the SEI-TSM share the ISD
//! master key set through a key ceremony file, the **ISD master file**. It is JSON, mode 0600,
//! the SE maker's secret as much as the SEI-TSM's:
//!
//! ```text
//! { "format": "ykt-isd-master/1",
//!   "isd_master": { "kvn": "30", "enc": HEX16, "mac": HEX16, "dek": HEX16,
//!                   "kcv": { "enc": HEX3, "mac": HEX3, "dek": HEX3 } },     AES-128 (SCP03)
//!   "receipt_key": { "key": HEX16, "kcv": HEX3 },                          AES-CMAC receipts
//!   "token_key": HEX65 }            optional: the SEI-TSM's SM2 token verification key (SEC1)
//! ```
//!
//! - The key check values are the first 3 bytes of AES-ECB(key, `01` × 16) (GP's AES check
//!   value); every read checks them, so a mistyped or damaged file is refused before use.
//! - Both secrets travel together because card production puts both on every SE: the card
//!   manager's keys (the master diversified by the SEID, `ykt_tsm::proposals::
//!   ISD_DIVERSIFICATION`) and the receipt key of delegated management (tsm-gp.md §4). The
//!   token verification key is public: the SEI-TSM generates its private half in its KMS.
//! - Either side may make the file: `ykt tsm init --new-isd-master FILE` (written with the
//!   token key), or the SE maker's `ykt se new-isd-master --out FILE`, which `ykt tsm init
//!   --isd-master FILE` imports; the token key init then prints goes to card production as
//!   `--token-key`.
//! - In the TSM the two keys are imported internal: non-exportable from then on
//!   (`ykt_tsm_kms::KmsVault::provision_shared`). The file is the one copy outside a KMS and
//!   belongs in the SE maker's custody.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};
use ykt_card::{Atr, Card, Entropy};
use ykt_crypto::{AesKey, Sm2PublicKey};
use ykt_gp::dm::{ReceiptAlgorithm, TokenKey};
use ykt_kms::SecretBytes;
use ykt_scp::KeySet;
use ykt_tsm::testing::{self, Library};
use ykt_tsm_kms::SharedSeKeys;
use zeroize::{Zeroize as _, Zeroizing};

/// The `format` of an ISD master file this build reads and writes.
pub const FORMAT: &str = "ykt-isd-master/1";

/// The keys of an ISD master file (see the module docs). Values wiped on drop, never printed.
pub struct IsdMasterFile {
    /// The ISD master key set's version.
    pub kvn: u8,
    master: [Zeroizing<[u8; 16]>; 3],
    receipt: Zeroizing<[u8; 16]>,
    /// The SEI-TSM's token verification key (SM2, SEC1), when the file carries it.
    pub token_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for IsdMasterFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsdMasterFile")
            .field("kvn", &self.kvn)
            .field("keys", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// A JSON document holding key values: every string in it wiped on drop.
struct Wiped(Value);

impl Drop for Wiped {
    fn drop(&mut self) {
        fn wipe(v: &mut Value) {
            match v {
                Value::String(s) => s.zeroize(),
                Value::Array(items) => items.iter_mut().for_each(wipe),
                Value::Object(map) => map.values_mut().for_each(wipe),
                _ => {}
            }
        }
        wipe(&mut self.0);
    }
}

/// GP's AES key check value: the first 3 bytes of AES-ECB(key, `01` × 16).
pub fn kcv(key: &[u8; 16]) -> anyhow::Result<[u8; 3]> {
    let block = AesKey::from_slice(key)
        .context("an AES-128 key")?
        .encrypt_block(&[0x01; 16]);
    Ok([block[0], block[1], block[2]])
}

fn random_key() -> anyhow::Result<Zeroizing<[u8; 16]>> {
    let mut key = Zeroizing::new([0u8; 16]);
    getrandom::fill(key.as_mut_slice()).map_err(|e| anyhow::anyhow!("OS random source: {e}"))?;
    Ok(key)
}

impl IsdMasterFile {
    /// A fresh ISD master (AES-128 × 3) at `kvn` and receipt key, from the OS random source.
    pub fn generate(kvn: u8) -> anyhow::Result<Self> {
        Ok(Self {
            kvn,
            master: [random_key()?, random_key()?, random_key()?],
            receipt: random_key()?,
            token_key: None,
        })
    }

    /// Reads and checks the file at `path`: format, lengths, every key check value, the token
    /// key (an SM2 public key) when present. Errors name the field, never a value.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the ISD master file {}", path.display()))?,
        );
        let what = || format!("the ISD master file {}", path.display());
        let doc: Value =
            serde_json::from_str(&text).map_err(|_| anyhow::anyhow!("{} is not JSON", what()))?;
        let doc = Wiped(doc);
        let doc = &doc.0;
        if doc["format"] != FORMAT {
            anyhow::bail!("{}: format is not {FORMAT:?}", what());
        }
        let hex_field =
            |v: &Value, field: &str, len: usize| -> anyhow::Result<Zeroizing<Vec<u8>>> {
                let text = v[field]
                    .as_str()
                    .ok_or_else(|| anyhow::anyhow!("{}: {field} is missing", what()))?;
                let bytes = Zeroizing::new(
                    hex::decode(text.trim())
                        .map_err(|_| anyhow::anyhow!("{}: {field} is not hex", what()))?,
                );
                if bytes.len() != len {
                    anyhow::bail!("{}: {field} is not {len} bytes", what());
                }
                Ok(bytes)
            };
        let key16 = |v: &Value, field: &str, kcv_of: &Value, label: &str| {
            let bytes = hex_field(v, field, 16)?;
            let mut key = Zeroizing::new([0u8; 16]);
            key.copy_from_slice(&bytes);
            let expected = hex_field(kcv_of, field, 3)
                .with_context(|| format!("the check value of {label}"))?;
            if kcv(&key)?.as_slice() != expected.as_slice() {
                anyhow::bail!(
                    "{}: the key check value of {label} does not match (a damaged or mistyped file)",
                    what()
                );
            }
            anyhow::Ok(key)
        };
        let isd = &doc["isd_master"];
        let kvn = hex_field(isd, "kvn", 1)?[0];
        if kvn == 0 || kvn == 0xFF {
            anyhow::bail!("{}: kvn {kvn:02X} is not a key version", what());
        }
        let kcvs = &isd["kcv"];
        let master = [
            key16(isd, "enc", kcvs, "isd_master.enc")?,
            key16(isd, "mac", kcvs, "isd_master.mac")?,
            key16(isd, "dek", kcvs, "isd_master.dek")?,
        ];
        let receipt_obj = &doc["receipt_key"];
        let receipt_kcv = json!({ "key": receipt_obj["kcv"] });
        let receipt = key16(receipt_obj, "key", &receipt_kcv, "receipt_key")?;
        let token_key = match doc.get("token_key") {
            None | Some(Value::Null) => None,
            Some(_) => {
                let bytes = hex_field(doc, "token_key", 65)?.to_vec();
                Sm2PublicKey::from_sec1_bytes(&bytes)
                    .map_err(|_| anyhow::anyhow!("{}: token_key is not an SM2 key", what()))?;
                Some(bytes)
            }
        };
        Ok(Self {
            kvn,
            master,
            receipt,
            token_key,
        })
    }

    /// Writes the file to `path`, which must not exist (mode 0600).
    pub fn write_new(&self, path: &Path) -> anyhow::Result<()> {
        let h = |k: &[u8]| hex::encode_upper(k);
        let [enc, mac, dek] = &self.master;
        let mut doc = json!({
            "format": FORMAT,
            "warning": "SECRET: the ISD master and receipt key of every SE card production keys \
                        from this file. Keep it in the SE maker's custody; never in the TSM's \
                        directory, a repository or a log.",
            "isd_master": {
                "kvn": h(&[self.kvn]),
                "enc": h(enc.as_slice()),
                "mac": h(mac.as_slice()),
                "dek": h(dek.as_slice()),
                "kcv": { "enc": h(&kcv(enc)?), "mac": h(&kcv(mac)?), "dek": h(&kcv(dek)?) },
            },
            "receipt_key": { "key": h(self.receipt.as_slice()), "kcv": h(&kcv(&self.receipt)?) },
        });
        if let Some(token) = &self.token_key {
            doc["token_key"] = Value::String(h(token));
        }
        let doc = Wiped(doc);
        let text = Zeroizing::new(
            serde_json::to_string_pretty(&doc.0).context("encoding the ISD master file")? + "\n",
        );
        crate::qr::write_secret(path, &text)
    }

    /// The key check values of the ISD master's K-ENC, K-MAC, K-DEK and of the receipt key.
    pub fn check_values(&self) -> anyhow::Result<([[u8; 3]; 3], [u8; 3])> {
        let [enc, mac, dek] = &self.master;
        Ok(([kcv(enc)?, kcv(mac)?, kcv(dek)?], kcv(&self.receipt)?))
    }

    /// The keys for `ykt_tsm_kms::KmsVault::provision_shared`.
    pub fn shared_keys(&self) -> SharedSeKeys {
        SharedSeKeys::new(
            self.kvn,
            [0, 1, 2].map(|i| SecretBytes::from_slice(self.master[i].as_slice())),
            SecretBytes::from_slice(self.receipt.as_slice()),
        )
    }

    fn master_key_set(&self) -> anyhow::Result<KeySet> {
        let k = |i: usize| AesKey::from_slice(self.master[i].as_slice()).context("ISD master");
        Ok(KeySet::aes(self.kvn, k(0)?, k(1)?, k(2)?))
    }

    /// A blank SE from card production with `serial` (the CPLC, CIN and SEID of
    /// `ykt_tsm::testing`'s SE of that serial, its library), its card manager keyed with the
    /// ISD master diversified by the SEID, the receipt key, and the token key `token` (hex,
    /// SEC1) or else the file's; randomness from `entropy`.
    pub fn blank_se(
        &self,
        serial: u8,
        token: Option<&str>,
        entropy: Box<dyn Entropy + Send>,
    ) -> anyhow::Result<Card> {
        let token = match (token, &self.token_key) {
            (Some(text), from_file) => {
                let bytes = hex::decode(text.trim()).context("--token-key is not hex")?;
                if from_file.as_ref().is_some_and(|f| *f != bytes) {
                    anyhow::bail!("--token-key differs from the token key in the ISD master file");
                }
                bytes
            }
            (None, Some(bytes)) => bytes.clone(),
            (None, None) => anyhow::bail!(
                "the ISD master file has no token key: give the SEI-TSM's (printed by \
                 `ykt tsm init`) with --token-key"
            ),
        };
        let token = Sm2PublicKey::from_sec1_bytes(&token)
            .map_err(|_| anyhow::anyhow!("the token key is not an SM2 public key"))?;
        let mut setup = testing::isd_setup(&[serial]).context("the SE's card production data")?;
        let seid = testing::seid_of_serial(&[serial]).context("the SE's SEID")?;
        setup.keys = ykt_tsm::vault::derive_isd_keys(&self.master_key_set()?, &seid)
            .map_err(|_| anyhow::anyhow!("diversifying the ISD master for the SEID"))?;
        setup.token_key = Some(TokenKey::Sm2(token));
        setup.receipt_key = Some((ReceiptAlgorithm::AesCmac, *self.receipt));
        let mut card = Card::new(Atr::default_t1(), entropy);
        card.set_library(Box::new(Library));
        ykt_gp::install_isd(&mut card, &setup).context("installing the card manager (ISD)")?;
        card.power_on();
        Ok(card)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ykt_card::SeededRandom;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ykt-isdm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_written_file_reads_back_and_a_changed_key_is_refused_by_its_check_value() {
        let dir = temp("rw");
        let path = dir.join("isd.json");
        let mut file = IsdMasterFile::generate(0x30).unwrap();
        file.token_key = Some(
            ykt_crypto::Sm2PrivateKey::from_bytes(&ykt_tsm::vault::test_keys::TOKEN_SIGNER)
                .unwrap()
                .public_key()
                .to_bytes()
                .to_vec(),
        );
        file.write_new(&path).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(file.write_new(&path).is_err(), "overwrote the file");
        let back = IsdMasterFile::read(&path).unwrap();
        assert_eq!(back.kvn, 0x30);
        assert_eq!(back.check_values().unwrap(), file.check_values().unwrap());
        assert_eq!(back.token_key, file.token_key);
        assert!(!format!("{back:?}").contains(&hex::encode_upper(*file.receipt)));

        // One key byte changed: its check value no longer matches.
        let text = std::fs::read_to_string(&path).unwrap();
        let enc = hex::encode_upper(*file.master[0]);
        let mut changed = enc.clone().into_bytes();
        changed[0] = if changed[0] == b'0' { b'1' } else { b'0' };
        let bad = dir.join("bad.json");
        std::fs::write(
            &bad,
            text.replace(&enc, &String::from_utf8(changed).unwrap()),
        )
        .unwrap();
        let err = IsdMasterFile::read(&bad).unwrap_err().to_string();
        assert!(err.contains("check value of isd_master.enc"), "{err}");
        assert!(!err.contains(&enc[2..]), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_blank_se_needs_a_token_key_and_its_isd_is_keyed_from_the_file() {
        let file = IsdMasterFile::generate(0x30).unwrap();
        let err = file
            .blank_se(1, None, Box::new(SeededRandom::new(1)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--token-key"), "{err}");
        let token = hex::encode(
            ykt_crypto::Sm2PrivateKey::from_bytes(&ykt_tsm::vault::test_keys::TOKEN_SIGNER)
                .unwrap()
                .public_key()
                .to_bytes(),
        );
        let mut card = file
            .blank_se(1, Some(&token), Box::new(SeededRandom::new(1)))
            .unwrap();
        let r = card
            .transmit(&hex::decode("00A4040008A000000151000000").unwrap())
            .unwrap();
        assert_eq!(&r[r.len() - 2..], [0x90, 0x00]);
        // The card's static keys are the file's master diversified, not the test master's:
        // the SE produced from the test master answers INITIALIZE UPDATE with another
        // card cryptogram for the same host challenge.
        let iu = hex::decode("8050300008 0102030405060708".replace(' ', "")).unwrap();
        let r1 = card.transmit(&iu).unwrap();
        let mut test_card = testing::blank_se(
            &testing::SeOptions::serial(1),
            Box::new(SeededRandom::new(1)),
        )
        .unwrap();
        test_card
            .transmit(&hex::decode("00A4040008A000000151000000").unwrap())
            .unwrap();
        let r2 = test_card.transmit(&iu).unwrap();
        assert_eq!(&r1[r1.len() - 2..], [0x90, 0x00]);
        assert_eq!(&r2[r2.len() - 2..], [0x90, 0x00]);
        assert_eq!(r1[..13], r2[..13], "the same KDD, key info and sequence");
        assert_ne!(r1, r2, "the same card cryptogram");
    }
}
