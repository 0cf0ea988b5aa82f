//! The reports: escaping, structure, failures with their APDU trace, JUnit parseable.

use std::process::Command;

use ykt_conformance::report::{escape, html, junit};
use ykt_conformance::runner::ItemResult;
use ykt_conformance::{Catalogue, Outcome, Run, RunInfo, Transcript, Verdict};

/// A run with one item of each verdict, reasons and transcripts full of markup.
fn synthetic() -> Run {
    let c = Catalogue::builtin().unwrap();
    let mut t = Transcript::new();
    t.command(&[0x80, 0x5C, 0x00, 0x02, 0x04]);
    t.response(&[0x00, 0x00, 0x27, 0x10, 0x90, 0x00]);
    t.command(&[0x00, 0x20, 0x00, 0x00, 0x03, 0x12, 0x34, 0x56]);
    t.event("<script>alert('x')</script> & \"quotes\" \u{1}");
    let verdicts = [
        (Verdict::Pass, "ok <b>"),
        (Verdict::Fail, "balance 1 > 0 & \"so\" <wrong>"),
        (Verdict::Inconclusive, "transport: reader gone"),
        (Verdict::NotApplicable, "the declared profile lacks t2"),
        (Verdict::NotRun, "not selected by --only X"),
    ];
    let results = c
        .items()
        .iter()
        .zip(verdicts)
        .map(|(item, (verdict, reason))| ItemResult {
            item: item.clone(),
            outcome: Outcome::new(verdict, reason),
            transcript: t.clone(),
        })
        .collect();
    Run {
        info: RunInfo {
            target: "pcsc:Reader <1> & co".into(),
            profile: "ep,alg-3des".into(),
            date: "2026-12-01T21:00:00Z".into(),
            version: "0.1.0".into(),
        },
        results,
    }
}

#[test]
fn escape_covers_markup_and_controls() {
    assert_eq!(
        escape("<a href=\"x\">&'\u{0}\n"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;?\n"
    );
}

#[test]
fn html_is_one_self_contained_escaped_page_with_failure_traces() {
    let page = html(&synthetic());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<style>"));
    for forbidden in [
        "<script", "http://", "https://", "<link", "<img", "<b>", "<wrong>",
    ] {
        assert!(!page.contains(forbidden), "{forbidden} in the page");
    }
    for expected in [
        "pcsc:Reader &lt;1&gt; &amp; co",
        "2026-12-01T21:00:00Z",
        "ykt conform 0.1.0",
        "ep,alg-3des",
        "Overall conclusion</td><td>FAIL",
        "&lt;script&gt;",
        "&gt;&gt; 805C000204",
        "&lt;&lt; 00002710 9000",
        "APDU traces of failed and inconclusive items",
        "id=\"trace-SE-EP-SEL-002\"",
        "id=\"trace-SE-EP-FIL-001\"",
        "Deviations and exclusions",
    ] {
        assert!(page.contains(expected), "{expected} missing");
    }
    // Only FAIL and INCONCLUSIVE items carry a trace.
    assert!(!page.contains("id=\"trace-SE-EP-SEL-001\""));
    assert!(!page.contains("id=\"trace-SE-EP-BAL-001\""));
    // PIN data never shows.
    assert!(page.contains("0020000003 [3 data bytes redacted]"));
    assert!(!page.contains("123456"));
}

#[test]
fn junit_has_failure_error_and_skipped_and_parses() {
    let xml = junit(&synthetic());
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    assert_eq!(xml.matches("<testcase ").count(), 5);
    assert_eq!(xml.matches("<failure ").count(), 1);
    assert_eq!(xml.matches("<error ").count(), 1);
    assert_eq!(xml.matches("<skipped ").count(), 2);
    assert!(xml.contains("failures=\"1\" errors=\"1\" skipped=\"2\""));
    assert!(!xml.contains("<script") && !xml.contains('\u{1}'));
    let path =
        std::env::temp_dir().join(format!("ykt-conformance-junit-{}.xml", std::process::id()));
    std::fs::write(&path, &xml).unwrap();
    // Parsed by Python's ElementTree, where python3 is installed.
    if let Ok(out) = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as E\n\
             r = E.parse(sys.argv[1]).getroot()\n\
             cases = list(r.iter('testcase'))\n\
             print(len(cases), sum(1 for c in cases if c.find('failure') is not None), \
             sum(1 for c in cases if c.find('skipped') is not None))",
        )
        .arg(&path)
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5 1 2");
    }
    let _ = std::fs::remove_file(&path);
}

/// Transcripts never show a full card number: the harness masks the ASN it reads in the FCI.
#[test]
fn transcripts_mask_the_card_number() {
    use ykt_conformance::SimCard;
    use ykt_conformance::se::SeHarness;
    let mut card = SimCard(ykt_purse::testing::danger_test_card_3des().unwrap());
    let mut h = SeHarness::new(&mut card);
    h.select().unwrap();
    h.ok(&ykt_conformance::se::read_binary(0x15), "READ BINARY")
        .unwrap();
    let text = h.transcript().to_string();
    assert!(!text.contains("31041000000012345678"), "{text}");
    assert!(text.contains("3104************5678"), "{text}");
}
