//! The PKCS#11 backend (`cryptoki`): 2-key 3DES and AES-128/256 keys in a token.
//!
//! Keys are generated in the token (`CKM_DES2_KEY_GEN`, `CKM_AES_KEY_GEN`), unwrapped into it
//! (`C_UnwrapKey`), or imported by a key ceremony (`C_CreateObject`). Every key is a token
//! object with `CKA_SENSITIVE` set, so its value can never be read; `CKA_EXTRACTABLE` is the
//! key's [`KeySpec::exportable`], so it leaves only through `C_WrapKey`; `CKA_DECRYPT` is off,
//! so a wrapping key cannot be used to decrypt what it wrapped.
//! A key is found by `CKA_LABEL` = its name and `CKA_ID` = its version ‖ its key-type code.
//!
//! Operations map onto mechanisms: encryption to `CKM_DES3_ECB` / `CKM_DES3_CBC` /
//! `CKM_AES_ECB` / `CKM_AES_CBC`; the 3DES CBC-MAC to `CKM_DES3_CBC` (the last block);
//! AES-CMAC to `CKM_AES_CMAC`; wrapping to `C_WrapKey` / `C_UnwrapKey` with the wrapping
//! key's ECB or CBC mechanism, or `CKM_AES_KEY_WRAP`.
//! The ISO/IEC 9797-1 retail MAC needs single DES under K1 for all but the last block, which
//! no token mechanism gives from a K1 ‖ K2 object. So an imported 3DES key gets a companion
//! object K1 ‖ K1 (`CKA_ID` = version ‖ type ‖ `01`, encrypt only, never extractable): 3DES-EDE with
//! equal halves is single DES under K1, so the MAC is `CKM_DES3_CBC` under the companion over
//! the first n−1 blocks and one `CKM_DES3_ECB` under the key over the last block XOR that
//! chain value. A 3DES key generated or unwrapped in the token has no companion (its halves
//! are never outside it), and the retail MAC on it is [`KmsError::Unsupported`].
//!
//! Refused with [`KmsError::Unsupported`], naming the software backend: SM4 and SM2 keys
//! (tokens such as SoftHSM have no SM mechanisms), RSA keys, derivations (cryptoki 0.12
//! exposes no `CKM_DES3_ECB_ENCRYPT_DATA` / `CKM_AES_ECB_ENCRYPT_DATA`), the e-purse session
//! MACs and TAC (single-DES session keys), 3DES-CMAC (no mechanism in cryptoki 0.12), and
//! [`Kms::wrap_composed`] (`C_WrapKey` wraps one key object alone).
//! A mechanism the token lacks is [`KmsError::Unsupported`] too. SoftHSM 2.6 wraps under
//! AES-CBC and AES key wrap but not under 3DES, and unwraps only AES key wrap: keys reach it
//! wrapped as [`WrapMode::AesKeyWrap`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::audit::{AuditSink, Operation};
use crate::error::KmsError;
use crate::kms::{Auditor, Kms, cipher_name, use_of, wrap_name};
use crate::types::{
    CipherMode, Derivation, KeyId, KeyInfo, KeyRef, KeySpec, KeyType, MacAlgorithm, PublicKey,
    SealedLayout, SecretBytes, SignatureAlgorithm, WrapMode, WrapPart,
};

/// The backend's name in audit events.
const BACKEND: &str = "pkcs11";

/// The `CKA_ID` suffix of a 3DES key's retail-MAC companion object.
const COMPANION: u8 = 0x01;

const NATIONAL: &str =
    "SM4 and SM2 keys (PKCS#11 tokens have no SM mechanisms); use the software backend";
const ASYMMETRIC: &str = "RSA and SM2 keys; use the software backend";
const DERIVATION: &str = "key derivation (cryptoki 0.12 exposes no DES3/AES ECB-ENCRYPT-DATA mechanism); use the software backend";

/// How to reach the token.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Pkcs11Config {
    /// The PKCS#11 module (for SoftHSM2 `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The user PIN.
    pub user_pin: SecretBytes,
}

impl Pkcs11Config {
    /// A configuration.
    pub fn new(module: &Path, token_label: &str, user_pin: SecretBytes) -> Self {
        Self {
            module: module.to_path_buf(),
            token_label: token_label.to_owned(),
            user_pin,
        }
    }
}

/// The PKCS#11 KMS. See the [module docs](self).
pub struct Pkcs11Kms {
    session: Mutex<Session>,
    auditor: Auditor,
}

impl core::fmt::Debug for Pkcs11Kms {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pkcs11Kms").finish_non_exhaustive()
    }
}

fn ck(op: &'static str) -> impl FnOnce(CkError) -> KmsError {
    move |source| match source {
        CkError::Pkcs11(RvError::MechanismInvalid, _) => KmsError::Unsupported {
            backend: BACKEND,
            what: "this mechanism on this token (SoftHSM 2.6 wraps under AES-CBC and AES key wrap, unwraps only AES key wrap, and has no 3DES wrapping)",
        },
        CkError::Pkcs11(RvError::KeyUnextractable, _) => {
            KmsError::InvalidInput("the token refuses to export this key")
        }
        source => KmsError::Pkcs11 { op, source },
    }
}

fn unsupported(what: &'static str) -> KmsError {
    KmsError::Unsupported {
        backend: BACKEND,
        what,
    }
}

fn ck_key_type(key_type: KeyType) -> Result<CkKeyType, KmsError> {
    match key_type {
        KeyType::Tdes2 => Ok(CkKeyType::DES2),
        KeyType::Aes128 | KeyType::Aes256 => Ok(CkKeyType::AES),
        KeyType::Sm4 | KeyType::Sm2 => Err(unsupported(NATIONAL)),
        _ => Err(unsupported(ASYMMETRIC)),
    }
}

/// The attributes of a new key object.
fn key_template(id: &KeyId, spec: KeySpec) -> Result<Vec<Attribute>, KmsError> {
    Ok(vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(ck_key_type(spec.key_type)?),
        Attribute::Label(id.name().as_bytes().to_vec()),
        Attribute::Id(vec![id.version(), spec.key_type.code()]),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(spec.exportable),
        Attribute::Encrypt(true),
        Attribute::Decrypt(false),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Derive(false),
    ])
}

/// `CKA_VALUE_LEN` of a symmetric key type.
fn value_len(key_type: KeyType) -> Result<Attribute, KmsError> {
    let len = key_type
        .secret_len()
        .ok_or(KmsError::InvalidMaterial(key_type))?;
    cryptoki::types::Ulong::try_from(len)
        .map(Attribute::ValueLen)
        .map_err(|_| KmsError::InvalidMaterial(key_type))
}

/// The last `n` bytes of `data`.
fn last_block(data: &[u8], n: usize) -> Result<Vec<u8>, KmsError> {
    data.len()
        .checked_sub(n)
        .map(|at| data[at..].to_vec())
        .ok_or(KmsError::InvalidInput("the token returned a short result"))
}

impl Pkcs11Kms {
    /// Loads the module, initialises it, opens a session on the token labelled
    /// `config.token_label` and logs the user in.
    pub fn open(config: &Pkcs11Config, audit: Arc<dyn AuditSink>) -> Result<Self, KmsError> {
        let context = Pkcs11::new(&config.module).map_err(ck("load module"))?;
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(ck("C_Initialize")(e)),
        }
        Self::with_context(&context, config, audit)
    }

    /// Like [`Self::open`] over an already loaded and initialised module (several KMS
    /// instances, or other users of the module, in one process share one context: PKCS#11
    /// modules are initialised once per process).
    pub fn with_context(
        context: &Pkcs11,
        config: &Pkcs11Config,
        audit: Arc<dyn AuditSink>,
    ) -> Result<Self, KmsError> {
        let slots = context
            .get_slots_with_token()
            .map_err(ck("C_GetSlotList"))?;
        let mut found = None;
        for slot in slots {
            let info = context.get_token_info(slot).map_err(ck("C_GetTokenInfo"))?;
            if info.label().trim_end() == config.token_label {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| KmsError::TokenNotFound(config.token_label.clone()))?;
        let session = context.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
        let pin = Zeroizing::new(
            String::from_utf8(config.user_pin.expose().to_vec())
                .map_err(|_| KmsError::InvalidInput("the PIN is not UTF-8"))?,
        );
        match session.login(UserType::User, Some(&AuthPin::new(pin.as_str().into()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(ck("C_Login")(e)),
        }
        Ok(Self {
            session: Mutex::new(session),
            auditor: Auditor {
                backend: BACKEND,
                sink: audit,
            },
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Session>, KmsError> {
        self.session.lock().map_err(|_| KmsError::Poisoned)
    }

    /// The object of `id` (with `companion`, its retail-MAC companion) and the key type its
    /// `CKA_ID` records.
    fn find(
        session: &Session,
        id: &KeyId,
        companion: bool,
    ) -> Result<Option<(ObjectHandle, KeyType)>, KmsError> {
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(id.name().as_bytes().to_vec()),
            ])
            .map_err(ck("C_FindObjects"))?;
        for handle in found {
            let attrs = session
                .get_attributes(handle, &[AttributeType::Id])
                .map_err(ck("C_GetAttributeValue"))?;
            for a in attrs {
                let Attribute::Id(cka_id) = a else { continue };
                let key_type = match (cka_id.as_slice(), companion) {
                    ([v, code], false) if *v == id.version() => KeyType::from_code(*code),
                    ([v, code, COMPANION], true) if *v == id.version() => KeyType::from_code(*code),
                    _ => None,
                };
                if let Some(key_type) = key_type {
                    return Ok(Some((handle, key_type)));
                }
            }
        }
        Ok(None)
    }

    fn handle(session: &Session, id: &KeyId) -> Result<ObjectHandle, KmsError> {
        Self::find(session, id, false)?
            .map(|(h, _)| h)
            .ok_or_else(|| KmsError::KeyNotFound(id.clone()))
    }

    /// A stored key's handle; a derivation path is refused.
    fn stored(session: &Session, key: &KeyRef) -> Result<ObjectHandle, KmsError> {
        if !key.path().is_empty() {
            return Err(unsupported(DERIVATION));
        }
        Self::handle(session, key.id())
    }

    /// What the token and the object's `CKA_ID` say about a key. The key type comes from the
    /// `CKA_ID` (tokens need not record `CKA_VALUE_LEN` for an unwrapped key) and must agree
    /// with `CKA_KEY_TYPE`.
    fn info_of(session: &Session, id: &KeyId, handle: ObjectHandle) -> Result<KeyInfo, KmsError> {
        let attrs = session
            .get_attributes(
                handle,
                &[
                    AttributeType::KeyType,
                    AttributeType::Id,
                    AttributeType::Extractable,
                ],
            )
            .map_err(ck("C_GetAttributeValue"))?;
        let mut ck_type = None;
        let mut key_type = None;
        let mut exportable = false;
        for a in attrs {
            match a {
                Attribute::KeyType(t) => ck_type = Some(t),
                Attribute::Id(i) => key_type = i.get(1).copied().and_then(KeyType::from_code),
                Attribute::Extractable(e) => exportable = e,
                _ => {}
            }
        }
        match (key_type, ck_type) {
            (Some(key_type), Some(t)) if ck_key_type(key_type).ok() == Some(t) => Ok(KeyInfo {
                id: id.clone(),
                key_type,
                exportable,
            }),
            _ => Err(unsupported("a key object this crate did not create")),
        }
    }

    fn ensure_absent(session: &Session, id: &KeyId) -> Result<(), KmsError> {
        match Self::find(session, id, false)? {
            Some(_) => Err(KmsError::KeyExists(id.clone())),
            None => Ok(()),
        }
    }

    fn mechanism(key_type: KeyType, mode: &CipherMode) -> Result<Mechanism<'static>, KmsError> {
        let iv_len = key_type.block_size().ok_or(unsupported(ASYMMETRIC))?;
        if let CipherMode::Cbc { iv } = mode
            && iv.len() != iv_len
        {
            return Err(KmsError::InvalidInput("the IV is not one block"));
        }
        Ok(match (key_type, mode) {
            (KeyType::Tdes2, CipherMode::Ecb) => Mechanism::Des3Ecb,
            (KeyType::Tdes2, CipherMode::Cbc { iv }) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(iv);
                Mechanism::Des3Cbc(b)
            }
            (KeyType::Aes128 | KeyType::Aes256, CipherMode::Ecb) => Mechanism::AesEcb,
            (KeyType::Aes128 | KeyType::Aes256, CipherMode::Cbc { iv }) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(iv);
                Mechanism::AesCbc(b)
            }
            (KeyType::Sm4 | KeyType::Sm2, _) => return Err(unsupported(NATIONAL)),
            _ => return Err(unsupported(ASYMMETRIC)),
        })
    }

    fn wrap_mechanism(key_type: KeyType, mode: WrapMode) -> Result<Mechanism<'static>, KmsError> {
        let block = key_type.block_size().ok_or(unsupported(ASYMMETRIC))?;
        let cipher = match mode {
            WrapMode::Ecb => CipherMode::Ecb,
            WrapMode::CbcZeroIv => CipherMode::Cbc {
                iv: vec![0u8; block],
            },
            WrapMode::AesKeyWrap => {
                return match key_type {
                    KeyType::Aes128 | KeyType::Aes256 => Ok(Mechanism::AesKeyWrap),
                    _ => Err(KmsError::InvalidInput(
                        "AES key wrap needs an AES wrapping key",
                    )),
                };
            }
        };
        Self::mechanism(key_type, &cipher)
    }

    fn encrypt_with(
        session: &Session,
        handle: ObjectHandle,
        key_type: KeyType,
        mode: &CipherMode,
        data: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        let mechanism = Self::mechanism(key_type, mode)?;
        let block = key_type.block_size().ok_or(unsupported(ASYMMETRIC))?;
        if !data.len().is_multiple_of(block) {
            return Err(KmsError::InvalidInput(
                "data is not a whole number of blocks",
            ));
        }
        if data.is_empty() {
            return Ok(Vec::new());
        }
        session
            .encrypt(&mechanism, handle, data)
            .map_err(ck("C_Encrypt"))
    }

    fn mac_with(
        session: &Session,
        key: &KeyRef,
        algorithm: &MacAlgorithm,
        data: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        let handle = Self::stored(session, key)?;
        let info = Self::info_of(session, key.id(), handle)?;
        let need_tdes = |info: &KeyInfo| {
            if info.key_type == KeyType::Tdes2 {
                Ok(())
            } else {
                Err(KmsError::WrongKeyType {
                    id: key.id().clone(),
                    actual: info.key_type,
                    expected: "a 3DES key",
                })
            }
        };
        match algorithm {
            MacAlgorithm::Cmac => match info.key_type {
                KeyType::Aes128 | KeyType::Aes256 => session
                    .sign(&Mechanism::AesCMac, handle, data)
                    .map_err(ck("C_Sign")),
                _ => Err(unsupported(
                    "3DES-CMAC (cryptoki 0.12 has no DES3-CMAC mechanism); use the software backend",
                )),
            },
            MacAlgorithm::TdesCbcMac { iv } => {
                need_tdes(&info)?;
                let padded = ykt_crypto::pad_iso9797_m2(data, 8);
                let out = Self::encrypt_with(
                    session,
                    handle,
                    KeyType::Tdes2,
                    &CipherMode::Cbc { iv: iv.to_vec() },
                    &padded,
                )?;
                last_block(&out, 8)
            }
            MacAlgorithm::RetailMac { iv } => {
                need_tdes(&info)?;
                Self::retail_mac(session, key.id(), handle, iv, data)
            }
            MacAlgorithm::PurseSecureMessaging { iv, .. } => {
                need_tdes(&info)?;
                let mut block = [0u8; 8];
                block.iter_mut().zip(iv).for_each(|(o, i)| *o = *i);
                let full = Self::retail_mac(session, key.id(), handle, &block, data)?;
                Ok(full[..4].to_vec())
            }
            MacAlgorithm::PurseSession { .. } | MacAlgorithm::PurseTac { .. } => Err(unsupported(
                "the e-purse session MACs and TAC (single-DES session keys from derived card keys); use the software backend",
            )),
        }
    }

    /// ISO/IEC 9797-1 MAC algorithm 3 from 3DES operations (see the module docs).
    fn retail_mac(
        session: &Session,
        id: &KeyId,
        handle: ObjectHandle,
        iv: &[u8; 8],
        data: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        let companion = Self::find(session, id, true)?.map(|(h, _)| h).ok_or(unsupported(
            "the retail MAC on a 3DES key generated or unwrapped in the token (no single-DES companion); import the key, or use the software backend",
        ))?;
        let padded = ykt_crypto::pad_iso9797_m2(data, 8);
        let (head, last) = padded.split_at(padded.len() - 8);
        let mut chain = *iv;
        if !head.is_empty() {
            let out = Self::encrypt_with(
                session,
                companion,
                KeyType::Tdes2,
                &CipherMode::Cbc { iv: iv.to_vec() },
                head,
            )?;
            chain.copy_from_slice(&last_block(&out, 8)?);
        }
        chain.iter_mut().zip(last).for_each(|(c, x)| *c ^= x);
        Self::encrypt_with(session, handle, KeyType::Tdes2, &CipherMode::Ecb, &chain)
    }

    fn import_in(
        session: &Session,
        id: &KeyId,
        spec: KeySpec,
        material: &SecretBytes,
    ) -> Result<KeyInfo, KmsError> {
        let bytes = material.expose();
        if spec.key_type.secret_len() != Some(bytes.len()) || !spec.key_type.is_symmetric() {
            ck_key_type(spec.key_type)?;
            return Err(KmsError::InvalidMaterial(spec.key_type));
        }
        Self::ensure_absent(session, id)?;
        let mut template = key_template(id, spec)?;
        template.push(Attribute::Value(bytes.to_vec()));
        let handle = session
            .create_object(&template)
            .map_err(ck("C_CreateObject"))?;
        if spec.key_type == KeyType::Tdes2 {
            let mut k1k1 = Zeroizing::new(vec![0u8; 16]);
            k1k1[..8].copy_from_slice(&bytes[..8]);
            k1k1[8..].copy_from_slice(&bytes[..8]);
            let companion = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(CkKeyType::DES2),
                Attribute::Label(id.name().as_bytes().to_vec()),
                Attribute::Id(vec![id.version(), KeyType::Tdes2.code(), COMPANION]),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(false),
                Attribute::Wrap(false),
                Attribute::Unwrap(false),
                Attribute::Sign(false),
                Attribute::Verify(false),
                Attribute::Derive(false),
                Attribute::Value(k1k1.to_vec()),
            ];
            if let Err(e) = session.create_object(&companion) {
                let _ = session.destroy_object(handle);
                return Err(ck("C_CreateObject")(e));
            }
        }
        Self::info_of(session, id, handle)
    }
}

impl Kms for Pkcs11Kms {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn generate(&self, id: &KeyId, spec: KeySpec, purpose: &str) -> Result<KeyInfo, KmsError> {
        let r = KeyRef::from(id);
        let result = (|| {
            let session = self.lock()?;
            let template = key_template(id, spec)?;
            Self::ensure_absent(&session, id)?;
            let (mechanism, template) = match spec.key_type {
                KeyType::Tdes2 => (Mechanism::Des2KeyGen, template),
                _ => {
                    let mut t = template;
                    t.push(value_len(spec.key_type)?);
                    (Mechanism::AesKeyGen, t)
                }
            };
            let handle = session
                .generate_key(&mechanism, &template)
                .map_err(ck("C_GenerateKey"))?;
            Self::info_of(&session, id, handle)
        })();
        self.auditor.record(
            use_of(Operation::Generate, &r, None, "generate", purpose),
            result,
        )
    }

    fn import(
        &self,
        id: &KeyId,
        spec: KeySpec,
        material: &SecretBytes,
        purpose: &str,
    ) -> Result<KeyInfo, KmsError> {
        let r = KeyRef::from(id);
        let result = self
            .lock()
            .and_then(|session| Self::import_in(&session, id, spec, material));
        self.auditor.record(
            use_of(Operation::Import, &r, None, "import", purpose),
            result,
        )
    }

    fn unwrap_import(
        &self,
        id: &KeyId,
        spec: KeySpec,
        unwrapping: &KeyRef,
        mode: WrapMode,
        wrapped: &[u8],
        purpose: &str,
    ) -> Result<KeyInfo, KmsError> {
        let r = KeyRef::from(id);
        let result = (|| {
            let session = self.lock()?;
            let template = key_template(id, spec)?;
            let kek = Self::stored(&session, unwrapping)?;
            let kek_info = Self::info_of(&session, unwrapping.id(), kek)?;
            let mechanism = Self::wrap_mechanism(kek_info.key_type, mode)?;
            Self::ensure_absent(&session, id)?;
            let handle = session
                .unwrap_key(&mechanism, kek, wrapped, &template)
                .map_err(ck("C_UnwrapKey"))?;
            let info = Self::info_of(&session, id, handle)?;
            if info.key_type != spec.key_type {
                let _ = session.destroy_object(handle);
                return Err(KmsError::InvalidMaterial(spec.key_type));
            }
            Ok(info)
        })();
        self.auditor.record(
            use_of(
                Operation::UnwrapImport,
                &r,
                Some(unwrapping.id()),
                wrap_name(mode),
                purpose,
            ),
            result,
        )
    }

    fn diversify(
        &self,
        master: &KeyRef,
        step: &Derivation,
        id: &KeyId,
        _exportable: bool,
        purpose: &str,
    ) -> Result<KeyInfo, KmsError> {
        let derived = master.clone().diversified(step.clone());
        self.auditor.record(
            use_of(
                Operation::Diversify,
                &derived,
                Some(id),
                step.name(),
                purpose,
            ),
            Err(unsupported(DERIVATION)),
        )
    }

    fn info(&self, id: &KeyId) -> Result<KeyInfo, KmsError> {
        let session = self.lock()?;
        let handle = Self::handle(&session, id)?;
        Self::info_of(&session, id, handle)
    }

    fn list(&self) -> Result<Vec<KeyInfo>, KmsError> {
        let session = self.lock()?;
        let handles = session
            .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
            .map_err(ck("C_FindObjects"))?;
        let mut out = Vec::new();
        for h in handles {
            let attrs = session
                .get_attributes(h, &[AttributeType::Label, AttributeType::Id])
                .map_err(ck("C_GetAttributeValue"))?;
            let (mut label, mut cka_id) = (None, None);
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = Some(l),
                    Attribute::Id(i) => cka_id = Some(i),
                    _ => {}
                }
            }
            // Objects of other applications, and companions, do not have this shape.
            if let (Some(label), Some([version, _])) = (label, cka_id.as_deref())
                && let Ok(name) = std::str::from_utf8(&label)
                && let Ok(id) = KeyId::new(name, *version)
                && let Ok(info) = Self::info_of(&session, &id, h)
            {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn destroy(&self, id: &KeyId, purpose: &str) -> Result<(), KmsError> {
        let r = KeyRef::from(id);
        let result = (|| {
            let session = self.lock()?;
            let handle = Self::handle(&session, id)?;
            if let Some((companion, _)) = Self::find(&session, id, true)? {
                session
                    .destroy_object(companion)
                    .map_err(ck("C_DestroyObject"))?;
            }
            session
                .destroy_object(handle)
                .map_err(ck("C_DestroyObject"))
        })();
        self.auditor.record(
            use_of(Operation::Destroy, &r, None, "destroy", purpose),
            result,
        )
    }

    fn wrap_composed(
        &self,
        parts: &[WrapPart<'_>],
        wrapping: &KeyRef,
        mode: WrapMode,
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        // C_WrapKey wraps one key object alone; no mechanism encrypts a key's value together
        // with other bytes in one CBC chain.
        let what = "wrapping key values inside a composed record (C_WrapKey wraps one key alone); use the software backend";
        for part in parts {
            if let WrapPart::Key(key) = part {
                self.auditor.record::<()>(
                    use_of(
                        Operation::Wrap,
                        key,
                        Some(wrapping.id()),
                        wrap_name(mode),
                        purpose,
                    ),
                    Err(unsupported(what)),
                )?;
            }
        }
        Err(unsupported(what))
    }

    fn seal_for(
        &self,
        parts: &[WrapPart<'_>],
        _recipient: &ykt_crypto::Sm2PublicKey,
        _cipher: ykt_crypto::Sm2CipherMode,
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        for part in parts {
            if let WrapPart::Key(key) = part {
                self.auditor.record::<()>(
                    use_of(Operation::Wrap, key, None, "sm2-seal", purpose),
                    Err(unsupported(NATIONAL)),
                )?;
            }
        }
        Err(unsupported(NATIONAL))
    }

    fn open_import(
        &self,
        unwrapping: &KeyRef,
        _cipher: ykt_crypto::Sm2CipherMode,
        _sealed: &[u8],
        _header_len: usize,
        _layout: &SealedLayout<'_>,
        purpose: &str,
    ) -> Result<Vec<KeyInfo>, KmsError> {
        self.auditor.record(
            use_of(
                Operation::UnwrapImport,
                unwrapping,
                None,
                "sm2-open",
                purpose,
            ),
            Err(unsupported(NATIONAL)),
        )
    }

    fn wrap(
        &self,
        key: &KeyRef,
        wrapping: &KeyRef,
        mode: WrapMode,
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        let result = (|| {
            let session = self.lock()?;
            let handle = Self::stored(&session, key)?;
            if !Self::info_of(&session, key.id(), handle)?.exportable {
                return Err(KmsError::NotExportable(key.id().clone()));
            }
            let kek = Self::stored(&session, wrapping)?;
            let kek_info = Self::info_of(&session, wrapping.id(), kek)?;
            let mechanism = Self::wrap_mechanism(kek_info.key_type, mode)?;
            session
                .wrap_key(&mechanism, kek, handle)
                .map_err(ck("C_WrapKey"))
        })();
        self.auditor.record(
            use_of(
                Operation::Wrap,
                key,
                Some(wrapping.id()),
                wrap_name(mode),
                purpose,
            ),
            result,
        )
    }

    fn encrypt(
        &self,
        key: &KeyRef,
        mode: &CipherMode,
        data: &[u8],
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        let result = (|| {
            let session = self.lock()?;
            let handle = Self::stored(&session, key)?;
            let info = Self::info_of(&session, key.id(), handle)?;
            Self::encrypt_with(&session, handle, info.key_type, mode, data)
        })();
        self.auditor.record(
            use_of(Operation::Encrypt, key, None, cipher_name(mode), purpose),
            result,
        )
    }

    fn mac(
        &self,
        key: &KeyRef,
        algorithm: &MacAlgorithm,
        data: &[u8],
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        let result = self
            .lock()
            .and_then(|session| Self::mac_with(&session, key, algorithm, data));
        self.auditor.record(
            use_of(Operation::Mac, key, None, algorithm.name(), purpose),
            result,
        )
    }

    fn verify_mac(
        &self,
        key: &KeyRef,
        algorithm: &MacAlgorithm,
        data: &[u8],
        mac: &[u8],
        purpose: &str,
    ) -> Result<(), KmsError> {
        let result = self
            .lock()
            .and_then(|session| Self::mac_with(&session, key, algorithm, data))
            .and_then(|expected| {
                if ykt_crypto::ct_eq(&expected, mac) {
                    Ok(())
                } else {
                    Err(KmsError::MacMismatch)
                }
            });
        self.auditor.record(
            use_of(Operation::VerifyMac, key, None, algorithm.name(), purpose),
            result,
        )
    }

    fn sign(
        &self,
        key: &KeyId,
        algorithm: &SignatureAlgorithm,
        _message: &[u8],
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        let r = KeyRef::from(key);
        self.auditor.record(
            use_of(Operation::Sign, &r, None, algorithm.name(), purpose),
            Err(unsupported(ASYMMETRIC)),
        )
    }

    fn verify(
        &self,
        key: &KeyId,
        algorithm: &SignatureAlgorithm,
        _message: &[u8],
        _signature: &[u8],
        purpose: &str,
    ) -> Result<(), KmsError> {
        let r = KeyRef::from(key);
        self.auditor.record(
            use_of(Operation::Verify, &r, None, algorithm.name(), purpose),
            Err(unsupported(ASYMMETRIC)),
        )
    }

    fn public_key(&self, _key: &KeyId) -> Result<PublicKey, KmsError> {
        Err(unsupported(ASYMMETRIC))
    }
}
