//! Process hardening (client.md §6.11, the desktop analogue of anti-debug) and the panic hook
//! (client.md §6.8), for the commands that hold keys: `ykt wallet …`, `ykt tsm …`, `ykt se …`.
//!
//! On Linux the process is made non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`: no core dump, no
//! `ptrace` attach and no `/proc/<pid>/mem` or `environ` for other processes of the same user)
//! and its core-file limit set to 0 (`RLIMIT_CORE`, soft and hard, so a child cannot raise it).
//! Elsewhere only the panic hook is installed.
//!
//! The panic hook prints [`PANIC_TEXT`] and nothing else: not the message (which may format
//! card data or key bytes), not the location, not a backtrace.

/// What a panic prints, with its error code (client.md §6.8: "a fixed text plus an error code").
pub const PANIC_TEXT: &str = "error: E9998: ykt stopped on an internal error. Nothing was shown of \
     its data; run the command again, and report the code and the time if it happens again.";

/// The logs of the HTTP stacks are capped at `info` whatever `RUST_LOG` asks for: at `trace`
/// ureq dumps every request and response body in hex and ASCII, and those bodies carry the
/// TSM's scripts (APDUs with MAC2 and card data) and the envelopes' card numbers (client.md
/// §6.8: APDU traces show INS and SW only). The wallet's own trace events stay available.
pub const LOG_CAPS: &[&str] = &["ureq=info", "ureq_proto=info", "hyper=info", "h2=info"];

/// `filter` with [`LOG_CAPS`] added last, so they override what `RUST_LOG` said for those
/// targets.
pub fn cap_logs(mut filter: tracing_subscriber::EnvFilter) -> tracing_subscriber::EnvFilter {
    for cap in LOG_CAPS {
        if let Ok(directive) = cap.parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Hardens this process and installs the panic hook; called first by the commands that hold
/// keys. Fails if the kernel refuses either setting (the command then does not run).
pub fn process() -> anyhow::Result<()> {
    std::panic::set_hook(Box::new(|_| eprintln!("{PANIC_TEXT}")));
    #[cfg(target_os = "linux")]
    linux()?;
    Ok(())
}

#[cfg(target_os = "linux")]
fn linux() -> anyhow::Result<()> {
    // SAFETY: `prctl(PR_SET_DUMPABLE, 0)` takes integers only and changes only this process's
    // dumpable flag.
    #[allow(unsafe_code)]
    let set = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if set != 0 || dumpable() != Some(0) {
        anyhow::bail!(
            "making the process non-dumpable: {}",
            std::io::Error::last_os_error()
        );
    }
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `zero` is a valid `rlimit` that outlives the call, which only reads it.
    #[allow(unsafe_code)]
    let core = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
    if core != 0 {
        anyhow::bail!(
            "setting the core-file limit to 0: {}",
            std::io::Error::last_os_error()
        );
    }
    // Read back from the kernel, so the log states what holds, not what was asked for.
    tracing::debug!(
        dumpable = dumpable().unwrap_or(-1),
        core_limit = 0,
        "process hardened (client.md §6.11)"
    );
    Ok(())
}

/// The kernel's dumpable flag of this process (`prctl(PR_GET_DUMPABLE)`); `None` if refused.
/// (Linux's `/proc/<pid>/status` has no line for it.)
#[cfg(target_os = "linux")]
fn dumpable() -> Option<i32> {
    // SAFETY: `prctl(PR_GET_DUMPABLE)` takes no pointers and only reads the flag.
    #[allow(unsafe_code)]
    let flag = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    (flag >= 0).then_some(flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_stacks_stay_at_info_under_rust_log_trace() {
        let filter = cap_logs(tracing_subscriber::EnvFilter::new("trace,ureq_proto=trace"));
        let text = filter.to_string();
        for cap in LOG_CAPS {
            assert!(text.split(',').any(|d| d == *cap), "{cap} in {text}");
        }
        assert!(!text.contains("ureq_proto=trace"), "{text}");
    }

    #[test]
    fn the_panic_text_has_a_code_and_no_placeholder() {
        let code = PANIC_TEXT.split(": ").nth(1).unwrap_or_default();
        assert!(
            code.len() == 5
                && code.starts_with('E')
                && code[1..].bytes().all(|b| b.is_ascii_digit()),
            "{PANIC_TEXT}"
        );
        assert!(!PANIC_TEXT.contains(['{', '}']), "{PANIC_TEXT}");
    }

    // client.md §6.11: after hardening the kernel's dumpable flag is 0 (Linux shows it in no
    // /proc file; `prctl(PR_GET_DUMPABLE)` reads it) and /proc/self/limits shows a core limit
    // of 0. (The test process itself is hardened; the default panic hook is put back so other
    // tests' failures still print.)
    #[cfg(target_os = "linux")]
    #[test]
    fn hardening_makes_this_process_non_dumpable_with_no_core_files() {
        assert_eq!(dumpable(), Some(1), "a test process starts dumpable");
        let hardened = process();
        drop(std::panic::take_hook());
        hardened.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(dumpable(), Some(0));
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap_or_default();
        assert_eq!(
            core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(),
            ["0", "0"],
            "{limits}"
        );
    }
}
