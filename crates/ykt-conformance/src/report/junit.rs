//! JUnit XML: `testsuites` / one `testsuite` per object class and area / `testcase` per item,
//! with `failure` for FAIL, `error` for INCONCLUSIVE and `skipped` for N/A and NOT_RUN.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape;
use crate::runner::{ItemResult, Run};
use crate::verdict::Verdict;

/// The JUnit XML of `run`.
pub fn junit(run: &Run) -> String {
    let mut suites: BTreeMap<String, Vec<&ItemResult>> = BTreeMap::new();
    for r in &run.results {
        let mut parts = r.item.id.split('-');
        let name = format!(
            "{}-{}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        );
        suites.entry(name).or_default().push(r);
    }
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = run.count(Verdict::Fail);
    let errors = run.count(Verdict::Inconclusive);
    let skipped = run.count(Verdict::NotApplicable) + run.count(Verdict::NotRun);
    let _ = writeln!(
        o,
        "<testsuites name=\"ykt conform {}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\">",
        escape(&run.info.target),
        run.results.len()
    );
    for (name, items) in suites {
        let count = |v: Verdict| items.iter().filter(|r| r.outcome.verdict == v).count();
        let _ = writeln!(
            o,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" timestamp=\"{}\">",
            escape(&name),
            items.len(),
            count(Verdict::Fail),
            count(Verdict::Inconclusive),
            count(Verdict::NotApplicable) + count(Verdict::NotRun),
            escape(&run.info.date)
        );
        let _ = writeln!(
            o,
            "    <properties><property name=\"target\" value=\"{}\"/><property name=\"profile\" value=\"{}\"/></properties>",
            escape(&run.info.target),
            escape(&run.info.profile)
        );
        for r in items {
            let _ = write!(
                o,
                "    <testcase classname=\"{}\" name=\"{} {}\">",
                escape(&name),
                escape(&r.item.id),
                escape(&r.item.title)
            );
            let reason = escape(&r.outcome.reason);
            match r.outcome.verdict {
                Verdict::Pass => {}
                Verdict::Fail => {
                    let _ = write!(
                        o,
                        "\n      <failure message=\"{reason}\" type=\"FAIL\">{}</failure>\n    ",
                        escape(&r.transcript.to_string())
                    );
                }
                Verdict::Inconclusive => {
                    let _ = write!(
                        o,
                        "\n      <error message=\"{reason}\" type=\"INCONCLUSIVE\">{}</error>\n    ",
                        escape(&r.transcript.to_string())
                    );
                }
                Verdict::NotApplicable | Verdict::NotRun => {
                    let _ = write!(
                        o,
                        "\n      <skipped message=\"{}: {reason}\"/>\n    ",
                        r.outcome.verdict.label()
                    );
                }
            }
            o.push_str("</testcase>\n");
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}
