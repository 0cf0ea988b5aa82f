//! `ykt terminal` on simulated cards: load, purchase, metro entry/exit, bus ride, records, the
//! journal export, a power cut mid-debit recovered at the next tap, the blacklist, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const YKT: &str = env!("CARGO_BIN_EXE_ykt");

struct Terminal {
    dir: PathBuf,
}

impl Terminal {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ykt-terminal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn card(&self) -> PathBuf {
        self.dir.join("card.ykt")
    }

    fn run(&self, at: &str, args: &[&str]) -> Output {
        Command::new(YKT)
            .arg("terminal")
            .arg("--dir")
            .arg(self.dir.join("term"))
            .arg("--card")
            .arg(self.card())
            .args(["--at", at])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, at: &str, args: &[&str]) -> String {
        let out = self.run(at, args);
        assert!(
            out.status.success(),
            "{args:?}: {:?}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn balance(&self) -> String {
        self.ok("20261201120000", &["balance"])
    }
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn journal(dir: &Path, format: &str) -> String {
    let out = Command::new(YKT)
        .args(["terminal", "--dir"])
        .arg(dir.join("term"))
        .args(["journal", "--format", format])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_day_of_rides_on_one_card() {
    let t = Terminal::new("day");
    assert!(t.balance().contains("¥0.00"), "{}", t.balance());
    let out = t.ok("20261201080000", &["load", "--amount", "50"]);
    assert!(out.contains("¥0.00 → ¥50.00"), "{out}");
    let out = t.ok("20261201081000", &["purchase", "--amount", "2.50"]);
    assert!(out.contains("¥50.00 → ¥47.50"), "{out}");
    // Metro: line 1 station 1 → station 5 is 11 km: the 12 km band, 4.00 (built-in fares).
    let out = t.ok(
        "20261201090000",
        &["entry", "--line", "1", "--station", "1"],
    );
    assert!(
        out.contains("type 09") && out.contains("¥47.50 → ¥47.50"),
        "{out}"
    );
    let out = t.ok("20261201092000", &["exit", "--line", "1", "--station", "5"]);
    assert!(
        out.contains("fare ¥4.00") && out.contains("¥47.50 → ¥43.50"),
        "{out}"
    );
    // Bus 901 ten minutes later: a transfer, 1.00 off the flat 2.00.
    let out = t.ok("20261201093000", &["ride", "--line", "901"]);
    assert!(out.contains("transfer discount ¥1.00"), "{out}");
    assert!(out.contains("¥43.50 → ¥42.50"), "{out}");
    assert!(t.balance().contains("¥42.50"));

    let records = t.ok("20261201120000", &["records"]);
    let lines: Vec<&str> = records.lines().collect();
    // Newest first: the ride (09), exit (09), entry (09), purchase (06), load (02).
    for (i, ty) in ["09", "09", "09", "06", "02"].iter().enumerate() {
        let line = lines[2 + i];
        assert!(line.split_whitespace().nth(2) == Some(*ty), "{records}");
    }
    assert!(records.contains("last trip closed"), "{records}");

    // Five completed records, each with its TAC, the load first.
    let csv = journal(&t.dir, "csv");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(
        rows[0].contains(",load,") && rows[0].ends_with(",0"),
        "{csv}"
    );
    let jsonl = journal(&t.dir, "jsonl");
    assert_eq!(jsonl.lines().count(), 5);
    assert!(
        jsonl
            .lines()
            .all(|l| l.starts_with('{') && l.contains("\"tac\":"))
    );
}

#[test]
fn a_power_cut_mid_debit_is_recovered_at_the_next_tap_and_never_charged_twice() {
    let t = Terminal::new("torn");
    t.ok("20261201080000", &["load", "--amount", "50"]);
    let mut grey = 0;
    // Cut at each of the first 20 writes of a 1.00 debit, then tap again.
    for cut in 1..=20u32 {
        let before = t.balance();
        let cut_text = cut.to_string();
        let out = t.run(
            "20261201090000",
            &[
                "purchase",
                "--amount",
                "1",
                "--danger-cut-power-at",
                &cut_text,
            ],
        );
        let after_cut = t.balance();
        match code(&out) {
            Some(0) => {
                // The debit needed fewer writes than `cut`: it completed.
                assert_ne!(before, after_cut);
                continue;
            }
            Some(8) => grey += 1,
            other => panic!(
                "cut {cut}: exit {other:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
        let out = t.ok("20261201090100", &["purchase", "--amount", "1"]);
        let after_retap = t.balance();
        if before == after_cut {
            // Not charged: the re-tap runs the purchase.
            assert!(out.contains("not charged"), "{out}");
            assert_ne!(after_retap, after_cut, "cut {cut}: {out}");
        } else {
            // Charged: the re-tap charges nothing more.
            assert!(out.contains("nothing more charged"), "{out}");
            assert_eq!(after_retap, after_cut, "cut {cut}: {out}");
        }
    }
    assert!(grey >= 10, "only {grey} cuts left a grey entry");
    // Every fen is accounted for: the card's balance is the load minus the journal's purchases.
    let csv = journal(&t.dir, "csv");
    let paid: u32 = csv
        .lines()
        .skip(1)
        .filter(|l| l.contains(",purchase,"))
        .map(|l| l.split(',').nth(8).unwrap().parse::<u32>().unwrap())
        .sum();
    let balance = t.balance();
    let expected = format!("¥{}.{:02}", (5000 - paid) / 100, (5000 - paid) % 100);
    assert!(
        balance.contains(&expected),
        "{balance} vs {expected}; {csv}"
    );
}

#[test]
fn a_blacklisted_card_is_blocked_and_refused() {
    let t = Terminal::new("black");
    t.ok("20261201080000", &["load", "--amount", "5"]);
    std::fs::create_dir_all(t.dir.join("term")).unwrap();
    std::fs::write(
        t.dir.join("term/blacklist.txt"),
        "ykt-list card-blacklist 1\nversion 7\n31041000000012345678\n",
    )
    .unwrap();
    let out = t.run("20261201090000", &["purchase", "--amount", "1"]);
    assert_eq!(
        code(&out),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("blacklist (version 7)") && stderr.contains("now blocked"),
        "{stderr}"
    );
    // Blocked: even with the blacklist gone, SELECT refuses the application.
    std::fs::remove_file(t.dir.join("term/blacklist.txt")).unwrap();
    let out = t.run("20261201090100", &["balance"]);
    assert_eq!(
        code(&out),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("6A81"));
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_changes_nothing() {
    let t = Terminal::new("bad");
    t.ok("20261201080000", &["load", "--amount", "5"]);
    for (args, at, needle) in [
        (
            vec!["purchase", "--amount", "1.234"],
            "20261201090000",
            "two decimals",
        ),
        (
            vec!["purchase", "--amount=-1"],
            "20261201090000",
            "not an amount",
        ),
        (vec!["purchase", "--amount", "1"], "2026120109", "14 digits"),
        (
            vec!["purchase", "--amount", "1"],
            "20261301090000",
            "20261301090000",
        ),
        (
            vec!["exit", "--line", "1", "--station", "3"],
            "20261201090000",
            "no entry",
        ),
        (vec!["purchase", "--amount", "6"], "20261201090000", "9401"),
    ] {
        let out = t.run(at, &args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    assert!(t.balance().contains("¥5.00"));
    // A corrupt fare table is an error naming the file and line.
    std::fs::write(t.dir.join("term/fares.txt"), "ykt-fares 1\nband x 300\n").unwrap();
    let out = t.run(
        "20261201090000",
        &["entry", "--line", "1", "--station", "1"],
    );
    assert_eq!(code(&out), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fares.txt") && stderr.contains("line 2"),
        "{stderr}"
    );
    // A corrupt journal is refused, never reset.
    std::fs::remove_file(t.dir.join("term/fares.txt")).unwrap();
    let journal = t.dir.join("term/journal.ykj");
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[0] ^= 0xFF;
    std::fs::write(&journal, &bytes).unwrap();
    let out = t.run("20261201090000", &["purchase", "--amount", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("journal"));
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        bytes,
        "the journal was touched"
    );
    assert!(t.balance().contains("¥5.00"));
}
