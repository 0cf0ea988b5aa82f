//! STORE DATA forwarded by the security domain: personalisation of an empty instance from DGIs
//! (tsm-gp.md §3.7; GP Card Specification v2.3.1 §11.11; layout \[PROPOSAL\] in
//! [`crate::perso::dgi`] and `docs/purse-dgi.md`).
//!
//! The blocks of one sequence are kept in RAM, checked DGI by DGI as they arrive; nothing is
//! written before the last block (P1 b8), whose command then creates every object and file of
//! the instance in its one transaction (the security domain's command): a power cut leaves the
//! instance empty or fully personalised. Any refused block ends the sequence (the blocks so far
//! are forgotten), as does a power loss; block `00` always starts a new one.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use zeroize::Zeroizing;

use crate::factory::{CardData, Ef15, PersonalisationImage};
use crate::files::{EF1A_RECORD_LEN, EF1A_RECORDS, EF15_LEN, EF16_LEN, EF17_LEN};
use crate::keys::KeyEntry;
use crate::perso::dgi;
use crate::profile::PurseProfile;
use crate::state::{OBJ_STATUS, valid_pin};

/// A second personalisation of a personalised instance (or any STORE DATA after the last
/// block): `6985`.
pub const ALREADY_PERSONALISED: StatusWord = StatusWord::CONDITIONS_NOT_SATISFIED;
/// Every command but SELECT before personalisation has completed: `6985`.
pub const NOT_PERSONALISED: StatusWord = StatusWord::CONDITIONS_NOT_SATISFIED;
/// The status word SELECT answers (with an FCI without EF15) before personalisation has
/// completed: `6283`, "selected file deactivated" (ISO/IEC 7816-4 §5.6).
pub const NOT_PERSONALISED_SELECT: StatusWord = StatusWord::SELECTED_FILE_DEACTIVATED;
/// P1 with an encryption indicator other than none (`00`) or DEK (`11`), or a structure other
/// than DGI (`01`); P2 out of sequence (not `00` and not the previous block + 1): `6A86`.
pub const BAD_BLOCK_PARAMETERS: StatusWord = StatusWord::INCORRECT_P1P2;
/// The data field is not a sequence of whole DGIs (truncated tag, length or value): `6A85`,
/// "Nc inconsistent with TLV structure".
pub const DGI_STRUCTURE: StatusWord = StatusWord(0x6A85);
/// A DGI tag this applet does not know: `6A88`.
pub const DGI_UNKNOWN: StatusWord = StatusWord::REFERENCED_DATA_NOT_FOUND;
/// A known DGI with a wrong value (length, key length, PIN digits, usage or algorithm code,
/// balance above the profile's maximum) or a repeated one (for keys: the same usage and
/// index): `6A80`.
pub const DGI_INVALID: StatusWord = StatusWord::WRONG_DATA;
/// A PIN or key DGI in a block whose P1 does not say it was encrypted: `6982`.
pub const DGI_NOT_ENCRYPTED: StatusWord = StatusWord::SECURITY_STATUS_NOT_SATISFIED;
/// The last block arrived while a mandatory DGI is missing: `6A87`, "Nc inconsistent with
/// P1-P2" (P1 says last, the data cannot end the sequence).
pub const PERSONALISATION_INCOMPLETE: StatusWord = StatusWord(0x6A87);

/// INS of STORE DATA.
const INS_STORE_DATA: u8 = 0xE2;

/// The DGIs received so far in one STORE DATA sequence (volatile).
#[derive(Default)]
pub(crate) struct PersoSession {
    next_block: u8,
    ef15: Option<[u8; EF15_LEN]>,
    ef16: Option<[u8; EF16_LEN]>,
    ef17: Option<[u8; EF17_LEN]>,
    ef1a: [Option<[u8; EF1A_RECORD_LEN]>; EF1A_RECORDS as usize],
    purse: Option<[u8; dgi::PURSE_LEN]>,
    pin: Option<Zeroizing<Vec<u8>>>,
    keys: Vec<KeyEntry>,
}

/// Copies `value` into a fixed array; [`DGI_INVALID`] if the length differs.
fn exact<const N: usize>(value: &[u8]) -> Result<[u8; N], StatusWord> {
    value.try_into().map_err(|_| DGI_INVALID)
}

/// Sets a DGI that may arrive once.
fn once<const N: usize>(slot: &mut Option<[u8; N]>, value: &[u8]) -> Result<(), StatusWord> {
    if slot.is_some() {
        return Err(DGI_INVALID);
    }
    *slot = Some(exact(value)?);
    Ok(())
}

impl PersoSession {
    /// Checks one DGI and keeps it.
    fn take(
        &mut self,
        tag: u16,
        value: &[u8],
        encrypted: bool,
        profile: &PurseProfile,
    ) -> Result<(), StatusWord> {
        if dgi::must_be_encrypted(tag) && !encrypted {
            return Err(DGI_NOT_ENCRYPTED);
        }
        match tag {
            dgi::EF15 => once(&mut self.ef15, value),
            dgi::EF16 => once(&mut self.ef16, value),
            dgi::EF17 => once(&mut self.ef17, value),
            dgi::PURSE => {
                let v: [u8; dgi::PURSE_LEN] = exact(value)?;
                if u32::from_be_bytes([v[0], v[1], v[2], v[3]]) > profile.max_balance {
                    return Err(DGI_INVALID);
                }
                once(&mut self.purse, &v)
            }
            dgi::PIN => {
                if self.pin.is_some() || !valid_pin(value) {
                    return Err(DGI_INVALID);
                }
                self.pin = Some(Zeroizing::new(value.to_vec()));
                Ok(())
            }
            dgi::KEY => {
                let entry = KeyEntry::decode(value).ok_or(DGI_INVALID)?;
                let duplicate = self
                    .keys
                    .iter()
                    .any(|k| k.usage == entry.usage && k.index == entry.index);
                if duplicate || self.keys.len() >= usize::from(u8::MAX) {
                    return Err(DGI_INVALID);
                }
                self.keys.push(entry);
                Ok(())
            }
            _ => match dgi::ef1a_record(tag) {
                Some(n) => {
                    let slot = self.ef1a.get_mut(usize::from(n) - 1).ok_or(DGI_UNKNOWN)?;
                    once(slot, value)
                }
                None => Err(DGI_UNKNOWN),
            },
        }
    }

    /// The persistent image, once every mandatory DGI has arrived.
    fn image(self, profile: &PurseProfile) -> Result<PersonalisationImage, StatusWord> {
        let (Some(ef15), Some(ef16), Some(ef17), Some(purse), Some(pin)) =
            (self.ef15, self.ef16, self.ef17, self.purse, self.pin)
        else {
            return Err(PERSONALISATION_INCOMPLETE);
        };
        if self.keys.is_empty() {
            return Err(PERSONALISATION_INCOMPLETE);
        }
        let card = CardData {
            ef15: Ef15::decode(&ef15),
            ef16,
            ef17,
            pin: pin.to_vec(),
            balance: u32::from_be_bytes([purse[0], purse[1], purse[2], purse[3]]),
            online_counter: u16::from_be_bytes([purse[4], purse[5]]),
            offline_counter: u16::from_be_bytes([purse[6], purse[7]]),
        };
        let image = PersonalisationImage::new(profile, &card, &self.keys);
        // CardData keeps the PIN in a plain Vec: wipe the copy.
        let mut pin = card.pin;
        zeroize::Zeroize::zeroize(&mut pin);
        Ok(image.map_err(|_| DGI_INVALID)?.with_ef1a(self.ef1a))
    }
}

/// STORE DATA (INS `E2`) delivered by the security domain, already unwrapped and decrypted
/// (tsm-gp.md §3.7). P1: b8 last block, b7–b6 `00` plain or `11` decrypted by the SD, b5–b4
/// `01` DGIs, b3–b1 ignored; P2: block number, `00` first. Answers no data.
///
/// `session` is the sequence in progress; it is consumed and given back only when a block that
/// is not the last one is accepted.
// tsm-gp.md §3.7; docs/purse-dgi.md
pub(crate) fn store_data(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    profile: &PurseProfile,
    session: &mut Option<PersoSession>,
) -> Result<Vec<u8>, StatusWord> {
    let previous = session.take();
    if cmd.ins != INS_STORE_DATA {
        return Err(StatusWord::INS_NOT_SUPPORTED);
    }
    if ctx.exists(OBJ_STATUS) {
        return Err(ALREADY_PERSONALISED);
    }
    let encryption = cmd.p1 & dgi::P1_ENCRYPTION_MASK;
    if cmd.p1 & dgi::P1_STRUCTURE_MASK != dgi::P1_DGI
        || (encryption != 0 && encryption != dgi::P1_ENCRYPTED)
    {
        return Err(BAD_BLOCK_PARAMETERS);
    }
    let last = cmd.p1 & dgi::P1_LAST_BLOCK != 0;
    let mut current = match (cmd.p2, previous) {
        (0x00, _) => PersoSession::default(),
        (p2, Some(s)) if p2 == s.next_block => s,
        _ => return Err(BAD_BLOCK_PARAMETERS),
    };
    let dgis = dgi::parse(&cmd.data).map_err(|_| DGI_STRUCTURE)?;
    for (tag, value) in dgis {
        current.take(tag, value, encryption == dgi::P1_ENCRYPTED, profile)?;
    }
    if last {
        current.image(profile)?.write(ctx)?;
    } else {
        current.next_block = cmd.p2.checked_add(1).ok_or(BAD_BLOCK_PARAMETERS)?;
        *session = Some(current);
    }
    Ok(Vec::new())
}
