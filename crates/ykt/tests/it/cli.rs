//! The command line: state file handling and exit codes. No pcscd is needed: `se serve` is pointed
//! at a port nobody listens on, where it waits (retrying) until stopped.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const YKT: &str = env!("CARGO_BIN_EXE_ykt");

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ykt-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A local port with nothing listening (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(state: &Path) -> Child {
    Command::new(YKT)
        .args([
            "se",
            "serve",
            "--port",
            &closed_port().to_string(),
            "--state",
        ])
        .arg(state)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_with_timeout(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("ykt did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn terminate(child: Child) -> Output {
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_with_timeout(child)
}

#[test]
fn corrupt_state_file_is_refused_with_exit_code_3_and_left_alone() {
    let dir = temp_dir("corrupt");
    for (name, bytes) in [
        ("foreign", b"\x89PNG\r\n\x1a\n not a card".to_vec()),
        ("empty", Vec::new()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let output = wait_with_timeout(serve(&path));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{name}: {stderr}");
        assert!(stderr.contains("unusable"), "{name}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name}: {stderr}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{name}: file must not change"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn state_file_is_created_saved_on_sigterm_and_loaded_again() {
    let dir = temp_dir("roundtrip");
    let path = dir.join("card.state");
    let output = terminate(serve(&path));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("created the e-purse.md §8 test card"),
        "{stderr}"
    );
    let saved = std::fs::read(&path).unwrap();
    assert!(saved.starts_with(b"YKTCARD"), "state file magic");

    // A second start loads the saved card.
    let output = terminate(serve(&path));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("loaded the card"), "{stderr}");
    // Flip one byte in the middle: the checksum catches it.
    let mut damaged = std::fs::read(&path).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    std::fs::write(&path, &damaged).unwrap();
    let output = wait_with_timeout(serve(&path));
    assert_eq!(output.status.code(), Some(3));
    // No temporary files are left next to the state file.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("card.state")]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_are_usage_errors() {
    let output = Command::new(YKT)
        .args(["se", "serve", "--port", "x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = Command::new(YKT)
        .args(["se", "apdu", "--reader", "r", "zz"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = Command::new(YKT).arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn demo_runs_end_to_end_and_keeps_its_state_file_when_asked() {
    let dir = temp_dir("demo");
    let state = dir.join("card.ykt");
    let out = Command::new(YKT)
        .arg("demo")
        .arg("--state")
        .arg(&state)
        .arg("--dir")
        .arg(dir.join("run"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "TACs verified",
        "no fen created or lost",
        "had debited it (the re-tap recovered the proof",
        "left the card as before",
        "card B blocked: SELECT now answers 6A81",
        "0 FAIL, 0 INCONCLUSIVE",
        "transfer −¥1.00",
    ] {
        assert!(
            stdout.contains(expected),
            "demo output lacks {expected:?}:\n{stdout}"
        );
    }
    // The kept state file is a card that `se serve --state` accepts (the same loader).
    let bytes = std::fs::read(&state).unwrap();
    assert!(bytes.starts_with(b"YKTCARD\0"));
    // The reports and the settlement upload are where the summary says.
    for file in [
        "conformance-sim.html",
        "conformance-sim.xml",
        "conformance-terminal.xml",
        "upload.jsonl",
    ] {
        let path = dir.join("run").join(file);
        assert!(path.exists(), "{} is missing", path.display());
        assert!(stdout.contains("conformance-sim.html"));
    }
    let upload = std::fs::read_to_string(dir.join("run/upload.jsonl")).unwrap();
    assert!(upload.lines().count() >= 20, "{upload}");
    // Running again in the same directory starts afresh.
    let again = Command::new(YKT)
        .args(["demo", "--dir"])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // The full card number never reaches the output.
    assert!(!stdout.contains("31041000000012345678"));
}
