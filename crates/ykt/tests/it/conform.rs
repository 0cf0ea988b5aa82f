//! `ykt conform`: the suite against the simulator with its reports, the catalogue listing, and
//! the exit codes.

use std::process::Command;

const YKT: &str = env!("CARGO_BIN_EXE_ykt");

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ykt-conform-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small well-formedness check: tags nest and close, attributes are quoted, no raw `<` or `&`
/// outside markup and entities.
fn well_formed(xml: &str) -> Result<(), String> {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .ok_or("no XML declaration")?;
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find(['<', '&']) {
        let (text, tail) = rest.split_at(at);
        if text.contains('>') {
            return Err(format!("raw > in text {text:?}"));
        }
        if let Some(entity) = tail.strip_prefix('&') {
            let end = entity.find(';').ok_or("unterminated entity")?;
            if !["amp", "lt", "gt", "quot", "#39"].contains(&&entity[..end]) {
                return Err(format!("unknown entity {}", &entity[..end]));
            }
            rest = &entity[end + 1..];
            continue;
        }
        let end = tail.find('>').ok_or("unterminated tag")?;
        let tag = &tail[1..end];
        if tag.matches('"').count() % 2 != 0 || tag.contains('<') {
            return Err(format!("bad tag {tag:?}"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap_or("").to_owned());
        }
        rest = &tail[end + 1..];
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed {stack:?}"))
    }
}

#[test]
fn sim_run_passes_and_writes_junit_and_html() {
    let dir = temp_dir("sim");
    let junit = dir.join("conform.xml");
    let html = dir.join("conform.html");
    let out = Command::new(YKT)
        .args(["conform", "--target", "sim", "--junit"])
        .arg(&junit)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("CONFORMANT on sim"), "{stdout}");
    assert!(stdout.contains("0 FAIL, 0 INCONCLUSIVE"), "{stdout}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    well_formed(&xml).unwrap();
    assert!(xml.contains("<testsuites "), "{xml}");
    assert!(xml.contains("name=\"SE-EP-PUR-003 "), "{xml}");
    // The card manager's content management and the NFC QR applet run on the simulator too.
    for id in [
        "SE-GP-LIFE-001",
        "SE-GP-DM-001",
        "SE-GP-KEY-001",
        "SE-NFCQR-013",
    ] {
        assert!(
            stdout.contains(&format!("PASS         {id}")),
            "{id}: {stdout}"
        );
    }
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "{xml}"
    );
    let cases = xml.matches("<testcase ").count();
    assert!(cases >= 33, "{cases} test cases");
    // The same file through a common parser, where python3 is installed.
    if let Ok(py) = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as E\n\
             r = E.parse(sys.argv[1]).getroot()\n\
             assert r.tag == 'testsuites', r.tag\n\
             print(sum(1 for _ in r.iter('testcase')))",
        )
        .arg(&junit)
        .output()
    {
        assert!(
            py.status.success(),
            "{}",
            String::from_utf8_lossy(&py.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&py.stdout).trim(),
            cases.to_string()
        );
    }

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<style>") && !page.contains("<script") && !page.contains("http"));
    assert!(page.contains("SE-EP-TEAR-001"));
    // The full card number never reaches a report.
    assert!(!page.contains("31041000000012345678") && !xml.contains("31041000000012345678"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn list_only_and_exit_codes() {
    let out = Command::new(YKT)
        .args(["conform", "--list"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for id in [
        "SE-EP-SEL-001",
        "SE-T2-TEAR-001",
        "TE-EP-PUR-001",
        "TE-EP-GREY-001",
    ] {
        assert!(stdout.contains(id), "{id} missing from --list");
    }
    assert!(stdout.contains("profile features"), "{stdout}");
    for text in [
        "QT-STO-001",
        "qr-terminal",
        "gp-content",
        "nfcqr",
        "SE-GP-DM-001",
    ] {
        assert!(stdout.contains(text), "{text} missing from --list");
    }
    let help = Command::new(YKT)
        .args(["conform", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for text in [
        "ep,alg-3des,gp,isd-scp03",
        "gp-content",
        "nfcqr",
        "qr-terminal",
    ] {
        assert!(help.contains(text), "{text} missing from --help: {help}");
    }

    let out = Command::new(YKT)
        .args(["conform", "--target", "terminal", "--only", "TE-EP-LOAD"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("PASS         TE-EP-LOAD-001"), "{stdout}");
    assert!(!stdout.contains("TE-EP-PUR-001"), "{stdout}");
    assert!(
        stdout.contains("items not selected by --only: NOT_RUN"),
        "{stdout}"
    );

    // The QR scanning terminal: the automatic items PASS, the others wait for evidence.
    let out = Command::new(YKT)
        .args(["conform", "--target", "qr-terminal"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for id in [
        "QT-STO-001",
        "QT-COM-001",
        "QT-CLK-002",
        "QT-ALG-001",
        "QT-ALG-002",
        "QT-SEC-001",
    ] {
        assert!(
            stdout.contains(&format!("PASS         {id}")),
            "{id}: {stdout}"
        );
    }
    assert!(stdout.contains("NOT_RUN      QT-RDR-001"), "{stdout}");
    assert!(stdout.contains("CONFORMANT on qr-terminal"), "{stdout}");

    // A sample that declares less makes items N/A, which is not a failure.
    let out = Command::new(YKT)
        .args([
            "conform",
            "--target",
            "sim",
            "--profile",
            "ep",
            "--only",
            "SE-T2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("N/A          SE-T2-SEL-001"));

    for (args, code) in [
        (&["conform", "--target", "card"][..], 1),
        (&["conform", "--profile", "ep,warp-drive"][..], 1),
        (&["conform", "--bogus"][..], 2),
    ] {
        let out = Command::new(YKT).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}

/// `--target pcsc:READER` against `ykt se serve` behind pcscd (the §8 test card). Runs only when
/// `YKT_CONFORM_READER` names the reader, e.g. with pcscd running and
/// `ykt se serve --port 35964` connected: `YKT_CONFORM_READER="Virtual PCD 00 01"`.
#[test]
fn reader_target_runs_the_se_items_relative_to_the_card() {
    let Ok(reader) = std::env::var("YKT_CONFORM_READER") else {
        eprintln!("skipped: set YKT_CONFORM_READER to a reader with `ykt se serve` behind it");
        return;
    };
    let dir = temp_dir("reader");
    let junit = dir.join("conform.xml");
    for pass in 1..=2 {
        let out = Command::new(YKT)
            .args(["conform", "--target"])
            .arg(format!("pcsc:{reader}"))
            .arg("--junit")
            .arg(&junit)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "pass {pass}: {stdout}");
        let xml = std::fs::read_to_string(&junit).unwrap();
        well_formed(&xml).unwrap();
        // Tearing and fixture items cannot run on a reader: N/A, reported as skipped.
        assert!(stdout.contains("N/A          SE-EP-TEAR-001"), "{stdout}");
        assert!(stdout.contains("PASS         SE-EP-PUR-001 "), "{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
