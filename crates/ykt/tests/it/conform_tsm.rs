//! `ykt conform --target tsm:URL` and `--target client:URL`: the TSM and client conformance items against a running `ykt tsm serve`.
//!
//! The TSM is a child process (`ykt tsm serve --test-keys --test-payments` on a temporary
//! directory and SQLite database, 127.0.0.1:0); `ykt conform` is another, writing its JUnit
//! report, which the test reads back: the counts, each item's verdict, and the exit code the
//! result implies (0 nothing FAILED or INCONCLUSIVE, 6 a FAIL, 7 an INCONCLUSIVE only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::child::{serve_tsm, wait_output};

const YKT: &str = env!("CARGO_BIN_EXE_ykt");
/// One conformance run against the served TSM (about a dozen open cards on a debug build).
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// A temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ykt-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn p(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The served TSM, killed on drop.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The JUnit report as the test reads it: the `testsuites` counts and each item's verdict.
#[derive(Debug)]
struct Junit {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    /// Item ID → `PASS`, `FAIL`, `INCONCLUSIVE` or the skipped label (`N/A`, `NOT_RUN`).
    verdicts: BTreeMap<String, String>,
}

/// The value of attribute `name` in the tag text `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_string())
}

fn count(tag: &str, name: &str) -> usize {
    attr(tag, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no count {name} in {tag}"))
}

fn parse_junit(xml: &str) -> Junit {
    assert!(xml.starts_with("<?xml version=\"1.0\""), "{xml}");
    let head_at = xml.find("<testsuites ").expect("no testsuites element");
    let head = &xml[head_at..head_at + xml[head_at..].find('>').unwrap()];
    let mut verdicts = BTreeMap::new();
    for case in xml.split("<testcase ").skip(1) {
        let case = &case[..case.find("</testcase>").expect("testcase not closed")];
        let name = attr(case, "name").expect("testcase without name");
        let id = name.split(' ').next().unwrap().to_string();
        let verdict = if case.contains("<failure ") {
            assert_eq!(attr(case, "type").as_deref(), Some("FAIL"), "{case}");
            "FAIL".to_string()
        } else if case.contains("<error ") {
            assert_eq!(
                attr(case, "type").as_deref(),
                Some("INCONCLUSIVE"),
                "{case}"
            );
            "INCONCLUSIVE".to_string()
        } else if let Some(at) = case.find("<skipped ") {
            let message = attr(&case[at..], "message").expect("skipped without message");
            message.split(':').next().unwrap().to_string()
        } else {
            "PASS".to_string()
        };
        assert!(verdicts.insert(id.clone(), verdict).is_none(), "{id} twice");
    }
    Junit {
        tests: count(head, "tests"),
        failures: count(head, "failures"),
        errors: count(head, "errors"),
        skipped: count(head, "skipped"),
        verdicts,
    }
}

/// `ykt conform --target TARGET --junit FILE EXTRA…`: the exit code, stdout, and the report.
fn conform(target: &str, junit: &Path, extra: &[&str]) -> (Option<i32>, String, Junit) {
    let child = Command::new(YKT)
        .args(["conform", "--target", target, "--junit"])
        .arg(junit)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(
        child,
        &format!("ykt conform --target {target}"),
        RUN_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let xml = std::fs::read_to_string(junit)
        .unwrap_or_else(|e| panic!("no JUnit report ({e}):\n{stdout}\n{stderr}"));
    assert!(
        stdout.contains(&format!("wrote {}", junit.display())),
        "{stdout}"
    );
    (out.status.code(), stdout, parse_junit(&xml))
}

/// The exit code `ykt conform` documents for a report's counts.
fn expected_exit(report: &Junit) -> i32 {
    if report.failures > 0 {
        6
    } else if report.errors > 0 {
        7
    } else {
        0
    }
}

/// The verdicts of `report`, counted by label.
fn tally(report: &Junit) -> BTreeMap<&str, usize> {
    let mut t = BTreeMap::new();
    for v in report.verdicts.values() {
        *t.entry(v.as_str()).or_insert(0) += 1;
    }
    t
}

#[test]
fn conform_against_a_served_tsm_passes_the_tsm_and_client_items() {
    let s = Scratch::new("conform-tsm");
    let db = format!("sqlite://{}?mode=rwc", s.p("tsm.db"));
    let served = serve_tsm("127.0.0.1:0", &db, &s.p("tsm"), &[]);
    let url = served.url.clone();
    let pin = served.pin.clone();
    let _tsm = Served(served.child);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let conform = |target: &str, junit: &Path, extra: &[&str]| {
        let mut args = vec!["--tsm-pin", pin.as_str()];
        args.extend_from_slice(extra);
        conform(target, junit, &args)
    };

    // The TSM items and the online load items (the TSM is the load host): every auto item
    // PASSes, the semi-automatic load test is NOT_RUN.
    let junit = s.0.join("tsm.xml");
    let (code, stdout, report) = conform(&format!("tsm:{url}"), &junit, &[]);
    assert_eq!(report.tests, report.verdicts.len(), "{report:?}");
    assert_eq!(
        (report.failures, report.errors, report.skipped),
        (0, 0, 1),
        "{report:?}\n{stdout}"
    );
    for (id, verdict) in &report.verdicts {
        let expected = match id.as_str() {
            "TSM-PERF-001" => "NOT_RUN",
            _ => "PASS",
        };
        assert!(id.starts_with("TSM-") || id.starts_with("RP-LOAD-"), "{id}");
        assert_eq!(verdict, expected, "{id}\n{stdout}");
    }
    for id in [
        "TSM-DL-001",
        "TSM-RET-001",
        "TSM-RET-002",
        "TSM-MIG-001",
        "RP-LOAD-001",
        "RP-LOAD-002",
        "RP-LOAD-003",
        "RP-LOAD-004",
        "RP-LOAD-005",
    ] {
        assert!(report.verdicts.contains_key(id), "{id} not in the report");
    }
    assert_eq!(code, Some(expected_exit(&report)), "{stdout}");
    assert_eq!(code, Some(0), "{stdout}");

    // The TSM items alone: nothing FAILs, exit code 0.
    let junit = s.0.join("tsm-only.xml");
    let (code, stdout, report) = conform(&format!("tsm:{url}"), &junit, &["--only", "TSM-"]);
    assert_eq!(
        (report.failures, report.errors),
        (0, 0),
        "{report:?}\n{stdout}"
    );
    assert_eq!(report.verdicts["TSM-RET-001"], "PASS", "{stdout}");
    assert_eq!(code, Some(expected_exit(&report)), "{stdout}");
    assert_eq!(code, Some(0), "{stdout}");

    // The client items against the same TSM: the auto items PASS (RP-QRY-001 and RP-SEC-001
    // among them: the link is TLS 1.3 with the TSM's key pinned, and the probes of a server
    // with another key, a TLS 1.2-only one and plain HTTP are refused), the three that need a
    // phone or an app package are NOT_RUN.
    let junit = s.0.join("client.xml");
    let (code, stdout, report) = conform(&format!("client:{url}"), &junit, &[]);
    let t = tally(&report);
    assert_eq!(report.tests, 12, "{report:?}");
    assert_eq!(t.get("PASS"), Some(&9), "{report:?}\n{stdout}");
    assert_eq!(t.get("NOT_RUN"), Some(&3), "{report:?}\n{stdout}");
    assert_eq!(
        (report.failures, report.errors, report.skipped),
        (0, 0, 3),
        "{report:?}"
    );
    for id in ["CL-SD-002", "CL-IF-001", "CL-IF-002"] {
        assert_eq!(report.verdicts[id], "NOT_RUN", "{id}");
    }
    assert_eq!(report.verdicts["RP-QRY-001"], "PASS", "{stdout}");
    assert_eq!(report.verdicts["RP-SEC-001"], "PASS", "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(
        xml.matches("not checkable against a TSM URL: ").count(),
        3,
        "{xml}"
    );
    assert!(
        stdout.contains("over TLS 1.3 with 1 pinned key(s), and refused before any request byte"),
        "{stdout}"
    );
    assert!(
        report
            .verdicts
            .keys()
            .all(|id| id.starts_with("CL-") || id.starts_with("RP-"))
    );
    assert_eq!(code, Some(expected_exit(&report)), "{stdout}");
    assert_eq!(code, Some(0), "{stdout}");

    // A harness that addresses another TSM id: its device never enrols, so the items that need
    // one are INCONCLUSIVE (none FAILs: the TSM did nothing wrong), and the exit code says so.
    let junit = s.0.join("wrong-id.xml");
    let (code, stdout, report) = conform(
        &format!("tsm:{url}"),
        &junit,
        &[
            "--tsm-id",
            "SPTSM-SOMEONE-ELSE",
            "--only",
            "TSM-MSG-001,TSM-MSG-004",
        ],
    );
    assert_eq!(report.failures, 0, "{report:?}\n{stdout}");
    assert_eq!(report.verdicts["TSM-MSG-001"], "INCONCLUSIVE", "{stdout}");
    assert_eq!(report.verdicts["TSM-MSG-004"], "INCONCLUSIVE", "{stdout}");
    assert_eq!(code, Some(expected_exit(&report)), "{stdout}");
    assert_eq!(code, Some(7), "{stdout}");
}

#[test]
fn a_client_on_plain_http_fails_the_transport_item() {
    let s = Scratch::new("conform-plain");
    let db = format!("sqlite://{}?mode=rwc", s.p("tsm.db"));
    let served = serve_tsm("127.0.0.1:0", &db, &s.p("tsm"), &["--danger-insecure-http"]);
    let url = served.url.clone();
    let _tsm = Served(served.child);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // Without the flag the harness refuses to use the plain URL at all.
    let junit = s.0.join("refused.xml");
    let out = Command::new(YKT)
        .args(["conform", "--target", &format!("client:{url}"), "--junit"])
        .arg(&junit)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--danger-insecure-http"),
        "{out:?}"
    );
    assert!(!junit.exists());
    // With it, the client uses plain HTTP: RP-SEC-001 FAILs, exit code 6.
    let junit = s.0.join("plain.xml");
    let (code, stdout, report) = conform(
        &format!("client:{url}"),
        &junit,
        &["--danger-insecure-http", "--only", "RP-SEC-001"],
    );
    assert_eq!(report.verdicts["RP-SEC-001"], "FAIL", "{stdout}");
    assert!(stdout.contains("in plaintext (http://)"), "{stdout}");
    assert_eq!(code, Some(6), "{stdout}");
}
