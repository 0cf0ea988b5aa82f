//! Every committed input (the seeds under `fuzz/seeds/<target>/` and the minimised crash
//! inputs under `fuzz/regressions/<target>/`) through its target's body: the fuzz corpora as
//! plain tests, on a stable toolchain.

use std::fs;
use std::path::PathBuf;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 8] = [
    ("qr_code_decode", ykt_fuzz_harness::qr_code_decode::run),
    ("qr_verify", ykt_fuzz_harness::qr_verify::run),
    ("qr_record_store", ykt_fuzz_harness::qr_record_store::run),
    ("card_apdu_isd", ykt_fuzz_harness::card_apdu_isd::run),
    (
        "card_apdu_session",
        ykt_fuzz_harness::card_apdu_session::run,
    ),
    ("purse_store_data", ykt_fuzz_harness::purse_store_data::run),
    ("nfcqr_apdu", ykt_fuzz_harness::nfcqr_apdu::run),
    ("gp_host_parsers", ykt_fuzz_harness::gp_host_parsers::run),
];

fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(kind)
        .join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .map(|p| {
            let bytes = fs::read(&p).expect("input");
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn seeds() {
    for (name, run) in TARGETS {
        let seeds = inputs("seeds", name);
        assert!(!seeds.is_empty(), "no seeds for {name}");
        for (path, bytes) in seeds {
            eprintln!("{}", path.display());
            run(&bytes);
        }
    }
}

/// Minimised inputs of crashes found by fuzzing. A fixed bug's input passes; one not fixed
/// yet is listed in `fuzz/regressions/README.md` and expected to fail here until it is.
#[test]
fn regressions() {
    let open = fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../regressions/README.md"),
    )
    .unwrap_or_default();
    for (name, run) in TARGETS {
        for (path, bytes) in inputs("regressions", name) {
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default();
            let unfixed = open.lines().any(|l| l.contains(file) && l.contains("open"));
            let result = std::panic::catch_unwind(|| run(&bytes));
            if unfixed {
                assert!(
                    result.is_err(),
                    "{} passes now: mark it fixed",
                    path.display()
                );
            } else {
                assert!(result.is_ok(), "{} fails again", path.display());
            }
        }
    }
}
