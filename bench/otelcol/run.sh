#!/usr/bin/env bash
# Runs the OpenTelemetry Collector (file_log receiver + container operator -> nop exporter)
# over DIR/*/*/*.log from the beginning and measures how long and how much CPU and memory it
# takes to accept EXPECTED_LINES log records (a P+F pair merged by the container operator
# counts once). Prints one JSON line:
#   {"agent":"otelcol-filelog","version":..,"lines":N,"wall_s":..,"cpu_s":..,"lines_per_cpu_s":..,"max_rss_kib":..}
#
# Usage: run.sh DIR EXPECTED_LINES
# Environment:
#   OTELCOL_TIMEOUT        seconds to wait for the count (default 300)
#   OTELCOL_METRICS_PORT   port of the collector's own Prometheus metrics (default 8888)
#   OTELCOL_BIN            collector binary (default: what build.sh builds or has cached)
#   OTELCOL_KEEP=1         keep the temp dir (config, checkpoints, collector log)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { printf '[otelcol/run] error: %s\n' "$*" >&2; exit 1; }
note() { printf '[otelcol/run] %s\n' "$*" >&2; }

[[ $# -eq 2 ]] || die "usage: $0 DIR EXPECTED_LINES"
dir="$(cd "$1" 2>/dev/null && pwd)" || die "no such directory: $1"
expected="$2"
[[ "$expected" =~ ^[1-9][0-9]*$ ]] || die "EXPECTED_LINES must be a positive integer, got '$expected'"
timeout_s="${OTELCOL_TIMEOUT:-300}"
port="${OTELCOL_METRICS_PORT:-8888}"

compgen -G "$dir/*/*/*.log" >/dev/null || die "no log files match $dir/*/*/*.log"

bin="${OTELCOL_BIN:-}"
if [[ -z "$bin" ]]; then
  bin="$("$here/build.sh" | tail -n 1)" || die "build.sh failed"
fi
[[ -x "$bin" ]] || die "collector binary not executable: $bin"
version="$("$bin" --version | awk '{print $NF}')" || die "$bin --version failed"

# Our count comes from this port: refuse to read someone else's metrics.
if ss -Hltn "sport = :$port" | grep -q .; then
  die "port $port is already in use (another collector?); set OTELCOL_METRICS_PORT"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/otelcol-run.XXXXXX")"
mkdir -p "$tmp/checkpoints"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if [[ "${OTELCOL_KEEP:-0}" == 1 ]]; then note "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

cat >"$tmp/config.yaml" <<EOF
extensions:
  file_storage:
    directory: $tmp/checkpoints
receivers:
  file_log:
    include: ["$dir/*/*/*.log"]
    start_at: beginning
    include_file_path: true     # the container operator reads k8s metadata from the path
    include_file_name: false
    storage: file_storage
    operators:
      - type: container         # CRI/docker format auto-detected; merges P lines up to F
        id: container-parser
exporters:
  nop: {}
service:
  extensions: [file_storage]
  pipelines:
    logs:
      receivers: [file_log]
      exporters: [nop]
  telemetry:
    logs:
      level: warn
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: $port
EOF

clk_tck="$(getconf CLK_TCK)"
cpu_s() { # utime + stime of the collector, in seconds
  awk -v t="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / t }' "/proc/$pid/stat"
}
accepted() { # records the file_log receiver has handed to the pipeline (sum over series)
  curl -fsS --max-time 2 "http://127.0.0.1:$port/metrics" 2>/dev/null |
    awk '/^otelcol_receiver_accepted_log_records(_total)?[{ ]/ { s += $NF; seen = 1 }
         END { if (seen) printf "%.0f", s; else print -1 }'
}

t0="$(date +%s.%N)"
"$bin" --config "$tmp/config.yaml" >"$tmp/otelcol.log" 2>&1 &
pid=$!

deadline=$(( $(date +%s) + timeout_s ))
count=-1
while :; do
  if ! kill -0 "$pid" 2>/dev/null; then
    tail -n 30 "$tmp/otelcol.log" >&2
    die "the collector exited early (log above)"
  fi
  count="$(accepted || echo -1)"
  [[ -n "$count" ]] || count=-1
  if (( count >= expected )); then break; fi
  if (( $(date +%s) >= deadline )); then
    tail -n 20 "$tmp/otelcol.log" >&2
    if (( count < 0 )); then
      die "timeout after ${timeout_s}s: no metrics on 127.0.0.1:$port (see log above)"
    fi
    die "timeout after ${timeout_s}s: the collector accepted $count of $expected records (OTELCOL_TIMEOUT to wait longer)"
  fi
  sleep 0.1
done
t1="$(date +%s.%N)"
cpu="$(cpu_s)"
# Let late records arrive, so an agent that splits records (e.g. unmerged P lines) shows it.
sleep 1
final="$(accepted || echo "$count")"
(( final >= count )) || final="$count"
rss_kib="$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")"

kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
wait "$pid" 2>/dev/null || true
pid=""

awk -v v="$version" -v n="$final" -v t0="$t0" -v t1="$t1" -v cpu="$cpu" -v rss="$rss_kib" 'BEGIN {
  wall = t1 - t0
  printf "{\"agent\":\"otelcol-filelog\",\"version\":\"%s\",\"lines\":%d,\"wall_s\":%.3f,\"cpu_s\":%.3f,\"lines_per_cpu_s\":%.0f,\"max_rss_kib\":%d}\n",
    v, n, wall, cpu, (cpu > 0 ? n / cpu : 0), rss
}'
if (( final != expected )); then
  die "the collector accepted $final records, expected exactly $expected"
fi
