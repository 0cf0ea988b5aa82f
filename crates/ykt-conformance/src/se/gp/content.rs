//! SE-GP content management items: LOAD and INSTALL of the test package, DELETE with related
//! objects, lock and unlock at SELECT, personalisation through STORE DATA, a supplementary
//! security domain's first keys and their rotation, delegated management with tokens and
//! receipts, and refusals that leave the registry as it was (GP Card Specification v2.3.1
//! §11.2, §11.5, §11.6, §11.8, §11.11, §11.1.7 and Amendment A; tsm-gp.md §3, §4, §6).
//!
//! Every checker works relative to the card's state: it first removes what an earlier,
//! interrupted run may have left (the test instances and the test load file, deleted with
//! related objects), and it removes what it created when it is done.

use ykt_apdu::CommandApdu;
use ykt_crypto::{AesKey, Sm4Key, cbc_encrypt, ecb_encrypt};
use ykt_gp::commands::load::{load_file, load_file_data_block};
use ykt_gp::commands::put_key::{KeyEncryption, encode_key_set};
use ykt_gp::dm::{ReceiptContext, TokenSigner, signed_install_data, verify_receipt};
use ykt_gp::{ISD_AID, SD_MODULE, SD_PACKAGE};
use ykt_scp::{KeySet, SecurityLevel, StaticKeys};

use super::commands::kcv;
use super::{Channel, SW_MORE, get_status, select, tlvs};
use crate::isd::{
    IsdChannel, TEST_PACKAGE_ELF, TEST_PACKAGE_MODULE, TEST_PACKAGE_VERSION,
    danger_test_token_signer, test_receipt_key,
};
use crate::params::Params;
use crate::se::{SeHarness, expect_sw};
use crate::transcript::hex;
use crate::verdict::{Stop, ensure};

/// The instance the items install from the test package (a fresh AID beside the e-purse).
pub const TEST_INSTANCE: [u8; 9] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05, 0xC1];
/// The supplementary security domain of SE-GP-KEY-001.
pub const TEST_SSD: [u8; 10] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x41, 0xC0, 0x01];
/// The supplementary security domain with Delegated Management of SE-GP-DM-001.
pub const TEST_DM_SSD: [u8; 10] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x41, 0xD0, 0x01];

/// Privileges: Security Domain (`80 00 00`).
const PRIV_SD: [u8; 3] = [0x80, 0x00, 0x00];
/// Privileges: Security Domain with Delegated Management (`A0 00 00`).
const PRIV_SD_DM: [u8; 3] = [0xA0, 0x00, 0x00];

fn lv(out: &mut Vec<u8>, field: &[u8]) {
    // Every field here is an AID, a privilege byte string or a short parameter block.
    out.push(field.len() as u8);
    out.extend_from_slice(field);
}

fn install(p1: u8, data: Vec<u8>) -> CommandApdu {
    CommandApdu::new(0x80, 0xE6, p1, 0x00)
        .with_data(data)
        .with_le(256)
}

/// INSTALL [for load] of the test package with `hash` (empty: none), no SD named (the one
/// whose session this is).
pub fn install_for_load(hash: &[u8]) -> CommandApdu {
    let mut d = Vec::new();
    lv(&mut d, &TEST_PACKAGE_ELF);
    lv(&mut d, &[]);
    lv(&mut d, hash);
    lv(&mut d, &[]);
    lv(&mut d, &[]);
    install(0x02, d)
}

/// INSTALL with `p1` (`04` install, `0C` install and make selectable) of `module` of `elf` at
/// `instance` with `privileges` and empty parameters `C9 00`.
fn install_instance(
    p1: u8,
    elf: &[u8],
    module: &[u8],
    instance: &[u8],
    privileges: &[u8],
) -> CommandApdu {
    let mut d = Vec::new();
    for f in [elf, module, instance, privileges, &[0xC9, 0x00]] {
        lv(&mut d, f);
    }
    lv(&mut d, &[]);
    install(p1, d)
}

/// INSTALL [for personalization] of `aid`.
fn install_for_personalization(aid: &[u8]) -> CommandApdu {
    let mut d = vec![0x00, 0x00];
    lv(&mut d, aid);
    d.extend_from_slice(&[0x00, 0x00, 0x00]);
    install(0x20, d)
}

/// DELETE of `aid`; `related` sets P2 `80` (with related objects).
fn delete(aid: &[u8], related: bool) -> CommandApdu {
    let mut d = vec![0x4F];
    lv(&mut d, aid);
    CommandApdu::new(0x80, 0xE4, 0x00, if related { 0x80 } else { 0x00 })
        .with_data(d)
        .with_le(256)
}

/// The LOAD commands of the test package in blocks of `block` bytes.
fn load_blocks(block: usize) -> Result<Vec<CommandApdu>, Stop> {
    let elf = ykt_card::Aid::new(&TEST_PACKAGE_ELF)
        .map_err(|_| Stop::Inconclusive("the test package AID".into()))?;
    let file = load_file(&load_file_data_block(&elf, TEST_PACKAGE_VERSION));
    let chunks: Vec<&[u8]> = file.chunks(block.max(1)).collect();
    let n = chunks.len();
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let p1 = if i + 1 == n { 0x80 } else { 0x00 };
            // At most 255 blocks: the test load file has well under 255 × `block` bytes.
            CommandApdu::new(0x80, 0xE8, p1, i as u8)
                .with_data(c.to_vec())
                .with_le(256)
        })
        .collect())
}

/// One registry listing: every E3 entry of GET STATUS `p1`, in parts while `6310`; `6A88`
/// (nothing of that kind) is an empty list.
fn entries(s: &mut SeHarness<'_>, ch: &mut Channel, p1: u8) -> Result<Vec<Vec<u8>>, Stop> {
    let mut out = Vec::new();
    let mut p2 = 0x02;
    for _ in 0..32 {
        let r = s.wrapped(ch, &get_status(p1, p2))?;
        if r.sw.0 == 0x6A88 && out.is_empty() {
            return Ok(out);
        }
        if r.sw.0 != SW_MORE {
            expect_sw(&r, 0x9000, &format!("GET STATUS {p1:02X}"))?;
        }
        let list = tlvs(&r.data).ok_or_else(|| {
            Stop::Fail(format!("GET STATUS {p1:02X}: malformed {}", hex(&r.data)))
        })?;
        out.extend(list.into_iter().filter(|(t, _)| *t == 0xE3).map(|(_, v)| v));
        if r.sw.0 != SW_MORE {
            return Ok(out);
        }
        p2 = 0x03;
    }
    Err(Stop::Fail("GET STATUS still 6310 after 32 parts".into()))
}

/// The whole registry as GET STATUS shows it: ISD, applications and SDs, load files with
/// their modules.
fn registry(s: &mut SeHarness<'_>, ch: &mut Channel) -> Result<Vec<Vec<Vec<u8>>>, Stop> {
    let mut out = Vec::new();
    for p1 in [0x80, 0x40, 0x10] {
        let mut e = entries(s, ch, p1)?;
        e.sort();
        out.push(e);
    }
    Ok(out)
}

fn field(entry: &[u8], tag: u16) -> Option<Vec<u8>> {
    tlvs(entry)?
        .into_iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v)
}

/// The life cycle byte of `aid` in the listing, if listed.
fn state_of(list: &[Vec<u8>], aid: &[u8]) -> Option<u8> {
    list.iter()
        .find(|e| field(e, 0x4F).as_deref() == Some(aid))
        .and_then(|e| field(e, 0x9F70))
        .and_then(|v| v.first().copied())
}

/// An ISD session at C-MAC.
fn isd(s: &mut SeHarness<'_>) -> Result<Channel, Stop> {
    s.open_channel(SecurityLevel::C_MAC)
}

/// Removes what an earlier run may have left: the test SSDs, the test instance and the test
/// load file (DELETE with related objects; `6A88` is fine).
fn clean(s: &mut SeHarness<'_>) -> Result<(), Stop> {
    let mut ch = isd(s)?;
    for aid in [
        &TEST_DM_SSD[..],
        &TEST_SSD,
        &TEST_PACKAGE_ELF,
        &TEST_INSTANCE,
    ] {
        let r = s.wrapped(&mut ch, &delete(aid, true))?;
        ensure(matches!(r.sw.0, 0x9000 | 0x6A88), || {
            format!(
                "clean-up: DELETE {} with related objects answered {:04X}",
                hex(aid),
                r.sw.0
            )
        })?;
    }
    Ok(())
}

/// INSTALL [for load], LOAD in `block`-byte blocks, INSTALL [for install and make selectable]
/// of [`TEST_INSTANCE`], all through `ch`.
fn load_and_install(s: &mut SeHarness<'_>, ch: &mut Channel, block: usize) -> Result<(), Stop> {
    s.wrapped_ok(ch, &install_for_load(&[]), "INSTALL [for load]")?;
    for (i, c) in load_blocks(block)?.iter().enumerate() {
        s.wrapped_ok(ch, c, &format!("LOAD block {i}"))?;
    }
    s.wrapped_ok(
        ch,
        &install_instance(
            0x0C,
            &TEST_PACKAGE_ELF,
            &TEST_PACKAGE_MODULE,
            &TEST_INSTANCE,
            &[0, 0, 0],
        ),
        "INSTALL [for install and make selectable]",
    )?;
    Ok(())
}

/// SE-GP-LIFE-001: INSTALL [for load] and LOAD of the test package, INSTALL [for install and
/// make selectable] of an instance; GET STATUS lists the load file LOADED (`01`) with its
/// module and the instance SELECTABLE (`07`) under the ISD, and SELECT reaches it.
pub(in crate::se) fn install_and_load(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
    let block = p.u32("block", 64)? as usize;
    clean(s)?;
    let mut ch = isd(s)?;
    load_and_install(s, &mut ch, block)?;
    let files = entries(s, &mut ch, 0x10)?;
    let file = files
        .iter()
        .find(|e| field(e, 0x4F).as_deref() == Some(&TEST_PACKAGE_ELF[..]))
        .ok_or_else(|| Stop::Fail("GET STATUS 10 does not list the loaded file".into()))?;
    ensure(field(file, 0x9F70).as_deref() == Some(&[0x01][..]), || {
        format!("the load file entry {} is not LOADED (01)", hex(file))
    })?;
    ensure(
        field(file, 0x84).as_deref() == Some(&TEST_PACKAGE_MODULE[..]),
        || format!("the load file entry {} lacks its module", hex(file)),
    )?;
    ensure(
        field(file, 0xCE).as_deref() == Some(&TEST_PACKAGE_VERSION[..]),
        || format!("the load file entry {} lacks version 0100", hex(file)),
    )?;
    let apps = entries(s, &mut ch, 0x40)?;
    ensure(state_of(&apps, &TEST_INSTANCE) == Some(0x07), || {
        format!(
            "the instance {} is not listed SELECTABLE (07)",
            hex(&TEST_INSTANCE)
        )
    })?;
    let app = apps
        .iter()
        .find(|e| field(e, 0x4F).as_deref() == Some(&TEST_INSTANCE[..]))
        .cloned()
        .unwrap_or_default();
    ensure(field(&app, 0xCC).as_deref() == Some(&ISD_AID[..]), || {
        format!("the instance {} is not associated with the ISD", hex(&app))
    })?;
    let sw = s.sw(&select(&TEST_INSTANCE))?;
    ensure(sw != 0x6A82, || {
        "SELECT of the installed instance answered 6A82".into()
    })?;
    clean(s)?;
    Ok(format!(
        "loaded in {block}-byte blocks: load file 01 with module and version 0100; instance 07 under the ISD; SELECT {sw:04X}"
    ))
}

/// SE-GP-LIFE-002: DELETE of the load file alone is refused while it has an instance; with P2
/// `80` the instance and the load file go: absent from GET STATUS, SELECT `6A82`.
pub(in crate::se) fn delete_with_related(
    s: &mut SeHarness<'_>,
    _: Params<'_>,
) -> Result<String, Stop> {
    clean(s)?;
    let mut ch = isd(s)?;
    load_and_install(s, &mut ch, 200)?;
    let r = s.wrapped(&mut ch, &delete(&TEST_PACKAGE_ELF, false))?;
    expect_sw(&r, 0x6985, "DELETE of a load file with an instance, P2 00")?;
    s.wrapped_ok(
        &mut ch,
        &delete(&TEST_PACKAGE_ELF, true),
        "DELETE with related objects (P2 80)",
    )?;
    let apps = entries(s, &mut ch, 0x40)?;
    let files = entries(s, &mut ch, 0x10)?;
    ensure(state_of(&apps, &TEST_INSTANCE).is_none(), || {
        "the instance is still listed after DELETE".into()
    })?;
    ensure(state_of(&files, &TEST_PACKAGE_ELF).is_none(), || {
        "the load file is still listed after DELETE".into()
    })?;
    let r = s.send(&select(&TEST_INSTANCE))?;
    expect_sw(&r, 0x6A82, "SELECT of the deleted instance")?;
    Ok("P2 00 refused 6985 while an instance exists; P2 80: instance and load file absent from GET STATUS; SELECT 6A82".into())
}

/// SE-GP-LIFE-003: SET STATUS lock (`80 F0 40 80`) makes the instance unselectable (`6A82`)
/// and lists it `87`; unlock (`80 F0 40 00`) brings back its state and its SELECT answer.
pub(in crate::se) fn lock_unlock(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    clean(s)?;
    let mut ch = isd(s)?;
    load_and_install(s, &mut ch, 200)?;
    let before = s.sw(&select(&TEST_INSTANCE))?;
    let mut ch = isd(s)?;
    let lock = CommandApdu::new(0x80, 0xF0, 0x40, 0x80).with_data(TEST_INSTANCE.to_vec());
    s.wrapped_ok(&mut ch, &lock, "SET STATUS lock")?;
    let apps = entries(s, &mut ch, 0x40)?;
    ensure(state_of(&apps, &TEST_INSTANCE) == Some(0x87), || {
        format!(
            "the locked instance is listed {:02X?}, not 87",
            state_of(&apps, &TEST_INSTANCE)
        )
    })?;
    let r = s.send(&select(&TEST_INSTANCE))?;
    expect_sw(&r, 0x6A82, "SELECT of the locked instance")?;
    let mut ch = isd(s)?;
    let unlock = CommandApdu::new(0x80, 0xF0, 0x40, 0x00).with_data(TEST_INSTANCE.to_vec());
    s.wrapped_ok(&mut ch, &unlock, "SET STATUS unlock")?;
    let apps = entries(s, &mut ch, 0x40)?;
    ensure(state_of(&apps, &TEST_INSTANCE) == Some(0x07), || {
        "the unlocked instance is not listed 07 again".into()
    })?;
    let after = s.sw(&select(&TEST_INSTANCE))?;
    ensure(after == before, || {
        format!("SELECT after unlock answered {after:04X}, before the lock {before:04X}")
    })?;
    clean(s)?;
    Ok(format!(
        "locked: listed 87, SELECT 6A82; unlocked: listed 07, SELECT {after:04X} as before"
    ))
}

/// Encrypts a STORE DATA block for the SD of `ch` (`ykt_gp::commands::store_data::
/// DECRYPT_RULE`): ISO/IEC 9797-1 method 2 padding, then the SCP02 session DEK (3DES-ECB) or
/// the static K-DEK (AES or SM4 CBC, ICV zero).
fn encrypt_for_sd(ch: &Channel, keys: &KeySet, data: &[u8]) -> Result<Vec<u8>, Stop> {
    let bad = |e: ykt_crypto::Error| Stop::Inconclusive(format!("STORE DATA encryption: {e}"));
    let block = match keys.keys {
        StaticKeys::Tdes { .. } => 8,
        _ => 16,
    };
    let mut padded = data.to_vec();
    padded.push(0x80);
    while !padded.len().is_multiple_of(block) {
        padded.push(0);
    }
    match &keys.keys {
        StaticKeys::Tdes { .. } => {
            let dek = ch
                .session
                .scp02_session_dek()
                .ok_or_else(|| Stop::Inconclusive("no SCP02 session DEK".into()))?;
            ecb_encrypt(dek, &padded).map_err(bad)
        }
        StaticKeys::Aes { dek, .. } => {
            let dek: &AesKey = dek;
            cbc_encrypt(dek, &[0u8; 16], &padded).map_err(bad)
        }
        StaticKeys::Sm4 { dek, .. } => {
            let dek: &Sm4Key = dek;
            cbc_encrypt(dek, &[0u8; 16], &padded).map_err(bad)
        }
    }
}

/// SE-GP-PERSO-001: INSTALL [for personalization] names the new instance, STORE DATA carries
/// the e-purse's DGIs to it (secret ones encrypted under the ISD's key-encryption key), and
/// the instance then answers as a personalised e-purse: GET BALANCE gives the personalised
/// balance.
pub(in crate::se) fn personalise(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    use ykt_crypto::purse::PurseAlgorithm;
    use ykt_purse::perso::Builder;
    use ykt_purse::testing::{TEST_ASN, test_card_data, test_issuer};
    clean(s)?;
    let keys = s.isd_keys()?;
    let mut ch = s.open_channel(SecurityLevel::C_DEC_C_MAC)?;
    load_and_install(s, &mut ch, 200)?;
    s.wrapped_ok(
        &mut ch,
        &install_for_personalization(&TEST_INSTANCE),
        "INSTALL [for personalization]",
    )?;
    let data = test_card_data(TEST_ASN);
    let issuer = test_issuer(PurseAlgorithm::Tdes)
        .map_err(|e| Stop::Inconclusive(format!("the test issuer: {e}")))?;
    let blocks = Builder::issue(&issuer, ykt_purse::PurseProfile::EPURSE, &data)
        .and_then(|b| b.blocks())
        .map_err(|e| Stop::Inconclusive(format!("the personalisation blocks: {e}")))?;
    let mut encrypted = 0;
    for b in &blocks {
        let field = if b.encrypted() {
            encrypted += 1;
            encrypt_for_sd(&ch, &keys, &b.data)?
        } else {
            b.data.to_vec()
        };
        let c = CommandApdu::new(0x80, 0xE2, b.p1, b.p2).with_data(field);
        s.wrapped_ok(&mut ch, &c, &format!("STORE DATA block {:02X}", b.p2))?;
    }
    s.ok(
        &select(&TEST_INSTANCE),
        "SELECT of the personalised instance",
    )?;
    let bal = s.ok(
        &CommandApdu::new(0x80, 0x5C, 0x00, 0x02).with_le(4),
        "GET BALANCE of the personalised instance",
    )?;
    let balance = match bal.as_slice() {
        [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => return Err(Stop::Fail(format!("GET BALANCE gave {}", hex(&bal)))),
    };
    ensure(balance == data.balance, || {
        format!("GET BALANCE gave {balance}, personalised {}", data.balance)
    })?;
    clean(s)?;
    Ok(format!(
        "{} STORE DATA blocks ({encrypted} encrypted) reached the instance: SELECT 9000, GET BALANCE {balance}",
        blocks.len()
    ))
}

/// The channel a new SSD runs: the ISD's protocol with its own keys.
fn ssd_channel(
    s: &mut SeHarness<'_>,
    aid: &[u8],
    keys: &KeySet,
    level: SecurityLevel,
) -> Result<Channel, Stop> {
    s.ok(&select(aid), "SELECT of the SSD")?;
    s.initialize_update_to(keys, level, aid)
        .and_then(|(mut ch, ea)| {
            let r = s.send(&ea)?;
            expect_sw(&r, 0x9000, "EXTERNAL AUTHENTICATE to the SSD")?;
            ch.session
                .on_external_authenticate_response(&r)
                .map_err(|e| Stop::Fail(format!("EXTERNAL AUTHENTICATE to the SSD: {e}")))?;
            Ok(ch)
        })
}

/// Creates the SSD `aid` with `privileges` and gives it `keys` by STORE DATA DGI `8001`
/// through the ISD; checks the answer (KVN and the KCVs the harness computes itself).
fn create_ssd(
    s: &mut SeHarness<'_>,
    aid: &[u8],
    privileges: &[u8; 3],
    test_keys: TestKeys,
) -> Result<String, Stop> {
    let channel = s.isd_channel()?;
    let keys = &test_keys.key_set(channel)?;
    let isd_keys = s.isd_keys()?;
    let mut ch = s.open_channel(SecurityLevel::C_DEC_C_MAC)?;
    s.wrapped_ok(
        &mut ch,
        &install_instance(0x0C, &SD_PACKAGE, &SD_MODULE, aid, privileges),
        "INSTALL of the SSD",
    )?;
    s.wrapped_ok(
        &mut ch,
        &install_for_personalization(aid),
        "INSTALL [for personalization] of the SSD",
    )?;
    let block = key_block(channel, &ch, &isd_keys, keys)?;
    let mut dgi = vec![0x80, 0x01];
    dgi.push(block.len() as u8);
    dgi.extend_from_slice(&block);
    let answer = s.wrapped_ok(
        &mut ch,
        &CommandApdu::new(0x80, 0xE2, 0x88, 0x00)
            .with_data(dgi)
            .with_le(256),
        "STORE DATA DGI 8001",
    )?;
    let expected = test_keys.kcvs(channel)?;
    ensure(answer == expected, || {
        format!(
            "DGI 8001 answered {}, expected KVN and KCVs {}",
            hex(&answer),
            hex(&expected)
        )
    })?;
    Ok(hex(&answer))
}

/// The PUT KEY data of `new`, encrypted for a session opened with `under`.
fn key_block(
    channel: IsdChannel,
    ch: &Channel,
    under: &KeySet,
    new: &KeySet,
) -> Result<Vec<u8>, Stop> {
    let enc = match channel {
        IsdChannel::Scp02 => KeyEncryption::Scp02(
            ch.session
                .scp02_session_dek()
                .ok_or_else(|| Stop::Inconclusive("no SCP02 session DEK".into()))?,
        ),
        _ => KeyEncryption::Static(&under.keys),
    };
    encode_key_set(new, &enc).ok_or_else(|| Stop::Inconclusive("PUT KEY data".into()))
}

/// A test key set of the SSD items: one 16-byte value as K-ENC, K-MAC and K-DEK.
#[derive(Clone, Copy)]
struct TestKeys {
    version: u8,
    byte: u8,
}

impl TestKeys {
    fn key_set(self, channel: IsdChannel) -> Result<KeySet, Stop> {
        channel
            .key_set(self.version, &[self.byte; 16])
            .map_err(|e| Stop::Inconclusive(format!("key set: {e}")))
    }

    /// KVN ‖ the three KCVs, as the card must answer them (computed here, never copied).
    fn kcvs(self, channel: IsdChannel) -> Result<Vec<u8>, Stop> {
        let mut out = vec![self.version];
        for _ in 0..3 {
            out.extend_from_slice(&kcv(channel, &[self.byte; 16])?);
        }
        Ok(out)
    }
}

/// SE-GP-KEY-001: an SSD created by the ISD gets its first keys by STORE DATA DGI `8001`
/// (answer: KVN and KCVs); its own channel opens with them; PUT KEY replacing the key set
/// answers the new KVN and KCVs; afterwards the old keys fail and the new ones open.
pub(in crate::se) fn ssd_key_rotation(
    s: &mut SeHarness<'_>,
    _: Params<'_>,
) -> Result<String, Stop> {
    let channel = s.isd_channel()?;
    clean(s)?;
    let first_keys = TestKeys {
        version: 0x30,
        byte: 0x5A,
    };
    let new_keys = TestKeys {
        version: 0x31,
        byte: 0xA5,
    };
    let first = first_keys.key_set(channel)?;
    let answer = create_ssd(s, &TEST_SSD, &PRIV_SD, first_keys)?;
    let mut ch = ssd_channel(s, &TEST_SSD, &first, SecurityLevel::C_DEC_C_MAC)?;
    let new = new_keys.key_set(channel)?;
    let data = key_block(channel, &ch, &first, &new)?;
    let put = CommandApdu::new(0x80, 0xD8, first.version, 0x81)
        .with_data(data)
        .with_le(256);
    let r = s.wrapped_ok(&mut ch, &put, "PUT KEY to the SSD")?;
    let expected = new_keys.kcvs(channel)?;
    ensure(r == expected, || {
        format!("PUT KEY answered {}, expected {}", hex(&r), hex(&expected))
    })?;
    s.ok(&select(&TEST_SSD), "SELECT of the SSD")?;
    let challenge = [0x21; 8];
    let iu = CommandApdu::new(0x80, 0x50, first.version, 0x00)
        .with_data(challenge.to_vec())
        .with_le(256);
    let old = s.sw(&iu)?;
    ensure(old != 0x9000, || {
        "INITIALIZE UPDATE with the replaced key version answered 9000".into()
    })?;
    ssd_channel(s, &TEST_SSD, &new, SecurityLevel::C_MAC)?;
    clean(s)?;
    Ok(format!(
        "DGI 8001 answered {answer} (KCVs recomputed); PUT KEY answered {}; old KVN refused {old:04X}; new keys open",
        hex(&r)
    ))
}

/// SE-GP-DM-001: an SSD with Delegated Management loads only with a token of the card
/// issuer: INSTALL [for load] with a valid token answers `9000` and a receipt that verifies
/// under the receipt key; INSTALL [for install] with a token of another signer is `6982` and
/// GET STATUS is unchanged.
pub(in crate::se) fn delegated_management(
    s: &mut SeHarness<'_>,
    _: Params<'_>,
) -> Result<String, Stop> {
    let channel = s.isd_channel()?;
    let signer = danger_test_token_signer()
        .map_err(|e| Stop::Inconclusive(format!("the test token key: {e}")))?;
    let receipt_key =
        test_receipt_key().map_err(|e| Stop::Inconclusive(format!("the receipt key: {e}")))?;
    let other = ykt_crypto::Sm2PrivateKey::from_bytes(&[0x42; 32])
        .map(TokenSigner::Sm2)
        .map_err(|e| Stop::Inconclusive(format!("the other token key: {e}")))?;
    clean(s)?;
    let dm_keys = TestKeys {
        version: 0x30,
        byte: 0x3C,
    };
    let keys = dm_keys.key_set(channel)?;
    create_ssd(s, &TEST_DM_SSD, &PRIV_SD_DM, dm_keys)?;
    let mut ch = ssd_channel(s, &TEST_DM_SSD, &keys, SecurityLevel::C_MAC)?;
    let untokened = s.wrapped(&mut ch, &install_for_load(&[]))?;
    ensure(untokened.sw.0 == 0x6982, || {
        format!(
            "INSTALL [for load] without a token answered {:04X}, not 6982",
            untokened.sw.0
        )
    })?;
    let mut ch = ssd_channel(s, &TEST_DM_SSD, &keys, SecurityLevel::C_MAC)?;
    let fields: [&[u8]; 4] = [&TEST_PACKAGE_ELF, &[], &[], &[]];
    let dm = |e| Stop::Inconclusive(format!("token: {e}"));
    let data = signed_install_data(&signer, 0x02, 0x00, &fields).map_err(dm)?;
    let response = s.wrapped_ok(
        &mut ch,
        &install(0x02, data),
        "INSTALL [for load] with a valid token",
    )?;
    let confirmation = verify_receipt(
        &receipt_key,
        &response,
        &ReceiptContext::Load {
            elf_aid: &TEST_PACKAGE_ELF,
            sd_aid: &TEST_DM_SSD,
        },
    )
    .map_err(|e| {
        Stop::Fail(format!(
            "the receipt {} does not verify: {e}",
            hex(&response)
        ))
    })?;
    for (i, c) in load_blocks(200)?.iter().enumerate() {
        s.wrapped_ok(&mut ch, c, &format!("LOAD block {i} under the token"))?;
    }
    let before = registry(s, &mut ch)?;
    let install_fields: [&[u8]; 5] = [
        &TEST_PACKAGE_ELF,
        &TEST_PACKAGE_MODULE,
        &TEST_INSTANCE,
        &[0, 0, 0],
        &[0xC9, 0x00],
    ];
    let forged = signed_install_data(&other, 0x0C, 0x00, &install_fields).map_err(dm)?;
    let r = s.wrapped(&mut ch, &install(0x0C, forged))?;
    expect_sw(&r, 0x6982, "INSTALL with a token of another signer")?;
    let mut ch = ssd_channel(s, &TEST_DM_SSD, &keys, SecurityLevel::C_MAC)?;
    let after = registry(s, &mut ch)?;
    ensure(after == before, || {
        "the refused INSTALL changed GET STATUS".into()
    })?;
    ensure(state_of(&after[1], &TEST_INSTANCE).is_none(), || {
        "the instance of the refused INSTALL is listed".into()
    })?;
    clean(s)?;
    Ok(format!(
        "without a token 6982; valid token 9000 with a receipt that verifies (confirmation counter {}); forged token 6982, GET STATUS unchanged",
        confirmation.counter
    ))
}

/// SE-GP-LIFE-004: refused content management changes nothing: a malformed INSTALL (short,
/// trailing bytes, unknown load file), a LOAD whose data block hash is wrong, and LOAD blocks
/// out of order are refused and GET STATUS lists exactly what it listed before.
pub(in crate::se) fn refusals_unchanged(
    s: &mut SeHarness<'_>,
    _: Params<'_>,
) -> Result<String, Stop> {
    clean(s)?;
    let mut ch = isd(s)?;
    let before = registry(s, &mut ch)?;
    let mut out = Vec::new();
    let mut short = Vec::new();
    lv(&mut short, &TEST_PACKAGE_ELF);
    let mut trailing = install_instance(
        0x0C,
        &TEST_PACKAGE_ELF,
        &TEST_PACKAGE_MODULE,
        &TEST_INSTANCE,
        &[0, 0, 0],
    )
    .data;
    trailing.push(0x00);
    let unknown = install_instance(
        0x0C,
        &[0xA0, 0x00, 0x00, 0x06, 0x32, 0x99, 0x99],
        &TEST_PACKAGE_MODULE,
        &TEST_INSTANCE,
        &[0, 0, 0],
    );
    for (what, c) in [
        ("INSTALL with a short data field", install(0x0C, short)),
        ("INSTALL with trailing bytes", install(0x0C, trailing)),
        ("INSTALL of an unknown load file", unknown),
    ] {
        let r = s.wrapped(&mut ch, &c)?;
        ensure(!r.sw.is_success(), || format!("{what} was accepted"))?;
        out.push(format!("{what} {:04X}", r.sw.0));
    }
    // A wrong hash: INSTALL [for load] announces one, the LOAD's data block differs.
    s.wrapped_ok(
        &mut ch,
        &install_for_load(&[0u8; 32]),
        "INSTALL [for load] with a hash",
    )?;
    let blocks = load_blocks(1024)?;
    let mut last = 0;
    for c in &blocks {
        let r = s.wrapped(&mut ch, c)?;
        last = r.sw.0;
        if !r.sw.is_success() {
            break;
        }
    }
    ensure(last != 0x9000, || {
        "LOAD with a wrong data block hash was accepted".into()
    })?;
    out.push(format!("LOAD with a wrong hash {last:04X}"));
    // Blocks out of order: block 1 first.
    let mut ch = isd(s)?;
    s.wrapped_ok(&mut ch, &install_for_load(&[]), "INSTALL [for load]")?;
    let blocks = load_blocks(8)?;
    let second = blocks
        .get(1)
        .ok_or_else(|| Stop::Inconclusive("the load file fits one block".into()))?;
    let r = s.wrapped(&mut ch, second)?;
    ensure(!r.sw.is_success(), || {
        "LOAD block 01 before block 00 was accepted".into()
    })?;
    out.push(format!("LOAD block 01 first {:04X}", r.sw.0));
    let mut ch = isd(s)?;
    let after = registry(s, &mut ch)?;
    ensure(after == before, || {
        "a refused command changed GET STATUS".into()
    })?;
    Ok(format!("{}; GET STATUS unchanged", out.join("; ")))
}
