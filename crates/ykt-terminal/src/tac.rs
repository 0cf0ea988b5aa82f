//! MAC and TAC input layouts shared by terminals and the back office (e-purse.md §5.4, §5.5).

use alloc::vec::Vec;

use ykt_crypto::purse::{self, PurseAlgorithm, PurseKey};

/// MAC1 input of a purchase: `amount(4) || type(1) || terminal(6) || date(4) || time(3)` (§5.4, H).
pub fn purchase_mac1_input(
    amount: u32,
    transaction_type: u8,
    terminal_id: &[u8; 6],
    datetime: &[u8; 7],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(18);
    v.extend_from_slice(&amount.to_be_bytes());
    v.push(transaction_type);
    v.extend_from_slice(terminal_id);
    v.extend_from_slice(datetime);
    v
}

/// TAC input of a purchase or composite purchase:
/// `amount(4) || type(1) || terminal(6) || TTSN(4) || date(4) || time(3)` (§5.5, H).
pub fn purchase_tac_input(
    amount: u32,
    transaction_type: u8,
    terminal_id: &[u8; 6],
    ttsn: u32,
    datetime: &[u8; 7],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(22);
    v.extend_from_slice(&amount.to_be_bytes());
    v.push(transaction_type);
    v.extend_from_slice(terminal_id);
    v.extend_from_slice(&ttsn.to_be_bytes());
    v.extend_from_slice(datetime);
    v
}

/// MAC1 input of a load: `old_balance(4) || amount(4) || type(1) || terminal(6)` (§5.4, H).
pub fn load_mac1_input(
    old_balance: u32,
    amount: u32,
    transaction_type: u8,
    terminal_id: &[u8; 6],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(15);
    v.extend_from_slice(&old_balance.to_be_bytes());
    v.extend_from_slice(&amount.to_be_bytes());
    v.push(transaction_type);
    v.extend_from_slice(terminal_id);
    v
}

/// MAC2 input of a load: `amount(4) || type(1) || terminal(6) || date(4) || time(3)` (§5.4, H).
pub fn load_mac2_input(
    amount: u32,
    transaction_type: u8,
    terminal_id: &[u8; 6],
    datetime: &[u8; 7],
) -> Vec<u8> {
    purchase_mac1_input(amount, transaction_type, terminal_id, datetime)
}

/// TAC input of a load: `new_balance(4) || online_counter(2) || amount(4) || type(1) ||
/// terminal(6) || date(4) || time(3)`, the counter taken before its increment (§5.5).
pub fn load_tac_input(
    new_balance: u32,
    online_counter: u16,
    amount: u32,
    transaction_type: u8,
    terminal_id: &[u8; 6],
    datetime: &[u8; 7],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&new_balance.to_be_bytes());
    v.extend_from_slice(&online_counter.to_be_bytes());
    v.extend_from_slice(&amount.to_be_bytes());
    v.push(transaction_type);
    v.extend_from_slice(terminal_id);
    v.extend_from_slice(datetime);
    v
}

/// Back-office TAC check: derives the card's DTK from the TAC master key and the card's
/// diversifier, recomputes the TAC over `input` and compares in constant time.
pub fn verify_tac(
    alg: &PurseAlgorithm,
    tac_master: &PurseKey,
    diversifier: &[u8; 8],
    input: &[u8],
    tac: &[u8; 4],
) -> bool {
    let dtk = purse::diversify(alg, tac_master, diversifier);
    ykt_crypto::ct_eq(&purse::tac(alg, &dtk, input), tac)
}
