//! Every builder's bytes against hex worked out by hand from tsm-gp.md §3 (field by field in
//! the comments).

use ykt_gp_host::commands::{
    delete, get_data, get_status, install, load, put_key, set_status, store_data,
};
use ykt_gp_host::{
    BuildError, CardLifeCycle, DapBlock, Encryption, Install, InstallParameters, Privileges, Scope,
    StoreDataOptions, Structure,
};

use crate::support::{aid, h, hx, isd, openssl_ecb};

fn bytes(cmd: &ykt_apdu::CommandApdu) -> String {
    hx(&cmd.to_bytes())
}

const APP: &str = "A000000632010105";
const ELF: &str = "A0000006320101";
const SSD: &str = "A000000151535041";

#[test]
fn get_status_every_scope_first_and_next() {
    // 80 F2 P1 P2 Lc=02 4F 00 Le=00 (§3.4)
    let cases = [
        (Scope::IssuerSecurityDomain, false, "80F28002024F0000"),
        (Scope::Applications, false, "80F24002024F0000"),
        (Scope::Applications, true, "80F24003024F0000"),
        (Scope::LoadFiles, false, "80F22002024F0000"),
        (Scope::LoadFilesAndModules, true, "80F21003024F0000"),
    ];
    for (scope, next, want) in cases {
        assert_eq!(bytes(&get_status::get_status(scope, next)), want);
    }
    let m = get_status::get_status_matching(Scope::Applications, &h("A000000632"), false).unwrap();
    assert_eq!(bytes(&m), "80F24002074F05A00000063200");
}

#[test]
fn get_data_tags() {
    // 80 CA P1 P2 Le=00 (GP §11.3): two-byte tag in P1 P2, one-byte tags with P1 00.
    assert_eq!(bytes(&get_data::get_data(0x9F7F)), "80CA9F7F00");
    assert_eq!(bytes(&get_data::get_data(0x0066)), "80CA006600");
    assert_eq!(bytes(&get_data::get_data(0x00E0)), "80CA00E000");
    assert_eq!(bytes(&get_data::get_data(0x0042)), "80CA004200");
    assert_eq!(bytes(&get_data::get_data(0x0045)), "80CA004500");
}

#[test]
fn install_for_load() {
    // P1 02 · 07 ELF · 08 ISD · 00 hash · 00 params · 00 token → Lc 14 (§3.1)
    let cmd = install::install_for_load(&aid(ELF), Some(&isd()), None, &[], &[]).unwrap();
    assert_eq!(
        bytes(&cmd),
        "80E6020014 07A0000006320101 08A000000151000000 00 00 00 00".replace(' ', "")
    );
    // With a SHA-256 hash, load parameters EF 04 C6 02 0100 and a 2-byte token; no SD.
    let hash = [0xAB; 32];
    let cmd =
        install::install_for_load(&aid(ELF), None, Some(&hash), &h("EF04C6020100"), &h("1122"))
            .unwrap();
    let want = format!(
        "80E602003407A0000006320101 00 20{} 06EF04C6020100 021122 00",
        "AB".repeat(32)
    );
    assert_eq!(bytes(&cmd), want.replace(' ', ""));
}

#[test]
fn install_for_install_and_make_selectable() {
    let install = Install {
        load_file: aid(ELF),
        module: aid(APP),
        instance: aid(APP),
        privileges: Privileges::NONE,
        parameters: InstallParameters::default(),
        token: Vec::new(),
    };
    // 07 ELF · 08 module · 08 instance · 03 000000 · 02 C900 · 00 → Lc 22 (§3.1: C9 00 when empty)
    let both = "07A0000006320101 08A000000632010105 08A000000632010105 03000000 02C900 00";
    assert_eq!(
        bytes(&install::install_for_install(&install, true).unwrap()),
        format!("80E60C0022{both}00").replace(' ', "")
    );
    assert_eq!(
        bytes(&install::install_for_install(&install, false).unwrap()),
        format!("80E6040022{both}00").replace(' ', "")
    );
    // An SSD with delegated management, C9 { 81 02 03 70 }, system parameters after C9.
    let ssd = Install {
        load_file: aid("A0000001515350"),
        module: aid(SSD),
        instance: aid("A00000015153504101"),
        privileges: Privileges::SSD_DELEGATED,
        parameters: InstallParameters {
            application: h("81020370"),
            extra: h("EF00"),
        },
        token: Vec::new(),
    };
    assert_eq!(
        bytes(&install::install_for_install(&ssd, true).unwrap()),
        "80E60C0029 07A0000001515350 08A000000151535041 09A00000015153504101 03A00000 08C90481020370EF00 00 00"
            .replace(' ', "")
    );
}

#[test]
fn install_for_make_selectable_extradition_personalization_registry_update() {
    // 00 00 · 08 instance · 03 privileges · 00 · 00 token → Lc 11
    assert_eq!(
        bytes(&install::install_for_make_selectable(&aid(APP), Privileges::NONE, &[]).unwrap()),
        "80E6080011 0000 08A000000632010105 03000000 00 00 00".replace(' ', "")
    );
    // 08 SD · 00 · 08 app · 00 · 00 params · 00 token → Lc 16 (GP 2.2.1 Table 11-45)
    assert_eq!(
        bytes(&install::install_for_extradition(&aid(SSD), &aid(APP), &[], &[]).unwrap()),
        "80E6100016 08A000000151535041 00 08A000000632010105 00 00 00 00".replace(' ', "")
    );
    // 00 00 · 08 app · 00 00 00 → Lc 0E
    assert_eq!(
        bytes(&install::install_for_personalization(&aid(APP)).unwrap()),
        "80E620000E 0000 08A000000632010105 000000 00".replace(' ', "")
    );
    // 08 SD · 00 · 08 app · 03 privileges · 00 · 00 → Lc 19
    assert_eq!(
        bytes(
            &install::install_for_registry_update(
                Some(&aid(SSD)),
                &aid(APP),
                Some(Privileges([0x00, 0x00, 0x10])),
                &[],
                &[]
            )
            .unwrap()
        ),
        "80E6400019 08A000000151535041 00 08A000000632010105 03000010 00 00 00".replace(' ', "")
    );
    // Keep SD and privileges: 00 · 00 · 08 app · 00 · 00 · 00 → Lc 0E
    assert_eq!(
        bytes(&install::install_for_registry_update(None, &aid(APP), None, &[], &[]).unwrap()),
        "80E640000E 00 00 08A000000632010105 00 00 00 00".replace(' ', "")
    );
}

#[test]
fn install_refuses_oversized_fields() {
    let token = vec![0u8; 256];
    assert_eq!(
        install::install_for_load(&aid(ELF), None, None, &[], &token),
        Err(BuildError::FieldTooLong(256))
    );
    let token = vec![0u8; 250];
    assert!(matches!(
        install::install_for_load(&aid(ELF), None, None, &[], &token),
        Err(BuildError::DataTooLong(_))
    ));
}

#[test]
fn load_payload_blocks_and_hash() {
    // C4 03 010203 in one last block: 80 E8 80 00 05 C403010203 00 (§3.2)
    let payload = load::load_payload(&h("010203"), &[]);
    assert_eq!(hx(&payload), "C403010203");
    let cmds = load::load_commands(&payload, 239).unwrap();
    assert_eq!(cmds.len(), 1);
    assert_eq!(bytes(&cmds[0]), "80E8800005C40301020300");
    // Blocks of 2: P1 00 P2 00, P1 00 P2 01, P1 80 P2 02.
    let cmds = load::load_commands(&payload, 2).unwrap();
    let got: Vec<String> = cmds.iter().map(bytes).collect();
    assert_eq!(
        got,
        ["80E8000002C40300", "80E8000102010200", "80E88002010300"]
    );
    // A DAP block before C4; a 200-byte block with the 81 length form.
    let dap = DapBlock {
        security_domain: isd(),
        signature: h("AABB"),
    };
    let payload = load::load_payload(&[0x5A; 200], &[dap]);
    assert_eq!(
        hx(&payload[..20]),
        "E20E4F08A000000151000000C302AABBC481C85A"
    );
    assert_eq!(payload.len(), 16 + 3 + 200);
    // 257 blocks do not fit P2.
    assert_eq!(
        load::load_commands(&[0; 257], 1),
        Err(BuildError::TooManyBlocks(257))
    );
    assert_eq!(load::load_commands(&[0; 1], 0), Err(BuildError::BlockSize));
    // SHA-256("abc") (FIPS 180-2 Appendix B.1).
    assert_eq!(
        hx(&load::load_file_data_block_hash(b"abc")),
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
    );
}

#[test]
fn delete_object_related_token_and_keys() {
    // 80 E4 00 P2 Lc 4F 08 AID [9E L token] 00 (§3.3)
    assert_eq!(
        bytes(&delete::delete(&aid(APP), false, None).unwrap()),
        "80E400000A4F08A00000063201010500"
    );
    assert_eq!(
        bytes(&delete::delete(&aid(ELF), true, None).unwrap()),
        "80E40080094F07A000000632010100"
    );
    assert_eq!(
        bytes(&delete::delete(&aid(APP), false, Some(&h("AABB"))).unwrap()),
        "80E400000E4F08A0000006320101059E02AABB00"
    );
    assert_eq!(
        bytes(&delete::delete_key(Some(1), Some(0x30)).unwrap()),
        "80E4000006D00101D2013000"
    );
    assert_eq!(
        bytes(&delete::delete_key(None, Some(0x30)).unwrap()),
        "80E4000003D2013000"
    );
    assert_eq!(
        delete::delete_key(None, None),
        Err(BuildError::NoKeySelected)
    );
}

#[test]
fn set_status_card_and_application() {
    // §3.5: P1 80 card, P1 40 application; lock 80, unlock 00 (GPPro's codings).
    assert_eq!(
        bytes(&set_status::set_card_state(CardLifeCycle::CardLocked)),
        "80F0807F"
    );
    assert_eq!(
        bytes(&set_status::set_card_state(CardLifeCycle::Secured)),
        "80F0800F"
    );
    assert_eq!(
        bytes(&set_status::set_card_state(CardLifeCycle::Terminated)),
        "80F080FF"
    );
    assert_eq!(
        bytes(&set_status::set_application_state(&aid(APP), set_status::P2_LOCK).unwrap()),
        "80F0408008A000000632010105"
    );
    assert_eq!(
        bytes(&set_status::set_application_state(&aid(APP), set_status::P2_UNLOCK).unwrap()),
        "80F0400008A000000632010105"
    );
    assert_eq!(
        bytes(&set_status::set_domain_state(&aid(SSD), 0x80).unwrap()),
        "80F0608008A000000151535041"
    );
}

#[test]
fn store_data_p1_bits_blocks_and_dgi() {
    // §3.7: P1 b8 last · b7-b6 encryption · b5-b4 structure · b1 response.
    let dgi = StoreDataOptions {
        structure: Structure::Dgi,
        ..Default::default()
    };
    assert_eq!(dgi.p1(), 0x08);
    let enc = StoreDataOptions {
        structure: Structure::Dgi,
        encryption: Encryption::Encrypted,
        response_expected: false,
    };
    assert_eq!(enc.p1(), 0x68);
    let tlv = StoreDataOptions {
        structure: Structure::BerTlv,
        encryption: Encryption::ApplicationDependent,
        response_expected: true,
    };
    assert_eq!(tlv.p1(), 0x31);
    assert_eq!(StoreDataOptions::default().p1(), 0x00);

    // DGI 0101 with 3 bytes; 255 bytes take the FF form.
    let d = store_data::dgi(0x0101, &h("AABBCC")).unwrap();
    assert_eq!(hx(&d), "010103AABBCC");
    let long = store_data::dgi(0x8201, &[0; 255]).unwrap();
    assert_eq!(hx(&long[..5]), "8201FF00FF");
    assert_eq!(long.len(), 5 + 255);
    let short = store_data::dgi(0x8201, &[0; 254]).unwrap();
    assert_eq!(hx(&short[..3]), "8201FE");

    // Three blocks: P2 00, 01, 02; the last with b8.
    let cmds = store_data::store_data_blocks(enc, &[h("0101"), h("0202"), h("0303")]).unwrap();
    let got: Vec<String> = cmds.iter().map(bytes).collect();
    assert_eq!(got, ["80E26800020101", "80E26801020202", "80E2E802020303"]);
    // Response expected: Le 00.
    let one = store_data::store_data(tlv, 5, true, &h("4F00")).unwrap();
    assert_eq!(bytes(&one), "80E2B105024F0000");
    // ISD rename: P1 90, 4F L AID (GPPro).
    assert_eq!(
        bytes(&store_data::rename_isd(&aid(SSD)).unwrap()),
        "80E290000A4F08A000000151535041"
    );
    let blocks = store_data::split_blocks(&[7; 5], 2).unwrap();
    assert_eq!(blocks, vec![vec![7, 7], vec![7, 7], vec![7]]);
}

#[test]
fn put_key_aes_with_the_fips_197_vector() {
    // K-DEK = 000102…0F (FIPS-197 C.1), new keys = 00112233…FF: AES-CBC with a zero ICV over
    // one block is ECB, so every key block carries 69C4E0D86A7B0430D8CDB78070B4C55A (C.1).
    use ykt_crypto::AesKey;
    use ykt_scp::{KeySet, StaticKeys};
    let dek = AesKey::from_slice(&h("000102030405060708090A0B0C0D0E0F")).unwrap();
    let current = StaticKeys::Aes {
        enc: dek.clone(),
        mac: dek.clone(),
        dek,
    };
    let k = || AesKey::from_slice(&h("00112233445566778899AABBCCDDEEFF")).unwrap();
    let new = KeySet::aes(0x31, k(), k(), k());
    let (cmd, kcvs) = put_key::put_key(
        Some(0x30),
        &new,
        &put_key::KeyEncryptionKey::Static(&current),
    )
    .unwrap();
    // KCV = AES-ECB(key, 16 × 01), first 3 bytes (Amendment D §7.2), checked with OpenSSL.
    let kcv = openssl_ecb(
        "aes-128-ecb",
        &h("00112233445566778899AABBCCDDEEFF"),
        &[1; 16],
    );
    assert_eq!(kcvs, [[kcv[0], kcv[1], kcv[2]]; 3]);
    let block = format!(
        "881110{}03{}",
        "69C4E0D86A7B0430D8CDB78070B4C55A",
        hx(&kcv[..3])
    );
    // 80 D8 30 81 Lc=3D 31 · 3 × (88 11 10 enc 03 KCV) 00 (§3.6)
    assert_eq!(
        bytes(&cmd),
        format!("80D8308146 31{block}{block}{block}00").replace(' ', "")
    );
}

#[test]
fn put_key_des_and_sm4_against_openssl() {
    use ykt_crypto::{Sm4Key, TdesKey};
    use ykt_scp::{KeySet, StaticKeys};
    // SCP02: 3DES-ECB under the session DEK (here the §9.3 session DEK), KCV over 8 × 00.
    let session_dek = TdesKey::from_slice(&h("511DB767812597722109C867F9D7257A")).unwrap();
    let value = h("404142434445464748494A4B4C4D4E4F");
    let k = || TdesKey::from_slice(&value).unwrap();
    let new = KeySet::tdes(0x20, k(), k(), k());
    let (cmd, _) = put_key::put_key(
        None,
        &new,
        &put_key::KeyEncryptionKey::Scp02SessionDek(&session_dek),
    )
    .unwrap();
    let enc = openssl_ecb(
        "des-ede-ecb",
        &h("511DB767812597722109C867F9D7257A"),
        &value,
    );
    let kcv = openssl_ecb("des-ede-ecb", &value, &[0; 8]);
    let block = format!("8010{}03{}", hx(&enc), hx(&kcv[..3]));
    assert_eq!(
        bytes(&cmd),
        format!("80D8008143 20{block}{block}{block}00").replace(' ', "")
    );

    // SM4: key type 89, SM4-CBC (zero ICV) under the static K-DEK, KCV over 16 × 01 (L).
    let dek = h("0123456789ABCDEFFEDCBA9876543210");
    let s = |b: &[u8]| Sm4Key::from_slice(b).unwrap();
    let current = StaticKeys::Sm4 {
        enc: s(&dek),
        mac: s(&dek),
        dek: s(&dek),
    };
    let new = KeySet::sm4(0x31, s(&value), s(&value), s(&value));
    let (cmd, _) = put_key::put_key(
        Some(0x30),
        &new,
        &put_key::KeyEncryptionKey::Static(&current),
    )
    .unwrap();
    let enc = crate::support::openssl_cbc("sm4-cbc", &dek, &value);
    let kcv = openssl_ecb("sm4-ecb", &value, &[1; 16]);
    let block = format!("891110{}03{}", hx(&enc), hx(&kcv[..3]));
    assert_eq!(
        bytes(&cmd),
        format!("80D8308146 31{block}{block}{block}00").replace(' ', "")
    );
}

#[test]
fn put_key_aes_256_is_padded_to_whole_blocks_and_versions_are_checked() {
    use ykt_crypto::AesKey;
    use ykt_scp::{KeySet, StaticKeys};
    let dek = AesKey::from_slice(&[0x42; 16]).unwrap();
    let current = StaticKeys::Aes {
        enc: dek.clone(),
        mac: dek.clone(),
        dek,
    };
    let k = |n: usize| AesKey::from_slice(&vec![0x24; n]).unwrap();
    let kek = put_key::KeyEncryptionKey::Static(&current);
    // AES-192: 24 bytes padded to 32, `88 21 18 <32> 03 KCV`.
    let (cmd, _) = put_key::put_key(None, &KeySet::aes(0x31, k(24), k(24), k(24)), &kek).unwrap();
    assert_eq!(hx(&cmd.data[1..4]), "882118");
    assert_eq!(cmd.data.len(), 1 + 3 * (3 + 32 + 4));
    assert_eq!(
        put_key::put_key(None, &KeySet::aes(0x80, k(16), k(16), k(16)), &kek).err(),
        Some(BuildError::KeyVersion(0x80))
    );
    // A 3-key 3DES key set does not fit the 16-byte DES key block.
    let t = || ykt_crypto::TdesKey::from_slice(&[0x11; 24]).unwrap();
    let sdek = ykt_crypto::TdesKey::from_slice(&[0x22; 16]).unwrap();
    assert_eq!(
        put_key::put_key(
            None,
            &KeySet::tdes(0x20, t(), t(), t()),
            &put_key::KeyEncryptionKey::Scp02SessionDek(&sdek)
        )
        .err(),
        Some(BuildError::KeyLength(24))
    );
}

#[test]
fn the_sm4_kcv_input_is_the_card_managers() {
    assert_eq!(
        put_key::SM4_KCV_INPUT_BYTE,
        ykt_gp::commands::put_key::SM4_KCV_INPUT_BYTE
    );
    assert_eq!(put_key::KEY_TYPE_SM4, 0x89);
}

#[test]
fn privileges_names_round_trip() {
    let isd = Privileges([0x9E, 0xFE, 0x80]);
    let names = isd.names();
    assert_eq!(
        names,
        [
            "SecurityDomain",
            "CardLock",
            "CardTerminate",
            "CardReset",
            "CVMManagement",
            "TrustedPath",
            "AuthorizedManagement",
            "TokenVerification",
            "GlobalDelete",
            "GlobalLock",
            "GlobalRegistry",
            "FinalApplication",
            "ReceiptGeneration"
        ]
    );
    let back = names
        .iter()
        .map(|n| Privileges::from_name(n).unwrap())
        .fold(Privileges::NONE, Privileges::union);
    assert_eq!(back, isd);
    assert_eq!(Privileges::from_name("nonsense"), None);
}
