"""Readiness probe for Kafka: send one Metadata request (v4, still supported by Kafka 4.x)
and succeed only when the broker lists at least one registered broker in its answer.
Usage: kafka_ready.py HOST:PORT. Exit 0 when ready, 1 otherwise. Standard library only."""

import socket
import struct
import sys


def metadata_broker_count(host: str, port: int) -> int:
    client_id = b"logstream-e2e-probe"
    # Request header v1 (api_key=3 Metadata, api_version=4, correlation_id, client_id), then the
    # body: topics = null (all topics), allow_auto_topic_creation = false.
    body = struct.pack(">hhih", 3, 4, 7, len(client_id)) + client_id
    body += struct.pack(">i?", -1, False)
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _read(sock, 4))[0]
        payload = _read(sock, size)
    correlation_id, _throttle_ms, brokers = struct.unpack(">iii", payload[:12])
    if correlation_id != 7:
        raise ValueError("unexpected correlation id")
    return brokers


def _read(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


if __name__ == "__main__":
    host, _, port = sys.argv[1].rpartition(":")
    try:
        sys.exit(0 if metadata_broker_count(host, int(port)) > 0 else 1)
    except (OSError, ValueError) as err:
        print(f"kafka not ready: {err}", file=sys.stderr)
        sys.exit(1)
