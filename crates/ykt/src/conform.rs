//! `ykt conform`: the conformance suite (`ykt-conformance`) against the simulator, a card in a
//! PC/SC reader, the terminal flows, the QR scanning terminal, a TSM at a URL or the wallet SDK
//! against one (without a URL: a TSM started in process on a temporary SQLite database with the
//! test keys and test payments); writes the HTML and JUnit reports.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use ykt_apdu::CommandApdu;
use ykt_conformance::catalogue::Method;
use ykt_conformance::profile::{self, Profile};
use ykt_conformance::report::{html, junit};
use ykt_conformance::{
    CardAccess, Catalogue, Fault, HttpResponse, LinkProbe, LinkReport, Registry, Run, RunConfig,
    RunInfo, Target, TargetKind, TsmAccess, Verdict, run,
};
use ykt_transport::{CardChannel, PcscChannel};
use ykt_tsm_service::http::tls::probe::{ProbeServer, ProbeTls};

use crate::tsm_link::TsmAddress;

/// `ykt conform …`
///
/// Exit codes: 0 when no item FAILed and none was INCONCLUSIVE (N/A and NOT_RUN are fine);
/// 6 when an item FAILed; 7 when none FAILed but one was INCONCLUSIVE; 4 when the PC/SC reader
/// cannot be reached; 1 for any other error (a report file that cannot be written).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 nothing FAILED or INCONCLUSIVE (N/A and NOT_RUN are fine); \
    6 an item FAILED; 7 none FAILED but one was INCONCLUSIVE; 4 the PC/SC reader cannot be \
    reached; 2 usage; 1 any other error.\n\
    Against `ykt se serve` behind pcscd (the e-purse.md §8 test card with the test ISD): \
    ykt conform --target \"pcsc:Virtual PCD 00 00\" --profile ep,alg-3des,gp,isd-scp03,gp-content \
    (ep,alg-sm4,gp,isd-scp03,gp-content for `ykt se serve --sm4`; isd-scp02 or isd-sm4 for \
    `--isd`). Declare gp-content only for a card whose ISD can load and install the test \
    package, and nfcqr only for a card with the NFC QR applet at A000000632515201. Items work relative to the card's state, \
    so the same card can be tested again. `--target qr-terminal` runs the QR scanning \
    terminal items against ykt-qr's verifier and record store (profile qr-terminal). \
    `--target tsm:https://HOST:PORT --tsm-pin PIN` runs the TSM items against `ykt tsm serve \
    --test-keys --test-payments` (profile tsm,tsm-test-keys,tsm-test-payments; declare only tsm for a TSM \
    without the public test keys: the items that need an SE are then N/A), \
    `--target client:URL` the client items (the wallet SDK driven against that TSM); \
    `--target tsm` or `client` alone starts a TSM in process on a temporary SQLite database."
)]
pub struct ConformArgs {
    /// What to test: `sim` (the in-process simulator, a fresh test card per item: e-purse,
    /// second ticket, GP card manager with content management, NFC QR applet),
    /// `pcsc:READER` (a card in that PC/SC reader, e.g. `ykt se serve` behind pcscd; `pcsc`
    /// alone takes the first reader with a card), `terminal` (the terminal flows against the
    /// scripted lower-tester card and stub PSAM), `qr-terminal` (the QR scanning terminal:
    /// ykt-qr's verifier and record store, in process), `tsm:URL` (the TSM at that
    /// `https://` URL, with --tsm-pin), `client:URL` (the wallet SDK against it), or `tsm` / `client` alone (a TSM
    /// started in process with the test keys and test payments, on a temporary database).
    #[arg(long, default_value = "sim", value_name = "TARGET")]
    target: String,
    /// The sample's declared features, comma-separated (see --list). Default: everything for
    /// `sim` (with gp-content and nfcqr), `ep,alg-3des,gp,isd-scp03,gp-content` (what
    /// `ykt se serve` presents) for `pcsc`, `te,t2` for `terminal`, `qr-terminal` for
    /// `qr-terminal`, `tsm,tsm-test-keys,tsm-test-payments` for `tsm`,
    /// `client,tsm-test-keys,tsm-test-payments` for `client`.
    #[arg(long, value_name = "FEATURES")]
    profile: Option<String>,
    /// The TSM's id (the `receiver_id` the harness's device addresses), for `tsm` and `client`.
    #[arg(long, default_value = "SPTSM-YKT-TEST", value_name = "ID")]
    tsm_id: String,
    /// For `tsm:https://…` and `client:https://…`: the SPKI pin of the TSM's TLS key
    /// (`ykt tsm pin`); twice for a backup key.
    #[arg(long, value_name = "PIN")]
    tsm_pin: Vec<String>,
    /// For `tsm:http://…` and `client:http://…`: reach the TSM over plain HTTP.
    #[arg(long)]
    danger_insecure_http: bool,
    /// Run only items whose ID starts with PATTERN, or matches it with `*` wildcards
    /// (e.g. `SE-EP-PUR`, `*-TEAR-*`; several patterns separated by commas); the others are
    /// NOT_RUN.
    #[arg(long, value_name = "PATTERN")]
    only: Option<String>,
    /// Write the HTML report (one self-contained page) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Print the catalogue and the profile features, then exit.
    #[arg(long)]
    list: bool,
}

/// Some item FAILed (exit code 6) or was INCONCLUSIVE (exit code 7).
#[derive(Debug, thiserror::Error)]
#[error("{failed} item(s) FAILED, {inconclusive} INCONCLUSIVE")]
pub struct NotConformant {
    /// Items that FAILed.
    pub failed: usize,
    /// Items that were INCONCLUSIVE.
    pub inconclusive: usize,
}

/// A card in a PC/SC reader as the harness sees it.
struct PcscCard(PcscChannel);

impl CardAccess for PcscCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Fault> {
        let command = CommandApdu::parse(command)
            .map_err(|e| Fault::Transport(format!("not a command APDU: {e}")))?;
        self.0
            .transmit(&command)
            .map(|r| r.to_bytes())
            .map_err(|e| Fault::Transport(e.to_string()))
    }

    fn reset(&mut self) -> Result<(), Fault> {
        self.0
            .reset()
            .map(|_| ())
            .map_err(|e| Fault::Transport(e.to_string()))
    }
}

enum Kind {
    Sim,
    Pcsc(Option<String>),
    Terminal,
    QrTerminal,
    /// A TSM at a URL (`None`: started in process).
    Tsm(Option<String>),
    /// The wallet SDK against a TSM at a URL (`None`: started in process).
    Client(Option<String>),
}

fn parse_target(text: &str) -> anyhow::Result<Kind> {
    Ok(match text {
        "sim" => Kind::Sim,
        "terminal" => Kind::Terminal,
        "qr-terminal" => Kind::QrTerminal,
        "pcsc" => Kind::Pcsc(None),
        "tsm" => Kind::Tsm(None),
        "client" => Kind::Client(None),
        other => {
            if let Some(url) = other.strip_prefix("tsm:") {
                Kind::Tsm(Some(tsm_url(url)?))
            } else if let Some(url) = other.strip_prefix("client:") {
                Kind::Client(Some(tsm_url(url)?))
            } else {
                match other.strip_prefix("pcsc:") {
                    Some(reader) if !reader.is_empty() => Kind::Pcsc(Some(reader.to_owned())),
                    _ => anyhow::bail!(
                        "--target must be sim, pcsc:READER, terminal, qr-terminal, tsm[:URL] or client[:URL], not {other:?}"
                    ),
                }
            }
        }
    })
}

/// An `https://HOST:PORT` or `http://HOST:PORT` URL, without a trailing slash (whether it may
/// be used, with which pins, is `crate::tsm_link`'s to say).
fn tsm_url(url: &str) -> anyhow::Result<String> {
    match url.split_once("://") {
        Some(("https" | "http", rest)) if !rest.is_empty() => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => anyhow::bail!(
            "the TSM URL must be https://HOST:PORT (or http:// with --danger-insecure-http), not {url:?}"
        ),
    }
}

/// Runs `ykt conform …`.
pub fn run_conform(args: ConformArgs) -> anyhow::Result<()> {
    let catalogue = Catalogue::builtin().context("loading the built-in catalogue")?;
    if args.list {
        print!("{}", listing(&catalogue));
        return Ok(());
    }
    let kind = parse_target(&args.target)?;
    let default_profile = match kind {
        Kind::Sim => profile::SAMPLE_SIM,
        Kind::Pcsc(_) => profile::SAMPLE_SERVE_3DES,
        Kind::Terminal => profile::SAMPLE_TERMINAL,
        Kind::QrTerminal => profile::SAMPLE_QR_TERMINAL,
        Kind::Tsm(_) => profile::SAMPLE_TSM,
        Kind::Client(_) => profile::SAMPLE_CLIENT,
    };
    let profile_text = args.profile.as_deref().unwrap_or(default_profile);
    let config = RunConfig {
        profile: Profile::parse(profile_text)?,
        only: args.only.clone(),
    };
    let info = RunInfo {
        target: args.target.clone(),
        profile: config.profile.to_string(),
        date: utc_now(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let registry = Registry::builtin();
    let is_client = matches!(kind, Kind::Client(_));
    let result = match kind {
        Kind::Sim => run(&catalogue, &registry, Target::Sim, &config, info),
        Kind::Terminal => run(&catalogue, &registry, Target::Terminal, &config, info),
        Kind::QrTerminal => run(&catalogue, &registry, Target::QrTerminal, &config, info),
        Kind::Pcsc(reader) => {
            let channel = match &reader {
                Some(r) => PcscChannel::connect(r)?,
                None => PcscChannel::connect_first()?,
            };
            tracing::info!(reader = channel.reader(), "connected");
            let mut card = PcscCard(channel);
            run(
                &catalogue,
                &registry,
                Target::Card(&mut card),
                &config,
                info,
            )
        }
        Kind::Tsm(url) | Kind::Client(url) => {
            // Without a URL: a TSM of our own, on a temporary database, for the run only.
            let local = match &url {
                Some(_) => None,
                None => Some(LocalTsm::start(&args.tsm_id)?),
            };
            let address = match (&url, &local) {
                (Some(url), _) => TsmAddress::new(url, &args.tsm_pin, args.danger_insecure_http)?,
                (None, Some(local)) => local.tsm.address().clone(),
                (None, None) => anyhow::bail!("no TSM URL"),
            };
            let mut access = HttpTsm::new(&address, &args.tsm_id)?;
            let target = if is_client {
                Target::Client(&mut access)
            } else {
                Target::Tsm(&mut access)
            };
            let result = run(&catalogue, &registry, target, &config, info);
            drop(local);
            result
        }
    };
    print!("{}", summary(&result));
    if let Some(path) = &args.html {
        write(path, &html(&result))?;
    }
    if let Some(path) = &args.junit {
        write(path, &junit(&result))?;
    }
    if result.is_success() {
        Ok(())
    } else {
        Err(NotConformant {
            failed: result.count(Verdict::Fail),
            inconclusive: result.count(Verdict::Inconclusive),
        }
        .into())
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn listing(catalogue: &Catalogue) -> String {
    let mut o = String::new();
    for item in catalogue.items() {
        let _ = writeln!(
            o,
            "{:<15} {:<11} {:<28} {}{}",
            item.id,
            target_name(item.target),
            item.profile.join(","),
            item.title,
            match (&item.needs, item.method, item.provisional) {
                (Some(m), _, _) => format!(" [needs {m}]"),
                (None, Method::Auto, true) => " [provisional]".to_owned(),
                (None, Method::Auto, false) => String::new(),
                (None, m, _) => format!(" [{}]", format!("{m:?}").to_lowercase()),
            }
        );
    }
    let _ = writeln!(o, "\n{} items:", catalogue.items().len());
    for ((object, area), n) in catalogue.counts_by_area() {
        let _ = writeln!(o, "  {object}-{area}: {n}");
    }
    let _ = writeln!(o, "\nprofile features (--profile):");
    for (name, what) in profile::FEATURES {
        let _ = writeln!(o, "  {name:<11} {what}");
    }
    let _ = writeln!(
        o,
        "\nsample profiles: sim {}; `ykt se serve` {} (ep,alg-sm4 with --sm4); terminal {}; qr-terminal {}; tsm {}; client {}",
        profile::SAMPLE_SIM,
        profile::SAMPLE_SERVE_3DES,
        profile::SAMPLE_TERMINAL,
        profile::SAMPLE_QR_TERMINAL,
        profile::SAMPLE_TSM,
        profile::SAMPLE_CLIENT
    );
    o
}

/// The catalogue's spelling of a target kind.
fn target_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Se => "se",
        TargetKind::Terminal => "terminal",
        TargetKind::QrTerminal => "qr-terminal",
        TargetKind::FaceTerminal => "face-terminal",
        TargetKind::Tsm => "tsm",
        TargetKind::Client => "client",
        TargetKind::Host => "host",
        TargetKind::E2e => "e2e",
    }
}

fn summary(run: &Run) -> String {
    let mut o = String::new();
    let mut unselected = 0;
    for r in &run.results {
        if r.outcome.verdict == Verdict::NotRun && r.outcome.reason.starts_with("not selected") {
            unselected += 1;
            continue;
        }
        let _ = writeln!(
            o,
            "{:<12} {:<15} {} — {}",
            r.outcome.verdict.label(),
            r.item.id,
            r.item.title,
            r.outcome.reason
        );
    }
    if unselected > 0 {
        let _ = writeln!(o, "({unselected} items not selected by --only: NOT_RUN)");
    }
    let counts: Vec<String> = Verdict::ALL
        .iter()
        .map(|v| format!("{} {}", run.count(*v), v.label()))
        .collect();
    let _ = writeln!(
        o,
        "\n{} on {} (profile {}): {} of {} items; {}",
        if run.is_success() {
            "CONFORMANT"
        } else {
            "NOT CONFORMANT"
        },
        run.info.target,
        run.info.profile,
        counts.join(", "),
        run.results.len(),
        if run.is_success() {
            "nothing FAILED or INCONCLUSIVE"
        } else {
            "see the reasons above"
        }
    );
    o
}

/// A TSM of the run's own: `ykt tsm serve --test-keys --test-payments` in process, on a
/// temporary SQLite database and key directory, removed when dropped.
struct LocalTsm {
    tsm: crate::tsm::RunningTsm,
    dir: PathBuf,
}

impl LocalTsm {
    fn start(tsm_id: &str) -> anyhow::Result<Self> {
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag).map_err(|e| anyhow::anyhow!("OS random source: {e}"))?;
        let dir = std::env::temp_dir().join(format!(
            "ykt-conform-tsm-{}-{}",
            std::process::id(),
            hex::encode(tag)
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let db = format!("sqlite://{}?mode=rwc", dir.join("tsm.db").display());
        let tsm = crate::tsm::RunningTsm::start(&db, &dir.join("tsm"), tsm_id)
            .context("starting the in-process TSM")?;
        println!("TSM {tsm_id} started in process at {}", tsm.url());
        Ok(Self { tsm, dir })
    }
}

impl Drop for LocalTsm {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The TSM at its address as the harness sees it: each call one HTTP exchange through the
/// client the wallet uses (`ykt_tsm_service::TsmClient`: TLS 1.3 with the address's pins, or
/// plain HTTP under --danger-insecure-http), the bytes as they came, the system clock and the
/// OS random source.
struct HttpTsm {
    address: TsmAddress,
    client: ykt_tsm_service::TsmClient,
    tsm_id: String,
}

impl HttpTsm {
    fn new(address: &TsmAddress, tsm_id: &str) -> anyhow::Result<Self> {
        Ok(Self {
            address: address.clone(),
            client: address.client()?,
            tsm_id: tsm_id.to_owned(),
        })
    }
}

/// How long a probe endpoint may take to see what a client sent.
const PROBE_SETTLE: std::time::Duration = std::time::Duration::from_secs(3);

/// RP-SEC-001's probe of one endpoint that is not the TSM: a client with `address`'s link
/// policy GETs `/health` there; refused when that fails.
fn probe(endpoint: &str, address: &TsmAddress, server: Option<&ProbeServer>) -> LinkProbe {
    let answer = address
        .client()
        .and_then(|c| c.get_raw("/health").map_err(anyhow::Error::from));
    if let Some(server) = server {
        server.settle(PROBE_SETTLE);
    }
    let (refused, detail) = match answer {
        Ok((status, _)) => (false, format!("answered HTTP {status}")),
        Err(e) => (true, format!("{e:#}")),
    };
    LinkProbe {
        endpoint: endpoint.to_owned(),
        refused,
        bytes_received: server.map_or(0, ProbeServer::application_bytes),
        detail,
    }
}

/// A client error as the harness's transport fault (or a refusal of the link: the text says which).
fn fault(e: ykt_tsm_service::http::ClientError) -> Fault {
    Fault::Transport(format!("{e:#}"))
}

impl TsmAccess for HttpTsm {
    fn post(&mut self, path: &str, body: &[u8]) -> Result<HttpResponse, Fault> {
        let (status, body) = self.client.post_raw(path, body).map_err(fault)?;
        Ok(HttpResponse { status, body })
    }

    fn get(&mut self, path: &str) -> Result<HttpResponse, Fault> {
        let (status, body) = self.client.get_raw(path).map_err(fault)?;
        Ok(HttpResponse { status, body })
    }

    fn tsm_id(&self) -> String {
        self.tsm_id.clone()
    }

    fn now_ms(&mut self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .unwrap_or(0)
    }

    fn link_report(&mut self) -> LinkReport {
        let pins = self.address.pins().to_vec();
        if pins.is_empty() {
            return LinkReport::Plaintext;
        }
        let mut probes = Vec::new();
        match ProbeServer::start(ProbeTls::Tls13) {
            Ok(server) => probes.push(probe(
                &format!("a TLS 1.3 server at {} with a key of its own", server.url()),
                &TsmAddress::pinned(&server.url(), pins.clone()),
                Some(&server),
            )),
            Err(e) => tracing::warn!("RP-SEC-001: no probe server: {e}"),
        }
        match ProbeServer::start(ProbeTls::Tls12Only) {
            // Pinned to that server's own key too: only the protocol version is refused.
            Ok(server) => probes.push(probe(
                &format!(
                    "a TLS 1.2-only server at {} (its key pinned for this probe)",
                    server.url()
                ),
                &TsmAddress::pinned(&server.url(), [pins.clone(), vec![server.pin()]].concat()),
                Some(&server),
            )),
            Err(e) => tracing::warn!("RP-SEC-001: no probe server: {e}"),
        }
        let plain = format!(
            "http://{}",
            self.address
                .url()
                .split_once("://")
                .map_or("", |(_, rest)| rest)
        );
        let pin_texts: Vec<String> = pins.iter().map(ToString::to_string).collect();
        probes.push(match TsmAddress::new(&plain, &pin_texts, false) {
            Ok(address) => probe(
                &format!("the TSM's address over plain HTTP ({plain})"),
                &address,
                None,
            ),
            Err(e) => LinkProbe {
                endpoint: format!("the TSM's address over plain HTTP ({plain})"),
                refused: true,
                bytes_received: 0,
                detail: format!("{e:#}"),
            },
        });
        LinkReport::Pinned {
            version: "TLS 1.3".to_owned(),
            pins: pins.len(),
            probes,
        }
    }

    fn seed(&mut self) -> u64 {
        let mut b = [0u8; 8];
        // A run without OS randomness still works; only a TSM that outlives it may see a device
        // or SE it saw before.
        let _ = getrandom::fill(&mut b);
        u64::from_be_bytes(b)
    }
}

/// The current UTC time as `YYYY-MM-DDThh:mm:ssZ` (the report's run date).
pub(crate) fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(0);
    match crate::clock::from_unix(secs) {
        Ok(t) => {
            let h: String = t.bytes().iter().map(|b| format!("{b:02X}")).collect();
            format!(
                "{}-{}-{}T{}:{}:{}Z",
                &h[0..4],
                &h[4..6],
                &h[6..8],
                &h[8..10],
                &h[10..12],
                &h[12..14]
            )
        }
        Err(_) => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn targets_parse() {
        assert!(matches!(super::parse_target("sim"), Ok(super::Kind::Sim)));
        assert!(matches!(
            super::parse_target("pcsc:Virtual PCD 00 00"),
            Ok(super::Kind::Pcsc(Some(r))) if r == "Virtual PCD 00 00"
        ));
        assert!(matches!(
            super::parse_target("qr-terminal"),
            Ok(super::Kind::QrTerminal)
        ));
        assert!(super::parse_target("pcsc:").is_err());
        assert!(matches!(
            super::parse_target("tsm"),
            Ok(super::Kind::Tsm(None))
        ));
        assert!(matches!(
            super::parse_target("client:http://127.0.0.1:8480/"),
            Ok(super::Kind::Client(Some(u))) if u == "http://127.0.0.1:8480"
        ));
        assert!(matches!(
            super::parse_target("tsm:https://tsm.example:8480"),
            Ok(super::Kind::Tsm(Some(u))) if u == "https://tsm.example:8480"
        ));
        assert!(super::parse_target("tsm:ftp://x").is_err());
        assert!(super::parse_target("tsm:https://").is_err());
        assert!(super::parse_target("card").is_err());
    }

    #[test]
    fn fail_and_inconclusive_have_their_exit_codes() {
        use std::process::ExitCode;
        let code = |failed, inconclusive| {
            crate::exit::code_for(&anyhow::Error::from(super::NotConformant {
                failed,
                inconclusive,
            }))
        };
        assert_eq!(code(1, 0), ExitCode::from(crate::exit::NOT_CONFORMANT));
        assert_eq!(code(2, 3), ExitCode::from(crate::exit::NOT_CONFORMANT));
        assert_eq!(code(0, 1), ExitCode::from(crate::exit::INCONCLUSIVE));
    }

    #[test]
    fn date_is_iso() {
        let d = super::utc_now();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }
}
