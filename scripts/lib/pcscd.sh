# Shared helpers of scripts/pcsc-it and scripts/bench-vpcd (sourced, not run).
# The caller sets LOG_TAG and WAIT_SECONDS, and owns the variables pcscd_pid and work.

log() { printf '[%s] %s\n' "$LOG_TAG" "$*"; }
fail() {
    log "FAILED: $*"
    exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.2 s until it succeeds.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            fail "timed out after ${seconds}s waiting for $what"
        fi
        sleep 0.2
    done
}

pcscd_answers() { timeout 5 pcsc_scan -r; }

# 'opensc-tool -l' prints "Nr.  Card  Features  Name" rows.
card_present() { timeout 5 opensc-tool -l 2>/dev/null | grep -E "^[0-9]+ +Yes .*$1\$"; }
card_absent() { timeout 5 opensc-tool -l 2>/dev/null | grep -E "^[0-9]+ +No .*$1\$"; }
reader_listed() { timeout 5 opensc-tool -l 2>/dev/null | grep -qF "$1"; }
reader_index() { timeout 5 opensc-tool -l | awk -v r="$1" 'index($0, r) { print $1; exit }'; }

# Reuses a pcscd that answers; otherwise removes a stale socket and starts `pcscd -f` in the
# background (pid in pcscd_pid, log in $work/pcscd.log). pcscd writes /run/pcscd, so a non-root
# user needs password-less sudo for this (sudo relays our SIGTERM to pcscd at the end).
ensure_pcscd() {
    if [[ -S /run/pcscd/pcscd.comm ]] && pcscd_answers >/dev/null 2>&1; then
        log "reusing the running pcscd"
        return
    fi
    local as_root=()
    if [[ $(id -u) != 0 ]]; then
        sudo -n true 2>/dev/null ||
            fail "no pcscd is running, and starting one needs root or password-less sudo"
        as_root=(sudo -n)
    fi
    if [[ -e /run/pcscd/pcscd.comm ]]; then
        log "removing stale /run/pcscd/pcscd.comm"
        "${as_root[@]}" rm -f /run/pcscd/pcscd.comm
    fi
    log "starting pcscd -f${as_root[*]:+ (via ${as_root[*]})}"
    "${as_root[@]}" pcscd -f >"$work/pcscd.log" 2>&1 &
    pcscd_pid=$!
    wait_for "$WAIT_SECONDS" "pcscd to answer" pcscd_answers
}

# wait_for_vpcd_readers: both vpcd slots are listed (the driver is loaded).
wait_for_vpcd_readers() {
    local slot
    for slot in 0 1; do
        wait_for "$WAIT_SECONDS" "reader 'Virtual PCD 00 0$slot' (is vsmartcard-vpcd installed?)" \
            reader_listed "Virtual PCD 00 0$slot"
    done
}

# free_vpcd_slots: prints "PORT<TAB>READER" for each vpcd slot without a card.
free_vpcd_slots() {
    local slot reader
    for slot in 0 1; do
        reader="Virtual PCD 00 0$slot"
        if card_absent "$reader" >/dev/null; then
            printf '%s\t%s\n' $((35963 + slot)) "$reader"
        fi
    done
}

# stop_pid PID: SIGTERM a process this script started, and reap it.
stop_pid() {
    if [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1"
        wait "$1" 2>/dev/null
    fi
    return 0
}

# target_dir: cargo's target directory (honours CARGO_TARGET_DIR).
target_dir() {
    cargo metadata --format-version 1 --no-deps |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'
}
