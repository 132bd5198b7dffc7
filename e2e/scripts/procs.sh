# shellcheck shell=bash
# Process bookkeeping for e2e/env. Every part is started as
#   (cd "$E2E_DIR/run/<part>" && exec setsid CMD ...) &
# so it leads its own process group (PGID = PID) and runs in its own folder under target/e2e/run.
# Its PID is recorded in target/e2e/pids/<part>.pid, and `down` stops exactly that group.

# Remember a started part's PID (the subshell exec'd into setsid, which exec'd into the part).
record_pid() {
  mkdir -p "$E2E_DIR/pids"
  echo "$2" >"$E2E_DIR/pids/$1.pid"
  log "started $1 (pid $2, log target/e2e/logs/$1.log)"
}

# A recorded PID counts only while that process still runs in the part's own folder, so a PID
# recycled by an unrelated process is never reported or killed.
part_pid() {
  local pidfile="$E2E_DIR/pids/$1.pid" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$E2E_DIR/run/$1" ]] || return 1
  echo "$pid"
}
part_running() { part_pid "$1" >/dev/null; }

# True while the process group has a member that is not a zombie (exited parts wait for init
# to reap them, and `kill -0` would still count them).
group_alive() {
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# Stop a part's whole process group (catching any children): TERM, a grace period, then KILL.
stop_part() {
  local part="$1" pid
  if pid="$(part_pid "$part")"; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while group_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if group_alive "$pid"; then
      log "$part did not stop within 20s: SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    log "stopped $part (pid $pid)"
  fi
  rm -f "$E2E_DIR/pids/$part.pid"
}

# Poll a readiness probe until it passes; fail fast with the log tail when the part dies instead
# of waiting out the timeout. Readiness is proven, never assumed from a sleep.
wait_ready() {
  local part="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! part_running "$part"; then
      log "$part exited during start-up; last lines of target/e2e/logs/$part.log:"
      tail -n 30 "$E2E_DIR/logs/$part.log" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$part not ready after ${timeout}s; see target/e2e/logs/$part.log"
      return 1
    fi
    sleep 0.5
  done
  log "$part ready"
}
