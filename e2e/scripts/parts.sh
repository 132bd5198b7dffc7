# shellcheck shell=bash
# Start-up of each part on loopback with free ports. Each *_up reuses a running part (idempotent
# `up`) and otherwise starts it from a clean data dir and waits until it really answers.
# Each part writes its exported variables to run/<group>/env.sh; e2e/env joins them into
# target/e2e/env. Sourced by e2e/env after lib.sh, procs.sh and install.sh.

KUBE_PARTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok pv-provisioner)
# shellcheck disable=SC2034 # used by e2e/env
ALL_PARTS=("${KUBE_PARTS[@]}" kafka s3)
KUBE_BIN() { echo "$CACHE_ROOT/kubernetes-$KUBE_VERSION/bin/$1"; }
VENV_DIR() { echo "$CACHE_ROOT/venv-moto-$MOTO_VERSION-kv-$KUBERNETES_VALIDATE_VERSION"; }

# ---------------------------------------------------------------------------------------------
# Kubernetes: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, PV provisioner.

kube_group_running() {
  local part
  for part in "${KUBE_PARTS[@]}"; do part_running "$part" || return 1; done
  [[ -f "$E2E_DIR/run/kube/env.sh" ]] || return 1
  # Running is not enough: the apiserver must still answer /readyz.
  local token port
  token="$(cut -d, -f1 "$E2E_DIR/run/kube/tokens.csv")"
  port="$(sed -n 's|^export KUBE_APISERVER=https://127.0.0.1:||p' "$E2E_DIR/run/kube/env.sh")"
  apiserver_ready "$token" "$port" >/dev/null
}

# Our own CA signs the apiserver's serving cert (SAN 127.0.0.1) so kubectl, helm and kube-rs
# verify TLS normally instead of skipping verification; the SA key pair signs service account tokens.
kube_make_pki() {
  local pki="$1"
  mkdir -p "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=logstream-e2e-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >"$pki/san.ext"
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 30 -extfile "$pki/san.ext" -out "$pki/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# A static bearer token in group system:masters: the simplest admin identity for tests.
kube_write_kubeconfig() {
  local dir="$1" port="$2" token="$3"
  printf '%s,admin,admin-uid,"system:masters"\n' "$token" >"$dir/tokens.csv"
  cat >"$E2E_DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: logstream-e2e
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $(base64 -w0 <"$dir/pki/ca.crt")
users:
- name: admin
  user:
    token: $token
contexts:
- name: logstream-e2e
  context: {cluster: logstream-e2e, user: admin, namespace: default}
current-context: logstream-e2e
KC
}

apiserver_ready() {
  curl -sf --max-time 3 --cacert "$E2E_DIR/run/kube/pki/ca.crt" \
    -H "Authorization: Bearer $1" "https://127.0.0.1:$2/readyz"
}
component_healthy() { curl -skf --max-time 3 "https://127.0.0.1:$1/healthz"; }
etcd_healthy() { curl -sf --max-time 3 "http://127.0.0.1:$1/health" | grep -q '"health":"true"'; }

kube_start_etcd() {
  local dir="$1" client_port="$2" peer_port
  peer_port="$(free_port)"
  mkdir -p "$E2E_DIR/run/etcd"
  # --unsafe-no-fsync: test data is thrown away anyway, and fsyncs slow every API write.
  (cd "$E2E_DIR/run/etcd" && exec setsid "$CACHE_ROOT/etcd-$ETCD_VERSION/bin/etcd" \
    --name e2e --data-dir "$dir/etcd-data" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "e2e=http://127.0.0.1:$peer_port" \
    >"$E2E_DIR/logs/etcd.log" 2>&1 </dev/null) &
  record_pid etcd $!
  wait_ready etcd 60 etcd_healthy "$client_port"
}

kube_start_apiserver() {
  local dir="$1" etcd_port="$2" port="$3" token="$4"
  mkdir -p "$E2E_DIR/run/kube-apiserver"
  # --endpoint-reconciler-type=none: the apiserver would otherwise try to publish 127.0.0.1 as
  # the `kubernetes` Service endpoint, which endpoint validation rejects (loopback), every 10s.
  (cd "$E2E_DIR/run/kube-apiserver" && exec setsid "$(KUBE_BIN kube-apiserver)" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
    --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" --token-auth-file "$dir/tokens.csv" \
    --authorization-mode RBAC --allow-privileged=true \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none --profiling=false \
    >"$E2E_DIR/logs/kube-apiserver.log" 2>&1 </dev/null) &
  record_pid kube-apiserver $!
  wait_ready kube-apiserver 180 apiserver_ready "$token" "$port"
}

kube_start_controllers() {
  local dir="$1" kcm_port sched_port
  kcm_port="$(free_port)"; sched_port="$(free_port)"
  mkdir -p "$E2E_DIR/run/kube-controller-manager" "$E2E_DIR/run/kube-scheduler"
  # Leader election off: one instance, and no 15s lease wait before controllers start.
  (cd "$E2E_DIR/run/kube-controller-manager" && exec setsid "$(KUBE_BIN kube-controller-manager)" \
    --kubeconfig "$E2E_DIR/kubeconfig" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" \
    --root-ca-file "$dir/pki/ca.crt" --service-account-private-key-file "$dir/pki/sa.key" \
    --cluster-name logstream-e2e --profiling=false \
    >"$E2E_DIR/logs/kube-controller-manager.log" 2>&1 </dev/null) &
  record_pid kube-controller-manager $!
  (cd "$E2E_DIR/run/kube-scheduler" && exec setsid "$(KUBE_BIN kube-scheduler)" \
    --kubeconfig "$E2E_DIR/kubeconfig" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --profiling=false \
    >"$E2E_DIR/logs/kube-scheduler.log" 2>&1 </dev/null) &
  record_pid kube-scheduler $!
  wait_ready kube-controller-manager 120 component_healthy "$kcm_port"
  wait_ready kube-scheduler 120 component_healthy "$sched_port"
}

# kwok plays kubelet for every Node it manages: heartbeats, pod status Running/Ready, fake pod IPs.
kube_start_kwok() {
  local port
  port="$(free_port)"
  mkdir -p "$E2E_DIR/run/kwok"
  (cd "$E2E_DIR/run/kwok" && exec setsid "$CACHE_ROOT/kwok-$KWOK_VERSION/bin/kwok" \
    --kubeconfig "$E2E_DIR/kubeconfig" --manage-all-nodes=true \
    --cidr 10.244.0.0/16 --node-ip 127.0.0.1 --server-address "127.0.0.1:$port" \
    >"$E2E_DIR/logs/kwok.log" 2>&1 </dev/null) &
  record_pid kwok $!
  wait_ready kwok 60 curl -sf --max-time 3 "http://127.0.0.1:$port/healthz"
}

# Fake nodes (no taint, so ordinary pods land there), the default StorageClass served by
# pv-provisioner.sh, then wait until the nodes report Ready through kwok.
kube_seed_cluster() {
  local kubectl=("$(KUBE_BIN kubectl)" --kubeconfig "$E2E_DIR/kubeconfig") i
  for i in 0 1 2; do
    cat <<NODE
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
NODE
  done | "${kubectl[@]}" apply -f - >/dev/null
  "${kubectl[@]}" apply -f - >/dev/null <<'SC'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: logstream.local/fake-provisioner
reclaimPolicy: Delete
volumeBindingMode: Immediate
SC
  wait_ready kwok 120 "${kubectl[@]}" wait --for=condition=Ready node --all --timeout=5s
  # Pods in a namespace need its `default` ServiceAccount, made by kube-controller-manager.
  wait_ready kube-controller-manager 60 "${kubectl[@]}" get serviceaccount default -n default
}

kube_up() {
  if kube_group_running; then
    log "kubernetes already running: reusing it"
    return 0
  fi
  # A partly running cluster (one part died) is restarted whole: its parts share ports and data.
  kube_down
  local dir="$E2E_DIR/run/kube" token etcd_port port
  rm -rf "$dir" && mkdir -p "$dir"
  token="$(openssl rand -hex 24)"
  etcd_port="$(free_port)"; port="$(free_port)"
  kube_make_pki "$dir/pki"
  kube_write_kubeconfig "$dir" "$port" "$token"
  kube_start_etcd "$dir" "$etcd_port"
  kube_start_apiserver "$dir" "$etcd_port" "$port" "$token"
  kube_start_controllers "$dir"
  kube_start_kwok
  mkdir -p "$E2E_DIR/run/pv-provisioner"
  (cd "$E2E_DIR/run/pv-provisioner" && exec setsid bash "$E2E_SCRIPTS/pv-provisioner.sh" \
    "$(KUBE_BIN kubectl)" "$E2E_DIR/kubeconfig" >"$E2E_DIR/logs/pv-provisioner.log" 2>&1 </dev/null) &
  record_pid pv-provisioner $!
  kube_seed_cluster
  cat >"$dir/env.sh" <<ENV
export KUBECONFIG=$E2E_DIR/kubeconfig
export KUBECTL=$(KUBE_BIN kubectl)
export KUBE_APISERVER=https://127.0.0.1:$port
ENV
}

kube_down() {
  local i
  # Reverse start order: clients first, etcd last, so nothing logs errors about a vanished server.
  for ((i = ${#KUBE_PARTS[@]} - 1; i >= 0; i--)); do stop_part "${KUBE_PARTS[i]}"; done
  rm -f "$E2E_DIR/run/kube/env.sh"
}

# ---------------------------------------------------------------------------------------------
# Apache Kafka, single node in KRaft mode (broker and controller in one process).

kafka_up() {
  if part_running kafka && [[ -f "$E2E_DIR/run/kafka/env.sh" ]] &&
    python3 "$E2E_SCRIPTS/kafka_ready.py" "$(sed -n 's/^export KAFKA_BOOTSTRAP=//p' "$E2E_DIR/run/kafka/env.sh")"; then
    log "kafka already running: reusing it"
    return 0
  fi
  stop_part kafka
  local dir="$E2E_DIR/run/kafka" libs="$CACHE_ROOT/kafka-$KAFKA_VERSION/libs" port cport
  rm -rf "$dir" && mkdir -p "$dir"
  port="$(free_port)"; cport="$(free_port)"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# Tests freeze this process (SIGSTOP) to cut clients off from Kafka for up to ~15 s. With the
# default 9 s the node's own controller would fence its broker meanwhile, and a single-node
# cluster does not always get its partitions' leadership back (seen with Kafka 4.1: the broker
# came back as a follower of its own partitions). A real outage seen from the clients is what the
# tests are after, not that.
broker.session.timeout.ms=60000
PROPS
  cat >"$dir/log4j2.properties" <<'LOG'
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
LOG
  # Small heap: a test broker holds little data, and the machine is shared with builds.
  local java=(java -Xms256m -Xmx768m -XX:+UseG1GC "-Dlog4j2.configurationFile=file:$dir/log4j2.properties" -cp "$libs/*")
  # KRaft storage must be formatted with a cluster id before the first start.
  "${java[@]}" kafka.tools.StorageTool format -t "$("${java[@]}" kafka.tools.StorageTool random-uuid)" \
    -c "$dir/server.properties" --standalone >"$E2E_DIR/logs/kafka-format.log" 2>&1 ||
    { tail -n 30 "$E2E_DIR/logs/kafka-format.log" >&2; die "kafka storage format failed"; }
  (cd "$dir" && exec setsid "${java[@]}" kafka.Kafka "$dir/server.properties" \
    >"$E2E_DIR/logs/kafka.log" 2>&1 </dev/null) &
  record_pid kafka $!
  wait_ready kafka 120 python3 "$E2E_SCRIPTS/kafka_ready.py" "127.0.0.1:$port"
  echo "export KAFKA_BOOTSTRAP=127.0.0.1:$port" >"$dir/env.sh"
}

# ---------------------------------------------------------------------------------------------
# S3: moto's server (S3 protocol including the bucket lifecycle API), in-memory, any credentials.

s3_up() {
  if part_running s3 && [[ -f "$E2E_DIR/run/s3/env.sh" ]] &&
    curl -sf --max-time 3 -o /dev/null "$(sed -n 's/^export S3_ENDPOINT=//p' "$E2E_DIR/run/s3/env.sh")/"; then
    log "s3 already running: reusing it"
    return 0
  fi
  stop_part s3
  local dir="$E2E_DIR/run/s3" port
  rm -rf "$dir" && mkdir -p "$dir"
  port="$(free_port)"
  (cd "$dir" && exec setsid "$(VENV_DIR)/bin/moto_server" -H 127.0.0.1 -p "$port" \
    >"$E2E_DIR/logs/s3.log" 2>&1 </dev/null) &
  record_pid s3 $!
  wait_ready s3 60 curl -sf --max-time 3 "http://127.0.0.1:$port/"
  cat >"$dir/env.sh" <<ENV
export S3_ENDPOINT=http://127.0.0.1:$port
export S3_REGION=us-east-1
export S3_ACCESS_KEY_ID=logstream-e2e
export S3_SECRET_ACCESS_KEY=logstream-e2e-secret
ENV
}
