//! Masking (client.md §6.7): table vectors per class and the middle-digit property.

use proptest::prelude::*;
use ykt_wallet::mask;
use ykt_wallet::{CardNo, Seid};

pub const CANARY: &str = "3100123456789012";

#[test]
fn card_numbers() {
    for (full, shown) in [
        ("3100123456789012", "310012******9012"),
        ("31001234567890123456", "310012**********3456"),
        ("123456789012", "123456**9012"),
        ("12345678901", "*8901"),
        ("12345", "*2345"),
        ("1234", "****"),
        ("", "*"),
        (" 3100123456789012 ", "310012******9012"),
    ] {
        assert_eq!(mask::card_no(full), shown, "{full:?}");
    }
}

#[test]
fn seids_phones_and_id_numbers() {
    for (full, shown) in [
        ("1122334455667788AABB", "1122…AABB"),
        ("112233445566", "1122…5566"),
        ("11223344556", "…4556"),
        ("1122", "…"),
    ] {
        assert_eq!(mask::seid(full), shown, "{full:?}");
    }
    for (full, shown) in [
        ("13812345678", "138****5678"),
        ("+8613812345678", "*5678"),
        ("110", "***"),
    ] {
        assert_eq!(mask::phone(full), shown, "{full:?}");
    }
    for (full, shown) in [
        ("11010519491231002X", "1****************X"),
        ("110105491231002", "*2"),
    ] {
        assert_eq!(mask::id_no(full), shown, "{full:?}");
    }
}

#[test]
fn newtypes_print_masked() {
    let card = CardNo::new(CANARY);
    let seid = Seid::new("1122334455667788AABB");
    for text in [
        format!("{card}"),
        format!("{card:?}"),
        format!("{card:#?}"),
        format!("{seid} {seid:?}"),
    ] {
        assert!(!text.contains(CANARY), "{text}");
        assert!(!text.contains("33445566"), "{text}");
    }
    assert_eq!(card.to_string(), "310012******9012");
    assert_eq!(format!("{seid:?}"), "Seid(1122…AABB)");
    assert_eq!(card.danger_full(), CANARY);
}

/// Digit runs of `s` longer than 4.
fn long_runs(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|r| r.len() > 4)
        .map(String::from)
        .collect()
}

proptest! {
    // The hidden middle never leaks: changing it does not change the output, and no 5-digit
    // window of the middle appears in the output unless the shown ends contain it too.
    #[test]
    fn card_no_hides_the_middle(head in "[0-9]{6}", middle in "[0-9]{2,14}", other in "[0-9]{14}", tail in "[0-9]{4}") {
        let full = format!("{head}{middle}{tail}");
        let shown = mask::card_no(&full);
        let other_middle = &other[..middle.len()];
        prop_assert_eq!(&shown, &mask::card_no(&format!("{head}{other_middle}{tail}")));
        for i in 0..middle.len().saturating_sub(4) {
            let w = &middle[i..i + 5];
            let in_ends = head.contains(w) || tail.contains(w) || format!("{head}{tail}").contains(w);
            prop_assert!(in_ends || !shown.contains(w), "{} in {}", w, shown);
        }
        // The only run of more than 4 digits is the first 6.
        prop_assert_eq!(long_runs(&shown), vec![head.clone()]);
    }

    #[test]
    fn short_card_no_and_seid_show_at_most_4(full in "[0-9]{0,11}", seid in "[0-9A-F]{0,40}") {
        prop_assert!(long_runs(&mask::card_no(&full)).is_empty());
        let shown = mask::seid(&seid);
        let digits_shown = shown.chars().filter(|c| c.is_ascii_hexdigit()).count();
        prop_assert!(digits_shown <= 8);
        if seid.len() >= 12 {
            prop_assert_eq!(mask::seid(&format!("{}{}{}", &seid[..4], "0".repeat(seid.len() - 8), &seid[seid.len() - 4..])), shown);
        }
    }

    #[test]
    fn phone_hides_the_middle(phone in "1[0-9]{10}", other in "[0-9]{4}") {
        let shown = mask::phone(&phone);
        prop_assert_eq!(&shown, &mask::phone(&format!("{}{}{}", &phone[..3], other, &phone[7..])));
        prop_assert!(long_runs(&shown).is_empty());
    }
}
