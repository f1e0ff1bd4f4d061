"""Offline checks of the seed-transcribed Python peer's pure parts (no NATS, no file server).

    .venv/bin/python -m unittest discover -s tests/interop/seed/python -p 'test_*.py'
"""

import asyncio
import base64
import json
import os
import sys
import unittest
from datetime import datetime, timezone
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import msghandler_seed as mh  # noqa: E402
import peer  # noqa: E402  (puts tests/interop/python on sys.path for canonical)
from canonical import table_digest_from_rows, value_digest  # noqa: E402

CASES = os.path.join(HERE, "..", "..", "cases")
SCHEMA_ORDER = ["correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name", "sender_id", "receiver_name",
                "receiver_id", "reply_to", "reply_to_msg_id", "broker_url", "metadata", "payloads"]


def case_value(kind):
    with open(os.path.join(CASES, f"{kind}.json"), encoding="utf-8") as f:
        return json.load(f)[0]["value"]


def run(coro):
    return asyncio.run(coro)


def msg_of(env_json, subject="t.subject"):
    data = env_json if isinstance(env_json, (bytes, str)) else json.dumps(env_json)
    return SimpleNamespace(data=data.encode() if isinstance(data, str) else data, subject=subject)


class FakeUpload:
    def __init__(self):
        self.calls = []

    async def __call__(self, fileserver_url, dataname, data):
        self.calls.append((fileserver_url, dataname, len(data)))
        return f"{fileserver_url}/file/U/F/{dataname}"


class EnvelopeBuild(unittest.TestCase):
    def test_smartpack_defaults_and_schema_order(self):
        env, s = run(mh.smartpack("chat.room1", [("message", "Hello World", "text")], is_publish=False))
        self.assertEqual(list(env), SCHEMA_ORDER)
        self.assertEqual(s, json.dumps(env))  # stock json.dumps, ", " / ": " separators
        self.assertEqual((env["sender_name"], env["msg_purpose"], env["send_to"]), ("msghandler", "chat", "chat.room1"))
        self.assertEqual((env["reply_to"], env["reply_to_msg_id"], env["receiver_name"], env["metadata"]), ("", "", "", {}))
        self.assertEqual(env["broker_url"], "nats://localhost:4222")
        (p,) = env["payloads"]
        self.assertEqual(list(p), ["id", "dataname", "payload_type", "transport", "encoding", "size", "data"])
        self.assertEqual((p["transport"], p["encoding"], p["size"]), ("direct", "base64", 11))
        self.assertEqual(base64.b64decode(p["data"]), b"Hello World")
        self.assertEqual(len({env["msg_id"], env["correlation_id"], env["sender_id"], p["id"]}), 4)

    def test_timestamp_is_stock_isoformat_utc(self):
        env, _ = run(mh.smartpack("s", [("m", "x", "text")], is_publish=False))
        ts = datetime.fromisoformat(env["timestamp"])
        self.assertEqual(ts.utcoffset().total_seconds(), 0)
        self.assertTrue(env["timestamp"].endswith("+00:00"))
        self.assertLess(abs((datetime.now(timezone.utc) - ts).total_seconds()), 60)

    def test_generation_1_defaults(self):
        env, _ = run(mh.smartsend("s", [("m", "x", "text")], is_publish=False))
        self.assertEqual(env["sender_name"], "NATSBridge")

    def test_thresholds_direct_below_link_at(self):
        up = FakeUpload()
        data = [("a", b"\x00" * 499_999, "binary"), ("b", b"\x00" * 500_000, "binary")]
        env, _ = run(mh.smartpack("s", data, is_publish=False, fileserver_upload_handler=up, fileserver_url="http://fs"))
        self.assertEqual([p["transport"] for p in env["payloads"]], ["direct", "link"])
        self.assertEqual(env["payloads"][1], {**env["payloads"][1], "encoding": "none", "size": 500_000, "data": "http://fs/file/U/F/b"})
        self.assertEqual(up.calls, [("http://fs", "b", 500_000)])
        data = [("a", b"\x00" * 999_999, "binary"), ("b", b"\x00" * 1_000_000, "binary")]
        env, _ = run(mh.smartsend("s", data, is_publish=False, fileserver_upload_handler=up))
        self.assertEqual([p["transport"] for p in env["payloads"]], ["direct", "link"])

    def test_round_trip_tables_and_json(self):
        rows, jrows = case_value("arrowtable"), case_value("jsontable")
        import pandas as pd

        data = [("t", pd.DataFrame(rows), "arrowtable"), ("j", jrows, "jsontable"), ("d", {"ü": [1, 2.5, None]}, "dictionary")]
        _, s = run(mh.smartpack("s", data, is_publish=False))
        self.assertNotIn("ü", s)  # stock json.dumps escapes non-ASCII
        env = run(mh.smartunpack(msg_of(s)))
        (_, t, tt), (_, j, jt), (_, d, dt) = env["payloads"]
        self.assertEqual((tt, jt, dt), ("arrowtable", "jsontable", "dictionary"))
        self.assertEqual(value_digest("arrowtable", t), table_digest_from_rows(rows))
        self.assertEqual(j, jrows)
        self.assertEqual(d, {"ü": [1, 2.5, None]})


class GenerationTypes(unittest.TestCase):
    def test_generation_1_refuses_arrowtable_and_jsontable_before_uploading(self):
        import pandas as pd

        up = FakeUpload()
        for t, v in (("arrowtable", pd.DataFrame({"a": [1]})), ("jsontable", [{"a": 1}])):
            with self.assertRaises(ValueError) as cm:
                run(mh.smartsend("s", [("big", b"\x00" * 2_000_000, "binary"), ("x", v, t)], is_publish=False, fileserver_upload_handler=up))
            self.assertIn(repr(t), str(cm.exception))
            self.assertIn("NATSBridge", str(cm.exception))
        self.assertEqual(up.calls, [])

    def test_generation_2_refuses_table(self):
        import pandas as pd

        with self.assertRaises(ValueError) as cm:
            run(mh.smartpack("s", [("x", pd.DataFrame({"a": [1]}), "table")], is_publish=False))
        self.assertIn("'table'", str(cm.exception))

    def test_generation_1_receiving_arrowtable_is_an_error_naming_it(self):
        import pandas as pd

        _, s = run(mh.smartpack("s", [("students", pd.DataFrame({"a": [1]}), "arrowtable")], is_publish=False))
        with self.assertRaises(ValueError) as cm:
            run(mh.smartreceive(msg_of(s)))
        self.assertIn("'arrowtable'", str(cm.exception))
        line = run(peer.receive_line(msg_of(s, "sub.j"), 1))
        self.assertEqual(set(line), {"subject", "error"})
        self.assertEqual(line["subject"], "sub.j")
        self.assertIn("arrowtable", line["error"])
        _, s1 = run(mh.smartsend("s", [("students", pd.DataFrame({"a": [1]}), "table")], is_publish=False))
        self.assertEqual(run(mh.smartreceive(msg_of(s1)))["payloads"][0][2], "table")


class Receive(unittest.TestCase):
    def envelope(self, **changes):
        env, _ = run(mh.smartpack("s", [("message", "Hello World", "text")], is_publish=False))
        env.update(changes)
        return env

    def test_summary_line(self):
        line = run(peer.receive_line(msg_of(self.envelope()), 1))
        self.assertEqual(line["subject"], "t.subject")
        self.assertEqual(line["payloads"], [{"dataname": "message", "payload_type": "text", "transport": "direct", "size": 11,
                                             "sha256": value_digest("text", "Hello World"), "value_digest": value_digest("text", "Hello World")}])

    def test_timestamp_parse_failure_is_reported(self):
        for ts in ("15/01/2024 10:30", "2024-01-15T24:00:00Z", 12345):
            line = run(peer.receive_line(msg_of(self.envelope(timestamp=ts)), 2))
            self.assertEqual(set(line), {"subject", "error"})
            self.assertTrue(line["error"].startswith("timestamp: "), line)
        env = self.envelope()
        del env["timestamp"]
        self.assertTrue(run(peer.receive_line(msg_of(env), 2))["error"].startswith("timestamp: KeyError"))

    def test_timestamp_forms_other_runtimes_send(self):
        for ts in ("2024-01-15T10:30:00.123Z", "2024-01-15T10:30:00.37", "2024-01-15T10:30:00", "2024-01-15T10:30:00.123456789+05:30"):
            self.assertNotIn("error", run(peer.receive_line(msg_of(self.envelope(timestamp=ts)), 2)), ts)

    def test_missing_fields_are_key_errors_naming_them(self):
        env = self.envelope()
        del env["payloads"][0]["dataname"]
        self.assertEqual(run(peer.receive_line(msg_of(env), 2))["error"], "KeyError: 'dataname'")
        env = self.envelope()
        del env["payloads"]
        self.assertEqual(run(peer.receive_line(msg_of(env), 2))["error"], "KeyError: 'payloads'")

    def test_base64_is_stock_lenient_and_size_unchecked(self):
        env = self.envelope()
        env["payloads"][0].update(data="SGVsbG8g\nV29ybGQ=\n", size=99)
        self.assertEqual(run(mh.smartunpack(msg_of(env)))["payloads"], [("message", "Hello World", "text")])
        env["payloads"][0]["data"] = "SGVsbG8"
        self.assertIn("base64", run(peer.receive_line(msg_of(env), 2))["error"])

    def test_seed_responder_handler(self):
        answers = peer.seed_handler_answer([("command", {"action": "read_sensor"}, "dictionary"), ("other", 1, "dictionary")])
        self.assertEqual(answers, [[("data", {"sensor_id": "sensor-001", "value": 42.5}, "dictionary")]])


class Spec(unittest.TestCase):
    def test_load_spec_tables_become_dataframes(self):
        import pandas as pd

        ((name, v, t),) = peer.load_spec(os.path.join(CASES, "table.json"))
        self.assertEqual((name, t), ("students", "table"))
        self.assertIsInstance(v, pd.DataFrame)
        ((_, b, t),) = peer.load_spec(os.path.join(CASES, "image.json"))
        self.assertEqual((len(b), b[:8].hex(), t), (20000, "6b612d000bba0a2c", "image"))


if __name__ == "__main__":
    unittest.main()
