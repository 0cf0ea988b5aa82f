//! Transaction records of accepted codes and their upload in signed batches (qr-code.md §5,
//! "recommended minimum (ours)").
//!
//! A record keeps the full raw code, so that clearing can verify signatures A, B and C again.
//! A batch is JSON lines, one record a line in sequence order, closed by a line with the
//! terminal's SM2 signature over every byte before it. Clearing checks the signature and the
//! sequence (gaps), and [`flag_replays`] finds one code accepted by two terminals, which offline
//! terminals cannot see themselves.
//!
//! Storage that survives power loss is the terminal's job (an append-only journal, as in
//! `ykt-terminal`); this module only encodes and checks.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use rand_core::CryptoRng;
use ykt_crypto::{DEFAULT_SM2_ID, Sm2PrivateKey, Sm2PublicKey, Sm2Signature};

use crate::verify::Accepted;

/// The SM2 user ID of the terminal's batch signature.
///
/// L (ours, §5: "a terminal SM2 signature"; no public source gives its ID): the default ID.
pub const BATCH_SIGNATURE_ID: &[u8] = DEFAULT_SM2_ID;

/// The prefix of the closing line of a batch; the signature's hex and `"}` follow.
const SIGNATURE_PREFIX: &str = "{\"batch_signature\":\"";

/// What the rider did at the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// A single (flat-fare) tap, as on a bus.
    Single,
    /// Metro entry.
    Entry,
    /// Metro exit.
    Exit,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Entry => "entry",
            Self::Exit => "exit",
        }
    }
}

/// The parameter versions in force when the code was accepted (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParameterVersions {
    /// Root CA keys (4026).
    pub root_keys: u32,
    /// Issuer whitelist (4020).
    pub whitelist: u32,
    /// Account blacklist.
    pub blacklist: u32,
}

/// One accepted code at one terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The terminal's sequence number, consecutive across batches.
    pub sequence: u32,
    /// The terminal's id.
    pub terminal_id: [u8; 6],
    /// The terminal's UTC time, Unix seconds.
    pub time: u64,
    /// Entry, exit or single.
    pub mode: Mode,
    /// The fare charged, in fen.
    pub fare: u32,
    /// The local ticket type from the whitelist, if any.
    pub ticket_type: Option<u8>,
    /// Field 5, the user account.
    pub user_account: [u8; 10],
    /// Field 16, the generation time.
    pub generation_time: u32,
    /// The parameter versions in force.
    pub parameters: ParameterVersions,
    /// The full raw code.
    pub code: Vec<u8>,
}

impl Record {
    /// The record of an accepted code.
    pub fn new(
        accepted: &Accepted,
        sequence: u32,
        terminal_id: [u8; 6],
        time: u64,
        mode: Mode,
        parameters: ParameterVersions,
    ) -> Self {
        let body = &accepted.code.authorisation.body;
        Self {
            sequence,
            terminal_id,
            time,
            mode,
            fare: accepted.fare,
            ticket_type: accepted.ticket_type,
            user_account: body.user_account,
            generation_time: accepted.code.generation_time,
            parameters,
            code: accepted.code.encode(),
        }
    }

    /// The record as one JSON line (no newline). Keys are fixed and in this order; byte strings
    /// are lower-case hex.
    pub fn to_json_line(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{{\"seq\":{},\"terminal\":\"{}\",\"time\":{},\"mode\":\"{}\",\"fare\":{},\"ticket_type\":",
            self.sequence,
            Hex(&self.terminal_id),
            self.time,
            self.mode.name(),
            self.fare
        );
        let _ = match self.ticket_type {
            Some(t) => write!(out, "{t}"),
            None => write!(out, "null"),
        };
        let _ = write!(
            out,
            ",\"account\":\"{}\",\"generated\":{},\"params\":{{\"4026\":{},\"4020\":{},\"blacklist\":{}}},\"code\":\"{}\"}}",
            Hex(&self.user_account),
            self.generation_time,
            self.parameters.root_keys,
            self.parameters.whitelist,
            self.parameters.blacklist,
            Hex(&self.code)
        );
        out
    }
}

struct Hex<'a>(&'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Why an uploaded batch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The batch does not end with a signature line.
    #[error("batch has no signature line")]
    NoSignature,
    /// The signature line is not 64 bytes of hex.
    #[error("batch signature line is malformed")]
    MalformedSignature,
    /// The signature does not verify with the terminal's key.
    #[error("batch signature does not verify")]
    SignatureInvalid,
    /// A record line does not start with `{"seq":N,`.
    #[error("record line {line} has no sequence number")]
    NoSequence {
        /// The line, from 0.
        line: usize,
    },
    /// A sequence number is not the one after the previous record's (a gap or a repeat).
    #[error("sequence {found} where {expected} was expected")]
    SequenceGap {
        /// The number expected.
        expected: u32,
        /// The number found.
        found: u32,
    },
}

/// The upload of `records` (in sequence order) as JSON lines closed by the terminal's
/// signature line.
pub fn seal<R: CryptoRng>(
    records: &[Record],
    terminal_key: &Sm2PrivateKey,
    rng: &mut R,
) -> Result<Vec<u8>, ykt_crypto::Error> {
    let mut out = String::new();
    for r in records {
        out.push_str(&r.to_json_line());
        out.push('\n');
    }
    let sig = terminal_key.sign_with_rng(rng, BATCH_SIGNATURE_ID, out.as_bytes())?;
    let _ = writeln!(out, "{SIGNATURE_PREFIX}{}\"}}", Hex(&sig.to_bytes()));
    Ok(out.into_bytes())
}

/// Checks an uploaded batch: the terminal's signature, then consecutive sequence numbers from
/// `first_sequence`. Gives the number of records.
pub fn open(
    batch: &[u8],
    terminal_key: &Sm2PublicKey,
    first_sequence: u32,
) -> Result<usize, BatchError> {
    let body_len = match batch.strip_suffix(b"\n") {
        Some(rest) => rest.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1),
        None => return Err(BatchError::NoSignature),
    };
    let (body, last) = batch.split_at(body_len);
    let last = last.strip_suffix(b"\n").unwrap_or(last);
    let hex = last
        .strip_prefix(SIGNATURE_PREFIX.as_bytes())
        .and_then(|rest| rest.strip_suffix(b"\"}"))
        .ok_or(BatchError::NoSignature)?;
    let sig = unhex64(hex).ok_or(BatchError::MalformedSignature)?;
    let sig = Sm2Signature::from_bytes(&sig).map_err(|_| BatchError::MalformedSignature)?;
    terminal_key
        .verify(BATCH_SIGNATURE_ID, body, &sig)
        .map_err(|_| BatchError::SignatureInvalid)?;
    let mut expected = first_sequence;
    let mut count = 0;
    for (line, text) in body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let found = sequence_of(text).ok_or(BatchError::NoSequence { line })?;
        if found != expected {
            return Err(BatchError::SequenceGap { expected, found });
        }
        expected = expected.wrapping_add(1);
        count += 1;
    }
    Ok(count)
}

fn sequence_of(line: &[u8]) -> Option<u32> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let end = rest.iter().position(|b| *b == b',')?;
    let digits = &rest[..end];
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

fn unhex64(hex: &[u8]) -> Option<[u8; 64]> {
    if hex.len() != 128 {
        return None;
    }
    let mut out = [0u8; 64];
    for (i, pair) in hex.chunks(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// The records (as indices into `records`) that repeat a code already seen at another record,
/// keyed like the replay cache on (user account, generation time): a code replayed on a second
/// offline terminal is accepted there and flagged here, at clearing.
pub fn flag_replays(records: &[Record]) -> Vec<(usize, usize)> {
    let mut first: BTreeMap<([u8; 10], u32), usize> = BTreeMap::new();
    let mut flagged = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match first.get(&(r.user_account, r.generation_time)) {
            Some(&j) => flagged.push((j, i)),
            None => {
                first.insert((r.user_account, r.generation_time), i);
            }
        }
    }
    flagged
}
