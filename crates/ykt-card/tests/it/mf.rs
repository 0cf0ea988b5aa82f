//! Commands answered while the MF is current (`Applet::process_mf`): install order, fallback to
//! the dispatcher's MF rules, Le handling, commit and discard of staged writes, tearing.

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Applet, Atr, Card, CardError, Context, ObjectId, SeededRandom, Selected};

use crate::support::{self, AID_A, ok, send};

/// The MF file this applet answers: 6 bytes, read with `00 B0 96 00 Le` (a PSAM's EF16 shape).
const VALUE: ObjectId = ObjectId(1);

/// An applet with MF commands of its own.
///
/// While the MF is current: `00 B0 <80|sfi> 00 Le` reads [`VALUE`] when `sfi` is its SFI;
/// `80 40 00 00 01 b` fills the value with `b` (committed); `80 42 00 00 01 b` fills it, then fails
/// with `6985`; `80 44 00 00 01 b` fills it and then passes the command on (a misbehaving applet).
/// Anything else is passed on. When selected, every command gets `6D00`.
struct MfApplet {
    aid: Aid,
    sfi: u8,
    fill: u8,
}

impl MfApplet {
    fn install(card: &mut Card, aid: &str, sfi: u8, fill: u8) {
        let applet = MfApplet {
            aid: Aid::new(&hex::decode(aid).unwrap()).unwrap(),
            sfi,
            fill,
        };
        card.install(Box::new(applet), move |ctx| ctx.create(VALUE, &[fill; 6]))
            .unwrap();
    }

    fn fill(ctx: &mut Context<'_>, cmd: &CommandApdu) -> Result<(), StatusWord> {
        let [b] = cmd.data[..] else {
            return Err(StatusWord::WRONG_LENGTH);
        };
        ctx.write(VALUE, 0, &[b; 6])
    }
}

impl Applet for MfApplet {
    fn aid(&self) -> &Aid {
        &self.aid
    }

    fn kind(&self) -> &'static str {
        "ykt.test.mf"
    }

    fn install_params(&self) -> Vec<u8> {
        vec![self.sfi, self.fill]
    }

    fn select(&mut self, _ctx: &mut Context<'_>) -> Result<Selected, StatusWord> {
        Ok(Selected::ok(Vec::new()))
    }

    fn process(
        &mut self,
        _ctx: &mut Context<'_>,
        _cmd: &CommandApdu,
    ) -> Result<Vec<u8>, StatusWord> {
        Err(StatusWord::INS_NOT_SUPPORTED)
    }

    fn process_mf(
        &mut self,
        ctx: &mut Context<'_>,
        cmd: &CommandApdu,
    ) -> Option<Result<Vec<u8>, StatusWord>> {
        match (cmd.cla, cmd.ins) {
            (0x00, 0xB0) if cmd.p1 == 0x80 | self.sfi => Some(ctx.read(VALUE).map(<[u8]>::to_vec)),
            (0x80, 0x40) => Some(Self::fill(ctx, cmd).map(|()| Vec::new())),
            (0x80, 0x42) => {
                Some(Self::fill(ctx, cmd).and(Err(StatusWord::CONDITIONS_NOT_SATISFIED)))
            }
            (0x80, 0x44) => {
                let _ = Self::fill(ctx, cmd);
                None
            }
            _ => None,
        }
    }

    fn reset_volatile(&mut self) {}
}

const AID_M: &str = "A0000006324D4F542E435053414D3031";
const AID_N: &str = "A0000006324D4F542E435053414D3032";

/// A powered card: the test applet A first (no MF commands), then M (SFI 16, value 11..), then N
/// (SFI 16 and 17, value 22..; only its SFI 17 is reachable, M answers SFI 16 first).
fn card() -> Card {
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(3)));
    support::install(&mut card, AID_A).unwrap();
    MfApplet::install(&mut card, AID_M, 0x16, 0x11);
    MfApplet::install(&mut card, AID_N, 0x17, 0x22);
    card.power_on();
    card
}

fn hx(b: &[u8]) -> String {
    hex::encode_upper(b)
}

#[test]
fn answered_in_install_order_while_the_mf_is_current() {
    let mut card = card();
    assert_eq!(hx(&send(&mut card, "00B0960006")), "1111111111119000");
    assert_eq!(hx(&send(&mut card, "00B0970006")), "2222222222229000");
    // Le 00 gets all of it; a wrong short Le gets 6Cxx with the exact length, as for any command.
    assert_eq!(hx(&send(&mut card, "00B0960000")), "1111111111119000");
    assert_eq!(hx(&send(&mut card, "00B0960008")), "6C06");
    // Nobody answers: the MF rules apply.
    assert_eq!(hx(&send(&mut card, "00B0950006")), "6A82");
    assert_eq!(hx(&send(&mut card, "00B0000006")), "6986");
    assert_eq!(hx(&send(&mut card, "80CA000000")), "6D00");
    // The dispatcher's own commands never reach process_mf.
    assert_eq!(hx(&send(&mut card, "00A40000023F00")), "6F0483023F009000");
}

#[test]
fn not_asked_once_an_application_is_selected() {
    let mut card = card();
    support::select(&mut card, AID_A);
    // A's own EF16 (zeros) answers, through the runtime's files, not M's process_mf; an SFI A
    // does not have is not found.
    assert_eq!(hx(&send(&mut card, "00B0960006")), "0000000000009000");
    assert_eq!(hx(&send(&mut card, "00B0970006")), "6A82");
    assert_eq!(hx(&send(&mut card, "8040000001AB")), "6D00");
    // Back to the MF: answered again.
    ok(&mut card, "00A40000023F00");
    assert_eq!(hx(&send(&mut card, "00B0960006")), "1111111111119000");
}

#[test]
fn writes_commit_on_success_and_are_discarded_on_error() {
    let mut card = card();
    ok(&mut card, "8040000001AB");
    assert_eq!(hx(&send(&mut card, "00B0960006")), "ABABABABABAB9000");
    assert_eq!(hx(&send(&mut card, "8042000001CD")), "6985");
    assert_eq!(hx(&send(&mut card, "00B0960006")), "ABABABABABAB9000");
    // M stages a write and passes the command on: N and the MF rules see nothing of it, and it
    // does not ride along with the next successful command's commit.
    assert_eq!(hx(&send(&mut card, "8044000001EE")), "6D00");
    ok(&mut card, "8040000001AB");
    assert_eq!(hx(&send(&mut card, "00B0960006")), "ABABABABABAB9000");
    // All of it persisted through the state file.
    let state = card.save_state();
    assert!(!state.is_empty());
    card.power_off();
    card.power_on();
    assert_eq!(hx(&send(&mut card, "00B0960006")), "ABABABABABAB9000");
}

#[test]
fn a_torn_mf_command_leaves_the_value_before_or_after() {
    let mut probe = card();
    let w0 = probe.persistent_writes();
    ok(&mut probe, "8040000001AB");
    let writes = probe.persistent_writes() - w0;
    assert!(writes >= 3, "journal, marker and data pages: {writes}");
    for n in 1..=writes {
        let mut card = card();
        card.tear().arm_at(n);
        let cmd = hex::decode("8040000001AB").unwrap();
        assert_eq!(
            card.transmit(&cmd),
            Err(CardError::PowerLost),
            "tear at {n}"
        );
        card.power_on();
        let got = hx(&send(&mut card, "00B0960006"));
        assert!(
            got == "1111111111119000" || got == "ABABABABABAB9000",
            "tear at {n}: {got}"
        );
        // The card works on after recovery.
        ok(&mut card, "8040000001CD");
        assert_eq!(hx(&send(&mut card, "00B0960006")), "CDCDCDCDCDCD9000");
    }
}
