//! The steps of the flows (tsm-gp.md §7, §8), each with its commands (`run`), what its
//! answers mean (`finish`), and — for every step that changes the card — the probe a resumed
//! flow sends first (`probe`) and how the answer decides "done already" (`decide`).
//!
//! | step | role | channel | commands | probe after a crash |
//! |---|---|---|---|---|
//! | `RegisterSe` | SEI | plain | SELECT ISD, GET DATA `9F7F` | — (read only) |
//! | `CreateSsd` | SEI | ISD | INSTALL [install + selectable] of the SSD (§3.9) | GET STATUS of the SSD |
//! | `SsdFirstKeys` | SEI | ISD | INSTALL [for personalization], STORE DATA DGI `8001` | INITIALIZE UPDATE on the SSD: key version |
//! | `HandOverSsdKeys` | SEI → SP | — | vault export (SM2) and import (§6) | — (idempotent) |
//! | `RotateSsdKeys` | SP | SSD, initial keys | PUT KEY replacing the initial KVN (§3.6) | INITIALIZE UPDATE: key version |
//! | `LoadPurse` | SP | SSD | INSTALL [for load] (+token), LOAD (§3.1, §3.2) | GET STATUS of the ELF |
//! | `InstallPurse` | SP | SSD | INSTALL [install (+ selectable)] (+token) | GET STATUS of the purse |
//! | `MakeSelectable` | SP | SSD | INSTALL [make selectable] + token (DM only) | GET STATUS: SELECTABLE |
//! | `PersonalisePurse` | SP | SSD | INSTALL [for personalization], STORE DATA DGIs (secret blocks under the DEK) | SELECT purse, GET BALANCE |
//! | `VerifyActive` | SP | plain | SELECT purse (EF15 in the FCI), GET BALANCE | — |
//! | `ConfirmPayment` | SP | — | payment provider | — |
//! | `InitializeLoad` | SP | plain | SELECT purse, INITIALIZE FOR LOAD → MAC1 checked, MAC2 | — (changes nothing) |
//! | `CreditLoad` | SP | plain | CREDIT FOR LOAD → TAC checked | GET TRANSACTION PROVE of the counter, INITIALIZE FOR LOAD |
//! | `ProveBalance` | SP | plain | SELECT purse, INITIALIZE FOR LOAD of 0 → MAC1 checked | — |
//! | `LockPurse`, `UnlockPurse` | SEI | ISD | SET STATUS `40`/`80` (`00`) of the purse | GET STATUS: (not) LOCKED |
//! | `Refund`, `Escrow`, `ReleaseEscrow`, `SettleEscrow` | SP | — | payment provider (idempotent by id) | — |
//! | `DeletePurse` | SP | SSD | DELETE of the ELF and its instances (+token) | GET STATUS of the ELF |
//! | `DeleteSsd` | SEI | ISD | DELETE of the SSD | GET STATUS of the SSD |
//! | `QueryStatus` | SEI | ISD | GET STATUS (applications, load files) | — |
//! | `QueryCardData` | SP | plain | SELECT purse, GET BALANCE | — |

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};
use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_gp::dm::{ReceiptContext, TokenKind};
use ykt_gp_host::commands::get_data::{self, TAG_CPLC};
use ykt_gp_host::commands::get_status::{self, Scope};
use ykt_gp_host::commands::{delete, install, load, put_key, set_status, store_data};
use ykt_gp_host::{Aid, Cplc, Install, InstallParameters, Privileges};

use crate::error::{AnswerError, Error};
use crate::flow::{Cmd, Ctx, EntryView, Env, FlowState, Role, Runtime};
use crate::hex::Hex;
use crate::model::{CardNumber, InstanceState, Management, SeId, SeState};
use crate::payment::LoadReceipt;
use crate::proposals as p;
use crate::vault::{KeyEncryption, KeyRef, LoadProof};

/// How PUT KEY and DGI `8001` key values are encrypted: every channel of this TSM is SCP03
/// ([`p::SCP_I`]), so under the static K-DEK (tsm-gp.md §5.2); an SCP02 domain would need
/// [`KeyEncryption::Scp02SessionDek`] with the channel's sequence counter (§5.1).
const KEY_ENCRYPTION: KeyEncryption = KeyEncryption::StaticDek;

/// A step's name (`FAILED_<name>` in the §8 state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StepName {
    /// SEI: SE registration (CPLC, SEID).
    RegisterSe,
    /// SEI: INSTALL of the SSD under the ISD.
    CreateSsd,
    /// SEI: the SSD's first keys (DGI `8001`).
    SsdFirstKeys,
    /// SEI → SP: the initial keys, SM2-wrapped.
    HandOverSsdKeys,
    /// SP: PUT KEY of its own SSD keys.
    RotateSsdKeys,
    /// SP: INSTALL [for load] and LOAD of the purse package.
    LoadPurse,
    /// SP: INSTALL [for install] of the purse.
    InstallPurse,
    /// SP: INSTALL [for make selectable] (delegated management).
    MakeSelectable,
    /// SP: personalisation.
    PersonalisePurse,
    /// SP: the purse answers with its card number and balance.
    VerifyActive,
    /// SP: the payment provider confirms the order.
    ConfirmPayment,
    /// SP: INITIALIZE FOR LOAD, MAC1, MAC2.
    InitializeLoad,
    /// SP: CREDIT FOR LOAD, TAC.
    CreditLoad,
    /// SP: the balance, proven by MAC1.
    ProveBalance,
    /// SP (through the SEI): SET STATUS lock of the purse.
    LockPurse,
    /// SP (through the SEI): SET STATUS unlock of the purse.
    UnlockPurse,
    /// SP: refund of the proven balance.
    Refund,
    /// SP: escrow of the proven balance (transfer out).
    Escrow,
    /// SP: the escrowed balance of a transfer (transfer in).
    ReleaseEscrow,
    /// SP: escrow settled after the load.
    SettleEscrow,
    /// SP: DELETE of the purse and its package.
    DeletePurse,
    /// SEI: DELETE of the SSD.
    DeleteSsd,
    /// SEI: GET STATUS.
    QueryStatus,
    /// SP: card number and balance.
    QueryCardData,
}

impl StepName {
    /// `CREATE_SSD` etc.
    pub fn upper(self) -> &'static str {
        match self {
            Self::RegisterSe => "REGISTER_SE",
            Self::CreateSsd => "CREATE_SSD",
            Self::SsdFirstKeys => "SSD_FIRST_KEYS",
            Self::HandOverSsdKeys => "HAND_OVER_SSD_KEYS",
            Self::RotateSsdKeys => "ROTATE_SSD_KEYS",
            Self::LoadPurse => "LOAD_PURSE",
            Self::InstallPurse => "INSTALL_PURSE",
            Self::MakeSelectable => "MAKE_SELECTABLE",
            Self::PersonalisePurse => "PERSONALISE_PURSE",
            Self::VerifyActive => "VERIFY_ACTIVE",
            Self::ConfirmPayment => "CONFIRM_PAYMENT",
            Self::InitializeLoad => "INITIALIZE_LOAD",
            Self::CreditLoad => "CREDIT_LOAD",
            Self::ProveBalance => "PROVE_BALANCE",
            Self::LockPurse => "LOCK_PURSE",
            Self::UnlockPurse => "UNLOCK_PURSE",
            Self::Refund => "REFUND",
            Self::Escrow => "ESCROW",
            Self::ReleaseEscrow => "RELEASE_ESCROW",
            Self::SettleEscrow => "SETTLE_ESCROW",
            Self::DeletePurse => "DELETE_PURSE",
            Self::DeleteSsd => "DELETE_SSD",
            Self::QueryStatus => "QUERY_STATUS",
            Self::QueryCardData => "QUERY_CARD_DATA",
        }
    }

    /// The TSM that performs it (tsm-gp.md §2).
    pub fn role(self) -> Role {
        match self {
            Self::RegisterSe
            | Self::CreateSsd
            | Self::SsdFirstKeys
            | Self::HandOverSsdKeys
            | Self::DeleteSsd
            | Self::QueryStatus => Role::Sei,
            Self::LockPurse | Self::UnlockPurse if p::LOCK_THROUGH_ISD => Role::Sei,
            _ => Role::Sp,
        }
    }
}

/// The §8 state a step moves the instance to when it begins.
pub(crate) fn entering(step: StepName) -> Option<InstanceState> {
    Some(match step {
        StepName::CreateSsd => InstanceState::SsdCreating,
        StepName::LoadPurse => InstanceState::AppLoading,
        StepName::PersonalisePurse => InstanceState::Personalising,
        StepName::Refund => InstanceState::Refunding,
        StepName::Escrow => InstanceState::TransferOut,
        StepName::DeletePurse => InstanceState::Deleting,
        _ => return None,
    })
}

/// The §8 state a step leaves the instance in.
pub(crate) fn leaving(step: StepName) -> Option<InstanceState> {
    Some(match step {
        StepName::RotateSsdKeys => InstanceState::SsdReady,
        StepName::InstallPurse | StepName::MakeSelectable => InstanceState::AppInstalled,
        StepName::VerifyActive => InstanceState::Active,
        StepName::LockPurse => InstanceState::Locked,
        StepName::UnlockPurse => InstanceState::Active,
        StepName::DeleteSsd => InstanceState::Deleted,
        _ => return None,
    })
}

// --- command builders ------------------------------------------------------------------------

/// SELECT by AID (ISO/IEC 7816-4 §11.2.2).
pub(crate) fn select(aid: &[u8]) -> CommandApdu {
    CommandApdu::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(aid.to_vec())
        .with_le(256)
}

/// GET BALANCE of the e-purse (e-purse.md §4.2).
fn get_balance() -> CommandApdu {
    CommandApdu::new(0x80, 0x5C, 0x00, 0x02).with_le(4)
}

/// INITIALIZE FOR LOAD (e-purse.md §4.3).
fn initialize_for_load(amount: u32) -> CommandApdu {
    let mut data = alloc::vec![p::LOAD_KEY_INDEX];
    data.extend_from_slice(&amount.to_be_bytes());
    data.extend_from_slice(&p::ONLINE_LOAD_TERMINAL);
    CommandApdu::new(0x80, 0x50, 0x00, 0x02)
        .with_data(data)
        .with_le(0x10)
}

/// CREDIT FOR LOAD (e-purse.md §4.4).
fn credit_for_load(datetime: &[u8; 7], mac2: &[u8; 4]) -> CommandApdu {
    let mut data = datetime.to_vec();
    data.extend_from_slice(mac2);
    CommandApdu::new(0x80, 0x52, 0x00, 0x00)
        .with_data(data)
        .with_le(4)
}

/// GET TRANSACTION PROVE of a load (e-purse.md §4.8).
fn transaction_prove(counter: u16) -> CommandApdu {
    CommandApdu::new(0x80, 0x5A, 0x00, 0x02)
        .with_data(counter.to_be_bytes().to_vec())
        .with_le(8)
}

/// INITIALIZE UPDATE as a probe: the key version the SD answers (no channel is opened).
fn probe_key_version() -> CommandApdu {
    CommandApdu::new(0x80, 0x50, 0x00, 0x00)
        .with_data(alloc::vec![0u8; 8])
        .with_le(256)
}

fn aid(bytes: &[u8]) -> Result<Aid, Error> {
    Ok(Aid::new(bytes)?)
}

fn secure(
    state: &FlowState,
    step: StepName,
    domain: Domain,
    apdu: CommandApdu,
) -> Result<Cmd, Error> {
    let (aid, keys, role) = match domain {
        Domain::Isd => (
            ykt_gp_host::ISD_AID.to_vec(),
            state.isd_keys(step)?,
            Role::Sei,
        ),
        Domain::SsdInitial => (
            state.ssd_aid.0.clone(),
            KeyRef::Named(state.initial_keys(step)?),
            Role::Sp,
        ),
        Domain::Ssd => (
            state.ssd_aid.0.clone(),
            KeyRef::Named(state.sp_keys(step)?),
            Role::Sp,
        ),
    };
    Ok(Cmd {
        ctx: Ctx::Secure { aid, keys, role },
        apdu,
        expect: Some(StatusWord::SUCCESS),
    })
}

/// The security domain that locks the purse ([`p::LOCK_THROUGH_ISD`]).
fn lock_domain() -> Domain {
    if p::LOCK_THROUGH_ISD {
        Domain::Isd
    } else {
        Domain::Ssd
    }
}

#[derive(Clone, Copy)]
enum Domain {
    Isd,
    SsdInitial,
    Ssd,
}

fn status_of(scope: Scope, aid: &[u8]) -> Result<CommandApdu, Error> {
    Ok(get_status::get_status_matching(scope, aid, false)?)
}

/// The entry for exactly `aid` in a GET STATUS answer (`None` for `6A88` or no such entry).
fn entry(step: StepName, scope: Scope, r: &ResponseApdu, aid: &[u8]) -> Result<Option<u8>, Error> {
    match r.sw {
        StatusWord::REFERENCED_DATA_NOT_FOUND => Ok(None),
        StatusWord::SUCCESS => Ok(get_status::parse_get_status(scope, &r.data)
            .map_err(|_| Error::Answer {
                step,
                error: AnswerError::Malformed,
            })?
            .iter()
            .find(|e| e.aid == aid)
            .map(|e| e.life_cycle)),
        sw if sw.sw1() == 0x63 => Ok(get_status::parse_get_status(scope, &r.data)
            .ok()
            .and_then(|v| v.iter().find(|e| e.aid == aid).map(|e| e.life_cycle))),
        sw => Err(Error::Card { step, sw }),
    }
}

fn purse_aid() -> &'static [u8] {
    &ykt_purse::EP_AID
}

/// A tokenised INSTALL (delegated management) or a plain one.
fn install_cmd(
    state: &FlowState,
    env: &mut Env<'_>,
    step: StepName,
    p1: u8,
    fields: &[&[u8]],
) -> Result<CommandApdu, Error> {
    let kind = TokenKind::for_install_p1(p1).ok_or(Error::State)?;
    let data = ykt_gp::dm::lv_chain(fields)?;
    let token = match state.management {
        Management::Authorized => Vec::new(),
        Management::Delegated => env
            .sei
            .sign_token(&state.parties.token_signer, kind, p1, 0x00, &data)
            .map_err(|error| Error::Vault { step, error })?,
    };
    Ok(CommandApdu::new(0x80, 0xE6, p1, 0x00)
        .with_data(ykt_gp::dm::append_install_token(&data, &token))
        .with_le(256))
}

fn check_receipt(
    state: &FlowState,
    env: &mut Env<'_>,
    step: StepName,
    response: &ResponseApdu,
    context: &ReceiptContext<'_>,
) -> Result<(), Error> {
    if state.management == Management::Delegated {
        env.sei
            .verify_receipt(&state.parties.receipt_key, &response.data, context)
            .map_err(|error| Error::Vault { step, error })?;
    }
    Ok(())
}

fn parse_load(
    step: StepName,
    card: CardNumber,
    amount: u32,
    r: &ResponseApdu,
) -> Result<LoadProof, Error> {
    let d: &[u8; 16] = r.data.as_slice().try_into().map_err(|_| Error::Answer {
        step,
        error: AnswerError::Length,
    })?;
    let four = |i: usize| [d[i], d[i + 1], d[i + 2], d[i + 3]];
    Ok(LoadProof {
        card,
        key_index: p::LOAD_KEY_INDEX,
        key_version: d[6],
        algorithm_id: d[7],
        old_balance: u32::from_be_bytes(four(0)),
        online_counter: u16::from_be_bytes([d[4], d[5]]),
        random: four(8),
        mac1: four(12),
        amount,
        terminal_id: p::ONLINE_LOAD_TERMINAL,
    })
}

fn balance_of(step: StepName, r: &ResponseApdu) -> Result<u32, Error> {
    let b: [u8; 4] = r.data.as_slice().try_into().map_err(|_| Error::Answer {
        step,
        error: AnswerError::Length,
    })?;
    Ok(u32::from_be_bytes(b))
}

/// The card number in a purse FCI: EF15 (`9F0C`, e-purse.md §1) bytes 10..20.
fn card_number_in_fci(step: StepName, fci: &[u8]) -> Result<CardNumber, Error> {
    let bad = Error::Answer {
        step,
        error: AnswerError::Malformed,
    };
    let at = fci
        .windows(3)
        .position(|w| w == [0x9F, 0x0C, 0x1E])
        .ok_or(Error::Answer {
            step,
            error: AnswerError::Malformed,
        })?;
    let ef15 = fci.get(at + 3..at + 33).ok_or(bad)?;
    let mut asn = [0u8; 10];
    asn.copy_from_slice(&ef15[10..20]);
    Ok(CardNumber(asn))
}

fn vault_err(step: StepName) -> impl Fn(crate::error::VaultError) -> Error {
    move |error| Error::Vault { step, error }
}

fn pay_err(step: StepName) -> impl Fn(crate::error::PaymentError) -> Error {
    move |error| Error::Payment { step, error }
}

fn results_at(step: StepName, results: &[ResponseApdu], i: usize) -> Result<&ResponseApdu, Error> {
    results.get(i).ok_or(Error::Answer {
        step,
        error: AnswerError::ResponseCount,
    })
}

// --- probes ----------------------------------------------------------------------------------

/// The commands that tell whether `step` is done already (`None`: the step is safe to repeat).
pub(crate) fn probe(state: &FlowState, step: StepName) -> Result<Option<Vec<Cmd>>, Error> {
    let ssd = state.ssd_aid.0.clone();
    let cmds = match step {
        StepName::CreateSsd | StepName::DeleteSsd => alloc::vec![
            secure(
                state,
                step,
                Domain::Isd,
                status_of(Scope::Applications, &ssd)?
            )?
            .any()
        ],
        StepName::SsdFirstKeys | StepName::RotateSsdKeys => alloc::vec![
            Cmd::plain(select(&ssd)).any(),
            Cmd::plain(probe_key_version()).any(),
        ],
        StepName::LoadPurse | StepName::DeletePurse => alloc::vec![
            secure(
                state,
                step,
                Domain::Ssd,
                status_of(Scope::LoadFiles, &p::PURSE_ELF)?
            )?
            .any()
        ],
        StepName::InstallPurse | StepName::MakeSelectable => alloc::vec![
            secure(
                state,
                step,
                Domain::Ssd,
                status_of(Scope::Applications, purse_aid())?
            )?
            .any()
        ],
        StepName::LockPurse => alloc::vec![
            secure(
                state,
                step,
                lock_domain(),
                status_of(Scope::Applications, purse_aid())?
            )?
            .any()
        ],
        StepName::PersonalisePurse => alloc::vec![
            Cmd::plain(select(purse_aid())).any(),
            Cmd::plain(get_balance()).any(),
        ],
        StepName::CreditLoad => {
            let load = state.load.ok_or(Error::State)?;
            alloc::vec![
                Cmd::plain(select(purse_aid())),
                Cmd::plain(transaction_prove(if p::PROVE_WITH_PRE_INCREMENT_COUNTER {
                    load.online_counter
                } else {
                    load.online_counter.wrapping_add(1)
                }))
                .any(),
                Cmd::plain(initialize_for_load(load.amount)),
            ]
        }
        _ => return Ok(None),
    };
    Ok(Some(cmds))
}

/// Whether the probe's answers show `step` done already; may update the state from them.
pub(crate) fn decide(
    state: &mut FlowState,
    env: &mut Env<'_>,
    step: StepName,
    results: &[ResponseApdu],
) -> Result<bool, Error> {
    let first = results_at(step, results, 0)?;
    Ok(match step {
        StepName::CreateSsd => entry(step, Scope::Applications, first, &state.ssd_aid.0)?.is_some(),
        StepName::DeleteSsd => entry(step, Scope::Applications, first, &state.ssd_aid.0)?.is_none(),
        StepName::SsdFirstKeys | StepName::RotateSsdKeys => {
            let iu = results_at(step, results, 1)?;
            let version = (first.sw == StatusWord::SUCCESS && iu.sw == StatusWord::SUCCESS)
                .then(|| iu.data.get(10).copied())
                .flatten();
            match step {
                StepName::SsdFirstKeys => {
                    version == Some(p::SSD_INITIAL_KEY_VERSION)
                        || version == Some(p::SSD_SP_KEY_VERSION)
                }
                _ => version == Some(p::SSD_SP_KEY_VERSION),
            }
        }
        StepName::LoadPurse => entry(step, Scope::LoadFiles, first, &p::PURSE_ELF)?.is_some(),
        StepName::DeletePurse => entry(step, Scope::LoadFiles, first, &p::PURSE_ELF)?.is_none(),
        StepName::InstallPurse => {
            let state_byte = entry(step, Scope::Applications, first, purse_aid())?;
            match state.management {
                Management::Authorized => state_byte.is_some_and(|s| s & 0x07 == 0x07),
                Management::Delegated => state_byte.is_some(),
            }
        }
        StepName::MakeSelectable => {
            entry(step, Scope::Applications, first, purse_aid())?.is_some_and(|s| s & 0x07 == 0x07)
        }
        StepName::LockPurse => {
            entry(step, Scope::Applications, first, purse_aid())?.is_some_and(|s| s & 0x80 != 0)
        }
        StepName::PersonalisePurse => {
            first.sw == StatusWord::SUCCESS
                && results_at(step, results, 1)?.sw == StatusWord::SUCCESS
        }
        StepName::CreditLoad => {
            let load = state.load.ok_or(Error::State)?;
            let prove = results_at(step, results, 1)?;
            let mac2 = state.mac2.ok_or(Error::State)?;
            if prove.sw == StatusWord::SUCCESS && prove.data.get(..4) == Some(&mac2[..]) {
                // The credit went through before the crash: take its TAC from the proof.
                let tac: [u8; 4] =
                    prove
                        .data
                        .get(4..8)
                        .and_then(|t| t.try_into().ok())
                        .ok_or(Error::Answer {
                            step,
                            error: AnswerError::Length,
                        })?;
                record_load(state, env, step, &load, &tac)?;
                true
            } else {
                // Not credited: the probe's INITIALIZE FOR LOAD is the fresh start of the load,
                // and CREDIT FOR LOAD follows it directly.
                let init = results_at(step, results, 2)?;
                let fresh = parse_load(step, load.card, load.amount, init)?;
                if fresh.online_counter != load.online_counter
                    || fresh.old_balance != load.old_balance
                {
                    return Err(Error::Answer {
                        step,
                        error: AnswerError::Balance,
                    });
                }
                authorise_load(state, env, step, fresh)?;
                false
            }
        }
        _ => false,
    })
}

fn authorise_load(
    state: &mut FlowState,
    env: &mut Env<'_>,
    step: StepName,
    proof: LoadProof,
) -> Result<(), Error> {
    let mac2 = env
        .sp
        .load_mac2(&state.parties.purse_issuer, &proof, &env.now)
        .map_err(vault_err(step))?;
    state.load = Some(proof);
    state.mac2 = Some(mac2);
    state.load_datetime = env.now;
    Ok(())
}

fn record_load(
    state: &mut FlowState,
    env: &mut Env<'_>,
    step: StepName,
    load: &LoadProof,
    tac: &[u8; 4],
) -> Result<(), Error> {
    env.sp
        .verify_load_tac(&state.parties.purse_issuer, load, &state.load_datetime, tac)
        .map_err(vault_err(step))?;
    let new_balance = load.old_balance.saturating_add(load.amount);
    let order_id = match (&state.order, &state.transfer_id) {
        (Some(o), _) => o.order_id.clone(),
        (None, Some(t)) => t.clone(),
        _ => return Err(Error::State),
    };
    state.balance = Some(new_balance);
    state.load_receipt = Some(LoadReceipt {
        order_id,
        amount: load.amount,
        new_balance,
        tac: Hex(tac.to_vec()),
    });
    Ok(())
}

// --- running ---------------------------------------------------------------------------------

/// The commands of `step` (vault and provider work of the step happens here or in [`finish`]).
pub(crate) fn run(
    state: &mut FlowState,
    env: &mut Env<'_>,
    step: StepName,
    rt: &mut Runtime,
) -> Result<Vec<Cmd>, Error> {
    let ssd = state.ssd_aid.0.clone();
    Ok(match step {
        StepName::RegisterSe => alloc::vec![
            Cmd::plain(select(&ykt_gp_host::ISD_AID)),
            Cmd::plain(get_data::get_data(TAG_CPLC)),
        ],
        StepName::CreateSsd => {
            let initial = state.initial_keys(step)?;
            if !env.sei.contains(&initial) {
                env.sei
                    .generate_key_set(&initial, p::SSD_INITIAL_KEY_VERSION, env.rng)
                    .map_err(vault_err(step))?;
            }
            let cmd = install::install_for_install(
                &Install {
                    load_file: aid(&p::SD_ELF)?,
                    module: aid(&p::SD_MODULE)?,
                    instance: aid(&ssd)?,
                    privileges: Privileges(state.management.privileges()),
                    parameters: InstallParameters::default(),
                    token: Vec::new(),
                },
                true,
            )?;
            alloc::vec![secure(state, step, Domain::Isd, cmd)?]
        }
        StepName::SsdFirstKeys => {
            let wrapped = env
                .sei
                .wrap_key_set(
                    &state.initial_keys(step)?,
                    &state.isd_keys(step)?,
                    KEY_ENCRYPTION,
                )
                .map_err(vault_err(step))?;
            rt.key_check = Some((p::SSD_INITIAL_KEY_VERSION, wrapped.check_values));
            let dgi = store_data::dgi(ykt_gp::commands::store_data::DGI_SD_KEYS, &wrapped.data)?;
            let store = CommandApdu::new(0x80, 0xE2, 0x88, 0x00)
                .with_data(dgi)
                .with_le(256);
            alloc::vec![
                secure(
                    state,
                    step,
                    Domain::Isd,
                    install::install_for_personalization(&aid(&ssd)?)?
                )?,
                secure(state, step, Domain::Isd, store)?,
            ]
        }
        StepName::HandOverSsdKeys => {
            let initial = state.initial_keys(step)?;
            let recipient = env
                .sp
                .transport_public_key(&state.parties.sp_transport)
                .map_err(vault_err(step))?;
            let wrapped = env
                .sei
                .export_key_set(&initial, &recipient, env.rng)
                .map_err(vault_err(step))?;
            env.sp
                .import_key_set(&initial, &state.parties.sp_transport, &wrapped)
                .map_err(vault_err(step))?;
            state.handover = Some(Hex(wrapped));
            Vec::new()
        }
        StepName::RotateSsdKeys => {
            let sp_keys = state.sp_keys(step)?;
            if !env.sp.contains(&sp_keys) {
                env.sp
                    .generate_key_set(&sp_keys, p::SSD_SP_KEY_VERSION, env.rng)
                    .map_err(vault_err(step))?;
            }
            let wrapped = env
                .sp
                .wrap_key_set(
                    &sp_keys,
                    &KeyRef::Named(state.initial_keys(step)?),
                    KEY_ENCRYPTION,
                )
                .map_err(vault_err(step))?;
            rt.key_check = Some((p::SSD_SP_KEY_VERSION, wrapped.check_values));
            let cmd = CommandApdu::new(0x80, 0xD8, p::SSD_INITIAL_KEY_VERSION, put_key::P2_KEY_SET)
                .with_data(wrapped.data)
                .with_le(256);
            alloc::vec![secure(state, step, Domain::SsdInitial, cmd)?]
        }
        StepName::LoadPurse => {
            let for_load = install_cmd(
                state,
                env,
                step,
                install::P1_FOR_LOAD,
                &[&p::PURSE_ELF, &[], &[], &[]],
            )?;
            let mut lfdb = ykt_gp::commands::load::LFDB_MAGIC.to_vec();
            lfdb.push(p::PURSE_ELF.len() as u8);
            lfdb.extend_from_slice(&p::PURSE_ELF);
            lfdb.extend_from_slice(&p::PURSE_PACKAGE_VERSION);
            let payload = load::load_payload(&lfdb, &[]);
            let mut cmds = alloc::vec![secure(state, step, Domain::Ssd, for_load)?];
            for c in load::load_commands(&payload, 200)? {
                cmds.push(secure(state, step, Domain::Ssd, c)?);
            }
            cmds
        }
        StepName::InstallPurse => {
            let p1 = match state.management {
                Management::Authorized => install::P1_FOR_INSTALL | install::P1_FOR_MAKE_SELECTABLE,
                Management::Delegated => install::P1_FOR_INSTALL,
            };
            let params = InstallParameters::default().encode();
            let cmd = install_cmd(
                state,
                env,
                step,
                p1,
                &[
                    &p::PURSE_ELF,
                    &p::PURSE_MODULE,
                    purse_aid(),
                    &Privileges::NONE.0,
                    &params,
                ],
            )?;
            alloc::vec![secure(state, step, Domain::Ssd, cmd)?]
        }
        StepName::MakeSelectable => {
            let cmd = install_cmd(
                state,
                env,
                step,
                install::P1_FOR_MAKE_SELECTABLE,
                &[&[], &[], purse_aid(), &Privileges::NONE.0, &[]],
            )?;
            alloc::vec![secure(state, step, Domain::Ssd, cmd)?]
        }
        StepName::PersonalisePurse => {
            let card = state.card.ok_or(Error::State)?;
            let blocks = env
                .sp
                .purse_perso_blocks(
                    &state.parties.purse_issuer,
                    &card,
                    &KeyRef::Named(state.sp_keys(step)?),
                )
                .map_err(vault_err(step))?;
            let mut cmds = alloc::vec![secure(
                state,
                step,
                Domain::Ssd,
                install::install_for_personalization(&aid(purse_aid())?)?
            )?];
            for b in blocks {
                let c = CommandApdu::new(0x80, 0xE2, b.p1, b.p2).with_data(b.data);
                cmds.push(secure(state, step, Domain::Ssd, c)?);
            }
            cmds
        }
        StepName::VerifyActive | StepName::QueryCardData => {
            alloc::vec![Cmd::plain(select(purse_aid())), Cmd::plain(get_balance())]
        }
        StepName::InitializeLoad => {
            let amount = state.order.as_ref().ok_or(Error::State)?.amount;
            alloc::vec![
                Cmd::plain(select(purse_aid())),
                Cmd::plain(initialize_for_load(amount))
            ]
        }
        StepName::ProveBalance => alloc::vec![
            Cmd::plain(select(purse_aid())),
            Cmd::plain(initialize_for_load(p::BALANCE_PROOF_AMOUNT))
        ],
        StepName::CreditLoad => {
            let mac2 = state.mac2.ok_or(Error::State)?;
            alloc::vec![Cmd::plain(credit_for_load(&state.load_datetime, &mac2))]
        }
        StepName::LockPurse => {
            let cmd = set_status::set_application_state(&aid(purse_aid())?, set_status::P2_LOCK)?;
            alloc::vec![secure(state, step, lock_domain(), cmd)?]
        }
        StepName::UnlockPurse => {
            let cmd = set_status::set_application_state(&aid(purse_aid())?, set_status::P2_UNLOCK)?;
            alloc::vec![secure(state, step, lock_domain(), cmd)?]
        }
        StepName::DeletePurse => {
            let target = if p::DELETE_WITH_LOAD_FILE {
                &p::PURSE_ELF[..]
            } else {
                purse_aid()
            };
            let p2 = if p::DELETE_WITH_LOAD_FILE {
                delete::P2_RELATED
            } else {
                0x00
            };
            let mut data = alloc::vec![0x4F, target.len() as u8];
            data.extend_from_slice(target);
            if state.management == Management::Delegated {
                let token = env
                    .sei
                    .sign_token(
                        &state.parties.token_signer,
                        TokenKind::Delete,
                        0x00,
                        p2,
                        &data,
                    )
                    .map_err(vault_err(step))?;
                data = ykt_gp::dm::append_delete_token(&data, &token);
            }
            let cmd = CommandApdu::new(0x80, 0xE4, 0x00, p2)
                .with_data(data)
                .with_le(256);
            alloc::vec![secure(state, step, Domain::Ssd, cmd)?]
        }
        StepName::DeleteSsd => {
            let cmd = delete::delete(&aid(&ssd)?, true, None)?;
            alloc::vec![secure(state, step, Domain::Isd, cmd)?]
        }
        StepName::QueryStatus => {
            state.registry.clear();
            alloc::vec![
                secure(
                    state,
                    step,
                    Domain::Isd,
                    get_status::get_status(Scope::Applications, false)
                )?
                .any()
            ]
        }
        StepName::ConfirmPayment => {
            let order = state.order.as_ref().ok_or(Error::State)?;
            let paid = env
                .payments
                .confirm(&order.order_id)
                .map_err(pay_err(step))?;
            if Some(paid.card_number) != state.card_number {
                return Err(Error::Answer {
                    step,
                    error: AnswerError::CardNumber,
                });
            }
            if paid.amount != order.amount {
                return Err(Error::Payment {
                    step,
                    error: crate::error::PaymentError::AmountMismatch,
                });
            }
            Vec::new()
        }
        StepName::Refund | StepName::Escrow => {
            let card = state.card_number(step)?;
            let balance = state.balance.ok_or(Error::State)?;
            let id = state
                .transfer_id
                .clone()
                .unwrap_or_else(|| state.session_id.clone());
            if step == StepName::Refund {
                env.payments.refund(&id, &card, balance)
            } else {
                env.payments.escrow(&id, &card, balance)
            }
            .map_err(pay_err(step))?;
            Vec::new()
        }
        StepName::ReleaseEscrow => {
            let id = state.transfer_id.clone().ok_or(Error::State)?;
            let held = env.payments.escrowed(&id).map_err(pay_err(step))?;
            if Some(held.card_number) != state.card_number {
                return Err(Error::Answer {
                    step,
                    error: AnswerError::CardNumber,
                });
            }
            state.order = Some(crate::payment::OrderRef {
                order_id: id,
                amount: held.amount,
            });
            Vec::new()
        }
        StepName::SettleEscrow => {
            let id = state.transfer_id.clone().ok_or(Error::State)?;
            env.payments.settle_escrow(&id).map_err(pay_err(step))?;
            Vec::new()
        }
    })
}

/// What the answers of `step`'s commands mean (all of them passed their expected status);
/// commands to send next in the same step, if any (GET STATUS parts).
pub(crate) fn finish(
    state: &mut FlowState,
    env: &mut Env<'_>,
    step: StepName,
    results: &[ResponseApdu],
    rt: &Runtime,
) -> Result<Vec<Cmd>, Error> {
    let malformed = Error::Answer {
        step,
        error: AnswerError::Malformed,
    };
    match step {
        StepName::RegisterSe => {
            let r = results_at(step, results, 1)?;
            let value =
                get_data::parse_data_object(TAG_CPLC, &r.data).map_err(|_| Error::Answer {
                    step,
                    error: AnswerError::Malformed,
                })?;
            let cplc = Cplc::parse(&value).map_err(|_| malformed)?;
            let seid = SeId(p::seid_from_cplc(&cplc));
            if state.seid.is_some_and(|s| s != seid) {
                return Err(Error::Answer {
                    step,
                    error: AnswerError::SeId,
                });
            }
            state.seid = Some(seid);
            state.cplc = Some(Hex(value.to_vec()));
            state.se_state = SeState::Registered;
        }
        StepName::CreateSsd => {
            state.se_state = SeState::IsdKeysBound;
        }
        StepName::SsdFirstKeys | StepName::RotateSsdKeys => {
            let data = &results_at(step, results, results.len().saturating_sub(1))?.data;
            let (version, kcvs) = rt.key_check.ok_or(Error::State)?;
            let ok = put_key::confirms(data, version, &kcvs).map_err(|_| Error::Answer {
                step,
                error: AnswerError::Malformed,
            })?;
            if !ok {
                return Err(Error::Answer {
                    step,
                    error: AnswerError::KeyCheck,
                });
            }
            if step == StepName::RotateSsdKeys {
                // The card confirmed its own key set replaced the initial one: the SP's copy of
                // the handed-over initial set is of no further use (a resume from here probes
                // the key version in the clear), so it does not stay in the SP's vault.
                env.sp.delete_key(&state.initial_keys(step)?);
            }
        }
        StepName::LoadPurse => {
            let ssd = state.ssd_aid.0.clone();
            check_receipt(
                state,
                env,
                step,
                results_at(step, results, 0)?,
                &ReceiptContext::Load {
                    elf_aid: &p::PURSE_ELF,
                    sd_aid: &ssd,
                },
            )?;
        }
        StepName::InstallPurse => check_receipt(
            state,
            env,
            step,
            results_at(step, results, 0)?,
            &ReceiptContext::Install {
                elf_aid: &p::PURSE_ELF,
                instance_aid: purse_aid(),
            },
        )?,
        StepName::MakeSelectable => check_receipt(
            state,
            env,
            step,
            results_at(step, results, 0)?,
            &ReceiptContext::MakeSelectable {
                instance_aid: purse_aid(),
            },
        )?,
        StepName::DeletePurse => {
            let target = if p::DELETE_WITH_LOAD_FILE {
                &p::PURSE_ELF[..]
            } else {
                purse_aid()
            };
            check_receipt(
                state,
                env,
                step,
                results_at(step, results, 0)?,
                &ReceiptContext::Delete { aid: target },
            )?;
        }
        StepName::DeleteSsd => {
            for name in [state.sp_keys(step)?, state.initial_keys(step)?] {
                env.sp.delete_key(&name);
                env.sei.delete_key(&name);
            }
        }
        StepName::VerifyActive | StepName::QueryCardData => {
            let number = card_number_in_fci(step, &results_at(step, results, 0)?.data)?;
            if state.card_number.is_some_and(|n| n != number) {
                return Err(Error::Answer {
                    step,
                    error: AnswerError::CardNumber,
                });
            }
            let balance = balance_of(step, results_at(step, results, 1)?)?;
            state.balance = Some(balance);
            state.card_view = Some(crate::flow::CardView {
                card_number: number,
                balance,
            });
        }
        StepName::InitializeLoad => {
            let card = state.card_number(step)?;
            let amount = state.order.as_ref().ok_or(Error::State)?.amount;
            let proof = parse_load(step, card, amount, results_at(step, results, 1)?)?;
            authorise_load(state, env, step, proof)?;
        }
        StepName::CreditLoad => {
            let load = state.load.ok_or(Error::State)?;
            let tac: [u8; 4] = results_at(step, results, 0)?
                .data
                .as_slice()
                .try_into()
                .map_err(|_| Error::Answer {
                    step,
                    error: AnswerError::Length,
                })?;
            record_load(state, env, step, &load, &tac)?;
        }
        StepName::ProveBalance => {
            let card = state.card_number(step)?;
            let proof = parse_load(
                step,
                card,
                p::BALANCE_PROOF_AMOUNT,
                results_at(step, results, 1)?,
            )?;
            env.sp
                .verify_mac1(&state.parties.purse_issuer, &proof)
                .map_err(vault_err(step))?;
            state.balance = Some(proof.old_balance);
            if state.kind == crate::flow::FlowKind::DeleteCard
                && p::DELETE_REQUIRES_ZERO_BALANCE
                && proof.old_balance != 0
            {
                return Err(Error::BalanceNotZero {
                    balance: proof.old_balance,
                });
            }
        }
        StepName::QueryStatus => {
            // One GET STATUS per batch: its scope from P1, `6310` asks for the next part,
            // then load files follow the applications.
            let r = results_at(step, results, 0)?;
            let p1 = rt.last_command().map_or(0, |c| c.p1);
            let scope = if p1 == Scope::LoadFiles.p1() {
                Scope::LoadFiles
            } else {
                Scope::Applications
            };
            let more = r.sw.sw1() == 0x63;
            if r.sw == StatusWord::SUCCESS || more {
                let entries =
                    get_status::parse_get_status(scope, &r.data).map_err(|_| malformed)?;
                state.registry.extend(entries.iter().map(|e| EntryView {
                    kind: alloc::string::String::from(e.kind.short_name()),
                    aid: Hex(e.aid.clone()),
                    life_cycle: e.life_cycle,
                }));
            } else if r.sw != StatusWord::REFERENCED_DATA_NOT_FOUND {
                return Err(Error::Card { step, sw: r.sw });
            }
            let next = match (more, scope) {
                (true, _) => Some(get_status::get_status(scope, true)),
                (false, Scope::Applications) => {
                    Some(get_status::get_status(Scope::LoadFiles, false))
                }
                _ => None,
            };
            if state.registry.len() > MAX_REGISTRY_ENTRIES {
                return Err(Error::Answer {
                    step,
                    error: AnswerError::Malformed,
                });
            }
            return Ok(match next {
                Some(c) => alloc::vec![secure(state, step, Domain::Isd, c)?.any()],
                None => Vec::new(),
            });
        }
        _ => {}
    }
    Ok(Vec::new())
}

/// A bound on a listed registry, so a card answering `6310` forever cannot keep a flow busy.
const MAX_REGISTRY_ENTRIES: usize = 1024;
