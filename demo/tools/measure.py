"""Measure the demo's start-up time and keep-alive latency.

    python tools/measure.py [--starts 10] [--requests 200]

Prints the median time from spawn to the first 200 on /health (fresh DATA_DIR each start)
and the mean latency of keep-alive GET /health on one http.client connection, next to a
plain http.server handler without TCP_NODELAY (the ~44 ms Nagle/delayed-ACK stall).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def health_ok(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()  # closing with the body unread would make the kernel send a RST
        return response.status == 200
    except OSError:
        return False
    finally:
        conn.close()


def spawn(port: int, data_dir: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PORT": str(port), "DATA_DIR": data_dir, "LOG_LEVEL": "warning"}
    env.pop("FAULT", None)
    return subprocess.Popen(
        [sys.executable, "server.py"], cwd=DEMO_DIR, env=env, stdout=subprocess.DEVNULL
    )


def time_to_healthy(data_root: str, index: int) -> float:
    port = free_port()
    started = time.perf_counter()
    proc = spawn(port, os.path.join(data_root, f"start{index}"))
    try:
        while not health_ok(port):
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode}")
            if time.perf_counter() - started > 10:
                raise TimeoutError("no 200 on /health within 10 s")
            time.sleep(0.001)
        return time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)


def keepalive_latency(port: int, requests: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
    conn.close()
    return statistics.mean(latencies)


class NagleHandler(BaseHTTPRequestHandler):
    """The stdlib default (Nagle on) writing headers and body separately, as http.server does."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client closing its keep-alive connection is not news


def baseline_latency(requests: int) -> float:
    server = QuietServer(("127.0.0.1", 0), NagleHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return keepalive_latency(server.server_address[1], requests)
    finally:
        server.shutdown()
        server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_root:
        starts = [time_to_healthy(data_root, i) for i in range(args.starts)]
        print(
            f"spawn -> first 200 on /health: median {statistics.median(starts) * 1000:.1f} ms "
            f"(min {min(starts) * 1000:.1f}, max {max(starts) * 1000:.1f}, n={len(starts)})"
        )
        port = free_port()
        proc = spawn(port, os.path.join(data_root, "latency"))
        try:
            while not health_ok(port):
                time.sleep(0.005)
            demo = keepalive_latency(port, args.requests)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=5)
    print(
        f"keep-alive GET /health, demo (TCP_NODELAY): mean {demo * 1000:.2f} ms, n={args.requests}"
    )
    baseline_n = min(args.requests, 50)
    base = baseline_latency(baseline_n)
    print(
        f"keep-alive GET, plain http.server (Nagle on): mean {base * 1000:.2f} ms, n={baseline_n}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
