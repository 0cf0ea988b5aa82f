//! The host (off-card entity) role: INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, then wrapped
//! commands and unwrapped responses.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_crypto::ct_eq;

use crate::channel::Channel;
use crate::derive::{
    Failure, SessionKeyDeriver, StaticKeyKind, check_kind, handshake_derived,
    pseudo_random_challenge_derived,
};
use crate::error::{InitializeUpdateError, ParameterError, ResponseError, ScpError};
use crate::handshake::{Handshake, check_keys, handshake, pseudo_random_challenge};
use crate::keys::KeySet;
use crate::params::{Protocol, SecurityLevel};

/// What the host needs to open a channel.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// The static keys; `version` goes into P1 of INITIALIZE UPDATE.
    pub keys: KeySet,
    /// The protocol and `i` the host runs; the card's announced `i` must match (SCP03).
    pub protocol: Protocol,
    /// The security level asked for in EXTERNAL AUTHENTICATE.
    pub level: SecurityLevel,
    /// The AID of the security domain, for checking a pseudo-random card challenge; `None`
    /// skips that check (the card cryptogram still authenticates the card).
    pub security_domain_aid: Option<Vec<u8>>,
}

/// What a host needs to open a channel whose static keys it does not hold: the session keys
/// come from a [`SessionKeyDeriver`] ([`HostSession::initialize_update_derived`]).
#[derive(Clone, Debug)]
pub struct DerivedHostConfig {
    /// The key version number, for P1 of INITIALIZE UPDATE.
    pub key_version: u8,
    /// The algorithm and length of the static keys.
    pub key_kind: StaticKeyKind,
    /// The protocol and `i` the host runs; the card's announced `i` must match (SCP03).
    pub protocol: Protocol,
    /// The security level asked for in EXTERNAL AUTHENTICATE.
    pub level: SecurityLevel,
    /// The AID of the security domain, for checking a pseudo-random card challenge; `None`
    /// skips that check (the card cryptogram still authenticates the card).
    pub security_domain_aid: Option<Vec<u8>>,
}

/// Where a session's static keys are.
#[derive(Clone, Debug)]
enum Keys {
    /// In memory ([`HostConfig::keys`]).
    Static(KeySet),
    /// Behind a [`SessionKeyDeriver`].
    Derived(StaticKeyKind),
}

/// What the card told the host in its INITIALIZE UPDATE response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardInfo {
    /// Key diversification data (10 bytes).
    pub key_diversification_data: [u8; 10],
    /// The key version the card used.
    pub key_version: u8,
    /// The `i` the card announced (SCP03; SCP02 responses carry none, so this is the host's).
    pub i: u8,
    /// The sequence counter (SCP02 always, SCP03 with a pseudo-random challenge).
    pub sequence_counter: Option<u32>,
}

#[derive(Debug)]
enum State {
    AwaitingInitializeUpdate { host_challenge: Vec<u8> },
    AwaitingExternalAuthenticate(Channel),
    Open(Channel),
    Closed,
}

/// The host side of one secure channel session.
///
/// ```text
/// HostSession::initialize_update ──IU──▶ card
/// on_initialize_update_response  ◀─resp── card  (card cryptogram checked) ──EA──▶ card
/// on_external_authenticate_response ◀─9000── card
/// wrap(cmd) ──▶ card ──▶ unwrap(resp)  (repeat)
/// ```
///
/// Any failure closes the session for good; open a new one.
#[derive(Debug)]
pub struct HostSession {
    keys: Keys,
    protocol: Protocol,
    level: SecurityLevel,
    security_domain_aid: Option<Vec<u8>>,
    state: State,
    card: Option<CardInfo>,
}

impl HostSession {
    /// Starts a session: checks the configuration and builds INITIALIZE UPDATE
    /// `80 50 KVN 00 Lc host-challenge 00` (GP Card Specification v2.2 §D.4.1, Amendment D
    /// §7.1.1). The host challenge is the caller's randomness: 8 bytes (16 in S16 mode).
    pub fn initialize_update(
        config: HostConfig,
        host_challenge: &[u8],
    ) -> Result<(Self, CommandApdu), ScpError> {
        check_keys(&config.keys, config.protocol)?;
        let version = config.keys.version;
        Self::start(
            Keys::Static(config.keys),
            version,
            config.protocol,
            config.level,
            config.security_domain_aid,
            host_challenge,
        )
    }

    /// As [`HostSession::initialize_update`], for static keys the host does not hold: the
    /// INITIALIZE UPDATE response then goes to
    /// [`HostSession::on_initialize_update_response_derived`] with the deriver that holds them.
    pub fn initialize_update_derived(
        config: DerivedHostConfig,
        host_challenge: &[u8],
    ) -> Result<(Self, CommandApdu), ScpError> {
        check_kind(config.key_kind, config.protocol)?;
        Self::start(
            Keys::Derived(config.key_kind),
            config.key_version,
            config.protocol,
            config.level,
            config.security_domain_aid,
            host_challenge,
        )
    }

    fn start(
        keys: Keys,
        version: u8,
        protocol: Protocol,
        level: SecurityLevel,
        security_domain_aid: Option<Vec<u8>>,
        host_challenge: &[u8],
    ) -> Result<(Self, CommandApdu), ScpError> {
        protocol.check_level(level)?;
        if host_challenge.len() != protocol.challenge_len() {
            return Err(ParameterError::ChallengeLength {
                expected: protocol.challenge_len(),
                actual: host_challenge.len(),
            }
            .into());
        }
        let cmd = CommandApdu::new(0x80, 0x50, version, 0x00)
            .with_data(host_challenge.to_vec())
            .with_le(256);
        let session = Self {
            keys,
            protocol,
            level,
            security_domain_aid,
            state: State::AwaitingInitializeUpdate {
                host_challenge: host_challenge.to_vec(),
            },
            card: None,
        };
        Ok((session, cmd))
    }

    /// Checks the INITIALIZE UPDATE response (layout, SCP, `i`, pseudo-random challenge, card
    /// cryptogram) and builds EXTERNAL AUTHENTICATE with the host cryptogram and C-MAC.
    /// A session opened with [`HostSession::initialize_update_derived`] needs
    /// [`HostSession::on_initialize_update_response_derived`] instead
    /// ([`ParameterError::KeyTypeMismatch`]).
    pub fn on_initialize_update_response(
        &mut self,
        resp: &ResponseApdu,
    ) -> Result<CommandApdu, ScpError> {
        let Keys::Static(keys) = self.keys.clone() else {
            self.state = State::Closed;
            return Err(ParameterError::KeyTypeMismatch.into());
        };
        self.respond(resp, &mut |protocol, step| match step {
            Step::Challenge { seq, aid } => pseudo_random_challenge(&keys, protocol, seq, aid)
                .map(Computed::Challenge)
                .map_err(Failure::Parameter),
            Step::Handshake { host, card, seq } => handshake(&keys, protocol, host, card, seq)
                .map(Computed::Handshake)
                .map_err(Failure::Parameter),
        })
    }

    /// As [`HostSession::on_initialize_update_response`] for a session opened with
    /// [`HostSession::initialize_update_derived`]: the session keys (and the expected
    /// pseudo-random card challenge) come from `deriver` ([`crate::derive`]); a deriver failure
    /// is [`ScpError::Deriver`] and closes the session.
    pub fn on_initialize_update_response_derived(
        &mut self,
        resp: &ResponseApdu,
        deriver: &mut dyn SessionKeyDeriver,
    ) -> Result<CommandApdu, ScpError> {
        let Keys::Derived(kind) = self.keys else {
            self.state = State::Closed;
            return Err(ParameterError::KeyTypeMismatch.into());
        };
        self.respond(resp, &mut |protocol, step| match step {
            Step::Challenge { seq, aid } => {
                pseudo_random_challenge_derived(deriver, protocol, seq, aid)
                    .map(Computed::Challenge)
            }
            Step::Handshake { host, card, seq } => {
                handshake_derived(deriver, kind, protocol, host, card, seq).map(Computed::Handshake)
            }
        })
    }

    fn respond(
        &mut self,
        resp: &ResponseApdu,
        compute: &mut dyn FnMut(Protocol, Step<'_>) -> Result<Computed, Failure>,
    ) -> Result<CommandApdu, ScpError> {
        let State::AwaitingInitializeUpdate { host_challenge } =
            core::mem::replace(&mut self.state, State::Closed)
        else {
            return Err(ScpError::Closed);
        };
        if resp.sw != StatusWord::SUCCESS {
            return Err(ScpError::Card(resp.sw));
        }
        let protocol = self.protocol;
        let parsed = parse_response(protocol, &resp.data).map_err(ScpError::InitializeUpdate)?;
        let refuse = |e| ScpError::InitializeUpdate(e);
        let failed = |f: Failure| match f {
            Failure::Parameter(e) => ScpError::Parameter(e),
            Failure::Deriver => ScpError::Deriver,
        };
        if protocol.pseudo_random_challenge()
            && let Some(aid) = &self.security_domain_aid
        {
            let expected = match compute(
                protocol,
                Step::Challenge {
                    seq: parsed.seq,
                    aid,
                },
            )
            .map_err(failed)?
            {
                Computed::Challenge(c) => c,
                Computed::Handshake(_) => return Err(ScpError::Deriver),
            };
            if !ct_eq(&expected, parsed.card_challenge) {
                return Err(refuse(InitializeUpdateError::PseudoRandomChallenge));
            }
        }
        let Computed::Handshake(hs) = compute(
            protocol,
            Step::Handshake {
                host: &host_challenge,
                card: parsed.card_challenge,
                seq: parsed.seq,
            },
        )
        .map_err(failed)?
        else {
            return Err(ScpError::Deriver);
        };
        if !ct_eq(&hs.card_cryptogram, parsed.card_cryptogram) {
            return Err(refuse(InitializeUpdateError::CardCryptogram));
        }
        self.card = Some(parsed.info);
        let mut channel = Channel::new(protocol, hs.keys);
        let level = self.level;
        let ea = CommandApdu::new(0x80, 0x82, level.to_byte(), 0x00).with_data(hs.host_cryptogram);
        let wrapped = channel.wrap_command(&ea)?;
        self.state = State::AwaitingExternalAuthenticate(channel);
        Ok(wrapped)
    }

    /// Takes the card's answer to EXTERNAL AUTHENTICATE; on `9000` the channel is open.
    pub fn on_external_authenticate_response(
        &mut self,
        resp: &ResponseApdu,
    ) -> Result<(), ScpError> {
        let State::AwaitingExternalAuthenticate(mut channel) =
            core::mem::replace(&mut self.state, State::Closed)
        else {
            return Err(ScpError::Closed);
        };
        if resp.sw != StatusWord::SUCCESS {
            return Err(ScpError::Card(resp.sw));
        }
        channel.open(self.level);
        self.state = State::Open(channel);
        Ok(())
    }

    /// Wraps a command (C-MAC, C-DEC) at the session's level.
    pub fn wrap(&mut self, cmd: &CommandApdu) -> Result<CommandApdu, ScpError> {
        match &mut self.state {
            State::Open(channel) => channel.wrap_command(cmd),
            _ => Err(ScpError::Closed),
        }
    }

    /// Checks and removes R-MAC and R-ENC at the session's level. A failure closes the session.
    pub fn unwrap(&mut self, resp: &ResponseApdu) -> Result<ResponseApdu, ScpError> {
        let State::Open(channel) = &mut self.state else {
            return Err(ScpError::Closed);
        };
        channel.unwrap_response(resp).map_err(|e: ResponseError| {
            self.state = State::Closed;
            ScpError::Response(e)
        })
    }

    /// True once EXTERNAL AUTHENTICATE succeeded and no failure closed the session.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// The card's INITIALIZE UPDATE data, once received.
    pub fn card_info(&self) -> Option<&CardInfo> {
        self.card.as_ref()
    }

    /// The SCP02 session DEK (sensitive data such as PUT KEY is 3DES-ECB encrypted with it,
    /// tsm-gp.md §3.6) while the session is open; SCP03 uses the static K-DEK instead.
    pub fn scp02_session_dek(&self) -> Option<&ykt_crypto::TdesKey> {
        match &self.state {
            State::Open(channel) => channel.scp02_dek(),
            _ => None,
        }
    }

    /// The security level of the session.
    pub fn level(&self) -> SecurityLevel {
        self.level
    }
}

/// A computation of the handshake, on static keys in memory or through a deriver.
enum Step<'a> {
    /// The expected pseudo-random card challenge.
    Challenge { seq: &'a [u8], aid: &'a [u8] },
    /// Session keys and cryptograms.
    Handshake {
        host: &'a [u8],
        card: &'a [u8],
        seq: &'a [u8],
    },
}

/// What a [`Step`] gives.
enum Computed {
    Challenge(Vec<u8>),
    Handshake(Handshake),
}

/// The fields of an INITIALIZE UPDATE response.
struct Parsed<'a> {
    info: CardInfo,
    card_challenge: &'a [u8],
    card_cryptogram: &'a [u8],
    seq: &'a [u8],
}

/// Parses the response data of INITIALIZE UPDATE for `protocol`.
///
/// SCP02: KDD (10) ‖ KVN ‖ `02` ‖ sequence counter (2) ‖ card challenge (6) ‖ cryptogram (8).
/// SCP03: KDD (10) ‖ KVN ‖ `03` ‖ i ‖ card challenge (8/16) ‖ cryptogram (8/16)
/// [‖ sequence counter (3) with a pseudo-random challenge].
fn parse_response(protocol: Protocol, data: &[u8]) -> Result<Parsed<'_>, InitializeUpdateError> {
    let bad_len = InitializeUpdateError::Length(data.len());
    let (kdd, rest) = data.split_at_checked(10).ok_or(bad_len)?;
    let mut key_diversification_data = [0u8; 10];
    key_diversification_data.copy_from_slice(kdd);
    let [key_version, scp_id, rest @ ..] = rest else {
        return Err(bad_len);
    };
    if *scp_id != protocol.scp_id() {
        return Err(InitializeUpdateError::ScpMismatch {
            expected: protocol.scp_id(),
            actual: *scp_id,
        });
    }
    match protocol {
        Protocol::Scp02(o) => {
            if rest.len() != 2 + 6 + 8 {
                return Err(bad_len);
            }
            let (seq, rest) = rest.split_at(2);
            let (card_challenge, card_cryptogram) = rest.split_at(6);
            Ok(Parsed {
                info: CardInfo {
                    key_diversification_data,
                    key_version: *key_version,
                    i: o.i(),
                    sequence_counter: Some(u32::from(u16::from_be_bytes([seq[0], seq[1]]))),
                },
                card_challenge,
                card_cryptogram,
                seq,
            })
        }
        Protocol::Scp03(o) | Protocol::Sm4(o) => {
            let [i, rest @ ..] = rest else {
                return Err(bad_len);
            };
            if *i != o.i() {
                return Err(InitializeUpdateError::IMismatch {
                    expected: o.i(),
                    actual: *i,
                });
            }
            let n = protocol.mac_len();
            let seq_len = if protocol.pseudo_random_challenge() {
                3
            } else {
                0
            };
            if rest.len() != 2 * n + seq_len {
                return Err(bad_len);
            }
            let (card_challenge, rest) = rest.split_at(n);
            let (card_cryptogram, seq) = rest.split_at(n);
            let sequence_counter = match seq {
                [a, b, c] => Some(u32::from_be_bytes([0, *a, *b, *c])),
                _ => None,
            };
            Ok(Parsed {
                info: CardInfo {
                    key_diversification_data,
                    key_version: *key_version,
                    i: *i,
                    sequence_counter,
                },
                card_challenge,
                card_cryptogram,
                seq,
            })
        }
    }
}
