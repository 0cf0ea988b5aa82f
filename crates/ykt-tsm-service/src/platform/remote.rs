//! The SEI-TSM's vault as the SP-TSM sees it when the SEI runs elsewhere: [`RemoteSeiVault`],
//! each `KeyVault` call one inter-platform message over a [`SeiLink`].
//!
//! Transport failure and refusal stay apart: the SEI's refusal becomes the [`VaultError`] it
//! names (the flow fails that step as with a local vault), while a link that fails (no answer,
//! an answer that does not verify, the SEI's own internal error) is recorded for the engine's
//! move in progress ([`take_link_failure`]); the engine then keeps the flow as stored before
//! the move and answers "retry", so the flow resumes once the SEI is back.

use std::cell::Cell;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use ykt_crypto::{Sm2CipherMode, Sm2PrivateKey};
use ykt_envelope::Code;
use ykt_tsm::api::{self, MessageDef};
use ykt_tsm::hex::Hex;
use ykt_tsm::vault::{KeyEncryption, ReceiptContext, TokenKind};
use ykt_tsm::vault::{StaticKeyKind, StaticKeyOperation};
use ykt_tsm::{
    Entropy, KeyName, KeyRef, KeyVault, LoadProof, Parties, PersoBlock, PurseCardSpec, VaultError,
    WrappedKeySet,
};
use zeroize::Zeroizing;

use super::rules::SeiKeys;
use super::{OsRng, wire};

/// Why a call over the link did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The exchange failed: no connection, a timeout, an answer that is not a verified
    /// envelope from the SEI, or the SEI's internal error. Retryable.
    #[error("the SEI-TSM could not be reached: {0}")]
    Transport(String),
    /// The SEI answered with a refusal.
    #[error("the SEI-TSM refused ({code}): {msg}")]
    Refused {
        /// The result code.
        code: Code,
        /// The result message.
        msg: String,
    },
}

/// A way to the SEI-TSM: one request, one answer.
pub trait SeiLink: Send + Sync {
    /// Sends the inter-platform request `def` with `body`; gives the answer's body when the
    /// result is `0000`.
    fn call(&self, def: MessageDef, body: Value) -> Result<Value, LinkError>;
}

thread_local! {
    static LINK_FAILED: Cell<bool> = const { Cell::new(false) };
}

/// Whether a [`RemoteSeiVault`] call on this thread failed in transport since the last call
/// (and clears the mark). The engine clears it before a flow's move and reads it after.
pub fn take_link_failure() -> bool {
    LINK_FAILED.with(|f| f.replace(false))
}

/// The SEI-TSM's vault behind a [`SeiLink`]. Only the SEI role's operations are sent; the
/// others (the SP's transport key, purse keys) are refused here with
/// [`VaultError::UnknownKey`], as the SEI would refuse them.
pub struct RemoteSeiVault {
    link: Box<dyn SeiLink>,
    names: SeiKeys,
    /// The key secure-channel session blocks come back encrypted for: made at start, never
    /// stored, never sent.
    channel_key: Sm2PrivateKey,
}

impl fmt::Debug for RemoteSeiVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RemoteSeiVault([redacted])")
    }
}

impl RemoteSeiVault {
    /// The SEI vault behind `link`; `parties` names the SEI's keys.
    pub fn new(link: impl SeiLink + 'static, parties: &Parties) -> Result<Self, VaultError> {
        let channel_key = Sm2PrivateKey::generate(&mut OsRng).map_err(|_| VaultError::Crypto)?;
        Ok(Self {
            link: Box::new(link),
            names: SeiKeys::new(parties),
            channel_key,
        })
    }

    fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        def: MessageDef,
        body: &B,
    ) -> Result<R, VaultError> {
        let body = serde_json::to_value(body).map_err(|_| VaultError::Crypto)?;
        match self.link.call(def, body) {
            Ok(answer) => serde_json::from_value(answer).map_err(|e| {
                tracing::warn!(msg_type = def.response, error = %e, "an SEI answer is malformed");
                transport_failed()
            }),
            Err(LinkError::Transport(detail)) => {
                tracing::warn!(msg_type = def.request, %detail, "the SEI-TSM is unreachable");
                Err(transport_failed())
            }
            Err(LinkError::Refused { code, msg }) => {
                tracing::info!(msg_type = def.request, %code, %msg, "the SEI-TSM refused");
                Err(wire::vault_error(&msg).unwrap_or(VaultError::UnknownKey))
            }
        }
    }
}

/// Marks the move's transport failure; the error itself is what the flow sees until the engine
/// throws the move away.
fn transport_failed() -> VaultError {
    LINK_FAILED.with(|f| f.set(true));
    VaultError::Crypto
}

impl KeyVault for RemoteSeiVault {
    fn contains(&self, name: &KeyName) -> bool {
        if !self.names.is_initial_set(name) && !self.names.is_long_term(name) {
            return false;
        }
        let req = api::SsdKeyReq {
            key: name.clone(),
            version: None,
        };
        self.call::<_, api::KeyQueryResp>(api::KEY_QUERY, &req)
            .is_ok_and(|r| r.present)
    }

    fn channel_key_info(&self, keys: &KeyRef) -> Result<(u8, StaticKeyKind), VaultError> {
        let req = api::IsdChannelInfoReq { keys: keys.clone() };
        let resp: api::IsdChannelInfoResp = self.call(api::ISD_CHANNEL_INFO, &req)?;
        let kind = wire::key_kind(&resp.algorithm, resp.key_len).ok_or_else(transport_failed)?;
        Ok((resp.version, kind))
    }

    fn channel_operation(
        &self,
        keys: &KeyRef,
        operation: &StaticKeyOperation<'_>,
    ) -> Result<Zeroizing<[u8; 16]>, VaultError> {
        let (op, key, data) = match operation {
            StaticKeyOperation::TdesCbc { key, data } => ("TDES_CBC", *key, data.to_vec()),
            StaticKeyOperation::Cmac { key, data } => ("CMAC", *key, data.to_vec()),
            _ => return Err(VaultError::KeyType),
        };
        let req = api::IsdChannelOpReq {
            keys: keys.clone(),
            operation: op.into(),
            key: wire::key_role_name(key).into(),
            data: Hex(data),
            recipient: Hex(self.channel_key.public_key().to_bytes().to_vec()),
        };
        let resp: api::IsdChannelOpResp = self.call(api::ISD_CHANNEL_OP, &req)?;
        let clear = Zeroizing::new(
            self.channel_key
                .decrypt(resp.wrapped.as_bytes(), Sm2CipherMode::C1C3C2)
                .map_err(|_| transport_failed())?,
        );
        let block: [u8; 16] = clear
            .as_slice()
            .try_into()
            .map_err(|_| transport_failed())?;
        Ok(Zeroizing::new(block))
    }

    fn generate_key_set(
        &mut self,
        name: &KeyName,
        version: u8,
        _rng: &mut dyn Entropy,
    ) -> Result<(), VaultError> {
        let req = api::SsdKeyReq {
            key: name.clone(),
            version: Some(version),
        };
        self.call::<_, api::Empty>(api::CREATE_SSD, &req)
            .map(|_| ())
    }

    fn wrap_key_set(
        &self,
        new: &KeyName,
        under: &KeyRef,
        encryption: KeyEncryption,
    ) -> Result<WrappedKeySet, VaultError> {
        let req = api::SsdFirstKeysReq {
            key: new.clone(),
            under: under.clone(),
            encryption,
        };
        let resp: api::SsdFirstKeysResp = self.call(api::SSD_FIRST_KEYS, &req)?;
        let kcv = |h: &Hex| <[u8; 3]>::try_from(h.as_bytes()).map_err(|_| transport_failed());
        let [a, b, c] = &resp.check_values;
        Ok(WrappedKeySet {
            data: resp.data.0,
            check_values: [kcv(a)?, kcv(b)?, kcv(c)?],
        })
    }

    fn export_key_set(
        &self,
        name: &KeyName,
        recipient: &[u8],
        _rng: &mut dyn Entropy,
    ) -> Result<Vec<u8>, VaultError> {
        let req = api::SsdKeyHandoverReq {
            key: name.clone(),
            recipient: Hex(recipient.to_vec()),
        };
        let resp: api::SsdKeyHandoverResp = self.call(api::SSD_KEY_HANDOVER, &req)?;
        Ok(resp.wrapped.0)
    }

    fn import_key_set(
        &mut self,
        _name: &KeyName,
        _transport: &KeyName,
        _wrapped: &[u8],
    ) -> Result<(), VaultError> {
        Err(VaultError::UnknownKey)
    }

    fn transport_public_key(&self, _transport: &KeyName) -> Result<Vec<u8>, VaultError> {
        Err(VaultError::UnknownKey)
    }

    fn delete_key(&mut self, name: &KeyName) {
        // The SEI holds initial sets only; the flows also ask it to forget the SP's set.
        if !self.names.is_initial_set(name) {
            return;
        }
        let req = api::SsdKeyReq {
            key: name.clone(),
            version: None,
        };
        let _ = self.call::<_, api::Empty>(api::DELETE_SSD, &req);
    }

    fn purse_perso_blocks(
        &self,
        _issuer: &KeyName,
        _card: &PurseCardSpec,
        _under: &KeyRef,
    ) -> Result<Vec<PersoBlock>, VaultError> {
        Err(VaultError::UnknownKey)
    }

    fn verify_mac1(&self, _issuer: &KeyName, _proof: &LoadProof) -> Result<(), VaultError> {
        Err(VaultError::UnknownKey)
    }

    fn load_mac2(
        &self,
        _issuer: &KeyName,
        _proof: &LoadProof,
        _datetime: &[u8; 7],
    ) -> Result<[u8; 4], VaultError> {
        Err(VaultError::UnknownKey)
    }

    fn verify_load_tac(
        &self,
        _issuer: &KeyName,
        _proof: &LoadProof,
        _datetime: &[u8; 7],
        _tac: &[u8; 4],
    ) -> Result<(), VaultError> {
        Err(VaultError::UnknownKey)
    }

    fn sign_token(
        &self,
        signer: &KeyName,
        kind: TokenKind,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let req = api::AcquireTokenReq {
            signer: signer.clone(),
            kind: wire::token_kind_name(kind).into(),
            p1,
            p2,
            data: Hex(data.to_vec()),
        };
        let resp: api::AcquireTokenResp = self.call(api::ACQUIRE_TOKEN, &req)?;
        Ok(resp.token.0)
    }

    fn verify_receipt(
        &self,
        key: &KeyName,
        response: &[u8],
        context: &ReceiptContext<'_>,
    ) -> Result<(), VaultError> {
        let (kind, aids) = wire::receipt_parts(context);
        let req = api::ReceiptVerifyReq {
            key: key.clone(),
            response: Hex(response.to_vec()),
            kind: kind.into(),
            aids: aids.into_iter().map(|a| Hex(a.to_vec())).collect(),
        };
        self.call::<_, api::Empty>(api::VERIFY_RECEIPT, &req)
            .map(|_| ())
    }
}
