//! The open secure channel, shared by both roles: the host wraps commands and unwraps
//! responses, the card unwraps commands and wraps responses, with the same MAC and cipher code.
//!
//! SCP03 and the SM4 channel (GP Amendment D §6.2.4–§6.2.7):
//! * C-MAC = CMAC(S-MAC, chaining value ‖ CLA|04 INS P1 P2 Lc' ‖ data'), truncated to 8 bytes
//!   in S8 mode; the full CMAC becomes the next chaining value (16 × 00 before EXTERNAL
//!   AUTHENTICATE). data' is the encrypted data under C-DEC.
//! * C-DEC: CBC under S-ENC with ICV = E(S-ENC, encryption counter as 16 bytes big-endian),
//!   data padded `80 00..`; the counter counts every command after EXTERNAL AUTHENTICATE from 1,
//!   with or without data; an empty data field is not encrypted.
//! * R-MAC = CMAC(S-RMAC, chaining value ‖ data' ‖ SW1 SW2) truncated likewise, on `9000`,
//!   `62xx` and `63xx` only; the chaining value is that of the command (the R-MAC does not
//!   chain).
//! * R-ENC: CBC under S-ENC with ICV = E(S-ENC, `80` ‖ the command's counter in 15 bytes).
//!
//! SCP02 (GP Card Specification v2.2 Appendix E.4):
//! * C-MAC = ISO/IEC 9797-1 MAC algorithm 3 (padding method 2) under the C-MAC session key
//!   over CLA|04 INS P1 P2 (Lc + 8) ‖ plain data, ICV zero for EXTERNAL AUTHENTICATE and the
//!   previous C-MAC afterwards, DES-encrypted with the key's first half when `i` has bit `10`.
//! * C-DEC: 3DES-CBC under S-ENC, ICV zero, over the plain data padded `80 00..`, after the MAC.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_crypto::{
    BlockCipherKey, DesKey, TdesKey, ct_eq, pad_iso9797_m2, retail_mac, unpad_iso9797_m2,
};

use crate::cipher::BlockKey;
use crate::error::{ResponseError, ScpError};
use crate::params::{Protocol, SecurityLevel};

/// Session keys of an open channel.
#[derive(Clone, Debug)]
pub(crate) enum SessionKeys {
    /// SCP02 session keys.
    Scp02 {
        /// S-ENC.
        enc: TdesKey,
        /// C-MAC session key.
        cmac: TdesKey,
        /// Session DEK.
        dek: TdesKey,
    },
    /// SCP03 (AES) or SM4-channel session keys.
    Scp03 {
        /// S-ENC.
        enc: BlockKey,
        /// S-MAC.
        mac: BlockKey,
        /// S-RMAC.
        rmac: BlockKey,
    },
}

/// The state both ends of a channel keep in step.
#[derive(Clone, Debug)]
pub(crate) struct Channel {
    pub(crate) protocol: Protocol,
    pub(crate) level: SecurityLevel,
    pub(crate) keys: SessionKeys,
    /// SCP03: the MAC chaining value. SCP02: the last C-MAC in the first 8 bytes.
    chain: [u8; 16],
    /// SCP02: no C-MAC yet, so the next ICV is zero.
    first: bool,
    /// SCP03: the encryption counter of the last command.
    counter: u128,
}

/// Precise card-side failures of [`Channel::unwrap_command`].
pub(crate) const MAC_FAILURE: StatusWord = StatusWord::SM_DATA_OBJECTS_INCORRECT;

/// True when a response status word carries an R-MAC: `9000`, `62xx`, `63xx`.
fn carries_rmac(sw: StatusWord) -> bool {
    sw == StatusWord::SUCCESS || sw.is_warning()
}

/// The Lc field as it enters a MAC: one byte, or `00 hi lo` in extended form.
fn push_lc(out: &mut Vec<u8>, n: usize, extended: bool) {
    if extended {
        out.push(0x00);
        out.extend_from_slice(&((n & 0xFFFF) as u16).to_be_bytes());
    } else {
        out.push((n & 0xFF) as u8);
    }
}

/// Whether a command with `n` data bytes and expected length `le` uses extended lengths
/// (the rule `CommandApdu::to_bytes` applies).
fn extended(n: usize, le: Option<usize>) -> bool {
    n > 255 || le.is_some_and(|l| l > 256)
}

/// The 16-byte counter block of an ICV: big-endian counter, first byte `80` for responses.
fn counter_block(counter: u128, response: bool) -> [u8; 16] {
    let mut b = counter.to_be_bytes();
    if response {
        b[0] = 0x80;
    }
    b
}

fn first_half(key: &TdesKey) -> DesKey {
    let mut half = [0u8; 8];
    half.copy_from_slice(&key.expose()[..8]);
    DesKey::from_bytes(half)
}

/// SCP02: the ICV of the next C-MAC (zero before the first, then the last C-MAC, encrypted
/// with the C-MAC key's first half when `i` asks for it).
fn scp02_icv(protocol: Protocol, first: bool, last: &[u8; 16], cmac: &TdesKey) -> [u8; 8] {
    let mut icv = [0u8; 8];
    if !first {
        icv.copy_from_slice(&last[..8]);
        if let Protocol::Scp02(o) = protocol
            && o.icv_encryption()
        {
            icv = first_half(cmac).encrypt_block(&icv);
        }
    }
    icv
}

/// SCP02 C-MAC over the modified header and the plain data; records it as the next ICV.
fn scp02_mac(
    protocol: Protocol,
    first: &mut bool,
    chain: &mut [u8; 16],
    cmac: &TdesKey,
    header: [u8; 4],
    plain: &[u8],
) -> [u8; 8] {
    let icv = scp02_icv(protocol, *first, chain, cmac);
    let mut input = Vec::with_capacity(5 + plain.len());
    input.extend_from_slice(&header);
    push_lc(&mut input, plain.len() + 8, false);
    input.extend_from_slice(plain);
    // The C-MAC key is a 2-key key by derivation, so the retail MAC cannot refuse it.
    let mac = retail_mac(cmac, &icv, &input).unwrap_or([0u8; 8]);
    chain[..8].copy_from_slice(&mac);
    *first = false;
    mac
}

/// SCP03 C-MAC: the full CMAC over chaining value ‖ header ‖ Lc ‖ body; it becomes the chaining
/// value.
fn scp03_mac(
    chain: &mut [u8; 16],
    mac: &BlockKey,
    header: [u8; 4],
    body: &[u8],
    lc: usize,
    ext: bool,
) -> [u8; 16] {
    let mut input = Vec::with_capacity(16 + 7 + body.len());
    input.extend_from_slice(chain);
    input.extend_from_slice(&header);
    push_lc(&mut input, lc, ext);
    input.extend_from_slice(body);
    let full = mac.cmac(&input);
    *chain = full;
    full
}

impl Channel {
    /// A channel right after the handshake: level C-MAC for EXTERNAL AUTHENTICATE.
    pub(crate) fn new(protocol: Protocol, keys: SessionKeys) -> Self {
        Self {
            protocol,
            level: SecurityLevel::C_MAC,
            keys,
            chain: [0u8; 16],
            first: true,
            counter: 0,
        }
    }

    /// After EXTERNAL AUTHENTICATE: the session's level, the encryption counter from 0.
    pub(crate) fn open(&mut self, level: SecurityLevel) {
        self.level = level;
        self.counter = 0;
    }

    /// The SCP02 session DEK (PUT KEY and sensitive data), if this is SCP02.
    pub(crate) fn scp02_dek(&self) -> Option<&TdesKey> {
        match &self.keys {
            SessionKeys::Scp02 { dek, .. } => Some(dek),
            SessionKeys::Scp03 { .. } => None,
        }
    }

    /// Host: wraps a command at the session's level.
    pub(crate) fn wrap_command(&mut self, cmd: &CommandApdu) -> Result<CommandApdu, ScpError> {
        if !self.level.c_mac() {
            return Ok(cmd.clone());
        }
        let mac_len = self.protocol.mac_len();
        let header = [cmd.cla | 0x04, cmd.ins, cmd.p1, cmd.p2];
        let Self {
            protocol,
            level,
            keys,
            chain,
            first,
            counter,
        } = self;
        let (protocol, level) = (*protocol, *level);
        let mut out = CommandApdu::new(header[0], cmd.ins, cmd.p1, cmd.p2);
        out.le = cmd.le;
        match keys {
            SessionKeys::Scp02 { enc, cmac, .. } => {
                let padded_len = if level.c_dec() && !cmd.data.is_empty() {
                    (cmd.data.len() / 8 + 1) * 8
                } else {
                    cmd.data.len()
                };
                if padded_len + mac_len > 255 || cmd.data.len() + mac_len > 255 {
                    return Err(ScpError::CommandTooLong(cmd.data.len()));
                }
                let mac = scp02_mac(protocol, first, chain, cmac, header, &cmd.data);
                out.data = if level.c_dec() && !cmd.data.is_empty() {
                    let mut padded = pad_iso9797_m2(&cmd.data, 8);
                    let _ = enc.cbc_encrypt_in_place(&[0u8; 8], &mut padded);
                    padded
                } else {
                    cmd.data.clone()
                };
                out.data.extend_from_slice(&mac);
            }
            SessionKeys::Scp03 { enc, mac, .. } => {
                let padded_len = if level.c_dec() && !cmd.data.is_empty() {
                    (cmd.data.len() / 16 + 1) * 16
                } else {
                    cmd.data.len()
                };
                if padded_len + mac_len > ykt_apdu::MAX_DATA_LEN {
                    return Err(ScpError::CommandTooLong(cmd.data.len()));
                }
                *counter += 1;
                out.data = if level.c_dec() && !cmd.data.is_empty() {
                    let mut padded = pad_iso9797_m2(&cmd.data, 16);
                    let icv = enc.encrypt_block(&counter_block(*counter, false));
                    enc.cbc_encrypt(&icv, &mut padded);
                    padded
                } else {
                    cmd.data.clone()
                };
                let lc = out.data.len() + mac_len;
                let full = scp03_mac(chain, mac, header, &out.data, lc, extended(lc, out.le));
                out.data.extend_from_slice(&full[..mac_len]);
            }
        }
        Ok(out)
    }

    /// Card: checks and unwraps a command; `Err` means the channel must be closed.
    ///
    /// The caller has already checked that the command claims secure messaging (CLA bit `04`).
    pub(crate) fn unwrap_command(&mut self, cmd: &CommandApdu) -> Result<CommandApdu, StatusWord> {
        let mac_len = self.protocol.mac_len();
        let Some(body_len) = cmd.data.len().checked_sub(mac_len) else {
            return Err(MAC_FAILURE);
        };
        let (body, received) = cmd.data.split_at(body_len);
        let header = [cmd.cla, cmd.ins, cmd.p1, cmd.p2];
        let Self {
            protocol,
            level,
            keys,
            chain,
            first,
            counter,
        } = self;
        let (protocol, level) = (*protocol, *level);
        let mut out = CommandApdu::new(cmd.cla & !0x04, cmd.ins, cmd.p1, cmd.p2);
        out.le = cmd.le;
        match keys {
            SessionKeys::Scp02 { enc, cmac, .. } => {
                let plain = if level.c_dec() && !body.is_empty() {
                    let mut buf = body.to_vec();
                    if enc.cbc_decrypt_in_place(&[0u8; 8], &mut buf).is_err() {
                        return Err(MAC_FAILURE);
                    }
                    unpad_iso9797_m2(&buf).map_err(|_| MAC_FAILURE)?.to_vec()
                } else {
                    body.to_vec()
                };
                if plain.len() + mac_len > 255 {
                    return Err(StatusWord::WRONG_LENGTH);
                }
                let mac = scp02_mac(protocol, first, chain, cmac, header, &plain);
                if !ct_eq(&mac, received) {
                    return Err(MAC_FAILURE);
                }
                out.data = plain;
            }
            SessionKeys::Scp03 { enc, mac, .. } => {
                let full = scp03_mac(chain, mac, header, body, cmd.data.len(), cmd.is_extended());
                if !ct_eq(&full[..mac_len], received) {
                    return Err(MAC_FAILURE);
                }
                *counter += 1;
                out.data = if level.c_dec() && !body.is_empty() {
                    // An empty data field sent as one encrypted padding block (a quirk of some
                    // hosts) decrypts to an empty field here, so both forms are accepted.
                    let mut buf = body.to_vec();
                    let icv = enc.encrypt_block(&counter_block(*counter, false));
                    if !enc.cbc_decrypt(&icv, &mut buf) {
                        return Err(MAC_FAILURE);
                    }
                    unpad_iso9797_m2(&buf).map_err(|_| MAC_FAILURE)?.to_vec()
                } else {
                    body.to_vec()
                };
            }
        }
        Ok(out)
    }

    /// Card: adds R-ENC and R-MAC to a response, as the level asks.
    pub(crate) fn wrap_response(&mut self, resp: &ResponseApdu) -> ResponseApdu {
        let SessionKeys::Scp03 { enc, rmac, .. } = &self.keys else {
            return resp.clone();
        };
        if !self.level.r_mac() || !carries_rmac(resp.sw) {
            return resp.clone();
        }
        let mut data = if self.level.r_enc() && !resp.data.is_empty() {
            let mut padded = pad_iso9797_m2(&resp.data, 16);
            let icv = enc.encrypt_block(&counter_block(self.counter, true));
            enc.cbc_encrypt(&icv, &mut padded);
            padded
        } else {
            resp.data.clone()
        };
        let full = rmac.cmac(&self.rmac_input(&data, resp.sw));
        data.extend_from_slice(&full[..self.protocol.mac_len()]);
        ResponseApdu::new(data, resp.sw)
    }

    fn rmac_input(&self, data: &[u8], sw: StatusWord) -> Vec<u8> {
        let mut input = Vec::with_capacity(16 + data.len() + 2);
        input.extend_from_slice(&self.chain);
        input.extend_from_slice(data);
        input.extend_from_slice(&sw.to_bytes());
        input
    }

    /// Host: checks the R-MAC and removes R-ENC, as the level asks.
    pub(crate) fn unwrap_response(
        &mut self,
        resp: &ResponseApdu,
    ) -> Result<ResponseApdu, ResponseError> {
        let SessionKeys::Scp03 { enc, rmac, .. } = &self.keys else {
            return Ok(resp.clone());
        };
        if !self.level.r_mac() || !carries_rmac(resp.sw) {
            return Ok(resp.clone());
        }
        let mac_len = self.protocol.mac_len();
        let body_len = resp
            .data
            .len()
            .checked_sub(mac_len)
            .ok_or(ResponseError::MissingMac)?;
        let (body, received) = resp.data.split_at(body_len);
        let full = rmac.cmac(&self.rmac_input(body, resp.sw));
        if !ct_eq(&full[..mac_len], received) {
            return Err(ResponseError::Mac);
        }
        let data = if self.level.r_enc() && !body.is_empty() {
            let mut buf = body.to_vec();
            let icv = enc.encrypt_block(&counter_block(self.counter, true));
            if !enc.cbc_decrypt(&icv, &mut buf) {
                return Err(ResponseError::Decryption);
            }
            unpad_iso9797_m2(&buf)
                .map_err(|_| ResponseError::Decryption)?
                .to_vec()
        } else {
            body.to_vec()
        };
        Ok(ResponseApdu::new(data, resp.sw))
    }
}
