//! `ykt demo`: the system end to end on embedded defaults.
//!
//! An issuer personalises two cards (3DES, and SM4 with a second ticket type); a load point loads
//! them through the issuer load host; a bus validator and a metro gate take fares through a
//! purchase SAM; power is cut in the middle of a debit and the card proves what happened; the back
//! office checks every TAC; the card is saved to a state file and read back. Every step talks to
//! the cards in APDUs through `ykt_transport::InProcess`.

use std::path::PathBuf;

use anyhow::{Context as _, bail, ensure};
use clap::Args;
use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_card::{Atr, Card};
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_purse::testing::{
    TEST_ASN, TEST_MASTER_DLK, TEST_MASTER_DPK, TEST_MASTER_DTK, TEST_SECOND_TICKET_ASN,
    test_card_data, test_issuer,
};
use ykt_purse::{Asn, EP_AID, PurseProfile, SECOND_TICKET_AID};
use ykt_terminal::card_data::CardIdentity;
use ykt_terminal::load::{LoadFlow, LoadParams, LoadRecord};
use ykt_terminal::load_host::IssuerLoadHost;
use ykt_terminal::purchase::{CappRecord, PurchaseFlow, PurchaseParams, PurchaseRecord};
use ykt_terminal::sam::{MasterKey, PurchaseSam, SoftwareSam};
use ykt_terminal::tac::{load_tac_input, purchase_tac_input, verify_tac};
use ykt_terminal::{DriveError, commands, drive};
use ykt_transport::{CardChannel, InProcess, TransportError};

use crate::entropy::OsEntropy;

/// Options of `ykt demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to save the 3DES card's state at the end (default: a file in the system's temp dir).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
}

const LOAD_POINT: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x10, 0x01];
const BUS: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x20, 0x01];
const METRO: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x30, 0x01];
const KEY_INDEX: u8 = 0x01;
/// Card B's number: the test card's with another serial.
const CARD_B_ASN: Asn = Asn([0x31, 0x04, 0x10, 0x00, 0x00, 0x00, 0x87, 0x65, 0x43, 0x21]);
// Transactions carry the terminal's clock; the demo uses a fixed day so its output is stable.
const DAY: [u8; 4] = [0x20, 0x26, 0x11, 0x25];

fn at(hour: u8, minute: u8) -> [u8; 7] {
    [DAY[0], DAY[1], DAY[2], DAY[3], hour, minute, 0x00]
}

fn yuan(fen: u32) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

fn masters(key: [u8; 16]) -> Vec<MasterKey> {
    vec![MasterKey {
        index: KEY_INDEX,
        version: KEY_INDEX,
        key: PurseKey::from_bytes(key),
    }]
}

/// What the back office keeps of every transaction, to check its TAC.
enum Cleared {
    Load(PurseAlgorithm, LoadRecord),
    Purchase(PurseAlgorithm, PurchaseRecord),
}

struct Demo {
    host: IssuerLoadHost,
    bus: SoftwareSam,
    metro: SoftwareSam,
    cleared: Vec<Cleared>,
}

fn transmit<'a>(
    channel: &'a mut InProcess,
) -> impl FnMut(&CommandApdu) -> Result<ResponseApdu, TransportError> + 'a {
    move |command| channel.transmit(command)
}

fn algorithm_of(id: u8) -> anyhow::Result<PurseAlgorithm> {
    PurseAlgorithm::from_algorithm_id(id, Sm4Rules::BRIEF)
        .with_context(|| format!("unknown algorithm id {id:02X}"))
}

impl Demo {
    fn load(
        &mut self,
        card: &mut InProcess,
        aid: &[u8],
        amount: u32,
        time: [u8; 7],
    ) -> anyhow::Result<LoadRecord> {
        let params = LoadParams {
            aid: aid.to_vec(),
            key_index: KEY_INDEX,
            amount,
            terminal_id: LOAD_POINT,
            datetime: time,
        };
        let (flow, first) = LoadFlow::start(params, &mut self.host);
        let record = drive(flow, first, transmit(card)).context("load")?;
        self.cleared.push(Cleared::Load(
            algorithm_of(record.algorithm_id)?,
            record.clone(),
        ));
        Ok(record)
    }

    fn purchase(
        &mut self,
        card: &mut InProcess,
        metro: bool,
        aid: &[u8],
        amount: u32,
        time: [u8; 7],
        composite: Option<Vec<CappRecord>>,
    ) -> Result<PurchaseRecord, DriveError<TransportError>> {
        let params = PurchaseParams {
            aid: aid.to_vec(),
            key_index: KEY_INDEX,
            amount,
            datetime: time,
            composite,
        };
        let sam = if metro {
            &mut self.metro
        } else {
            &mut self.bus
        };
        let (flow, first) = PurchaseFlow::start(params, sam);
        let record = drive(flow, first, transmit(card))?;
        if let Ok(alg) = algorithm_of(record.algorithm_id) {
            self.cleared.push(Cleared::Purchase(alg, record.clone()));
        }
        Ok(record)
    }
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

/// The metro entry record of EF1A (e-purse.md §2): tag 27 02, length 7D, valid, composite, entered.
fn metro_entry_record() -> Vec<u8> {
    let mut r = vec![0u8; 128];
    r[..5].copy_from_slice(&[0x27, 0x02, 0x7D, 0x01, 0x01]);
    r[14] = 0x01;
    r[38..44].copy_from_slice(&METRO);
    r
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

fn step(text: &str) {
    println!("\n▸ {text}");
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    println!(
        "ykt demo — transit e-purse cards, load point, validators and back office, in-process"
    );
    let mut demo = Demo {
        host: IssuerLoadHost::new(masters(TEST_MASTER_DLK), Sm4Rules::BRIEF),
        bus: SoftwareSam::new(BUS, 1, masters(TEST_MASTER_DPK), Sm4Rules::BRIEF),
        metro: SoftwareSam::new(METRO, 1, masters(TEST_MASTER_DPK), Sm4Rules::BRIEF),
        cleared: Vec::new(),
    };

    step(
        "Issuer personalises two cards (keys diversified from the master keys by the card number)",
    );
    let mut tdes = InProcess::new(issue(PurseAlgorithm::Tdes, TEST_ASN, true)?);
    let mut sm4 = InProcess::new(issue(
        PurseAlgorithm::Sm4(Sm4Rules::BRIEF),
        CARD_B_ASN,
        false,
    )?);
    let card_a = identity(&mut tdes)?;
    println!(
        "  card A: 3DES e-purse + second ticket type, number {}",
        card_a.masked_number()
    );
    println!(
        "  card B: SM4 e-purse (SM4 rules: e-purse brief §5.7, uncertain), number {}",
        identity(&mut sm4)?.masked_number()
    );

    step(
        "Load point: ¥50.00 onto each card (MAC1 checked by the issuer load host, MAC2 back to the card)",
    );
    for (name, card) in [("A", &mut tdes), ("B", &mut sm4)] {
        let r = demo.load(card, &EP_AID, 5_000, at(0x08, 0x00))?;
        println!(
            "  card {name}: {} → {}, TAC {}",
            yuan(r.old_balance),
            yuan(r.new_balance),
            hex::encode_upper(r.tac)
        );
    }
    let r = demo.load(&mut tdes, &SECOND_TICKET_AID, 10, at(0x08, 0x01))?;
    println!(
        "  card A second ticket: {} rides → {} rides",
        r.old_balance, r.new_balance
    );

    step(
        "Bus validator: ¥2.00 fare (MAC1 from the purchase SAM, MAC2 checked by it, TAC from the card)",
    );
    for (name, card) in [("A", &mut tdes), ("B", &mut sm4)] {
        let r = demo.purchase(card, false, &EP_AID, 200, at(0x08, 0x30), None)?;
        println!(
            "  card {name}: {} → {}, TTSN {}, TAC {}",
            yuan(r.balance_before),
            yuan(r.balance_after()),
            r.ttsn,
            hex::encode_upper(r.tac)
        );
    }
    let r = demo.purchase(
        &mut tdes,
        false,
        &SECOND_TICKET_AID,
        1,
        at(0x08, 0x31),
        None,
    )?;
    println!(
        "  card A pays a ride with its second ticket: {} → {} rides, e-purse untouched",
        r.balance_before,
        r.balance_after()
    );

    step(
        "Metro gate: composite purchase with the entry record cached and committed with the debit",
    );
    let r = demo.purchase(
        &mut tdes,
        true,
        &EP_AID,
        0,
        at(0x09, 0x00),
        Some(vec![CappRecord {
            p1: 0x02,
            p2: 0xD0,
            data: metro_entry_record(),
        }]),
    )?;
    println!(
        "  entry: type {:02X}, {} → {}, TAC {}",
        r.transaction_type,
        yuan(r.balance_before),
        yuan(r.balance_after()),
        hex::encode_upper(r.tac)
    );
    let r = demo.purchase(
        &mut tdes,
        true,
        &EP_AID,
        400,
        at(0x09, 0x25),
        Some(vec![CappRecord {
            p1: 0x02,
            p2: 0xD0,
            data: metro_entry_record(),
        }]),
    )?;
    println!(
        "  exit:  type {:02X}, {} → {}, TAC {}",
        r.transaction_type,
        yuan(r.balance_before),
        yuan(r.balance_after()),
        hex::encode_upper(r.tac)
    );

    step("Power cut in the middle of a debit, at every persistent write of it");
    torn_purchases(&mut demo, &mut tdes)?;

    step("Back office: every TAC recomputed from the master TAC key");
    let dtk = PurseKey::from_bytes(TEST_MASTER_DTK);
    let mut good = 0;
    for c in &demo.cleared {
        let ok = match c {
            Cleared::Load(alg, r) => verify_tac(
                alg,
                &dtk,
                &r.card.diversifier(),
                &load_tac_input(
                    r.new_balance,
                    r.online_counter,
                    r.amount,
                    0x02,
                    &r.terminal_id,
                    &r.datetime,
                ),
                &r.tac,
            ),
            Cleared::Purchase(alg, r) => verify_tac(
                alg,
                &dtk,
                &r.card.diversifier(),
                &purchase_tac_input(
                    r.amount,
                    r.transaction_type,
                    &r.terminal_id,
                    r.ttsn,
                    &r.datetime,
                ),
                &r.tac,
            ),
        };
        ensure!(ok, "a TAC did not verify");
        good += 1;
    }
    println!("  {good} of {} TACs verified", demo.cleared.len());

    step("No fen created or lost: card A's balance is its cleared loads minus its cleared fares");
    let (mut loaded, mut fares) = (0u32, 0u32);
    for c in &demo.cleared {
        match c {
            Cleared::Load(_, r) if r.card == card_a => loaded += r.amount,
            Cleared::Purchase(_, r) if r.card == card_a => fares += r.amount,
            _ => {}
        }
    }
    let actual = balance(&mut tdes, &EP_AID)?;
    ensure!(
        loaded.checked_sub(fares) == Some(actual),
        "card A holds {actual} fen, its cleared transactions say {loaded} − {fares}"
    );
    println!(
        "  {} on the card = {} loaded − {} in fares",
        yuan(actual),
        yuan(loaded),
        yuan(fares)
    );

    step("The card survives the process: state saved, read back, same balance");
    let keep = args.state.is_some();
    let path = args.state.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ykt-demo-{}.ykt", std::process::id()))
    });
    let before = balance(&mut tdes, &EP_AID)?;
    let card = tdes.into_card();
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
    if keep {
        println!(
            "  {} → {} (file {})",
            yuan(before),
            yuan(after),
            path.display()
        );
    } else {
        std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
        println!(
            "  {} → {} (through a temporary state file)",
            yuan(before),
            yuan(after)
        );
    }

    println!(
        "\nDone: 2 cards, {} transactions, every TAC verified, no fen created or lost.",
        demo.cleared.len()
    );
    Ok(())
}

/// Cuts power at each persistent write of a ¥1.00 debit in turn; after each cut the card powers up,
/// the terminal compares the balance, and where the debit went through, GET TRANSACTION PROVE gives
/// its MAC2 (checked by the SAM) and TAC (checked by the back office), so the fare is neither lost
/// nor charged twice.
fn torn_purchases(demo: &mut Demo, card: &mut InProcess) -> anyhow::Result<()> {
    let (mut rolled_back, mut proven) = (0u32, 0u32);
    for cut in 1u64.. {
        let before = balance(card, &EP_AID)?;
        card.card_mut().tear().arm_at(cut);
        let time = at(0x10, 0x00);
        let outcome = demo.purchase(card, false, &EP_AID, 100, time, None);
        card.card_mut().tear().disarm();
        match outcome {
            Ok(_) => break, // the debit needed fewer writes than `cut`: every write has been cut once
            Err(DriveError::Transport(_)) => {}
            Err(other) => bail!("torn purchase: {other}"),
        }
        card.card_mut().power_on();
        let after = balance(card, &EP_AID)?;
        if after == before {
            rolled_back += 1;
            continue;
        }
        ensure!(
            after + 100 == before,
            "torn debit changed the balance by {} fen",
            i64::from(before) - i64::from(after)
        );
        // EF18 record 1 is the newest: its counter is the one the debit used (e-purse.md §4.8).
        let record = card
            .transmit_checked(&CommandApdu::new(0x00, 0xB2, 0x01, 0xC4).with_le(0x17))
            .context("READ RECORD")?;
        let counter = u16::from_be_bytes([record[0], record[1]]);
        let prove = card.transmit(&commands::get_transaction_prove(0x06, counter))?;
        ensure!(
            prove.sw == StatusWord::SUCCESS && prove.data.len() == 8,
            "GET TRANSACTION PROVE: {:?}",
            prove.sw
        );
        let mac2: [u8; 4] = prove.data[0..4].try_into()?;
        demo.bus
            .verify_mac2(&mac2)
            .context("MAC2 from the transaction proof")?;
        let alg = PurseAlgorithm::Tdes;
        demo.cleared.push(Cleared::Purchase(
            alg,
            PurchaseRecord {
                card: identity(card)?,
                transaction_type: 0x06,
                balance_before: before,
                amount: 100,
                offline_counter: counter,
                ttsn: demo.bus.next_ttsn() - 1,
                key_version: KEY_INDEX,
                algorithm_id: alg.algorithm_id(),
                terminal_id: BUS,
                datetime: time,
                tac: prove.data[4..8].try_into()?,
                mac2,
            },
        ));
        proven += 1;
    }
    println!(
        "  {} cuts: {rolled_back} left the card as before (fare retried), {proven} completed the debit (proved by GET TRANSACTION PROVE)",
        rolled_back + proven
    );
    Ok(())
}
