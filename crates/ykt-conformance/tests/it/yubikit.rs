//! What yubikit (PyPI yubikey-manager 5.9.2, scripts/yubikit-scp03.py) sends that the card
//! manager answers differently from what yubikit expects, reproduced in-process.

use ykt_apdu::{CommandApdu, ResponseApdu};
use ykt_conformance::isd::{GP_TEST_KEY, IsdChannel, danger_install_test_isd};
use ykt_crypto::{AesKey, cbc_encrypt, ecb_encrypt};
use ykt_scp::{HostConfig, HostSession, SecurityLevel};

fn send(card: &mut ykt_card::Card, cmd: &CommandApdu) -> ResponseApdu {
    ResponseApdu::parse(&card.transmit(&cmd.to_bytes()).unwrap()).unwrap()
}

/// yubikit's `SecurityDomainSession.put_key` writes each AES key block as
/// `88 10 <AES-CBC(K-DEK, key)> 03 <KCV>`, without the key-length byte GP Amendment D §7.2
/// puts first (`88 11 10 <...>`). The card manager accepts both forms
/// (`ykt_gp::commands::put_key::KEY_LENGTH_BYTE_OPTIONAL`).
#[test]
fn yubikit_put_key_blocks_without_the_key_length_byte() {
    let mut card = ykt_purse::testing::danger_test_card_3des().unwrap();
    danger_install_test_isd(&mut card, IsdChannel::Scp03).unwrap();
    let select = CommandApdu::new(0x00, 0xA4, 0x04, 0x00).with_data(ykt_gp::ISD_AID.to_vec());
    assert!(send(&mut card, &select).is_success());
    let config = HostConfig {
        keys: IsdChannel::Scp03.test_keys().unwrap(),
        protocol: IsdChannel::Scp03.protocol().unwrap(),
        level: SecurityLevel::ALL,
        security_domain_aid: Some(ykt_gp::ISD_AID.to_vec()),
    };
    let (mut host, iu) = HostSession::initialize_update(config, &[0x11; 8]).unwrap();
    let ea = host
        .on_initialize_update_response(&send(&mut card, &iu))
        .unwrap();
    host.on_external_authenticate_response(&send(&mut card, &ea))
        .unwrap();

    let dek = AesKey::from_slice(&GP_TEST_KEY).unwrap();
    let mut data = vec![0x31];
    let mut expected = vec![0x31];
    for b in [0x50u8, 0x60, 0x70] {
        let key = [b; 16];
        let kcv = ecb_encrypt(&AesKey::from_slice(&key).unwrap(), &[0x01; 16]).unwrap();
        data.extend_from_slice(&[0x88, 0x10]);
        data.extend(cbc_encrypt(&dek, &[0; 16], &key).unwrap());
        data.push(0x03);
        data.extend_from_slice(&kcv[..3]);
        expected.extend_from_slice(&kcv[..3]);
    }
    let put_key = CommandApdu::new(0x80, 0xD8, 0x00, 0x81).with_data(data);
    let r = send(&mut card, &host.wrap(&put_key).unwrap());
    assert_eq!(r.sw.0, 0x9000, "PUT KEY in yubikit's form");
    assert_eq!(host.unwrap(&r).unwrap().data, expected);
}
