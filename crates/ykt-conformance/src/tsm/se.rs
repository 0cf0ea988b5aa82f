//! The SE the harness plays: a blank simulated SE from card production
//! (`ykt_tsm::testing::blank_se`, keyed by the PUBLIC test hierarchy), and what the harness reads
//! on it itself: SELECT, EF15, GET BALANCE, and GET STATUS through the ISD with the ISD keys it
//! derives from the public test master (tsm-gp.md §6), as the SE issuer could.

use ykt_card::{Card, SeededRandom};
use ykt_gp_host::{Aid, GpSession, Registry, SessionConfig};
use ykt_tsm::proposals;
use ykt_tsm::testing::{self, SeOptions};

use crate::transcript::hex;
use crate::verdict::Stop;

/// The GP issuer security domain's AID.
const ISD_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

/// The harness's transmit function to the simulated SE.
pub(crate) trait Transmit: FnMut(&[u8]) -> Result<Vec<u8>, String> {}

impl<T: FnMut(&[u8]) -> Result<Vec<u8>, String>> Transmit for T {}

/// A blank simulated SE and its identity.
pub struct SimSe {
    card: Card,
    seid: [u8; 10],
    /// Host challenges of the harness's own secure channels.
    challenge: u64,
}

impl std::fmt::Debug for SimSe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSe").finish_non_exhaustive()
    }
}

/// An APDU's status word.
pub(crate) fn sw(response: &[u8]) -> u16 {
    match response {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

impl SimSe {
    /// The blank SE with `serial` (8 bytes), its randomness seeded with `seed`.
    pub(crate) fn blank(serial: &[u8], seed: u64) -> Result<SimSe, Stop> {
        let options = SeOptions::wide_serial(serial);
        let card = testing::blank_se(&options, Box::new(SeededRandom::new(seed)))
            .map_err(|e| Stop::Inconclusive(format!("building the blank SE: {e}")))?;
        let seid = testing::seid_of_serial(serial)
            .map_err(|e| Stop::Inconclusive(format!("the blank SE's SEID: {e}")))?
            .0;
        Ok(SimSe {
            card,
            seid,
            challenge: seed,
        })
    }

    /// The SEID.
    pub(crate) fn seid(&self) -> [u8; 10] {
        self.seid
    }

    /// The SEID, to mask in transcripts as a card number is.
    pub(crate) fn seid_padded(&self) -> [u8; 10] {
        self.seid
    }

    /// The SEID in hex.
    pub(crate) fn seid_hex(&self) -> String {
        hex(&self.seid)
    }

    /// Sends one command.
    pub(crate) fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, Stop> {
        self.card
            .transmit(capdu)
            .map_err(|e| Stop::Inconclusive(format!("the simulated SE: {e}")))
    }

    /// Cuts the power and powers the SE again (a phone restarted after a cut link).
    pub(crate) fn reset(&mut self) {
        self.card.power_off();
        self.card.power_on();
    }

    /// SELECT by AID; the response.
    pub(crate) fn select(&mut self, aid: &[u8]) -> Result<Vec<u8>, Stop> {
        let mut c = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
        c.extend_from_slice(aid);
        c.push(0x00);
        self.transmit(&c)
    }

    /// SELECT of the purse at `aid`, then EF15 (READ BINARY by SFI 15, 30 bytes) and GET
    /// BALANCE (e-purse.md §2, §4.2): the card number (EF15 bytes 10..20) and the balance.
    /// `None` when the purse does not answer SELECT with `9000`.
    pub(crate) fn purse(&mut self, aid: &[u8]) -> Result<Option<([u8; 10], u32)>, Stop> {
        if sw(&self.select(aid)?) != 0x9000 {
            return Ok(None);
        }
        let ef15 = self.transmit(&[0x00, 0xB0, 0x95, 0x00, 0x1E])?;
        let balance = self.transmit(&[0x80, 0x5C, 0x00, 0x02, 0x04])?;
        if sw(&ef15) != 0x9000 || ef15.len() < 22 || sw(&balance) != 0x9000 || balance.len() != 6 {
            return Err(Stop::Fail(format!(
                "the purse answers SELECT but not EF15 ({:04X}) or GET BALANCE ({:04X})",
                sw(&ef15),
                sw(&balance)
            )));
        }
        let mut asn = [0u8; 10];
        asn.copy_from_slice(&ef15[10..20]);
        let b = u32::from_be_bytes([balance[0], balance[1], balance[2], balance[3]]);
        Ok(Some((asn, b)))
    }

    /// GET STATUS through the ISD: a secure channel opened with the ISD keys derived from the
    /// PUBLIC test master for this SE (tsm-gp.md §6, `proposals::ISD_DIVERSIFICATION`).
    pub(crate) fn registry(&mut self) -> Result<Registry, Stop> {
        let mut session = self.open_channel(&ISD_AID, None)?;
        session
            .registry()
            .map_err(|e| Stop::Inconclusive(format!("GET STATUS through the ISD: {e}")))
    }

    /// Opens a secure channel to `sd` with the ISD keys of this SE (key version `version`,
    /// the ISD master's when `None`).
    pub(crate) fn open_channel(
        &mut self,
        sd: &[u8],
        version: Option<u8>,
    ) -> Result<GpSession<impl Transmit + '_>, Stop> {
        let mut keys = testing::isd_master()
            .map_err(|e| Stop::Inconclusive(format!("the test ISD master: {e}")))?;
        if let Some(v) = version {
            keys.version = v;
        }
        let protocol = proposals::protocol()
            .map_err(|e| Stop::Inconclusive(format!("the TSM's channel protocol: {e}")))?;
        let config = SessionConfig {
            security_domain: Aid::new(sd).map_err(|e| Stop::Inconclusive(format!("AID: {e}")))?,
            keys,
            diversification: Some(proposals::ISD_DIVERSIFICATION),
            protocol,
            level: proposals::LEVEL,
        };
        self.challenge = self
            .challenge
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let challenge = self.challenge.to_be_bytes();
        let card = &mut self.card;
        let transmit = move |c: &[u8]| card.transmit(c).map_err(|e| e.to_string());
        GpSession::open(transmit, config, &challenge).map_err(|e| {
            Stop::Inconclusive(format!("opening a secure channel to {}: {e}", hex(sd)))
        })
    }
}

/// The entries of `registry` as `AID:life cycle` strings, sorted (for comparing two SEs).
pub(crate) fn registry_view(registry: &Registry) -> Vec<String> {
    let mut v: Vec<String> = registry
        .entries()
        .map(|e| format!("{:?} {}:{:02X}", e.kind, hex(&e.aid), e.life_cycle))
        .collect();
    v.sort();
    v
}
