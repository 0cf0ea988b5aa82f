//! The card (security domain) role: answers INITIALIZE UPDATE and EXTERNAL AUTHENTICATE,
//! unwraps commands and wraps responses. Every error is a status word.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_crypto::ct_eq;

use crate::channel::Channel;
use crate::handshake::{check_keys, handshake, pseudo_random_challenge};
use crate::keys::KeySet;
use crate::params::{Protocol, SecurityLevel};

/// Status word for a wrong host cryptogram or a wrong C-MAC on EXTERNAL AUTHENTICATE.
///
/// The project's brief asks for `6982` (security status not satisfied); GP Card Specification
/// v2.2 §11.4.5 lists `6300` ("authentication of host cryptogram failed") for the cryptogram.
/// A card manager that wants the latter changes this one constant.
pub const WRONG_HOST_CRYPTOGRAM: StatusWord = StatusWord::SECURITY_STATUS_NOT_SATISFIED;

/// Status word for a wrong C-MAC, or undecryptable data, on a wrapped command (ISO/IEC 7816-4
/// "incorrect secure messaging data objects"); the session is closed.
pub const WRONG_MAC: StatusWord = crate::channel::MAC_FAILURE;

/// Status word for a command below the session's security level, or a wrapped command without
/// a session; an open session is closed.
pub const BELOW_SECURITY_LEVEL: StatusWord = StatusWord::SECURITY_STATUS_NOT_SATISFIED;

/// How a security domain runs its channel.
#[derive(Clone, Debug)]
pub struct CardConfig {
    /// The protocol and `i` the card announces.
    pub protocol: Protocol,
    /// The security domain's AID (input of the pseudo-random card challenge).
    pub aid: Vec<u8>,
    /// Key diversification data returned in INITIALIZE UPDATE (often CSN/CIN based).
    pub key_diversification_data: [u8; 10],
    /// The lowest level EXTERNAL AUTHENTICATE may ask for; lower asks get
    /// [`BELOW_SECURITY_LEVEL`].
    pub minimum_level: SecurityLevel,
}

/// The host cryptogram the card expects; whoever reads it can answer the challenge, so `Debug`
/// does not print it.
struct Expected(Vec<u8>);

impl core::fmt::Debug for Expected {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug)]
enum State {
    Idle,
    Initialized {
        channel: Channel,
        host_cryptogram: Expected,
    },
    Open(Channel),
}

/// The card side of the secure channel of one security domain.
///
/// ```text
/// IU  ──▶ on_initialize_update  ──▶ KDD ‖ key info ‖ card challenge ‖ card cryptogram [‖ seq]
/// EA  ──▶ on_external_authenticate (host cryptogram and C-MAC checked; level set)
/// cmd ──▶ unwrap_command (C-MAC, C-DEC) ──▶ applet ──▶ wrap_response (R-ENC, R-MAC) ──▶ resp
/// ```
///
/// A failed EXTERNAL AUTHENTICATE, a wrong MAC, or a command below the level closes the session
/// (GP Card Specification v2.2 §10.6.3, Amendment D §6.2.4).
#[derive(Debug)]
pub struct CardSession {
    config: CardConfig,
    state: State,
}

impl CardSession {
    /// A card with no session.
    pub fn new(config: CardConfig) -> Self {
        Self {
            config,
            state: State::Idle,
        }
    }

    /// Answers INITIALIZE UPDATE (`80 50 KVN 00 Lc host-challenge [Le]`) with the response
    /// data (status `9000` implied). Any session open before is closed.
    ///
    /// `sequence_counter` is the security domain's current counter (2 bytes for SCP02, 3 for
    /// SCP03); the caller persists its increment. `random` is the card's randomness for the
    /// card challenge when `i` does not ask for a pseudo-random one (6 bytes for SCP02, 8 or 16
    /// for SCP03); it is ignored otherwise.
    pub fn on_initialize_update(
        &mut self,
        cmd: &CommandApdu,
        keys: &KeySet,
        sequence_counter: u32,
        random: &[u8],
    ) -> Result<Vec<u8>, StatusWord> {
        self.initialize_update(cmd, keys, sequence_counter, random, false)
    }

    /// [`on_initialize_update`](Self::on_initialize_update) with the card challenge taken from
    /// `card_challenge` even when `i` asks for a pseudo-random one.
    ///
    /// For replaying published transcripts whose security domain AID is unknown; a real card
    /// must never do this, since hosts may check the challenge.
    #[doc(hidden)]
    pub fn danger_on_initialize_update_with_challenge(
        &mut self,
        cmd: &CommandApdu,
        keys: &KeySet,
        sequence_counter: u32,
        card_challenge: &[u8],
    ) -> Result<Vec<u8>, StatusWord> {
        self.initialize_update(cmd, keys, sequence_counter, card_challenge, true)
    }

    fn initialize_update(
        &mut self,
        cmd: &CommandApdu,
        keys: &KeySet,
        sequence_counter: u32,
        random: &[u8],
        force_challenge: bool,
    ) -> Result<Vec<u8>, StatusWord> {
        self.state = State::Idle;
        let protocol = self.config.protocol;
        if cmd.ins != 0x50 {
            return Err(StatusWord::INS_NOT_SUPPORTED);
        }
        if cmd.cla & 0x04 != 0 {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        if cmd.p2 != 0x00 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        if cmd.p1 != 0x00 && cmd.p1 != keys.version {
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        if cmd.data.len() != protocol.challenge_len() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        check_keys(keys, protocol).map_err(|_| StatusWord::UNKNOWN)?;
        let seq: Vec<u8> = match protocol {
            Protocol::Scp02(_) => u16::try_from(sequence_counter)
                .map_err(|_| StatusWord::CONDITIONS_NOT_SATISFIED)?
                .to_be_bytes()
                .to_vec(),
            Protocol::Scp03(_) | Protocol::Sm4(_) => {
                if sequence_counter > 0x00FF_FFFF {
                    return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
                }
                sequence_counter.to_be_bytes()[1..].to_vec()
            }
        };
        let card_challenge = if protocol.pseudo_random_challenge() && !force_challenge {
            pseudo_random_challenge(keys, protocol, &seq, &self.config.aid)
                .map_err(|_| StatusWord::UNKNOWN)?
        } else {
            random
                .get(..protocol.card_challenge_len())
                .ok_or(StatusWord::UNKNOWN)?
                .to_vec()
        };
        let hs = handshake(keys, protocol, &cmd.data, &card_challenge, &seq)
            .map_err(|_| StatusWord::UNKNOWN)?;
        let mut out = Vec::with_capacity(48);
        out.extend_from_slice(&self.config.key_diversification_data);
        out.push(keys.version);
        out.push(protocol.scp_id());
        match protocol {
            Protocol::Scp02(_) => {
                out.extend_from_slice(&seq);
                out.extend_from_slice(&card_challenge);
                out.extend_from_slice(&hs.card_cryptogram);
            }
            Protocol::Scp03(_) | Protocol::Sm4(_) => {
                out.push(protocol.i());
                out.extend_from_slice(&card_challenge);
                out.extend_from_slice(&hs.card_cryptogram);
                if protocol.pseudo_random_challenge() {
                    out.extend_from_slice(&seq);
                }
            }
        }
        self.state = State::Initialized {
            channel: Channel::new(protocol, hs.keys),
            host_cryptogram: Expected(hs.host_cryptogram),
        };
        Ok(out)
    }

    /// Checks EXTERNAL AUTHENTICATE (`84 82 level 00 Lc host-cryptogram C-MAC`) and opens the
    /// session at the requested level; on any failure the session stays closed.
    pub fn on_external_authenticate(&mut self, cmd: &CommandApdu) -> Result<(), StatusWord> {
        let State::Initialized {
            mut channel,
            host_cryptogram,
        } = core::mem::replace(&mut self.state, State::Idle)
        else {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        };
        let protocol = self.config.protocol;
        if cmd.ins != 0x82 {
            return Err(StatusWord::INS_NOT_SUPPORTED);
        }
        if cmd.cla & 0x04 == 0 {
            return Err(BELOW_SECURITY_LEVEL);
        }
        if cmd.p2 != 0x00 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let level = SecurityLevel::from_byte(cmd.p1).map_err(|_| StatusWord::INCORRECT_P1P2)?;
        protocol
            .check_level(level)
            .map_err(|_| StatusWord::INCORRECT_P1P2)?;
        if cmd.data.len() != 2 * protocol.mac_len() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        if !level.covers(self.config.minimum_level) {
            return Err(BELOW_SECURITY_LEVEL);
        }
        let plain = channel
            .unwrap_command(cmd)
            .map_err(|_| WRONG_HOST_CRYPTOGRAM)?;
        if !ct_eq(&plain.data, &host_cryptogram.0) {
            return Err(WRONG_HOST_CRYPTOGRAM);
        }
        channel.open(level);
        self.state = State::Open(channel);
        Ok(())
    }

    /// Checks and unwraps a command inside the session: the C-MAC (and its chaining) and C-DEC.
    ///
    /// Without an open session a plain command passes unchanged and a wrapped one is refused.
    /// In a session, a plain command when the level asks for C-MAC gets
    /// [`BELOW_SECURITY_LEVEL`], a wrong MAC or bad cryptogram gets [`WRONG_MAC`]; both close the
    /// session. The CLA given to the applet has the secure-messaging bit cleared.
    pub fn unwrap_command(&mut self, cmd: &CommandApdu) -> Result<CommandApdu, StatusWord> {
        if let State::Initialized { .. } = self.state {
            // EXTERNAL AUTHENTICATE must follow INITIALIZE UPDATE directly.
            self.state = State::Idle;
        }
        let wrapped = cmd.cla & 0x04 != 0;
        let State::Open(channel) = &mut self.state else {
            return if wrapped {
                Err(BELOW_SECURITY_LEVEL)
            } else {
                Ok(cmd.clone())
            };
        };
        if !channel.level.c_mac() {
            return if wrapped {
                Err(StatusWord::SECURE_MESSAGING_NOT_SUPPORTED)
            } else {
                Ok(cmd.clone())
            };
        }
        if !wrapped {
            self.state = State::Idle;
            return Err(BELOW_SECURITY_LEVEL);
        }
        channel.unwrap_command(cmd).inspect_err(|_| {
            self.state = State::Idle;
        })
    }

    /// Adds R-ENC and R-MAC to a response as the session's level asks; outside a session, or
    /// for an error status word, the response goes back unchanged.
    pub fn wrap_response(&mut self, resp: &ResponseApdu) -> ResponseApdu {
        match &mut self.state {
            State::Open(channel) => channel.wrap_response(resp),
            _ => resp.clone(),
        }
    }

    /// The open session's level, if any.
    pub fn level(&self) -> Option<SecurityLevel> {
        match &self.state {
            State::Open(channel) => Some(channel.level),
            _ => None,
        }
    }

    /// For commands that need more than the session gives (e.g. PUT KEY needs C-DEC): `Ok` when
    /// an open session covers `needed`, [`BELOW_SECURITY_LEVEL`] otherwise.
    pub fn require(&self, needed: SecurityLevel) -> Result<(), StatusWord> {
        match self.level() {
            Some(level) if level.covers(needed) => Ok(()),
            _ => Err(BELOW_SECURITY_LEVEL),
        }
    }

    /// The SCP02 session DEK while a session is open (for decrypting PUT KEY key data).
    pub fn scp02_session_dek(&self) -> Option<&ykt_crypto::TdesKey> {
        match &self.state {
            State::Open(channel) => channel.scp02_dek(),
            _ => None,
        }
    }

    /// True while a session is open.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Closes any session (card reset, SELECT of another application).
    pub fn close(&mut self) {
        self.state = State::Idle;
    }
}
