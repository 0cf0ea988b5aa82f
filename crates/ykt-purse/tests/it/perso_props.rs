//! Properties of STORE DATA: random blocks never panic, and a damaged personalisation is either
//! refused with the purse left empty, or accepted whole.

use proptest::collection::vec;
use proptest::prelude::*;
use ykt_crypto::purse::PurseAlgorithm;
use ykt_purse::EP_AID;
use ykt_purse::perso::dgi;

use crate::perso::{builder, dgi_bytes, empty_card};
use crate::support::select_aid;

fn store_data_cmd(p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut c = vec![0x80, 0xE2, p1, p2, data.len() as u8];
    c.extend_from_slice(data);
    c
}

/// A DGI tag: mostly known ones, sometimes anything.
fn tag() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(dgi::EF15),
        Just(dgi::EF16),
        Just(dgi::EF17),
        Just(dgi::PURSE),
        Just(dgi::PIN),
        Just(dgi::KEY),
        dgi::EF1A_FIRST..=dgi::EF1A_LAST,
        any::<u16>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Arbitrary P1, P2 and data fields: always a status word, the card stays powered.
    #[test]
    fn random_store_data_blocks_never_panic(
        blocks in vec((any::<u8>(), 0u8..4, vec(any::<u8>(), 0..=255)), 1..8)
    ) {
        let mut card = empty_card();
        for (p1, p2, data) in blocks {
            let r = card.transmit(&store_data_cmd(p1, p2, &data)).unwrap();
            prop_assert!(r.len() == 2, "STORE DATA answers no data: {r:02X?}");
        }
        let s = select_aid(&mut card, &EP_AID);
        prop_assert!(s == 0x6283 || s == 0x9000);
    }

    /// Well-formed DGIs with random tags and values in well-formed blocks: never a panic, and
    /// the purse is selectable as personalised only if the last block was accepted.
    #[test]
    fn random_dgis_never_panic(
        blocks in vec(vec((tag(), vec(any::<u8>(), 0..70)), 0..4), 1..5),
        encrypted in any::<bool>(),
    ) {
        let mut card = empty_card();
        let n = blocks.len();
        let mut last_sw = 0;
        for (i, dgis) in blocks.iter().enumerate() {
            let data: Vec<u8> = dgis.iter().flat_map(|(t, v)| dgi_bytes(*t, v)).collect();
            prop_assume!(data.len() <= 255);
            let mut p1 = dgi::P1_DGI;
            if encrypted { p1 |= dgi::P1_ENCRYPTED; }
            if i + 1 == n { p1 |= dgi::P1_LAST_BLOCK; }
            let r = card.transmit(&store_data_cmd(p1, i as u8, &data)).unwrap();
            prop_assert_eq!(r.len(), 2);
            last_sw = u16::from_be_bytes([r[0], r[1]]);
        }
        let s = select_aid(&mut card, &EP_AID);
        prop_assert_eq!(s == 0x9000, last_sw == 0x9000);
    }

    /// The builder's blocks with one byte changed or one block cut short: every block is
    /// answered, and the purse ends either empty (some block refused) or personalised (all
    /// accepted).
    #[test]
    fn damaged_personalisation_is_all_or_nothing(
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        cut in any::<bool>(),
    ) {
        let blocks = builder(PurseAlgorithm::Tdes).blocks().unwrap();
        let target = which.index(blocks.len());
        let mut card = empty_card();
        let mut all_ok = true;
        for (i, b) in blocks.iter().enumerate() {
            let mut data = b.data.to_vec();
            if i == target && !data.is_empty() {
                let k = at.index(data.len());
                if cut { data.truncate(k); } else { data[k] ^= xor; }
            }
            let r = card.transmit(&store_data_cmd(b.p1, b.p2, &data)).unwrap();
            prop_assert_eq!(r.len(), 2);
            all_ok &= r == [0x90, 0x00];
        }
        let s = select_aid(&mut card, &EP_AID);
        prop_assert_eq!(s, if all_ok { 0x9000 } else { 0x6283 });
    }
}
