//! `ykt terminal`: a validator and load point on the command line, over a simulated card (a state
//! file) or a card in a PC/SC reader, with a PSAM simulated in the terminal's directory or in a
//! second reader.
//!
//! The terminal's directory (`--dir`, default `ykt-terminal`) is its non-volatile storage:
//!
//! | file | what |
//! |---|---|
//! | `journal.ykj` | the transaction journal (`ykt_terminal::journal`): grey entries written before every DEBIT / CREDIT FOR LOAD, completed records; exported with `ykt terminal journal` |
//! | `psam.ykt` | the simulated PSAM (created as the test PSAM when missing; not used with `--psam-reader`) |
//! | `fares.txt` | the fare table and transit rules (optional; the built-in example network otherwise) |
//! | `whitelist.txt`, `blacklist.txt` | issuer whitelist and card blacklist in the `ykt-list` text form (optional: the test issuer is accepted and no card is listed otherwise) |
//!
//! Every tap first recovers the card's grey transaction, if the journal holds one (e-purse.md §7).
//! The load host is the issuer load host in process with the e-purse brief's §8 test master load
//! key: a load point for the test cards, not a production host.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_card::{Atr, Card};
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_purse::psam::{IssuedPsam, PsamData};
use ykt_purse::testing::{
    TEST_ASN, TEST_FIRST_TTSN, TEST_KEY_INDEX, TEST_MASTER_DLK, TEST_TERMINAL_ID, test_card_data,
    test_psam_master_keys,
};
use ykt_purse::{EP_AID, KeyUsage, SECOND_TICKET_AID};
use ykt_terminal::block::{BlockFlow, BlockMode};
use ykt_terminal::card_data::CardIdentity;
use ykt_terminal::export;
use ykt_terminal::journal::GreyReason;
use ykt_terminal::lists::{CardBlacklist, IssuerWhitelist};
use ykt_terminal::load::LoadParams;
use ykt_terminal::load_host::IssuerLoadHost;
use ykt_terminal::purchase::PurchaseParams;
use ykt_terminal::recovery::{NoLocalVerifier, RecoveryOutcome};
use ykt_terminal::sam::{CardSam, MasterKey, PurchaseSam};
use ykt_terminal::tap::{CardSnapshot, Screening, TapFlow, screen};
use ykt_terminal::transit::{
    BcdDateTime, Decision, Ef1aRecord, GateRole, Site, StationRef, TransitConfig, TripState,
    industry,
};
use ykt_terminal::validator::{Record, TapOutcome, Validator};
use ykt_terminal::{DriveError, drive};
use ykt_transport::nv::FileStorage;
use ykt_transport::{CardChannel, InProcess, PcscChannel, TransportError};

use crate::clock::{self, yuan};
use crate::entropy::OsEntropy;
use crate::state;

/// Version of the test PSAM's SM4 maintenance master key (the 3DES one is version 01).
pub const SM4_MAINTENANCE_VERSION: u8 = 0x02;

/// The maintenance key (version, algorithm) a terminal asks its PSAM for when it blocks a card
/// of `algorithm`.
pub fn maintenance_key(algorithm: PurseAlgorithm) -> (u8, PurseAlgorithm) {
    match algorithm {
        PurseAlgorithm::Tdes => (TEST_KEY_INDEX, algorithm),
        PurseAlgorithm::Sm4(_) => (SM4_MAINTENANCE_VERSION, algorithm),
    }
}

/// The built-in fare table (an example network).
pub const BUILTIN_FARES: &str = include_str!("../data/fares.txt");

/// City code and institution of the example network, written into the trip records.
const CITY: [u8; 2] = [0x10, 0x00];
const INSTITUTION: [u8; 8] = [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF];
const OPERATOR: [u8; 2] = [0x00, 0x01];

/// `ykt terminal …`
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 done; 1 other failure (bad input, unusable files); \
2 usage; 3 unusable card state file; 4 the card or reader went away before any money moved; \
5 refused by the card or by the terminal's rules (fare, lists, balance); 8 outcome unknown: a grey \
entry is open in the journal and the next tap of the card recovers it."
)]
pub struct TerminalArgs {
    #[command(flatten)]
    opts: Opts,
    #[command(subcommand)]
    command: TerminalCommand,
}

#[derive(Debug, clap::Args)]
struct Opts {
    /// The terminal's storage: journal.ykj, psam.ykt (the simulated PSAM), and optionally
    /// fares.txt, whitelist.txt, blacklist.txt. Created when missing.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "ykt-terminal",
        global = true
    )]
    dir: PathBuf,
    /// A simulated card: its state file (as `ykt se serve --state`), created as the e-purse
    /// brief's §8 test card when missing, saved after the command.
    #[arg(long, value_name = "FILE", global = true, conflicts_with = "reader")]
    card: Option<PathBuf>,
    /// A card in a PC/SC reader, e.g. "Virtual PCD 00 00" (`ykt se serve` or a real card).
    #[arg(long, value_name = "NAME", global = true)]
    reader: Option<String>,
    /// The PSAM in a PC/SC reader instead of the simulated one in DIR.
    #[arg(long, value_name = "NAME", global = true)]
    psam_reader: Option<String>,
    /// The cards use SM4 keys: a card created by --card is the SM4 test card, and blacklist
    /// blocking asks the PSAM for an SM4 secure-messaging MAC.
    #[arg(long, global = true)]
    sm4: bool,
    /// Use the card's second ticket type (A000000632010106) instead of its e-purse.
    #[arg(long, global = true)]
    second_ticket: bool,
    /// The terminal's clock, YYYYMMDDhhmmss (default: the system clock in China Standard
    /// Time, UTC+8).
    #[arg(long, value_name = "YYYYMMDDhhmmss", global = true)]
    at: Option<String>,
    /// Testing only: cut the simulated card's power during its N-th persistent write in this
    /// command, as a card pulled from the field mid-write (tearing tests and the demo).
    #[arg(long, value_name = "N", global = true, hide = true)]
    danger_cut_power_at: Option<u64>,
}

#[derive(Debug, clap::Subcommand)]
enum TerminalCommand {
    /// The card's balance (GET BALANCE).
    Balance,
    /// The card's transaction records (EF18, newest first) and its trip record (EF1A).
    Records,
    /// Load at a load point: MAC1 checked and MAC2 made by the issuer load host (test keys).
    Load {
        /// Amount in yuan, e.g. 50 or 12.30.
        #[arg(long, value_name = "YUAN")]
        amount: String,
    },
    /// A purchase (type 06): the PSAM makes MAC1 and checks MAC2.
    Purchase {
        /// Amount in yuan, e.g. 2 or 2.50.
        #[arg(long, value_name = "YUAN")]
        amount: String,
    },
    /// Metro entry gate: opens a trip (composite purchase, type 09, EF1A + EF1E records).
    Entry {
        /// Line number.
        #[arg(long)]
        line: u16,
        /// Station number on the line.
        #[arg(long)]
        station: u8,
    },
    /// Metro exit gate: prices the trip from the fare table, deducts and closes the trip.
    Exit {
        /// Line number.
        #[arg(long)]
        line: u16,
        /// Station number on the line.
        #[arg(long)]
        station: u8,
    },
    /// A flat-fare bus validator: one tap pays the line's fare.
    Ride {
        /// Bus line (with a `flat` fare in the fare table).
        #[arg(long)]
        line: u16,
    },
    /// The journal's records for upload to settlement (JSON lines or CSV).
    Journal {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
        /// Write to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// The ride QR code scanner: scan and verify codes, install parameters, upload records
    /// (qr-code.md §3, §5); no card is involved.
    Qr(crate::qr::TerminalQrArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated, with a header line.
    Csv,
}

/// The card or the terminal refused the transaction, before any money moved (exit code 5).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

impl Refused {
    /// A refusal with its reason.
    pub fn new(reason: String) -> Self {
        Self(reason)
    }
}

/// Money may have moved and the outcome is unknown: a grey entry is open in the journal, to be
/// recovered at the next tap of the card (exit code 8).
#[derive(Debug, thiserror::Error)]
#[error(
    "transaction outcome unknown ({step}: {cause}): grey entry #{seq} is open; tap the card again to recover it"
)]
pub struct GreyTransaction {
    seq: u32,
    step: &'static str,
    cause: String,
}

/// The card gave no answer before any money could move (exit code 4, as a transport failure).
#[derive(Debug, thiserror::Error)]
#[error("the card went away at {step}; nothing was charged")]
pub struct CardWentAway {
    step: &'static str,
}

/// Runs `ykt terminal …`.
pub fn run(args: TerminalArgs) -> anyhow::Result<()> {
    let opts = &args.opts;
    if let TerminalCommand::Journal { format, out } = &args.command {
        return journal(opts, *format, out.as_deref());
    }
    if let TerminalCommand::Qr(qr) = &args.command {
        return crate::qr::run_terminal(&opts.dir, opts.at.as_deref(), qr);
    }
    let mut card = Device::card(opts)?;
    let result = on_card(opts, &args.command, card.channel());
    // The simulated card keeps whatever it committed, whatever the outcome.
    let saved = card.save();
    result.and(saved)
}

fn on_card(
    opts: &Opts,
    command: &TerminalCommand,
    card: &mut dyn CardChannel,
) -> anyhow::Result<()> {
    let aid: &[u8] = if opts.second_ticket {
        &SECOND_TICKET_AID
    } else {
        &EP_AID
    };
    match command {
        TerminalCommand::Balance => balance(aid, card),
        TerminalCommand::Records => records(aid, card),
        TerminalCommand::Load { amount } => {
            let amount = clock::parse_yuan(amount)?;
            let now = now(opts)?;
            let mut psam = Device::psam(opts)?;
            let terminal_id = {
                let sam = open_sam(psam.channel())?;
                sam.terminal_id()
            };
            psam.save()?;
            load(opts, aid, amount, terminal_id, now, card)
        }
        TerminalCommand::Purchase { amount } => {
            let amount = clock::parse_yuan(amount)?;
            with_sam(opts, |sam, key_index, opts| {
                let now = now(opts)?;
                tap_and_screen(opts, aid, sam, card)?;
                let params = PurchaseParams {
                    aid: aid.to_vec(),
                    key_index,
                    amount,
                    datetime: now.bytes(),
                    composite: None,
                };
                purchase(opts, params, "purchase", sam, card)
            })
        }
        TerminalCommand::Entry { line, station } => transit_tap(
            opts,
            GateRole::Entry,
            StationRef::new(*line, *station),
            card,
        ),
        TerminalCommand::Exit { line, station } => {
            transit_tap(opts, GateRole::Exit, StationRef::new(*line, *station), card)
        }
        TerminalCommand::Ride { line } => {
            transit_tap(opts, GateRole::Single, StationRef::new(*line, 0), card)
        }
        TerminalCommand::Journal { .. } | TerminalCommand::Qr(_) => Ok(()),
    }
}

fn now(opts: &Opts) -> anyhow::Result<BcdDateTime> {
    match &opts.at {
        Some(text) => clock::parse_datetime(text),
        None => clock::now(clock::CST_OFFSET_SECONDS),
    }
}

// ---- the card and the PSAM -----------------------------------------------------------------

/// A card the terminal talks to, the customer's or its PSAM: simulated (a state file, saved
/// afterwards) or in a PC/SC reader.
enum Device {
    Simulated {
        path: PathBuf,
        channel: Box<InProcess>,
    },
    Reader(PcscChannel),
}

impl Device {
    /// The customer's card of `--card` or `--reader`.
    fn card(opts: &Opts) -> anyhow::Result<Self> {
        match (&opts.card, &opts.reader) {
            (Some(path), _) => {
                let sm4 = opts.sm4;
                let (card, created) =
                    state::load_or_create(path, Box::new(OsEntropy::new()?), || test_card(sm4))?;
                if created {
                    tracing::info!(path = %path.display(), sm4, "created the e-purse.md §8 test card");
                }
                let mut channel = Box::new(InProcess::new(card));
                if let Some(n) = opts.danger_cut_power_at {
                    tracing::warn!(write = n, "the simulated card loses power at this write");
                    channel.card_mut().tear().arm_at(n);
                }
                Ok(Self::Simulated {
                    path: path.clone(),
                    channel,
                })
            }
            (None, Some(_)) if opts.danger_cut_power_at.is_some() => {
                bail!("--danger-cut-power-at needs a simulated card (--card FILE)")
            }
            (None, Some(reader)) => Ok(Self::Reader(PcscChannel::connect(reader)?)),
            (None, None) => bail!(
                "which card? --card FILE (a simulated card, created as the test card when missing) or --reader NAME (PC/SC)"
            ),
        }
    }

    /// The terminal's PSAM: `--psam-reader`, or simulated in the terminal's directory.
    fn psam(opts: &Opts) -> anyhow::Result<Self> {
        if let Some(reader) = &opts.psam_reader {
            return Ok(Self::Reader(PcscChannel::connect(reader)?));
        }
        ensure_dir(&opts.dir)?;
        let path = opts.dir.join("psam.ykt");
        let (card, created) =
            state::load_or_create(&path, Box::new(OsEntropy::new()?), test_psam_card)?;
        if created {
            tracing::info!(path = %path.display(), "created the test PSAM (3DES and SM4 test master keys)");
        }
        Ok(Self::Simulated {
            path,
            channel: Box::new(InProcess::new(card)),
        })
    }

    fn channel(&mut self) -> &mut dyn CardChannel {
        match self {
            Self::Simulated { channel, .. } => &mut **channel,
            Self::Reader(r) => r,
        }
    }

    /// Saves a simulated card: whatever it committed stays, whatever the outcome.
    fn save(&mut self) -> anyhow::Result<()> {
        if let Self::Simulated { path, channel } = self {
            let card = channel.card_mut();
            card.tear().disarm();
            if !card.is_powered() {
                // A torn card replays or drops its journal at power-on, before it is saved.
                card.power_on();
            }
            state::save(path, card)?;
        }
        Ok(())
    }
}

fn test_card(sm4: bool) -> anyhow::Result<Card> {
    let card = if sm4 {
        ykt_purse::testing::danger_test_card_sm4()
    } else {
        ykt_purse::testing::danger_test_card_3des()
    };
    card.context("issuing the e-purse.md §8 test card")
}

/// The test PSAM of the terminal: terminal id 112233445566, purchase key index 01, the e-purse
/// brief's test master purchase and maintenance keys for both 3DES and SM4.
fn test_psam_card() -> anyhow::Result<Card> {
    psam_card(TEST_TERMINAL_ID)
}

/// A PSAM card for terminal `terminal_id`, first TTSN 1, purchase key index 01, holding the
/// e-purse brief's test master purchase and maintenance keys for both 3DES and SM4 (published
/// keys: for the test cards only).
pub fn psam_card(terminal_id: [u8; 6]) -> anyhow::Result<Card> {
    let mut keys = test_psam_master_keys(PurseAlgorithm::Tdes);
    keys.extend(
        test_psam_master_keys(PurseAlgorithm::Sm4(Sm4Rules::BRIEF))
            .into_iter()
            .map(|mut k| {
                // `80 1A` names a master key by usage and version only, so the SM4 maintenance
                // key needs a version of its own; `80 70` also names the algorithm, so the
                // purchase keys keep the cards' version 01.
                if k.usage == KeyUsage::Maintenance {
                    k.version = SM4_MAINTENANCE_VERSION;
                }
                k
            }),
    );
    let psam = IssuedPsam::new(
        &ykt_purse::psam::PSAM_AID,
        PsamData::new(terminal_id, TEST_KEY_INDEX, TEST_FIRST_TTSN),
        &keys,
    )
    .context("personalising the test PSAM")?;
    let mut card = Card::new(Atr::default_t1(), Box::new(OsEntropy::new()?));
    psam.install(&mut card)
        .context("installing the test PSAM")?;
    card.power_on();
    Ok(card)
}

fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("creating the terminal directory {}", dir.display()))
}

type Transmit<'a> = Box<dyn FnMut(&CommandApdu) -> Result<ResponseApdu, TransportError> + 'a>;

fn transmit<'a>(channel: &'a mut dyn CardChannel) -> Transmit<'a> {
    Box::new(move |command| channel.transmit(command))
}

fn open_sam(psam: &mut dyn CardChannel) -> anyhow::Result<CardSam<Transmit<'_>, TransportError>> {
    CardSam::open(transmit(psam)).context("opening the PSAM")
}

/// Runs `f` with the terminal's PSAM as the purchase SAM, and saves a simulated PSAM afterwards
/// (its TTSN moved).
fn with_sam<T>(
    opts: &Opts,
    f: impl FnOnce(&mut dyn PurchaseSam, u8, &Opts) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut psam = Device::psam(opts)?;
    let result = {
        let algorithm = if opts.sm4 {
            PurseAlgorithm::Sm4(Sm4Rules::BRIEF)
        } else {
            PurseAlgorithm::Tdes
        };
        let (version, algorithm) = maintenance_key(algorithm);
        let mut sam = open_sam(psam.channel())?.with_maintenance_key(version, algorithm);
        // e-purse.md §6: the PSAM's EF17 byte 0 is the key index for INITIALIZE FOR PURCHASE.
        let key_index = sam.purchase_key_index();
        f(&mut sam, key_index, opts)
    };
    let saved = psam.save();
    let value = result?;
    saved?;
    Ok(value)
}

fn validator(opts: &Opts) -> anyhow::Result<Validator<FileStorage>> {
    ensure_dir(&opts.dir)?;
    let path = opts.dir.join("journal.ykj");
    let storage = FileStorage::open(&path)
        .with_context(|| format!("opening the journal {}", path.display()))?;
    Validator::open(storage).with_context(|| format!("the journal {} is unusable", path.display()))
}

// ---- commands --------------------------------------------------------------------------------

fn select(aid: &[u8], card: &mut dyn CardChannel) -> anyhow::Result<CardIdentity> {
    let fci = card
        .transmit_checked(&ykt_terminal::commands::select(aid))
        .context("SELECT")?;
    CardIdentity::from_fci(&fci).context("the SELECT answer")
}

fn balance(aid: &[u8], card: &mut dyn CardChannel) -> anyhow::Result<()> {
    let identity = select(aid, card)?;
    let data = card
        .transmit_checked(&ykt_terminal::commands::get_balance())
        .context("GET BALANCE")?;
    let bytes: [u8; 4] = data
        .as_slice()
        .try_into()
        .context("GET BALANCE answered a wrong length")?;
    let value = u32::from_be_bytes(bytes);
    if aid == SECOND_TICKET_AID {
        println!("card {}: {value} rides", identity.masked_number());
    } else {
        println!("card {}: {}", identity.masked_number(), yuan(value));
    }
    Ok(())
}

fn records(aid: &[u8], card: &mut dyn CardChannel) -> anyhow::Result<()> {
    let identity = select(aid, card)?;
    println!("card {}", identity.masked_number());
    println!("  n  counter  type  amount      terminal      date       time");
    for n in 1..=u8::MAX {
        // e-purse.md §2: READ RECORD of EF18 by SFI, 23-byte records, record 1 the newest.
        let response = card.transmit(&CommandApdu::new(0x00, 0xB2, n, 0xC4).with_le(0x17))?;
        if response.sw == StatusWord::RECORD_NOT_FOUND {
            if n == 1 {
                println!("  (no transactions)");
            }
            break;
        }
        if !response.sw.is_success() {
            bail!(Refused(format!(
                "READ RECORD {n} of EF18: {:?}",
                response.sw
            )));
        }
        let r = &response.data;
        if r.len() != 23 {
            bail!("EF18 record {n} has {} bytes, not 23", r.len());
        }
        let amount = u32::from_be_bytes([r[5], r[6], r[7], r[8]]);
        println!(
            "  {n:<2} {:04X}     {:02X}    {:<10}  {}  {}   {}",
            u16::from_be_bytes([r[0], r[1]]),
            r[9],
            yuan(amount),
            hex::encode_upper(&r[10..16]),
            hex::encode_upper(&r[16..20]),
            hex::encode_upper(&r[20..23]),
        );
    }
    let response = card.transmit(&ykt_terminal::tap::read_ef1a())?;
    match (response.sw, Ef1aRecord::decode_slot(&response.data)) {
        (StatusWord::SUCCESS, Ok(Some(trip))) => {
            println!("  trip record (EF1A): {}", describe_trip(&trip))
        }
        (StatusWord::SUCCESS, Ok(None)) => println!("  trip record (EF1A): none"),
        (StatusWord::SUCCESS, Err(e)) => println!("  trip record (EF1A): unreadable ({e})"),
        (sw, _) => println!("  trip record (EF1A): not readable ({sw:?})"),
    }
    Ok(())
}

fn describe_trip(trip: &Ef1aRecord) -> String {
    let end = |e: &ykt_terminal::transit::TripEnd| {
        let at = e
            .datetime
            .map(|t| hex::encode_upper(t.bytes()))
            .unwrap_or_else(|| "-".into());
        format!("line {} station {} at {at}", e.line, e.station)
    };
    match trip.state {
        TripState::Initial => "no trip yet".into(),
        TripState::Entered => format!(
            "trip open: entered {}, maximum fare {} marked",
            end(&trip.entry),
            yuan(trip.marked_max_fare)
        ),
        TripState::Exited => format!(
            "last trip closed: entered {}, left {}, {} charged",
            end(&trip.entry),
            end(&trip.exit),
            yuan(trip.amount)
        ),
    }
}

fn load(
    opts: &Opts,
    aid: &[u8],
    amount: u32,
    terminal_id: [u8; 6],
    now: BcdDateTime,
    card: &mut dyn CardChannel,
) -> anyhow::Result<()> {
    let mut host = test_load_host();
    let params = LoadParams {
        aid: aid.to_vec(),
        key_index: TEST_KEY_INDEX,
        amount,
        terminal_id,
        datetime: now.bytes(),
    };
    let mut validator = validator(opts)?;
    let tap = validator.load(params, &mut host, &mut NoLocalVerifier, transmit(card))?;
    report(tap.recovered, tap.outcome, "load")
}

/// SELECT, EF1A, balance; then the whitelist and blacklist. A blacklisted card is blocked.
fn tap_and_screen(
    opts: &Opts,
    aid: &[u8],
    sam: &mut dyn PurchaseSam,
    card: &mut dyn CardChannel,
) -> anyhow::Result<CardSnapshot> {
    let (flow, first) = TapFlow::start(aid);
    let snapshot = match drive(flow, first, transmit(card)) {
        Ok(s) => s,
        Err(DriveError::Transport(e)) => return Err(e).context("reading the card"),
        Err(DriveError::Flow(e)) => bail!(Refused(format!("reading the card: {e}"))),
        Err(e) => return Err(anyhow::anyhow!("reading the card: {e}")),
    };
    let whitelist = read_list(&opts.dir.join("whitelist.txt"), IssuerWhitelist::parse)?
        .unwrap_or_else(|| test_issuer_whitelist(0));
    let blacklist = read_list(&opts.dir.join("blacklist.txt"), CardBlacklist::parse)?
        .unwrap_or_else(|| CardBlacklist::empty(0));
    match screen(&snapshot, &whitelist, &blacklist) {
        Screening::Admit => Ok(snapshot),
        Screening::Refuse(reason) => bail!(Refused(format!(
            "card {}: {reason}",
            snapshot.card.masked_number()
        ))),
        Screening::Block => {
            let number = snapshot.card.masked_number().to_string();
            let (flow, first) = BlockFlow::start(snapshot.card.clone(), BlockMode::Temporary, sam);
            match drive(flow, first, transmit(card)) {
                Ok(_) => bail!(Refused(format!(
                    "card {number} is on the blacklist (version {}): its application is now blocked",
                    blacklist.version()
                ))),
                Err(e) => bail!(Refused(format!(
                    "card {number} is on the blacklist (version {}); blocking it failed: {e}",
                    blacklist.version()
                ))),
            }
        }
    }
}

/// The issuer whitelist when the terminal has none: the test cards' issuer (EF15 bytes 0–3), at
/// `version`.
pub fn test_issuer_whitelist(version: u32) -> IssuerWhitelist {
    let ef15 = test_card_data(TEST_ASN).ef15.encode();
    IssuerWhitelist::from_unsorted(version, vec![[ef15[0], ef15[1], ef15[2], ef15[3]]])
}

/// The issuer load host of the test cards: the e-purse brief's §8 master load key, index and
/// version 01 (published key: for the test cards only).
pub fn test_load_host() -> IssuerLoadHost {
    IssuerLoadHost::new(
        vec![MasterKey {
            index: TEST_KEY_INDEX,
            version: TEST_KEY_INDEX,
            key: PurseKey::from_bytes(TEST_MASTER_DLK),
        }],
        Sm4Rules::BRIEF,
    )
}

fn read_list<T, E: std::error::Error + Send + Sync + 'static>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> anyhow::Result<Option<T>> {
    match fs::read_to_string(path) {
        Ok(text) => parse(&text)
            .map(Some)
            .with_context(|| format!("{} is not a valid list", path.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The fares and rules: DIR/fares.txt when present (`ykt-fares 1` with optional rule
/// statements, see `TransitConfig::parse`), else the built-in example network.
fn transit_config(opts: &Opts) -> anyhow::Result<TransitConfig> {
    let path = opts.dir.join("fares.txt");
    match fs::read_to_string(&path) {
        Ok(text) => TransitConfig::parse(&text)
            .with_context(|| format!("{} is not a fare table", path.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            TransitConfig::parse(BUILTIN_FARES).context("the built-in fare table")
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn transit_tap(
    opts: &Opts,
    role: GateRole,
    station: StationRef,
    card: &mut dyn CardChannel,
) -> anyhow::Result<()> {
    let config = transit_config(opts)?;
    with_sam(opts, |sam, key_index, opts| {
        let now = now(opts)?;
        let snapshot = tap_and_screen(opts, &EP_AID, sam, card)?;
        let site = site(sam.terminal_id(), role, station);
        let charge = match snapshot.decide(&site, now, &config) {
            Decision::Refuse(reason) => bail!(Refused(format!(
                "card {}: {reason}",
                snapshot.card.masked_number()
            ))),
            other => match other.charge() {
                Some(c) => c.clone(),
                None => bail!("the transit decision gave no charge"),
            },
        };
        let what = match role {
            GateRole::Entry => "entry",
            GateRole::Exit => "exit",
            GateRole::Single => "ride",
        };
        if let Some(fare) = charge.fare {
            println!("fare {} ({:?})", yuan(fare.amount), fare.basis);
        }
        if charge.transfer_discount > 0 {
            println!("transfer discount {}", yuan(charge.transfer_discount));
        }
        if charge.penalty > 0 {
            println!(
                "maximum fare charged for an unclosed or unpriced trip: {}",
                yuan(charge.penalty)
            );
        }
        let params = charge.purchase_params(key_index, now);
        purchase(opts, params, what, sam, card)
    })
}

/// A gate or validator of the example network: metro gates for entry and exit, buses for single
/// taps.
pub fn site(terminal_id: [u8; 6], role: GateRole, station: StationRef) -> Site {
    Site {
        terminal_id,
        city: CITY,
        institution: INSTITUTION,
        operator: OPERATOR,
        station,
        vehicle: [0; 8],
        direction: 0,
        industry: if role == GateRole::Single {
            industry::BUS
        } else {
            industry::METRO
        },
        role,
    }
}

fn purchase(
    opts: &Opts,
    params: PurchaseParams,
    what: &str,
    sam: &mut dyn PurchaseSam,
    card: &mut dyn CardChannel,
) -> anyhow::Result<()> {
    let mut validator = validator(opts)?;
    let tap = validator.purchase(params, sam, &mut NoLocalVerifier, transmit(card))?;
    report(tap.recovered, tap.outcome, what)
}

fn report(
    recovered: Option<(u32, RecoveryOutcome)>,
    outcome: TapOutcome,
    what: &str,
) -> anyhow::Result<()> {
    // A recovery that ended the tap is told by the outcome itself.
    let ended_by_recovery = matches!(
        outcome,
        TapOutcome::Recovered { .. } | TapOutcome::LeftGrey { .. }
    );
    if let Some((seq, found)) = &recovered
        && !ended_by_recovery
    {
        match found {
            RecoveryOutcome::NotCharged => {
                println!("grey entry #{seq}: the card was not charged; the transaction runs again")
            }
            RecoveryOutcome::LeftGrey(reason) => println!(
                "grey entry #{seq}: left grey for settlement ({})",
                describe_grey(reason)
            ),
            other => println!(
                "grey entry #{seq}: recovered ({})",
                describe_recovery(other)
            ),
        }
    }
    match outcome {
        TapOutcome::Completed { seq, record } => {
            println!("{what}: {} (journal #{seq})", describe(&record));
            Ok(())
        }
        TapOutcome::Recovered { seq, record } => {
            println!(
                "{what}: the card's lost transaction was completed instead, nothing more charged: {} (journal #{seq})",
                describe(&record)
            );
            Ok(())
        }
        TapOutcome::LeftGrey { seq, reason } => {
            println!(
                "{what}: nothing more charged: the card's lost transaction (#{seq}) went through and paid; \
                 it goes to settlement grey ({})",
                describe_grey(&reason)
            );
            Ok(())
        }
        TapOutcome::Grey { seq, step, cause } => Err(GreyTransaction {
            seq,
            step,
            cause: format!("{cause:?}"),
        }
        .into()),
        TapOutcome::Refused { step, sw } => {
            bail!(Refused(format!("the card refused {step}: {sw:?}")))
        }
        TapOutcome::CardRemoved { step } => Err(CardWentAway { step }.into()),
        TapOutcome::Failed { step, error } => {
            bail!(Refused(format!(
                "{what}: {step}: {error}; nothing was charged"
            )))
        }
        other => bail!("{what}: {other:?}"),
    }
}

fn describe_grey(reason: &GreyReason) -> String {
    match reason {
        GreyReason::ProofRefused(sw) => format!("the card gave no proof: {sw:?}"),
        GreyReason::Mac2Invalid { mac2, tac } => format!(
            "the proof's MAC2 {} does not verify; TAC {}",
            hex::encode_upper(mac2),
            hex::encode_upper(tac)
        ),
        GreyReason::Unverified { mac2, tac } => format!(
            "MAC2 {} cannot be checked here; settlement checks TAC {}",
            hex::encode_upper(mac2),
            hex::encode_upper(tac)
        ),
        other => format!("{other:?}"),
    }
}

fn describe_recovery(found: &RecoveryOutcome) -> String {
    match found {
        RecoveryOutcome::Purchase(r) => format!(
            "purchase of {}, TAC {}",
            yuan(r.amount),
            hex::encode_upper(r.tac)
        ),
        other => format!("{other:?}"),
    }
}

fn describe(record: &Record) -> String {
    match record {
        Record::Purchase(r) => format!(
            "card {} {} → {} (−{}), type {:02X}, terminal {}, TTSN {:08X}, TAC {}",
            r.card.masked_number(),
            yuan(r.balance_before),
            yuan(r.balance_after()),
            yuan(r.amount),
            r.transaction_type,
            hex::encode_upper(r.terminal_id),
            r.ttsn,
            hex::encode_upper(r.tac)
        ),
        Record::Load(r) => format!(
            "card {} {} → {} (+{}), terminal {}, TAC {}",
            r.card.masked_number(),
            yuan(r.old_balance),
            yuan(r.new_balance),
            yuan(r.amount),
            hex::encode_upper(r.terminal_id),
            hex::encode_upper(r.tac)
        ),
    }
}

fn journal(opts: &Opts, format: Format, out: Option<&Path>) -> anyhow::Result<()> {
    let path = opts.dir.join("journal.ykj");
    if !path.exists() {
        bail!(
            "no journal at {} (no transaction has run in this terminal directory)",
            path.display()
        );
    }
    let validator = validator(opts)?;
    let records = export::settlement_records(validator.journal().entries());
    let text = match format {
        Format::Jsonl => export::json_lines(&records),
        Format::Csv => export::csv(&records),
    };
    match out {
        Some(file) => {
            fs::write(file, text).with_context(|| format!("writing {}", file.display()))?;
            eprintln!("{} records written to {}", records.len(), file.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
