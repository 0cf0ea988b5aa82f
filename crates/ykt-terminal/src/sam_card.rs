//! The purchase SAM role played by a PSAM card (e-purse.md §6), over a caller-supplied transmit
//! function; no I/O of its own.
//!
//! ```text
//!   CardSam::open ──► SELECT MF ──► READ BINARY EF16 (00 B0 96 00 06): terminal id
//!                 ──► SELECT A000000632 4D4F (partial name) ──► READ BINARY EF17 (00 B0 97 00 19)
//!   init_purchase          ──► 80 70 00 00 1C|24 <data> 08   ◄── TTSN ‖ MAC1
//!   verify_mac2            ──► 80 72 00 00 04 <MAC2>          ◄── 9000 | 9302
//!   secure_messaging_mac   ──► 80 1A 36 <version> 08|10 <factors>
//!                          ──► 80 FA 05 00 <Lc> <challenge ‖ 00000000> <padded command>  ◄── MAC
//! ```

use alloc::vec::Vec;
use core::fmt;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_crypto::pad_iso9797_m2;
use ykt_crypto::purse::PurseAlgorithm;

use super::{PurchaseSam, SamMac1, SamPurchaseRequest};
use crate::SamError;
use crate::card_data::CardIdentity;

/// The partial DF name a JT/T terminal selects the PSAM application with: the RID `A000000632`
/// and `4D 4F` ("MO"), the 7 bytes ProjectAfcApp sends (e-purse.md §6, M).
pub const PSAM_AID_PREFIX: [u8; 7] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x4D, 0x4F];

/// P1 of `80 1A` naming the maintenance (DAMK) master key.
///
/// L (e-purse.md §5.5 names only `44`, the TAC key): `36`, the FMCOS line-protection key type
/// (§3.1), as the PSAM applet defines it (`ykt_purse::psam::KEY_USAGE_CODES`).
pub const MAINTENANCE_KEY_USAGE: u8 = 0x36;

/// Why [`CardSam::open`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError<E> {
    /// The transport to the PSAM failed.
    Transport(E),
    /// The PSAM answered, but not as a PSAM does ([`SamError::Refused`],
    /// [`SamError::MalformedResponse`]).
    Sam(SamError),
}

impl<E: fmt::Display> fmt::Display for OpenError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "transport to the PSAM failed: {e}"),
            Self::Sam(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for OpenError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            Self::Sam(e) => Some(e),
        }
    }
}

/// The maintenance key of the PSAM that secure messaging uses.
#[derive(Debug, Clone, Copy)]
struct MaintenanceKey {
    version: u8,
    algorithm: PurseAlgorithm,
}

/// A PSAM card as the purchase SAM: every call becomes APDUs through `transmit`.
///
/// "Transport failed" and "PSAM said no" stay apart: a failed `transmit` gives
/// [`SamError::Transport`] and the transport's error waits in
/// [`take_transport_error`](Self::take_transport_error); a PSAM status word gives the
/// [`SamError`] it means (`9403` → [`SamError::UnknownKey`], `9302` → [`SamError::Mac2Invalid`],
/// `6985` → [`SamError::NoPurchaseInProgress`], `9402` → [`SamError::SerialExhausted`]) or
/// [`SamError::Refused`] with the status word.
pub struct CardSam<T, E> {
    transmit: T,
    terminal_id: [u8; 6],
    ef17: [u8; 25],
    two_level: bool,
    maintenance: Option<MaintenanceKey>,
    transport_error: Option<E>,
}

impl<T, E> fmt::Debug for CardSam<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardSam")
            .field("terminal_id", &self.terminal_id)
            .field("purchase_key_index", &self.ef17[0])
            .field("two_level", &self.two_level)
            .finish_non_exhaustive()
    }
}

/// Sends `command`; the response data on `9000`, else the refusal.
fn exchange<T, E>(
    transmit: &mut T,
    name: &'static str,
    command: &CommandApdu,
) -> Result<Vec<u8>, Step<E>>
where
    T: FnMut(&CommandApdu) -> Result<ResponseApdu, E>,
{
    let response = transmit(command).map_err(Step::Transport)?;
    if response.sw == StatusWord::SUCCESS {
        Ok(response.data)
    } else {
        Err(Step::Refused(name, response.sw))
    }
}

/// How one exchange failed.
enum Step<E> {
    Transport(E),
    Refused(&'static str, StatusWord),
}

/// `N` bytes of response data, or [`SamError::MalformedResponse`].
fn exact<const N: usize>(name: &'static str, data: &[u8]) -> Result<[u8; N], SamError> {
    data.try_into().map_err(|_| SamError::MalformedResponse {
        command: name,
        len: data.len(),
    })
}

impl<T, E> CardSam<T, E>
where
    T: FnMut(&CommandApdu) -> Result<ResponseApdu, E>,
{
    /// Opens the PSAM behind `transmit` (e-purse.md §6): SELECT of the MF, READ BINARY of the MF's
    /// EF16 (`00 B0 96 00 06`, the terminal id), SELECT of the application by the partial name
    /// [`PSAM_AID_PREFIX`], READ BINARY of EF17 (`00 B0 97 00 19`, byte 0 = purchase key index).
    /// The SAM starts with the single-level (plain PBOC) `80 70` and no maintenance key.
    pub fn open(mut transmit: T) -> Result<Self, OpenError<E>> {
        let mut run = |name: &'static str, command: CommandApdu| {
            exchange(&mut transmit, name, &command).map_err(|e| match e {
                Step::Transport(e) => OpenError::Transport(e),
                Step::Refused(command, sw) => OpenError::Sam(SamError::Refused { command, sw }),
            })
        };
        run(
            "SELECT MF",
            CommandApdu::new(0x00, 0xA4, 0x00, 0x00).with_data([0x3F, 0x00]),
        )?;
        const EF16: &str = "READ BINARY EF16";
        let data = run(EF16, CommandApdu::new(0x00, 0xB0, 0x96, 0x00).with_le(6))?;
        let terminal_id = exact(EF16, &data).map_err(OpenError::Sam)?;
        run(
            "SELECT PSAM application",
            CommandApdu::new(0x00, 0xA4, 0x04, 0x00)
                .with_data(PSAM_AID_PREFIX)
                .with_le(256),
        )?;
        const EF17: &str = "READ BINARY EF17";
        let data = run(EF17, CommandApdu::new(0x00, 0xB0, 0x97, 0x00).with_le(25))?;
        let ef17 = exact(EF17, &data).map_err(OpenError::Sam)?;
        Ok(Self {
            transmit,
            terminal_id,
            ef17,
            two_level: false,
            maintenance: None,
            transport_error: None,
        })
    }

    /// This SAM sending the JT/T 36-byte `80 70` (card diversifier ‖ issuer id) and the 16-byte
    /// `80 1A`, for cards whose keys are diversified in two levels (e-purse.md §3.2, §6).
    pub fn with_two_level_diversification(mut self) -> Self {
        self.two_level = true;
        self
    }

    /// This SAM making secure-messaging MACs with the PSAM's maintenance master key of `version`
    /// under `algorithm` (which fixes the padding block: 8 bytes for 3DES, 16 for SM4).
    pub fn with_maintenance_key(mut self, version: u8, algorithm: PurseAlgorithm) -> Self {
        self.maintenance = Some(MaintenanceKey { version, algorithm });
        self
    }

    /// The purchase key index of the PSAM's EF17 byte 0: the index to send in INITIALIZE FOR
    /// PURCHASE (e-purse.md §6).
    pub fn purchase_key_index(&self) -> u8 {
        self.ef17[0]
    }

    /// The 25 bytes of the PSAM's EF17 as read at open.
    pub fn application_info(&self) -> &[u8; 25] {
        &self.ef17
    }

    /// The transport error behind the last [`SamError::Transport`], if not taken yet.
    pub fn take_transport_error(&mut self) -> Option<E> {
        self.transport_error.take()
    }

    /// Gives the transmit function back.
    pub fn into_transmit(self) -> T {
        self.transmit
    }

    /// One command to the PSAM: the data on `9000`; a refusal goes through `map_sw`.
    fn call(
        &mut self,
        name: &'static str,
        command: &CommandApdu,
        map_sw: impl FnOnce(StatusWord) -> Option<SamError>,
    ) -> Result<Vec<u8>, SamError> {
        exchange(&mut self.transmit, name, command).map_err(|e| match e {
            Step::Transport(e) => {
                self.transport_error = Some(e);
                SamError::Transport
            }
            Step::Refused(command, sw) => map_sw(sw).unwrap_or(SamError::Refused { command, sw }),
        })
    }
}

impl<T, E> PurchaseSam for CardSam<T, E>
where
    T: FnMut(&CommandApdu) -> Result<ResponseApdu, E>,
{
    fn terminal_id(&self) -> [u8; 6] {
        self.terminal_id
    }

    // e-purse.md §6 (8070 data layout), §3.2
    fn init_purchase(&mut self, r: &SamPurchaseRequest) -> Result<SamMac1, SamError> {
        let unknown_key = SamError::UnknownKey {
            index: r.key_index,
            version: r.key_version,
        };
        // The PSAM always uses the key index of its EF17; another one cannot give a good MAC1.
        if r.key_index != self.purchase_key_index() {
            return Err(unknown_key);
        }
        let mut data = Vec::with_capacity(36);
        data.extend_from_slice(&r.random);
        data.extend_from_slice(&r.offline_counter.to_be_bytes());
        data.extend_from_slice(&r.amount.to_be_bytes());
        data.push(r.transaction_type);
        data.extend_from_slice(&r.datetime);
        data.push(r.key_version);
        data.push(r.algorithm_id);
        data.extend_from_slice(&r.card.diversifier());
        if self.two_level {
            data.extend_from_slice(&r.card.issuer_id);
        }
        const NAME: &str = "80 70 (MAC1)";
        let command = CommandApdu::new(0x80, 0x70, 0x00, 0x00)
            .with_data(data)
            .with_le(8);
        let answer = self.call(NAME, &command, |sw| match sw {
            StatusWord::KEY_INDEX_NOT_SUPPORTED => Some(unknown_key),
            StatusWord::COUNTER_AT_MAXIMUM => Some(SamError::SerialExhausted),
            _ => None,
        })?;
        let answer: [u8; 8] = exact(NAME, &answer)?;
        let mut ttsn = [0u8; 4];
        ttsn.copy_from_slice(&answer[..4]);
        let mut mac1 = [0u8; 4];
        mac1.copy_from_slice(&answer[4..]);
        Ok(SamMac1 {
            ttsn: u32::from_be_bytes(ttsn),
            mac1,
        })
    }

    // e-purse.md §6 (8072)
    fn verify_mac2(&mut self, mac2: &[u8; 4]) -> Result<(), SamError> {
        let command = CommandApdu::new(0x80, 0x72, 0x00, 0x00).with_data(mac2.to_vec());
        self.call("80 72 (MAC2)", &command, |sw| match sw {
            StatusWord::MAC_INVALID => Some(SamError::Mac2Invalid),
            StatusWord::CONDITIONS_NOT_SATISFIED => Some(SamError::NoPurchaseInProgress),
            _ => None,
        })
        .map(|_| ())
    }

    // e-purse.md §6 (80 1A, 80 FA 05 00), §4.10, §4.11 (the terminal pads: `84 1E 00 00 04 80 00 00`)
    fn secure_messaging_mac(
        &mut self,
        card: &CardIdentity,
        challenge: [u8; 4],
        command: &[u8],
    ) -> Result<[u8; 4], SamError> {
        let key = self.maintenance.ok_or(SamError::NoMaintenanceKey)?;
        let block = match key.algorithm {
            PurseAlgorithm::Tdes => 8,
            PurseAlgorithm::Sm4(_) => 16,
        };
        let mut data = Vec::with_capacity(8 + command.len() + block);
        data.extend_from_slice(&challenge);
        data.extend_from_slice(&[0; 4]);
        data.extend_from_slice(&pad_iso9797_m2(command, block));
        if data.len() > 255 {
            return Err(SamError::CommandTooLong(command.len()));
        }
        let mut factors = card.diversifier().to_vec();
        if self.two_level {
            factors.extend_from_slice(&card.issuer_id);
        }
        let init =
            CommandApdu::new(0x80, 0x1A, MAINTENANCE_KEY_USAGE, key.version).with_data(factors);
        self.call("80 1A (INIT FOR DESCRYPT)", &init, |sw| {
            (sw == StatusWord::KEY_INDEX_NOT_SUPPORTED).then_some(SamError::NoMaintenanceKey)
        })?;
        const NAME: &str = "80 FA (MAC)";
        let mac = CommandApdu::new(0x80, 0xFA, 0x05, 0x00)
            .with_data(data)
            .with_le(4);
        let answer = self.call(NAME, &mac, |_| None)?;
        exact(NAME, &answer)
    }
}
