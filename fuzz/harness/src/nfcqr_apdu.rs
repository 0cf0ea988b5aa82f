//! `nfcqr_apdu`: arbitrary APDU sequences (framing: crate docs) to the NFC QR test card.
//!
//! The card is `ykt_nfcqr::testing::danger_test_card` (default profile) rebuilt here with the
//! same instance and the same entropy (the §6 user key scripted, then
//! `SeededRandom::new(TEST_CARD_SEED)`), passed through a recorder: every random block the
//! card draws (the private key, signature nonces) is kept. No response contains the §6 private
//! key or any random block of 16 bytes or more the card drew; every response ends with a
//! status word; a refused command (anything but `9000` or `61xx`) leaves the persistent state
//! unchanged; the card never panics and the state file loads again.

use std::sync::{Arc, Mutex, OnceLock};

use ykt_card::danger::ScriptedRandom;
use ykt_card::{AppletFactory, Atr, Card, Entropy, SeededRandom};
use ykt_nfcqr::testing::{TEST_CARD_SEED, test_instance};
use ykt_nfcqr::{NfcQrAppletFactory, NfcQrProfile};

use crate::gp::{Checked, check_state_file_with};

type Drawn = Arc<Mutex<Vec<Vec<u8>>>>;

struct Recorder {
    inner: ScriptedRandom,
    drawn: Drawn,
}

impl Entropy for Recorder {
    fn fill(&mut self, buf: &mut [u8]) {
        self.inner.fill(buf);
        self.drawn.lock().expect("not poisoned").push(buf.to_vec());
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The target.
pub fn run(data: &[u8]) {
    let drawn = Drawn::default();
    let entropy = Recorder {
        inner: ScriptedRandom::new([ykt_qr::testing::USER_D.to_vec()], TEST_CARD_SEED),
        drawn: drawn.clone(),
    };
    // The instance is built once (its root keys' self-signatures are checked then); each run
    // loads its state file. Installing draws no random bytes.
    static STATE: OnceLock<Vec<u8>> = OnceLock::new();
    let state = STATE.get_or_init(|| {
        let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(0)));
        test_instance(NfcQrProfile::default())
            .expect("the test instance")
            .install(&mut card)
            .expect("installs");
        card.save_state()
    });
    let mut card = Card::load_state(
        state,
        Atr::default_t1(),
        Box::new(entropy),
        &NfcQrAppletFactory,
    )
    .expect("the test card's state loads");
    card.power_on();
    let mut select = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
    select.extend_from_slice(&ykt_nfcqr::NFCQR_AID);
    let r = card.transmit(&select).expect("powered");
    assert!(r.ends_with(&[0x90, 0x00]));
    let mut checked = Checked::new(&card);
    for cmd in crate::commands(data).into_iter().take(48) {
        let response = checked.transmit(&mut card, cmd, |sw| sw == 0x9000 || sw >> 8 == 0x61);
        assert!(
            !contains(&response, &ykt_qr::testing::USER_D),
            "the private key is in the response to {}",
            crate::hex(cmd)
        );
        for block in drawn.lock().expect("not poisoned").iter() {
            assert!(
                block.len() < 16 || !contains(&response, block),
                "a random block the card drew ({}) is in the response to {}",
                crate::hex(block),
                crate::hex(cmd)
            );
        }
    }
    check_state_file_with(&card, &NfcQrAppletFactory as &dyn AppletFactory);
}
