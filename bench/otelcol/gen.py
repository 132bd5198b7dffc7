#!/usr/bin/env python3
"""Generate Kubernetes container logs in CRI format for agent benchmarks.

Usage: gen.py DIR FILES LINES_PER_FILE [--seed N] [--partial-ratio R]

Writes FILES files laid out as the kubelet does:
    DIR/<namespace>_<pod>_<uid>/<container>/0.log
Each file holds LINES_PER_FILE log records. A record is one CRI line
    <RFC3339Nano> <stdout|stderr> F <message>
or, for about 5% of the records (--partial-ratio), two lines: a `P` line carrying the first
part of the message and an `F` line carrying the rest, as containerd writes a long line
that it splits. A CRI-aware agent therefore emits exactly FILES * LINES_PER_FILE records.
Physical lines are 150-250 bytes (a split record's two lines add up to that).

Prints one JSON summary line: records (what run.sh's EXPECTED_LINES is), physical lines,
partial records, bytes. Deterministic for a given seed. Standard library only.
"""

import argparse
import json
import os
import random
import sys
import uuid
from datetime import datetime, timedelta, timezone

NAMESPACES = ["default", "payments", "checkout", "search", "kube-system", "monitoring", "auth", "billing"]
APPS = ["api", "web", "worker", "gateway", "cart", "indexer", "scheduler", "notifier", "ledger", "frontend"]
CONTAINERS = ["app", "server", "sidecar", "proxy", "main"]
LEVELS = ["DEBUG", "INFO", "INFO", "INFO", "INFO", "WARN", "ERROR"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
PATHS = ["/api/v1/orders", "/api/v1/users/{id}", "/healthz", "/api/v2/search", "/checkout/confirm",
         "/static/app.js", "/api/v1/carts/{id}/items", "/metrics", "/login", "/api/v1/payments"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0 Safari/537.36",
          "curl/8.5.0", "Go-http-client/1.1", "kube-probe/1.34", "python-requests/2.32.3"]
WORDS = ("request handled cache miss retrying upstream timeout connection pool exhausted user session "
         "created updated deleted order payment invoice shard replica leader elected compaction finished "
         "queue depth backlog throttled rate limit exceeded token refreshed").split()


def hexid(rng, n):
    return "%0*x" % (n, rng.getrandbits(4 * n))


def words(rng, n):
    """Free text of exactly n characters (n >= 0) made of log-ish words."""
    out, size = [], -1
    while size < n:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n].rstrip() or "ok"


def message(rng, t, app, target):
    """One application log message (without the CRI prefix) of about `target` characters.

    Each shape is built around a free-text field that is sized so the whole message lands on
    the target length, so structured messages stay well-formed (valid JSON, closed quotes).
    """
    kind = rng.random()
    if kind < 0.35:  # JSON structured log
        rec = {
            "ts": t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000),
            "level": rng.choice(LEVELS).lower(),
            "logger": "%s.%s" % (app, rng.choice(["http", "db", "cache", "queue"])),
            "msg": "",
            "trace_id": hexid(rng, 32),
            "duration_ms": round(rng.expovariate(1 / 40.0), 3),
        }
        base = len(json.dumps(rec, separators=(",", ":")))
        rec["msg"] = words(rng, max(1, target - base))
        return json.dumps(rec, separators=(",", ":"))
    if kind < 0.65:  # access log; the referer path absorbs the length difference
        path = rng.choice(PATHS).replace("{id}", str(rng.randint(1, 999999)))
        head = '10.%d.%d.%d - - [%s] "%s %s HTTP/1.1" %d %d "https://shop.example.com/' % (
            rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254),
            t.strftime("%d/%b/%Y:%H:%M:%S +0000"), rng.choice(METHODS), path,
            rng.choice([200, 200, 200, 201, 204, 301, 404, 500]), rng.randint(80, 90000))
        tail = '" "%s" rt=%.3f' % (rng.choice(AGENTS[1:]) if target < 190 else rng.choice(AGENTS),
                                   rng.expovariate(1 / 0.05))
        ref = words(rng, max(1, target - len(head) - len(tail))).replace(" ", "/")
        return head + ref + tail
    # logfmt
    head = "%s level=%s component=%s msg=\"" % (
        t.strftime("%H:%M:%S.") + "%06d" % t.microsecond, rng.choice(LEVELS), app)
    tail = "\" request_id=%s user_id=%d attempt=%d" % (
        uuid.UUID(int=rng.getrandbits(128), version=4), rng.randint(1, 10**7), rng.randint(1, 5))
    return head + words(rng, max(1, target - len(head) - len(tail))) + tail


def cri_ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%06d%03dZ" % (t.microsecond, 0)


def write_file(path, rng, records, partial_ratio, app, start):
    lines = partials = nbytes = 0
    t = start
    buf = []
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for _ in range(records):
            t += timedelta(microseconds=rng.randint(50, 4000))
            ts = cri_ts(t)
            stream = "stderr" if rng.random() < 0.1 else "stdout"
            prefix_len = len(ts) + len(stream) + 4  # "<ts> <stream> F "
            # physical line (prefix + message + newline) of 150-250 bytes
            msg = message(rng, t, app, rng.randint(150, 250) - prefix_len - 1)
            if rng.random() < partial_ratio:
                # containerd splits a long line: the P part first, the rest in an F line,
                # with its own (slightly later) timestamp; the two lines add up to one record.
                cut = rng.randint(len(msg) // 3, 2 * len(msg) // 3)
                head, tail = msg[:cut], msg[cut:]
                ts2 = cri_ts(t + timedelta(microseconds=rng.randint(1, 30)))
                buf.append("%s %s P %s\n%s %s F %s\n" % (ts, stream, head, ts2, stream, tail))
                lines += 2
                partials += 1
            else:
                buf.append("%s %s F %s\n" % (ts, stream, msg))
                lines += 1
            if len(buf) >= 4096:
                chunk = "".join(buf)
                nbytes += len(chunk.encode("utf-8"))
                f.write(chunk)
                buf.clear()
        chunk = "".join(buf)
        nbytes += len(chunk.encode("utf-8"))
        f.write(chunk)
    return lines, partials, nbytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("files", type=int)
    ap.add_argument("lines_per_file", type=int, help="log records per file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--partial-ratio", type=float, default=0.05)
    a = ap.parse_args()
    if a.files < 1 or a.lines_per_file < 1:
        sys.exit("FILES and LINES_PER_FILE must be positive")

    rng = random.Random(a.seed)
    start = datetime(2026, 1, 15, 8, 0, 0, tzinfo=timezone.utc)
    total = {"files": a.files, "records": 0, "lines": 0, "partial_records": 0, "bytes": 0}
    for i in range(a.files):
        ns = NAMESPACES[i % len(NAMESPACES)]
        app = APPS[i % len(APPS)]
        pod = "%s-%s-%s" % (app, hexid(rng, 10), hexid(rng, 5))
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        container = CONTAINERS[i % len(CONTAINERS)]
        d = os.path.join(a.dir, "%s_%s_%s" % (ns, pod, uid), container)
        os.makedirs(d, exist_ok=True)
        lines, partials, nbytes = write_file(os.path.join(d, "0.log"), rng, a.lines_per_file,
                                             a.partial_ratio, app, start)
        total["records"] += a.lines_per_file
        total["lines"] += lines
        total["partial_records"] += partials
        total["bytes"] += nbytes
    print(json.dumps(total))


if __name__ == "__main__":
    main()
