//! `ykt tsm serve --operators FILE`: the registry API on the served TSM for the operators the
//! file names (and refused when the file is unsafe or malformed), and the KMS's key use in the
//! store's audit chain (`ykt_tsm_service::kms_audit`), read back after a SIGTERM.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use ykt_store::{AuditKind, ChainStatus, Store};
use ykt_tsm_service::http::ClientError;
use ykt_tsm_service::http::admin_write::IssuerDto;

use crate::child::{Scratch, serve_tsm, wait_output, ykt};

const TOKEN: &str = "operator-token-0123456789abcdef";

fn operators_file(dir: &std::path::Path, text: &str, mode: u32) -> String {
    let path = dir.join("operators");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

/// `ykt tsm serve` with `extra` that must refuse to start: its stderr.
fn refused(db: &str, dir: &str, extra: &[&str]) -> String {
    let child = ykt(&["tsm", "serve", "--test-keys", "--listen", "127.0.0.1:0"])
        .args(["--db", db, "--dir", dir])
        .args(extra)
        .spawn()
        .unwrap();
    let out = wait_output(child, "a refused ykt tsm serve", Duration::from_secs(60));
    assert!(!out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn issuer() -> IssuerDto {
    IssuerDto {
        issuer_id: "sz".into(),
        name: "Shenzhen Tong".into(),
        ef15_issuer: "01011000FFFFFFFF".into(),
        city_code: "5180".into(),
        purse_key: "purse-issuer".into(),
        key_version: 1,
    }
}

#[test]
fn operators_file_serves_the_registry_and_key_use_is_audited() {
    let s = Scratch::new("tsm", "registry");
    let tmp = s.root();
    let dir = s.p("tsm");
    let db = s.sqlite("tsm.db");

    // Unsafe or malformed operator files: the server does not start, and says why.
    let loose = operators_file(tmp, &format!("alice {TOKEN}\n"), 0o644);
    let err = refused(&db, &dir, &["--operators", &loose]);
    assert!(err.contains("chmod 600"), "{err}");
    let twice = operators_file(tmp, &format!("alice {TOKEN}\nalice {TOKEN}x\n"), 0o600);
    let err = refused(&db, &dir, &["--operators", &twice]);
    assert!(err.contains("given twice"), "{err}");
    let empty = operators_file(tmp, "# nobody yet\n", 0o600);
    let err = refused(&db, &dir, &["--operators", &empty]);
    assert!(err.contains("no operators"), "{err}");
    let err = refused(
        &db,
        &dir,
        &["--role", "sei", "--peer-key", "00", "--operators", &empty],
    );
    assert!(err.contains("no registry"), "{err}");

    let good = operators_file(
        tmp,
        &format!("# the registry's operators\nalice {TOKEN}\n"),
        0o600,
    );
    let served = serve_tsm("127.0.0.1:0", &db, &dir, &["--operators", &good]);
    let client = served.client();
    let (made, refusal) = std::thread::spawn(move || {
        let made = client.create_issuer(TOKEN, &issuer()).unwrap();
        let refusal = client.create_issuer("not-an-operator-0123456789", &issuer());
        (made, refusal)
    })
    .join()
    .unwrap();
    assert_eq!(made.issuer_id, "sz");
    match refusal {
        Err(ClientError::Registry { status, .. }) => assert_eq!(status, 401),
        other => panic!("a stranger's write was not refused: {other:?}"),
    }
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut child = served.child;
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");

    // The audit chain holds the operator's write under its label and the KMS's key use (the
    // test keys are imported into the key files at every start), and verifies.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::connect(&db).await.unwrap();
        let rows = store.audit_records(1, 10_000).await.unwrap();
        let operator = rows
            .iter()
            .filter(|r| r.event.kind == AuditKind::OperatorAction && r.event.actor == "alice")
            .count();
        assert_eq!(operator, 1, "{rows:#?}");
        let key_use: Vec<_> = rows
            .iter()
            .filter(|r| r.event.kind == AuditKind::KeyUse && r.event.actor.starts_with("kms:"))
            .collect();
        assert!(!key_use.is_empty(), "no KMS key use audited: {rows:#?}");
        for row in &key_use {
            assert!(
                !row.event.detail.contains("4040404040404040"),
                "key material in an audit row: {row:?}"
            );
        }
        assert!(
            matches!(
                store.verify_chain().await.unwrap(),
                ChainStatus::Intact { .. }
            ),
            "the audit chain does not verify"
        );
    });
}
