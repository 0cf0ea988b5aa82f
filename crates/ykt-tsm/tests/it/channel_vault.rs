//! Secure channels get their session keys from the vault (`KeyVault::channel_operation`): a
//! vault that cannot compute them fails the step with the vault's own error, and nothing of
//! the step reaches the card.

use ykt_gp::dm::{ReceiptContext, TokenKind};
use ykt_scp::{StaticKeyKind, StaticKeyOperation};
use ykt_tsm::vault::{Entropy, KeyEncryption, LoadProof, PersoBlock, WrappedKeySet};
use ykt_tsm::*;
use zeroize::Zeroizing;

use crate::support::*;

/// A memory vault whose channel operations fail (an HSM that went away mid-session).
struct NoChannel(MemoryVault);

impl KeyVault for NoChannel {
    fn contains(&self, name: &KeyName) -> bool {
        self.0.contains(name)
    }
    fn channel_key_info(&self, keys: &KeyRef) -> Result<(u8, StaticKeyKind), VaultError> {
        self.0.channel_key_info(keys)
    }
    fn channel_operation(
        &self,
        _: &KeyRef,
        _: &StaticKeyOperation<'_>,
    ) -> Result<Zeroizing<[u8; 16]>, VaultError> {
        Err(VaultError::Crypto)
    }
    fn generate_key_set(
        &mut self,
        name: &KeyName,
        version: u8,
        rng: &mut dyn Entropy,
    ) -> Result<(), VaultError> {
        self.0.generate_key_set(name, version, rng)
    }
    fn wrap_key_set(
        &self,
        new: &KeyName,
        under: &KeyRef,
        encryption: KeyEncryption,
    ) -> Result<WrappedKeySet, VaultError> {
        self.0.wrap_key_set(new, under, encryption)
    }
    fn export_key_set(
        &self,
        name: &KeyName,
        recipient: &[u8],
        rng: &mut dyn Entropy,
    ) -> Result<Vec<u8>, VaultError> {
        self.0.export_key_set(name, recipient, rng)
    }
    fn import_key_set(
        &mut self,
        name: &KeyName,
        transport: &KeyName,
        wrapped: &[u8],
    ) -> Result<(), VaultError> {
        self.0.import_key_set(name, transport, wrapped)
    }
    fn transport_public_key(&self, transport: &KeyName) -> Result<Vec<u8>, VaultError> {
        self.0.transport_public_key(transport)
    }
    fn delete_key(&mut self, name: &KeyName) {
        self.0.delete_key(name)
    }
    fn purse_perso_blocks(
        &self,
        issuer: &KeyName,
        card: &PurseCardSpec,
        under: &KeyRef,
    ) -> Result<Vec<PersoBlock>, VaultError> {
        self.0.purse_perso_blocks(issuer, card, under)
    }
    fn verify_mac1(&self, issuer: &KeyName, proof: &LoadProof) -> Result<(), VaultError> {
        self.0.verify_mac1(issuer, proof)
    }
    fn load_mac2(
        &self,
        issuer: &KeyName,
        proof: &LoadProof,
        datetime: &[u8; 7],
    ) -> Result<[u8; 4], VaultError> {
        self.0.load_mac2(issuer, proof, datetime)
    }
    fn verify_load_tac(
        &self,
        issuer: &KeyName,
        proof: &LoadProof,
        datetime: &[u8; 7],
        tac: &[u8; 4],
    ) -> Result<(), VaultError> {
        self.0.verify_load_tac(issuer, proof, datetime, tac)
    }
    fn sign_token(
        &self,
        signer: &KeyName,
        kind: TokenKind,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        self.0.sign_token(signer, kind, p1, p2, data)
    }
    fn verify_receipt(
        &self,
        key: &KeyName,
        response: &[u8],
        context: &ReceiptContext<'_>,
    ) -> Result<(), VaultError> {
        self.0.verify_receipt(key, response, context)
    }
}

#[test]
fn a_vault_that_cannot_derive_session_keys_fails_the_step() {
    let mut world = World::new();
    let mut sei = NoChannel(core::mem::take(&mut world.sei));
    let mut card = new_se(40);
    let mut flow = Flow::open_card("open-x", parties(), Management::Authorized, test_card());
    let mut response: Option<RelayResponse> = None;
    let mut sent = Vec::new();
    let err = loop {
        let mut env = Env {
            sei: &mut sei,
            sp: &mut world.sp,
            payments: &mut world.payments,
            rng: &mut world.rng,
            now: NOW,
        };
        match flow.next(&mut env, response.as_ref()) {
            Ok(Output::Relay(req)) => {
                sent.extend(req.capdus.iter().map(|c| c.as_bytes().to_vec()));
                response = Some(relay(&mut card, &req));
            }
            Ok(Output::Done(_)) => panic!("the flow finished without session keys"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            err,
            Error::Vault {
                error: VaultError::Crypto,
                ..
            }
        ),
        "{err:?}"
    );
    // The flow got as far as INITIALIZE UPDATE and sent no EXTERNAL AUTHENTICATE.
    assert!(sent.iter().any(|c| c[..2] == [0x80, 0x50]));
    assert!(!sent.iter().any(|c| c[1] == 0x82));
}
