//! INSTALL, LOAD, DELETE, STORE DATA and extradition through `GpSession` against the card
//! manager's content management (a library package, the security-domain package).

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{
    Aid as CardAid, Applet, AppletFactory, Atr, Card, Context, ObjectId, SeededRandom, Selected,
};
use ykt_gp::commands::load::load_file_data_block;
use ykt_gp::{IsdFactory, IsdSetup, Package, install_isd};
use ykt_gp_host::commands::store_data::dgi;
use ykt_gp_host::{
    Encryption, EntryKind, GpSession, Install, InstallParameters, Privileges, Scope, SessionConfig,
    StoreDataOptions, Structure,
};
use ykt_scp::{KeySet, Protocol, SecurityLevel};

use crate::support::*;

const ELF: &str = "A0000006320101";
const MODULE: &str = "A000000632010100";
const APP: &str = "A00000063201010501";
const SSD: &str = "A000000151535041AA01";
const NOTE: ObjectId = ObjectId(1);

/// Library code: an applet with a 16-byte note that STORE DATA (through its SD) writes and
/// any command reads.
struct Notes(CardAid);

impl Applet for Notes {
    fn aid(&self) -> &CardAid {
        &self.0
    }
    fn kind(&self) -> &'static str {
        "host.notes"
    }
    fn install_params(&self) -> Vec<u8> {
        Vec::new()
    }
    fn select(&mut self, _: &mut Context<'_>) -> Result<Selected, StatusWord> {
        Ok(Selected::ok(Vec::new()))
    }
    fn install(&mut self, ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        ctx.create(NOTE, &[0; 16])
    }
    fn process_data(
        &mut self,
        ctx: &mut Context<'_>,
        cmd: &CommandApdu,
    ) -> Result<Vec<u8>, StatusWord> {
        if cmd.data.len() > 16 {
            return Err(StatusWord::WRONG_LENGTH);
        }
        ctx.write(NOTE, 0, &cmd.data)?;
        Ok(Vec::new())
    }
    fn process(&mut self, ctx: &mut Context<'_>, _: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        Ok(ctx.read(NOTE)?.to_vec())
    }
    fn reset_volatile(&mut self) {}
}

struct Library;

impl AppletFactory for Library {
    fn create(&self, kind: &str, aid: &CardAid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        if kind == "host.notes" {
            return Some(Box::new(Notes(aid.clone())));
        }
        IsdFactory.create(kind, aid, params)
    }
}

fn gp_setup(protocol: Protocol, keys: KeySet) -> IsdSetup {
    let mut s = setup(protocol, keys);
    s.packages.push(Package {
        elf: CardAid::new(&h(ELF)).unwrap(),
        version: [0x01, 0x02],
        modules: vec![(CardAid::new(&h(MODULE)).unwrap(), "host.notes".to_string())],
    });
    s
}

fn content_card(protocol: Protocol, keys: &KeySet) -> Card {
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(9)));
    card.set_library(Box::new(Library));
    install_isd(&mut card, &gp_setup(protocol, keys.clone())).unwrap();
    card.power_on();
    card
}

fn lfdb() -> Vec<u8> {
    load_file_data_block(&CardAid::new(&h(ELF)).unwrap(), [0x01, 0x02])
}

fn app_install(instance: &str) -> Install {
    Install {
        load_file: aid(ELF),
        module: aid(MODULE),
        instance: aid(instance),
        privileges: Privileges::NONE,
        parameters: InstallParameters::default(),
        token: Vec::new(),
    }
}

/// SELECT `a` and read its note with any command.
fn note(card: &mut Card, a: &str) -> Result<Vec<u8>, u16> {
    let mut select = h("00A40400");
    select.push((a.len() / 2) as u8);
    select.extend(h(a));
    let r = card.transmit(&select).unwrap();
    if r[r.len() - 2..] != [0x90, 0x00] {
        return Err(u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]]));
    }
    let r = card.transmit(&h("80CA000000")).unwrap();
    Ok(r[..r.len() - 2].to_vec())
}

#[test]
fn load_install_personalise_lock_delete_on_every_channel() {
    for (name, protocol, keys) in channels() {
        for level in [SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC] {
            let mut card = content_card(protocol, &keys);
            {
                let mut s = open(&mut card, protocol, &keys, level).unwrap();
                let hash = ykt_gp_host::commands::load::load_file_data_block_hash(&lfdb());
                assert_eq!(
                    s.install_for_load(&aid(ELF), None, Some(&hash), &[], &[])
                        .unwrap(),
                    None
                );
                // Blocks of 5 bytes: P2 00, 01, 02, … and the last with P1 80.
                assert_eq!(s.load_in_blocks(&lfdb(), &[], 5).unwrap(), None);
                let registry = s.registry().unwrap();
                let elf = registry
                    .load_files
                    .iter()
                    .find(|e| hx(&e.aid) == ELF)
                    .unwrap_or_else(|| panic!("{name}: {registry:?}"));
                assert_eq!(elf.kind, EntryKind::LoadFile);
                assert_eq!(elf.life_cycle, 0x01);
                assert_eq!(elf.version.as_deref(), Some(&[1u8, 2][..]));
                assert_eq!(elf.modules, vec![h(MODULE)]);

                assert_eq!(s.install(&app_install(APP), true).unwrap(), None);
                let apps = s.list(Scope::Applications).unwrap();
                let app = apps.iter().find(|e| hx(&e.aid) == APP).unwrap();
                assert_eq!((app.life_cycle, app.kind), (0x07, EntryKind::Application));
                assert_eq!(
                    app.associated_security_domain.as_deref(),
                    Some(&ykt_gp_host::ISD_AID[..])
                );

                // INSTALL [for personalization] + STORE DATA reach the application.
                s.personalize(&aid(APP), StoreDataOptions::default(), &[h("0102030405")])
                    .unwrap();
            }
            assert_eq!(
                hx(&note(&mut card, APP).unwrap()[..5]),
                "0102030405",
                "{name}"
            );
            {
                let mut s = open(&mut card, protocol, &keys, level).unwrap();
                s.lock(&aid(APP)).unwrap();
            }
            assert_eq!(note(&mut card, APP), Err(0x6A82), "locked: not selectable");
            {
                let mut s = open(&mut card, protocol, &keys, level).unwrap();
                s.unlock(&aid(APP)).unwrap();
                // The load file alone is refused while it has an instance.
                let err = s.delete(&aid(ELF), false, None).unwrap_err();
                assert_eq!(
                    err.status_word(),
                    Some(StatusWord::CONDITIONS_NOT_SATISFIED)
                );
                assert_eq!(s.delete(&aid(ELF), true, None).unwrap(), None);
                let registry = s.registry().unwrap();
                assert!(
                    registry
                        .entries()
                        .all(|e| hx(&e.aid) != APP && hx(&e.aid) != ELF)
                );
            }
            assert_eq!(note(&mut card, APP), Err(0x6A82), "{name}: deleted");
        }
    }
}

#[test]
fn installed_then_made_selectable_then_deleted_alone() {
    let (_, protocol, keys) = channels().remove(0);
    let mut card = content_card(protocol, &keys);
    let mut s = open(&mut card, protocol, &keys, SecurityLevel::ALL).unwrap();
    s.install_for_load(&aid(ELF), None, None, &[], &[]).unwrap();
    s.load(&lfdb(), &[]).unwrap();
    s.install(&app_install(APP), false).unwrap();
    let state = |s: &mut GpSession<Transmit<'_>>| {
        s.list(Scope::Applications)
            .unwrap()
            .iter()
            .find(|e| hx(&e.aid) == APP)
            .map(|e| e.life_cycle)
    };
    assert_eq!(state(&mut s), Some(0x03));
    s.make_selectable(&aid(APP), Privileges::NONE, &[]).unwrap();
    assert_eq!(state(&mut s), Some(0x07));
    // Delegated management tokens are not accepted by this card manager yet: 6982.
    let err = s.delete(&aid(APP), false, Some(&[0xAA; 8])).unwrap_err();
    assert_eq!(
        err.status_word(),
        Some(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
    );
    s.delete(&aid(APP), false, None).unwrap();
    assert_eq!(state(&mut s), None);
    // A LOAD with a wrong hash is refused and leaves nothing.
    s.delete(&aid(ELF), false, None).unwrap();
    s.install_for_load(&aid(ELF), None, Some(&[0xAB; 32]), &[], &[])
        .unwrap();
    let err = s.load(&lfdb(), &[]).unwrap_err();
    assert_eq!(err.status_word(), Some(StatusWord::WRONG_DATA));
}

#[test]
fn encrypted_store_data_reaches_the_application_in_clear() {
    for (name, protocol, keys) in channels() {
        let mut card = content_card(protocol, &keys);
        {
            let mut s = open(&mut card, protocol, &keys, SecurityLevel::C_MAC).unwrap();
            s.install_for_load(&aid(ELF), None, None, &[], &[]).unwrap();
            s.load(&lfdb(), &[]).unwrap();
            s.install(&app_install(APP), true).unwrap();
            let block = if name == "scp02" { 8 } else { 16 };
            let plain = ykt_crypto::pad_iso9797_m2(&h("A1A2A3A4A5A6A7"), block);
            let encrypted = s.encrypt_sensitive(&plain).unwrap();
            assert_ne!(encrypted, plain);
            let options = StoreDataOptions {
                encryption: Encryption::Encrypted,
                ..Default::default()
            };
            s.personalize(&aid(APP), options, &[encrypted]).unwrap();
        }
        assert_eq!(
            hx(&note(&mut card, APP).unwrap()[..7]),
            "A1A2A3A4A5A6A7",
            "{name}"
        );
    }
}

#[test]
fn store_data_sets_the_isds_iin_and_cin() {
    let (_, protocol, keys) = channels().remove(0);
    let mut card = content_card(protocol, &keys);
    let mut s = open(&mut card, protocol, &keys, SecurityLevel::C_DEC_C_MAC).unwrap();
    let options = StoreDataOptions {
        structure: Structure::BerTlv,
        ..Default::default()
    };
    s.store_data(options, &[h("4204CAFE0001"), h("4502BEEF")])
        .unwrap();
    assert_eq!(s.iin().unwrap(), h("CAFE0001"));
    assert_eq!(s.cin().unwrap(), h("BEEF"));
}

#[test]
fn key_version_deleted() {
    let (_, protocol, keys) = channels().remove(0);
    let mut card = content_card(protocol, &keys);
    let mut s = open(&mut card, protocol, &keys, SecurityLevel::C_MAC).unwrap();
    s.put_key(None, &aes_keys(0x32, 0x90)).unwrap();
    assert_eq!(s.key_information().unwrap().len(), 6);
    s.delete_key(None, Some(0x32)).unwrap();
    assert_eq!(s.key_information().unwrap().len(), 3);
}

/// A supplementary security domain: created by the ISD, given its first keys (STORE DATA DGI
/// `8001` with a PUT KEY data field, the card manager's [PROPOSAL]), opened with them, loaded
/// into; then its application extradited to the ISD and the SSD deleted.
#[test]
fn supplementary_security_domain_created_keyed_used_and_emptied() {
    for (name, protocol, keys) in channels() {
        let mut card = content_card(protocol, &keys);
        let ssd_keys = match name {
            "scp03" => aes_keys(0x30, 0xA0),
            "scp02" => tdes_keys(0x30, 0xA0),
            _ => sm4_keys(0x30, 0xA0),
        };
        {
            let mut s = open(&mut card, protocol, &keys, SecurityLevel::C_MAC).unwrap();
            let sd = Install {
                load_file: aid("A0000001515350"),
                module: aid("A000000151535041"),
                instance: aid(SSD),
                privileges: Privileges::SSD_AUTHORIZED,
                parameters: InstallParameters::default(),
                token: Vec::new(),
            };
            s.install(&sd, true).unwrap();
            let (data, kcvs) = s.key_set_data(&ssd_keys).unwrap();
            let options = StoreDataOptions {
                structure: Structure::Dgi,
                ..Default::default()
            };
            let answers = s
                .personalize(&aid(SSD), options, &[dgi(0x8001, &data).unwrap()])
                .unwrap();
            assert!(
                ykt_gp_host::commands::put_key::confirms(&answers[0], 0x30, &kcvs).unwrap(),
                "{name}: {}",
                hx(&answers[0])
            );
            let apps = s.list(Scope::Applications).unwrap();
            let entry = apps.iter().find(|e| hx(&e.aid) == SSD).unwrap();
            assert_eq!(entry.kind, EntryKind::SecurityDomain);
            assert_eq!(entry.life_cycle, 0x0F, "PERSONALIZED");
        }
        {
            let config = SessionConfig {
                security_domain: aid(SSD),
                ..config(protocol, ssd_keys.clone(), SecurityLevel::C_MAC)
            };
            let mut ssd = GpSession::open(over(&mut card), config, &[0x55; 8]).unwrap();
            ssd.install_for_load(&aid(ELF), None, None, &[], &[])
                .unwrap();
            ssd.load(&lfdb(), &[]).unwrap();
            ssd.install(&app_install(APP), true).unwrap();
            let own = ssd.list(Scope::Applications).unwrap();
            let app = own.iter().find(|e| hx(&e.aid) == APP).unwrap();
            assert_eq!(app.associated_security_domain, Some(h(SSD)), "{name}");
        }
        let mut s = open(&mut card, protocol, &keys, SecurityLevel::C_MAC).unwrap();
        // The SSD still has content: refused alone.
        assert_eq!(
            s.delete(&aid(SSD), false, None).unwrap_err().status_word(),
            Some(StatusWord::CONDITIONS_NOT_SATISFIED)
        );
        for moved in [APP, ELF] {
            s.extradite(&isd(), &aid(moved), &[], &[]).unwrap();
        }
        s.delete(&aid(SSD), false, None).unwrap();
        let apps = s.list(Scope::Applications).unwrap();
        assert!(apps.iter().all(|e| hx(&e.aid) != SSD));
        let app = apps.iter().find(|e| hx(&e.aid) == APP).unwrap();
        assert_eq!(
            app.associated_security_domain.as_deref(),
            Some(&ykt_gp_host::ISD_AID[..])
        );
    }
}
