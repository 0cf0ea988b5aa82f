//! The e-purse command APDUs a terminal sends (e-purse.md §4).

use alloc::vec::Vec;

use ykt_apdu::CommandApdu;

/// AID of the T-Union / Ministry of Transport e-purse (e-purse.md §1, H).
pub const PURSE_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05];

/// P2 of INITIALIZE and GET BALANCE for the electronic purse (EP); `01` would be the passbook.
pub const P2_EP: u8 = 0x02;

/// Transaction type codes (e-purse.md §5.6).
pub mod transaction_type {
    /// EP load (圈存), H.
    pub const LOAD: u8 = 0x02;
    /// EP purchase, H.
    pub const PURCHASE: u8 = 0x06;
    /// Composite (CAPP) purchase, H.
    pub const COMPOSITE: u8 = 0x09;
}

/// SELECT by DF name, first or only occurrence (ISO 7816-4 §11.1.1).
pub fn select(aid: &[u8]) -> CommandApdu {
    CommandApdu::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(aid.to_vec())
        .with_le(256)
}

/// GET BALANCE `80 5C 00 02 04` (e-purse.md §4.2).
pub fn get_balance() -> CommandApdu {
    CommandApdu::new(0x80, 0x5C, 0x00, P2_EP).with_le(4)
}

/// VERIFY `00 20 00 00 Lc PIN` (e-purse.md §4.1).
pub fn verify(pin_bcd: &[u8]) -> CommandApdu {
    CommandApdu::new(0x00, 0x20, 0x00, 0x00).with_data(pin_bcd.to_vec())
}

fn key_amount_terminal(key_index: u8, amount: u32, terminal_id: &[u8; 6]) -> Vec<u8> {
    let mut data = Vec::with_capacity(11);
    data.push(key_index);
    data.extend_from_slice(&amount.to_be_bytes());
    data.extend_from_slice(terminal_id);
    data
}

/// INITIALIZE FOR LOAD `80 50 00 02 0B … 10` (e-purse.md §4.3).
pub fn initialize_for_load(key_index: u8, amount: u32, terminal_id: &[u8; 6]) -> CommandApdu {
    CommandApdu::new(0x80, 0x50, 0x00, P2_EP)
        .with_data(key_amount_terminal(key_index, amount, terminal_id))
        .with_le(0x10)
}

/// CREDIT FOR LOAD `80 52 00 00 0B date time MAC2 04` (e-purse.md §4.4).
pub fn credit_for_load(datetime: &[u8; 7], mac2: &[u8; 4]) -> CommandApdu {
    let mut data = Vec::with_capacity(11);
    data.extend_from_slice(datetime);
    data.extend_from_slice(mac2);
    CommandApdu::new(0x80, 0x52, 0x00, 0x00)
        .with_data(data)
        .with_le(4)
}

/// INITIALIZE FOR PURCHASE (`P1 01`, e-purse.md §4.5) or FOR CAPP PURCHASE (`P1 03`, §4.7).
pub fn initialize_for_purchase(
    composite: bool,
    key_index: u8,
    amount: u32,
    terminal_id: &[u8; 6],
) -> CommandApdu {
    let p1 = if composite { 0x03 } else { 0x01 };
    CommandApdu::new(0x80, 0x50, p1, P2_EP)
        .with_data(key_amount_terminal(key_index, amount, terminal_id))
        .with_le(0x0F)
}

/// UPDATE CAPP DATA CACHE `80 DC P1 P2 Lc record` (e-purse.md §4.7 step 3).
pub fn update_capp_data_cache(p1: u8, p2: u8, record: &[u8]) -> CommandApdu {
    CommandApdu::new(0x80, 0xDC, p1, p2).with_data(record.to_vec())
}

/// DEBIT FOR PURCHASE / CAPP PURCHASE `80 54 01 00 0F TTSN date time MAC1 08` (e-purse.md §4.6).
pub fn debit_for_purchase(ttsn: u32, datetime: &[u8; 7], mac1: &[u8; 4]) -> CommandApdu {
    let mut data = Vec::with_capacity(15);
    data.extend_from_slice(&ttsn.to_be_bytes());
    data.extend_from_slice(datetime);
    data.extend_from_slice(mac1);
    CommandApdu::new(0x80, 0x54, 0x01, 0x00)
        .with_data(data)
        .with_le(8)
}

/// GET TRANSACTION PROVE `80 5A 00 type 02 counter 08` (e-purse.md §4.8).
pub fn get_transaction_prove(transaction_type: u8, counter: u16) -> CommandApdu {
    CommandApdu::new(0x80, 0x5A, 0x00, transaction_type)
        .with_data(counter.to_be_bytes().to_vec())
        .with_le(8)
}
