//! `ykt se`: the simulated secure element behind PC/SC, and a small PC/SC client.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use tracing::{debug, info, warn};
use ykt_apdu::CommandApdu;
use ykt_card::Card;
use ykt_conformance::isd::{IsdChannel, danger_install_test_isd};
use ykt_purse::testing::{danger_test_card_3des, danger_test_card_sm4};
use ykt_transport::redact::Hex;
use ykt_transport::vpcd::{self, ServeOptions};
use ykt_transport::{CardChannel, PcscChannel};

use crate::entropy::OsEntropy;
use crate::se_production::IsdMasterFile;
use crate::state;

/// `ykt se …`
#[derive(Debug, clap::Args)]
pub struct SeArgs {
    #[command(subcommand)]
    command: SeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SeCommand {
    /// Present the simulated card to pcscd as a vpcd card ("Virtual PCD 00 00" on port 35963).
    ///
    /// Without --state the card is the fresh e-purse.md §8 test card with scripted randomness, so
    /// the brief's load and purchase traces reproduce byte for byte. The test card also carries
    /// the GlobalPlatform card manager (ISD, A000000151000000): SCP03 i=70 with the PUBLIC GP
    /// test keys 40 41 .. 4F (K-ENC = K-MAC = K-DEK) at KVN 30 (--isd picks another channel);
    /// it draws randomness only for INITIALIZE UPDATE. With --state FILE the card is
    /// loaded from FILE (or created there as the test card when FILE does not exist) and saved
    /// after every command that changed its persistent memory, and on exit; a loaded card draws
    /// its randomness from the OS. Stop with SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Card production for a production TSM: a blank SE (card manager keyed for its SEID from
    /// the ISD master file, the receipt key and the SEI-TSM's token key) written to a new card
    /// state file, for `ykt wallet … --se-state FILE` or `ykt se serve --state FILE`.
    Produce(ProduceArgs),
    /// The SE maker's side of the key ceremony: a new ISD master file (ISD master key set and
    /// receipt key, with their check values; mode 0600) for `ykt tsm init --isd-master FILE`.
    NewIsdMaster(NewIsdMasterArgs),
    /// Send APDUs (hex) to a card through PC/SC and print the responses.
    ///
    /// Exits with code 5 when any response is not 9000/61xx (all commands are still sent).
    Apdu(ApduArgs),
    /// List the PC/SC readers pcscd knows.
    Readers,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// pcscd's vpcd port (35963 = "Virtual PCD 00 00", 35964 = "Virtual PCD 00 01").
    #[arg(long, default_value_t = 35963)]
    port: u16,
    /// Address of pcscd (the card is the TCP client).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Card state file: loaded when it exists, created as the test card otherwise.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Use the SM4 test card of e-purse.md §8.3 instead of the 3DES one (only when the card is
    /// created, not when it is loaded from --state).
    #[arg(long)]
    sm4: bool,
    /// Present the test PSAM instead (terminal id 112233445566, the test master purchase and
    /// maintenance keys for 3DES and SM4), e.g. on port 35964 as a validator's second reader
    /// for `ykt terminal --psam-reader "Virtual PCD 00 01"`.
    #[arg(long, conflicts_with_all = ["sm4", "isd"])]
    psam: bool,
    /// Secure channel of the test card's card manager (ISD): scp03 (i=70, AES-128), scp02
    /// (i=55, 3DES) or sm4 (the SM4 channel, i=70). Its keys are always the public GP test keys
    /// 40 41 .. 4F at KVN 30: a test card only. Only when the card is created.
    #[arg(long, value_name = "CHANNEL", value_parser = parse_isd_channel)]
    isd: Option<IsdChannel>,
    /// Present a blank SE as card production delivers it (the card manager keyed for its
    /// SEID, the SD and purse packages in its library, no purse yet), for a TSM to open a card
    /// on: keyed from the PUBLIC test ISD master (`ykt tsm serve --test-keys`), or from
    /// --isd-master FILE (a production TSM). Only when the card is created.
    #[arg(long, conflicts_with_all = ["sm4", "isd", "psam"])]
    blank: bool,
    /// `--blank`: key the SE from this ISD master file (`ykt tsm init --new-isd-master`).
    #[arg(long, value_name = "FILE", requires = "blank")]
    isd_master: Option<PathBuf>,
    /// `--blank --isd-master`: the SEI-TSM's token verification key (hex, SEC1; printed by
    /// `ykt tsm init`) when the ISD master file does not carry it.
    #[arg(long, value_name = "HEX", requires = "isd_master")]
    token_key: Option<String>,
    /// `--blank`: the SE's serial (its CPLC and SEID follow from it).
    #[arg(long, default_value_t = 1, requires = "blank")]
    serial: u8,
}

#[derive(Debug, clap::Args)]
struct ProduceArgs {
    /// The ISD master file (`ykt tsm init --new-isd-master` or `ykt se new-isd-master`).
    #[arg(long, value_name = "FILE")]
    isd_master: PathBuf,
    /// The SEI-TSM's token verification key (hex, SEC1; printed by `ykt tsm init`) when the
    /// ISD master file does not carry it.
    #[arg(long, value_name = "HEX")]
    token_key: Option<String>,
    /// The SE's serial (its CPLC and SEID follow from it).
    #[arg(long, default_value_t = 1)]
    serial: u8,
    /// The card state file to write (must not exist).
    #[arg(long, value_name = "FILE")]
    state: PathBuf,
}

#[derive(Debug, clap::Args)]
struct NewIsdMasterArgs {
    /// The file to write (must not exist; mode 0600).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The ISD master key set's version (hex).
    #[arg(long, value_name = "HEX", default_value = "30", value_parser = parse_kvn)]
    kvn: u8,
}

fn parse_kvn(text: &str) -> Result<u8, String> {
    match u8::from_str_radix(text, 16) {
        Ok(v) if v != 0 && v != 0xFF => Ok(v),
        _ => Err(format!("{text:?} is not a key version (hex 01..FE)")),
    }
}

fn parse_isd_channel(text: &str) -> Result<IsdChannel, String> {
    IsdChannel::parse(text).ok_or_else(|| format!("{text:?} is not scp03, scp02 or sm4"))
}

#[derive(Debug, clap::Args)]
struct ApduArgs {
    /// Reader name (see `ykt se readers`); default: the first reader with a card.
    #[arg(long)]
    reader: Option<String>,
    /// Command APDUs in hex; spaces and colons inside an argument are ignored.
    #[arg(required = true, value_name = "HEX")]
    apdus: Vec<String>,
}

/// The card answered a command with an error status (exit code 5).
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} commands were answered with an error status")]
pub struct CardRefused {
    failed: usize,
    total: usize,
}

/// Runs `ykt se …`.
pub fn run(args: SeArgs) -> anyhow::Result<()> {
    crate::harden::process()?; // client.md §6.11
    match args.command {
        SeCommand::Serve(a) => serve(a),
        SeCommand::Produce(a) => produce(&a),
        SeCommand::NewIsdMaster(a) => new_isd_master(&a),
        SeCommand::Apdu(a) => apdu(a),
        SeCommand::Readers => {
            for reader in PcscChannel::list_readers()? {
                println!("{reader}");
            }
            Ok(())
        }
    }
}

/// The card a fresh `se serve` presents.
fn fresh_card(args: &ServeArgs) -> anyhow::Result<Card> {
    if args.psam {
        crate::terminal::psam_card(ykt_purse::testing::TEST_TERMINAL_ID)
    } else if args.blank {
        match &args.isd_master {
            None => crate::phone::blank_se(args.serial),
            Some(path) => IsdMasterFile::read(path)?.blank_se(
                args.serial,
                args.token_key.as_deref(),
                Box::new(OsEntropy::new()?),
            ),
        }
    } else {
        test_card(args.sm4, args.isd.unwrap_or(IsdChannel::Scp03))
    }
}

/// The e-purse.md §8 test card (3DES, or SM4 with `sm4`) with the test ISD on `isd`
/// (`ykt_conformance::isd`: public GP test keys, fixed KDD, IIN, CIN and CPLC).
fn test_card(sm4: bool, isd: IsdChannel) -> anyhow::Result<Card> {
    let card = if sm4 {
        danger_test_card_sm4()
    } else {
        danger_test_card_3des()
    };
    let mut card = card.context("issuing the e-purse.md §8 test card")?;
    danger_install_test_isd(&mut card, isd).context("installing the test card manager (ISD)")?;
    Ok(card)
}

/// `ykt se produce`.
fn produce(args: &ProduceArgs) -> anyhow::Result<()> {
    if args.state.exists() {
        anyhow::bail!(
            "{} exists already: card production writes a new state file only",
            args.state.display()
        );
    }
    let file = IsdMasterFile::read(&args.isd_master)?;
    let card = file.blank_se(
        args.serial,
        args.token_key.as_deref(),
        Box::new(OsEntropy::new()?),
    )?;
    let (created_card, created) =
        state::load_or_create(&args.state, Box::new(OsEntropy::new()?), move || Ok(card))?;
    drop(created_card);
    if !created {
        anyhow::bail!("{} appeared meanwhile; left as it is", args.state.display());
    }
    let seid = ykt_tsm::testing::seid_of_serial(&[args.serial]).context("the SEID")?;
    println!(
        "produced a blank SE (serial {}, SEID {}) in {}: card manager keyed from ISD master KVN {:02X}",
        args.serial,
        hex::encode_upper(seid.0),
        args.state.display(),
        file.kvn
    );
    Ok(())
}

/// `ykt se new-isd-master`.
fn new_isd_master(args: &NewIsdMasterArgs) -> anyhow::Result<()> {
    let file = IsdMasterFile::generate(args.kvn)?;
    file.write_new(&args.out)?;
    let (isd, receipt) = file.check_values()?;
    println!(
        "ISD master file {} (mode 0600): ISD master KVN {:02X}, KCV enc {} mac {} dek {}; receipt key KCV {}",
        args.out.display(),
        file.kvn,
        hex::encode_upper(isd[0]),
        hex::encode_upper(isd[1]),
        hex::encode_upper(isd[2]),
        hex::encode_upper(receipt)
    );
    eprintln!(
        "warning: {} is the SE maker's secret: hand it to the SEI-TSM's key ceremony          (`ykt tsm init --isd-master FILE`) and keep it out of the TSM's directory",
        args.out.display()
    );
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }

    let mut card = match &args.state {
        None => {
            if args.psam {
                info!("fresh test PSAM");
            } else if args.blank {
                info!(
                    serial = args.serial,
                    production = args.isd_master.is_some(),
                    "blank SE from card production"
                );
            } else {
                info!(
                    sm4 = args.sm4,
                    isd = args.isd.unwrap_or(IsdChannel::Scp03).name(),
                    "fresh e-purse.md §8 test card (scripted randomness) with the test ISD (public GP test keys)"
                );
            }
            let mut card = fresh_card(&args)?;
            card.set_library(state::library());
            card
        }
        Some(path) => {
            let (card, created) =
                state::load_or_create(path, Box::new(OsEntropy::new()?), || fresh_card(&args))?;
            if created {
                if args.psam {
                    info!(path = %path.display(), "created the test PSAM");
                } else {
                    info!(path = %path.display(), sm4 = args.sm4, "created the e-purse.md §8 test card");
                }
            } else {
                if args.sm4 {
                    warn!("--sm4 ignored: the card comes from the state file");
                }
                if args.isd.is_some() {
                    warn!("--isd ignored: the card comes from the state file");
                }
                if args.blank {
                    warn!("--blank ignored: the card comes from the state file");
                }
                info!(path = %path.display(), "loaded the card");
            }
            card
        }
    };

    let addr = SocketAddr::new(args.host, args.port);
    info!(%addr, "serving the card to pcscd's vpcd driver");
    match &args.state {
        None => vpcd::serve(&mut card, addr, ServeOptions::default(), &stop)?,
        Some(path) => {
            serve_persistent(&mut card, addr, path, &stop)?;
            state::save(path, &card)?;
            info!(path = %path.display(), "card state saved");
        }
    }
    Ok(())
}

/// Serves and saves the card whenever a command changed its persistent memory.
fn serve_persistent(
    card: &mut Card,
    addr: SocketAddr,
    path: &Path,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut saved_writes = card.persistent_writes();
    let options = ServeOptions::default().with_after_command(|card: &Card| {
        let writes = card.persistent_writes();
        if writes != saved_writes {
            state::save(path, card)?;
            saved_writes = writes;
            debug!(writes, "card state saved");
        }
        Ok(())
    });
    vpcd::serve(card, addr, options, stop)?;
    Ok(())
}

fn apdu(args: ApduArgs) -> anyhow::Result<()> {
    let commands = args
        .apdus
        .iter()
        .map(|text| {
            let clean: String = text.chars().filter(|c| !matches!(c, ' ' | ':')).collect();
            let bytes = hex::decode(&clean).with_context(|| format!("{text:?} is not hex"))?;
            CommandApdu::parse(&bytes).with_context(|| format!("{text:?} is not a C-APDU"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut channel = match &args.reader {
        Some(reader) => PcscChannel::connect(reader)?,
        None => PcscChannel::connect_first()?,
    };
    info!(reader = channel.reader(), "connected");
    let mut failed = 0;
    for command in &commands {
        let response = channel.transmit(command)?;
        println!("> {}", Hex(&command.to_bytes()));
        println!("< {} {:04X}", Hex(&response.data), response.sw.0);
        if !response.sw.is_success() {
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(CardRefused {
            failed,
            total: commands.len(),
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ykt_apdu::CommandApdu;
    use ykt_transport::{CardChannel, InProcess};

    use ykt_conformance::isd::IsdChannel;

    use super::test_card;

    /// `ykt se serve`'s arguments alone.
    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        args: super::ServeArgs,
    }

    /// `--blank` presents a blank SE (card manager, no purse): from the test master, or from
    /// `--isd-master FILE`, whose missing token key must then be given; `--isd-master` alone
    /// is a usage error.
    #[test]
    fn blank_follows_the_isd_master_file() {
        use clap::Parser as _;
        let select_isd = hex::decode("00A4040008A000000151000000").unwrap();
        let select_purse = hex::decode("00A4040008A000000632010105").unwrap();
        let sw = |card: &mut ykt_card::Card, apdu: &[u8]| {
            let r = card.transmit(apdu).unwrap();
            [r[r.len() - 2], r[r.len() - 1]]
        };
        let dir = std::env::temp_dir().join(format!("ykt-se-blank-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("isd.json");
        crate::se_production::IsdMasterFile::generate(0x30)
            .unwrap()
            .write_new(&path)
            .unwrap();
        let file = path.to_str().unwrap();
        let parse = |args: &[&str]| Serve::try_parse_from([&["serve"], args].concat());
        assert!(parse(&["--isd-master", file]).is_err());
        let test = parse(&["--blank", "--serial", "4"]).unwrap().args;
        let mut card = super::fresh_card(&test).unwrap();
        assert_eq!(sw(&mut card, &select_isd), [0x90, 0x00]);
        assert_ne!(sw(&mut card, &select_purse), [0x90, 0x00]);
        let no_token = parse(&["--blank", "--isd-master", file]).unwrap().args;
        let err = super::fresh_card(&no_token).unwrap_err().to_string();
        assert!(err.contains("--token-key"), "{err}");
        let token = hex::encode(
            ykt_crypto::Sm2PrivateKey::from_bytes(&ykt_tsm::vault::test_keys::TOKEN_SIGNER)
                .unwrap()
                .public_key()
                .to_bytes(),
        );
        let produced = parse(&["--blank", "--isd-master", file, "--token-key", &token])
            .unwrap()
            .args;
        let mut card = super::fresh_card(&produced).unwrap();
        assert_eq!(sw(&mut card, &select_isd), [0x90, 0x00]);
        assert_ne!(sw(&mut card, &select_purse), [0x90, 0x00]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `--sm4` picks the SM4 card: INITIALIZE FOR LOAD answers algorithm id 04 and the §8.3 MAC1;
    /// without it, the 3DES card of §8.1.
    #[test]
    fn test_card_follows_the_sm4_choice() {
        for (sm4, expected) in [
            (false, "00000000 0000 01 00 1A2B3C4D 4E903E9F"),
            (true, "00000000 0000 01 04 1A2B3C4D 3033E121"),
        ] {
            let mut channel = InProcess::new(test_card(sm4, IsdChannel::Scp03).unwrap());
            let select = hex::decode("00A4040008A000000632010105").unwrap();
            channel
                .transmit_checked(&CommandApdu::parse(&select).unwrap())
                .unwrap();
            let init = hex::decode("805000020B010000271011223344556610").unwrap();
            let response = channel
                .transmit_checked(&CommandApdu::parse(&init).unwrap())
                .unwrap();
            let expected: String = expected.split_whitespace().collect();
            assert_eq!(hex::encode_upper(response), expected, "sm4={sm4}");
        }
    }
}
