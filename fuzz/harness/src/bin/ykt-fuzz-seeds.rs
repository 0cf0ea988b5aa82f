//! Writes the seed inputs of every fuzz target to `fuzz/seeds/<target>/` from the project's
//! test data (transcripts, QR vectors) and its test fixtures (the §6 QR chain, the e-purse
//! DGI builder, the GP personalisation flow of `crates/ykt-gp/tests/it/purse_perso.rs`).
//!
//! `cargo run --manifest-path fuzz/Cargo.toml -p ykt-fuzz-harness --bin ykt-fuzz-seeds`

use std::fs;
use std::path::{Path, PathBuf};

use ykt_card::Aid;
use ykt_crypto::purse::PurseAlgorithm;
use ykt_fuzz_harness::{frame, gp, unhex};
use ykt_gp::commands::load::{load_file, load_file_data_block};
use ykt_gp::commands::put_key::{KeyEncryption, encode_key_set};
use ykt_purse::PurseProfile;
use ykt_purse::perso::Builder;
use ykt_purse::testing::{TEST_ASN, test_card_data, test_issuer};
use ykt_qr::testing::{CODE_80_HEX, CODE_81_HEX, GENERATION_TIME, ROOT_RECORD_HEX};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = root().join("fuzz/seeds").join(target);
    fs::create_dir_all(&dir).expect("seed directory");
    fs::write(dir.join(name), bytes).expect("seed file");
}

/// A transcript's commands (`>>`), responses (`<<`, without wildcards: `None`) and the hex
/// after a colon in comments (the plain forms of the session transcripts), in order.
struct Transcript {
    commands: Vec<Vec<u8>>,
    responses: Vec<Option<Vec<u8>>>,
    plain: Vec<Vec<u8>>,
    plain_responses: Vec<Vec<u8>>,
}

fn transcript(path: &Path) -> Transcript {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut t = Transcript {
        commands: Vec::new(),
        responses: Vec::new(),
        plain: Vec::new(),
        plain_responses: Vec::new(),
    };
    for line in text.lines() {
        let line = line.trim();
        if let Some(c) = line.strip_prefix(">>") {
            t.commands.push(unhex(c).expect("command hex"));
        } else if let Some(r) = line.strip_prefix("<<") {
            t.responses.push(unhex(r));
        } else if let Some(c) = line.strip_prefix('#') {
            let c = c.trim();
            if let Some(r) = c.strip_prefix("plain response:") {
                if let Some(r) = unhex(r) {
                    t.plain_responses.push(r);
                }
            } else if let Some((_, h)) = c.rsplit_once(": ")
                && let Some(cmd) = unhex(h)
                && cmd.len() >= 4
            {
                t.plain.push(cmd);
            }
        }
    }
    t
}

fn data(crate_name: &str, file: &str) -> PathBuf {
    root()
        .join("crates")
        .join(crate_name)
        .join("tests/data")
        .join(file)
}

fn lv(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![bytes.len() as u8];
    out.extend_from_slice(bytes);
    out
}

fn command(header: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = header.to_vec();
    out.push(body.len() as u8);
    out.extend_from_slice(body);
    out.push(0x00);
    out
}

fn qr() {
    let code80 = unhex(CODE_80_HEX).expect("hex");
    let code81 = unhex(CODE_81_HEX).expect("hex");
    let record = unhex(ROOT_RECORD_HEX).expect("hex");
    write("qr_code_decode", "code_80", &code80);
    write("qr_code_decode", "code_81", &code81);
    write("qr_code_decode", "authorisation_80", &code80[..295]);
    write("qr_code_decode", "certificate_80", &code80[3..120]);
    write("qr_code_decode", "root_key_record", &record);
    let mut entry = vec![0x00, 0x80];
    entry.extend_from_slice(&record);
    entry.resize(160, 0);
    write("qr_code_decode", "root_key_entry_80", &entry);
    let whitelist = unhex("9999000100000000 99990002 00 0000 01").expect("hex");
    write("qr_code_decode", "whitelist_record", &whitelist);

    // The verifier: the QR vectors' cases with their fare and time.
    let text = fs::read_to_string(data("ykt-qr", "qr_vectors.txt")).expect("qr vectors");
    let (mut now, mut fare, mut case) = (0i64, 0u32, String::new());
    for line in text.lines() {
        let Some((k, v)) = line.split_once(" = ") else {
            continue;
        };
        match k {
            "case" => case = v.to_string(),
            "now" => now = v.parse().expect("now"),
            "fare" => fare = v.parse().expect("fare"),
            "code" => {
                let offset = (now - i64::from(GENERATION_TIME)).clamp(-32768, 32767) as i16;
                // Mode 00 as scanned, 01 re-signed.
                for mode in [0u8, 1] {
                    let mut seed = vec![mode];
                    seed.extend_from_slice(&(fare.min(0xFFFF) as u16).to_be_bytes());
                    seed.extend_from_slice(&offset.to_be_bytes());
                    seed.extend_from_slice(&unhex(v).expect("code hex"));
                    let name = if mode == 0 {
                        case.clone()
                    } else {
                        format!("{case}.resigned")
                    };
                    write("qr_verify", &name, &seed);
                }
            }
            _ => {}
        }
    }

    // The record store: a good log (raw mode) and one of each damage (structured mode).
    let mut store =
        ykt_qr::store::RecordStore::open(ykt_qr::store::MemoryStorage::new(), 100).expect("open");
    for p in [
        &b"{\"seq\":100}"[..],
        b"{\"seq\":101,\"x\":\"yy\"}",
        b"{\"seq\":102}",
    ] {
        store.append(p).expect("append");
    }
    let mut raw = vec![0x00];
    raw.extend_from_slice(store.into_storage().bytes());
    write("qr_record_store", "raw_three_records", &raw);
    let mut torn = raw.clone();
    torn.truncate(raw.len() - 5);
    write("qr_record_store", "raw_torn_tail", &torn);
    for (name, op) in [("power_cut", 0u8), ("byte_flip", 1), ("cut_short", 2)] {
        let seed = [
            1, 0, 0, 0, 100, 3, 20, 0x41, 0xFF, 0x01, 0x00, 0x42, 5, 0x43, op, 0, 40, 0x20, 9,
        ];
        write("qr_record_store", name, &seed);
    }
}

fn card_isd() {
    for file in [
        "isd_plain.apdu",
        "isd_session_scp03.apdu",
        "isd_session_cmac.apdu",
    ] {
        let t = transcript(&data("ykt-gp", file));
        // The target's card has the ISD selected already; the transcripts' SELECT again is
        // harmless, and the session transcripts' cryptograms match the card's (same entropy).
        write(
            "card_apdu_isd",
            file.trim_end_matches(".apdu"),
            &frame(&t.commands),
        );
    }
}

fn card_session() {
    for (file, level) in [
        ("isd_session_scp03.apdu", 4u8),
        ("isd_session_cmac.apdu", 0),
    ] {
        let t = transcript(&data("ykt-gp", file));
        write(
            "card_apdu_session",
            file.trim_end_matches(".apdu"),
            &[&[level][..], &frame(&t.plain)].concat(),
        );
    }
    // The GP issuance of a purse: the ISD creates an SSD and gives it keys, then loads and
    // installs the purse package, makes it personalisable and deletes it again.
    let ssd = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x41, 0xC0, 0x01];
    let mut create = Vec::new();
    for part in [
        &ykt_gp::SD_PACKAGE[..],
        &ykt_gp::SD_MODULE,
        &ssd,
        &[0x80, 0x40, 0x00],
        &[0xC9, 0x00],
    ] {
        create.extend(lv(part));
    }
    create.push(0x00);
    let mut for_perso = vec![0x00, 0x00];
    for_perso.extend(lv(&ssd));
    for_perso.extend([0x00, 0x00, 0x00]);
    let k = |b: u8| ykt_crypto::AesKey::from_slice(&[b; 16]).expect("16 bytes");
    let ssd_keys = ykt_scp::KeySet::aes(0x30, k(0x70), k(0x71), k(0x72));
    let block = encode_key_set(&ssd_keys, &KeyEncryption::Static(&gp::keys().keys)).expect("keys");
    let mut dgi = vec![0x80, 0x01];
    dgi.extend(lv(&block));
    let elf = Aid::new(&gp::PURSE_ELF).expect("aid");
    let mut for_load = lv(&gp::PURSE_ELF);
    for_load.extend([0x00, 0x00, 0x00, 0x00]);
    let file = load_file(&load_file_data_block(&elf, [0x01, 0x00]));
    // The card has a plain applet at the purse's AID: the instance gets its own.
    let instance = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x09];
    let mut install = Vec::new();
    for part in [
        &gp::PURSE_ELF[..],
        &gp::PURSE_MODULE,
        &instance,
        &[0x00, 0x00, 0x00],
        &[0xC9, 0x00],
    ] {
        install.extend(lv(part));
    }
    install.push(0x00);
    let mut delete = vec![0x4F];
    delete.extend(lv(&gp::PURSE_ELF));
    let cmds = vec![
        command([0x80, 0xE6, 0x0C, 0x00], &create),
        command([0x80, 0xE6, 0x20, 0x00], &for_perso),
        command([0x80, 0xE2, 0x88, 0x00], &dgi),
        command([0x80, 0xE6, 0x02, 0x00], &for_load),
        command([0x80, 0xE8, 0x80, 0x00], &file),
        command([0x80, 0xE6, 0x0C, 0x00], &install),
        command([0x80, 0xF2, 0x40, 0x02], &[0x4F, 0x00]),
        command([0x80, 0xE4, 0x00, 0x80], &delete),
        command([0x80, 0xF2, 0x10, 0x02], &[0x4F, 0x00]),
    ];
    write(
        "card_apdu_session",
        "issue_ssd_and_purse",
        &[&[4u8][..], &frame(&cmds)].concat(),
    );
    // PUT KEY: a new AES key set at KVN 31.
    let new = ykt_scp::KeySet::aes(0x31, k(0x50), k(0x51), k(0x52));
    let block = encode_key_set(&new, &KeyEncryption::Static(&gp::keys().keys)).expect("keys");
    let put = command([0x80, 0xD8, 0x00, 0x81], &block);
    write(
        "card_apdu_session",
        "put_key_31",
        &[&[1u8][..], &frame(&[put])].concat(),
    );
}

fn purse() {
    for (name, alg) in [
        ("perso_3des", PurseAlgorithm::Tdes),
        (
            "perso_sm4",
            PurseAlgorithm::Sm4(ykt_crypto::purse::Sm4Rules::BRIEF),
        ),
    ] {
        let issuer = test_issuer(alg).expect("test issuer");
        let builder = Builder::issue(&issuer, PurseProfile::EPURSE, &test_card_data(TEST_ASN))
            .expect("builder");
        let blocks: Vec<Vec<u8>> = builder
            .blocks()
            .expect("blocks")
            .iter()
            .map(|b| [&[b.p1, b.p2][..], &b.data[..]].concat())
            .collect();
        write("purse_store_data", name, &frame(&blocks));
    }
}

fn nfcqr() {
    for file in ["nfcqr_s6_flow.apdu", "nfcqr_errors.apdu"] {
        let t = transcript(&data("ykt-nfcqr", file));
        // The target selects the applet itself.
        write(
            "nfcqr_apdu",
            file.trim_end_matches(".apdu"),
            &frame(&t.commands),
        );
    }
}

fn gp_host() {
    let t = transcript(&data("ykt-gp", "isd_plain.apdu"));
    for (i, r) in t.responses.iter().flatten().enumerate() {
        if r.len() > 2 && r.ends_with(&[0x90, 0x00]) {
            write(
                "gp_host_parsers",
                &format!("plain_response_{i:02}"),
                &[&[0u8][..], &r[..r.len() - 2]].concat(),
            );
        }
    }
    let s = transcript(&data("ykt-gp", "isd_session_scp03.apdu"));
    for (i, r) in s.plain_responses.iter().enumerate() {
        if r.len() > 2 {
            write(
                "gp_host_parsers",
                &format!("get_status_{i:02}"),
                &[&[0u8][..], &r[..r.len() - 2]].concat(),
            );
        }
    }
    // Scripted mode: the card's plain answers, in the order the host asks (GET STATUS of the
    // ISD, applications, load files; then CPLC, card data, key information, IIN, CIN).
    let mut answers: Vec<Vec<u8>> = s.plain_responses.clone();
    answers.extend(t.responses.iter().flatten().skip(1).take(5).cloned());
    write(
        "gp_host_parsers",
        "scripted_session",
        &[&[1u8][..], &frame(&answers)].concat(),
    );
}

fn main() {
    qr();
    card_isd();
    card_session();
    purse();
    nfcqr();
    gp_host();
    println!("seeds written to {}", root().join("fuzz/seeds").display());
}
