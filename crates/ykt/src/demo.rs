//! `ykt demo`: the system end to end on embedded defaults.
//!
//! An issuer personalises two cards (3DES with a second ticket type, and SM4); a load point loads
//! them through the issuer load host; a bus validator and metro gates, each with its own PSAM card
//! and transaction journal, take fares (flat bus fare, metro entry/exit priced from the fare table,
//! a transfer discount); power is cut at every persistent write of a debit and the next tap
//! recovers each cut; a blacklisted card is blocked; the back office checks every TAC from the
//! journals' upload and that no fen was created or lost; the conformance suite runs against the
//! simulated SE and the terminal, with HTML and JUnit reports; a card survives a state file round
//! trip. A phone then enrols a wallet with the TSM over HTTP, opens a card on its blank SE in
//! one download-and-personalise flow, tops it up by remote payment, rides the bus with it,
//! moves it to a new phone and returns it. Every step talks to the cards in APDUs through
//! `ykt_transport::InProcess`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_card::{Atr, Card};
use ykt_conformance::profile::{self, Profile};
use ykt_conformance::report::{html, junit};
use ykt_conformance::{Catalogue, Registry, Run, RunConfig, RunInfo, Target, Verdict};
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_purse::testing::{
    TEST_ASN, TEST_KEY_INDEX, TEST_MASTER_DTK, TEST_SECOND_TICKET_ASN, test_card_data, test_issuer,
};
use ykt_purse::{Asn, EP_AID, PurseProfile, SECOND_TICKET_AID};
use ykt_terminal::block::{BlockFlow, BlockMode};
use ykt_terminal::card_data::CardIdentity;
use ykt_terminal::export::{self, RecordStatus, SettlementRecord};
use ykt_terminal::lists::{CardBlacklist, IssuerWhitelist};
use ykt_terminal::load::LoadParams;
use ykt_terminal::load_host::IssuerLoadHost;
use ykt_terminal::purchase::PurchaseParams;
use ykt_terminal::recovery::NoLocalVerifier;
use ykt_terminal::sam::{CardSam, PurchaseSam};
use ykt_terminal::tac::{TacVerifier, load_tac_input, purchase_tac_input};
use ykt_terminal::tap::{CardSnapshot, Screening, TapFlow, screen};
use ykt_terminal::transit::{BcdDateTime, Decision, GateRole, StationRef, TransitConfig};
use ykt_terminal::validator::{Record, TapOutcome, Validator};
use ykt_terminal::{commands, drive};
use ykt_transport::nv::FileStorage;
use ykt_transport::{CardChannel, InProcess, TransportError};

use crate::clock::yuan;
use crate::entropy::OsEntropy;
use crate::terminal::{
    BUILTIN_FARES, maintenance_key, psam_card, site, test_issuer_whitelist, test_load_host,
};

/// Options of `ykt demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to save card A's state at the end (default: a file in the run directory).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Where the terminals keep their journals and the conformance reports are written
    /// (default: a new directory in the system's temp dir).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

const LOAD_POINT: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x10, 0x01];
const BUS: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x20, 0x01];
const METRO: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x30, 0x01];
/// Card B's number: the test card's with another serial.
const CARD_B_ASN: Asn = Asn([0x31, 0x04, 0x10, 0x00, 0x00, 0x00, 0x87, 0x65, 0x43, 0x21]);
/// Transactions carry the terminal's clock; the demo uses a fixed day so its output is stable.
const DAY: [u8; 4] = [0x20, 0x26, 0x12, 0x01];
/// The bus line of the built-in fare table (flat 2.00).
const BUS_LINE: u16 = 901;

fn at(hour: u8, minute: u8, second: u8) -> BcdDateTime {
    let bcd = |v: u8| ((v / 10) << 4) | (v % 10);
    let bytes = [
        DAY[0],
        DAY[1],
        DAY[2],
        DAY[3],
        bcd(hour),
        bcd(minute),
        bcd(second),
    ];
    // Hours, minutes and seconds below are all in range.
    BcdDateTime::new(bytes).unwrap_or_else(|_| unreachable_time())
}

#[allow(clippy::panic)] // Only reachable through a wrong literal in this file.
fn unreachable_time() -> ! {
    panic!("a demo time literal is not a valid time")
}

fn step(text: &str) {
    println!("\n▸ {text}");
}

type Transmit<'a> = Box<dyn FnMut(&CommandApdu) -> Result<ResponseApdu, TransportError> + 'a>;

fn transmit(channel: &mut InProcess) -> Transmit<'_> {
    Box::new(move |command| channel.transmit(command))
}

/// A transmit function that owns its card: a PSAM card inside its terminal.
type Owned = Box<dyn FnMut(&CommandApdu) -> Result<ResponseApdu, TransportError>>;

/// A validator: its PSAM (one SAM session for the life of the terminal, so that a lost debit's
/// MAC2 can still be checked by the PSAM at the re-tap) and its journal.
struct Station {
    name: &'static str,
    sam: CardSam<Owned, TransportError>,
    validator: Validator<FileStorage>,
}

impl Station {
    /// `maintenance` is the algorithm of the cards whose applications this terminal may have to
    /// block (the PSAM's maintenance key it asks for).
    fn open(
        name: &'static str,
        terminal_id: [u8; 6],
        maintenance: PurseAlgorithm,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let path = dir.join(format!("{name}.ykj"));
        let storage = FileStorage::open(&path)
            .with_context(|| format!("opening the journal {}", path.display()))?;
        let mut psam = InProcess::new(psam_card(terminal_id)?);
        let owned: Owned = Box::new(move |command| psam.transmit(command));
        Ok(Self {
            name,
            sam: {
                let (version, algorithm) = maintenance_key(maintenance);
                CardSam::open(owned)
                    .context("opening the PSAM")?
                    .with_maintenance_key(version, algorithm)
            },
            validator: Validator::open(storage)
                .with_context(|| format!("the journal {} is unusable", path.display()))?,
        })
    }

    /// A purchase through this station's PSAM and journal.
    fn purchase(
        &mut self,
        card: &mut InProcess,
        params: PurchaseParams,
    ) -> anyhow::Result<TapOutcome> {
        let tap =
            self.validator
                .purchase(params, &mut self.sam, &mut NoLocalVerifier, transmit(card))?;
        Ok(tap.outcome)
    }

    fn records(&self) -> Vec<SettlementRecord> {
        export::settlement_records(self.validator.journal().entries())
    }
}

struct Demo {
    host: IssuerLoadHost,
    load_point: Validator<FileStorage>,
    bus: Station,
    metro: Station,
    transit: TransitConfig,
    whitelist: IssuerWhitelist,
    blacklist: CardBlacklist,
}

fn completed(what: &str, outcome: TapOutcome) -> anyhow::Result<Record> {
    match outcome {
        TapOutcome::Completed { record, .. } => Ok(record),
        other => bail!("{what}: {other:?}"),
    }
}

impl Demo {
    fn load(
        &mut self,
        card: &mut InProcess,
        aid: &[u8],
        amount: u32,
        time: BcdDateTime,
    ) -> anyhow::Result<(u32, u32, [u8; 4])> {
        let params = LoadParams {
            aid: aid.to_vec(),
            key_index: TEST_KEY_INDEX,
            amount,
            terminal_id: LOAD_POINT,
            datetime: time.bytes(),
        };
        let tap =
            self.load_point
                .load(params, &mut self.host, &mut NoLocalVerifier, transmit(card))?;
        match completed("load", tap.outcome)? {
            Record::Load(r) => Ok((r.old_balance, r.new_balance, r.tac)),
            other => bail!("load gave {other:?}"),
        }
    }

    /// A transit tap at a bus validator (single) or metro gate (entry/exit): read the card,
    /// screen it, price the tap, and run the composite purchase.
    fn ride(
        &mut self,
        card: &mut InProcess,
        role: GateRole,
        station: StationRef,
        time: BcdDateTime,
    ) -> anyhow::Result<String> {
        let snapshot = tap(card)?;
        if screen(&snapshot, &self.whitelist, &self.blacklist) != Screening::Admit {
            bail!(
                "card {} refused at screening",
                snapshot.card.masked_number()
            );
        }
        let gate = if role == GateRole::Single {
            &mut self.bus
        } else {
            &mut self.metro
        };
        let terminal_id = gate.sam.terminal_id();
        let charge = match snapshot.decide(&site(terminal_id, role, station), time, &self.transit) {
            Decision::Refuse(reason) => bail!("tap refused: {reason}"),
            d => d.charge().cloned().context("no charge")?,
        };
        let outcome = gate.purchase(
            card,
            charge.purchase_params(gate.sam.purchase_key_index(), time),
        )?;
        let Record::Purchase(r) = completed(gate.name, outcome)? else {
            bail!("a ride gave a load record");
        };
        let mut text = format!(
            "{} → {}, TTSN {}, TAC {}",
            yuan(r.balance_before),
            yuan(r.balance_after()),
            r.ttsn,
            hex::encode_upper(r.tac)
        );
        if let Some(fare) = charge.fare {
            text.push_str(&format!(" (fare {}", yuan(fare.amount)));
            if charge.transfer_discount > 0 {
                text.push_str(&format!(", transfer −{}", yuan(charge.transfer_discount)));
            }
            text.push(')');
        }
        Ok(text)
    }
}

fn tap(card: &mut InProcess) -> anyhow::Result<CardSnapshot> {
    let (flow, first) = TapFlow::start(&EP_AID);
    drive(flow, first, transmit(card)).map_err(|e| anyhow::anyhow!("reading the card: {e}"))
}

fn balance(card: &mut InProcess, aid: &[u8]) -> anyhow::Result<u32> {
    card.transmit_checked(&commands::select(aid))
        .context("SELECT")?;
    let data = card
        .transmit_checked(&commands::get_balance())
        .context("GET BALANCE")?;
    let bytes: [u8; 4] = data
        .as_slice()
        .try_into()
        .context("GET BALANCE answered a wrong length")?;
    Ok(u32::from_be_bytes(bytes))
}

fn issue(alg: PurseAlgorithm, asn: Asn, second_ticket: bool) -> anyhow::Result<Card> {
    let issuer = test_issuer(alg).context("issuer keys")?;
    let mut card = Card::new(Atr::default_t1(), Box::new(OsEntropy::new()?));
    issuer
        .issue(&EP_AID, PurseProfile::EPURSE, &test_card_data(asn))
        .context("personalise the e-purse")?
        .install(&mut card)
        .context("install the e-purse")?;
    if second_ticket {
        issuer
            .issue(
                &SECOND_TICKET_AID,
                PurseProfile::SECOND_TICKET,
                &test_card_data(TEST_SECOND_TICKET_ASN),
            )
            .context("personalise the second ticket type")?
            .install(&mut card)
            .context("install the second ticket type")?;
    }
    card.power_on();
    Ok(card)
}

fn identity(card: &mut InProcess) -> anyhow::Result<CardIdentity> {
    let fci = card
        .transmit_checked(&commands::select(&EP_AID))
        .context("SELECT")?;
    CardIdentity::from_fci(&fci).context("FCI")
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("  {msg} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    println!(
        "ykt demo — transit e-purse cards, load point, validators with PSAMs, back office, conformance"
    );
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("ykt-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for stale in ["load-point.ykj", "bus.ykj", "metro.ykj"] {
        match std::fs::remove_file(dir.join(stale)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("clearing {}", dir.display())),
        }
    }

    let load_point_path = dir.join("load-point.ykj");
    let mut demo = Demo {
        host: test_load_host(),
        load_point: Validator::open(FileStorage::open(&load_point_path)?)
            .context("the load point's journal")?,
        // The bus blocks card B (SM4) below; the metro would block 3DES cards.
        bus: Station::open("bus", BUS, PurseAlgorithm::Sm4(Sm4Rules::BRIEF), &dir)?,
        metro: Station::open("metro", METRO, PurseAlgorithm::Tdes, &dir)?,
        transit: TransitConfig::parse(BUILTIN_FARES).context("the built-in fare table")?,
        whitelist: test_issuer_whitelist(1),
        blacklist: CardBlacklist::empty(1),
    };
    let tdes = PurseAlgorithm::Tdes;
    let sm4 = PurseAlgorithm::Sm4(Sm4Rules::BRIEF);

    step(
        "Issuer personalises two cards (keys diversified from the master keys by the card number)",
    );
    let mut card_a = InProcess::new(issue(tdes, TEST_ASN, true)?);
    println!(
        "  card B is issued the GlobalPlatform way on a blank SE: the card manager creates the\n  \
         transit issuer's security domain and gives it its keys; under the SSD's own secure\n  \
         channel (SCP03, C-MAC + C-DEC + R-MAC + R-ENC) the purse package is loaded and installed\n  \
         and personalised with STORE DATA DGIs, the secret ones encrypted under the SSD's key"
    );
    let mut card_b = InProcess::new(crate::gp_issue::issue(sm4, CARD_B_ASN).context("card B")?);
    let id_a = identity(&mut card_a)?;
    let id_b = identity(&mut card_b)?;
    println!(
        "  card A: 3DES e-purse + second ticket type, number {}",
        id_a.masked_number()
    );
    println!(
        "  card B: SM4 e-purse (SM4 rules: e-purse brief §5.7, uncertain), number {}",
        id_b.masked_number()
    );

    step(
        "Load point: ¥50.00 onto each card (MAC1 checked by the issuer load host, MAC2 back to the card)",
    );
    for (name, card) in [("A", &mut card_a), ("B", &mut card_b)] {
        let (old, new, tac) = demo.load(card, &EP_AID, 5_000, at(8, 0, 0))?;
        println!(
            "  card {name}: {} → {}, TAC {}",
            yuan(old),
            yuan(new),
            hex::encode_upper(tac)
        );
    }
    let (old, new, _) = demo.load(&mut card_a, &SECOND_TICKET_AID, 10, at(8, 1, 0))?;
    println!("  card A second ticket: {old} rides → {new} rides");

    step(
        "Bus 901 (flat fare): the validator's PSAM makes MAC1 and checks MAC2; the card writes the trip records",
    );
    for (name, card) in [("A", &mut card_a), ("B", &mut card_b)] {
        let text = demo.ride(
            card,
            GateRole::Single,
            StationRef::new(BUS_LINE, 0),
            at(8, 30, 0),
        )?;
        println!("  card {name}: {text}");
    }
    let params = PurchaseParams {
        aid: SECOND_TICKET_AID.to_vec(),
        key_index: TEST_KEY_INDEX,
        amount: 1,
        datetime: at(8, 31, 0).bytes(),
        composite: None,
    };
    match completed("second ticket", demo.bus.purchase(&mut card_a, params)?)? {
        Record::Purchase(r) => println!(
            "  card A pays a ride with its second ticket: {} → {} rides, e-purse untouched",
            r.balance_before,
            r.balance_after()
        ),
        other => bail!("second ticket ride gave {other:?}"),
    }

    step(
        "Metro: entry and exit gates, the fare from the fare table by distance, a transfer discount",
    );
    let text = demo.ride(
        &mut card_a,
        GateRole::Entry,
        StationRef::new(1, 1),
        at(9, 0, 0),
    )?;
    println!("  card A enters line 1 station 1: {text}");
    let text = demo.ride(
        &mut card_a,
        GateRole::Exit,
        StationRef::new(1, 6),
        at(9, 25, 0),
    )?;
    println!("  card A leaves at line 1 station 6: {text}");
    let text = demo.ride(
        &mut card_b,
        GateRole::Entry,
        StationRef::new(2, 1),
        at(9, 5, 0),
    )?;
    println!("  card B enters line 2 station 1: {text}");
    let text = demo.ride(
        &mut card_b,
        GateRole::Exit,
        StationRef::new(2, 3),
        at(9, 15, 0),
    )?;
    println!("  card B leaves at line 2 station 3: {text}");
    let text = demo.ride(
        &mut card_b,
        GateRole::Single,
        StationRef::new(BUS_LINE, 0),
        at(9, 30, 0),
    )?;
    println!("  card B takes bus 901 within 30 minutes: {text}");

    step(
        "Power cut in the middle of a debit, at every persistent write of it; each cut is followed by a re-tap",
    );
    torn_purchases(&mut demo, &mut card_a)?;

    step(
        "Blacklist: card B is listed (version 2); the bus validator blocks it with a PSAM-made MAC",
    );
    demo.blacklist = CardBlacklist::from_unsorted(2, vec![CARD_B_ASN.0]);
    let snapshot = tap(&mut card_b)?;
    ensure!(
        screen(&snapshot, &demo.whitelist, &demo.blacklist) == Screening::Block,
        "card B was not screened as blacklisted"
    );
    let (flow, first) = BlockFlow::start(
        snapshot.card.clone(),
        BlockMode::Temporary,
        &mut demo.bus.sam,
    );
    drive(flow, first, transmit(&mut card_b)).map_err(|e| anyhow::anyhow!("blocking: {e}"))?;
    let answer = card_b.transmit(&commands::select(&EP_AID))?;
    ensure!(
        answer.sw == StatusWord(0x6A81),
        "a blocked card answered SELECT with {:?}",
        answer.sw
    );
    println!("  card B blocked: SELECT now answers 6A81, no fare can be taken from it");

    step("Back office: the terminals' uploads, every TAC recomputed from the master TAC key");
    let uploads: Vec<SettlementRecord> = [
        export::settlement_records(demo.load_point.journal().entries()),
        demo.bus.records(),
        demo.metro.records(),
    ]
    .concat();
    let (checked, grey) = clear(&uploads)?;
    println!(
        "  {} records uploaded (upload.jsonl), {checked} TACs verified, {grey} grey",
        uploads.len()
    );

    step(
        "No fen created or lost: each card's balance is its cleared loads minus its cleared fares",
    );
    for (name, card, asn) in [("A", &mut card_a, TEST_ASN), ("B", &mut card_b, CARD_B_ASN)] {
        let (mut loaded, mut fares) = (0u64, 0u64);
        for r in uploads.iter().filter(|r| r.asn == asn.0 && r.aid == EP_AID) {
            if r.transaction_type == 0x02 {
                loaded += u64::from(r.amount);
            } else {
                fares += u64::from(r.amount);
            }
        }
        let actual = if name == "B" {
            // Blocked: the back office knows its balance from its latest record.
            uploads
                .iter()
                .filter(|r| r.asn == asn.0 && r.aid == EP_AID)
                .max_by_key(|r| r.datetime)
                .map(|r| r.balance_after)
                .context("no record of card B")?
        } else {
            balance(card, &EP_AID)?
        };
        ensure!(
            loaded.checked_sub(fares) == Some(u64::from(actual)),
            "card {name} holds {actual} fen, its cleared transactions say {loaded} − {fares}"
        );
        println!(
            "  card {name}: {} = {} loaded − {} in fares",
            yuan(actual),
            yuan(loaded as u32),
            yuan(fares as u32)
        );
    }
    let upload = dir.join("upload.jsonl");
    std::fs::write(&upload, export::json_lines(&uploads))
        .with_context(|| format!("writing {}", upload.display()))?;

    phone(&mut demo, &dir)?;

    step("Conformance suite (JT/T 1059.8 style): the simulated SE, then the terminal");
    let mut reports = Vec::new();
    let mut totals = (0, 0);
    for (target, features) in [
        ("sim", profile::SAMPLE_SIM),
        ("terminal", profile::SAMPLE_TERMINAL),
    ] {
        let result = conformance(target, features)?;
        let pass = result.count(Verdict::Pass);
        let bad = result.count(Verdict::Fail) + result.count(Verdict::Inconclusive);
        println!(
            "  {target}: {pass} PASS, {} N/A, {} FAIL, {} INCONCLUSIVE of {} items",
            result.count(Verdict::NotApplicable),
            result.count(Verdict::Fail),
            result.count(Verdict::Inconclusive),
            result.results.len()
        );
        let html_path = dir.join(format!("conformance-{target}.html"));
        let junit_path = dir.join(format!("conformance-{target}.xml"));
        std::fs::write(&html_path, html(&result))
            .with_context(|| format!("writing {}", html_path.display()))?;
        std::fs::write(&junit_path, junit(&result))
            .with_context(|| format!("writing {}", junit_path.display()))?;
        reports.push(html_path);
        totals.0 += pass;
        totals.1 += bad;
    }
    ensure!(
        totals.1 == 0,
        "{} conformance items FAILED or were INCONCLUSIVE",
        totals.1
    );

    step("The card survives the process: state saved, read back, same balance");
    let path = args.state.clone().unwrap_or_else(|| dir.join("card-a.ykt"));
    let before = balance(&mut card_a, &EP_AID)?;
    let card = card_a.into_card();
    crate::state::save(&path, &card)?;
    let (restored, _) = crate::state::load_or_create(&path, Box::new(OsEntropy::new()?), || {
        bail!("the state file {} vanished", path.display())
    })?;
    let mut restored = InProcess::new(restored);
    let after = balance(&mut restored, &EP_AID)?;
    ensure!(
        before == after,
        "balance changed across save and load: {before} → {after}"
    );
    println!(
        "  {} → {} (file {})",
        yuan(before),
        yuan(after),
        path.display()
    );

    println!(
        "\nDone: 2 cards and a phone card opened, topped up, transferred and returned through the TSM; {} records, {checked} TACs verified, no fen created or lost, {} conformance items passed.",
        uploads.len(),
        totals.0
    );
    println!("  journals and the settlement upload: {}", dir.display());
    for r in &reports {
        println!("  conformance report: {}", r.display());
    }
    Ok(())
}

/// Cuts power at each persistent write of a ¥1.00 bus fare in turn. After each cut the card is
/// tapped again: the validator finds its grey entry and recovers it (GET BALANCE, GET
/// TRANSACTION PROVE, MAC2 checked by the PSAM that still holds the session), or, if the card
/// was not charged, runs the purchase again. Each cut and re-tap costs exactly one fare.
fn torn_purchases(demo: &mut Demo, card: &mut InProcess) -> anyhow::Result<()> {
    let (mut rolled_back, mut recovered) = (0u32, 0u32);
    let bar = progress(20, "cuts");
    for cut in 1u64.. {
        let before = balance(card, &EP_AID)?;
        let params = |second: u8| PurchaseParams {
            aid: EP_AID.to_vec(),
            key_index: TEST_KEY_INDEX,
            amount: 100,
            datetime: at(10, 0, second).bytes(),
            composite: None,
        };
        card.card_mut().tear().arm_at(cut);
        let outcome = demo.bus.purchase(card, params(0));
        let fired = !card.card_mut().tear().is_armed();
        card.card_mut().tear().disarm();
        match outcome? {
            TapOutcome::Completed { .. } if !fired => break, // every write has been cut once
            TapOutcome::Grey { .. } => {}
            other => bail!("torn purchase at write {cut}: {other:?}"),
        }
        card.card_mut().power_on();
        let torn = balance(card, &EP_AID)?;
        match demo.bus.purchase(card, params(30))? {
            TapOutcome::Recovered { .. } => {
                ensure!(
                    torn + 100 == before,
                    "recovered a debit the card did not make"
                );
                recovered += 1;
            }
            TapOutcome::Completed { .. } => {
                ensure!(
                    torn == before,
                    "charged again after a debit that went through"
                );
                rolled_back += 1;
            }
            other => bail!("re-tap after the cut at write {cut}: {other:?}"),
        }
        let after = balance(card, &EP_AID)?;
        ensure!(
            after + 100 == before,
            "cut at write {cut}: the balance moved by {} fen over the cut and the re-tap",
            i64::from(before) - i64::from(after)
        );
        bar.set_length(bar.length().unwrap_or(0).max(cut + 1));
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "  {} cuts: {rolled_back} left the card as before (the re-tap paid the fare), {recovered} had debited it (the re-tap recovered the proof, nothing charged twice)",
        rolled_back + recovered
    );
    Ok(())
}

/// Settlement's first check: every record's TAC, recomputed from the master TAC key.
/// The phone: a blank SE, the wallet and the TSM over HTTP (JT/T 1059.5 and .6): enrol, open
/// card in one download-and-personalise flow, top-up by remote payment, a bus ride at the
/// validator, balance and records read offline, transfer to a new phone, card return.
fn phone(demo: &mut Demo, dir: &Path) -> anyhow::Result<()> {
    use crate::wallet::{Bar, CardSe, HttpTsm, StateFile, now_ms};
    use ykt_tsm::Management;
    use ykt_wallet::{DeviceKey, Links, Progress, Wallet, WalletState};

    step("Phone: the TSM over HTTP (SQLite, keys in a software KMS), a wallet, a blank SE");
    let tsm_dir = dir.join("tsm");
    let db = format!("sqlite://{}?mode=rwc", dir.join("tsm.db").display());
    for stale in [
        "tsm.db",
        "tsm.db-wal",
        "tsm.db-shm",
        "wallet-1.sealed",
        "wallet-2.sealed",
    ] {
        match std::fs::remove_file(dir.join(stale)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("clearing {}", dir.display())),
        }
    }
    let tsm = crate::tsm::RunningTsm::start(&db, &tsm_dir, "SPTSM-YKT-TEST")?;
    println!(
        "  TSM (SEI-TSM + SP-TSM) at {} (TLS 1.3, the wallets pin its key {}), database {}",
        tsm.url(),
        tsm.address()
            .pins()
            .first()
            .map(ToString::to_string)
            .unwrap_or_default(),
        dir.join("tsm.db").display()
    );
    let client = |address: &crate::tsm_link::TsmAddress| -> anyhow::Result<HttpTsm> {
        Ok(HttpTsm(address.client()?))
    };
    let passphrase = b"demo passphrase: the user's, never stored";
    let mut rng = crate::entropy::SystemRandom::new()?;
    let sdk = |e: ykt_wallet::WalletError| {
        let (code, text) = e.user_text();
        anyhow::anyhow!("{code}: {text}")
    };

    // Phone 1.
    let mut card = InProcess::new(crate::phone::blank_se(1)?);
    let state = WalletState {
        device_key: Some(DeviceKey::generate(&mut rng).context("device key")?),
        ..WalletState::default()
    };
    let mut file = StateFile::create(&dir.join("wallet-1.sealed"), passphrase, &state)?;
    let mut wallet = Wallet::new(state);
    let mut http = client(tsm.address())?;
    let bar = Bar::new("open card");
    let mut progress = |p: Progress| bar.report(p);
    let opened = {
        let mut se = CardSe {
            card: card.card_mut(),
            save: Box::new(|_| Ok(())),
        };
        let mut links = Links {
            tsm: &mut http,
            se: &mut se,
            persist: &mut file,
            progress: &mut progress,
        };
        wallet
            .enrol(
                &mut links,
                now_ms(),
                &mut rng,
                "SPTSM-YKT-TEST",
                "ykt demo phone",
            )
            .map_err(sdk)?;
        wallet
            .open_card(
                &mut links,
                now_ms(),
                &mut rng,
                Management::Authorized,
                "330400",
            )
            .map_err(sdk)?
    };
    bar.finish();
    let card_no = opened.card_no.clone();
    println!(
        "  device enrolled (SM2 key; every message SM2-SM3 signed, the TSM's key pinned); card {card_no} opened:\n  \
         the SEI-TSM made the transit issuer's security domain, handed its keys to the SP-TSM\n  \
         sealed to its SM2 key, the SP-TSM rotated them, loaded, installed and personalised the purse"
    );
    let bar = Bar::new("top-up");
    let mut progress = |p: Progress| bar.report(p);
    let topped = {
        let mut se = CardSe {
            card: card.card_mut(),
            save: Box::new(|_| Ok(())),
        };
        let mut links = Links {
            tsm: &mut http,
            se: &mut se,
            persist: &mut file,
            progress: &mut progress,
        };
        wallet
            .top_up(
                &mut links,
                now_ms(),
                &mut rng,
                &card_no,
                3_000,
                ykt_wallet::proposals::TEST_PAY_CHANNEL,
            )
            .map_err(sdk)?
    };
    bar.finish();
    println!(
        "  remote payment: order {} paid, online load (the TSM checked MAC1, sent MAC2, checked the TAC): balance {}",
        topped.order_id,
        yuan(topped.new_balance)
    );
    let text = demo.ride(
        &mut card,
        GateRole::Single,
        StationRef::new(BUS_LINE, 0),
        at(10, 0, 0),
    )?;
    println!("  the phone taps the bus validator: {text}");
    {
        let mut se = CardSe {
            card: card.card_mut(),
            save: Box::new(|_| Ok(())),
        };
        let mut quiet = |_: Progress| {};
        let mut links = Links {
            tsm: &mut http,
            se: &mut se,
            persist: &mut file,
            progress: &mut quiet,
        };
        let balance = wallet
            .balance(&mut links, now_ms(), &card_no)
            .map_err(sdk)?;
        let records = wallet.records(&mut links, &card_no).map_err(sdk)?;
        println!(
            "  the wallet reads the SE offline: balance {}, {} records",
            yuan(balance),
            records.len()
        );
    }

    // Transfer to phone 2, then card return.
    let bar = Bar::new("transfer");
    let mut progress = |p: Progress| bar.report(p);
    let code = {
        let mut se = CardSe {
            card: card.card_mut(),
            save: Box::new(|_| Ok(())),
        };
        let mut links = Links {
            tsm: &mut http,
            se: &mut se,
            persist: &mut file,
            progress: &mut progress,
        };
        wallet
            .transfer_out(&mut links, now_ms(), &mut rng, &card_no)
            .map_err(sdk)?
    };
    let mut card2 = InProcess::new(crate::phone::blank_se(2)?);
    let state2 = WalletState {
        device_key: Some(DeviceKey::generate(&mut rng).context("device key")?),
        ..WalletState::default()
    };
    let mut file2 = StateFile::create(&dir.join("wallet-2.sealed"), passphrase, &state2)?;
    let mut wallet2 = Wallet::new(state2);
    let (arrived, balance2, refund) = {
        let mut se = CardSe {
            card: card2.card_mut(),
            save: Box::new(|_| Ok(())),
        };
        let mut links = Links {
            tsm: &mut http,
            se: &mut se,
            persist: &mut file2,
            progress: &mut progress,
        };
        wallet2
            .enrol(
                &mut links,
                now_ms(),
                &mut rng,
                "SPTSM-YKT-TEST",
                "ykt demo phone 2",
            )
            .map_err(sdk)?;
        let arrived = wallet2
            .transfer_in(
                &mut links,
                now_ms(),
                &mut rng,
                &code,
                Management::Authorized,
            )
            .map_err(sdk)?;
        let balance2 = wallet2
            .balance(&mut links, now_ms(), &card_no)
            .map_err(sdk)?;
        let refund = wallet2
            .refund(&mut links, now_ms(), &mut rng, &card_no, "original-channel")
            .map_err(sdk)?;
        (arrived, balance2, refund)
    };
    bar.finish();
    ensure!(
        arrived.card_no == card_no,
        "the transferred card has another number"
    );
    ensure!(
        balance2 == refund,
        "refunded {refund} fen of a {balance2} fen balance"
    );
    ensure!(
        wallet.cards().is_empty() && wallet2.cards().is_empty(),
        "a card is left after the return"
    );
    println!(
        "  transfer: the old phone's purse locked, its balance escrowed, deleted; card {} arrives on the\n  \
         new phone with {}; card return: balance proven by the card, refund {}, card deleted",
        arrived.card_no,
        yuan(balance2),
        yuan(refund)
    );
    Ok(())
}

fn clear(records: &[SettlementRecord]) -> anyhow::Result<(usize, usize)> {
    let master = PurseKey::from_bytes(TEST_MASTER_DTK);
    let verifiers = [
        TacVerifier::new(PurseAlgorithm::Tdes, &master),
        TacVerifier::new(PurseAlgorithm::Sm4(Sm4Rules::BRIEF), &master),
    ];
    let (mut checked, mut grey) = (0, 0);
    for r in records {
        if r.status == RecordStatus::Grey {
            grey += 1;
        }
        let Some(tac) = r.tac else {
            continue;
        };
        let verifier = match r.algorithm_id {
            0x00 => &verifiers[0],
            id if id == Sm4Rules::BRIEF.algorithm_id => &verifiers[1],
            other => bail!("record #{}: unknown algorithm id {other:02X}", r.seq),
        };
        let input = if r.transaction_type == 0x02 {
            load_tac_input(
                r.balance_after,
                r.counter,
                r.amount,
                r.transaction_type,
                &r.terminal_id,
                &r.datetime,
            )
        } else {
            purchase_tac_input(
                r.amount,
                r.transaction_type,
                &r.terminal_id,
                r.ttsn.context("a purchase record without a TTSN")?,
                &r.datetime,
            )
        };
        let mut div = [0u8; 8];
        div.copy_from_slice(&r.asn[2..]);
        ensure!(
            verifier.verify(&div, &input, &tac),
            "record #{} ({}): the TAC does not verify",
            r.seq,
            r.kind()
        );
        checked += 1;
    }
    Ok((checked, grey))
}

fn conformance(target: &str, features: &str) -> anyhow::Result<Run> {
    let catalogue = Catalogue::builtin().context("loading the conformance catalogue")?;
    let registry = Registry::builtin();
    let config = RunConfig {
        profile: Profile::parse(features)?,
        only: None,
    };
    let info = RunInfo {
        target: target.to_owned(),
        profile: features.to_owned(),
        date: crate::conform::utc_now(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(format!("running the {target} items"));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let result = match target {
        "sim" => ykt_conformance::run(&catalogue, &registry, Target::Sim, &config, info),
        _ => ykt_conformance::run(&catalogue, &registry, Target::Terminal, &config, info),
    };
    spinner.finish_and_clear();
    Ok(result)
}
