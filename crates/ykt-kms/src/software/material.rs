//! Key material held by the software backend and the operations on it, all through
//! ykt-crypto (and ykt-gp-host for GlobalPlatform diversification).

use ykt_crypto::purse::{self, PurseAlgorithm, PurseKey};
use ykt_crypto::{
    AesKey, BlockCipherKey, RsaPrivateKey, Sm2PrivateKey, Sm2Signature, Sm4Key, TdesKey,
};
use ykt_gp_host::Diversification;
use ykt_scp::{KeySet, StaticKeys};
use zeroize::Zeroizing;

use crate::error::KmsError;
use crate::types::{
    CipherMode, Derivation, GpStaticKey, KeyId, KeyType, MacAlgorithm, PublicKey,
    SignatureAlgorithm, WrapMode,
};

/// A key's value, of one of the supported types. Every variant wipes itself on drop.
#[derive(Clone)]
pub(crate) enum Material {
    Tdes(TdesKey),
    Aes(AesKey),
    Sm4(Sm4Key),
    Sm2(Sm2PrivateKey),
    Rsa(RsaPrivateKey),
}

impl core::fmt::Debug for Material {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Material({:?}, [redacted])", self.key_type())
    }
}

/// Encrypts or decrypts whole blocks in place with the given mode.
fn apply<K: BlockCipherKey>(
    key: &K,
    mode: &CipherMode,
    data: &mut [u8],
    decrypt: bool,
) -> Result<(), KmsError> {
    if !data.len().is_multiple_of(K::BLOCK_SIZE) {
        return Err(KmsError::InvalidInput(
            "data is not a whole number of blocks",
        ));
    }
    match (mode, decrypt) {
        (CipherMode::Ecb, false) => key.ecb_encrypt_in_place(data)?,
        (CipherMode::Ecb, true) => key.ecb_decrypt_in_place(data)?,
        (CipherMode::Cbc { iv }, _) if iv.len() != K::BLOCK_SIZE => {
            return Err(KmsError::InvalidInput("the IV is not one block"));
        }
        (CipherMode::Cbc { iv }, false) => key.cbc_encrypt_in_place(iv, data)?,
        (CipherMode::Cbc { iv }, true) => key.cbc_decrypt_in_place(iv, data)?,
    }
    Ok(())
}

/// The default initial value of RFC 3394 §2.2.3.1.
const KW_IV: [u8; 8] = [0xA6; 8];

/// AES Key Wrap (RFC 3394 §2.2.1), index-based form.
fn aes_kw_wrap(kek: &AesKey, value: &[u8]) -> Result<Vec<u8>, KmsError> {
    if value.len() < 16 || !value.len().is_multiple_of(8) {
        return Err(KmsError::InvalidInput(
            "AES key wrap needs at least 16 bytes, a multiple of 8",
        ));
    }
    let n = value.len() / 8;
    let mut a = KW_IV;
    let mut r = Zeroizing::new(value.to_vec());
    let mut b = Zeroizing::new([0u8; 16]);
    for j in 0..6u64 {
        for i in 0..n {
            b[..8].copy_from_slice(&a);
            b[8..].copy_from_slice(&r[i * 8..i * 8 + 8]);
            *b = kek.encrypt_block(&b);
            let t = (n as u64) * j + (i as u64) + 1;
            a.copy_from_slice(&b[..8]);
            a.iter_mut().zip(t.to_be_bytes()).for_each(|(x, y)| *x ^= y);
            r[i * 8..i * 8 + 8].copy_from_slice(&b[8..]);
        }
    }
    let mut out = a.to_vec();
    out.extend_from_slice(&r);
    Ok(out)
}

/// AES Key Unwrap (RFC 3394 §2.2.2); an integrity failure is [`KmsError::InvalidMaterial`]
/// of the expected type, decided by the caller.
fn aes_kw_unwrap(kek: &AesKey, wrapped: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return None;
    }
    let n = wrapped.len() / 8 - 1;
    let mut a = [0u8; 8];
    a.copy_from_slice(&wrapped[..8]);
    let mut r = Zeroizing::new(wrapped[8..].to_vec());
    let mut b = Zeroizing::new([0u8; 16]);
    for j in (0..6u64).rev() {
        for i in (0..n).rev() {
            let t = (n as u64) * j + (i as u64) + 1;
            a.iter_mut().zip(t.to_be_bytes()).for_each(|(x, y)| *x ^= y);
            b[..8].copy_from_slice(&a);
            b[8..].copy_from_slice(&r[i * 8..i * 8 + 8]);
            *b = kek.decrypt_block(&b);
            a.copy_from_slice(&b[..8]);
            r[i * 8..i * 8 + 8].copy_from_slice(&b[8..]);
        }
    }
    ykt_crypto::ct_eq(&a, &KW_IV).then_some(r)
}

/// The cipher mode of an ECB or CBC wrap.
fn wrap_mode(mode: WrapMode, block: usize) -> CipherMode {
    match mode {
        WrapMode::CbcZeroIv => CipherMode::Cbc {
            iv: vec![0u8; block],
        },
        _ => CipherMode::Ecb,
    }
}

impl Material {
    /// Parses clear material of `key_type`.
    pub(crate) fn from_secret(key_type: KeyType, bytes: &[u8]) -> Result<Self, KmsError> {
        let bad = || KmsError::InvalidMaterial(key_type);
        if key_type.secret_len().is_some_and(|n| n != bytes.len()) {
            return Err(bad());
        }
        Ok(match key_type {
            KeyType::Tdes2 => Self::Tdes(TdesKey::from_slice(bytes).map_err(|_| bad())?),
            KeyType::Aes128 | KeyType::Aes256 => {
                Self::Aes(AesKey::from_slice(bytes).map_err(|_| bad())?)
            }
            KeyType::Sm4 => Self::Sm4(Sm4Key::from_slice(bytes).map_err(|_| bad())?),
            KeyType::Sm2 => {
                let scalar: &[u8; 32] = bytes.try_into().map_err(|_| bad())?;
                Self::Sm2(Sm2PrivateKey::from_bytes(scalar).map_err(|_| bad())?)
            }
            KeyType::Rsa => Self::Rsa(
                RsaPrivateKey::from_pkcs8_der(bytes)
                    .or_else(|_| RsaPrivateKey::from_pkcs1_der(bytes))
                    .map_err(|_| bad())?,
            ),
        })
    }

    /// Generates a key of `key_type` from the OS random source (RSA: 2048 bits).
    pub(crate) fn generate(key_type: KeyType) -> Result<Self, KmsError> {
        match key_type {
            KeyType::Rsa => {
                // `UnwrapErr` turns an OS random-source failure into a panic inside the
                // generator: RSA key generation needs a stream, and a machine whose random
                // source fails cannot make keys at all.
                let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
                Ok(Self::Rsa(RsaPrivateKey::generate(
                    &mut rng,
                    ykt_crypto::rsa::RSA_MIN_BITS,
                )?))
            }
            KeyType::Sm2 => {
                // Rejection sampling: a 32-byte string is a valid scalar with overwhelming
                // probability, so a few attempts always suffice with a working source.
                for _ in 0..16 {
                    let bytes = random_secret(32)?;
                    if let Ok(m) = Self::from_secret(key_type, &bytes) {
                        return Ok(m);
                    }
                }
                Err(KmsError::Random)
            }
            _ => {
                let len = key_type
                    .secret_len()
                    .ok_or(KmsError::InvalidMaterial(key_type))?;
                Self::from_secret(key_type, &random_secret(len)?)
            }
        }
    }

    /// The key type.
    pub(crate) fn key_type(&self) -> KeyType {
        match self {
            Self::Tdes(_) => KeyType::Tdes2,
            Self::Aes(k) if k.expose().len() == 16 => KeyType::Aes128,
            Self::Aes(_) => KeyType::Aes256,
            Self::Sm4(_) => KeyType::Sm4,
            Self::Sm2(_) => KeyType::Sm2,
            Self::Rsa(_) => KeyType::Rsa,
        }
    }

    /// The clear value, as the key file stores it and [`Self::from_secret`] reads it.
    pub(crate) fn secret(&self) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        Ok(match self {
            Self::Tdes(k) => Zeroizing::new(k.expose().to_vec()),
            Self::Aes(k) => Zeroizing::new(k.expose().to_vec()),
            Self::Sm4(k) => Zeroizing::new(k.expose().to_vec()),
            Self::Sm2(k) => Zeroizing::new(k.expose().to_vec()),
            Self::Rsa(k) => k.to_pkcs8_der()?,
        })
    }

    fn wrong(&self, id: &KeyId, expected: &'static str) -> KmsError {
        KmsError::WrongKeyType {
            id: id.clone(),
            actual: self.key_type(),
            expected,
        }
    }

    /// The key derived by `step` (`id` names the master in errors).
    pub(crate) fn derive(&self, step: &Derivation, id: &KeyId) -> Result<Self, KmsError> {
        match (step, self) {
            (Derivation::Pboc { diversifier }, Self::Tdes(k)) => {
                Ok(Self::Tdes(ykt_crypto::diversify_tdes(k, diversifier)))
            }
            (Derivation::Pboc { diversifier }, Self::Sm4(k)) => {
                Ok(Self::Sm4(ykt_crypto::diversify_sm4(k, diversifier)))
            }
            (Derivation::Pboc { .. }, _) => Err(self.wrong(id, "a 3DES or SM4 master key")),
            (Derivation::GpEmv { kdd, key }, _) => self.gp(Diversification::Emv, kdd, *key, id),
            (Derivation::GpVisa2 { kdd, key }, _) => self.gp(Diversification::Visa2, kdd, *key, id),
            (Derivation::GpKdf3 { kdd, key }, _) => self.gp(Diversification::Kdf3, kdd, *key, id),
            (
                Derivation::Scp02Session {
                    constant,
                    sequence_counter,
                },
                Self::Tdes(k),
            ) => Ok(Self::Tdes(ykt_crypto::scp::scp02_session_key(
                k,
                *constant,
                *sequence_counter,
            ))),
            (Derivation::Scp02Session { .. }, _) => Err(self.wrong(id, "a 3DES static key")),
        }
    }

    /// GlobalPlatform diversification through `ykt_gp_host::diversify`, with this key as the
    /// master of all three static keys; the one asked for is kept.
    fn gp(
        &self,
        method: Diversification,
        kdd: &[u8; 10],
        which: GpStaticKey,
        id: &KeyId,
    ) -> Result<Self, KmsError> {
        let master = match self {
            Self::Tdes(k) => KeySet::tdes(0, k.clone(), k.clone(), k.clone()),
            Self::Aes(k) => KeySet::aes(0, k.clone(), k.clone(), k.clone()),
            Self::Sm4(k) => KeySet::sm4(0, k.clone(), k.clone(), k.clone()),
            _ => return Err(self.wrong(id, "a 3DES, AES or SM4 master key")),
        };
        let expected = match method {
            Diversification::Kdf3 => "an AES or SM4 master key",
            _ => "a 3DES master key",
        };
        let set = ykt_gp_host::diversify::diversify(&master, method, kdd, 0)
            .map_err(|_| self.wrong(id, expected))?;
        Ok(match (set.keys, which) {
            (StaticKeys::Tdes { enc, .. }, GpStaticKey::Enc) => Self::Tdes(enc),
            (StaticKeys::Tdes { mac, .. }, GpStaticKey::Mac) => Self::Tdes(mac),
            (StaticKeys::Tdes { dek, .. }, GpStaticKey::Dek) => Self::Tdes(dek),
            (StaticKeys::Aes { enc, .. }, GpStaticKey::Enc) => Self::Aes(enc),
            (StaticKeys::Aes { mac, .. }, GpStaticKey::Mac) => Self::Aes(mac),
            (StaticKeys::Aes { dek, .. }, GpStaticKey::Dek) => Self::Aes(dek),
            (StaticKeys::Sm4 { enc, .. }, GpStaticKey::Enc) => Self::Sm4(enc),
            (StaticKeys::Sm4 { mac, .. }, GpStaticKey::Mac) => Self::Sm4(mac),
            (StaticKeys::Sm4 { dek, .. }, GpStaticKey::Dek) => Self::Sm4(dek),
        })
    }

    /// Encrypts (or decrypts) whole blocks under this symmetric key.
    pub(crate) fn cipher(
        &self,
        mode: &CipherMode,
        data: &[u8],
        decrypt: bool,
        id: &KeyId,
    ) -> Result<Vec<u8>, KmsError> {
        let mut out = data.to_vec();
        match self {
            Self::Tdes(k) => apply(k, mode, &mut out, decrypt)?,
            Self::Aes(k) => apply(k, mode, &mut out, decrypt)?,
            Self::Sm4(k) => apply(k, mode, &mut out, decrypt)?,
            _ => return Err(self.wrong(id, "a 3DES, AES or SM4 key")),
        }
        Ok(out)
    }

    /// This key (a wrapping key) encrypting `value` in `mode`.
    pub(crate) fn wrap(
        &self,
        value: &[u8],
        mode: WrapMode,
        id: &KeyId,
    ) -> Result<Vec<u8>, KmsError> {
        if mode == WrapMode::AesKeyWrap {
            return match self {
                Self::Aes(k) => aes_kw_wrap(k, value),
                _ => Err(self.wrong(id, "an AES wrapping key")),
            };
        }
        let block = self
            .key_type()
            .block_size()
            .ok_or_else(|| self.wrong(id, "a 3DES, AES or SM4 wrapping key"))?;
        self.cipher(&wrap_mode(mode, block), value, false, id)
    }

    /// This SM2 key decrypting `sealed` (GM/T 0003.4).
    pub(crate) fn sm2_decrypt(
        &self,
        sealed: &[u8],
        cipher: ykt_crypto::Sm2CipherMode,
        id: &KeyId,
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        match self {
            Self::Sm2(k) => Ok(Zeroizing::new(k.decrypt(sealed, cipher)?)),
            _ => Err(self.wrong(id, "an SM2 key")),
        }
    }

    /// This key (a wrapping key) decrypting a wrapped value of a `key_type` key.
    pub(crate) fn unwrap(
        &self,
        wrapped: &[u8],
        mode: WrapMode,
        key_type: KeyType,
        id: &KeyId,
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        if mode == WrapMode::AesKeyWrap {
            return match self {
                Self::Aes(k) => {
                    aes_kw_unwrap(k, wrapped).ok_or(KmsError::InvalidMaterial(key_type))
                }
                _ => Err(self.wrong(id, "an AES wrapping key")),
            };
        }
        let block = self
            .key_type()
            .block_size()
            .ok_or_else(|| self.wrong(id, "a 3DES, AES or SM4 wrapping key"))?;
        Ok(Zeroizing::new(self.cipher(
            &wrap_mode(mode, block),
            wrapped,
            true,
            id,
        )?))
    }

    fn purse_parts(
        &self,
        rules: purse::Sm4Rules,
        id: &KeyId,
    ) -> Result<(PurseAlgorithm, PurseKey), KmsError> {
        match self {
            Self::Tdes(k) if k.is_two_key() => {
                Ok((PurseAlgorithm::Tdes, PurseKey::from_slice(k.expose())?))
            }
            Self::Sm4(k) => Ok((
                PurseAlgorithm::Sm4(rules),
                PurseKey::from_bytes(*k.expose()),
            )),
            _ => Err(self.wrong(id, "a 2-key 3DES or SM4 e-purse key")),
        }
    }

    /// A MAC under this key.
    pub(crate) fn mac(
        &self,
        algorithm: &MacAlgorithm,
        data: &[u8],
        id: &KeyId,
    ) -> Result<Vec<u8>, KmsError> {
        Ok(match (algorithm, self) {
            (MacAlgorithm::RetailMac { iv }, Self::Tdes(k)) => {
                ykt_crypto::retail_mac(k, iv, data)?.to_vec()
            }
            (MacAlgorithm::RetailMac { .. }, _) => return Err(self.wrong(id, "a 3DES key")),
            (MacAlgorithm::TdesCbcMac { iv }, Self::Tdes(k)) => {
                ykt_crypto::tdes_cbc_mac(k, iv, data).to_vec()
            }
            (MacAlgorithm::TdesCbcMac { .. }, _) => return Err(self.wrong(id, "a 3DES key")),
            (MacAlgorithm::Cmac, Self::Aes(k)) => ykt_crypto::cmac_aes(k, data).to_vec(),
            (MacAlgorithm::Cmac, Self::Sm4(k)) => ykt_crypto::cmac_sm4(k, data).to_vec(),
            (MacAlgorithm::Cmac, Self::Tdes(k)) => ykt_crypto::cmac_tdes(k, data).to_vec(),
            (MacAlgorithm::Cmac, _) => return Err(self.wrong(id, "a 3DES, AES or SM4 key")),
            (
                MacAlgorithm::PurseSession {
                    session_input,
                    sm4_rules,
                },
                _,
            ) => {
                let (alg, key) = self.purse_parts(*sm4_rules, id)?;
                let session = purse::session_key(&alg, &key, session_input);
                purse::session_mac(&alg, &session, data).to_vec()
            }
            (MacAlgorithm::PurseTac { sm4_rules }, _) => {
                let (alg, key) = self.purse_parts(*sm4_rules, id)?;
                purse::tac(&alg, &key, data).to_vec()
            }
            (MacAlgorithm::PurseSecureMessaging { iv, sm4_rules }, _) => {
                let (alg, key) = self.purse_parts(*sm4_rules, id)?;
                purse::secure_messaging_mac(&alg, &key, iv, data).to_vec()
            }
        })
    }

    /// A signature under this private key.
    pub(crate) fn sign(
        &self,
        algorithm: &SignatureAlgorithm,
        message: &[u8],
        id: &KeyId,
    ) -> Result<Vec<u8>, KmsError> {
        match (algorithm, self) {
            (SignatureAlgorithm::Sm2Sm3 { user_id }, Self::Sm2(k)) => {
                let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
                Ok(k.sign_with_rng(&mut rng, user_id, message)?
                    .to_bytes()
                    .to_vec())
            }
            (SignatureAlgorithm::RsaPkcs1Sha256, Self::Rsa(k)) => {
                let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
                Ok(k.sign_pkcs1v15_sha256_with_rng(&mut rng, message)?)
            }
            (SignatureAlgorithm::Sm2Sm3 { .. }, _) => Err(self.wrong(id, "an SM2 key")),
            (SignatureAlgorithm::RsaPkcs1Sha256, _) => Err(self.wrong(id, "an RSA key")),
        }
    }

    /// Verifies a signature with this key's public part.
    pub(crate) fn verify(
        &self,
        algorithm: &SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
        id: &KeyId,
    ) -> Result<(), KmsError> {
        match (algorithm, self) {
            (SignatureAlgorithm::Sm2Sm3 { user_id }, Self::Sm2(k)) => {
                let bytes: &[u8; 64] = signature
                    .try_into()
                    .map_err(|_| KmsError::SignatureInvalid)?;
                let sig =
                    Sm2Signature::from_bytes(bytes).map_err(|_| KmsError::SignatureInvalid)?;
                k.public_key()
                    .verify(user_id, message, &sig)
                    .map_err(|_| KmsError::SignatureInvalid)
            }
            (SignatureAlgorithm::RsaPkcs1Sha256, Self::Rsa(k)) => k
                .public_key()
                .verify_pkcs1v15_sha256(message, signature)
                .map_err(|_| KmsError::SignatureInvalid),
            (SignatureAlgorithm::Sm2Sm3 { .. }, _) => Err(self.wrong(id, "an SM2 key")),
            (SignatureAlgorithm::RsaPkcs1Sha256, _) => Err(self.wrong(id, "an RSA key")),
        }
    }

    /// The public part.
    pub(crate) fn public_key(&self, id: &KeyId) -> Result<PublicKey, KmsError> {
        match self {
            Self::Sm2(k) => Ok(PublicKey::Sm2(k.public_key().clone())),
            Self::Rsa(k) => Ok(PublicKey::Rsa(k.public_key().clone())),
            _ => Err(self.wrong(id, "an SM2 or RSA key")),
        }
    }
}

/// `len` bytes from the OS random source.
pub(crate) fn random_secret(len: usize) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut out).map_err(|_| KmsError::Random)?;
    Ok(out)
}
