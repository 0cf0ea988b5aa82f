//! Content management by a card manager applet: install, delete, selectability, delivery, all
//! inside the manager's transaction, and consistent across power cuts and state files.

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{
    Aid, Applet, AppletFactory, Atr, Card, CardError, Context, ManageError, SeededRandom, Selected,
};

use crate::support::{self, AID_A, AID_B, KIND, dump, ok, select, send};

const MANAGER_KIND: &str = "ykt.test.manager";
const MANAGER_AID: &str = "A000000151000000";
const NEW_AID: &str = "A0000006320101050001";
const SSD_AID: &str = "A000000151535041AA01";
const SHARED: ykt_card::ObjectId = ykt_card::ObjectId(1);

/// A card manager for tests. CLA 80:
/// * `E6 p1 00 Lc AID`: install a test applet at AID (p1 bit 08: selectable);
/// * `E7 00 00 Lc AID`: install, then fail with 6985;
/// * `E4 00 00 Lc AID`: delete;
/// * `F0 p1 00 Lc AID`: selectable (p1 = 01) or not (00);
/// * `E2 00 00 Lc L AID data`: deliver `data` to the applet's process_data;
/// * `F2`: list `L AID flags` per instance (flags 01 selectable, 02 manager).
struct Manager(Aid);

fn aid(hex_aid: &str) -> Aid {
    Aid::new(&hex::decode(hex_aid).unwrap()).unwrap()
}

fn sw(e: ManageError) -> StatusWord {
    e.status_word()
}

impl Applet for Manager {
    fn aid(&self) -> &Aid {
        &self.0
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
        let target = || Aid::new(&cmd.data).map_err(|_| StatusWord::WRONG_DATA);
        match cmd.ins {
            0xE6 => ctx
                .install_instance(KIND, &target()?, &cmd.data, cmd.p1 & 0x08 != 0)
                .map_err(sw)
                .map(|()| Vec::new()),
            0xE7 => {
                ctx.install_instance(KIND, &target()?, &cmd.data, true)
                    .map_err(sw)?;
                Err(StatusWord::CONDITIONS_NOT_SATISFIED)
            }
            0xE4 => ctx
                .delete_instance(&target()?)
                .map_err(sw)
                .map(|()| Vec::new()),
            0xF0 => ctx
                .set_selectable(&target()?, cmd.p1 == 1)
                .map_err(sw)
                .map(|()| Vec::new()),
            0xE2 => {
                let (&l, rest) = cmd.data.split_first().ok_or(StatusWord::WRONG_DATA)?;
                let (a, data) = rest
                    .split_at_checked(usize::from(l))
                    .ok_or(StatusWord::WRONG_DATA)?;
                let a = Aid::new(a).map_err(|_| StatusWord::WRONG_DATA)?;
                let inner = CommandApdu::new(0x80, 0xE2, 0x80, 0x00).with_data(data.to_vec());
                ctx.deliver(&a, &inner)
            }
            0xE8 => ctx
                .install_manager_instance(MANAGER_KIND, &target()?, &[], true)
                .map_err(sw)
                .map(|()| Vec::new()),
            0xEA => {
                let mut shared = ctx.card_objects().map_err(sw)?;
                if shared.exists(SHARED) {
                    shared.write(SHARED, 0, &cmd.data)?;
                } else {
                    shared.create(SHARED, &cmd.data)?;
                }
                Ok(Vec::new())
            }
            0xEC => Ok(ctx.card_objects().map_err(sw)?.read(SHARED)?.to_vec()),
            0xF2 => {
                let mut out = Vec::new();
                for i in ctx.instances().map_err(sw)? {
                    out.push(i.aid.as_bytes().len() as u8);
                    out.extend_from_slice(i.aid.as_bytes());
                    out.push(u8::from(i.selectable) | u8::from(i.manager) << 1);
                }
                Ok(out)
            }
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }
    fn reset_volatile(&mut self) {}
}

/// Test applets and the manager.
struct Library;

impl AppletFactory for Library {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        if kind == MANAGER_KIND {
            return Some(Box::new(Manager(aid.clone())));
        }
        support::Factory.create(kind, aid, params)
    }
}

/// A powered card: test applets A and B, the manager (granted), the library set.
fn card() -> Card {
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(7)));
    for a in [AID_A, AID_B] {
        support::install(&mut card, a).unwrap();
    }
    card.install(Box::new(Manager(aid(MANAGER_AID))), |_| Ok(()))
        .unwrap();
    card.grant_management(&aid(MANAGER_AID)).unwrap();
    card.set_library(Box::new(Library));
    card.power_on();
    card
}

fn reload(card: &Card) -> Card {
    let mut c = Card::load_state(
        &card.save_state(),
        Atr::default_t1(),
        Box::new(SeededRandom::new(7)),
        &Library,
    )
    .unwrap();
    c.set_library(Box::new(Library));
    c.power_on();
    c
}

fn apdu(ins: u8, p1: u8, data: &str) -> String {
    format!("80{ins:02X}{p1:02X}00{:02X}{data}", data.len() / 2)
}

fn manage(card: &mut Card, ins: u8, p1: u8, data: &str) -> Vec<u8> {
    select(card, MANAGER_AID);
    send(card, &apdu(ins, p1, data))
}

fn applets(card: &Card) -> Vec<String> {
    card.applets()
        .map(|a| hex::encode_upper(a.as_bytes()))
        .collect()
}

#[test]
fn install_selectable_then_select_and_use() {
    let mut card = card();
    assert_eq!(manage(&mut card, 0xE6, 0x0C, NEW_AID), [0x90, 0x00]);
    assert!(applets(&card).contains(&NEW_AID.to_string()));
    // The new instance's install() created its objects: the dump works.
    let d = dump(&mut card, NEW_AID);
    assert!(!d.is_empty());
    ok(&mut card, "80100100");
    // It survives a state file and a power cycle.
    let mut again = reload(&card);
    assert!(applets(&again).contains(&NEW_AID.to_string()));
    assert_ne!(dump(&mut again, NEW_AID), d);
}

#[test]
fn installed_but_not_selectable_until_made_so() {
    let mut card = card();
    assert_eq!(manage(&mut card, 0xE6, 0x04, NEW_AID), [0x90, 0x00]);
    let sel = format!("00A40400{:02X}{NEW_AID}", NEW_AID.len() / 2);
    assert_eq!(send(&mut card, &sel), [0x6A, 0x82]);
    assert_eq!(manage(&mut card, 0xF0, 0x01, NEW_AID), [0x90, 0x00]);
    select(&mut card, NEW_AID);
    // Locking an existing applet: SELECT no longer reaches it, after a reload either (B: no
    // other AID has B's as a prefix).
    assert_eq!(manage(&mut card, 0xF0, 0x00, AID_B), [0x90, 0x00]);
    let sel_b = format!("00A40400{:02X}{AID_B}", AID_B.len() / 2);
    assert_eq!(send(&mut card, &sel_b), [0x6A, 0x82]);
    let mut again = reload(&card);
    assert_eq!(send(&mut again, &sel_b), [0x6A, 0x82]);
    let list = manage(&mut again, 0xF2, 0, "");
    let a = hex::decode(AID_B).unwrap();
    let at = list.windows(a.len()).position(|w| w == a).unwrap();
    assert_eq!(list[at + a.len()], 0x00, "B is listed unselectable");
    // Unlocked again.
    assert_eq!(manage(&mut again, 0xF0, 0x01, AID_B), [0x90, 0x00]);
    select(&mut again, AID_B);
}

#[test]
fn a_failed_command_keeps_nothing() {
    let mut card = card();
    let before = card.save_state();
    assert_eq!(manage(&mut card, 0xE7, 0, NEW_AID), [0x69, 0x85]);
    assert!(!applets(&card).contains(&NEW_AID.to_string()));
    let after = reload(&card);
    assert!(!applets(&after).contains(&NEW_AID.to_string()));
    // The same AID installs cleanly afterwards.
    assert_eq!(manage(&mut card, 0xE6, 0x0C, NEW_AID), [0x90, 0x00]);
    assert_ne!(before, card.save_state());
}

#[test]
fn refusals_have_status_words() {
    let mut card = card();
    assert_eq!(
        manage(&mut card, 0xE6, 0x0C, AID_A),
        [0x6A, 0x80],
        "duplicate"
    );
    assert_eq!(manage(&mut card, 0xE4, 0, NEW_AID), [0x6A, 0x88], "no such");
    assert_eq!(
        manage(&mut card, 0xE4, 0, MANAGER_AID),
        [0x69, 0x85],
        "itself"
    );
    assert_eq!(
        manage(&mut card, 0xE2, 0, &format!("08{MANAGER_AID}01")),
        [0x69, 0x85]
    );
    // An ordinary applet is no card manager: the same requests through it are refused.
    let mut plain = support::card();
    assert_eq!(
        plain.grant_management(&aid(NEW_AID)),
        Err(CardError::InstallRejected(
            StatusWord::REFERENCED_DATA_NOT_FOUND
        ))
    );
}

#[test]
fn unknown_kind_without_library() {
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(7)));
    card.install(Box::new(Manager(aid(MANAGER_AID))), |_| Ok(()))
        .unwrap();
    card.grant_management(&aid(MANAGER_AID)).unwrap();
    card.power_on();
    assert_eq!(manage(&mut card, 0xE6, 0x0C, NEW_AID), [0x6A, 0x88]);
}

#[test]
fn delete_then_reinstall_gets_fresh_objects() {
    let mut card = card();
    select(&mut card, AID_B);
    ok(&mut card, "80107700");
    let used = dump(&mut card, AID_B);
    assert_eq!(manage(&mut card, 0xE4, 0, AID_B), [0x90, 0x00]);
    assert!(!applets(&card).contains(&AID_B.to_string()));
    let sel_b = format!("00A40400{:02X}{AID_B}", AID_B.len() / 2);
    assert_eq!(send(&mut card, &sel_b), [0x6A, 0x82]);
    let again = reload(&card);
    assert!(!applets(&again).contains(&AID_B.to_string()));
    assert_eq!(manage(&mut card, 0xE6, 0x0C, AID_B), [0x90, 0x00]);
    assert_ne!(
        dump(&mut card, AID_B),
        used,
        "a new namespace, fresh objects"
    );
}

#[test]
fn deliver_reaches_process_data_in_the_same_transaction() {
    let mut card = card();
    let r = manage(&mut card, 0xE2, 0, &format!("08{AID_A}05"));
    assert_eq!(r, [0, 0, 0, 1, 0x90, 0x00]);
    assert_eq!(
        manage(&mut card, 0xE2, 0, &format!("08{AID_A}")),
        [0x6A, 0x80],
        "the applet's own refusal comes back"
    );
    let list = manage(&mut card, 0xF2, 0, "");
    assert!(!list.is_empty());
}

/// A power cut at every persistent write of an install, of a delete and of a lock: after
/// power-on the card has the old content or the new, and its instance list agrees with it.
#[test]
fn torn_management_commands_are_atomic() {
    for (ins, p1, target, present_after) in
        [(0xE6u8, 0x0Cu8, NEW_AID, true), (0xE4, 0, AID_B, false)]
    {
        let base = card();
        let mut probe = reload(&base);
        select(&mut probe, MANAGER_AID);
        let w0 = probe.persistent_writes();
        assert_eq!(send(&mut probe, &apdu(ins, p1, target)), [0x90, 0x00]);
        let writes = probe.persistent_writes() - w0;
        assert!(writes > 2);
        for n in 1..=writes {
            let mut c = reload(&base);
            select(&mut c, MANAGER_AID);
            c.tear().arm_at(n);
            let cmd = hex::decode(apdu(ins, p1, target)).unwrap();
            assert_eq!(c.transmit(&cmd), Err(CardError::PowerLost));
            c.power_on();
            let present = applets(&c).contains(&target.to_string());
            let sel = format!("00A40400{:02X}{target}", target.len() / 2);
            let selectable = send(&mut c, &sel).ends_with(&[0x90, 0x00]);
            assert_eq!(present, selectable, "tear {n}: list and SELECT agree");
            if present {
                // Whichever content it is, an instance that is there is whole and usable.
                select(&mut c, target);
                ok(&mut c, "80100100");
            }
            // Through a state file too.
            let reloaded = reload(&c);
            assert_eq!(applets(&reloaded), applets(&c), "tear {n}");
            if n == writes {
                assert_eq!(
                    present, present_after,
                    "the last write completes the commit"
                );
            }
        }
    }
}

#[test]
fn a_manager_creates_a_manager_and_they_share_card_objects() {
    let mut card = card();
    assert_eq!(manage(&mut card, 0xE8, 0, SSD_AID), [0x90, 0x00]);
    assert_eq!(manage(&mut card, 0xEA, 0, "05"), [0x90, 0x00]);
    select(&mut card, SSD_AID);
    assert_eq!(send(&mut card, "80EC000000"), [0x05, 0x90, 0x00]);
    // The new manager manages: it installs an applet of its own.
    assert_eq!(send(&mut card, &apdu(0xE6, 0x0C, NEW_AID)), [0x90, 0x00]);
    let mut again = reload(&card);
    select(&mut again, SSD_AID);
    assert_eq!(send(&mut again, "80EC000000"), [0x05, 0x90, 0x00]);
    assert!(applets(&again).contains(&NEW_AID.to_string()));
    // An ordinary applet reaches no card objects.
    select(&mut again, AID_A);
    assert_eq!(send(&mut again, "80EC000000"), [0x6D, 0x00]);
}
