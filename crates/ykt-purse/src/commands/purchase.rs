//! Purchase and composite purchase: INITIALIZE FOR (CAPP) PURCHASE, UPDATE CAPP DATA CACHE, DEBIT
//! FOR (CAPP) PURCHASE (消费 / 复合消费; e-purse.md §4.5–§4.7, §5).
//!
//! The composite records cached by UPDATE CAPP DATA CACHE stay in volatile memory until DEBIT,
//! which stages them in the same store transaction as the balance, counter, proof data and EF18
//! record. A failed DEBIT, any other command, a reset or a power cut drops them (§7, L).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_crypto::purse::{purchase_session_input, session_key, session_mac, tac};

use super::{P2_EP, expect_lc, expect_p1p2, mac_failure, mac_success, take, transaction_type};
use crate::applet::{CachedWrite, PurchaseSession, Session, Volatile};
use crate::files::{
    EF1A_RECORD_LEN, EF1A_RECORDS, EF1E_RECORD_LEN, SFI_EF1A, SFI_EF1E, TransactionRecord,
    append_transaction_record,
};
use crate::keys::{self, KeyUsage};
use crate::profile::PurseProfile;
use crate::state::{AppStatus, LastTransaction, OBJ_KEYS, PurseState};

/// Overdraft limit returned by INITIALIZE FOR PURCHASE: this EP has none (e-purse.md §4.5).
const OVERDRAFT_LIMIT: [u8; 3] = [0; 3];

/// Most UPDATE CAPP DATA CACHE commands one composite session may buffer (`6A84` beyond).
/// L (e-purse.md §4.7 shows one EF1A and one EF1E write); 4 leaves room and bounds the RAM used.
pub const CAPP_CACHE_LIMIT: usize = 4;

/// `80 50 01 02 0B ..` (purchase) or `80 50 03 02 0B ..` (composite), response of 15 bytes.
// e-purse.md §4.5, §4.7
pub(crate) fn initialize_for_purchase(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    composite: bool,
    v: &mut Volatile,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, cmd.p1, P2_EP)?;
    expect_lc(cmd, 11)?;
    let key_index = cmd.data[0];
    let amount = u32::from_be_bytes(take(&cmd.data, 1)?);
    let terminal: [u8; 6] = take(&cmd.data, 5)?;

    let table = ctx.read(OBJ_KEYS)?;
    let dpk = keys::find(table, KeyUsage::Purchase, key_index)
        .ok_or(StatusWord::KEY_INDEX_NOT_SUPPORTED)?;
    keys::tac_key_for(table, &dpk.algorithm).ok_or(StatusWord::KEY_INDEX_NOT_SUPPORTED)?;

    let purse = PurseState::load(ctx)?;
    if purse.offline_counter == u16::MAX {
        return Err(StatusWord::COUNTER_AT_MAXIMUM);
    }
    if amount > purse.balance {
        return Err(StatusWord::INSUFFICIENT_BALANCE);
    }
    let mut random = [0u8; 4];
    ctx.random(&mut random);

    let mut out = Vec::with_capacity(15);
    out.extend_from_slice(&purse.balance.to_be_bytes());
    out.extend_from_slice(&purse.offline_counter.to_be_bytes());
    out.extend_from_slice(&OVERDRAFT_LIMIT);
    out.push(dpk.version);
    out.push(dpk.algorithm.algorithm_id());
    out.extend_from_slice(&random);

    v.session = Some(Session::Purchase(PurchaseSession {
        composite,
        key_index,
        random,
        amount,
        terminal,
        balance: purse.balance,
        offline_counter: purse.offline_counter,
        cache: Vec::new(),
    }));
    Ok(out)
}

/// `80 DC <P1> <P2> <Lc> <record>`: buffers a composite record until DEBIT.
///
/// P2 = SFI << 3 with mode `000`. EF1A (linear): the record whose byte 1 equals P1 is replaced; the
/// data must keep byte 1 = P1 and is zero-padded to 128 bytes (L, e-purse.md §2). EF1E (cyclic):
/// P1 = `00`, 48 bytes, appended as the newest record. Only inside a composite session (`6985`
/// otherwise, L, conformance.md SE-EP-CMP-003).
// e-purse.md §4.7
pub(crate) fn update_capp_data_cache(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    session: Option<Session>,
    v: &mut Volatile,
) -> Result<Vec<u8>, StatusWord> {
    let Some(Session::Purchase(mut s)) = session else {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    };
    if !s.composite {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    if cmd.p2 & 0x07 != 0 {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    let write = match cmd.p2 >> 3 {
        SFI_EF1A => {
            if cmd.data.len() < 2 || cmd.data.len() > EF1A_RECORD_LEN {
                return Err(StatusWord::WRONG_LENGTH);
            }
            if cmd.data[1] != cmd.p1 {
                return Err(StatusWord::WRONG_DATA);
            }
            let number = find_ef1a_record(ctx, cmd.p1)?;
            let mut data = cmd.data.clone();
            data.resize(EF1A_RECORD_LEN, 0x00);
            CachedWrite::Update {
                sfi: SFI_EF1A,
                number,
                data,
            }
        }
        SFI_EF1E => {
            if cmd.p1 != 0x00 {
                return Err(StatusWord::INCORRECT_P1P2);
            }
            if cmd.data.len() != EF1E_RECORD_LEN {
                return Err(StatusWord::WRONG_LENGTH);
            }
            CachedWrite::Append {
                sfi: SFI_EF1E,
                data: cmd.data.clone(),
            }
        }
        _ => return Err(StatusWord::FILE_NOT_FOUND),
    };
    if s.cache.len() >= CAPP_CACHE_LIMIT {
        return Err(StatusWord::NOT_ENOUGH_MEMORY);
    }
    s.cache.push(write);
    v.session = Some(Session::Purchase(s));
    Ok(Vec::new())
}

/// The number of the EF1A record whose identifier (byte 1) is `id`; `6A83` if none.
fn find_ef1a_record(ctx: &mut Context<'_>, id: u8) -> Result<u8, StatusWord> {
    for number in 1..=EF1A_RECORDS {
        let record = ctx.files().read_record(SFI_EF1A, number)?;
        if record.get(1) == Some(&id) {
            return Ok(number);
        }
    }
    Err(StatusWord::RECORD_NOT_FOUND)
}

/// `80 54 01 00 0F <TTSN 4><date 4><time 3><MAC1 4> 08`, response TAC (4) · MAC2 (4).
// e-purse.md §4.6, §4.7
pub(crate) fn debit_for_purchase(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    profile: &PurseProfile,
    status: AppStatus,
    session: Option<Session>,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x01, 0x00)?;
    expect_lc(cmd, 15)?;
    let Some(Session::Purchase(s)) = session else {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    };
    let ttsn: [u8; 4] = take(&cmd.data, 0)?;
    let date: [u8; 4] = take(&cmd.data, 4)?;
    let time: [u8; 3] = take(&cmd.data, 8)?;
    let mac1: [u8; 4] = take(&cmd.data, 11)?;
    let tx_type = if s.composite {
        transaction_type::COMPOSITE_PURCHASE
    } else {
        transaction_type::PURCHASE
    };

    let table = ctx.read(OBJ_KEYS)?;
    let dpk = keys::find(table, KeyUsage::Purchase, s.key_index)
        .ok_or(StatusWord::KEY_INDEX_NOT_SUPPORTED)?;
    let dtk =
        keys::tac_key_for(table, &dpk.algorithm).ok_or(StatusWord::KEY_INDEX_NOT_SUPPORTED)?;
    let sk = session_key(
        &dpk.algorithm,
        &dpk.key,
        &purchase_session_input(s.random, s.offline_counter, u32::from_be_bytes(ttsn)),
    );
    // MAC1 = MAC(SESPK, amount || type || terminal || date || time) (§5.4).
    let mut mac1_input = Vec::with_capacity(18);
    mac1_input.extend_from_slice(&s.amount.to_be_bytes());
    mac1_input.push(tx_type);
    mac1_input.extend_from_slice(&s.terminal);
    mac1_input.extend_from_slice(&date);
    mac1_input.extend_from_slice(&time);
    let expected = session_mac(&dpk.algorithm, &sk, &mac1_input);
    if !ykt_crypto::ct_eq(&expected, &mac1) {
        return Err(mac_failure(ctx, profile, status));
    }

    let purse = PurseState::load(ctx)?;
    if purse.balance != s.balance || purse.offline_counter != s.offline_counter {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    let new_balance = purse
        .balance
        .checked_sub(s.amount)
        .ok_or(StatusWord::INSUFFICIENT_BALANCE)?;
    let next_counter = purse
        .offline_counter
        .checked_add(1)
        .ok_or(StatusWord::COUNTER_AT_MAXIMUM)?;

    // MAC2 = MAC(SESPK, amount) (§5.4).
    let mac2 = session_mac(&dpk.algorithm, &sk, &s.amount.to_be_bytes());
    // TAC = MAC(DTK, amount || type || terminal || TTSN || date || time) (§5.5).
    let mut tac_input = Vec::with_capacity(22);
    tac_input.extend_from_slice(&s.amount.to_be_bytes());
    tac_input.push(tx_type);
    tac_input.extend_from_slice(&s.terminal);
    tac_input.extend_from_slice(&ttsn);
    tac_input.extend_from_slice(&date);
    tac_input.extend_from_slice(&time);
    let tac = tac(&dtk.algorithm, &dtk.key, &tac_input);

    // One transaction: balance, counter, proof data, EF18 record, cached composite records.
    PurseState {
        balance: new_balance,
        online_counter: purse.online_counter,
        offline_counter: next_counter,
        last: Some(LastTransaction {
            transaction_type: tx_type,
            counter: purse.offline_counter,
            mac2,
            tac,
        }),
    }
    .store(ctx)?;
    append_transaction_record(
        ctx,
        &TransactionRecord {
            counter: purse.offline_counter,
            ticket_type: profile.ticket_type,
            amount: s.amount,
            transaction_type: tx_type,
            terminal: s.terminal,
            date,
            time,
        },
    )?;
    for write in &s.cache {
        match write {
            CachedWrite::Update { sfi, number, data } => {
                ctx.files().update_record(*sfi, *number, data)?
            }
            CachedWrite::Append { sfi, data } => ctx.files().append_cyclic(*sfi, data)?,
        }
    }
    mac_success(ctx, status)?;

    let mut out = Vec::with_capacity(8);
    out.extend_from_slice(&tac);
    out.extend_from_slice(&mac2);
    Ok(out)
}
