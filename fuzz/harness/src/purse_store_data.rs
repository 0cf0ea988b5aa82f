//! `purse_store_data`: STORE DATA blocks of DGIs (docs/purse-dgi.md) delivered to an empty
//! purse instance, as a card manager delivers them after INSTALL [for personalization].
//!
//! The card holds a minimal card manager (`80 E6 ..` creates the empty purse at
//! `A000000632010105`, `80 E2 P1 P2 data` delivers STORE DATA to it with P1 and P2 as received,
//! in plaintext: decryption is the security domain's business) and the purse library.
//! Input: blocks in the crate's framing, each P1 ‖ P2 ‖ data. The card never panics, each
//! answer ends with a status word, a refused block (anything but `9000`) leaves the persistent
//! state unchanged; afterwards SELECT, GET BALANCE and READ BINARY of the purse answer with a
//! status word, refusals leaving the state unchanged, and the state file loads again.

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, Context, SeededRandom, Selected};

use crate::gp::{Checked, check_state_file_with};

const MANAGER_KIND: &str = "fuzz.perso-manager";
const MANAGER_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

struct Manager(Aid);

fn purse_aid() -> Aid {
    Aid::new(&ykt_purse::EP_AID).expect("8 bytes")
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
    fn select(&mut self, _: &mut Context<'_>) -> Result<Selected, StatusWord> {
        Ok(Selected::ok(Vec::new()))
    }
    fn process(&mut self, ctx: &mut Context<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        match cmd.ins {
            0xE6 => {
                ctx.install_instance(ykt_purse::KIND, &purse_aid(), &[], true)
                    .map_err(|e| e.status_word())?;
                Ok(Vec::new())
            }
            0xE2 => {
                let inner =
                    CommandApdu::new(0x80, 0xE2, cmd.p1, cmd.p2).with_data(cmd.data.clone());
                ctx.deliver(&purse_aid(), &inner)
            }
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }
    fn reset_volatile(&mut self) {}
}

struct Library;

impl AppletFactory for Library {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        if kind == MANAGER_KIND {
            return Some(Box::new(Manager(aid.clone())));
        }
        ykt_purse::PurseAppletFactory.create(kind, aid, params)
    }
}

fn card() -> Card {
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(8)));
    let aid = Aid::new(&MANAGER_AID).expect("8 bytes");
    card.install(Box::new(Manager(aid.clone())), |_| Ok(()))
        .expect("the manager installs");
    card.grant_management(&aid).expect("management");
    card.set_library(Box::new(Library));
    card.power_on();
    let mut select = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
    select.extend_from_slice(&MANAGER_AID);
    for cmd in [select, vec![0x80, 0xE6, 0x0C, 0x00, 0x00]] {
        let r = card.transmit(&cmd).expect("powered");
        assert!(
            r.ends_with(&[0x90, 0x00]),
            "setup command {}",
            crate::hex(&cmd)
        );
    }
    card
}

/// The target.
pub fn run(data: &[u8]) {
    let mut card = card();
    let mut checked = Checked::new(&card);
    for block in crate::commands(data).into_iter().take(32) {
        let [p1, p2, body @ ..] = block else {
            continue;
        };
        let body = &body[..body.len().min(255)];
        let mut cmd = vec![0x80, 0xE2, *p1, *p2, body.len() as u8];
        cmd.extend_from_slice(body);
        checked.transmit(&mut card, &cmd, |sw| sw == 0x9000);
    }
    let mut select = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
    select.extend_from_slice(&ykt_purse::EP_AID);
    for cmd in [
        select,
        vec![0x80, 0x5C, 0x00, 0x02, 0x04],
        vec![0x00, 0xB0, 0x95, 0x00, 0x00],
        vec![0x00, 0xB2, 0x01, 0xC4, 0x00],
    ] {
        checked.transmit(&mut card, &cmd, |sw| sw == 0x9000 || sw >> 8 == 0x61);
    }
    check_state_file_with(&card, &Library);
}
