//! SE-SCP items: opening the secure channel at each level, and the refusals that close it
//! (GP Card Specification v2.2 §E.5, Amendment D §6–§7; tsm-gp.md §5, §9).

use ykt_apdu::CommandApdu;
use ykt_scp::SecurityLevel;

use super::{
    Channel, SW_HOST_CRYPTOGRAM, SW_SECURITY, SW_SM_DATA, get_data, get_status, refused, single,
};
use crate::params::Params;
use crate::se::{SeHarness, expect_sw};
use crate::transcript::hex;
use crate::verdict::{Stop, ensure};

/// The levels to try, of those the item lists, that the channel's `i` supports.
fn levels(s: &SeHarness<'_>, p: Params<'_>) -> Result<Vec<SecurityLevel>, Stop> {
    let protocol = s.isd_protocol()?;
    let text = p.str("levels", "01,03,13,33")?;
    let mut out = Vec::new();
    for part in text.split(',') {
        let b = u8::from_str_radix(part.trim(), 16)
            .map_err(|_| Stop::Inconclusive(format!("level {part:?} is not hex")))?;
        let level = SecurityLevel::from_byte(b)
            .map_err(|e| Stop::Inconclusive(format!("level {part}: {e}")))?;
        if protocol.check_level(level).is_ok() {
            out.push(level);
        }
    }
    Ok(out)
}

/// A wrapped command that must be refused, and the channel must be closed afterwards: a
/// correctly wrapped GET DATA 66 on the host's session is refused too.
fn expect_closed(s: &mut SeHarness<'_>, ch: &mut Channel, after: &str) -> Result<u16, Stop> {
    let r = s.wrapped(ch, &get_data(0x0066))?;
    ensure(refused(r.sw), || {
        format!(
            "after {after}, a correctly wrapped GET DATA answered {:04X}: the channel stayed open",
            r.sw.0
        )
    })?;
    Ok(r.sw.0)
}

/// SE-SCP-OPEN-001: the channel opens at every level and carries a wrapped GET DATA 66.
pub(in crate::se) fn open_levels(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let levels = levels(s, p)?;
    ensure(!levels.is_empty(), || "no level to try".into())?;
    let protocol = s.isd_protocol()?;
    let mut done = Vec::new();
    for level in levels {
        s.note(format!("level {:02X}", level.to_byte()));
        let mut ch = s.open_channel(level)?;
        let d = s.wrapped_ok(&mut ch, &get_data(0x0066), "wrapped GET DATA 66")?;
        let body = single(&d, 0x66, "GET DATA 66")?;
        let oid = [
            0x2A,
            0x86,
            0x48,
            0x86,
            0xFC,
            0x6B,
            0x04,
            protocol.scp_id(),
            protocol.i(),
        ];
        ensure(body.windows(oid.len()).any(|w| w == oid), || {
            format!(
                "the card recognition data {} does not announce SCP {:02X} i={:02X}",
                hex(&d),
                protocol.scp_id(),
                protocol.i()
            )
        })?;
        done.push(format!("{:02X}", level.to_byte()));
    }
    Ok(format!(
        "channel opened at levels {}; wrapped GET DATA 66 answered and verified at each",
        done.join(", ")
    ))
}

/// SE-SCP-AUTH-001: a wrong host cryptogram is refused (`6300` or `6982`) and the session is
/// gone: the right EXTERNAL AUTHENTICATE of the same INITIALIZE UPDATE is refused afterwards,
/// and so is a wrapped command.
pub(in crate::se) fn wrong_host_cryptogram(
    s: &mut SeHarness<'_>,
    _: Params<'_>,
) -> Result<String, Stop> {
    let keys = s.isd_keys()?;
    s.select_isd()?;
    let (mut ch, ea) = s.initialize_update(&keys, SecurityLevel::C_MAC)?;
    let mut bad = ea.clone();
    if let Some(b) = bad.data.first_mut() {
        *b ^= 0x01;
    }
    let sw = s.sw(&bad)?;
    ensure([SW_HOST_CRYPTOGRAM, SW_SECURITY].contains(&sw), || {
        format!(
            "EXTERNAL AUTHENTICATE with a wrong host cryptogram answered {sw:04X}, not 6300 or 6982"
        )
    })?;
    let again = s.sw(&ea)?;
    ensure(again != 0x9000, || {
        "the right EXTERNAL AUTHENTICATE after a wrong one was accepted: the session survived"
            .into()
    })?;
    // The host pretends the channel opened; the card must not.
    ch.session
        .on_external_authenticate_response(&ykt_apdu::ResponseApdu::status(
            ykt_apdu::StatusWord::SUCCESS,
        ))
        .map_err(|e| Stop::Inconclusive(format!("host: {e}")))?;
    let closed = expect_closed(s, &mut ch, "the refused EXTERNAL AUTHENTICATE")?;
    Ok(format!(
        "wrong host cryptogram {sw:04X}; the right one afterwards {again:04X}; a wrapped command {closed:04X}"
    ))
}

/// SE-SCP-MAC-001: a wrapped command with a wrong C-MAC is refused and closes the session.
pub(in crate::se) fn wrong_cmac(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    let mut ch = s.open_channel(SecurityLevel::C_MAC)?;
    let mut w = ch
        .session
        .wrap(&get_data(0x0066))
        .map_err(|e| Stop::Inconclusive(format!("host wrap: {e}")))?;
    if let Some(b) = w.data.last_mut() {
        *b ^= 0x01;
    }
    let sw = s.sw(&w)?;
    ensure([SW_SM_DATA, SW_SECURITY].contains(&sw), || {
        format!("a wrong C-MAC answered {sw:04X}, not 6988 or 6982")
    })?;
    let closed = expect_closed(s, &mut ch, "a wrong C-MAC")?;
    Ok(format!(
        "wrong C-MAC {sw:04X}; the next, correctly wrapped command {closed:04X}"
    ))
}

/// SE-SCP-MAC-002: a wrapped command sent twice is refused the second time (the MAC chains)
/// and closes the session.
pub(in crate::se) fn replay(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    let mut ch = s.open_channel(SecurityLevel::C_MAC)?;
    let w = ch
        .session
        .wrap(&get_data(0x0066))
        .map_err(|e| Stop::Inconclusive(format!("host wrap: {e}")))?;
    let first = s.send(&w)?;
    expect_sw(&first, 0x9000, "the wrapped GET DATA")?;
    let sw = s.sw(&w)?;
    ensure(sw != 0x9000, || {
        "the same wrapped command was accepted twice".into()
    })?;
    let closed = expect_closed(s, &mut ch, "a replay")?;
    Ok(format!(
        "first 9000, replay {sw:04X}; the next, correctly wrapped command {closed:04X}"
    ))
}

/// SE-SCP-MAC-003: two wrapped commands sent in the wrong order: the second-wrapped one, sent
/// first, is refused.
pub(in crate::se) fn reorder(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    let mut ch = s.open_channel(SecurityLevel::C_MAC)?;
    let wrap = |ch: &mut Channel, cmd: &CommandApdu| {
        ch.session
            .wrap(cmd)
            .map_err(|e| Stop::Inconclusive(format!("host wrap: {e}")))
    };
    let a = wrap(&mut ch, &get_data(0x0066))?;
    let b = wrap(&mut ch, &get_data(0x00E0))?;
    let sw_b = s.sw(&b)?;
    ensure(sw_b != 0x9000, || {
        "the second-wrapped command was accepted before the first".into()
    })?;
    let sw_a = s.sw(&a)?;
    ensure(sw_a != 0x9000, || {
        "after the refusal, the first-wrapped command was accepted: the session survived".into()
    })?;
    Ok(format!(
        "second-wrapped first: {sw_b:04X}; then the first-wrapped: {sw_a:04X}"
    ))
}

/// SE-SCP-LVL-001: commands below the level they need are refused: GET STATUS without a
/// session; EXTERNAL AUTHENTICATE asking for no security (below the card's minimum, C-MAC);
/// a plain GET STATUS inside a C-MAC session, which also closes the session.
pub(in crate::se) fn below_level(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    s.select_isd()?;
    let plain = get_status(0x80, 0x02);
    let outside = s.sw(&plain)?;
    ensure(outside == SW_SECURITY, || {
        format!("GET STATUS without a session answered {outside:04X}, not 6982")
    })?;
    let keys = s.isd_keys()?;
    let (_, ea) = s.initialize_update(&keys, SecurityLevel::NONE)?;
    let none = s.sw(&ea)?;
    ensure(none == SW_SECURITY, || {
        format!("EXTERNAL AUTHENTICATE at level 00 answered {none:04X}, not 6982")
    })?;
    let mut ch = s.open_channel(SecurityLevel::C_MAC)?;
    let inside = s.sw(&plain)?;
    ensure(inside == SW_SECURITY, || {
        format!("an unwrapped GET STATUS in a C-MAC session answered {inside:04X}, not 6982")
    })?;
    let closed = expect_closed(s, &mut ch, "an unwrapped command in the session")?;
    Ok(format!(
        "GET STATUS outside a session {outside:04X}; level 00 {none:04X}; unwrapped inside a session {inside:04X}, then {closed:04X}"
    ))
}

/// SE-SCP-SEQ-001: every INITIALIZE UPDATE increments the sequence counter by one (the host
/// checks each pseudo-random card challenge against it), and GET DATA C1 reports it.
pub(in crate::se) fn sequence_counter(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
    let n = p.u32("opens", 3)?;
    let keys = s.isd_keys()?;
    let mut seen = Vec::new();
    for _ in 0..n {
        s.select_isd()?;
        let (ch, _) = s.initialize_update(&keys, SecurityLevel::C_MAC)?;
        let seq = ch
            .sequence
            .ok_or_else(|| Stop::Fail("INITIALIZE UPDATE carried no sequence counter".into()))?;
        seen.push(seq);
    }
    for w in seen.windows(2) {
        ensure(w[1] == w[0].wrapping_add(1), || {
            format!("sequence counters {seen:?} do not go up by one")
        })?;
    }
    let last = seen.last().copied().unwrap_or_default();
    s.select_isd()?;
    let d = s.ok(&get_data(0x00C1), "GET DATA C1")?;
    let v = single(&d, 0xC1, "GET DATA C1")?;
    let reported = v.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b));
    ensure(reported == last, || {
        format!("GET DATA C1 reports {reported}, the last INITIALIZE UPDATE {last}")
    })?;
    Ok(format!(
        "sequence counters {seen:?}; each pseudo-random challenge verified; GET DATA C1 = {reported}"
    ))
}
