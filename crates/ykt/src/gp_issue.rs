//! Issuing an e-purse the GlobalPlatform way on a blank simulated SE (tsm-gp.md §3, §6; the
//! purse's DGI layout in docs/purse-dgi.md), as the demo does for its SM4 card:
//!
//! ```text
//!  ISD (card manager, SCP03)   INSTALL the SSD (Authorized Management)
//!                              INSTALL [for personalization] SSD + STORE DATA DGI 8001: its keys
//!  SSD (its own keys, level 33) INSTALL [for load] + LOAD the purse package
//!                              INSTALL [for install and make selectable] the purse
//!                              INSTALL [for personalization] + STORE DATA DGIs
//!                              (secret blocks encrypted under the SSD's K-DEK)
//! ```
//!
//! The keys are test keys: the ISD's are the public GP test keys, the SSD's are fixed here,
//! and the purse's come from the e-purse brief's test master keys.

use anyhow::{Context as _, ensure};
use ykt_apdu::CommandApdu;
use ykt_card::{Aid, Atr, Card};
use ykt_conformance::isd::{IsdChannel, danger_test_isd_setup};
use ykt_crypto::AesKey;
use ykt_crypto::purse::PurseAlgorithm;
use ykt_gp::commands::load::load_file_data_block;
use ykt_gp::{Package, install_isd};
use ykt_gp_host::commands::install::install_for_personalization;
use ykt_gp_host::commands::put_key::confirms;
use ykt_gp_host::commands::store_data::dgi;
use ykt_gp_host::{
    GpSession, Install, InstallParameters, Privileges, SessionConfig, StoreDataOptions, Structure,
};
use ykt_purse::perso::Builder;
use ykt_purse::testing::{test_card_data, test_issuer};
use ykt_purse::{Asn, EP_AID, PurseProfile};
use ykt_scp::{KeySet, SecurityLevel};

use crate::entropy::OsEntropy;

/// The purse package in the SE's library: load file and module AIDs (the project's choice:
/// the MOT RID `A000000632`, then `0101` and the module number).
pub const PURSE_LOAD_FILE: [u8; 7] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01];
/// The purse module in [`PURSE_LOAD_FILE`].
pub const PURSE_MODULE: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x01];
/// The transit issuer's supplementary security domain.
pub const TRANSIT_SSD: [u8; 10] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x41, 0x54, 0x01];

fn gp_aid(b: &[u8]) -> anyhow::Result<ykt_gp_host::Aid> {
    ykt_gp_host::Aid::new(b).context("AID")
}

/// The SSD's test key set (AES-128, KVN 30).
fn ssd_keys() -> anyhow::Result<KeySet> {
    let k = |b: u8| AesKey::from_slice(&[b; 16]).context("SSD test key");
    Ok(KeySet::aes(0x30, k(0x71)?, k(0x72)?, k(0x73)?))
}

/// A blank SE: the test ISD (SCP03, public GP test keys) whose library holds the
/// security-domain package and the purse package; nothing installed.
pub fn blank_se() -> anyhow::Result<Card> {
    let mut setup = danger_test_isd_setup(IsdChannel::Scp03).context("the test ISD")?;
    setup.packages.push(Package {
        elf: Aid::new(&PURSE_LOAD_FILE).context("AID")?,
        version: [0x01, 0x00],
        modules: vec![(
            Aid::new(&PURSE_MODULE).context("AID")?,
            ykt_purse::KIND.to_owned(),
        )],
    });
    let mut card = Card::new(Atr::default_t1(), Box::new(OsEntropy::new()?));
    card.set_library(crate::state::library());
    install_isd(&mut card, &setup).context("installing the card manager")?;
    card.power_on();
    Ok(card)
}

fn challenge() -> anyhow::Result<[u8; 8]> {
    let mut c = [0u8; 8];
    getrandom::fill(&mut c).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
    Ok(c)
}

/// Issues the e-purse with card number `asn` on the blank SE `card` (see the module docs).
pub fn issue_on(card: &mut Card, alg: PurseAlgorithm, asn: Asn) -> anyhow::Result<()> {
    let mut transmit = |c: &[u8]| card.transmit(c);
    let isd_config = SessionConfig {
        security_domain: gp_aid(&ykt_gp::ISD_AID)?,
        keys: IsdChannel::Scp03.test_keys().context("ISD keys")?,
        diversification: None,
        protocol: IsdChannel::Scp03.protocol().context("ISD protocol")?,
        level: SecurityLevel::ALL,
    };
    let ssd = gp_aid(&TRANSIT_SSD)?;
    {
        let mut isd = GpSession::open(&mut transmit, isd_config.clone(), &challenge()?)
            .context("opening the ISD's secure channel")?;
        let sd = Install {
            load_file: gp_aid(&ykt_gp::SD_PACKAGE)?,
            module: gp_aid(&ykt_gp::SD_MODULE)?,
            instance: ssd.clone(),
            privileges: Privileges::SSD_AUTHORIZED,
            parameters: InstallParameters::default(),
            token: Vec::new(),
        };
        isd.install(&sd, true).context("INSTALL of the SSD")?;
        let (data, kcvs) = isd.key_set_data(&ssd_keys()?).context("the SSD's keys")?;
        let options = StoreDataOptions {
            structure: Structure::Dgi,
            ..Default::default()
        };
        let answers = isd
            .personalize(&ssd, options, &[dgi(0x8001, &data).context("DGI 8001")?])
            .context("STORE DATA of the SSD's keys")?;
        let answer = answers.first().context("no answer to the SSD's keys")?;
        ensure!(
            confirms(answer, 0x30, &kcvs).context("the SSD's answer")?,
            "the SSD did not confirm its key check values"
        );
    }
    let ssd_config = SessionConfig {
        security_domain: ssd,
        keys: ssd_keys()?,
        ..isd_config
    };
    let mut sd = GpSession::open(&mut transmit, ssd_config, &challenge()?)
        .context("opening the SSD's secure channel")?;
    let elf = gp_aid(&PURSE_LOAD_FILE)?;
    sd.install_for_load(&elf, None, None, &[], &[])
        .context("INSTALL [for load]")?;
    let lfdb = load_file_data_block(&Aid::new(&PURSE_LOAD_FILE).context("AID")?, [0x01, 0x00]);
    sd.load(&lfdb, &[]).context("LOAD of the purse package")?;
    let purse = gp_aid(&EP_AID)?;
    let install = Install {
        load_file: elf,
        module: gp_aid(&PURSE_MODULE)?,
        instance: purse.clone(),
        privileges: Privileges::NONE,
        parameters: InstallParameters::default(),
        token: Vec::new(),
    };
    sd.install(&install, true).context("INSTALL of the purse")?;
    let blocks = Builder::issue(
        &test_issuer(alg).context("issuer keys")?,
        PurseProfile::EPURSE,
        &test_card_data(asn),
    )
    .context("the purse's personalisation data")?
    .blocks()
    .context("the purse's STORE DATA blocks")?;
    let r = sd
        .send(&install_for_personalization(&purse).context("INSTALL [for personalization]")?)
        .context("INSTALL [for personalization]")?;
    ensure!(r.is_success(), "INSTALL [for personalization]: {}", r.sw);
    for b in &blocks {
        let data = if b.encrypted() {
            sd.encrypt_sensitive(&ykt_crypto::pad_iso9797_m2(&b.data, 16))
                .context("encrypting a secret block")?
        } else {
            b.data.to_vec()
        };
        let r = sd
            .send(&CommandApdu::new(0x80, 0xE2, b.p1, b.p2).with_data(data))
            .context("STORE DATA")?;
        ensure!(r.is_success(), "STORE DATA block {:02X}: {}", b.p2, r.sw);
    }
    Ok(())
}

/// A blank SE with the e-purse issued on it.
pub fn issue(alg: PurseAlgorithm, asn: Asn) -> anyhow::Result<Card> {
    let mut card = blank_se()?;
    issue_on(&mut card, alg, asn)?;
    Ok(card)
}
