//! Every choice of the engine that no brief fixes, in one place (\[PROPOSAL\]s of the service;
//! the domain's own are `ykt_tsm::proposals`).

/// \[PROPOSAL\] (e-purse.md §1; `ykt_purse::EP_AID`): the AID of the purse instance a flow
/// installs, which the wallet SELECTs for balance and records (`OutcomeView::app_aid`). The
/// service does not link the purse crate; a test checks the two agree.
pub const PURSE_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05];

/// \[PROPOSAL\] (tsm-gp.md §7 "seid", "card_no"; e-purse.md §2 ASN): a card number is the
/// stock's 4-byte prefix followed by the store counter's value in 12 BCD digits, so numbers are
/// unique and never reused (the counter only goes up).
pub fn card_number(prefix: [u8; 4], serial: u64) -> Option<[u8; 10]> {
    if serial >= 1_000_000_000_000 {
        return None;
    }
    let mut out = [0u8; 10];
    out[..4].copy_from_slice(&prefix);
    let mut n = serial;
    for i in (4..10).rev() {
        let lo = (n % 10) as u8;
        n /= 10;
        let hi = (n % 10) as u8;
        n /= 10;
        out[i] = (hi << 4) | lo;
    }
    Some(out)
}

/// The prefix and serial of a card number made by [`card_number`] (`None`: its last six
/// bytes are not BCD).
pub fn card_serial(number: [u8; 10]) -> Option<([u8; 4], u64)> {
    let mut serial = 0u64;
    for b in &number[4..] {
        let (hi, lo) = (b >> 4, b & 0x0F);
        if hi > 9 || lo > 9 {
            return None;
        }
        serial = serial * 100 + u64::from(hi) * 10 + u64::from(lo);
    }
    let mut prefix = [0u8; 4];
    prefix.copy_from_slice(&number[..4]);
    Some((prefix, serial))
}

/// \[PROPOSAL\] (tsm-gp.md §7 迁卡, §2 SE registry): the EF15 fields of the card a transfer
/// in opens on the new SE. It keeps the escrowed card number; the issuer id and dates are those
/// the number was issued with: the registry stock range that gave it (prefix equal, serial
/// within the range and already given) and that range's issuer. A number no range gave (a card
/// opened with no issuer in the registry) takes them from the configured `CardStock`, as open
/// card did for it.
pub fn range_of(
    ranges: &[ykt_store::StockRange],
    number: [u8; 10],
) -> Option<&ykt_store::StockRange> {
    let (prefix, serial) = card_serial(number)?;
    ranges.iter().find(|r| {
        r.range.prefix == prefix
            && (r.range.first_seq..=r.range.last_seq).contains(&serial)
            && serial < r.next_seq
    })
}

/// \[PROPOSAL\] (tsm-gp.md §2 SE registry, §6 key hierarchy: the purse-issuer key by name):
/// the purse master keys of a card are those its issuer names (`NewIssuer::purse_key`; an
/// issuer never changes once created), for every flow on it: open card, loads, proofs,
/// transfers. `None` when the issuer names the configured `Parties::purse_issuer` itself. A
/// card no registry issuer gave ([`range_of`]) keeps the configured key.
pub fn purse_key_of(
    parties: &ykt_tsm::Parties,
    issuer: &ykt_store::Issuer,
) -> Option<ykt_tsm::KeyName> {
    let name = ykt_tsm::KeyName::new(&issuer.issuer.purse_key);
    (name != parties.purse_issuer).then_some(name)
}

/// The store counter card numbers are drawn from when the registry has no issuer.
pub const CARD_NUMBER_COUNTER: &str = "card_number";

/// \[PROPOSAL\] (tsm-gp.md §2 SE registry, §7 申请开卡 "city_code"): where an opened card's
/// number comes from. With at least one card issuer in the registry, from the stock of the
/// issuer whose city code is the request's (when several share it, the first by `issuer_id`),
/// taken once and never again (`ykt_store::Store::take_card_number`); no issuer for the city
/// is `1006`, an exhausted stock is `5001` (the issuer declines), and in both cases no flow
/// starts. With no issuer in the registry (a deployment that has not set one up), the
/// configured `CardStock`'s prefix and the store counter [`CARD_NUMBER_COUNTER`]
/// ([`card_number`]), as before the registry. A number taken for a flow whose first commit
/// then fails is skipped, never given again.
pub fn issuer_for_city(
    issuers: &[ykt_store::Issuer],
    city_code: [u8; 2],
) -> Option<&ykt_store::Issuer> {
    issuers
        .iter()
        .filter(|i| i.issuer.city_code == city_code)
        .min_by(|a, b| a.issuer.issuer_id.cmp(&b.issuer.issuer_id))
}

/// \[PROPOSAL\] (client.md §8 of loads: UTC+8, China Standard Time): the offset of the BCD date
/// and time a load carries (INITIALIZE FOR LOAD, MAC2, TAC).
pub const LOAD_TIME_OFFSET_MS: i64 = 8 * 3600 * 1000;

/// \[PROPOSAL\] (tsm-gp.md §7 "transfer_code"): a transfer code is 10 random bytes in upper-case
/// hex (80 bits: a bearer secret the old phone shows and the new phone types or scans).
pub const TRANSFER_CODE_BYTES: usize = 10;

/// \[PROPOSAL\]: the escrow of a transfer is stored under `hex(SM3(code))[..32]`, so the code
/// itself opens nothing read from the store's escrow table.
pub fn transfer_id(code: &str) -> String {
    let digest = ykt_crypto::sm3(code.trim().to_ascii_uppercase().as_bytes());
    hex::encode(&digest[..16])
}

/// \[PROPOSAL\] (tsm-gp.md §8 "state in the store, not in memory"): a flow kept in memory (its
/// open secure channel) that nobody has moved for this long is dropped from memory; its next
/// answer or resume rebuilds it from the store and probes the SE first, as after a restart.
/// 15 minutes: far longer than a wallet takes between two relay answers, short enough that
/// abandoned flows do not pile up. A flow that ends (completed, or given up) leaves memory at
/// once.
pub const LIVE_FLOW_IDLE_MS: i64 = 15 * 60 * 1000;

/// \[PROPOSAL\] (tsm-gp.md §8): how often the live flows are scanned for ones idle past
/// [`LIVE_FLOW_IDLE_MS`]. A hold scans only when this long has passed since the last scan (or
/// the clock went back by as much), so a request costs one map operation, not one check per
/// live flow; an idle flow thus stays in memory for at most `LIVE_FLOW_IDLE_MS` plus this. One
/// minute: small beside the idle bound, rare beside the rate of relay messages.
pub const LIVE_SWEEP_INTERVAL_MS: i64 = 60 * 1000;

/// \[PROPOSAL\] (conformance.md §4.7 RP-LOAD-005 "amount over limit — refused before any
/// APDU"; e-purse.md §4.1: a load that would take the balance past the purse's maximum is
/// refused by the card): the largest top-up order accepted, in fen: the maximum balance of the
/// purse profile the TSM personalises (`PurseProfile`'s default, 100 000 fen), so an order the
/// card could never load is refused when it is ordered, before it is paid. An order within it
/// that the card's current balance cannot take fails at INITIALIZE FOR LOAD, before any MAC2:
/// its flow is `NOT_CREDITED` and the operator's abandon refunds it.
pub const MAX_ORDER_FEN: u32 = ykt_tsm::vault::DEFAULT_MAX_BALANCE;

/// \[PROPOSAL\] (client.md §2 channel codes): the built-in test payment provider's channel.
pub const TEST_PAY_CHANNEL: &str = "99";

/// \[PROPOSAL\] (tsm-gp.md §8 "never assume success"): a relay message is idempotent — the
/// store's `ReleasedScript::idempotent` — when every command in it only reads: SELECT, GET DATA,
/// GET STATUS, INITIALIZE UPDATE / INITIALIZE FOR LOAD (`50`: no persistent change), EXTERNAL
/// AUTHENTICATE, GET RESPONSE, GET BALANCE, GET TRANSACTION PROVE, READ BINARY / RECORD.
/// Any other instruction (INSTALL, LOAD, DELETE, PUT KEY, STORE DATA, SET STATUS, CREDIT FOR
/// LOAD, anything unknown) counts as a card write.
pub const READ_ONLY_INS: &[u8] = &[
    0xA4, 0xCA, 0xCB, 0xF2, 0x50, 0x82, 0xC0, 0x5C, 0x5A, 0xB0, 0xB2,
];

/// True when `capdu` (a command APDU) only reads (see [`READ_ONLY_INS`]).
pub fn is_read_only(capdu: &[u8]) -> bool {
    capdu.get(1).is_some_and(|ins| READ_ONLY_INS.contains(ins))
}

/// \[PROPOSAL\] (tsm-gp.md §8 "never assume success"; the operator's abandon,
/// `Engine::admin_abandon_flow`, served as `POST /admin/v1/flows/{id}/abandon` with
/// `{"reason": …}`): an operator may abandon only a failed top-up or transfer in whose records
/// prove no MAC2 ever left (`LoadVerdict::NotCredited`). The flow ends `FAILED` with its step
/// [`ABANDONED_STEP_PREFIX`]`<step>`, its card instance is released, a top-up's paid order is
/// cancelled and refunded, a transfer in's escrow is released for a new transfer in with the
/// same code; all with an `OPERATOR_ACTION` audit row (operator, reason, before → after), in
/// one transaction. A flow whose MAC2 left (`CARD_MUST_PROVE`) is refused (409): only the
/// card's proof (a resume) may settle it. Abandoning it again answers the same, writing nothing.
pub const ABANDONED_STEP_PREFIX: &str = "ABANDONED_";

/// \[PROPOSAL\] (the operator's abandon): the longest reason accepted, in characters (the
/// reason is trimmed; an empty one is refused too). It goes into the audit log as given.
pub const ABANDON_REASON_MAX_CHARS: usize = 200;

/// \[PROPOSAL\] (the operator's abandon of a top-up; tsm-gp.md §7 refunds): the refund of a
/// cancelled order is recorded under `abandon/<order id>` (so it is paid once), to the payer
/// through the order's payment channel and payment order: `<pay channel>:<pay order id>`.
pub fn abandon_refund(
    order_id: &str,
    pay_channel: Option<&str>,
    pay_order_id: &str,
) -> (String, String) {
    (
        format!("abandon/{order_id}"),
        format!("{}:{pay_order_id}", pay_channel.unwrap_or("unknown")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_prefix_and_bcd_serial() {
        assert_eq!(
            card_number([0x31, 0x04, 0x10, 0x00], 1_234_567),
            Some([0x31, 0x04, 0x10, 0x00, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67])
        );
        assert_eq!(card_number([0; 4], 1_000_000_000_000), None);
        assert_ne!(card_number([0; 4], 1), card_number([0; 4], 2));
        let n = card_number([0x51, 0x80, 0x00, 0x01], 987_654_321_012);
        assert_eq!(
            n.and_then(card_serial),
            Some(([0x51, 0x80, 0x00, 0x01], 987_654_321_012))
        );
        let mut bad = [0u8; 10];
        bad[9] = 0x0A;
        assert_eq!(card_serial(bad), None);
    }

    #[test]
    fn read_only_commands() {
        assert!(is_read_only(&[0x00, 0xA4, 0x04, 0x00]));
        assert!(!is_read_only(&[0x84, 0xE6, 0x0C, 0x00]));
        assert!(!is_read_only(&[0x80, 0x52, 0x00, 0x00]));
        assert!(!is_read_only(&[0x80]));
    }

    #[test]
    fn transfer_ids_ignore_case_and_spaces() {
        assert_eq!(transfer_id("ab12"), transfer_id(" AB12 "));
        assert_ne!(transfer_id("AB12"), transfer_id("AB13"));
        assert_eq!(transfer_id("AB12").len(), 32);
    }
}
