#!/usr/bin/env bash
# Builds a minimal OpenTelemetry Collector (filelog receiver + nop exporter + file_storage)
# with the OpenTelemetry Collector Builder, from the Go module proxy only.
#
# The binary is cached outside the work tree, keyed by version:
#   ${LOGSTREAM_CACHE:-$HOME/.cache/logstream}/otelcol-<version>/otelcol
# A warm machine skips the build. The last line printed is the binary's path.
#
# Environment:
#   LOGSTREAM_CACHE      cache root (default $HOME/.cache/logstream)
#   OTELCOL_GO_CACHE     Go module + build cache root (default $LOGSTREAM_CACHE/otelcol-go)
#   OTELCOL_REBUILD=1    ignore the cached binary
#   GO                   go command (default /usr/local/go/bin/go, else `go` on PATH)
set -euo pipefail

# Pinned versions: one collector release throughout (core v0.165.0 / v1.71.0, contrib v0.165.1).
# Bumping them means editing manifest.yaml too.
OTELCOL_VERSION="0.165.1"
OCB_VERSION="v0.165.0"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/manifest.yaml"
cache_root="${LOGSTREAM_CACHE:-$HOME/.cache/logstream}"
out="$cache_root/otelcol-$OTELCOL_VERSION"
bin="$out/otelcol"
stamp="$out/.complete"

log() { printf '[otelcol/build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The stamp holds the manifest's hash: an edited manifest at the same version rebuilds.
want_stamp="$(sha256sum "$manifest" | cut -d' ' -f1) ocb=$OCB_VERSION"
if [[ "${OTELCOL_REBUILD:-0}" != 1 && -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" ]]; then
  log "cached: $bin"
  echo "$bin"
  exit 0
fi

GO="${GO:-/usr/local/go/bin/go}"
if [[ ! -x "$GO" ]]; then
  GO="$(command -v go)" || die "no Go toolchain (need go >= 1.26; set GO=/path/to/go)"
fi
export PATH="$(dirname "$GO"):$PATH"   # the builder looks `go` up on PATH
go_cache="${OTELCOL_GO_CACHE:-$cache_root/otelcol-go}"
export GOMODCACHE="$go_cache/mod"
export GOCACHE="$go_cache/build"
export GOFLAGS="-buildvcs=false -mod=mod"
export GOTOOLCHAIN=local   # never fetch another toolchain; go 1.26 suffices for this release
export CGO_ENABLED=0
mkdir -p "$out" "$GOMODCACHE" "$GOCACHE"

# One build at a time (the machine is shared, 2 cores): serialise concurrent callers.
exec 9>"$out/.lock"
flock 9
if [[ "${OTELCOL_REBUILD:-0}" != 1 && -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" ]]; then
  echo "$bin"; exit 0   # another caller built it while we waited
fi
rm -f "$stamp"

t0=$(date +%s)
log "go: $("$GO" version)"
log "installing the collector builder $OCB_VERSION"
GOBIN="$out/tools" nice -n 19 "$GO" install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION"

src="$out/src"
rm -rf "$src"
mkdir -p "$src"
sed "s|@OUTPUT_PATH@|$src|" "$manifest" >"$out/manifest.yaml"

log "building otelcol $OTELCOL_VERSION (go mod tidy + one go build; minutes when cold)"
# The builder runs `go mod tidy`, `go mod download` and one `go build -trimpath -ldflags=-s -w`.
nice -n 19 "$out/tools/builder" --config="$out/manifest.yaml" >"$out/build.log" 2>&1 ||
  { tail -n 40 "$out/build.log" >&2; die "builder failed (full log: $out/build.log)"; }

mv -f "$src/otelcol" "$bin.new"
mv -f "$bin.new" "$bin"
"$bin" components >"$out/components.txt" 2>&1 || die "built binary does not run"
# v0.165 names the receiver `file_log` (`filelog` is its deprecated alias).
grep -q 'name: file_log' "$out/components.txt" || die "file_log receiver missing from the build"
grep -q 'name: nop' "$out/components.txt" || die "nop exporter missing from the build"

t1=$(date +%s)
echo "$want_stamp" >"$stamp"
log "built in $((t1 - t0)) s: $("$bin" --version)"
echo "$((t1 - t0))" >"$out/build-seconds.txt"
echo "$bin"
