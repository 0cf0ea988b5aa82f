//! GlobalPlatform personalisation (docs/purse-dgi.md): an empty instance created by a card
//! manager from the library kind, built from STORE DATA blocks of DGIs, equivalent byte for byte
//! to the issuer factory's; the host-side builder. Refusals and tearing: `perso_refusals`;
//! random blocks: `perso_props`.
//!
//! The card manager here is a stand-in written for these tests (the GP card manager is another
//! crate's): `80 E6 0C 00 L AID params` installs a purse instance (INSTALL [for install and make
//! selectable], reduced), `80 E6 20 00 AID` names the instance to personalise (INSTALL [for
//! personalization]), and `80 E2 P1 P2 data` forwards STORE DATA to it with P1/P2 as received
//! (`80 D0 ..` forwards an INS D0 the same way).
//! Its "decryption" of blocks flagged encrypted is the identity: the DEK is the security
//! domain's business, the applet receives plaintext either way.

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::testing::{Step, parse_transcript};
use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, Context, Entropy, Selected};
use ykt_crypto::purse::{PurseAlgorithm, Sm4Rules};
use ykt_purse::perso::{Block, Builder, dgi};
use ykt_purse::testing::{
    TEST_ASN, TEST_SECOND_TICKET_ASN, danger_test_entropy, test_card_3des, test_card_data,
    test_issuer,
};
use ykt_purse::{EP_AID, KIND, PurseAppletFactory, PurseProfile, SECOND_TICKET_AID};

use crate::commands::check_transcript_state;
use crate::support::*;

pub const MANAGER_KIND: &str = "ykt.test.perso-manager";
pub const MANAGER_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

/// The test card manager (see the module docs).
pub struct Manager {
    aid: Aid,
    target: Option<Aid>,
}

impl Applet for Manager {
    fn aid(&self) -> &Aid {
        &self.aid
    }
    fn kind(&self) -> &'static str {
        MANAGER_KIND
    }
    fn install_params(&self) -> Vec<u8> {
        Vec::new()
    }
    fn select(&mut self, _ctx: &mut Context<'_>) -> Result<Selected, StatusWord> {
        Ok(Selected::ok(Vec::new()))
    }
    fn process(&mut self, ctx: &mut Context<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        match (cmd.ins, cmd.p1) {
            (0xE6, 0x0C) => {
                let (&l, rest) = cmd.data.split_first().ok_or(StatusWord::WRONG_DATA)?;
                let (aid, params) = rest
                    .split_at_checked(usize::from(l))
                    .ok_or(StatusWord::WRONG_DATA)?;
                let aid = Aid::new(aid).map_err(|_| StatusWord::WRONG_DATA)?;
                ctx.install_instance(KIND, &aid, params, true)
                    .map_err(|e| e.status_word())?;
                Ok(Vec::new())
            }
            (0xE6, 0x20) => {
                self.target = Some(Aid::new(&cmd.data).map_err(|_| StatusWord::WRONG_DATA)?);
                Ok(Vec::new())
            }
            (0xE2 | 0xD0, _) => {
                let target = self
                    .target
                    .clone()
                    .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
                // D0 forwards its own INS: how the purse answers what is no STORE DATA.
                let inner =
                    CommandApdu::new(0x80, cmd.ins, cmd.p1, cmd.p2).with_data(cmd.data.clone());
                ctx.deliver(&target, &inner)
            }
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }
    fn reset_volatile(&mut self) {
        self.target = None;
    }
}

/// The card's library: the test manager and the purse.
pub struct Library;

impl AppletFactory for Library {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        if kind == MANAGER_KIND {
            return Some(Box::new(Manager {
                aid: aid.clone(),
                target: None,
            }));
        }
        PurseAppletFactory.create(kind, aid, params)
    }
}

/// A powered card with the test manager (granted management) and the library, and `entropy`.
pub fn gp_card_with(entropy: Box<dyn Entropy + Send>) -> Card {
    let mut card = Card::new(Atr::default_t1(), entropy);
    let aid = Aid::new(&MANAGER_AID).unwrap();
    card.install(
        Box::new(Manager {
            aid: aid.clone(),
            target: None,
        }),
        |_| Ok(()),
    )
    .unwrap();
    card.grant_management(&aid).unwrap();
    card.set_library(Box::new(Library));
    card.power_on();
    card
}

/// [`gp_card_with`] the test card's scripted entropy (e-purse.md §8 randoms).
pub fn gp_card() -> Card {
    gp_card_with(Box::new(danger_test_entropy()))
}

/// Re-creates a card from its state through the library.
pub fn reload_gp(state: &[u8]) -> Card {
    let mut card = Card::load_state(
        state,
        Atr::default_t1(),
        Box::new(danger_test_entropy()),
        &Library,
    )
    .unwrap();
    card.set_library(Box::new(Library));
    card.power_on();
    card
}

fn select_manager(card: &mut Card) {
    assert_eq!(select_aid(card, &MANAGER_AID), 0x9000);
}

/// INSTALL of an empty purse at `aid` with `params`; the status word.
pub fn install_empty(card: &mut Card, aid: &[u8], params: &[u8]) -> u16 {
    select_manager(card);
    let mut data = vec![aid.len() as u8];
    data.extend_from_slice(aid);
    data.extend_from_slice(params);
    let mut c = vec![0x80, 0xE6, 0x0C, 0x00, data.len() as u8];
    c.extend_from_slice(&data);
    sw(card, &c)
}

/// INSTALL [for personalization] of `aid`, then nothing else.
pub fn for_personalisation(card: &mut Card, aid: &[u8]) {
    select_manager(card);
    let mut c = vec![0x80, 0xE6, 0x20, 0x00, aid.len() as u8];
    c.extend_from_slice(aid);
    assert_eq!(sw(card, &c), 0x9000);
}

/// One STORE DATA through the manager (already selected, target set).
pub fn store_data(card: &mut Card, p1: u8, p2: u8, data: &[u8]) -> u16 {
    let mut c = vec![0x80, 0xE2, p1, p2, data.len() as u8];
    c.extend_from_slice(data);
    sw(card, &c)
}

/// Sends every block; the status words.
pub fn send_blocks(card: &mut Card, blocks: &[Block]) -> Vec<u16> {
    blocks
        .iter()
        .map(|b| store_data(card, b.p1, b.p2, &b.data))
        .collect()
}

pub fn builder(alg: PurseAlgorithm) -> Builder {
    Builder::issue(
        &test_issuer(alg).unwrap(),
        PurseProfile::EPURSE,
        &test_card_data(TEST_ASN),
    )
    .unwrap()
}

/// Installs and personalises the §8 test purse under `alg` on `card`.
pub fn personalise(card: &mut Card, alg: PurseAlgorithm) {
    assert_eq!(install_empty(card, &EP_AID, &[]), 0x9000);
    for_personalisation(card, &EP_AID);
    let blocks = builder(alg).blocks().unwrap();
    assert!(blocks.len() > 1, "the test should cross block boundaries");
    for s in send_blocks(card, &blocks) {
        assert_eq!(s, 0x9000);
    }
}

/// A GP card with the §8 test purse personalised through DGIs.
pub fn gp_test_card(alg: PurseAlgorithm) -> Card {
    let mut card = gp_card();
    personalise(&mut card, alg);
    card
}

pub const SM4: PurseAlgorithm = PurseAlgorithm::Sm4(Sm4Rules::BRIEF);

/// A DGI as bytes.
pub fn dgi_bytes(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    dgi::encode(&mut out, tag, value).unwrap();
    out
}

/// The builder's DGIs as (tag, value).
pub fn dgis(alg: PurseAlgorithm) -> Vec<(u16, Vec<u8>)> {
    builder(alg)
        .dgis()
        .into_iter()
        .map(|d| (d.tag, d.value.to_vec()))
        .collect()
}

/// One DGI per block, secrets flagged encrypted, the last flagged last: (P1, P2, data).
pub fn one_per_block(dgis: &[(u16, Vec<u8>)]) -> Vec<(u8, u8, Vec<u8>)> {
    let n = dgis.len();
    dgis.iter()
        .enumerate()
        .map(|(i, (tag, value))| {
            let mut p1 = dgi::P1_DGI;
            if dgi::must_be_encrypted(*tag) {
                p1 |= dgi::P1_ENCRYPTED;
            }
            if i + 1 == n {
                p1 |= dgi::P1_LAST_BLOCK;
            }
            (p1, i as u8, dgi_bytes(*tag, value))
        })
        .collect()
}

/// An empty purse at EP_AID, the manager selected and pointed at it.
pub fn empty_card() -> Card {
    let mut card = gp_card();
    assert_eq!(install_empty(&mut card, &EP_AID, &[]), 0x9000);
    for_personalisation(&mut card, &EP_AID);
    card
}

/// Asserts that the purse at `aid` is not personalised: SELECT 6283, payment commands 6985.
pub fn assert_empty(card: &mut Card, aid: &[u8]) {
    assert_eq!(select_aid(card, aid), 0x6283);
    assert_eq!(sw(card, &h("805C000204")), 0x6985);
    assert_eq!(sw(card, &init_load_cmd(1)), 0x6985);
}

// --- equivalence with the factory ---

#[test]
fn dgi_personalised_purse_replays_the_factory_transcripts() {
    for (file, alg) in [
        ("ep_s8_1_load_3des.apdu", PurseAlgorithm::Tdes),
        ("ep_s8_2_purchase_3des.apdu", PurseAlgorithm::Tdes),
        ("ep_s8_2_composite_3des.apdu", PurseAlgorithm::Tdes),
        ("ep_s8_3_sm4.apdu", SM4),
        ("ep_s8_3_sm4_composite.apdu", SM4),
        ("ep_select_files.apdu", PurseAlgorithm::Tdes),
        ("ep_load_errors.apdu", PurseAlgorithm::Tdes),
        ("ep_load_replay.apdu", PurseAlgorithm::Tdes),
        ("ep_purchase_errors.apdu", PurseAlgorithm::Tdes),
        ("ep_composite_errors.apdu", PurseAlgorithm::Tdes),
        ("ep_pin.apdu", PurseAlgorithm::Tdes),
        ("ep_pin_unblock.apdu", PurseAlgorithm::Tdes),
        ("ep_pin_unblock_sm4.apdu", SM4),
        ("ep_block.apdu", PurseAlgorithm::Tdes),
        ("ep_block_sm4.apdu", SM4),
        ("ep_card_block.apdu", PurseAlgorithm::Tdes),
    ] {
        let mut card = gp_test_card(alg);
        assert!(check_transcript_state(&mut card, file) > 0, "{file}");
    }
}

/// The personalisation transcripts of tests/data (blocks from perso_host.py, independent of this
/// crate), and the builder's blocks equal to theirs, byte for byte.
#[test]
fn perso_transcripts_match_the_builder() {
    for (file, alg) in [
        ("perso_s8_3des.apdu", PurseAlgorithm::Tdes),
        ("perso_s8_sm4.apdu", SM4),
    ] {
        let mut card = gp_card();
        assert!(check_transcript_state(&mut card, file) > 0);
        let text = std::fs::read_to_string(data_path(file)).unwrap();
        let sent: Vec<Vec<u8>> = parse_transcript(&text)
            .unwrap()
            .into_iter()
            .filter_map(|step| match step {
                Step::Exchange { command, .. } if command[1] == 0xE2 && command.len() > 5 => {
                    Some(command)
                }
                _ => None,
            })
            .collect();
        let built: Vec<Vec<u8>> = builder(alg)
            .blocks()
            .unwrap()
            .iter()
            .map(|b| b.command().to_bytes())
            .collect();
        assert_eq!(built, sent, "{file}");
    }
}

#[test]
fn second_ticket_personalised_through_dgis_replays_its_transcript() {
    let mut card = gp_test_card(PurseAlgorithm::Tdes);
    // Empty install parameters: the AID's default profile (the second ticket's).
    assert_eq!(install_empty(&mut card, &SECOND_TICKET_AID, &[]), 0x9000);
    for_personalisation(&mut card, &SECOND_TICKET_AID);
    let blocks = Builder::issue(
        &test_issuer(PurseAlgorithm::Tdes).unwrap(),
        PurseProfile::SECOND_TICKET,
        &test_card_data(TEST_SECOND_TICKET_ASN),
    )
    .unwrap()
    .blocks()
    .unwrap();
    assert!(send_blocks(&mut card, &blocks).iter().all(|&s| s == 0x9000));
    check_transcript_state(&mut card, "t2_select.apdu");
}

#[test]
fn dgi_personalised_purse_has_the_factory_snapshot_and_keys() {
    for alg in [PurseAlgorithm::Tdes, SM4] {
        let mut factory = ykt_purse::testing::danger_test_card(vec![match alg {
            PurseAlgorithm::Tdes => test_card_3des().unwrap(),
            _ => ykt_purse::testing::test_card_sm4().unwrap(),
        }])
        .unwrap();
        let mut gp = gp_test_card(alg);
        let keys = Keys::test(alg);
        for card in [&mut factory, &mut gp] {
            select_ep(card);
            load(card, &keys, 5000);
            purchase(card, &keys, 1200, 7);
            purchase_with(card, &keys, 300, 8, &composite_cache(0x5A));
            assert_eq!(maintenance(card, &keys, 0x84, 0x1E, 0x00, 0x00), 0x9000);
            assert_eq!(maintenance(card, &keys, 0x84, 0x18, 0x00, 0x00), 0x9000);
        }
        assert_eq!(snapshot(&mut factory, &EP_AID), snapshot(&mut gp, &EP_AID));
        // And after a state file round trip.
        let mut again = reload_gp(&gp.save_state());
        assert_eq!(
            snapshot(&mut again, &EP_AID),
            snapshot(&mut factory, &EP_AID)
        );
    }
}

#[test]
fn personalised_ef1a_records_and_initial_values_reach_the_card() {
    let mut record = [0u8; 128];
    record[0] = 0x27;
    record[1] = 0x03;
    record[2..10].fill(0xA5);
    let mut data = test_card_data(TEST_ASN);
    data.balance = 777;
    data.online_counter = 5;
    data.offline_counter = 9;
    let b = Builder::issue(
        &test_issuer(PurseAlgorithm::Tdes).unwrap(),
        PurseProfile::EPURSE,
        &data,
    )
    .unwrap()
    .with_ef1a_record(3, record)
    .unwrap();
    let mut card = empty_card();
    assert!(
        send_blocks(&mut card, &b.blocks().unwrap())
            .iter()
            .all(|&s| s == 0x9000)
    );
    select_ep(&mut card);
    assert_eq!(read_record(&mut card, 0x1A, 3).unwrap(), record.to_vec());
    assert_eq!(read_record(&mut card, 0x1A, 2).unwrap()[1], 0x02);
    let s = snapshot(&mut card, &EP_AID);
    assert_eq!((s.balance, s.online, s.offline), (777, 5, 9));
}

// --- the empty instance ---

#[test]
fn an_empty_instance_answers_select_and_refuses_everything_else() {
    let mut card = empty_card();
    let before = card.save_state();
    let (fci, s) = send(&mut card, &h("00A4040008A000000632010105"));
    assert_eq!(s, 0x6283);
    assert_eq!(hx(&fci), "6F108408A000000632010105A5049F080102");
    for cmd in [
        "805C000204",                       // GET BALANCE
        "805000020B0100000001112233445566", // INITIALIZE FOR LOAD
        "805001020B0100000001112233445566", // INITIALIZE FOR PURCHASE
        "805A0006020001",                   // GET TRANSACTION PROVE
        "0020000003123456",                 // VERIFY
        "0084000004",                       // GET CHALLENGE
        "841E000004 00000000",              // APPLICATION BLOCK
    ] {
        assert_eq!(sw(&mut card, &h(cmd)), 0x6985, "{cmd}");
    }
    assert_eq!(sw(&mut card, &h("00B0950000")), 0x6A82, "no EF15 yet");
    assert_eq!(
        sw(&mut card, &h("80CA000000")),
        0x6D00,
        "unknown INS as ever"
    );
    assert_eq!(before, card.save_state());
    // It survives a state file, still empty, and can be personalised then.
    let mut again = reload_gp(&card.save_state());
    assert_empty(&mut again, &EP_AID);
    for_personalisation(&mut again, &EP_AID);
    let blocks = builder(PurseAlgorithm::Tdes).blocks().unwrap();
    assert!(
        send_blocks(&mut again, &blocks)
            .iter()
            .all(|&s| s == 0x9000)
    );
    assert_eq!(select_ep(&mut again), 0x9000);
}

#[test]
fn install_parameters_choose_the_profile() {
    let over = |card: &mut Card, aid: &[u8], balance: u32| {
        for_personalisation(card, aid);
        let mut v = balance.to_be_bytes().to_vec();
        v.extend_from_slice(&[0; 4]);
        store_data(card, dgi::P1_DGI, 0, &dgi_bytes(dgi::PURSE, &v))
    };
    let mut card = gp_card();
    let mut small = PurseProfile::EPURSE;
    small.max_balance = 50;
    let aid1 = h("A0000006320101050001");
    let aid2 = h("A0000006320101050002");
    let aid3 = h("A0000006320101050003");
    let mut c9 = vec![0xC9, 10];
    c9.extend_from_slice(&small.to_params());
    c9.extend_from_slice(&h("EF00"));
    assert_eq!(install_empty(&mut card, &aid1, &small.to_params()), 0x9000);
    assert_eq!(install_empty(&mut card, &aid2, &c9), 0x9000);
    assert_eq!(install_empty(&mut card, &aid3, &h("C900")), 0x9000);
    assert_eq!(over(&mut card, &aid1, 51), 0x6A80);
    assert_eq!(over(&mut card, &aid2, 51), 0x6A80);
    assert_eq!(over(&mut card, &aid2, 50), 0x9000);
    assert_eq!(over(&mut card, &aid3, 100_000), 0x9000);
    assert_eq!(over(&mut card, &aid3, 100_001), 0x6A80);
    assert_eq!(install_empty(&mut card, &SECOND_TICKET_AID, &[]), 0x9000);
    assert_eq!(over(&mut card, &SECOND_TICKET_AID, 101), 0x6A80);
    // Parameters of no known form: the library has no such code (6A88), nothing installed.
    let before = card.save_state();
    for bad in ["0102", "C905", "C901C9", "C90A0000"] {
        assert_eq!(
            install_empty(&mut card, &h("A0000006320101050009"), &h(bad)),
            0x6A88,
            "{bad}"
        );
    }
    assert_eq!(before, card.save_state());
}

// --- the builder ---

#[test]
fn builder_blocks_respect_their_size_and_order() {
    // The largest DGI is EF17 (63 bytes encoded), or an EF1A record (131) when personalised.
    for max in [63, 100, 200, 255] {
        let blocks = builder(PurseAlgorithm::Tdes)
            .with_max_block_data(max)
            .blocks()
            .unwrap();
        assert!(blocks.iter().all(|x| x.data.len() <= max));
        assert!(
            blocks
                .iter()
                .enumerate()
                .all(|(n, x)| usize::from(x.p2) == n)
        );
        assert!(blocks.last().unwrap().is_last());
        assert_eq!(blocks.iter().filter(|x| x.is_last()).count(), 1);
        // Secrets only in encrypted blocks, and every DGI whole inside one block.
        for x in &blocks {
            for (tag, _) in dgi::parse(&x.data).unwrap() {
                assert!(!dgi::must_be_encrypted(tag) || x.encrypted());
            }
        }
        let mut card = empty_card();
        assert!(send_blocks(&mut card, &blocks).iter().all(|&s| s == 0x9000));
        assert_eq!(select_ep(&mut card), 0x9000);
    }
    assert!(matches!(
        builder(PurseAlgorithm::Tdes)
            .with_max_block_data(62)
            .blocks(),
        Err(ykt_purse::IssueError::BlockTooSmall)
    ));
    let with_record = builder(PurseAlgorithm::Tdes)
        .with_ef1a_record(1, [0; 128])
        .unwrap();
    assert!(matches!(
        with_record.with_max_block_data(130).blocks(),
        Err(ykt_purse::IssueError::BlockTooSmall)
    ));
    assert!(matches!(
        builder(PurseAlgorithm::Tdes).with_ef1a_record(5, [0; 128]),
        Err(ykt_purse::IssueError::InvalidRecordNumber(5))
    ));
    assert!(matches!(
        builder(PurseAlgorithm::Tdes).with_ef1a_record(0, [0; 128]),
        Err(ykt_purse::IssueError::InvalidRecordNumber(0))
    ));
    let mut bad_pin = test_card_data(TEST_ASN);
    bad_pin.pin = vec![0x1A];
    assert!(matches!(
        Builder::issue(
            &test_issuer(PurseAlgorithm::Tdes).unwrap(),
            PurseProfile::EPURSE,
            &bad_pin
        ),
        Err(ykt_purse::IssueError::InvalidPin)
    ));
}

#[test]
fn builder_debug_output_redacts_secrets() {
    let b = builder(PurseAlgorithm::Tdes);
    let text = format!("{b:?} {:?} {:?}", b.dgis(), b.blocks().unwrap());
    assert!(text.contains("[redacted]"));
    let keys = Keys::test(PurseAlgorithm::Tdes);
    for k in [&keys.dlk, &keys.dpk, &keys.dtk] {
        assert!(!text.to_uppercase().contains(&hx(k.expose())));
    }
    assert!(!text.contains("123456"));
}
