"""Real servers for the package's tests: a nats-server and the project's own file server
(`natsbridge fileserver`), each on a free loopback port, stopped at the end of the session.

Found through the environment when set (NATSBRIDGE_NATS_SERVER, NATSBRIDGE_CLI), otherwise the
repository's `.venv/bin/nats-server` and `$CARGO_TARGET_DIR/debug/natsbridge` (or `target/`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SEED_PEER = os.path.join(ROOT, "tests", "interop", "seed", "python")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port}")


def nats_server_binary() -> str:
    for candidate in (os.environ.get("NATSBRIDGE_NATS_SERVER"), os.path.join(ROOT, ".venv", "bin", "nats-server"),
                      os.path.join(os.path.dirname(sys.executable), "nats-server"), shutil.which("nats-server")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("nats-server not found (set NATSBRIDGE_NATS_SERVER or run cargo xtask setup)")


def cli_binary() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    for candidate in (os.environ.get("NATSBRIDGE_CLI"), os.path.join(target, "debug", "natsbridge"),
                      os.path.join(target, "release", "natsbridge")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("natsbridge CLI not found (set NATSBRIDGE_CLI or cargo build -p natsbridge-cli)")


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="natsbridge-py-") as d:
        yield d


@pytest.fixture(scope="session")
def nats_url(workdir):
    port = free_port()
    log = open(os.path.join(workdir, "nats-server.log"), "wb")
    # JetStream on, for the Bridge's jetstream_send and durable consumer.
    proc = subprocess.Popen([nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd",
                             os.path.join(workdir, "jetstream")], stdout=log, stderr=log)
    try:
        wait_listening(port, proc, "nats-server")
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def fileserver_url(workdir):
    proc = subprocess.Popen([cli_binary(), "fileserver", "--listen", "127.0.0.1:0", "--dir",
                             os.path.join(workdir, "files"), "--json"], stdout=subprocess.PIPE)
    try:
        # Its first line: {"dir": "...", "url": "http://127.0.0.1:PORT"}.
        line = proc.stdout.readline()
        url = json.loads(line)["url"]
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def seed():
    """The seed-transcribed Python peer (tests/interop/seed/python/msghandler_seed.py), as a module."""
    sys.path.insert(0, SEED_PEER)
    import msghandler_seed

    return msghandler_seed
