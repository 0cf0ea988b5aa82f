//! `ykt gp` on simulated SEs in state files: list, info, PUT KEY rotation, locking
//! applications and the card, wrong keys and refusals with their exit codes, keys never shown.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ykt_crypto::TdesKey;
use ykt_gp::{IsdSetup, install_isd};
use ykt_scp::{KeySet, Protocol};

const YKT: &str = env!("CARGO_BIN_EXE_ykt");
const EPURSE: &str = "A000000632010105";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ykt-gp-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gp(state: &Path, args: &[&str]) -> Output {
    Command::new(YKT)
        .arg("gp")
        .args(args)
        .arg("--sim")
        .arg(state)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and requires success; the output.
fn ok(state: &Path, args: &[&str]) -> String {
    let o = gp(state, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// The line of `aid` in a listing.
fn line_of<'a>(listing: &'a str, aid: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(aid))
        .unwrap_or_else(|| panic!("{aid} not listed:\n{listing}"))
}

#[test]
fn list_info_and_locking_on_the_test_card() {
    let dir = temp_dir("test-card");
    let state = dir.join("card.state");
    // No file: the test card is created (public GP test keys) and saved.
    let listing = ok(&state, &["list"]);
    assert!(state.exists());
    let isd = line_of(&listing, "A000000151000000");
    assert!(isd.starts_with("ISD"), "{isd}");
    assert!(isd.contains("SECURED"), "{isd}");
    assert!(isd.contains("SecurityDomain,CardLock"), "{isd}");
    let app = line_of(&listing, EPURSE);
    assert!(
        app.starts_with("APP") && app.contains("SELECTABLE"),
        "{app}"
    );

    let info = ok(&state, &["info"]);
    assert!(info.contains("Card data: GP 2.3.1, SCP03 i=70"), "{info}");
    assert!(info.contains("ICFabricator"), "{info}");
    assert!(info.contains("KVN 30 id 01: AES (16 bytes)"), "{info}");

    // Lock and unlock the e-purse, at every security level name.
    ok(&state, &["lock", EPURSE, "--sec-level", "all"]);
    let listing = ok(&state, &["list", "--sec-level", "mac"]);
    assert!(line_of(&listing, EPURSE).contains("LOCKED"), "{listing}");
    // Locking it again is refused by the card: exit code 5.
    let o = gp(&state, &["lock", EPURSE]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("6985"), "{}", stderr(&o));
    ok(&state, &["unlock", EPURSE, "--sec-level", "mac+enc+rmac"]);
    let listing = ok(&state, &["list"]);
    assert!(
        line_of(&listing, EPURSE).contains("SELECTABLE"),
        "{listing}"
    );

    // Lock and unlock the card.
    ok(&state, &["lock", "--card"]);
    assert!(line_of(&ok(&state, &["list"]), "A000000151000000").contains("CARD_LOCKED"));
    ok(&state, &["unlock", "--card"]);
    assert!(line_of(&ok(&state, &["list"]), "A000000151000000").contains("SECURED"));

    // An unknown application: 6A88, exit code 5.
    let o = gp(&state, &["unlock", "A0000006329999"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn put_key_rotation_then_the_new_key_opens_and_the_old_one_does_not() {
    let dir = temp_dir("put-key");
    let state = dir.join("card.state");
    ok(&state, &["list"]);
    let new_key = "00112233445566778899AABBCCDDEEFF";
    let out = ok(
        &state,
        &["put-key", "--new-key", new_key, "--new-kvn", "31"],
    );
    assert!(out.contains("key set 30 replaced by key set 31"), "{out}");
    // The old (test) key: the card does not prove it holds it. A clear error, exit code 1.
    let o = gp(&state, &["list"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not hold these keys"),
        "{}",
        stderr(&o)
    );
    // Asking for the old version: the card has none, exit code 5.
    let o = gp(&state, &["list", "--kvn", "30"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    // The new key opens the card, by any version or by 31.
    ok(&state, &["list", "--key", new_key]);
    let info = ok(&state, &["info"]);
    assert!(info.contains("KVN 31 id 03: AES (16 bytes)"), "{info}");
    let listing = ok(&state, &["list", "--key", new_key, "--kvn", "31"]);
    assert!(listing.contains(EPURSE));
    // Add a second set with separate keys, then use it.
    let (e, m, d) = (
        "101112131415161718191A1B1C1D1E1F",
        "202122232425262728292A2B2C2D2E2F",
        "303132333435363738393A3B3C3D3E3F",
    );
    let o = gp(
        &state,
        &[
            "put-key",
            "--add",
            "--new-kvn",
            "32",
            "--new-enc",
            e,
            "--new-mac",
            m,
            "--new-dek",
            d,
            "--key",
            new_key,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    ok(
        &state,
        &["list", "--kvn", "32", "--enc", e, "--mac", m, "--dek", d],
    );
    // No key ever reaches the output or the debug log.
    for text in [stdout(&o), stderr(&o)] {
        for key in [new_key, e, m, d] {
            assert!(!text.to_uppercase().contains(key), "key printed: {text}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A state file written through the library: an SCP02 ISD with its own keys on the e-purse
/// test card.
#[test]
fn scp02_card_from_the_library() {
    let dir = temp_dir("scp02");
    let state = dir.join("card.state");
    let key = "4A4B4C4D4E4F50515253545556575859";
    let k = || TdesKey::from_slice(&hex::decode(key).unwrap()).unwrap();
    let mut card = ykt_purse::testing::danger_test_card_3des().unwrap();
    let setup = IsdSetup::new(
        Protocol::scp02(0x55).unwrap(),
        KeySet::tdes(0x20, k(), k(), k()),
    );
    install_isd(&mut card, &setup).unwrap();
    std::fs::write(&state, card.save_state()).unwrap();

    let listing = ok(&state, &["list", "--scp", "02", "--key", key]);
    assert!(
        line_of(&listing, EPURSE).contains("SELECTABLE"),
        "{listing}"
    );
    ok(
        &state,
        &[
            "lock",
            EPURSE,
            "--scp",
            "02",
            "--key",
            key,
            "--sec-level",
            "03",
        ],
    );
    // SCP03 against an SCP02 card: the INITIALIZE UPDATE answer names SCP02.
    let o = gp(&state, &["list", "--key", key]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // A wrong SCP02 key.
    let o = gp(&state, &["list", "--scp", "02", "--key", &"11".repeat(16)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not hold these keys"),
        "{}",
        stderr(&o)
    );
    let listing = ok(&state, &["list", "--scp", "02", "--key", key]);
    assert!(line_of(&listing, EPURSE).contains("LOCKED"), "{listing}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Keys diversified from a master with the card's KDD: `--kdf emv` (SCP02) and `--kdf kdf3`
/// (SCP03) open the card with the master key; the master alone does not.
#[test]
fn diversified_keys_with_kdf() {
    use ykt_gp_host::diversify::{Diversification, diversify};
    let dir = temp_dir("kdf");
    let master = "505152535455565758595A5B5C5D5E5F";
    let kdd = [0x59, 0x4B, 0x54, 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60];
    for (scp, protocol, method, name) in [
        (
            "02",
            Protocol::scp02(0x55).unwrap(),
            Diversification::Emv,
            "emv",
        ),
        (
            "02",
            Protocol::scp02(0x55).unwrap(),
            Diversification::Visa2,
            "visa2",
        ),
        (
            "03",
            Protocol::scp03(0x70).unwrap(),
            Diversification::Kdf3,
            "kdf3",
        ),
    ] {
        let m = hex::decode(master).unwrap();
        let master_set = if scp == "02" {
            let k = || TdesKey::from_slice(&m).unwrap();
            KeySet::tdes(0x30, k(), k(), k())
        } else {
            let k = || ykt_crypto::AesKey::from_slice(&m).unwrap();
            KeySet::aes(0x30, k(), k(), k())
        };
        let card_keys = diversify(&master_set, method, &kdd, 0x30).unwrap();
        let mut card = ykt_purse::testing::danger_test_card_3des().unwrap();
        let mut setup = IsdSetup::new(protocol, card_keys);
        setup.key_diversification_data = kdd;
        install_isd(&mut card, &setup).unwrap();
        let state = dir.join(format!("{name}.state"));
        std::fs::write(&state, card.save_state()).unwrap();
        let listing = ok(
            &state,
            &["list", "--scp", scp, "--key", master, "--kdf", name],
        );
        assert!(listing.contains(EPURSE), "{name}: {listing}");
        let o = gp(&state, &["list", "--scp", scp, "--key", master]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_and_transport_errors() {
    let dir = temp_dir("usage");
    let state = dir.join("card.state");
    // Not a key: refused before anything is sent, and the text is not echoed.
    let o = gp(
        &state,
        &["list", "--key", "00112233445566778899AABBCCDDEEZZ"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("a key is not hex"), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("00112233445566778899AABBCCDDEEZZ"),
        "{}",
        stderr(&o)
    );
    // No such reader (or no pcscd at all): a transport failure, exit code 4.
    let o = Command::new(YKT)
        .args(["gp", "list", "--reader", "no such reader 0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Content management on the test card: a supplementary security domain created with its
/// first keys, opened with them, given an application by extradition and emptied again; the
/// ISD's IIN set by STORE DATA; the SD package deleted, loaded (with its hash) and installed.
#[test]
fn create_sd_extradite_store_data_delete_load_install() {
    let dir = temp_dir("content");
    let state = dir.join("card.state");
    let key = "00112233445566778899AABBCCDDEEFF";
    let ssd = "A000000151535041AA01";
    let out = ok(
        &state,
        &[
            "create-sd",
            ssd,
            "--privs",
            "AuthorizedManagement",
            "--sd-key",
            key,
        ],
    );
    assert!(out.contains("key set 30 put into"), "{out}");
    let listing = ok(&state, &["list"]);
    let line = line_of(&listing, ssd);
    assert!(
        line.starts_with("SSD") && line.contains("PERSONALIZED"),
        "{line}"
    );
    assert!(
        line.contains("SecurityDomain,AuthorizedManagement"),
        "{line}"
    );
    // Its own keys open it; the ISD's test keys do not.
    assert!(!ok(&state, &["list", "--sd", ssd, "--key", key]).contains(EPURSE));
    let o = gp(&state, &["list", "--sd", ssd]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    ok(&state, &["extradite", EPURSE, "--to", ssd]);
    assert!(ok(&state, &["list", "--sd", ssd, "--key", key]).contains(EPURSE));
    // Not deletable while it has content (6985), then emptied and deleted.
    let o = gp(&state, &["delete", ssd]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    ok(&state, &["extradite", EPURSE, "--to", "A000000151000000"]);
    ok(&state, &["delete", ssd]);
    assert!(!ok(&state, &["list"]).contains(ssd));

    ok(&state, &["store-data", "--tlv", "4204CAFE0001"]);
    assert!(ok(&state, &["info"]).contains("IIN: CAFE0001"));

    // The SD package: deleted, loaded again from its load file data block, installed.
    ok(&state, &["delete", "A0000001515350", "--related"]);
    assert!(!ok(&state, &["list"]).contains("A0000001515350 "));
    let lfdb = dir.join("sd.lfdb");
    let mut bytes = b"YKT\x01\x07".to_vec();
    bytes.extend(hex::decode("A00000015153500100").unwrap());
    std::fs::write(&lfdb, &bytes).unwrap();
    let out = ok(
        &state,
        &[
            "install",
            "--load",
            lfdb.to_str().unwrap(),
            "--hash",
            "--package",
            "A0000001515350",
            "--module",
            "A000000151535041",
            "--instance",
            "A000000151535041BB02",
            "--privs",
            "SecurityDomain",
        ],
    );
    assert!(out.contains("installed A000000151535041BB02"), "{out}");
    let listing = ok(&state, &["list"]);
    assert!(
        line_of(&listing, "A0000001515350").starts_with("PKG"),
        "{listing}"
    );
    assert!(
        line_of(&listing, "A000000151535041BB02").starts_with("SSD"),
        "{listing}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
