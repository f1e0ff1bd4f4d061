#!/usr/bin/env python3
"""plik_stub.py - a TEST DOUBLE of the Plik file server: the subset of its HTTP API the bridge uses.

Not Plik. Only for natsbridge's interop tests on 127.0.0.1, until the Rust file server CLI is used.
Behaviour follows shared/SPEC.md ("Claim-check upload"):

  POST /upload                 JSON {"oneShot": true, ...}   -> 200 {"id" (16 chars), "uploadToken", ...}
  POST /file/{id}              X-UploadToken, multipart part "file" with a filename
                                                             -> 200 {"id","fileName","fileSize","fileMd5","status":"uploaded"}
  GET  /file/{id}/{fileId}/{name}   the bytes; one-shot uploads: the first GET consumes, later GETs 404
  HEAD /file/{id}/{fileId}/{name}   headers only, never consumes

Errors are text/plain. Failed GETs redirect (301) to "/?err=...&errcode=N" unless the User-Agent
starts with a known client name (plik_client, curl, wget, go-http-client, ...), as Plik does.
CORS headers are added (real Plik needs a proxy for that) so the browser peer can use it.

    python3 plik_stub.py --port 0 [--host 127.0.0.1] [--port-file FILE]
prints "LISTENING http://127.0.0.1:PORT" on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import secrets
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

ALNUM = string.ascii_letters + string.digits
KNOWN_CLIENTS = ("plik_client", "curl", "wget", "go-http-client")  # the names SPEC.md lists


def new_id(n: int = 16) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(n))


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.uploads: dict[str, dict] = {}


STORE = Store()


def parse_multipart(body: bytes, content_type: str):
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not m:
        return None
    boundary = b"--" + m.group(1).encode()
    for part in body.split(boundary):
        if part in (b"", b"--", b"--\r\n") or part.startswith(b"--"):
            continue
        part = part[2:] if part.startswith(b"\r\n") else part
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = head.decode("utf-8", "replace")
        disp = re.search(r"content-disposition:([^\r\n]*)", headers, re.I)
        if not disp:
            continue
        name = re.search(r'\bname="([^"]*)"', disp.group(1))
        fname = re.search(r'filename="([^"]*)"', disp.group(1))
        if name and name.group(1) == "file":
            return (fname.group(1) if fname else None), content
    return None


class Handler(BaseHTTPRequestHandler):
    server_version = "plik-stub/0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _cors(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type, X-UploadToken")
        self.send_header("Access-Control-Expose-Headers", "Content-Length, Location")

    def _send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8", extra=None, head_only=False):
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _json(self, obj):
        self._send(200, json.dumps(obj).encode(), "application/json")

    def _text_error(self, status: int, msg: str):
        self._send(status, msg.encode())

    def _get_error(self, status: int, msg: str, head_only: bool):
        ua = self.headers.get("User-Agent", "").lower()
        if head_only or any(ua.startswith(c) for c in KNOWN_CLIENTS):
            self._send(status, msg.encode(), head_only=head_only)
        else:
            loc = f"/?err={quote(msg)}&errcode={status}&uri={quote(self.path)}"
            self._send(301, b"", extra={"Location": loc})

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_OPTIONS(self):
        self._send(200, b"")

    def do_POST(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts == ["upload"]:
            raw = self._body()
            try:
                req = json.loads(raw or b"{}")
                if not isinstance(req, dict):
                    raise ValueError
            except ValueError:
                return self._text_error(400, "unable to deserialize request body")
            up = {
                "id": new_id(16),
                "uploadToken": new_id(32),
                "oneShot": bool(req.get("oneShot", False)),
                "ttl": int(req.get("ttl", 0) or 0),
                "creationDate": int(time.time()),
                "files": {},
            }
            with STORE.lock:
                STORE.uploads[up["id"]] = up
            return self._json({k: v for k, v in up.items()})
        if len(parts) == 2 and parts[0] == "file":
            raw = self._body()
            with STORE.lock:
                up = STORE.uploads.get(parts[1])
            if up is None:
                return self._text_error(404, f"upload {parts[1]} not found")
            if self.headers.get("X-UploadToken") != up["uploadToken"]:
                return self._text_error(403, "invalid upload token")
            got = parse_multipart(raw, self.headers.get("Content-Type", ""))
            if got is None:
                return self._text_error(400, "missing file from multipart form")
            fname, content = got
            if not fname:
                return self._text_error(400, "missing file name from multipart form")
            f = {
                "id": new_id(16),
                "fileName": fname,
                "fileSize": len(content),
                "fileMd5": hashlib.md5(content).hexdigest(),
                "fileType": "application/octet-stream",
                "status": "uploaded",
            }
            with STORE.lock:
                up["files"][f["id"]] = {**f, "content": content}
            return self._json(f)
        return self._text_error(404, "404 page not found")

    def _serve_file(self, head_only: bool):
        parts = [unquote(p) for p in self.path.split("?")[0].split("/") if p]
        if len(parts) != 4 or parts[0] != "file":
            return self._get_error(404, "404 page not found", head_only)
        _, upload_id, file_id, name = parts
        with STORE.lock:
            up = STORE.uploads.get(upload_id)
            f = up["files"].get(file_id) if up else None
            if up is None:
                err = (404, f"upload {upload_id} not found")
            elif f is None:
                err = (404, f"file {file_id} not found")
            elif f["fileName"] != name:
                err = (404, f"file {file_id} ({name}) not found")
            elif f["status"] != "uploaded":
                err = (404, f"file {name} ({file_id}) is not available : {f['status']}")
            else:
                err = None
                content = f["content"]
                if up["oneShot"] and not head_only:
                    f["status"] = "removed"
                    f["content"] = b""
        if err:
            return self._get_error(err[0], err[1], head_only)
        self._send(200, content, "application/octet-stream", head_only=head_only)

    def do_GET(self):
        if self.path.split("?")[0] in ("/", "/version"):
            return self._send(200, b"plik-stub (test double)\n")
        self._serve_file(False)

    def do_HEAD(self):
        self._serve_file(True)


def main():
    ap = argparse.ArgumentParser(description="Plik-subset test double (not Plik)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    print(f"LISTENING http://{a.host}:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
