//! The SEI-TSM's side of the inter-platform API: [`SeiPlatform`], the [`Backend`] of a server
//! that serves [`api::PLATFORM_MESSAGES`] only, through the same pipeline as the business API
//! (signature, clock window, replay guard, idempotency).
//!
//! Authorisation, after the pipeline has verified the envelope under the pinned key of the one
//! configured SP platform ([`Backend::device_key`]: any other sender is `1002`): every request
//! names only keys of the SEI role ([`super::rules`]; anything else is `1007`); the SSD key
//! handover goes only to the SP's pinned transport public key; a secure channel's session
//! block leaves only SM2-encrypted. Every operation, done or refused, is one audit row in the
//! SEI's store; no key value is in any answer.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use ykt_crypto::{Sm2CipherMode, Sm2PublicKey};
use ykt_envelope::Code;
use ykt_store::{AuditEvent, AuditKind, Store};
use ykt_tsm::api::{self, CardsResp, FlowResp, MessageDef, OrderResp};
use ykt_tsm::hex::Hex;
use ykt_tsm::vault::StaticKeyOperation;
use ykt_tsm::{KeyName, KeyRef, KeyVault, Parties, RelayResponse, VaultError};

use super::rules::SeiKeys;
use super::{OsRng, blocking, proposals, wire};
use crate::engine::OsEntropy;
use crate::http::backend::{Backend, BackendError, BackendFuture, Start};

/// How the SEI platform is set up.
#[derive(Clone)]
#[non_exhaustive]
pub struct SeiConfig {
    /// The SP platform's id: the only `sender_id` served.
    pub sp_id: String,
    /// The SP platform's envelope signing key, pinned.
    pub sp_key: Sm2PublicKey,
    /// The SP's transport public key (SEC1): the only recipient of an SSD key handover.
    pub sp_transport: Vec<u8>,
    /// The key names of both TSMs (the SEI's: ISD master, token signer, receipt key).
    pub parties: Parties,
}

impl SeiConfig {
    /// The SEI serving the SP platform `sp_id` with the signing key `sp_key` and the transport
    /// public key `sp_transport`.
    pub fn new(
        sp_id: impl Into<String>,
        sp_key: Sm2PublicKey,
        sp_transport: Vec<u8>,
        parties: Parties,
    ) -> Self {
        Self {
            sp_id: sp_id.into(),
            sp_key,
            sp_transport,
            parties,
        }
    }
}

impl std::fmt::Debug for SeiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeiConfig")
            .field("sp_id", &self.sp_id)
            .field("sp_key", &ykt_envelope::key_id_sm2(&self.sp_key))
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Store,
    vault: Mutex<Box<dyn KeyVault + Send>>,
    config: SeiConfig,
    names: SeiKeys,
}

/// The SEI-TSM platform: its vault and store behind the inter-platform API.
#[derive(Clone)]
pub struct SeiPlatform(Arc<Inner>);

impl std::fmt::Debug for SeiPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeiPlatform")
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

/// A refusal: its code and message (names at most a key's name, never a value).
struct No(Code, String);

impl From<VaultError> for No {
    fn from(e: VaultError) -> Self {
        No(
            proposals::vault_error_code(e),
            format!("{}{}", wire::VAULT_PREFIX, wire::vault_error_name(e)),
        )
    }
}

fn bad(msg: &str) -> No {
    No(Code::BadRequest, msg.to_string())
}

fn not_seis(what: &str) -> No {
    No(
        Code::Forbidden,
        format!("{what} is not a key of the SEI role"),
    )
}

fn parse<T: DeserializeOwned>(def: MessageDef, body: Value) -> Result<T, No> {
    serde_json::from_value(body).map_err(|_| {
        No(
            Code::BadRequest,
            format!("the body is not a {}", def.request),
        )
    })
}

fn answer<T: Serialize>(value: &T) -> Result<Value, No> {
    serde_json::to_value(value).map_err(|_| No(Code::Internal, "encoding the answer".into()))
}

fn subject_of(keys: &KeyRef) -> String {
    match keys {
        KeyRef::Isd { master, seid } => format!("{}/{seid}", master.0),
        KeyRef::Named(name) => name.0.clone(),
        _ => String::from("?"),
    }
}

impl SeiPlatform {
    /// The SEI platform with its `vault` (the SEI role's keys) and `store` (replay guard,
    /// idempotency records, audit).
    pub fn new(store: Store, vault: Box<dyn KeyVault + Send>, config: SeiConfig) -> Self {
        let names = SeiKeys::new(&config.parties);
        Self(Arc::new(Inner {
            store,
            vault: Mutex::new(vault),
            config,
            names,
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &SeiConfig {
        &self.0.config
    }

    fn initial(&self, name: &KeyName) -> Result<(), No> {
        if self.0.names.is_initial_set(name) {
            Ok(())
        } else {
            Err(not_seis(&name.0))
        }
    }

    fn isd(&self, keys: &KeyRef) -> Result<(), No> {
        if self.0.names.is_isd(keys) {
            Ok(())
        } else {
            Err(not_seis(&subject_of(keys)))
        }
    }

    /// One operation: its subject (for the audit row) and its outcome.
    fn operate(&self, def: MessageDef, body: Value) -> (String, Result<Value, No>) {
        let mut subject = String::new();
        let result = self.operate_inner(def, body, &mut subject);
        (subject, result)
    }

    fn operate_inner(
        &self,
        def: MessageDef,
        body: Value,
        subject: &mut String,
    ) -> Result<Value, No> {
        let mut vault = self
            .0
            .vault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let vault = vault.as_mut();
        match def {
            // tsm-gp.md §6: the SSD's initial key set, made and kept by the SEI.
            d if d == api::KEY_QUERY => {
                let req: api::SsdKeyReq = parse(d, body)?;
                subject.clone_from(&req.key.0);
                if !self.0.names.is_long_term(&req.key) {
                    self.initial(&req.key)?;
                }
                answer(&api::KeyQueryResp {
                    present: vault.contains(&req.key),
                })
            }
            d if d == api::CREATE_SSD => {
                let req: api::SsdKeyReq = parse(d, body)?;
                subject.clone_from(&req.key.0);
                self.initial(&req.key)?;
                let version = req
                    .version
                    .ok_or_else(|| bad("CreateSSDReq needs a version"))?;
                vault.generate_key_set(&req.key, version, &mut OsEntropy)?;
                answer(&api::Empty {})
            }
            d if d == api::DELETE_SSD => {
                let req: api::SsdKeyReq = parse(d, body)?;
                subject.clone_from(&req.key.0);
                self.initial(&req.key)?;
                vault.delete_key(&req.key);
                answer(&api::Empty {})
            }
            // tsm-gp.md §3.6, §5.2: DGI 8001 under the ISD's DEK.
            d if d == api::SSD_FIRST_KEYS => {
                let req: api::SsdFirstKeysReq = parse(d, body)?;
                subject.clone_from(&req.key.0);
                self.initial(&req.key)?;
                self.isd(&req.under)?;
                let w = vault.wrap_key_set(&req.key, &req.under, req.encryption)?;
                answer(&api::SsdFirstKeysResp {
                    data: Hex(w.data),
                    check_values: w.check_values.map(|k| Hex(k.to_vec())),
                })
            }
            // tsm-gp.md §6 SSD key handover: only to the SP's pinned transport key.
            d if d == api::SSD_KEY_HANDOVER => {
                let req: api::SsdKeyHandoverReq = parse(d, body)?;
                subject.clone_from(&req.key.0);
                self.initial(&req.key)?;
                if req.recipient.as_bytes() != self.0.config.sp_transport.as_slice() {
                    return Err(No(
                        Code::Forbidden,
                        "the recipient is not the SP's transport key".into(),
                    ));
                }
                let wrapped =
                    vault.export_key_set(&req.key, req.recipient.as_bytes(), &mut OsEntropy)?;
                answer(&api::SsdKeyHandoverResp {
                    wrapped: Hex(wrapped),
                })
            }
            // tsm-gp.md §5: the ISD channel's handshake, block by block.
            d if d == api::ISD_CHANNEL_INFO => {
                let req: api::IsdChannelInfoReq = parse(d, body)?;
                *subject = subject_of(&req.keys);
                self.isd(&req.keys)?;
                let (version, kind) = vault.channel_key_info(&req.keys)?;
                let (algorithm, key_len) = wire::key_kind_parts(kind);
                answer(&api::IsdChannelInfoResp {
                    version,
                    algorithm: algorithm.into(),
                    key_len,
                })
            }
            d if d == api::ISD_CHANNEL_OP => {
                let req: api::IsdChannelOpReq = parse(d, body)?;
                *subject = subject_of(&req.keys);
                self.isd(&req.keys)?;
                let recipient = Sm2PublicKey::from_sec1_bytes(req.recipient.as_bytes())
                    .map_err(|_| bad("recipient is not an SM2 public key"))?;
                let key = wire::key_role(&req.key).ok_or_else(|| bad("no such static key"))?;
                let block: [u8; 16];
                let operation = match req.operation.as_str() {
                    "TDES_CBC" => {
                        block = req
                            .data
                            .as_bytes()
                            .try_into()
                            .map_err(|_| bad("TDES_CBC data is 16 bytes"))?;
                        StaticKeyOperation::TdesCbc { key, data: &block }
                    }
                    "CMAC" => StaticKeyOperation::Cmac {
                        key,
                        data: req.data.as_bytes(),
                    },
                    _ => return Err(bad("no such operation")),
                };
                let out = vault.channel_operation(&req.keys, &operation)?;
                let wrapped = recipient
                    .encrypt(&mut OsRng, out.as_slice(), Sm2CipherMode::C1C3C2)
                    .map_err(|_| No::from(VaultError::Crypto))?;
                answer(&api::IsdChannelOpResp {
                    wrapped: Hex(wrapped),
                })
            }
            // tsm-gp.md §4: tokens and receipts.
            d if d == api::ACQUIRE_TOKEN => {
                let req: api::AcquireTokenReq = parse(d, body)?;
                subject.clone_from(&req.signer.0);
                if !self.0.names.is_token_signer(&req.signer) {
                    return Err(not_seis(&req.signer.0));
                }
                let kind = wire::token_kind(&req.kind).ok_or_else(|| bad("no such token kind"))?;
                let token =
                    vault.sign_token(&req.signer, kind, req.p1, req.p2, req.data.as_bytes())?;
                answer(&api::AcquireTokenResp { token: Hex(token) })
            }
            d if d == api::VERIFY_RECEIPT => {
                let req: api::ReceiptVerifyReq = parse(d, body)?;
                subject.clone_from(&req.key.0);
                if !self.0.names.is_receipt_key(&req.key) {
                    return Err(not_seis(&req.key.0));
                }
                let aids: Vec<&[u8]> = req.aids.iter().map(Hex::as_bytes).collect();
                let context = wire::receipt_context(&req.kind, &aids)
                    .ok_or_else(|| bad("the receipt context does not fit its kind"))?;
                vault.verify_receipt(&req.key, req.response.as_bytes(), &context)?;
                answer(&api::Empty {})
            }
            d => Err(bad(&format!("{} is not served here", d.request))),
        }
    }
}

fn not_served<T>() -> impl BackendFuture<T> {
    async {
        Err(BackendError::new(
            Code::BadRequest,
            "not served by the SEI-TSM",
        ))
    }
}

impl Backend for SeiPlatform {
    fn serves(&self, def: MessageDef) -> bool {
        api::PLATFORM_MESSAGES.contains(&def)
    }

    fn platform(&self, sender: &str, def: MessageDef, body: Value) -> impl BackendFuture<Value> {
        let (this, sender) = (self.clone(), sender.to_owned());
        async move {
            if sender != this.0.config.sp_id {
                return Err(BackendError::new(Code::UnknownSender, "unknown platform"));
            }
            let (subject, result) = {
                let this = this.clone();
                blocking(move || this.operate(def, body))
            };
            let detail = match &result {
                Ok(_) => format!("{}: done", def.request),
                Err(No(code, msg)) => format!("{}: refused ({code}: {msg})", def.request),
            };
            this.0
                .store
                .append_audit(&AuditEvent {
                    kind: AuditKind::KeyUse,
                    actor: format!("sp-platform:{sender}"),
                    subject,
                    detail,
                })
                .await?;
            result.map_err(|No(code, msg)| BackendError::new(code, msg))
        }
    }

    fn enrol(&self, _device_pub: &Sm2PublicKey, _model: &str) -> impl BackendFuture<String> {
        not_served()
    }

    fn device_key(&self, sender: &str) -> impl BackendFuture<Sm2PublicKey> {
        let known = (sender == self.0.config.sp_id).then(|| self.0.config.sp_key.clone());
        async move { known.ok_or_else(|| BackendError::new(Code::UnknownSender, "unknown platform")) }
    }

    fn start(&self, _: &str, _: &str, _: Start, _: i64) -> impl BackendFuture<FlowResp> {
        not_served()
    }

    fn apdu_result(
        &self,
        _: &str,
        _: &str,
        _: &RelayResponse,
        _: i64,
    ) -> impl BackendFuture<FlowResp> {
        not_served()
    }

    fn resume(&self, _: &str, _: &str, _: i64) -> impl BackendFuture<FlowResp> {
        not_served()
    }

    fn flow(&self, _: &str, _: &str) -> impl BackendFuture<FlowResp> {
        not_served()
    }

    fn create_order(&self, _: &str, _: &api::TopupOrderReq) -> impl BackendFuture<OrderResp> {
        not_served()
    }

    fn order(&self, _: &str, _: &str) -> impl BackendFuture<OrderResp> {
        not_served()
    }

    fn test_pay(&self, _: &str, _: &str) -> impl BackendFuture<OrderResp> {
        not_served()
    }

    fn cards(&self, _: &str) -> impl BackendFuture<CardsResp> {
        not_served()
    }

    fn store(&self) -> &Store {
        &self.0.store
    }
}
