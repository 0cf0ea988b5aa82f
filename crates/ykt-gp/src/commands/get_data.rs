//! GET DATA (`80 CA`, GP §11.3): CPLC, card data, key information, IIN, CIN, sequence counter.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_scp::Protocol;

use super::tlv;
use crate::life_cycle::CardState;
use crate::state;

/// Tag `9F7F`: card production life cycle data.
pub const TAG_CPLC: u16 = 0x9F7F;
/// Tag `66`: card data (card recognition data, GP §H.2).
pub const TAG_CARD_DATA: u16 = 0x0066;
/// Tag `E0`: key information template (GP §11.3.3.1).
pub const TAG_KEY_INFORMATION: u16 = 0x00E0;
/// Tag `42`: issuer identification number.
pub const TAG_IIN: u16 = 0x0042;
/// Tag `45`: card image number.
pub const TAG_CIN: u16 = 0x0045;
/// Tag `C1`: the SCP sequence counter (2 bytes for SCP02, 3 otherwise): the value the last
/// INITIALIZE UPDATE used, so the next one uses `C1 + 1` (a host pre-computing a pseudo-random
/// card challenge adds one).
pub const TAG_SEQUENCE_COUNTER: u16 = 0x00C1;

/// The GP OID prefix `{1 2 840 114283}` of card recognition data.
const GP_OID: [u8; 6] = [0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B];

/// The GP version the card data announces (2.3.1).
const GP_VERSION: [u8; 3] = [0x02, 0x03, 0x01];

fn oid(suffix: &[u8]) -> Vec<u8> {
    let mut v = GP_OID.to_vec();
    v.extend_from_slice(suffix);
    tlv(&[0x06], &v)
}

/// Card recognition data (GP §H.2): `66 { 73 { 06 OID, 60 {06 version}, 63 {06 scheme},
/// 64 {06 SCP ‖ i} } }`.
fn card_data(protocol: Protocol) -> Vec<u8> {
    let mut body = oid(&[0x01]);
    let mut version = alloc::vec![0x02];
    version.extend_from_slice(&GP_VERSION);
    body.extend(tlv(&[0x60], &oid(&version)));
    body.extend(tlv(&[0x63], &oid(&[0x03])));
    body.extend(tlv(&[0x64], &oid(&[0x04, protocol.scp_id(), protocol.i()])));
    tlv(&[0x66], &tlv(&[0x73], &body))
}

/// GET DATA: `P1 P2` is the tag; no command data. In TERMINATED only CPLC and card data answer.
pub fn get_data(
    ctx: &mut Context<'_>,
    protocol: Protocol,
    card_state: CardState,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    if !cmd.data.is_empty() {
        return Err(StatusWord::WRONG_LENGTH);
    }
    let tag = u16::from_be_bytes([cmd.p1, cmd.p2]);
    if card_state == CardState::Terminated && !matches!(tag, TAG_CPLC | TAG_CARD_DATA) {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    let identity = state::identity(&state::global(ctx)?)?;
    let present = |v: Vec<u8>, t: u8| {
        if v.is_empty() {
            Err(StatusWord::REFERENCED_DATA_NOT_FOUND)
        } else {
            Ok(tlv(&[t], &v))
        }
    };
    match tag {
        TAG_CPLC => Ok(tlv(&[0x9F, 0x7F], &identity.cplc)),
        TAG_CARD_DATA => Ok(card_data(protocol)),
        TAG_IIN => present(identity.iin, 0x42),
        TAG_CIN => present(identity.cin, 0x45),
        TAG_KEY_INFORMATION => {
            let mut body = Vec::new();
            for keys in state::key_slots(ctx)?.into_iter().flatten() {
                let ty = state::key_type(&keys);
                let len = state::key_len(&keys) as u8;
                for id in 1..=3u8 {
                    body.extend(tlv(&[0xC0], &[id, keys.version, ty, len]));
                }
            }
            Ok(tlv(&[0xE0], &body))
        }
        TAG_SEQUENCE_COUNTER => {
            let seq = state::sequence_counter(ctx)?.to_be_bytes();
            let value = match protocol {
                Protocol::Scp02(_) => &seq[2..],
                _ => &seq[1..],
            };
            Ok(tlv(&[0xC1], value))
        }
        _ => Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
    }
}
