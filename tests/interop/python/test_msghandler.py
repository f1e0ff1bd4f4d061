"""Unit checks of the Python peer and the Plik test double (no NATS server needed).

    .venv/bin/python -m unittest discover -s tests/interop/python -p 'test_*.py'
"""

import asyncio
import base64
import io
import json
import os
import re
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import msghandler  # noqa: E402
from canonical import canon_json, canon_number, sha256_hex, table_digest_from_rows, value_digest, xorshift_bytes  # noqa: E402


class Stub:
    def __enter__(self):
        self.p = subprocess.Popen([sys.executable, os.path.join(HERE, "plik_stub.py"), "--port", "0"], stdout=subprocess.PIPE, text=True)
        self.url = self.p.stdout.readline().split(" ", 1)[1].strip()
        return self

    def __exit__(self, *exc):
        self.p.terminate()
        self.p.wait(5)


def get(url, ua="plik_client/test", method="GET"):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    req = urllib.request.Request(url, headers={"User-Agent": ua}, method=method)
    try:
        with urllib.request.build_opener(NoRedirect).open(req) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


class TestCanonical(unittest.TestCase):
    def test_numbers(self):
        cases = {1: "1", -0.0: "0e0", 95.5: "9.55e1", 1e20: "1e20", 10**20: "1e20", -0.001: "-1e-3",
                 1.5e-7: "1.5e-7", 2**53: "9007199254740992", 2**60: "1.152921504606847e18"}
        for v, want in cases.items():
            self.assertEqual(canon_number(v), want, v)

    def test_number_models(self):
        # typed: a float keeps the float form even when integral; js: JSON.parse's view, 88.0 is 88
        for v, typed, js in [(88.0, "8.8e1", "88"), (1.0, "1e0", "1"), (88, "88", "88"), (-0.0, "0e0", "0"), (0, "0", "0"),
                             (100.0, "1e2", "100"), (1e20, "1e20", "1e20"), (2.0**60, "1.152921504606847e18", "1.152921504606847e18")]:
            self.assertEqual((canon_number(v), canon_number(v, "js")), (typed, js), v)
        v = json.loads('{"a": 88, "b": 88.0, "c": [1.0, 2]}')
        self.assertEqual(canon_json(v), '{"a":88,"b":8.8e1,"c":[1e0,2]}')
        self.assertEqual(canon_json(v, "js"), '{"a":88,"b":88,"c":[1,2]}')
        self.assertNotEqual(value_digest("dictionary", v), value_digest("dictionary", v, "js"))

    def test_json(self):
        self.assertEqual(canon_json({"b": [1, 2.5, None, True], "a": "é\n/", "ä": {}}), '{"a":"é\\n/","b":[1,2.5e0,null,true],"ä":{}}')

    def test_table_rows_equal_dataframe(self):
        import pandas as pd

        rows = [{"id": 1, "name": "A", "score": 1.5}, {"id": 2, "name": None, "score": 2.0}]
        self.assertEqual(value_digest("arrowtable", pd.DataFrame(rows)), table_digest_from_rows(rows))

    def test_table_cells_follow_the_column_type(self):
        import pandas as pd
        import pyarrow as pa

        rows = [{"id": 1, "score": 88}, {"id": 2, "score": 95.5}]  # 88 sits in a Float64 column
        t = pa.table({"id": pa.array([1, 2], pa.int64()), "score": pa.array([88.0, 95.5], pa.float64())})
        want = sha256_hex(b'{"columns":["id","score"],"rows":[[1,8.8e1],[2,9.55e1]]}')
        self.assertEqual((table_digest_from_rows(rows), value_digest("arrowtable", t), value_digest("arrowtable", t.to_pandas())), (want,) * 3)

    def test_generator(self):
        self.assertEqual(xorshift_bytes(8, 11).hex(), "6b612d000bba0a2c")


class TestPack(unittest.IsolatedAsyncioTestCase):
    async def test_envelope_shape(self):
        env, s = await msghandler.smartpack("a.b", [("m", "hi", "text")], is_publish=False)
        self.assertEqual(list(json.loads(s).keys()), ["correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name", "sender_id",
                                                      "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url", "metadata", "payloads"])
        self.assertEqual(list(env["payloads"][0].keys()), ["id", "dataname", "payload_type", "transport", "encoding", "size", "data"])
        self.assertRegex(env["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual((env["sender_name"], env["msg_purpose"], env["metadata"]), ("msghandler", "chat", {}))
        self.assertTrue(re.match(r"^[0-9a-f-]{36}$", env["msg_id"]))

    async def test_table_roundtrip_and_file_format(self):
        import pandas as pd
        import pyarrow as pa

        df = pd.DataFrame({"id": [1, 2], "name": ["x", "ü"]})
        env, s = await msghandler.smartpack("t", [("d", df, "arrowtable")], is_publish=False)
        raw = base64.b64decode(env["payloads"][0]["data"])
        self.assertNotEqual(raw[:6], b"ARROW1")  # stream format on send
        back = await msghandler.smartunpack(s)
        self.assertEqual(back["payloads"][0][1].to_dict("list"), df.to_dict("list"))
        sink = io.BytesIO()
        with pa.ipc.new_file(sink, pa.Table.from_pandas(df, preserve_index=False).schema) as w:
            w.write_table(pa.Table.from_pandas(df, preserve_index=False))
        fenv = json.loads(s)
        fenv["payloads"][0].update(payload_type="table", data=base64.b64encode(sink.getvalue()).decode(), size=len(sink.getvalue()))
        back = await msghandler.smartunpack(json.dumps(fenv))
        self.assertEqual(back["payloads"][0][1].to_dict("list"), df.to_dict("list"))

    async def test_max_payload_moves_largest_to_link(self):
        with Stub() as st:
            a, b = xorshift_bytes(450_000, 1), xorshift_bytes(400_000, 2)
            env, s = await msghandler.smartpack("t", [("a", a, "binary"), ("b", b, "binary")], fileserver_url=st.url, is_publish=False)
            self.assertLessEqual(len(s.encode()), 1_048_576)
            self.assertEqual([p["transport"] for p in env["payloads"]], ["link", "direct"])
            back = await msghandler.smartunpack(s)
            self.assertEqual(back["payloads"][0][1], a)
            self.assertEqual(back["payloads"][1][1], b)

    async def test_no_room_is_an_error(self):
        with self.assertRaisesRegex(msghandler.MsgHandlerError, "max_payload"):
            await msghandler.smartpack("t", [("m", "x" * 2000, "text")], max_payload=1000, size_threshold=10**9, is_publish=False,
                                       fileserver_upload_handler=lambda *a: (_ for _ in ()).throw(msghandler.MsgHandlerError("max_payload: upload refused")))


class TestStubAndFetch(unittest.IsolatedAsyncioTestCase):
    async def test_oneshot_head_redirect(self):
        with Stub() as st:
            res = await msghandler.plik_oneshot_upload(st.url, "f.bin", b"hello")
            self.assertEqual(len(res["uploadid"]), 16)
            self.assertEqual(get(res["url"], method="HEAD")[0], 200)  # HEAD does not consume
            self.assertEqual(get(res["url"])[:2], (200, b"hello"))
            code, body, _ = get(res["url"])
            self.assertEqual(code, 404)
            self.assertIn(b"is not available : removed", body)
            code, _, hdrs = get(res["url"], ua="Mozilla/5.0")
            self.assertEqual(code, 301)
            self.assertIn("errcode=404", hdrs["Location"])
            with self.assertRaisesRegex(msghandler.MsgHandlerError, "404"):
                await msghandler.fetch_with_backoff(res["url"], 5, 100, 5000)  # gives up at once: not retryable

    async def test_retries_then_succeeds(self):
        from aiohttp import web

        hits = []

        async def handler(request):
            hits.append(1)
            if len(hits) < 3:
                return web.Response(status=503 if len(hits) == 1 else 404, text="file x (y) is not available : uploading")
            return web.Response(body=b"0123456789")

        app = web.Application()
        app.router.add_get("/f", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            body = await msghandler.fetch_with_backoff(f"http://127.0.0.1:{port}/f", 5, 10, 50, expected_size=10)
            self.assertEqual((body, len(hits)), (b"0123456789", 3))
            hits.clear()
            with self.assertRaisesRegex(msghandler.MsgHandlerError, "size"):
                hits.extend([1, 1])
                await msghandler.fetch_with_backoff(f"http://127.0.0.1:{port}/f", 5, 10, 50, expected_size=11)
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    unittest.main()
