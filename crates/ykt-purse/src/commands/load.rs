//! INITIALIZE FOR LOAD and CREDIT FOR LOAD (圈存; e-purse.md §4.3, §4.4, §5).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_crypto::purse::{load_session_input, session_key, session_mac, tac};

use super::{P2_EP, expect_lc, expect_p1p2, mac_failure, mac_success, take, transaction_type};
use crate::applet::{LoadSession, Session, Volatile};
use crate::files::{TransactionRecord, append_transaction_record};
use crate::keys::{self, KeyUsage};
use crate::profile::{LOAD_LIMIT_EXCEEDED, PurseProfile};
use crate::state::{AppStatus, LastTransaction, OBJ_KEYS, PurseState};

/// `80 50 00 02 0B <key index 1><amount 4><terminal 6> 10`.
// e-purse.md §4.3
pub(crate) fn initialize_for_load(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    profile: &PurseProfile,
    v: &mut Volatile,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x00, P2_EP)?;
    expect_lc(cmd, 11)?;
    if profile.pin_required_for_load && !v.pin_verified {
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    let key_index = cmd.data[0];
    let amount = u32::from_be_bytes(take(&cmd.data, 1)?);
    let terminal: [u8; 6] = take(&cmd.data, 5)?;

    let table = ctx.read(OBJ_KEYS)?;
    let dlk =
        keys::find(table, KeyUsage::Load, key_index).ok_or(StatusWord::KEY_INDEX_NOT_SUPPORTED)?;
    // The TAC key must exist before we promise a load.
    keys::tac_key_for(table, &dlk.algorithm).ok_or(StatusWord::KEY_INDEX_NOT_SUPPORTED)?;

    let purse = PurseState::load(ctx)?;
    if purse.online_counter == u16::MAX {
        return Err(StatusWord::COUNTER_AT_MAXIMUM);
    }
    match purse.balance.checked_add(amount) {
        Some(new) if new <= profile.max_balance => {}
        _ => return Err(LOAD_LIMIT_EXCEEDED),
    }

    let mut random = [0u8; 4];
    ctx.random(&mut random);
    let sk = session_key(
        &dlk.algorithm,
        &dlk.key,
        &load_session_input(random, purse.online_counter),
    );
    // MAC1 = MAC(SESLK, old balance || amount || type || terminal) (§5.4).
    let mut mac1_input = Vec::with_capacity(15);
    mac1_input.extend_from_slice(&purse.balance.to_be_bytes());
    mac1_input.extend_from_slice(&amount.to_be_bytes());
    mac1_input.push(transaction_type::LOAD);
    mac1_input.extend_from_slice(&terminal);
    let mac1 = session_mac(&dlk.algorithm, &sk, &mac1_input);

    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&purse.balance.to_be_bytes());
    out.extend_from_slice(&purse.online_counter.to_be_bytes());
    out.push(dlk.version);
    out.push(dlk.algorithm.algorithm_id());
    out.extend_from_slice(&random);
    out.extend_from_slice(&mac1);

    v.session = Some(Session::Load(LoadSession {
        algorithm: dlk.algorithm,
        session_key: sk,
        amount,
        terminal,
        old_balance: purse.balance,
        online_counter: purse.online_counter,
    }));
    Ok(out)
}

/// `80 52 00 00 0B <date 4><time 3><MAC2 4> 04`.
// e-purse.md §4.4
pub(crate) fn credit_for_load(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    profile: &PurseProfile,
    status: AppStatus,
    session: Option<Session>,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x00, 0x00)?;
    expect_lc(cmd, 11)?;
    let Some(Session::Load(s)) = session else {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    };
    let date: [u8; 4] = take(&cmd.data, 0)?;
    let time: [u8; 3] = take(&cmd.data, 4)?;
    let mac2: [u8; 4] = take(&cmd.data, 7)?;

    // MAC2 = MAC(SESLK, amount || type || terminal || date || time) (§5.4).
    let mut mac2_input = Vec::with_capacity(18);
    mac2_input.extend_from_slice(&s.amount.to_be_bytes());
    mac2_input.push(transaction_type::LOAD);
    mac2_input.extend_from_slice(&s.terminal);
    mac2_input.extend_from_slice(&date);
    mac2_input.extend_from_slice(&time);
    let expected = session_mac(&s.algorithm, &s.session_key, &mac2_input);
    if !ykt_crypto::ct_eq(&expected, &mac2) {
        return Err(mac_failure(ctx, profile, status));
    }

    let purse = PurseState::load(ctx)?;
    // Nothing can run between INITIALIZE and CREDIT, so the purse is as INITIALIZE saw it; checked
    // anyway, since a mismatch here would mint or lose money.
    if purse.balance != s.old_balance || purse.online_counter != s.online_counter {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    let new_balance = purse
        .balance
        .checked_add(s.amount)
        .filter(|b| *b <= profile.max_balance)
        .ok_or(LOAD_LIMIT_EXCEEDED)?;
    let next_counter = purse
        .online_counter
        .checked_add(1)
        .ok_or(StatusWord::COUNTER_AT_MAXIMUM)?;

    let dtk = keys::tac_key_for(ctx.read(OBJ_KEYS)?, &s.algorithm)
        .ok_or(StatusWord::KEY_INDEX_NOT_SUPPORTED)?;
    // TAC = MAC(DTK, new balance || online counter before || amount || type || terminal || date || time) (§5.5).
    let mut tac_input = Vec::with_capacity(24);
    tac_input.extend_from_slice(&new_balance.to_be_bytes());
    tac_input.extend_from_slice(&purse.online_counter.to_be_bytes());
    tac_input.extend_from_slice(&s.amount.to_be_bytes());
    tac_input.push(transaction_type::LOAD);
    tac_input.extend_from_slice(&s.terminal);
    tac_input.extend_from_slice(&date);
    tac_input.extend_from_slice(&time);
    let tac = tac(&dtk.algorithm, &dtk.key, &tac_input);

    // One transaction: balance, counter, proof data, EF18 record (and the MAC-failure reset).
    PurseState {
        balance: new_balance,
        online_counter: next_counter,
        offline_counter: purse.offline_counter,
        last: Some(LastTransaction {
            transaction_type: transaction_type::LOAD,
            counter: purse.online_counter,
            mac2,
            tac,
        }),
    }
    .store(ctx)?;
    append_transaction_record(
        ctx,
        &TransactionRecord {
            counter: purse.online_counter,
            ticket_type: profile.ticket_type,
            amount: s.amount,
            transaction_type: transaction_type::LOAD,
            terminal: s.terminal,
            date,
            time,
        },
    )?;
    mac_success(ctx, status)?;
    Ok(tac.to_vec())
}
