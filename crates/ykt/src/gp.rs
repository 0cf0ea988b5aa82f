//! `ykt gp`: GlobalPlatform card management over PC/SC or on a simulated SE in a state file,
//! through `ykt-gp-host` (wiring only: parse options, open the channel, print).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use tracing::{info, warn};
use ykt_apdu::CommandApdu;
use ykt_crypto::{AesKey, Sm4Key, TdesKey, pad_iso9797_m2};
use ykt_gp_host::commands::get_data::{
    Cplc, TAG_CARD_DATA, TAG_CIN, TAG_CPLC, TAG_IIN, TAG_KEY_INFORMATION, parse_card_data,
    parse_key_information,
};
use ykt_gp_host::commands::put_key::confirms as put_key_confirms;
use ykt_gp_host::commands::store_data::dgi;
use ykt_gp_host::{
    Aid, CardLifeCycle, Diversification, Encryption, EntryKind, GpSession, Install,
    InstallParameters, Privileges, Registry, RegistryEntry, SessionConfig, StoreDataOptions,
    Structure, life_cycle_name,
};
use ykt_scp::{KeySet, Protocol, SecurityLevel};
use ykt_transport::{CardChannel, InProcess, PcscChannel, TransportError};
use zeroize::Zeroizing;

use crate::entropy::OsEntropy;
use crate::state;

/// `ykt gp …`
#[derive(Debug, clap::Args)]
pub struct GpArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: GpCommand,
}

/// Where the card is and how to open the secure channel (any verb takes them).
#[derive(Debug, clap::Args)]
struct ConnectArgs {
    /// PC/SC reader name (see `ykt se readers`); default: the first reader with a card.
    #[arg(long, global = true, conflicts_with = "sim")]
    reader: Option<String>,
    /// The simulated SE in this state file (created as the test card with the public GP test
    /// keys when it does not exist), saved after the run.
    #[arg(long, global = true, value_name = "STATEFILE")]
    sim: Option<PathBuf>,
    /// Static key (hex) for K-ENC, K-MAC and K-DEK alike, or the master key with --kdf.
    /// Default: the public GP test key 40..4F.
    #[arg(long, global = true, value_name = "HEX", value_parser = parse_key)]
    key: Option<KeyHex>,
    /// K-ENC (hex), with --mac and --dek instead of --key.
    #[arg(long, global = true, value_name = "HEX", value_parser = parse_key, requires_all = ["mac", "dek"], conflicts_with = "key")]
    enc: Option<KeyHex>,
    /// K-MAC (hex).
    #[arg(long, global = true, value_name = "HEX", value_parser = parse_key, requires = "enc")]
    mac: Option<KeyHex>,
    /// K-DEK (hex).
    #[arg(long, global = true, value_name = "HEX", value_parser = parse_key, requires = "enc")]
    dek: Option<KeyHex>,
    /// Key version number for INITIALIZE UPDATE (hex; 00 = the card's first key set).
    #[arg(long, global = true, value_name = "KVN", value_parser = parse_byte, default_value = "00")]
    kvn: u8,
    /// Diversify the key(s) from a master with the card's KDD: emv, visa2 (3DES), kdf3 (AES, SM4).
    #[arg(long, global = true, value_name = "METHOD", value_parser = parse_kdf)]
    kdf: Option<Diversification>,
    /// Secure channel protocol: 02, 03 or sm4.
    #[arg(long, global = true, value_name = "SCP", default_value = "03", value_parser = ["02", "03", "sm4"])]
    scp: String,
    /// The protocol's `i` parameter (hex); default 55 for SCP02, 70 for SCP03 and sm4.
    #[arg(long = "i", global = true, value_name = "HEX", value_parser = parse_byte)]
    i: Option<u8>,
    /// Security level: mac, mac+enc, mac+enc+rmac, all (or hex 01, 03, 11, 13, 33).
    #[arg(long, global = true, value_name = "LEVEL", default_value = "mac+enc", value_parser = parse_level)]
    sec_level: SecurityLevel,
    /// The security domain to talk to (hex AID).
    #[arg(long, global = true, value_name = "AID", default_value = "A000000151000000", value_parser = parse_aid)]
    sd: Aid,
}

#[derive(Debug, clap::Subcommand)]
enum GpCommand {
    /// List the registry: the ISD, applications and security domains, load files.
    List,
    /// Card data, IIN, CIN, CPLC and key information (no secure channel needed).
    Info,
    /// Install an application: optionally load its load file first (INSTALL [for load], LOAD),
    /// then INSTALL [for install and make selectable].
    Install(InstallArgs),
    /// Delete an application, a security domain or a load file (with --related, its instances).
    Delete(DeleteArgs),
    /// Create a supplementary security domain (INSTALL of the SD package's module).
    CreateSd(CreateSdArgs),
    /// Put a new key set (PUT KEY), replacing one or added; check values are verified.
    PutKey(PutKeyArgs),
    /// STORE DATA to the security domain, or with --app to an application (INSTALL [for
    /// personalization] first).
    StoreData(StoreDataArgs),
    /// Lock an application or security domain, or with --card the card (CARD_LOCKED).
    Lock(TargetArgs),
    /// Unlock an application or security domain, or with --card the card (back to SECURED).
    Unlock(TargetArgs),
    /// Hand an application or load file to another security domain (INSTALL [for extradition]).
    Extradite(ExtraditeArgs),
}

#[derive(Debug, clap::Args)]
struct InstallArgs {
    /// The executable load file (package) AID.
    #[arg(long, value_name = "AID", value_parser = parse_aid)]
    package: Aid,
    /// The module (applet class) AID in the package.
    #[arg(long, value_name = "AID", value_parser = parse_aid)]
    module: Aid,
    /// The new instance's AID (default: the module AID).
    #[arg(long, value_name = "AID", value_parser = parse_aid)]
    instance: Option<Aid>,
    /// Load this load file data block (a file of bytes) first.
    #[arg(long, value_name = "FILE")]
    load: Option<PathBuf>,
    /// With --load: send the load file data block's SHA-256 hash in INSTALL [for load].
    #[arg(long, requires = "load")]
    hash: bool,
    /// Privileges: comma-separated names (e.g. CardReset,ContactlessSelfActivation) or 6 hex digits.
    #[arg(long, value_name = "LIST", value_parser = parse_privileges)]
    privs: Option<Privileges>,
    /// Application-specific install parameters: the value of tag C9 (hex).
    #[arg(long, value_name = "HEX", value_parser = parse_hex, default_value = "")]
    params: HexBytes,
    /// Install only: do not make the instance selectable (INSTALL P1 04 instead of 0C).
    #[arg(long)]
    no_selectable: bool,
}

#[derive(Debug, clap::Args)]
struct DeleteArgs {
    /// The AID to delete.
    #[arg(value_parser = parse_aid)]
    aid: Aid,
    /// Delete the related objects too (a load file with its instances).
    #[arg(long)]
    related: bool,
    /// Delete token (hex), for delegated management.
    #[arg(long, value_name = "HEX", value_parser = parse_hex)]
    token: Option<HexBytes>,
}

#[derive(Debug, clap::Args)]
struct CreateSdArgs {
    /// The new security domain's AID.
    #[arg(value_parser = parse_aid)]
    aid: Aid,
    /// The security-domain package.
    #[arg(long, value_name = "AID", value_parser = parse_aid, default_value = "A0000001515350")]
    package: Aid,
    /// The security-domain module.
    #[arg(long, value_name = "AID", value_parser = parse_aid, default_value = "A000000151535041")]
    module: Aid,
    /// Privileges besides SecurityDomain: names or 6 hex digits (default: none, i.e. 800000).
    #[arg(long, value_name = "LIST", value_parser = parse_privileges)]
    privs: Option<Privileges>,
    /// The new SD's secure channel (C9 { 81 02 SCP i }): 02, 03 or sm4; default: the parent's.
    #[arg(long, value_name = "SCP", value_parser = ["02", "03", "sm4"])]
    sd_scp: Option<String>,
    /// The new SD's `i` (hex), with --sd-scp; default as for --i.
    #[arg(long, value_name = "HEX", value_parser = parse_byte, requires = "sd_scp")]
    sd_i: Option<u8>,
    /// Give the new SD its first key set (hex, for K-ENC, K-MAC and K-DEK), sent encrypted
    /// under this session through INSTALL [for personalization] and STORE DATA DGI 8001.
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    sd_key: Option<KeyHex>,
    /// The key version of --sd-key (hex).
    #[arg(long, value_name = "KVN", value_parser = parse_byte, default_value = "30", requires = "sd_key")]
    sd_kvn: u8,
}

#[derive(Debug, clap::Args)]
struct PutKeyArgs {
    /// The new key for K-ENC, K-MAC and K-DEK alike (hex).
    #[arg(long, value_name = "HEX", value_parser = parse_key, required_unless_present = "new_enc")]
    new_key: Option<KeyHex>,
    /// The new K-ENC (hex), with --new-mac and --new-dek.
    #[arg(long, value_name = "HEX", value_parser = parse_key, requires_all = ["new_mac", "new_dek"], conflicts_with = "new_key")]
    new_enc: Option<KeyHex>,
    /// The new K-MAC (hex).
    #[arg(long, value_name = "HEX", value_parser = parse_key, requires = "new_enc")]
    new_mac: Option<KeyHex>,
    /// The new K-DEK (hex).
    #[arg(long, value_name = "HEX", value_parser = parse_key, requires = "new_enc")]
    new_dek: Option<KeyHex>,
    /// The new key version number (hex, 01..7F).
    #[arg(long, value_name = "KVN", value_parser = parse_byte)]
    new_kvn: u8,
    /// The key version to replace (hex); default: the one this session authenticated with.
    #[arg(long, value_name = "KVN", value_parser = parse_byte, conflicts_with = "add")]
    replace: Option<u8>,
    /// Add the key set instead of replacing one.
    #[arg(long)]
    add: bool,
}

#[derive(Debug, clap::Args)]
struct StoreDataArgs {
    /// Personalise this application (INSTALL [for personalization] first).
    #[arg(long, value_name = "AID", value_parser = parse_aid)]
    app: Option<Aid>,
    /// A DGI block: TAG=VALUE in hex (e.g. 0101=AABB); one block each, in order.
    #[arg(long, value_name = "TAG=HEX", conflicts_with_all = ["tlv", "data"])]
    dgi: Vec<String>,
    /// A BER-TLV block (hex); one block each, in order.
    #[arg(long, value_name = "HEX", value_parser = parse_hex, conflicts_with = "data")]
    tlv: Vec<HexBytes>,
    /// A block without structure (hex); one block each, in order.
    #[arg(long, value_name = "HEX", value_parser = parse_hex)]
    data: Vec<HexBytes>,
    /// Encrypt each block (a DGI with its header) as this project's card manager decrypts it:
    /// padded with 80 00.., encrypted with the SD's key-encryption key (SCP02 session DEK,
    /// SCP03/SM4 static K-DEK); P1 b7-b6 = 11.
    #[arg(long)]
    encrypt: bool,
}

#[derive(Debug, clap::Args)]
struct TargetArgs {
    /// The application or security domain.
    #[arg(value_parser = parse_aid, required_unless_present = "card", conflicts_with = "card")]
    aid: Option<Aid>,
    /// The card itself (SET STATUS P1 80).
    #[arg(long)]
    card: bool,
}

#[derive(Debug, clap::Args)]
struct ExtraditeArgs {
    /// The application or load file to hand over.
    #[arg(value_parser = parse_aid)]
    aid: Aid,
    /// The security domain that receives it.
    #[arg(long, value_name = "AID", value_parser = parse_aid)]
    to: Aid,
    /// Extradition token (hex), for delegated management.
    #[arg(long, value_name = "HEX", value_parser = parse_hex, default_value = "")]
    token: HexBytes,
}

/// Key bytes from the command line: wiped on drop, never printed. A malformed key is kept as
/// an error and reported when used, so that the parser never echoes the text (clap repeats
/// the values it refuses).
#[derive(Clone)]
struct KeyHex(Result<Zeroizing<Vec<u8>>, String>);

impl KeyHex {
    fn bytes(&self) -> anyhow::Result<&[u8]> {
        match &self.0 {
            Ok(b) => Ok(b),
            Err(e) => bail!("{e}"),
        }
    }
}

impl std::fmt::Debug for KeyHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Hex bytes (data, tokens, parameters).
#[derive(Clone, Debug)]
struct HexBytes(Vec<u8>);

fn clean_hex(text: &str) -> Result<Vec<u8>, String> {
    let clean: String = text.chars().filter(|c| !matches!(c, ' ' | ':')).collect();
    hex::decode(&clean).map_err(|e| format!("not hex: {e}"))
}

fn parse_hex(text: &str) -> Result<HexBytes, String> {
    clean_hex(text).map(HexBytes)
}

fn parse_key(text: &str) -> Result<KeyHex, String> {
    // The error never repeats the text: it may be a key.
    let bytes = match clean_hex(text) {
        Ok(b) => Zeroizing::new(b),
        Err(_) => return Ok(KeyHex(Err("a key is not hex".to_owned()))),
    };
    if !matches!(bytes.len(), 16 | 24 | 32) {
        return Ok(KeyHex(Err(format!(
            "a key of {} bytes (must be 16, 24 or 32)",
            bytes.len()
        ))));
    }
    Ok(KeyHex(Ok(bytes)))
}

fn parse_aid(text: &str) -> Result<Aid, String> {
    Aid::new(&clean_hex(text)?).map_err(|e| e.to_string())
}

fn parse_byte(text: &str) -> Result<u8, String> {
    let t = text.trim_start_matches("0x");
    u8::from_str_radix(t, 16).map_err(|_| format!("{text:?} is not one hex byte"))
}

fn parse_kdf(text: &str) -> Result<Diversification, String> {
    Diversification::from_name(text).ok_or_else(|| format!("{text:?} is not emv, visa2 or kdf3"))
}

fn parse_level(text: &str) -> Result<SecurityLevel, String> {
    let b = match text {
        "mac" => 0x01,
        "mac+enc" => 0x03,
        "mac+rmac" => 0x11,
        "mac+enc+rmac" => 0x13,
        "all" | "mac+enc+rmac+renc" => 0x33,
        _ => parse_byte(text)?,
    };
    SecurityLevel::from_byte(b).map_err(|e| e.to_string())
}

fn parse_privileges(text: &str) -> Result<Privileges, String> {
    if text.len() == 6
        && let Ok(b) = hex::decode(text)
    {
        return Ok(Privileges([b[0], b[1], b[2]]));
    }
    text.split(',')
        .filter(|n| !n.is_empty())
        .try_fold(Privileges::NONE, |acc, name| {
            Privileges::from_name(name.trim())
                .map(|p| acc.union(p))
                .ok_or_else(|| format!("unknown privilege {name:?}"))
        })
}

/// The transmit function's error: the channel failed, or the library built bytes that are not
/// a command (a bug; reported rather than unwrapped).
#[derive(Debug, thiserror::Error)]
enum Link {
    #[error("{0}")]
    Transport(#[source] TransportError),
    #[error("not a command APDU: {0}")]
    Command(ykt_apdu::ParseError),
}

/// The transmit function of a session over a card channel.
type Transmit<'a> = Box<dyn FnMut(&[u8]) -> Result<Vec<u8>, Link> + 'a>;

type Session<'a> = GpSession<Transmit<'a>>;

/// A library error as an `anyhow` error whose chain names the exit code's cause: the card's
/// status word as `ykt_transport::Error::Card` (exit 5), the transport's error (exit 4).
fn gp_error(e: ykt_gp_host::Error<Link>) -> anyhow::Error {
    if let Some(sw) = e.status_word() {
        let what = match &e {
            ykt_gp_host::Error::Card { operation, .. } => format!("card refused {operation}"),
            _ => "card refused the secure channel".to_owned(),
        };
        return anyhow::Error::new(ykt_transport::Error::Card(sw)).context(what);
    }
    if e.is_wrong_keys() {
        return anyhow!("{e}; check --key/--enc/--mac/--dek, --kvn, --kdf and --scp");
    }
    anyhow::Error::new(e)
}

impl ConnectArgs {
    fn protocol(&self) -> anyhow::Result<Protocol> {
        protocol_for(&self.scp, self.i)
    }

    /// The static (or master) key set of the type the protocol needs.
    fn keys(&self) -> anyhow::Result<KeySet> {
        let test_key = KeyHex(Ok(Zeroizing::new((0x40..=0x4F).collect())));
        let (enc, mac, dek) = match (&self.key, &self.enc, &self.mac, &self.dek) {
            (Some(k), ..) => (k.clone(), k.clone(), k.clone()),
            (None, Some(e), Some(m), Some(d)) => (e.clone(), m.clone(), d.clone()),
            _ => {
                warn!("no --key: using the public GP test key 40..4F");
                (test_key.clone(), test_key.clone(), test_key)
            }
        };
        key_set(&self.scp, self.kvn, &enc, &mac, &dek)
    }
}

fn protocol_for(scp: &str, i: Option<u8>) -> anyhow::Result<Protocol> {
    Ok(match scp {
        "02" => Protocol::scp02(i.unwrap_or(0x55))?,
        "sm4" => Protocol::sm4(i.unwrap_or(0x70))?,
        _ => Protocol::scp03(i.unwrap_or(0x70))?,
    })
}

fn key_set(
    scp: &str,
    version: u8,
    enc: &KeyHex,
    mac: &KeyHex,
    dek: &KeyHex,
) -> anyhow::Result<KeySet> {
    let wrong = |what| move |_| anyhow!("{what} does not fit SCP {scp}");
    let (enc, mac, dek) = (enc.bytes()?, mac.bytes()?, dek.bytes()?);
    Ok(match scp {
        "02" => KeySet::tdes(
            version,
            TdesKey::from_slice(enc).map_err(wrong("K-ENC"))?,
            TdesKey::from_slice(mac).map_err(wrong("K-MAC"))?,
            TdesKey::from_slice(dek).map_err(wrong("K-DEK"))?,
        ),
        "sm4" => KeySet::sm4(
            version,
            Sm4Key::from_slice(enc).map_err(wrong("K-ENC"))?,
            Sm4Key::from_slice(mac).map_err(wrong("K-MAC"))?,
            Sm4Key::from_slice(dek).map_err(wrong("K-DEK"))?,
        ),
        _ => KeySet::aes(
            version,
            AesKey::from_slice(enc).map_err(wrong("K-ENC"))?,
            AesKey::from_slice(mac).map_err(wrong("K-MAC"))?,
            AesKey::from_slice(dek).map_err(wrong("K-DEK"))?,
        ),
    })
}

/// The fresh card of `--sim FILE` when FILE does not exist: the e-purse test card with the
/// test ISD (SCP03 i=70, the public GP test keys), as `ykt se serve --state` creates it.
fn fresh_card() -> anyhow::Result<ykt_card::Card> {
    let mut card = ykt_purse::testing::danger_test_card_3des()?;
    ykt_conformance::isd::danger_install_test_isd(
        &mut card,
        ykt_conformance::isd::IsdChannel::Scp03,
    )?;
    Ok(card)
}

/// Runs `ykt gp …`.
pub fn run(args: GpArgs) -> anyhow::Result<()> {
    match &args.connect.sim {
        Some(path) => {
            let (card, created) =
                state::load_or_create(path, Box::new(OsEntropy::new()?), fresh_card)?;
            if created {
                info!(path = %path.display(), "created the test card (public GP test keys)");
            }
            let mut channel = InProcess::new(card);
            let result = run_on(&mut channel, &args);
            state::save(path, channel.card())?;
            result
        }
        None => {
            let mut channel = match &args.connect.reader {
                Some(reader) => PcscChannel::connect(reader)?,
                None => PcscChannel::connect_first()?,
            };
            info!(reader = channel.reader(), "connected");
            run_on(&mut channel, &args)
        }
    }
}

fn transmit_over<'a>(channel: &'a mut dyn CardChannel) -> Transmit<'a> {
    Box::new(move |bytes: &[u8]| {
        let cmd = CommandApdu::parse(bytes).map_err(Link::Command)?;
        let resp = channel.transmit(&cmd).map_err(Link::Transport)?;
        Ok(resp.to_bytes())
    })
}

fn open<'a>(channel: &'a mut dyn CardChannel, c: &ConnectArgs) -> anyhow::Result<Session<'a>> {
    let config = SessionConfig {
        security_domain: c.sd.clone(),
        keys: c.keys()?,
        diversification: c.kdf,
        protocol: c.protocol()?,
        level: c.sec_level,
    };
    let mut challenge = [0u8; 8];
    getrandom::fill(&mut challenge).map_err(|e| anyhow!("OS random source: {e}"))?;
    GpSession::open(transmit_over(channel), config, &challenge)
        .map_err(gp_error)
        .with_context(|| format!("opening a secure channel to {}", c.sd))
}

fn run_on(channel: &mut dyn CardChannel, args: &GpArgs) -> anyhow::Result<()> {
    let c = &args.connect;
    let mut s = match args.command {
        GpCommand::Info => return info(channel, c),
        _ => open(channel, c)?,
    };
    match &args.command {
        // Answered above, without a secure channel.
        GpCommand::Info => {}
        GpCommand::List => {
            let registry = s.registry().map_err(gp_error)?;
            print!("{}", format_registry(&registry));
        }
        GpCommand::Install(a) => install(&mut s, a)?,
        GpCommand::Delete(a) => {
            s.delete(&a.aid, a.related, a.token.as_ref().map(|t| t.0.as_slice()))
                .map_err(gp_error)?;
            println!("deleted {}", a.aid);
        }
        GpCommand::CreateSd(a) => create_sd(&mut s, c, a)?,
        GpCommand::PutKey(a) => put_key(&mut s, c, a)?,
        GpCommand::StoreData(a) => store_data(&mut s, a)?,
        GpCommand::Lock(t) | GpCommand::Unlock(t) => {
            let lock = matches!(args.command, GpCommand::Lock(_));
            match &t.aid {
                Some(aid) if lock => s.lock(aid).map_err(gp_error)?,
                Some(aid) => s.unlock(aid).map_err(gp_error)?,
                None => {
                    let state = if lock {
                        CardLifeCycle::CardLocked
                    } else {
                        CardLifeCycle::Secured
                    };
                    s.set_card_state(state).map_err(gp_error)?;
                }
            }
            let what = t.aid.as_ref().map_or("the card".to_owned(), Aid::to_string);
            println!("{} {what}", if lock { "locked" } else { "unlocked" });
        }
        GpCommand::Extradite(a) => {
            s.extradite(&a.to, &a.aid, &[], &a.token.0)
                .map_err(gp_error)?;
            println!("extradited {} to {}", a.aid, a.to);
        }
    }
    Ok(())
}

/// One line per entry, as GlobalPlatformPro's `-l`: type, AID, life cycle, privileges.
pub fn format_registry(registry: &Registry) -> String {
    let mut out = String::new();
    let line = |out: &mut String, e: &RegistryEntry| {
        let state = life_cycle_name(e.kind, e.life_cycle).to_string();
        let aid = hex::encode_upper(&e.aid);
        let detail = if e.kind == EntryKind::LoadFile {
            let mut d = String::new();
            if let Some(v) = &e.version {
                let dotted: Vec<String> = v.iter().map(u8::to_string).collect();
                let _ = write!(d, "version {} ", dotted.join("."));
            }
            let modules: Vec<String> = e.modules.iter().map(hex::encode_upper).collect();
            let _ = write!(
                d,
                "modules {}",
                if modules.is_empty() {
                    "-".to_owned()
                } else {
                    modules.join(",")
                }
            );
            d
        } else {
            let names = e.privileges.map(|p| p.names()).unwrap_or_default();
            if names.is_empty() {
                "-".to_owned()
            } else {
                names.join(",")
            }
        };
        let _ = writeln!(
            out,
            "{:<3}  {aid:<32}  {state:<12}  {detail}",
            e.kind.short_name()
        );
    };
    for e in registry.entries() {
        line(&mut out, e);
    }
    out
}

fn info(channel: &mut dyn CardChannel, c: &ConnectArgs) -> anyhow::Result<()> {
    let mut t = transmit_over(channel);
    ykt_gp_host::select(&mut t, &c.sd)
        .map_err(gp_error)
        .with_context(|| format!("selecting {}", c.sd))?;
    let mut get = |tag: u16| -> anyhow::Result<Option<Vec<u8>>> {
        match ykt_gp_host::get_data_plain(&mut t, tag) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status_word().is_some() => Ok(None),
            Err(e) => Err(gp_error(e)),
        }
    };
    let hexs = |v: &[u8]| hex::encode_upper(v);
    match get(TAG_CARD_DATA)? {
        Some(v) => {
            let cd = parse_card_data(&v).map_err(|e| anyhow!("card data: {e}"))?;
            let version = cd.gp_version.map_or("?".to_owned(), |v| {
                v.iter().map(u8::to_string).collect::<Vec<_>>().join(".")
            });
            let scps: Vec<String> = cd
                .secure_channels
                .iter()
                .map(|(scp, i)| format!("SCP{scp:02X} i={i:02X}"))
                .collect();
            println!("Card data: GP {version}, {}", scps.join(", "));
        }
        None => println!("Card data: absent"),
    }
    for (name, tag) in [("IIN", TAG_IIN), ("CIN", TAG_CIN)] {
        match get(tag)? {
            Some(v) => println!("{name}: {}", hexs(&v)),
            None => println!("{name}: absent"),
        }
    }
    match get(TAG_CPLC)? {
        Some(v) => {
            let cplc = Cplc::parse(&v).map_err(|e| anyhow!("CPLC: {e}"))?;
            println!("CPLC:");
            for (name, value) in cplc.fields() {
                println!("  {name:<36} {}", hexs(value));
            }
        }
        None => println!("CPLC: absent"),
    }
    match get(TAG_KEY_INFORMATION)? {
        Some(v) => {
            println!("Key information:");
            for k in parse_key_information(&v).map_err(|e| anyhow!("key information: {e}"))? {
                let comps: Vec<String> = k
                    .components
                    .iter()
                    .map(|(ty, len)| format!("{} ({len} bytes)", key_type_name(*ty)))
                    .collect();
                println!(
                    "  KVN {:02X} id {:02X}: {}",
                    k.version,
                    k.id,
                    comps.join(", ")
                );
            }
        }
        None => println!("Key information: absent"),
    }
    Ok(())
}

fn key_type_name(ty: u8) -> String {
    match ty {
        0x80 => "3DES".to_owned(),
        0x88 => "AES".to_owned(),
        0x89 => "SM4".to_owned(),
        other => format!("type {other:02X}"),
    }
}

fn install(s: &mut Session<'_>, a: &InstallArgs) -> anyhow::Result<()> {
    if let Some(path) = &a.load {
        let lfdb = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let hash = a
            .hash
            .then(|| ykt_gp_host::commands::load::load_file_data_block_hash(&lfdb));
        s.install_for_load(&a.package, None, hash.as_ref().map(|h| &h[..]), &[], &[])
            .map_err(gp_error)?;
        s.load(&lfdb, &[]).map_err(gp_error)?;
        println!("loaded {} ({} bytes)", a.package, lfdb.len());
    }
    let instance = a.instance.clone().unwrap_or_else(|| a.module.clone());
    let install = Install {
        load_file: a.package.clone(),
        module: a.module.clone(),
        instance: instance.clone(),
        privileges: a.privs.unwrap_or(Privileges::NONE),
        parameters: InstallParameters {
            application: a.params.0.clone(),
            extra: Vec::new(),
        },
        token: Vec::new(),
    };
    s.install(&install, !a.no_selectable).map_err(gp_error)?;
    println!("installed {instance}");
    Ok(())
}

fn create_sd(s: &mut Session<'_>, c: &ConnectArgs, a: &CreateSdArgs) -> anyhow::Result<()> {
    let privileges = a
        .privs
        .unwrap_or(Privileges::NONE)
        .union(Privileges([0x80, 0, 0]));
    let application = match &a.sd_scp {
        Some(scp) => {
            let protocol = protocol_for(scp, a.sd_i.or(c.i))?;
            // C9 { 81 02 SCP i }: the SM4 channel is SCP 04 here (L, tsm-gp.md §3.9).
            let family = match protocol {
                Protocol::Scp02(_) => 0x02,
                Protocol::Scp03(_) => 0x03,
                Protocol::Sm4(_) => 0x04,
            };
            vec![0x81, 0x02, family, protocol.i()]
        }
        None => Vec::new(),
    };
    let install = Install {
        load_file: a.package.clone(),
        module: a.module.clone(),
        instance: a.aid.clone(),
        privileges,
        parameters: InstallParameters {
            application,
            extra: Vec::new(),
        },
        token: Vec::new(),
    };
    s.install(&install, true).map_err(gp_error)?;
    println!("created security domain {}", a.aid);
    if let Some(key) = &a.sd_key {
        // The card manager's way to give an SSD its first keys ([PROPOSAL] of ykt-gp's
        // STORE DATA): DGI 8001 holding a PUT KEY data field; the answer is KVN · KCVs.
        let scp = a.sd_scp.as_deref().unwrap_or(&c.scp);
        let keys = key_set(scp, a.sd_kvn, key, key, key)?;
        let (data, kcvs) = s.key_set_data(&keys).map_err(gp_error)?;
        let options = StoreDataOptions {
            structure: Structure::Dgi,
            ..Default::default()
        };
        let answers = s
            .personalize(&a.aid, options, &[dgi(DGI_SD_KEYS, &data)?])
            .map_err(gp_error)?;
        let confirmed = answers
            .first()
            .is_some_and(|d| put_key_confirms(d, a.sd_kvn, &kcvs).unwrap_or(false));
        if !confirmed {
            bail!("the new security domain did not confirm its key set's check values");
        }
        println!(
            "key set {:02X} put into {} (check values verified)",
            a.sd_kvn, a.aid
        );
    }
    Ok(())
}

/// The DGI that carries a new SSD's first key set on this project's card manager.
const DGI_SD_KEYS: u16 = 0x8001;

fn put_key(s: &mut Session<'_>, c: &ConnectArgs, a: &PutKeyArgs) -> anyhow::Result<()> {
    let (enc, mac, dek) = match (&a.new_key, &a.new_enc, &a.new_mac, &a.new_dek) {
        (Some(k), ..) => (k, k, k),
        (None, Some(e), Some(m), Some(d)) => (e, m, d),
        _ => bail!("give --new-key, or --new-enc, --new-mac and --new-dek"),
    };
    let new = key_set(&c.scp, a.new_kvn, enc, mac, dek)?;
    let replace = if a.add {
        None
    } else {
        Some(a.replace.unwrap_or(s.key_version()))
    };
    s.put_key(replace, &new).map_err(gp_error)?;
    match replace {
        Some(old) => println!(
            "key set {old:02X} replaced by key set {:02X} (check values verified)",
            a.new_kvn
        ),
        None => println!("key set {:02X} added (check values verified)", a.new_kvn),
    }
    Ok(())
}

fn store_data(s: &mut Session<'_>, a: &StoreDataArgs) -> anyhow::Result<()> {
    let block = if matches!(s.protocol(), Protocol::Scp02(_)) {
        8
    } else {
        16
    };
    // ykt-gp's STORE DATA decrypts the whole data field and strips method 2 padding
    // (its DECRYPT_RULE, [PROPOSAL]), so every encrypted block is padded.
    let encrypt = |s: &Session<'_>, data: &[u8]| -> anyhow::Result<Vec<u8>> {
        let padded = Zeroizing::new(pad_iso9797_m2(data, block));
        s.encrypt_sensitive(&padded).map_err(gp_error)
    };
    let (structure, blocks) = if !a.dgi.is_empty() {
        let mut blocks = Vec::new();
        // Errors name the DGI by position: its value may be a key.
        for (n, item) in a.dgi.iter().enumerate() {
            let n = n + 1;
            let (tag, value) = item
                .split_once('=')
                .ok_or_else(|| anyhow!("--dgi number {n}: expected TAG=HEX"))?;
            let tag = u16::from_str_radix(tag, 16)
                .map_err(|_| anyhow!("--dgi number {n}: the tag is 4 hex digits"))?;
            let value = Zeroizing::new(
                clean_hex(value).map_err(|_| anyhow!("--dgi number {n}: the value is not hex"))?,
            );
            let block = dgi(tag, &value)?;
            blocks.push(if a.encrypt {
                encrypt(s, &block)?
            } else {
                block
            });
        }
        (Structure::Dgi, blocks)
    } else {
        let (structure, items) = if a.tlv.is_empty() {
            (Structure::None, &a.data)
        } else {
            (Structure::BerTlv, &a.tlv)
        };
        let mut blocks = Vec::new();
        for item in items {
            blocks.push(if a.encrypt {
                encrypt(s, &item.0)?
            } else {
                item.0.clone()
            });
        }
        (structure, blocks)
    };
    if blocks.is_empty() {
        bail!("nothing to store: give --dgi, --tlv or --data");
    }
    let options = StoreDataOptions {
        structure,
        encryption: if a.encrypt {
            Encryption::Encrypted
        } else {
            Encryption::None
        },
        response_expected: false,
    };
    let n = blocks.len();
    match &a.app {
        Some(app) => {
            s.personalize(app, options, &blocks).map_err(gp_error)?;
            println!("stored {n} block(s) for {app}");
        }
        None => {
            s.store_data(options, &blocks).map_err(gp_error)?;
            println!("stored {n} block(s) in {}", s.security_domain());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_privileges_parse() {
        assert_eq!(parse_level("mac").unwrap(), SecurityLevel::C_MAC);
        assert_eq!(parse_level("all").unwrap(), SecurityLevel::ALL);
        assert_eq!(parse_level("13").unwrap(), SecurityLevel::C_DEC_C_MAC_R_MAC);
        assert!(parse_level("07").is_err());
        assert_eq!(
            parse_privileges("SecurityDomain,DelegatedManagement").unwrap(),
            Privileges([0xA0, 0, 0])
        );
        assert_eq!(
            parse_privileges("804000").unwrap(),
            Privileges([0x80, 0x40, 0])
        );
        assert!(parse_privileges("Nonsense").is_err());
        let err = parse_key("00112233445566778899AABBCCDDEEXX")
            .unwrap()
            .bytes()
            .unwrap_err();
        assert!(!err.to_string().contains("0011"), "{err}");
        assert_eq!(
            format!("{:?}", parse_key(&"11".repeat(16)).unwrap()),
            "[redacted]"
        );
        assert_eq!(ykt_gp_host::ISD_AID.len(), 8);
    }
}
