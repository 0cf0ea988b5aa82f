//! The PSAM's command handlers, each citing its section of e-purse.md.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_crypto::purse::{self, PurseAlgorithm};
use ykt_crypto::{pad_iso9797_m2, unpad_iso9797_m2};

use super::issue::{self, OBJ_KEYS, OBJ_SERIAL, OBJ_TERMINAL, SFI_EF16, SFI_EF17};
use super::{CIPHER_IV_LEN, KEY_USAGE_CODES, PurchaseSession, Volatile, WorkingKey};
use crate::commands::{expect_lc, expect_p1p2, take};
use crate::keys::{self, KeyEntry, KeyUsage};

/// `80 70` data length of the plain PBOC form: single-level diversification (e-purse.md §6).
const MAC1_PBOC_LEN: usize = 0x1C;
/// `80 70` data length of the JT/T form with the issuer id: two-level diversification (§6).
const MAC1_JTT_LEN: usize = 0x24;

/// The MF's EF16 (terminal id) for READ BINARY with the SFI, while the MF is current; `None` for
/// every other command (the runtime's MF rules answer those). Addressing and status words follow
/// the runtime's file rules (`ykt_card::fs`): the EF is transparent, readable, never updatable.
// e-purse.md §6 (reset and read terminal id: `00 B0 96 00 06`)
pub(crate) fn mf_ef16(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
) -> Option<Result<Vec<u8>, StatusWord>> {
    if cmd.cla & 0x8C != 0 {
        return None;
    }
    let by_sfi = cmd.p1 == 0x80 | SFI_EF16;
    let record_sfi = cmd.p2 >> 3 == SFI_EF16;
    match cmd.ins {
        0xB0 if by_sfi => Some(read_ef16(ctx, cmd)),
        0xD6 if by_sfi => Some(Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED)),
        0xB2 | 0xDC | 0xE2 if record_sfi => Some(Err(StatusWord::COMMAND_NOT_ALLOWED)),
        _ => None,
    }
}

fn read_ef16(ctx: &Context<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
    if !cmd.data.is_empty() {
        return Err(StatusWord::WRONG_LENGTH);
    }
    let terminal = ctx.read(OBJ_TERMINAL)?;
    let offset = usize::from(cmd.p2);
    if offset >= terminal.len() {
        return Err(StatusWord::WRONG_P1P2);
    }
    let ne = cmd.le.filter(|n| *n > 0).unwrap_or(256);
    let end = terminal.len().min(offset.saturating_add(ne));
    terminal
        .get(offset..end)
        .map(<[u8]>::to_vec)
        .ok_or(StatusWord::UNKNOWN)
}

/// The master key of `usage` with `index` and `version` whose algorithm id is `algorithm_id`.
fn master_key(
    ctx: &Context<'_>,
    usage: KeyUsage,
    index: Option<u8>,
    version: u8,
    algorithm_id: Option<u8>,
) -> Result<KeyEntry, StatusWord> {
    keys::table_entries(ctx.read(OBJ_KEYS)?)
        .find(|e| {
            e.usage == usage
                && index.is_none_or(|i| e.index == i)
                && e.version == version
                && algorithm_id.is_none_or(|a| e.algorithm.algorithm_id() == a)
        })
        .ok_or(StatusWord::KEY_INDEX_NOT_SUPPORTED)
}

/// The card key from a master key: single-level with the card diversifier, or two-level with the
/// issuer id as well, in [`super::TWO_LEVEL_ORDER`] (e-purse.md §3.2).
fn card_key(master: &KeyEntry, card_div: &[u8; 8], issuer_id: Option<&[u8; 8]>) -> purse::PurseKey {
    match issuer_id {
        None => purse::diversify(&master.algorithm, &master.key, card_div),
        Some(issuer) => issue::diversify_two_level(
            &master.algorithm,
            &master.key,
            card_div,
            issuer,
            super::TWO_LEVEL_ORDER,
        ),
    }
}

/// `80 70 00 00 Lc <data> 08`: diversifies the card's purchase key, assigns the TTSN, computes MAC1.
///
/// Data (28 or 36 bytes): card random (4) · offline counter (2) · amount (4) · transaction type (1:
/// `05`, `06` or `09`) · date-time (7) · key version (1) · algorithm id (1) · card diversifier =
/// ASN[2..10] (8) [· issuer id = EF15[0..8] (8)]. The purchase key is the master of EF17 byte 0's
/// index with the given version and algorithm id. The TTSN is committed (incremented) before the
/// answer, so a power cut leaves it consumed or untouched, never reused after an answer.
// e-purse.md §6 (MAC1, "8070"), §3.2, §5.1, §5.4
pub(crate) fn init_sam_for_purchase(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    v: &mut Volatile,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x00, 0x00)?;
    let d = cmd.data.as_slice();
    let issuer_id: Option<[u8; 8]> = match d.len() {
        MAC1_PBOC_LEN => None,
        MAC1_JTT_LEN => Some(take(d, 28)?),
        _ => return Err(StatusWord::WRONG_LENGTH),
    };
    let random: [u8; 4] = take(d, 0)?;
    let offline_counter = u16::from_be_bytes(take(d, 4)?);
    let amount_bytes: [u8; 4] = take(d, 6)?;
    let transaction_type = d[10];
    let datetime: [u8; 7] = take(d, 11)?;
    let version = d[18];
    let algorithm_id = d[19];
    let card_div: [u8; 8] = take(d, 20)?;
    // §5.6: ED purchase, EP purchase, composite purchase share the MAC1 layout.
    if !matches!(transaction_type, 0x05 | 0x06 | 0x09) {
        return Err(StatusWord::WRONG_DATA);
    }
    let key_index = ctx.files().read_binary(SFI_EF17, 0, 1)?;
    let key_index = key_index.first().copied().ok_or(StatusWord::UNKNOWN)?;
    let master = master_key(
        ctx,
        KeyUsage::Purchase,
        Some(key_index),
        version,
        Some(algorithm_id),
    )?;
    let ttsn = u32::from_be_bytes(take(ctx.read(OBJ_SERIAL)?, 0)?);
    let next = ttsn.checked_add(1).ok_or(StatusWord::COUNTER_AT_MAXIMUM)?;
    let terminal: [u8; 6] = take(ctx.read(OBJ_TERMINAL)?, 0)?;

    let dpk = card_key(&master, &card_div, issuer_id.as_ref());
    let sk = purse::session_key(
        &master.algorithm,
        &dpk,
        &purse::purchase_session_input(random, offline_counter, ttsn),
    );
    let mut input = Vec::with_capacity(18);
    input.extend_from_slice(&amount_bytes);
    input.push(transaction_type);
    input.extend_from_slice(&terminal);
    input.extend_from_slice(&datetime);
    let mac1 = purse::session_mac(&master.algorithm, &sk, &input);

    // The serial is consumed now, in this command's transaction, before anything is answered.
    ctx.write(OBJ_SERIAL, 0, &next.to_be_bytes())?;
    ctx.commit()?;
    v.purchase = Some(PurchaseSession {
        algorithm: master.algorithm,
        session_key: sk,
        amount: u32::from_be_bytes(amount_bytes),
    });
    let mut out = Vec::with_capacity(8);
    out.extend_from_slice(&ttsn.to_be_bytes());
    out.extend_from_slice(&mac1);
    Ok(out)
}

/// `80 72 00 00 04 <MAC2>`: checks `MAC(SESPK, amount)` of the last `80 70`'s session; the
/// session is used up by this command whatever the outcome (one guess per MAC1).
// e-purse.md §6 (MAC2 verify, "8072"), §5.4
pub(crate) fn verify_mac2(cmd: &CommandApdu, v: &mut Volatile) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x00, 0x00)?;
    expect_lc(cmd, 4)?;
    let session = v
        .purchase
        .take()
        .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
    let expected = purse::session_mac(
        &session.algorithm,
        &session.session_key,
        &session.amount.to_be_bytes(),
    );
    if ykt_crypto::ct_eq(&expected, &cmd.data) {
        Ok(Vec::new())
    } else {
        Err(StatusWord::MAC_INVALID)
    }
}

/// `80 1A <usage> <version> Lc <factors>`: diversifies the first master key of that usage and
/// version into the volatile working key. Factors: the card diversifier (8, single-level) or the
/// card diversifier ‖ issuer id (16, two-level in [`super::TWO_LEVEL_ORDER`]).
// e-purse.md §6 (INIT FOR DESCRYPT), §5.5 (factor order), §3.2
pub(crate) fn init_for_descrypt(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    v: &mut Volatile,
) -> Result<Vec<u8>, StatusWord> {
    let usage = KEY_USAGE_CODES
        .iter()
        .find(|(code, _)| *code == cmd.p1)
        .map(|(_, usage)| *usage)
        .ok_or(StatusWord::INCORRECT_P1P2)?;
    let d = cmd.data.as_slice();
    let issuer_id: Option<[u8; 8]> = match d.len() {
        8 => None,
        16 => Some(take(d, 8)?),
        _ => return Err(StatusWord::WRONG_LENGTH),
    };
    let card_div: [u8; 8] = take(d, 0)?;
    let master = master_key(ctx, usage, None, cmd.p2, None)?;
    v.working_key = Some(WorkingKey {
        key: card_key(&master, &card_div, issuer_id.as_ref()),
        algorithm: master.algorithm,
    });
    Ok(Vec::new())
}

/// `80 FA 05 00 Lc <IV> <data>`: the line-protection MAC of `data` under the working key, with
/// the IV of [`CIPHER_IV_LEN`] bytes (e-purse.md §4.10, §5.3: retail MAC for 3DES, CBC-SM4 MAC
/// truncated per the key's `Sm4Rules` for SM4). The terminal pads `data` itself (ISO/IEC 9797-1
/// method 2, to 8-byte blocks for 3DES and 16-byte blocks for SM4), as ProjectAfcApp sends
/// `84 1E 00 00 04 80 00 00` (§4.11). The working key stays for further MACs.
// e-purse.md §6 (CIPHER/MAC data, `80 FA 05 00`), §4.10, §4.11, §5.3
pub(crate) fn cipher_data(cmd: &CommandApdu, v: &mut Volatile) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x05, 0x00)?;
    let working = v
        .working_key
        .as_ref()
        .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
    let block = match working.algorithm {
        PurseAlgorithm::Tdes => 8,
        PurseAlgorithm::Sm4(_) => 16,
    };
    let (iv, padded) = cmd
        .data
        .split_at_checked(CIPHER_IV_LEN)
        .ok_or(StatusWord::WRONG_LENGTH)?;
    if padded.is_empty() || padded.len() % block != 0 {
        return Err(StatusWord::WRONG_LENGTH);
    }
    // The MAC functions pad themselves; the data must be exactly the padded form of its content,
    // so that MACing the content equals the CBC-MAC of the blocks the terminal sent.
    let content = unpad_iso9797_m2(padded).map_err(|_| StatusWord::WRONG_DATA)?;
    if pad_iso9797_m2(content, block) != padded {
        return Err(StatusWord::WRONG_DATA);
    }
    let mac = purse::secure_messaging_mac(&working.algorithm, &working.key, iv, content);
    Ok(mac.to_vec())
}
