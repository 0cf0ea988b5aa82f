//! Tidy checks: the rules of ARCHITECTURE.md that the compiler does not enforce by itself.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Sans-IO cores: no I/O crates, `#![no_std]`.
const CORES: &[&str] = &[
    "ykt-apdu",
    "ykt-crypto",
    "ykt-card",
    "ykt-scp",
    "ykt-gp",
    "ykt-purse",
    "ykt-terminal",
    "ykt-qr",
    "ykt-nfcqr",
    "ykt-gp-host",
    "ykt-tsm",
];

/// Crates that do no I/O but use `std` (so are not `#![no_std]`): the conformance harness parses
/// its TOML catalogue and builds its reports as strings; the binary reaches cards and files for it.
/// The QR symbol crate renders and scans images in memory (bytes in, bytes out).
/// The envelope crate canonicalises and signs JSON values (serde_json with std); the wallet SDK
/// is sans-IO by its brief (client.md §3) but uses std's collections and errors.
const SANS_IO_STD: &[&str] = &[
    "ykt-conformance",
    "ykt-qr-symbol",
    "ykt-envelope",
    "ykt-wallet",
];

/// Crates that must never appear in a core's normal dependencies.
const FORBIDDEN_IN_CORES: &[&str] = &[
    "tokio",
    "axum",
    "sqlx",
    "pcsc",
    "clap",
    "tracing-subscriber",
    "anyhow",
    "libc",
    "socket2",
    "getrandom",
    "signal-hook",
    "ykt-transport",
    "ykt-store",
    "ykt-kms",
    "ykt-qr-service",
    "ykt-tsm-service",
    "ykt-tsm-kms",
    "ykt-wallet-api",
    "ureq",
];

/// Files of cores allowed to use `std::fs`, and why.
const IO_EXEMPT: &[(&str, &str)] = &[(
    "ykt-card/src/testing.rs",
    "the hidden test helper reads transcript files, only under the `std` feature that dev-dependencies enable",
)];

/// Allowed edges between our crates (normal dependencies), per ARCHITECTURE.md.
const ALLOWED_EDGES: &[(&str, &[&str])] = &[
    ("ykt-apdu", &[]),
    ("ykt-crypto", &[]),
    ("ykt-card", &["ykt-apdu"]),
    ("ykt-scp", &["ykt-apdu", "ykt-crypto"]),
    ("ykt-gp", &["ykt-apdu", "ykt-crypto", "ykt-card", "ykt-scp"]),
    ("ykt-purse", &["ykt-apdu", "ykt-card", "ykt-crypto"]),
    ("ykt-terminal", &["ykt-apdu", "ykt-crypto"]),
    ("ykt-qr", &["ykt-crypto"]),
    (
        "ykt-nfcqr",
        &["ykt-apdu", "ykt-card", "ykt-crypto", "ykt-qr"],
    ),
    ("ykt-gp-host", &["ykt-apdu", "ykt-crypto", "ykt-scp"]),
    ("ykt-kms", &["ykt-crypto", "ykt-scp", "ykt-gp-host"]),
    ("ykt-store", &["ykt-crypto"]),
    ("ykt-qr-service", &["ykt-crypto", "ykt-qr", "ykt-envelope"]),
    ("ykt-envelope", &["ykt-crypto"]),
    (
        "ykt-tsm-kms",
        &["ykt-tsm", "ykt-kms", "ykt-crypto", "ykt-scp"],
    ),
    (
        "ykt-tsm-service",
        &[
            "ykt-tsm",
            "ykt-store",
            "ykt-envelope",
            "ykt-crypto",
            "ykt-kms",
        ],
    ),
    (
        "ykt-wallet",
        &["ykt-tsm", "ykt-envelope", "ykt-crypto", "ykt-purse"],
    ),
    ("ykt-wallet-api", &[]),
    (
        "ykt-tsm",
        &[
            "ykt-apdu",
            "ykt-crypto",
            "ykt-card",
            "ykt-scp",
            "ykt-gp",
            "ykt-gp-host",
            "ykt-purse",
        ],
    ),
    ("ykt-qr-symbol", &[]),
    ("ykt-transport", &["ykt-apdu", "ykt-card", "ykt-terminal"]),
    (
        "ykt-conformance",
        &[
            "ykt-apdu",
            "ykt-crypto",
            "ykt-card",
            "ykt-purse",
            "ykt-scp",
            "ykt-gp",
            "ykt-terminal",
            "ykt-nfcqr",
            "ykt-qr",
            "ykt-tsm",
            "ykt-envelope",
            "ykt-wallet",
            "ykt-gp-host",
        ],
    ),
    (
        "ykt",
        &[
            "ykt-apdu",
            "ykt-crypto",
            "ykt-card",
            "ykt-purse",
            "ykt-scp",
            "ykt-gp",
            "ykt-gp-host",
            "ykt-nfcqr",
            "ykt-qr",
            "ykt-qr-symbol",
            "ykt-qr-service",
            "ykt-terminal",
            "ykt-transport",
            "ykt-conformance",
            "ykt-tsm",
            "ykt-envelope",
            "ykt-store",
            "ykt-tsm-service",
            "ykt-tsm-kms",
            "ykt-wallet",
            "ykt-wallet-api",
            "ykt-kms",
        ],
    ),
];

fn crates() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(workspace_root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The names listed in the `[dependencies]` table of a crate's manifest (not dev or build).
fn normal_dependencies(krate: &str) -> Vec<String> {
    let manifest = fs::read_to_string(
        workspace_root()
            .join("crates")
            .join(krate)
            .join("Cargo.toml"),
    )
    .unwrap();
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps
            && !line.is_empty()
            && !line.starts_with('#')
            && let Some((name, _)) = line.split_once('=')
        {
            deps.push(name.trim().trim_end_matches(".workspace").to_string());
        }
    }
    deps
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                out.extend(rust_files(&path));
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn every_crate_is_known_and_documented() {
    let root = workspace_root();
    let architecture = fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    for krate in crates() {
        assert!(
            ALLOWED_EDGES.iter().any(|(name, _)| *name == krate),
            "crate {krate} has no entry in the allowed-edges table of this test"
        );
        assert!(
            architecture.contains(&format!("`{krate}`")),
            "ARCHITECTURE.md does not map {krate}"
        );
        let src = root.join("crates").join(&krate).join("src");
        let top = if src.join("lib.rs").exists() {
            src.join("lib.rs")
        } else {
            src.join("main.rs")
        };
        let text = fs::read_to_string(&top).unwrap();
        assert!(
            text.trim_start().starts_with("//!"),
            "{} lacks a `//!` crate doc",
            top.display()
        );
    }
}

#[test]
fn dependency_edges_point_only_downward() {
    for krate in crates() {
        let allowed = ALLOWED_EDGES
            .iter()
            .find(|(name, _)| *name == krate)
            .map(|(_, a)| *a)
            .unwrap_or(&[]);
        for dep in normal_dependencies(&krate)
            .iter()
            .filter(|d| d.starts_with("ykt"))
        {
            assert!(
                allowed.contains(&dep.as_str()),
                "{krate} depends on {dep}, which ARCHITECTURE.md does not allow"
            );
        }
    }
}

#[test]
fn cores_do_no_io() {
    let root = workspace_root();
    for krate in CORES {
        for dep in normal_dependencies(krate) {
            assert!(
                !FORBIDDEN_IN_CORES.contains(&dep.as_str()),
                "core crate {krate} depends on {dep}"
            );
        }
        let src = root.join("crates").join(krate).join("src");
        let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
        assert!(
            lib.contains("#![no_std]"),
            "core crate {krate} is not #![no_std]"
        );
        for file in rust_files(&src) {
            if IO_EXEMPT.iter().any(|(path, _)| file.ends_with(path)) {
                continue;
            }
            let text = fs::read_to_string(&file).unwrap();
            for banned in ["std::net", "std::fs", "SystemTime", "OsRng"] {
                assert!(
                    !text.contains(banned),
                    "{} mentions {banned}",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn sans_io_std_crates_do_no_io() {
    let root = workspace_root();
    for krate in SANS_IO_STD {
        for dep in normal_dependencies(krate) {
            assert!(
                !FORBIDDEN_IN_CORES.contains(&dep.as_str()),
                "sans-IO crate {krate} depends on {dep}"
            );
        }
        for file in rust_files(&root.join("crates").join(krate).join("src")) {
            let text = fs::read_to_string(&file).unwrap();
            for banned in [
                "std::net",
                "std::fs",
                "std::process",
                "std::env",
                "SystemTime",
                "Instant",
                "OsRng",
            ] {
                assert!(
                    !text.contains(banned),
                    "{} mentions {banned}",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn every_test_data_file_has_provenance() {
    let root = workspace_root();
    for krate in crates() {
        let data = root.join("crates").join(&krate).join("tests/data");
        let Ok(entries) = fs::read_dir(&data) else {
            continue;
        };
        let readme = fs::read_to_string(data.join("README.md"))
            .unwrap_or_else(|_| panic!("{} has no README.md", data.display()));
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name != "README.md" {
                assert!(
                    readme.contains(&name),
                    "{}/{name} is not listed in its README.md",
                    data.display()
                );
            }
        }
    }
}
