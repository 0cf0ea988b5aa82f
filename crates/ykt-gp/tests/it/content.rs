//! Card content management: LOAD of a library package, INSTALL (install, make selectable,
//! personalization, extradition, registry update), STORE DATA, DELETE, supplementary security
//! domains with their own keys and secure channel, and power cuts.

use sha2::Digest;
use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{
    Aid, Applet, AppletFactory, Atr, Card, CardError, Context, ObjectId, SeededRandom, Selected,
};
use ykt_gp::commands::load::{load_file, load_file_data_block};
use ykt_gp::commands::put_key::{KeyEncryption, encode_key_set};
use ykt_gp::{IsdFactory, IsdSetup, Package, install_isd};
use ykt_scp::{KeySet, SecurityLevel};

use crate::support::{Host, aes_keys, h, hx, open, scp03, send, setup};

const ELF: &str = "A0000006320101";
const MODULE: &str = "A000000632010100";
const APP: &str = "A00000063201010501";
const SSD: &str = "A000000151535041AA01";
const SSD_ELF: &str = "A0000001515350";
const SSD_MODULE: &str = "A000000151535041";
const ISD: &str = "A000000151000000";
const NOTE: ObjectId = ObjectId(1);

/// Library code for tests: an applet whose `install` creates a 16-byte note, whose
/// `process_data` stores the data (up to 16 bytes) in it, and which answers `80 CA` with it.
struct Notes(Aid);

impl Applet for Notes {
    fn aid(&self) -> &Aid {
        &self.0
    }
    fn kind(&self) -> &'static str {
        "test.notes"
    }
    fn install_params(&self) -> Vec<u8> {
        Vec::new()
    }
    fn select(&mut self, _: &mut Context<'_>) -> Result<Selected, StatusWord> {
        Ok(Selected::ok(Vec::new()))
    }
    fn install(&mut self, ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        ctx.create(NOTE, &[0; 16])
    }
    fn process_data(
        &mut self,
        ctx: &mut Context<'_>,
        cmd: &CommandApdu,
    ) -> Result<Vec<u8>, StatusWord> {
        if cmd.data.len() > 16 {
            return Err(StatusWord::WRONG_LENGTH);
        }
        ctx.write(NOTE, 0, &cmd.data)?;
        Ok(Vec::new())
    }
    fn process(&mut self, ctx: &mut Context<'_>, _: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        Ok(ctx.read(NOTE)?.to_vec())
    }
    fn reset_volatile(&mut self) {}
}

struct Library;

impl AppletFactory for Library {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        if kind == "test.notes" {
            return Some(Box::new(Notes(aid.clone())));
        }
        IsdFactory.create(kind, aid, params)
    }
}

fn aid(s: &str) -> Aid {
    Aid::new(&h(s)).unwrap()
}

fn gp_setup() -> IsdSetup {
    let (p, k) = scp03();
    let mut s = setup(p, k);
    s.packages.push(Package {
        elf: aid(ELF),
        version: [0x01, 0x02],
        modules: vec![(aid(MODULE), "test.notes".to_string())],
    });
    s
}

fn card() -> Card {
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(9)));
    card.set_library(Box::new(Library));
    install_isd(&mut card, &gp_setup()).unwrap();
    card.power_on();
    card
}

fn reload(card: &Card) -> Card {
    let mut c = Card::load_state(
        &card.save_state(),
        Atr::default_t1(),
        Box::new(SeededRandom::new(9)),
        &Library,
    )
    .unwrap();
    c.set_library(Box::new(Library));
    c.power_on();
    c
}

fn isd_session(card: &mut Card) -> Host {
    let (_, sw) = send(card, &h(&format!("00A4040008{ISD}")));
    assert_eq!(sw, 0x9000);
    let (p, k) = scp03();
    open(card, p, &k, SecurityLevel::ALL).unwrap()
}

fn lv(s: &str) -> String {
    format!("{:02X}{s}", s.len() / 2)
}

fn cmd(cla_ins_p1_p2: &str, data: &str) -> CommandApdu {
    if data.is_empty() {
        return CommandApdu::parse(&h(cla_ins_p1_p2)).unwrap();
    }
    CommandApdu::parse(&h(&format!(
        "{cla_ins_p1_p2}{:02X}{data}00",
        data.len() / 2
    )))
    .unwrap()
}

fn install_for_load(host: &mut Host, card: &mut Card, hash: &str) -> u16 {
    let data = format!("{}{}{}0000", lv(ELF), lv(""), lv(hash));
    host.send(card, &cmd("80E60200", &data)).1
}

/// LOAD in blocks of `block` bytes; returns the last SW.
fn load(host: &mut Host, card: &mut Card, file: &[u8], block: usize) -> u16 {
    let chunks: Vec<&[u8]> = file.chunks(block).collect();
    let mut sw = 0;
    for (i, c) in chunks.iter().enumerate() {
        let p1 = if i + 1 == chunks.len() { "80" } else { "00" };
        sw = host.send(card, &cmd(&format!("80E8{p1}{i:02X}"), &hx(c))).1;
        if sw != 0x9000 {
            return sw;
        }
    }
    sw
}

fn lfdb() -> Vec<u8> {
    load_file_data_block(&aid(ELF), [0x01, 0x02])
}

fn sha256(b: &[u8]) -> String {
    hx(&sha2::Sha256::digest(b))
}

fn install_app(host: &mut Host, card: &mut Card, p1: &str, instance: &str) -> u16 {
    let data = format!(
        "{}{}{}{}{}00",
        lv(ELF),
        lv(MODULE),
        lv(instance),
        lv("000000"),
        lv("C900")
    );
    host.send(card, &cmd(&format!("80E6{p1}00"), &data)).1
}

fn select(card: &mut Card, a: &str) -> u16 {
    send(card, &h(&format!("00A40400{}", lv(a)))).1
}

fn status_entries(host: &mut Host, card: &mut Card, p1: &str) -> (String, u16) {
    let (d, sw) = host.send(card, &cmd(&format!("80F2{p1}02"), "4F00"));
    (hx(&d), sw)
}

/// Loaded, installed, selected, personalised, locked, unlocked, deleted with its load file.
#[test]
fn load_install_personalise_lock_delete() {
    let mut card = card();
    let mut host = isd_session(&mut card);
    let file = load_file(&lfdb());
    assert_eq!(
        install_for_load(&mut host, &mut card, &sha256(&lfdb())),
        0x9000
    );
    assert_eq!(load(&mut host, &mut card, &file, 7), 0x9000);
    let (elfs, sw) = status_entries(&mut host, &mut card, "10");
    assert_eq!(sw, 0x9000);
    assert!(elfs.contains(&format!("4F07{ELF}9F700101")), "{elfs}");
    assert!(elfs.contains(&format!("8408{MODULE}")), "{elfs}");
    assert!(elfs.contains("CE020102"), "{elfs}");

    assert_eq!(install_app(&mut host, &mut card, "0C", APP), 0x9000);
    let (apps, _) = status_entries(&mut host, &mut card, "40");
    assert!(
        apps.contains(&format!("4F09{APP}9F700107C503000000CC08{ISD}")),
        "{apps}"
    );

    // Personalisation: INSTALL [for personalization], then STORE DATA to the ISD.
    let perso = format!("0000{}000000", lv(APP));
    assert_eq!(host.send(&mut card, &cmd("80E62000", &perso)).1, 0x9000);
    assert_eq!(
        host.send(&mut card, &cmd("80E28000", "0102030405")).1,
        0x9000
    );
    assert_eq!(select(&mut card, APP), 0x9000);
    let (note, sw) = send(&mut card, &h("80CA000000"));
    assert_eq!((hx(&note[..5]), sw), ("0102030405".into(), 0x9000));

    // Lock: SELECT no longer reaches it; unlock: it does again, also after a state file.
    let mut host = isd_session(&mut card);
    assert_eq!(host.send(&mut card, &cmd("80F04080", APP)).1, 0x9000);
    assert_eq!(select(&mut card, APP), 0x6A82);
    let mut card = reload(&card);
    assert_eq!(select(&mut card, APP), 0x6A82);
    let mut host = isd_session(&mut card);
    assert_eq!(host.send(&mut card, &cmd("80F04000", APP)).1, 0x9000);
    assert_eq!(select(&mut card, APP), 0x9000);

    // DELETE of the load file alone is refused while it has an instance; with P2 80 both go.
    let mut host = isd_session(&mut card);
    assert_eq!(
        host.send(&mut card, &cmd("80E40000", &format!("4F{}", lv(ELF))))
            .1,
        0x6985
    );
    assert_eq!(
        host.send(&mut card, &cmd("80E40080", &format!("4F{}", lv(ELF))))
            .1,
        0x9000
    );
    assert_eq!(select(&mut card, APP), 0x6A82);
    assert!(!card.applets().any(|a| a == &aid(APP)));
    let mut host = isd_session(&mut card);
    let (apps, _) = status_entries(&mut host, &mut card, "40");
    assert!(!apps.contains(APP), "{apps}");
    assert!(!status_entries(&mut host, &mut card, "20").0.contains(ELF));
    // It loads and installs again afterwards (fresh objects).
    assert_eq!(install_for_load(&mut host, &mut card, ""), 0x9000);
    assert_eq!(load(&mut host, &mut card, &file, 200), 0x9000);
    assert_eq!(install_app(&mut host, &mut card, "0C", APP), 0x9000);
    assert_eq!(select(&mut card, APP), 0x9000);
    assert_eq!(hx(&send(&mut card, &h("80CA000000")).0), "00".repeat(16));
}

#[test]
fn installed_then_made_selectable() {
    let mut card = card();
    let mut host = isd_session(&mut card);
    install_for_load(&mut host, &mut card, "");
    load(&mut host, &mut card, &load_file(&lfdb()), 50);
    assert_eq!(install_app(&mut host, &mut card, "04", APP), 0x9000);
    assert_eq!(
        select(&mut card, APP),
        0x6A82,
        "INSTALLED is not selectable"
    );
    let mut host = isd_session(&mut card);
    let (apps, _) = status_entries(&mut host, &mut card, "40");
    assert!(apps.contains(&format!("4F09{APP}9F700103")), "{apps}");
    let data = format!("0000{}{}0000", lv(APP), lv("000000"));
    assert_eq!(host.send(&mut card, &cmd("80E60800", &data)).1, 0x9000);
    assert_eq!(
        host.send(&mut card, &cmd("80E60800", &data)).1,
        0x6985,
        "already selectable"
    );
    assert_eq!(select(&mut card, APP), 0x9000);
}

#[test]
fn refusals_change_nothing() {
    let mut card = card();
    let mut host = isd_session(&mut card);
    let before = card.save_state();
    let ok_lfdb = lfdb();
    let cases: Vec<(&str, CommandApdu, u16)> = vec![
        (
            "LOAD without INSTALL [for load]",
            cmd("80E88000", "C400"),
            0x6985,
        ),
        (
            "INSTALL unknown ELF",
            cmd(
                "80E60C00",
                &format!(
                    "{}{}{}{}{}00",
                    lv("A0000006329999"),
                    lv(MODULE),
                    lv(APP),
                    lv("000000"),
                    lv("C900")
                ),
            ),
            0x6A88,
        ),
        (
            "INSTALL of a package not loaded",
            cmd(
                "80E60C00",
                &format!(
                    "{}{}{}{}{}00",
                    lv(ELF),
                    lv(MODULE),
                    lv(APP),
                    lv("000000"),
                    lv("C900")
                ),
            ),
            0x6A88,
        ),
        (
            "INSTALL without C9",
            cmd(
                "80E60C00",
                &format!(
                    "{}{}{}{}{}00",
                    lv(SSD_ELF),
                    lv(SSD_MODULE),
                    lv(SSD),
                    lv("804000"),
                    lv("")
                ),
            ),
            0x6A80,
        ),
        (
            "INSTALL SD module without the SD privilege",
            cmd(
                "80E60C00",
                &format!(
                    "{}{}{}{}{}00",
                    lv(SSD_ELF),
                    lv(SSD_MODULE),
                    lv(SSD),
                    lv("000000"),
                    lv("C900")
                ),
            ),
            0x6A80,
        ),
        (
            "INSTALL with a token",
            cmd(
                "80E60C00",
                &format!(
                    "{}{}{}{}{}{}",
                    lv(SSD_ELF),
                    lv(SSD_MODULE),
                    lv(SSD),
                    lv("804000"),
                    lv("C900"),
                    lv("AABB")
                ),
            ),
            0x6982,
        ),
        (
            "INSTALL trailing bytes",
            cmd(
                "80E60C00",
                &format!(
                    "{}{}{}{}{}0000",
                    lv(SSD_ELF),
                    lv(SSD_MODULE),
                    lv(SSD),
                    lv("804000"),
                    lv("C900")
                ),
            ),
            0x6A80,
        ),
        ("INSTALL short", cmd("80E60C00", &lv(SSD_ELF)), 0x6A80),
        (
            "INSTALL P2",
            cmd(
                "80E60C01",
                &format!(
                    "{}{}{}{}{}00",
                    lv(SSD_ELF),
                    lv(SSD_MODULE),
                    lv(SSD),
                    lv("804000"),
                    lv("C900")
                ),
            ),
            0x6A86,
        ),
        (
            "INSTALL for load, SHA-1 length hash",
            cmd(
                "80E60200",
                &format!("{}{}{}0000", lv(ELF), lv(""), lv(&"11".repeat(20))),
            ),
            0x6A80,
        ),
        (
            "INSTALL for load, ELF already there",
            cmd(
                "80E60200",
                &format!("{}{}{}0000", lv(SSD_ELF), lv(""), lv("")),
            ),
            0x6985,
        ),
        (
            "DELETE the ISD",
            cmd("80E40000", &format!("4F{}", lv(ISD))),
            0x6985,
        ),
        (
            "DELETE unknown",
            cmd("80E40000", &format!("4F{}", lv(APP))),
            0x6A88,
        ),
        (
            "DELETE with a token",
            cmd("80E40000", &format!("4F{}9E01AA", lv(SSD_ELF))),
            0x6982,
        ),
        (
            "DELETE bad P1",
            cmd("80E40100", &format!("4F{}", lv(SSD_ELF))),
            0x6A86,
        ),
        ("DELETE the last key set", cmd("80E40000", "D20130"), 0x6985),
        (
            "STORE DATA to the ISD, unknown tag",
            cmd("80E29000", "5F2001AA"),
            0x6A88,
        ),
        (
            "STORE DATA to the ISD, overlong IIN",
            cmd("80E29000", &format!("42{}", lv(&"11".repeat(17)))),
            0x6A80,
        ),
        (
            "SET STATUS of a load file",
            cmd("80F04080", SSD_ELF),
            0x6A88,
        ),
    ];
    for (what, c, expected) in &cases {
        let (_, sw) = host.send(&mut card, c);
        assert_eq!(sw, *expected, "{what}");
    }
    // A load file with a wrong hash, a block out of order, a file naming another package.
    assert_eq!(
        install_for_load(&mut host, &mut card, &"00".repeat(32)),
        0x9000
    );
    assert_eq!(
        load(&mut host, &mut card, &load_file(&ok_lfdb), 300),
        0x6A80,
        "hash"
    );
    assert_eq!(install_for_load(&mut host, &mut card, ""), 0x9000);
    assert_eq!(
        host.send(&mut card, &cmd("80E80001", "C400")).1,
        0x6A86,
        "block 1 first"
    );
    assert_eq!(install_for_load(&mut host, &mut card, ""), 0x9000);
    let other = load_file_data_block(&aid(ELF), [0x09, 0x09]);
    assert_eq!(
        load(&mut host, &mut card, &load_file(&other), 300),
        0x6A80,
        "unknown version"
    );
    assert_eq!(install_for_load(&mut host, &mut card, ""), 0x9000);
    assert_eq!(
        load(&mut host, &mut card, b"\xC4\x05YKT", 300),
        0x6A80,
        "truncated"
    );
    // Without a secure channel, content management is refused.
    let (_, sw) = send(&mut card, &h(&format!("00A4040008{ISD}")));
    assert_eq!(sw, 0x9000);
    let plain = format!(
        "80E60C00{:02X}{}{}{}{}{}00",
        5 + (SSD_ELF.len() + SSD_MODULE.len() + SSD.len()) / 2 + 3 + 2,
        lv(SSD_ELF),
        lv(SSD_MODULE),
        lv(SSD),
        lv("804000"),
        lv("C900")
    );
    assert_eq!(send(&mut card, &h(&plain)).1, 0x6982);
    let after = reload(&card);
    assert_eq!(
        after.applets().count(),
        reload(
            &Card::load_state(
                &before,
                Atr::default_t1(),
                Box::new(SeededRandom::new(9)),
                &Library
            )
            .unwrap()
        )
        .applets()
        .count()
    );
}

fn ssd_keys() -> KeySet {
    aes_keys(0x30, 0xA0)
}

/// Creates the SSD (Authorized Management) and gives it its first keys through the ISD.
fn create_ssd(card: &mut Card) {
    let mut host = isd_session(card);
    let data = format!(
        "{}{}{}{}{}00",
        lv(SSD_ELF),
        lv(SSD_MODULE),
        lv(SSD),
        lv("804000"),
        lv("C900")
    );
    assert_eq!(host.send(card, &cmd("80E60C00", &data)).1, 0x9000);
    let perso = format!("0000{}000000", lv(SSD));
    assert_eq!(host.send(card, &cmd("80E62000", &perso)).1, 0x9000);
    let (_, isd_keys) = scp03();
    let block = encode_key_set(&ssd_keys(), &KeyEncryption::Static(&isd_keys.keys)).unwrap();
    let dgi = format!("8001{}", lv(&hx(&block)));
    let (answer, sw) = host.send(card, &cmd("80E28800", &dgi));
    assert_eq!(sw, 0x9000);
    assert_eq!(answer[0], 0x30, "KVN then KCVs: {}", hx(&answer));
    assert_eq!(answer.len(), 10);
}

fn ssd_session(card: &mut Card, keys: &KeySet) -> Result<Host, u16> {
    assert_eq!(select(card, SSD), 0x9000);
    let (p, _) = scp03();
    let config = ykt_scp::HostConfig {
        keys: keys.clone(),
        protocol: p,
        level: SecurityLevel::ALL,
        security_domain_aid: Some(h(SSD)),
    };
    crate::support::open_with(card, config)
}

#[test]
fn supplementary_security_domain_with_its_own_keys() {
    let mut card = card();
    // Before its keys arrive, the SSD opens no channel.
    let mut host = isd_session(&mut card);
    let data = format!(
        "{}{}{}{}{}00",
        lv(SSD_ELF),
        lv(SSD_MODULE),
        lv(SSD),
        lv("804000"),
        lv("C900")
    );
    assert_eq!(host.send(&mut card, &cmd("80E60C00", &data)).1, 0x9000);
    assert_eq!(ssd_session(&mut card, &ssd_keys()).err(), Some(0x6A88));
    // Deleted, then created properly.
    let mut host = isd_session(&mut card);
    assert_eq!(
        host.send(&mut card, &cmd("80E40000", &format!("4F{}", lv(SSD))))
            .1,
        0x9000
    );
    create_ssd(&mut card);
    let mut host = isd_session(&mut card);
    let (apps, _) = status_entries(&mut host, &mut card, "40");
    assert!(
        apps.contains(&format!("4F0A{SSD}9F70010FC503804000CC08{ISD}")),
        "{apps}"
    );
    // The ISD's keys do not open the SSD; its own do.
    let (_, isd_keys) = scp03();
    assert!(ssd_session(&mut card, &isd_keys).is_err());
    let mut ssd = ssd_session(&mut card, &ssd_keys()).unwrap();
    // With Authorized Management it loads and installs under itself.
    assert_eq!(install_for_load(&mut ssd, &mut card, ""), 0x9000);
    assert_eq!(load(&mut ssd, &mut card, &load_file(&lfdb()), 100), 0x9000);
    assert_eq!(install_app(&mut ssd, &mut card, "0C", APP), 0x9000);
    let (own, _) = status_entries(&mut ssd, &mut card, "40");
    assert!(
        own.contains(&format!("CC0A{SSD}")) && own.contains(APP),
        "{own}"
    );
    assert!(
        !own.contains(&format!("CC08{ISD}")),
        "the ISD's entries are not the SSD's: {own}"
    );
    // It rotates its keys; the new ones open it, also after a state file.
    let new = aes_keys(0x31, 0xC0);
    let block = encode_key_set(&new, &KeyEncryption::Static(&ssd_keys().keys)).unwrap();
    let (_, sw) = ssd.send(
        &mut card,
        &CommandApdu::new(0x80, 0xD8, 0x30, 0x81)
            .with_data(block)
            .with_le(256),
    );
    assert_eq!(sw, 0x9000);
    let mut card = reload(&card);
    assert!(ssd_session(&mut card, &ssd_keys()).is_err());
    let mut ssd = ssd_session(&mut card, &new).unwrap();
    // The SSD cannot change the card state nor delete the ISD's content.
    assert_eq!(ssd.send(&mut card, &cmd("80F0807F", "")).1, 0x6982);
    assert_eq!(
        ssd.send(&mut card, &cmd("80E40000", &format!("4F{}", lv(SSD_ELF))))
            .1,
        0x6A88
    );
    // Extradition of its load file and application to the ISD, by the ISD: the SSD then has
    // nothing associated and goes alone; the application stays and is the ISD's.
    let mut host = isd_session(&mut card);
    assert_eq!(
        host.send(&mut card, &cmd("80E40000", &format!("4F{}", lv(SSD))))
            .1,
        0x6985
    );
    for moved in [APP, ELF] {
        let ext = format!("{}00{}000000", lv(ISD), lv(moved));
        assert_eq!(
            host.send(&mut card, &cmd("80E61000", &ext)).1,
            0x9000,
            "{moved}"
        );
    }
    let ext = format!("{}00{}000000", lv("A0000001515350AAAA"), lv(APP));
    assert_eq!(
        host.send(&mut card, &cmd("80E61000", &ext)).1,
        0x6A88,
        "no such SD"
    );
    assert_eq!(
        host.send(&mut card, &cmd("80E40000", &format!("4F{}", lv(SSD))))
            .1,
        0x9000
    );
    assert_eq!(select(&mut card, SSD), 0x6A82);
    let mut host = isd_session(&mut card);
    let (apps, _) = status_entries(&mut host, &mut card, "40");
    assert!(
        apps.contains(&format!("4F09{APP}9F700107C503000000CC08{ISD}")),
        "{apps}"
    );
    assert!(card.applets().any(|a| a == &aid(APP)), "extradited: kept");
}

/// A power cut at every persistent write of INSTALL [for install and make selectable] and of
/// DELETE: afterwards the registry (GET STATUS) and the card's instances (SELECT) agree.
#[test]
fn torn_install_and_delete_keep_registry_and_instances_in_step() {
    let mut base = card();
    let mut host = isd_session(&mut base);
    install_for_load(&mut host, &mut base, "");
    load(&mut host, &mut base, &load_file(&lfdb()), 100);
    for (what, installed_before) in [("install", false), ("delete", true)] {
        let mut base = reload(&base);
        if installed_before {
            let mut host = isd_session(&mut base);
            assert_eq!(install_app(&mut host, &mut base, "0C", APP), 0x9000);
        }
        let send_it = |host: &mut Host, card: &mut Card| -> Result<(), CardError> {
            let c = if what == "install" {
                cmd(
                    "80E60C00",
                    &format!(
                        "{}{}{}{}{}00",
                        lv(ELF),
                        lv(MODULE),
                        lv(APP),
                        lv("000000"),
                        lv("C900")
                    ),
                )
            } else {
                cmd("80E40000", &format!("4F{}", lv(APP)))
            };
            let wrapped = host.session.wrap(&c).unwrap();
            card.transmit(&wrapped.to_bytes()).map(|_| ())
        };
        let mut probe = reload(&base);
        let mut host = isd_session(&mut probe);
        let w0 = probe.persistent_writes();
        send_it(&mut host, &mut probe).unwrap();
        let writes = probe.persistent_writes() - w0;
        assert!(writes > 3, "{what}: {writes}");
        for n in 1..=writes {
            let mut c = reload(&base);
            let mut host = isd_session(&mut c);
            c.tear().arm_at(n);
            assert_eq!(send_it(&mut host, &mut c), Err(CardError::PowerLost));
            c.power_on();
            let selectable = select(&mut c, APP) == 0x9000;
            let mut host = isd_session(&mut c);
            let (apps, _) = status_entries(&mut host, &mut c, "40");
            assert_eq!(
                apps.contains(APP),
                selectable,
                "{what}, tear {n}: registry and SELECT agree"
            );
            if n == writes {
                assert_eq!(
                    selectable, !installed_before,
                    "{what}: the last write completes it"
                );
            }
        }
    }
}
