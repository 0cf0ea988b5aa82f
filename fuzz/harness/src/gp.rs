//! The test card with the GlobalPlatform card manager shared by the card targets, set up as
//! `crates/ykt-gp/tests/it/support.rs` does (so the ISD transcripts replay on it): two plain
//! applets at `A000000632010105` and `A000000632010106`, then the ISD with SCP03 `i` = `70`,
//! AES-128 keys `40…`, `41…`, `42…` at KVN `30`, IIN `00112233`, CIN `0102030405060708`, CPLC
//! bytes `00`..`29`, entropy `SeededRandom::new(7)`. In addition the card's library knows the
//! security-domain package (preloaded) and the purse package `A0000006320101` (module
//! `A000000632010101`, not loaded), so that LOAD and INSTALL can create instances.

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, Context, SeededRandom, Selected};
use ykt_crypto::AesKey;
use ykt_gp::{IsdFactory, IsdSetup, Package, install_isd};
use ykt_scp::{HostConfig, HostSession, KeySet, Protocol, SecurityLevel};

/// The ISD's AID.
pub const ISD: [u8; 8] = ykt_gp::ISD_AID;
/// SELECT of the ISD.
pub const SELECT_ISD: [u8; 13] = [
    0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00,
];
/// The purse package's ELF AID.
pub const PURSE_ELF: [u8; 7] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01];
/// Its module.
pub const PURSE_MODULE: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x01];
/// The host challenge of every session.
pub const HOST_CHALLENGE: [u8; 8] = [0x11; 8];

/// An applet that answers SELECT and nothing else.
struct Plain(Aid);

impl Applet for Plain {
    fn aid(&self) -> &Aid {
        &self.0
    }
    fn kind(&self) -> &'static str {
        "fuzz.plain"
    }
    fn install_params(&self) -> Vec<u8> {
        Vec::new()
    }
    fn select(&mut self, _: &mut Context<'_>) -> Result<Selected, StatusWord> {
        Ok(Selected::ok(Vec::new()))
    }
    fn process(&mut self, _: &mut Context<'_>, _: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        Err(StatusWord::INS_NOT_SUPPORTED)
    }
    fn reset_volatile(&mut self) {}
}

/// The card's library: security domains, the purse and the plain applets.
pub struct Library;

impl AppletFactory for Library {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        if kind == "fuzz.plain" {
            return Some(Box::new(Plain(aid.clone())));
        }
        ykt_purse::PurseAppletFactory
            .create(kind, aid, params)
            .or_else(|| IsdFactory.create(kind, aid, params))
    }
}

fn aid(bytes: &[u8]) -> Aid {
    Aid::new(bytes).expect("a 5 to 16 byte AID")
}

/// The ISD's key set (KVN `30`).
pub fn keys() -> KeySet {
    let k = |b: u8| AesKey::from_slice(&[b; 16]).expect("16 bytes");
    KeySet::aes(0x30, k(0x40), k(0x41), k(0x42))
}

/// SCP03 `i` = `70`.
pub fn protocol() -> Protocol {
    Protocol::scp03(0x70).expect("i = 70")
}

/// A powered card as in the module docs, ISD selected. Built once; each call loads its state
/// file (with a fresh `SeededRandom::new(7)`: the set-up draws no random bytes, so the card
/// challenges are those of a card just built, and the session transcripts replay).
pub fn card() -> Card {
    static STATE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let state = STATE.get_or_init(|| build().save_state());
    let mut card = Card::load_state(
        state,
        Atr::default_t1(),
        Box::new(SeededRandom::new(7)),
        &Library,
    )
    .expect("the test card's state loads");
    card.set_library(Box::new(Library));
    card.power_on();
    let r = card.transmit(&SELECT_ISD).expect("powered");
    assert_eq!(&r[r.len() - 2..], [0x90, 0x00]);
    card
}

fn build() -> Card {
    let mut setup = IsdSetup::new(protocol(), keys());
    setup.iin = vec![0x00, 0x11, 0x22, 0x33];
    setup.cin = vec![1, 2, 3, 4, 5, 6, 7, 8];
    for (i, b) in setup.cplc.iter_mut().enumerate() {
        *b = i as u8;
    }
    setup.packages.push(Package {
        elf: aid(&PURSE_ELF),
        version: [0x01, 0x00],
        modules: vec![(aid(&PURSE_MODULE), ykt_purse::KIND.to_string())],
    });
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(7)));
    for a in [ykt_purse::EP_AID, ykt_purse::SECOND_TICKET_AID] {
        card.install(Box::new(Plain(aid(&a))), |_| Ok(()))
            .expect("plain applet");
    }
    card.set_library(Box::new(Library));
    install_isd(&mut card, &setup).expect("the ISD installs");
    card
}

/// True when a command answering `sw` may have changed the persistent state: success, data
/// pending (`61xx`, the command itself succeeded) or GP's warning `6310` (more data, committed
/// as for `9000`, ARCHITECTURE.md "ykt-card").
pub fn may_change_state(sw: u16) -> bool {
    sw == 0x9000 || sw >> 8 == 0x61 || sw == 0x6310
}

/// Sends `cmd` and checks the card's answer: a response with a status word, never a power
/// loss (no tearing is armed), and the persistent state unchanged unless the status word is
/// one of [`may_change_state`]. Gives the response. With `YKT_FUZZ_TRACE` set, each exchange
/// is printed (to follow a crash input).
pub fn transmit_checked(card: &mut Card, cmd: &[u8]) -> Vec<u8> {
    transmit_checked_with(card, cmd, may_change_state)
}

/// [`transmit_checked`] with the status words after which the state may differ.
pub fn transmit_checked_with(
    card: &mut Card,
    cmd: &[u8],
    may_change: impl Fn(u16) -> bool,
) -> Vec<u8> {
    Checked::new(card).transmit(card, cmd, may_change)
}

/// The checks of [`transmit_checked`] over a sequence of commands, encoding the state once per
/// command (the state after one command is the state before the next).
pub struct Checked {
    state: Vec<u8>,
}

impl Checked {
    /// Starts from `card`'s current state.
    pub fn new(card: &Card) -> Self {
        Self {
            state: card.save_state(),
        }
    }

    /// Sends `cmd` with the checks of [`transmit_checked_with`]; gives the response.
    pub fn transmit(
        &mut self,
        card: &mut Card,
        cmd: &[u8],
        may_change: impl Fn(u16) -> bool,
    ) -> Vec<u8> {
        let response = card
            .transmit(cmd)
            .unwrap_or_else(|e| panic!("card error {e:?} on {}", crate::hex(cmd)));
        let sw = crate::status_word(&response, cmd);
        if std::env::var_os("YKT_FUZZ_TRACE").is_some() {
            eprintln!(">> {}\n<< {}", crate::hex(cmd), crate::hex(&response));
        }
        let after = card.save_state();
        if !may_change(sw) {
            assert!(
                after == self.state,
                "command {} answered {sw:04X} but changed the persistent state",
                crate::hex(cmd)
            );
        }
        self.state = after;
        response
    }

    /// Takes the card's state as it is now (after commands sent unchecked).
    pub fn resync(&mut self, card: &Card) {
        self.state = card.save_state();
    }
}

/// The saved state loads again and saves to the same bytes.
pub fn check_state_file(card: &Card) {
    check_state_file_with(card, &Library);
}

/// [`check_state_file`] with the library `factory`.
pub fn check_state_file_with(card: &Card, factory: &dyn AppletFactory) {
    let state = card.save_state();
    let again = Card::load_state(
        &state,
        Atr::default_t1(),
        Box::new(SeededRandom::new(7)),
        factory,
    )
    .unwrap_or_else(|e| panic!("the card's own state file is refused: {e:?}"));
    assert!(
        again.save_state() == state,
        "the state file changed on reload"
    );
}

/// Opens a session with the ISD's keys at `level` (ISD selected); `None` when the card
/// refuses.
pub fn open(card: &mut Card, level: SecurityLevel) -> Option<HostSession> {
    let config = HostConfig {
        keys: keys(),
        protocol: protocol(),
        level,
        security_domain_aid: Some(ISD.to_vec()),
    };
    let (mut session, iu) = HostSession::initialize_update(config, &HOST_CHALLENGE).ok()?;
    let r = card.transmit(&iu.to_bytes()).ok()?;
    let resp = ResponseApdu::parse(&r).ok()?;
    if !resp.is_success() {
        return None;
    }
    let ea = session.on_initialize_update_response(&resp).ok()?;
    let r = card.transmit(&ea.to_bytes()).ok()?;
    let resp = ResponseApdu::parse(&r).ok()?;
    if !resp.is_success() {
        return None;
    }
    session.on_external_authenticate_response(&resp).ok()?;
    Some(session)
}
