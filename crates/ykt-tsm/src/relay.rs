//! The APDU relay of tsm-gp.md §7: the TSM never reaches the SE; it hands the wallet a script
//! `{session_id, seq, capdus[], expect[], final}` and gets `{session_id, seq, rapdus[]}` back.
//!
//! The wallet's part is [`relay_on_card`]: send the commands in order, fetch `61xx` data with
//! GET RESPONSE and resend on `6Cxx` (transport chores), and stop after the first response
//! whose status word is not the expected one.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::hex::Hex;

/// What the TSM expects of one command's response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expect {
    /// The status word (2 bytes); `None`: any answer is the TSM's to judge (state queries).
    pub sw: Option<Hex>,
}

impl Expect {
    /// `9000`.
    pub fn success() -> Self {
        Self {
            sw: Some(Hex(alloc::vec![0x90, 0x00])),
        }
    }

    /// Any status word.
    pub fn any() -> Self {
        Self { sw: None }
    }

    /// True when `sw` meets the expectation.
    pub fn accepts(&self, sw: [u8; 2]) -> bool {
        self.sw.as_ref().is_none_or(|e| e.as_bytes() == sw)
    }
}

/// TSM → wallet: commands to relay to the SE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayRequest {
    /// The flow's session.
    pub session_id: String,
    /// The message number in the session, from 1.
    pub seq: u32,
    /// The command APDUs, in order.
    pub capdus: Vec<Hex>,
    /// One expectation per command.
    pub expect: Vec<Expect>,
    /// True when the TSM sends nothing after this message (the flow ends with its answer).
    #[serde(rename = "final")]
    pub last: bool,
}

/// Wallet → TSM: the SE's answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayResponse {
    /// The flow's session.
    pub session_id: String,
    /// The message number answered.
    pub seq: u32,
    /// The response APDUs (data ‖ SW1 SW2), as many as were sent.
    pub rapdus: Vec<Hex>,
}

/// The wallet's side of one relay message over `transmit` (one command in, one response out):
/// the commands in order, `61xx` completed with GET RESPONSE, `6Cxx` resent with the right Le,
/// stopping after the first response that `expect` does not accept.
pub fn relay_on_card<T>(request: &RelayRequest, mut transmit: T) -> RelayResponse
where
    T: FnMut(&[u8]) -> Vec<u8>,
{
    let mut rapdus = Vec::with_capacity(request.capdus.len());
    for (i, capdu) in request.capdus.iter().enumerate() {
        let response = exchange(&mut transmit, capdu.as_bytes());
        let sw = sw_of(&response);
        rapdus.push(Hex(response));
        if !request.expect.get(i).is_none_or(|e| e.accepts(sw)) {
            break;
        }
    }
    RelayResponse {
        session_id: request.session_id.clone(),
        seq: request.seq,
        rapdus,
    }
}

fn sw_of(response: &[u8]) -> [u8; 2] {
    match response {
        [.., a, b] => [*a, *b],
        _ => [0x6F, 0x00],
    }
}

fn exchange<T: FnMut(&[u8]) -> Vec<u8>>(transmit: &mut T, capdu: &[u8]) -> Vec<u8> {
    let mut response = transmit(capdu);
    if let [.., 0x6C, le] = response[..] {
        let mut again = capdu.to_vec();
        if let Some(last) = again.last_mut() {
            *last = le;
        }
        response = transmit(&again);
    }
    let mut data = Vec::new();
    for _ in 0..256 {
        match response[..] {
            [ref body @ .., 0x61, le] => {
                data.extend_from_slice(body);
                let cla = capdu.first().map_or(0, |c| c & 0x03);
                response = transmit(&[cla, 0xC0, 0x00, 0x00, le]);
            }
            _ => break,
        }
    }
    data.extend_from_slice(&response);
    data
}
