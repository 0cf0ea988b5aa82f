//! The HTML report: one page, inline CSS, no scripts or external assets (conformance.md §6).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape;
use crate::runner::{ItemResult, Run};
use crate::verdict::Verdict;

const CSS: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%;margin:.5em 0}\
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top;font-size:.9em}\
th{background:#f0f0f0}.v{font-weight:bold;white-space:nowrap}\
.PASS{color:#176f2c}.FAIL{color:#b00020}.INCONCLUSIVE{color:#a05a00}.NA,.NOT_RUN{color:#666}\
pre{background:#f7f7f7;border:1px solid #ddd;padding:.5em;overflow-x:auto;font-size:.8em}\
.meta td:first-child{font-weight:bold;width:12em}.items td:first-child{white-space:nowrap}";

fn class(v: Verdict) -> &'static str {
    match v {
        Verdict::NotApplicable => "NA",
        other => other.label(),
    }
}

/// The report page for `run`.
pub fn html(run: &Run) -> String {
    let mut o = String::new();
    let info = &run.info;
    let conclusion = if run.is_success() { "PASS" } else { "FAIL" };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Conformance test report — {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(&info.target)
    );
    let _ = write!(
        o,
        "<h1>Conformance test report — JT/T 1059.8-2025 model</h1>\n<table class=\"meta\">\n"
    );
    let report_id: String = format!("ykt-conform-{}-{}", info.date, info.target)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let areas: Vec<String> = {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for r in &run.results {
            let mut parts = r.item.id.split('-');
            let area = format!(
                "{}-{}",
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("")
            );
            *counts.entry(area).or_insert(0) += 1;
        }
        counts.iter().map(|(a, n)| format!("{a} {n}")).collect()
    };
    for (k, v) in [
        ("Report ID", report_id),
        ("Tool", format!("ykt conform {}", info.version)),
        (
            "Catalogue",
            format!(
                "ykt-conformance {} (conformance.md item scheme): {}",
                info.version,
                areas.join(", ")
            ),
        ),
        ("Target", info.target.clone()),
        ("Declared profile", info.profile.clone()),
        ("Date", info.date.clone()),
        ("Overall conclusion", conclusion.to_owned()),
        (
            "Decision rule",
            "PASS when no item is FAIL or INCONCLUSIVE; N/A and NOT_RUN items are listed as exclusions".to_owned(),
        ),
    ] {
        let _ = writeln!(o, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(&v));
    }
    o.push_str("</table>\n<h2>Summary</h2>\n<table>\n<tr>");
    for v in Verdict::ALL {
        let _ = write!(o, "<th>{}</th>", escape(v.label()));
    }
    o.push_str("<th>Total</th></tr>\n<tr>");
    for v in Verdict::ALL {
        let _ = write!(o, "<td class=\"v {}\">{}</td>", class(v), run.count(v));
    }
    let _ = writeln!(o, "<td>{}</td></tr>\n</table>", run.results.len());

    let mut by_category: BTreeMap<(String, String), Vec<&ItemResult>> = BTreeMap::new();
    let mut order = Vec::new();
    for r in &run.results {
        let key = (
            r.item.category.get(1).cloned().unwrap_or_default(),
            r.item.leaf_category().to_owned(),
        );
        if !by_category.contains_key(&key) {
            order.push(key.clone());
        }
        by_category.entry(key).or_default().push(r);
    }
    for key in order {
        let items = &by_category[&key];
        let _ = writeln!(
            o,
            "<h2>{} — {}</h2>\n<table class=\"items\">\n<tr><th>ID</th><th>Title</th><th>Reference</th><th>Requirement</th><th>Method, severity</th><th>Verdict</th><th>Reason</th></tr>",
            escape(&key.0),
            escape(&key.1)
        );
        for r in items {
            let id = escape(&r.item.id);
            let prov = if r.item.provisional {
                " (provisional, L)"
            } else {
                ""
            };
            let link = if r.outcome.verdict.is_bad() && !r.transcript.is_empty() {
                format!(" <a href=\"#trace-{id}\">trace</a>")
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "<tr><td>{id}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"v {}\">{}</td><td>{}{link}</td></tr>",
                escape(&r.item.title),
                escape(prov),
                escape(&r.item.reference()),
                escape(&r.item.requirement),
                escape(&format!("{:?}, {:?}", r.item.method, r.item.severity).to_lowercase()),
                class(r.outcome.verdict),
                escape(r.outcome.verdict.label()),
                escape(&r.outcome.reason),
            );
        }
        o.push_str("</table>\n");
    }

    let bad: Vec<&ItemResult> = run
        .results
        .iter()
        .filter(|r| r.outcome.verdict.is_bad())
        .collect();
    if !bad.is_empty() {
        o.push_str("<h2>APDU traces of failed and inconclusive items</h2>\n");
        for r in bad {
            let id = escape(&r.item.id);
            let _ = writeln!(
                o,
                "<h3 id=\"trace-{id}\">{id} — {}</h3>\n<p class=\"v {}\">{}: {}</p>\n<pre>{}</pre>",
                escape(&r.item.title),
                class(r.outcome.verdict),
                escape(r.outcome.verdict.label()),
                escape(&r.outcome.reason),
                escape(&r.transcript.to_string())
            );
        }
    }
    let excluded: Vec<&ItemResult> = run
        .results
        .iter()
        .filter(|r| matches!(r.outcome.verdict, Verdict::NotApplicable | Verdict::NotRun))
        .collect();
    let provisional: Vec<&ItemResult> = run.results.iter().filter(|r| r.item.provisional).collect();
    if !excluded.is_empty() || !provisional.is_empty() {
        o.push_str("<h2>Deviations and exclusions</h2>\n<ul>\n");
        for r in provisional {
            let _ = writeln!(
                o,
                "<li>{} {}: provisional, rests on a fact the briefs mark L</li>",
                escape(&r.item.id),
                escape(r.outcome.verdict.label())
            );
        }
        for r in excluded {
            let _ = writeln!(
                o,
                "<li>{} {}: {}</li>",
                escape(&r.item.id),
                escape(r.outcome.verdict.label()),
                escape(&r.outcome.reason)
            );
        }
        o.push_str("</ul>\n");
    }
    o.push_str(
        "<p>Results relate only to the sample tested. Items marked provisional rest on facts the briefs mark L. End of report.</p>\n</body>\n</html>\n",
    );
    o
}
