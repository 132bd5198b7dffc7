#!/usr/bin/env bash
# A tiny external volume provisioner for the fake cluster: kwok nodes mount nothing, but a
# StatefulSet's volumeClaimTemplates still need Bound PVCs before its pods are scheduled.
# For every Pending PVC of StorageClass "standard" it creates a hostPath PV pre-bound to that
# claim (kube-controller-manager then binds both), and it deletes Released PVs, as a real
# provisioner with reclaimPolicy Delete would.
# It also nudges pods the scheduler parked as unschedulable: a StatefulSet pod scheduled before
# the scheduler's cache saw its new claim is parked with "persistentvolumeclaim not found", and
# the claim's later events do not always requeue it, so it would wait out the scheduler's 5-minute
# flush. Touching an annotation is a pod update, which requeues it at once.
# Usage: pv-provisioner.sh KUBECTL KUBECONFIG
set -euo pipefail
kubectl=("$1" --kubeconfig "$2" --request-timeout=10s)

pending_claims() {
  "${kubectl[@]}" get pvc --all-namespaces -o jsonpath='{range .items[?(@.status.phase=="Pending")]}{.metadata.namespace} {.metadata.name} {.metadata.uid} {.spec.storageClassName} {.spec.resources.requests.storage}{"\n"}{end}'
}

unschedulable_pods() {
  "${kubectl[@]}" get pods --all-namespaces --field-selector=status.phase=Pending -o jsonpath='{range .items[*]}{.metadata.namespace} {.metadata.name} {.status.conditions[?(@.type=="PodScheduled")].reason}{"\n"}{end}' |
    awk '$3 == "Unschedulable" {print $1, $2}'
}

provision() {
  local ns="$1" name="$2" uid="$3" size="$4"
  "${kubectl[@]}" apply -f - >/dev/null <<PV
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pvc-$uid
  annotations:
    pv.kubernetes.io/provisioned-by: logstream.local/fake-provisioner
spec:
  storageClassName: standard
  capacity: {storage: $size}
  accessModes: [ReadWriteOnce, ReadOnlyMany, ReadWriteMany]
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: /var/lib/logstream-fake-pv/$uid}
  claimRef: {namespace: $ns, name: $name, uid: $uid}
PV
  echo "provisioned pvc-$uid for $ns/$name ($size)"
}

while true; do
  # `|| true`: a transient apiserver error must not end the loop; the next round retries.
  while read -r ns name uid class size; do
    [[ "$class" == standard ]] || continue
    provision "$ns" "$name" "$uid" "$size" || true
  done < <(pending_claims || true)
  "${kubectl[@]}" get pv -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{"\n"}{end}' 2>/dev/null |
    xargs -r "${kubectl[@]}" delete pv --wait=false >/dev/null 2>&1 || true
  round=$((${round:-0} + 1))
  if ((round % 5 == 0)); then
    while read -r ns name; do
      [[ -n "$name" ]] || continue
      "${kubectl[@]}" annotate pod -n "$ns" "$name" --overwrite \
        "logstream.local/requeued-at=$(date +%s)" >/dev/null 2>&1 &&
        echo "requeued unschedulable pod $ns/$name" || true
    done < <(unschedulable_pods || true)
  fi
  sleep 1
done
