//! Test support for the PKCS#11 backend: a throwaway SoftHSM2 token, and the current test
//! binary run again against it.
//!
//! SoftHSM reads `SOFTHSM2_CONF` when the module is initialised, and a test must not change
//! its own process's environment, so [`run_softhsm_child`] writes a token directory and a
//! configuration under the directory it is given, initialises a token there with
//! `softhsm2-util`, and runs the current executable again, filtered to one test, with the
//! variable set (and a marker variable, so the child test knows it is the child). The token's
//! PINs are PUBLIC test values: tests only.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The SoftHSM2 module to load: `YKT_PKCS11_MODULE`, else Debian's path.
pub fn softhsm_module() -> PathBuf {
    std::env::var_os("YKT_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

/// The security officer PIN of the throwaway token (a PUBLIC test value).
pub const SO_PIN: &str = "1234";

/// What [`run_softhsm_child`] sets up and runs.
#[derive(Clone, Debug)]
pub struct SoftHsmChild<'a> {
    /// The environment variable set (to `1`) in the child: the child test runs only when it is
    /// set, the parent test only when it is not.
    pub marker: &'a str,
    /// The child test's full name (`module::test`), run with `--exact`.
    pub test: &'a str,
    /// The token's label.
    pub label: &'a str,
    /// The token's user PIN (a PUBLIC test value).
    pub pin: &'a str,
    /// What the tests are, for the line that says they were skipped.
    pub what: &'a str,
    /// Where the token directory and the configuration go (made afresh, removed after a
    /// successful run).
    pub dir: PathBuf,
}

/// Why a SoftHSM2 run did not pass.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoftHsmError {
    /// The module or `softhsm2-util` is absent while `CI` is set (then the tests must run).
    #[error("the PKCS#11 tests must run under CI: {0}")]
    Absent(String),
    /// Writing the token directory or starting a process failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `softhsm2-util --init-token` failed.
    #[error("softhsm2-util: {0}")]
    TokenInit(String),
    /// The child run failed.
    #[error("child run failed:\n{stdout}\n{stderr}")]
    Child {
        /// Its standard output.
        stdout: String,
        /// Its standard error.
        stderr: String,
    },
    /// The child ran no test (the filter matched nothing).
    #[error("the child ran no test:\n{0}")]
    NoTest(String),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> SoftHsmError {
    move |source| SoftHsmError::Io { what, source }
}

/// Whether the SoftHSM2 module and `softhsm2-util` are there; if not, why not.
pub fn softhsm_absent() -> Option<String> {
    let module = softhsm_module();
    let util = Command::new("softhsm2-util").arg("--version").output();
    if module.exists() && util.is_ok() {
        return None;
    }
    Some(format!(
        "{} or softhsm2-util is absent (Debian package softhsm2)",
        module.display()
    ))
}

/// Sets up a throwaway SoftHSM2 token as `child` says and runs `child.test` of the current
/// test binary in a child process configured for it. Gives the child's standard output when
/// it passed; `None` when SoftHSM2 is absent (a `SKIPPED:` line goes to standard
/// error), unless `CI` is set: then [`SoftHsmError::Absent`].
pub fn run_softhsm_child(child: &SoftHsmChild<'_>) -> Result<Option<String>, SoftHsmError> {
    if let Some(why) = softhsm_absent() {
        if std::env::var_os("CI").is_some() {
            return Err(SoftHsmError::Absent(why));
        }
        eprintln!("SKIPPED: {}: {why}", child.what);
        return Ok(None);
    }
    let dir = &child.dir;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("tokens")).map_err(io("creating the token directory"))?;
    let conf = write_conf(dir)?;
    let init = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", child.label])
        .args(["--so-pin", SO_PIN, "--pin", child.pin])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .map_err(io("running softhsm2-util"))?;
    if !init.status.success() {
        return Err(SoftHsmError::TokenInit(
            String::from_utf8_lossy(&init.stderr).into_owned(),
        ));
    }
    let exe = std::env::current_exe().map_err(io("finding the test binary"))?;
    let out = Command::new(exe)
        .args([child.test, "--exact", "--nocapture", "--test-threads=1"])
        .env(child.marker, "1")
        .env("SOFTHSM2_CONF", &conf)
        .env("YKT_PKCS11_MODULE", softhsm_module())
        .output()
        .map_err(io("running the child"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(SoftHsmError::Child {
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    if !stdout.contains("1 passed") {
        return Err(SoftHsmError::NoTest(stdout));
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(Some(stdout))
}

fn write_conf(dir: &Path) -> Result<PathBuf, SoftHsmError> {
    let conf = dir.join("softhsm2.conf");
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        dir.join("tokens").display()
    );
    std::fs::write(&conf, text).map_err(io("writing softhsm2.conf"))?;
    Ok(conf)
}
