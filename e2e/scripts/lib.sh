# shellcheck shell=bash
# Shared helpers and pinned versions for e2e/env. Sourced, never executed.

# Pinned versions (edit here, not via the environment): bumping one changes its cache key, so a
# warm machine rebuilds only that part.
# shellcheck disable=SC2034 # used by install.sh, parts.sh and e2e/env
KUBE_VERSION="v1.34.4"
ETCD_VERSION="v3.6.5"
KWOK_VERSION="v0.7.0"
HELM_VERSION="v3.19.5"
KAFKA_VERSION="4.1.1"
LOG4J_VERSION="2.24.3"
MOTO_VERSION="5.2.5"
KUBERNETES_VALIDATE_VERSION="1.37.0"
HADOLINT_VERSION="2.15.1"

# Builds and downloads live outside the work tree so fresh clones of the repo reuse them.
CACHE_ROOT="${LOGSTREAM_TESTINFRA_CACHE:-$HOME/.cache/logstream-testinfra}"
# Go's module and build caches go there too, so one `du` measures what the parts cost on disk.
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$CACHE_ROOT/go/mod}"
export GOCACHE="${GOCACHE_OVERRIDE:-$CACHE_ROOT/go/build}"
export GOFLAGS="-buildvcs=false -mod=mod"
# The machine's Go (1.26) is new enough for every pinned module; never fetch a toolchain.
export GOTOOLCHAIN=local

# Heavy builds yield the CPU to interactive work on the same machine.
# shellcheck disable=SC2034 # used by install.sh
NICE=(nice -n 19)

log() { printf '[e2e/env %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# A part is installed when its cache dir carries the stamp written as the last install step,
# so an interrupted build is redone rather than half-used.
is_installed() { [[ -f "$1/.complete" ]]; }
mark_installed() { date -u +%FT%TZ >"$1/.complete"; }

# Ask the kernel for a free loopback port (bind to port 0, read it back, release it).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
