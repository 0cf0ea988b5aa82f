use ykt_crypto::purse::*;

fn h<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

#[test]
fn published_purchase_vector() {
    let dpk = PurseKey::from_bytes(h("11223344556677888877665544332211"));
    let input = purchase_session_input(h("11223344"), 0, 1);
    let sk = session_key(&PurseAlgorithm::Tdes, &dpk, &input);
    assert_eq!(hex::encode_upper(sk.expose()), "003238ABC57659DD");
    let mac1 = session_mac(
        &PurseAlgorithm::Tdes,
        &sk,
        &hex::decode("0000100006001122334455201202291351 00".replace(' ', "")).unwrap(),
    );
    assert_eq!(hex::encode_upper(mac1), "F15CAB75");
}
