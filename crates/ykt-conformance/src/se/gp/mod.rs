//! The GlobalPlatform items: the harness as the off-card entity of the card manager (ISD).
//!
//! The harness opens secure channels with `ykt_scp::HostSession` and the keys the declared
//! profile names ([`crate::isd`]: `gp` with `isd-scp03`, `isd-scp02` or `isd-sm4`, the public
//! GP test keys at KVN 30); items never name keys. Every checker works relative to the card's
//! state (sequence counter, key versions, registry), so the suite runs twice on one card.
//! References: GP Card Specification v2.3.1 §11 (commands), Amendment D (SCP03), tsm-gp.md §3,
//! §5.

pub(crate) mod commands;
pub(crate) mod content;
pub(crate) mod scp;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_gp::ISD_AID;
use ykt_scp::{HostConfig, HostSession, KeySet, Protocol, SecurityLevel};

use crate::isd::IsdChannel;
use crate::se::{SeHarness, expect_sw};
use crate::transcript::hex;
use crate::verdict::{Stop, ensure};

/// `6982`: security status not satisfied.
pub const SW_SECURITY: u16 = 0x6982;
/// `6988`: incorrect secure messaging data objects (a wrong MAC).
pub const SW_SM_DATA: u16 = 0x6988;
/// `6300`: authentication of the host cryptogram failed (GP §11.4.5).
pub const SW_HOST_CRYPTOGRAM: u16 = 0x6300;
/// `6310`: more data (GET STATUS).
pub const SW_MORE: u16 = 0x6310;

/// A BER-TLV list (1- and 2-byte tags, short, `81` and `82` lengths) as (tag, value); `None`
/// when malformed.
pub fn tlvs(mut data: &[u8]) -> Option<Vec<(u16, Vec<u8>)>> {
    let mut out = Vec::new();
    while let [first, rest @ ..] = data {
        let (tag, rest) = if first & 0x1F == 0x1F {
            let (second, rest) = rest.split_first()?;
            ((u16::from(*first) << 8) | u16::from(*second), rest)
        } else {
            (u16::from(*first), rest)
        };
        let (len, rest) = match rest {
            [0x81, n, rest @ ..] => (usize::from(*n), rest),
            [0x82, a, b, rest @ ..] => ((usize::from(*a) << 8) | usize::from(*b), rest),
            [n, rest @ ..] if *n < 0x80 => (usize::from(*n), rest),
            _ => return None,
        };
        let value = rest.get(..len)?;
        out.push((tag, value.to_vec()));
        data = &rest[len..];
    }
    Some(out)
}

/// The value of the single TLV `tag` that makes up all of `data`; FAIL otherwise.
pub fn single(data: &[u8], tag: u16, what: &str) -> Result<Vec<u8>, Stop> {
    match tlvs(data).as_deref() {
        Some([(t, v)]) if *t == tag => Ok(v.clone()),
        _ => Err(Stop::Fail(format!(
            "{what}: expected one TLV {tag:02X}, got {}",
            hex(data)
        ))),
    }
}

/// One open (or refused) channel.
pub struct Channel {
    /// The host side of the session.
    pub session: HostSession,
    /// The sequence counter the card announced, if any.
    pub sequence: Option<u32>,
}

impl SeHarness<'_> {
    /// The ISD channel the declared profile names; INCONCLUSIVE without `gp`.
    pub fn isd_channel(&self) -> Result<IsdChannel, Stop> {
        self.isd
            .ok_or_else(|| Stop::Inconclusive("the declared profile names no ISD (gp)".into()))
    }

    /// The protocol of the ISD channel.
    pub fn isd_protocol(&self) -> Result<Protocol, Stop> {
        self.isd_channel()?
            .protocol()
            .map_err(|e| Stop::Inconclusive(format!("ISD channel: {e}")))
    }

    /// The key set the declared profile names (the public GP test keys at KVN 30).
    pub fn isd_keys(&self) -> Result<KeySet, Stop> {
        self.isd_channel()?
            .test_keys()
            .map_err(|e| Stop::Inconclusive(format!("ISD test keys: {e}")))
    }

    /// SELECT of the ISD; must answer `9000` with an FCI naming its AID.
    pub fn select_isd(&mut self) -> Result<Vec<u8>, Stop> {
        let fci = self.ok(&select(&ISD_AID), "SELECT of the ISD")?;
        ensure(fci.windows(ISD_AID.len()).any(|w| w == ISD_AID), || {
            format!(
                "the ISD's FCI {} does not name {}",
                hex(&fci),
                hex(&ISD_AID)
            )
        })?;
        Ok(fci)
    }

    fn host_challenge(&mut self) -> Vec<u8> {
        self.host_challenges = self.host_challenges.wrapping_add(1);
        let n = self.host_challenges.to_be_bytes();
        vec![0x48, 0x4F, 0x53, 0x54, n[0], n[1], n[2], n[3]]
    }

    /// INITIALIZE UPDATE with `keys` asking for `level` (ISD selected by the caller): the host
    /// session (card cryptogram and pseudo-random challenge checked) and EXTERNAL
    /// AUTHENTICATE, not yet sent.
    pub fn initialize_update(
        &mut self,
        keys: &KeySet,
        level: SecurityLevel,
    ) -> Result<(Channel, CommandApdu), Stop> {
        self.initialize_update_to(keys, level, &ISD_AID)
    }

    /// [`SeHarness::initialize_update`] to the security domain `sd_aid` (selected by the
    /// caller), which runs the ISD's protocol.
    pub fn initialize_update_to(
        &mut self,
        keys: &KeySet,
        level: SecurityLevel,
        sd_aid: &[u8],
    ) -> Result<(Channel, CommandApdu), Stop> {
        let config = HostConfig {
            keys: keys.clone(),
            protocol: self.isd_protocol()?,
            level,
            security_domain_aid: Some(sd_aid.to_vec()),
        };
        let challenge = self.host_challenge();
        let (mut session, iu) = HostSession::initialize_update(config, &challenge)
            .map_err(|e| Stop::Inconclusive(format!("host: {e}")))?;
        let r = self.send(&iu)?;
        expect_sw(&r, 0x9000, "INITIALIZE UPDATE")?;
        let ea = session.on_initialize_update_response(&r).map_err(|e| {
            Stop::Fail(format!(
                "INITIALIZE UPDATE response refused by the host: {e}"
            ))
        })?;
        let sequence = session.card_info().and_then(|c| c.sequence_counter);
        Ok((Channel { session, sequence }, ea))
    }

    /// SELECT ISD, INITIALIZE UPDATE and EXTERNAL AUTHENTICATE with `keys` at `level`; FAIL
    /// unless the channel opens.
    pub fn open_channel_with(
        &mut self,
        keys: &KeySet,
        level: SecurityLevel,
    ) -> Result<Channel, Stop> {
        self.select_isd()?;
        let (mut ch, ea) = self.initialize_update(keys, level)?;
        let r = self.send(&ea)?;
        expect_sw(&r, 0x9000, "EXTERNAL AUTHENTICATE")?;
        ch.session
            .on_external_authenticate_response(&r)
            .map_err(|e| Stop::Fail(format!("EXTERNAL AUTHENTICATE: {e}")))?;
        Ok(ch)
    }

    /// [`SeHarness::open_channel_with`] the profile's keys.
    pub fn open_channel(&mut self, level: SecurityLevel) -> Result<Channel, Stop> {
        let keys = self.isd_keys()?;
        self.open_channel_with(&keys, level)
    }

    /// Wraps `cmd`, sends it; a success or warning (`63xx`) is unwrapped (FAIL when the R-MAC
    /// does not verify), any other status comes back as it is.
    pub fn wrapped(&mut self, ch: &mut Channel, cmd: &CommandApdu) -> Result<ResponseApdu, Stop> {
        let w = ch
            .session
            .wrap(cmd)
            .map_err(|e| Stop::Inconclusive(format!("host wrap: {e}")))?;
        let r = self.send(&w)?;
        if r.sw.is_success() || r.sw.0 & 0xFF00 == 0x6300 {
            ch.session
                .unwrap(&r)
                .map_err(|e| Stop::Fail(format!("the response to {}: {e}", hex(&cmd.to_bytes()))))
        } else {
            Ok(r)
        }
    }

    /// [`SeHarness::wrapped`] that must answer `9000`; the plain data.
    pub fn wrapped_ok(
        &mut self,
        ch: &mut Channel,
        cmd: &CommandApdu,
        what: &str,
    ) -> Result<Vec<u8>, Stop> {
        let r = self.wrapped(ch, cmd)?;
        expect_sw(&r, 0x9000, what)?;
        Ok(r.data)
    }

    /// GET DATA E0 (plain, ISD selected): (key id, KVN, type, length) of every key.
    pub fn key_information(&mut self) -> Result<Vec<[u8; 4]>, Stop> {
        let d = self.ok(&get_data(0x00E0), "GET DATA E0")?;
        parse_key_information(&d)
    }
}

/// The C0 entries of a key information template.
pub fn parse_key_information(d: &[u8]) -> Result<Vec<[u8; 4]>, Stop> {
    let body = single(d, 0xE0, "GET DATA E0")?;
    let entries = tlvs(&body)
        .ok_or_else(|| Stop::Fail(format!("GET DATA E0: malformed template {}", hex(&body))))?;
    entries
        .into_iter()
        .map(|(t, v)| match (t, v.as_slice()) {
            (0xC0, [id, kvn, ty, len, ..]) => Ok([*id, *kvn, *ty, *len]),
            _ => Err(Stop::Fail(format!(
                "GET DATA E0: {t:02X} {} is not a C0 key information entry",
                hex(&v)
            ))),
        })
        .collect()
}

/// SELECT by AID.
pub fn select(aid: &[u8]) -> CommandApdu {
    CommandApdu::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(aid.to_vec())
        .with_le(256)
}

/// GET DATA `80 CA tag 00`.
pub fn get_data(tag: u16) -> CommandApdu {
    let [p1, p2] = tag.to_be_bytes();
    CommandApdu::new(0x80, 0xCA, p1, p2).with_le(256)
}

/// GET STATUS `80 F2 p1 p2 4F 00`.
pub fn get_status(p1: u8, p2: u8) -> CommandApdu {
    CommandApdu::new(0x80, 0xF2, p1, p2)
        .with_data(vec![0x4F, 0x00])
        .with_le(256)
}

/// The key type byte of PUT KEY for a channel (GP §11.1.8; SM4: L, `ykt_scp::sm4`).
pub fn key_type(channel: IsdChannel) -> u8 {
    match channel {
        IsdChannel::Scp02 => 0x80,
        IsdChannel::Scp03 => 0x88,
        IsdChannel::Sm4 => ykt_scp::sm4::SM4_CHANNEL.key_type,
    }
}

/// True when `sw` refuses the command: neither `9000` nor the `6310` of a listing in parts.
pub fn refused(sw: StatusWord) -> bool {
    !sw.is_success() && sw.0 != SW_MORE
}
