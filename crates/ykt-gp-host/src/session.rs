//! [`GpSession`]: a security domain selected and a secure channel open over the caller's
//! transmit function, and the card management operations as typed methods.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_scp::{HostConfig, HostSession, KeySet, Protocol, SecurityLevel, StaticKeys};

use crate::commands::get_data::{
    self, CardData, Cplc, KeyInformation, TAG_CARD_DATA, TAG_CIN, TAG_CPLC, TAG_IIN,
    TAG_KEY_INFORMATION,
};
use crate::commands::get_status::{self, RegistryEntry, Scope};
use crate::commands::install::{self, Install, Receipt};
use crate::commands::load::{self, DapBlock};
use crate::commands::put_key::{self, KeyEncryptionKey};
use crate::commands::set_status;
use crate::commands::store_data::{self, StoreDataOptions};
use crate::diversify::{Diversification, diversify};
use crate::error::{Error, Operation, ParseError};
use crate::types::{Aid, CardLifeCycle, Privileges};

/// `6310`: more GET STATUS data (GP §11.4.3).
const MORE_DATA: StatusWord = StatusWord::new(0x63, 0x10);

/// How to open a session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The security domain to select and authenticate to (default: the ISD).
    pub security_domain: Aid,
    /// The static keys, or with `diversification` the master keys; `version` is the KVN sent
    /// in INITIALIZE UPDATE (`00`: the card's first key set).
    pub keys: KeySet,
    /// Diversify `keys` with the card's key diversification data before authenticating.
    pub diversification: Option<Diversification>,
    /// The secure channel protocol and `i`.
    pub protocol: Protocol,
    /// The security level for EXTERNAL AUTHENTICATE.
    pub level: SecurityLevel,
}

/// The whole registry as GET STATUS lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registry {
    /// The ISD (P1 `80`).
    pub issuer_security_domain: Vec<RegistryEntry>,
    /// Applications and supplementary security domains (P1 `40`).
    pub applications: Vec<RegistryEntry>,
    /// Executable load files, with their modules when the card lists them (P1 `10`, else `20`).
    pub load_files: Vec<RegistryEntry>,
}

impl Registry {
    /// All entries: ISD, load files, applications and SSDs.
    pub fn entries(&self) -> impl Iterator<Item = &RegistryEntry> {
        self.issuer_security_domain
            .iter()
            .chain(&self.applications)
            .chain(&self.load_files)
    }
}

/// Sends `bytes`, parsing the response.
fn call<T, E>(transmit: &mut T, bytes: &[u8], op: Operation) -> Result<ResponseApdu, Error<E>>
where
    T: FnMut(&[u8]) -> Result<Vec<u8>, E>,
{
    let raw = transmit(bytes).map_err(Error::Transport)?;
    ResponseApdu::parse(&raw).map_err(|_| Error::Malformed {
        operation: op,
        error: ParseError::ResponseTooShort(raw.len()),
    })
}

/// Sends one command as it is (no secure messaging) and follows ISO 7816-4 chaining: `6Cxx`
/// resends with `Le` = `xx`, `61xx` fetches the rest with GET RESPONSE.
pub fn transceive<T, E>(transmit: &mut T, cmd: &CommandApdu) -> Result<ResponseApdu, Error<E>>
where
    T: FnMut(&[u8]) -> Result<Vec<u8>, E>,
{
    let op = Operation::from_ins(cmd.ins);
    let mut resp = call(transmit, &cmd.to_bytes(), op)?;
    if resp.sw.sw1() == 0x6C {
        let mut again = cmd.clone();
        again.le = Some(if resp.sw.sw2() == 0 {
            256
        } else {
            usize::from(resp.sw.sw2())
        });
        resp = call(transmit, &again.to_bytes(), op)?;
    }
    let mut data = core::mem::take(&mut resp.data);
    let mut parts = 0;
    while resp.sw.sw1() == 0x61 {
        parts += 1;
        if parts > 256 {
            return Err(Error::Malformed {
                operation: Operation::GetResponse,
                error: ParseError::TooManyParts,
            });
        }
        let get =
            CommandApdu::new(cmd.cla & 0x03, 0xC0, 0x00, 0x00).with_le(if resp.sw.sw2() == 0 {
                256
            } else {
                usize::from(resp.sw.sw2())
            });
        resp = call(transmit, &get.to_bytes(), Operation::GetResponse)?;
        data.append(&mut resp.data);
    }
    Ok(ResponseApdu::new(data, resp.sw))
}

/// SELECT by AID (`00 A4 04 00 Lc AID 00`, ISO/IEC 7816-4 §11.2.2): the FCI on success.
pub fn select<T, E>(transmit: &mut T, aid: &Aid) -> Result<Vec<u8>, Error<E>>
where
    T: FnMut(&[u8]) -> Result<Vec<u8>, E>,
{
    let cmd = CommandApdu::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(aid.as_bytes().to_vec())
        .with_le(256);
    let resp = transceive(transmit, &cmd)?;
    if resp.sw == StatusWord::SUCCESS {
        Ok(resp.data)
    } else {
        Err(Error::Card {
            operation: Operation::Select,
            sw: resp.sw,
        })
    }
}

/// GET DATA outside a secure channel (GP §11.3 allows it for the card's public data: CPLC,
/// card data, IIN, CIN, key information): the value of `tag`.
pub fn get_data_plain<T, E>(transmit: &mut T, tag: u16) -> Result<Vec<u8>, Error<E>>
where
    T: FnMut(&[u8]) -> Result<Vec<u8>, E>,
{
    let resp = transceive(transmit, &get_data::get_data(tag))?;
    if resp.sw != StatusWord::SUCCESS {
        return Err(Error::Card {
            operation: Operation::GetData,
            sw: resp.sw,
        });
    }
    get_data::parse_data_object(tag, &resp.data).map_err(|error| Error::Malformed {
        operation: Operation::GetData,
        error,
    })
}

/// A security domain selected and an authenticated secure channel to it, over `transmit`.
///
/// ```text
/// open: SELECT SD ─▶ INITIALIZE UPDATE ─▶ [diversify keys with KDD] ─▶ EXTERNAL AUTHENTICATE
/// then: list / get_data / install / load / delete / put_key / store_data / set_status …
///       each: build (commands::*) ─▶ wrap ─▶ transmit ─▶ [61xx chaining] ─▶ unwrap ─▶ parse
/// ```
///
/// A refused command leaves the session open (the card answered outside the R-MAC); a
/// channel failure (bad R-MAC) closes it, and every later command gives [`Error::Channel`].
pub struct GpSession<T> {
    transmit: T,
    channel: HostSession,
    protocol: Protocol,
    keys: KeySet,
    security_domain: Aid,
    key_diversification_data: [u8; 10],
}

impl<T> core::fmt::Debug for GpSession<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GpSession")
            .field("security_domain", &self.security_domain)
            .field("protocol", &self.protocol)
            .field("level", &self.channel.level())
            .field("key_version", &self.keys.version)
            .finish_non_exhaustive()
    }
}

impl<T, E> GpSession<T>
where
    T: FnMut(&[u8]) -> Result<Vec<u8>, E>,
{
    /// Selects the security domain and opens the secure channel (tsm-gp.md §5). The host
    /// challenge is the caller's randomness (8 bytes; 16 in SCP03 S16 mode).
    pub fn open(
        mut transmit: T,
        config: SessionConfig,
        host_challenge: &[u8],
    ) -> Result<Self, Error<E>> {
        select(&mut transmit, &config.security_domain)?;
        let host_config = |keys: KeySet| HostConfig {
            keys,
            protocol: config.protocol,
            level: config.level,
            security_domain_aid: Some(config.security_domain.as_bytes().to_vec()),
        };
        let (mut channel, iu) =
            HostSession::initialize_update(host_config(config.keys.clone()), host_challenge)?;
        let resp = transceive(&mut transmit, &iu)?;
        if resp.sw != StatusWord::SUCCESS {
            return Err(Error::Card {
                operation: Operation::InitializeUpdate,
                sw: resp.sw,
            });
        }
        let mut kdd = [0u8; 10];
        if let Some(first) = resp.data.get(..10) {
            kdd.copy_from_slice(first);
        }
        let keys = match config.diversification {
            None => config.keys,
            Some(method) => {
                let keys = diversify(&config.keys, method, &kdd, config.keys.version)?;
                // The same INITIALIZE UPDATE (same KVN and challenge), now with the card's keys;
                // the command it builds was sent already.
                let (session, _) =
                    HostSession::initialize_update(host_config(keys.clone()), host_challenge)?;
                channel = session;
                keys
            }
        };
        let ea = channel.on_initialize_update_response(&resp)?;
        let resp = transceive(&mut transmit, &ea)?;
        if resp.sw != StatusWord::SUCCESS {
            return Err(Error::Card {
                operation: Operation::ExternalAuthenticate,
                sw: resp.sw,
            });
        }
        channel.on_external_authenticate_response(&resp)?;
        let version = channel
            .card_info()
            .map_or(keys.version, |info| info.key_version);
        Ok(Self {
            transmit,
            channel,
            protocol: config.protocol,
            keys: KeySet {
                version,
                keys: keys.keys,
            },
            security_domain: config.security_domain,
            key_diversification_data: kdd,
        })
    }

    /// Wraps `cmd`, sends it, follows chaining and unwraps the response (R-MAC, R-ENC) when
    /// it succeeded or warned; an error status comes back as it is, in the response.
    pub fn send(&mut self, cmd: &CommandApdu) -> Result<ResponseApdu, Error<E>> {
        let wrapped = self.channel.wrap(cmd)?;
        let resp = transceive(&mut self.transmit, &wrapped)?;
        if resp.sw == StatusWord::SUCCESS || resp.sw.is_warning() {
            Ok(self.channel.unwrap(&resp)?)
        } else {
            Ok(resp)
        }
    }

    /// [`GpSession::send`], requiring `9000`: the response data.
    fn exchange(&mut self, cmd: &CommandApdu) -> Result<Vec<u8>, Error<E>> {
        let resp = self.send(cmd)?;
        if resp.sw == StatusWord::SUCCESS {
            Ok(resp.data)
        } else {
            Err(Error::Card {
                operation: Operation::from_ins(cmd.ins),
                sw: resp.sw,
            })
        }
    }

    fn malformed(operation: Operation) -> impl FnOnce(ParseError) -> Error<E> {
        move |error| Error::Malformed { operation, error }
    }

    /// The largest plain data field that still fits one short command after secure messaging
    /// at this session's level (for LOAD and STORE DATA blocks).
    pub fn max_block_size(&self) -> usize {
        let (mac, block) = match self.protocol {
            Protocol::Scp02(_) => (8, 8),
            Protocol::Scp03(o) | Protocol::Sm4(o) => (if o.s16() { 16 } else { 8 }, 16),
        };
        let level = self.channel.level();
        let room = 255 - if level.c_mac() { mac } else { 0 };
        if level.c_dec() {
            room / block * block - 1
        } else {
            room
        }
    }

    /// The selected security domain.
    pub fn security_domain(&self) -> &Aid {
        &self.security_domain
    }

    /// The key version the card authenticated with.
    pub fn key_version(&self) -> u8 {
        self.keys.version
    }

    /// The key diversification data of the card's INITIALIZE UPDATE response.
    pub fn key_diversification_data(&self) -> &[u8; 10] {
        &self.key_diversification_data
    }

    /// The protocol of the session.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The security level of the session.
    pub fn level(&self) -> SecurityLevel {
        self.channel.level()
    }

    /// Gives the transmit function back.
    pub fn into_transmit(self) -> T {
        self.transmit
    }

    // --- GET STATUS (GP §11.4, tsm-gp.md §3.4) ---

    /// Every entry of `scope`, following `6310` with "next occurrence" requests. A scope with
    /// no entries (`6A88`) is an empty list.
    pub fn list(&mut self, scope: Scope) -> Result<Vec<RegistryEntry>, Error<E>> {
        let mut entries = Vec::new();
        let mut next = false;
        for _ in 0..256 {
            let resp = self.send(&get_status::get_status(scope, next))?;
            match resp.sw {
                StatusWord::REFERENCED_DATA_NOT_FOUND if !next => return Ok(entries),
                StatusWord::SUCCESS | MORE_DATA => {
                    let part = get_status::parse_get_status(scope, &resp.data)
                        .map_err(Self::malformed(Operation::GetStatus))?;
                    entries.extend(part);
                    if resp.sw == StatusWord::SUCCESS {
                        return Ok(entries);
                    }
                    next = true;
                }
                sw => {
                    return Err(Error::Card {
                        operation: Operation::GetStatus,
                        sw,
                    });
                }
            }
        }
        Err(Error::Malformed {
            operation: Operation::GetStatus,
            error: ParseError::TooManyParts,
        })
    }

    /// The ISD, the applications and SSDs, and the load files with their modules (P1 `10`;
    /// P1 `20` when the card refuses `10` with `6A86`).
    pub fn registry(&mut self) -> Result<Registry, Error<E>> {
        let issuer_security_domain = self.list(Scope::IssuerSecurityDomain)?;
        let applications = self.list(Scope::Applications)?;
        let load_files = match self.list(Scope::LoadFilesAndModules) {
            Err(Error::Card {
                sw: StatusWord::INCORRECT_P1P2,
                ..
            }) => self.list(Scope::LoadFiles)?,
            other => other?,
        };
        Ok(Registry {
            issuer_security_domain,
            applications,
            load_files,
        })
    }

    // --- GET DATA (GP §11.3) ---

    /// The value of data object `tag`.
    pub fn get_data(&mut self, tag: u16) -> Result<Vec<u8>, Error<E>> {
        let data = self.exchange(&get_data::get_data(tag))?;
        get_data::parse_data_object(tag, &data).map_err(Self::malformed(Operation::GetData))
    }

    /// Card production life cycle data (`9F7F`).
    pub fn cplc(&mut self) -> Result<Cplc, Error<E>> {
        let v = self.get_data(TAG_CPLC)?;
        Cplc::parse(&v).map_err(Self::malformed(Operation::GetData))
    }

    /// Card recognition data (`66`).
    pub fn card_data(&mut self) -> Result<CardData, Error<E>> {
        let v = self.get_data(TAG_CARD_DATA)?;
        get_data::parse_card_data(&v).map_err(Self::malformed(Operation::GetData))
    }

    /// The key information template (`E0`).
    pub fn key_information(&mut self) -> Result<Vec<KeyInformation>, Error<E>> {
        let v = self.get_data(TAG_KEY_INFORMATION)?;
        get_data::parse_key_information(&v).map_err(Self::malformed(Operation::GetData))
    }

    /// The issuer identification number (`42`).
    pub fn iin(&mut self) -> Result<Vec<u8>, Error<E>> {
        self.get_data(TAG_IIN)
    }

    /// The card image number (`45`).
    pub fn cin(&mut self) -> Result<Vec<u8>, Error<E>> {
        self.get_data(TAG_CIN)
    }

    // --- INSTALL and LOAD (GP §11.5, §11.6) ---

    /// INSTALL [for load] of `load_file` into `security_domain` (`None`: this one), with the
    /// load file data block's SHA-256 hash when `hash` is given.
    pub fn install_for_load(
        &mut self,
        load_file: &Aid,
        security_domain: Option<&Aid>,
        hash: Option<&[u8]>,
        load_parameters: &[u8],
        token: &[u8],
    ) -> Result<Option<Receipt>, Error<E>> {
        let cmd =
            install::install_for_load(load_file, security_domain, hash, load_parameters, token)?;
        let data = self.exchange(&cmd)?;
        install::parse_receipt(&data).map_err(Self::malformed(Operation::Install))
    }

    /// LOAD of `load_file_data_block` (with DAP blocks) in blocks of
    /// [`GpSession::max_block_size`]; the receipt of the last block.
    pub fn load(
        &mut self,
        load_file_data_block: &[u8],
        dap: &[DapBlock],
    ) -> Result<Option<Receipt>, Error<E>> {
        self.load_in_blocks(load_file_data_block, dap, self.max_block_size())
    }

    /// LOAD in blocks of at most `block_size` bytes (capped at [`GpSession::max_block_size`]).
    pub fn load_in_blocks(
        &mut self,
        load_file_data_block: &[u8],
        dap: &[DapBlock],
        block_size: usize,
    ) -> Result<Option<Receipt>, Error<E>> {
        let payload = load::load_payload(load_file_data_block, dap);
        let mut last = Vec::new();
        let size = block_size.min(self.max_block_size());
        for cmd in load::load_commands(&payload, size)? {
            last = self.exchange(&cmd)?;
        }
        install::parse_receipt(&last).map_err(Self::malformed(Operation::Load))
    }

    /// INSTALL [for install] (and make selectable).
    pub fn install(
        &mut self,
        install: &Install,
        make_selectable: bool,
    ) -> Result<Option<Receipt>, Error<E>> {
        let data = self.exchange(&install::install_for_install(install, make_selectable)?)?;
        install::parse_receipt(&data).map_err(Self::malformed(Operation::Install))
    }

    /// INSTALL [for make selectable].
    pub fn make_selectable(
        &mut self,
        instance: &Aid,
        privileges: Privileges,
        token: &[u8],
    ) -> Result<Option<Receipt>, Error<E>> {
        let data = self.exchange(&install::install_for_make_selectable(
            instance, privileges, token,
        )?)?;
        install::parse_receipt(&data).map_err(Self::malformed(Operation::Install))
    }

    /// INSTALL [for extradition] of `application` to `destination`.
    pub fn extradite(
        &mut self,
        destination: &Aid,
        application: &Aid,
        parameters: &[u8],
        token: &[u8],
    ) -> Result<Option<Receipt>, Error<E>> {
        let cmd = install::install_for_extradition(destination, application, parameters, token)?;
        let data = self.exchange(&cmd)?;
        install::parse_receipt(&data).map_err(Self::malformed(Operation::Install))
    }

    /// INSTALL [for registry update].
    pub fn registry_update(
        &mut self,
        security_domain: Option<&Aid>,
        application: &Aid,
        privileges: Option<Privileges>,
        parameters: &[u8],
        token: &[u8],
    ) -> Result<Option<Receipt>, Error<E>> {
        let cmd = install::install_for_registry_update(
            security_domain,
            application,
            privileges,
            parameters,
            token,
        )?;
        let data = self.exchange(&cmd)?;
        install::parse_receipt(&data).map_err(Self::malformed(Operation::Install))
    }

    /// INSTALL [for personalization] of `application`, then STORE DATA of `blocks` through
    /// this security domain; the response data of each block.
    pub fn personalize(
        &mut self,
        application: &Aid,
        options: StoreDataOptions,
        blocks: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, Error<E>> {
        self.exchange(&install::install_for_personalization(application)?)?;
        self.store_data(options, blocks)
    }

    // --- DELETE (GP §11.2) ---

    /// DELETE of `aid` (and its related objects when `related`), with a delete token.
    pub fn delete(
        &mut self,
        aid: &Aid,
        related: bool,
        token: Option<&[u8]>,
    ) -> Result<Option<Receipt>, Error<E>> {
        let data = self.exchange(&crate::commands::delete::delete(aid, related, token)?)?;
        install::parse_receipt(&data).map_err(Self::malformed(Operation::Delete))
    }

    /// DELETE of a key (by identifier) or a key set (by version).
    pub fn delete_key(&mut self, key_id: Option<u8>, version: Option<u8>) -> Result<(), Error<E>> {
        self.exchange(&crate::commands::delete::delete_key(key_id, version)?)?;
        Ok(())
    }

    // --- PUT KEY (GP §11.8, tsm-gp.md §3.6) ---

    /// The key that encrypts sensitive data in this session: the SCP02 session DEK, or the
    /// static K-DEK of SCP03 and the SM4 channel.
    fn key_encryption_key(&self) -> Result<KeyEncryptionKey<'_>, Error<E>> {
        match (&self.protocol, &self.keys.keys) {
            (Protocol::Scp02(_), _) => self
                .channel
                .scp02_session_dek()
                .map(KeyEncryptionKey::Scp02SessionDek)
                .ok_or(Error::Build(crate::BuildError::NoSessionDek)),
            (_, keys @ (StaticKeys::Aes { .. } | StaticKeys::Sm4 { .. })) => {
                Ok(KeyEncryptionKey::Static(keys))
            }
            _ => Err(Error::Build(crate::BuildError::KeyType)),
        }
    }

    /// Encrypts sensitive data (whole cipher blocks) as the card decrypts it: for STORE DATA
    /// with [`store_data::Encryption::Encrypted`].
    pub fn encrypt_sensitive(&self, data: &[u8]) -> Result<Vec<u8>, Error<E>> {
        Ok(put_key::encrypt_sensitive(
            &self.key_encryption_key()?,
            data,
        )?)
    }

    /// PUT KEY of `new` (its version the new KVN), replacing key version `replace` (`None`:
    /// add). The card's key version and check values are checked against the host's.
    /// The session keeps running on the keys it was opened with.
    pub fn put_key(&mut self, replace: Option<u8>, new: &KeySet) -> Result<(), Error<E>> {
        let (cmd, kcvs) = put_key::put_key(replace, new, &self.key_encryption_key()?)?;
        let data = self.exchange(&cmd)?;
        let confirmed = put_key::confirms(&data, new.version, &kcvs)
            .map_err(Self::malformed(Operation::PutKey))?;
        if !confirmed {
            return Err(Error::KeyCheck);
        }
        Ok(())
    }

    /// PUT KEY's data field for `new` encrypted under this session's key-encryption key, with
    /// the check values to expect (for key sets sent another way, e.g. inside STORE DATA).
    pub fn key_set_data(
        &self,
        new: &KeySet,
    ) -> Result<(Vec<u8>, put_key::KeyCheckValues), Error<E>> {
        Ok(put_key::key_set_data(new, &self.key_encryption_key()?)?)
    }

    // --- STORE DATA (GP §11.11) ---

    /// STORE DATA of `blocks`, numbered from `00`, the last one flagged; the response data of
    /// each block.
    pub fn store_data(
        &mut self,
        options: StoreDataOptions,
        blocks: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, Error<E>> {
        store_data::store_data_blocks(options, blocks)?
            .iter()
            .map(|cmd| self.exchange(cmd))
            .collect()
    }

    // --- SET STATUS (GP §11.10) ---

    /// Sets the card life cycle state.
    pub fn set_card_state(&mut self, state: CardLifeCycle) -> Result<(), Error<E>> {
        self.exchange(&set_status::set_card_state(state))?;
        Ok(())
    }

    /// Sets an application's or SSD's state (P1 `40`): `p2` as in [`set_status`].
    pub fn set_application_state(&mut self, aid: &Aid, p2: u8) -> Result<(), Error<E>> {
        self.exchange(&set_status::set_application_state(aid, p2)?)?;
        Ok(())
    }

    /// Locks an application or SSD.
    pub fn lock(&mut self, aid: &Aid) -> Result<(), Error<E>> {
        self.set_application_state(aid, set_status::P2_LOCK)
    }

    /// Unlocks an application or SSD.
    pub fn unlock(&mut self, aid: &Aid) -> Result<(), Error<E>> {
        self.set_application_state(aid, set_status::P2_UNLOCK)
    }
}
