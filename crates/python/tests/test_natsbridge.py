"""The package's calls against a real nats-server and the project's file server, and against the
seed-transcribed Python peer (tests/interop/seed/python) both ways."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import uuid
from types import SimpleNamespace

import nats
import pandas as pd
import pyarrow as pa
import pytest

import natsbridge
from natsbridge import msghandler

FRAME = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"], "score": [0.5, 1.5, 2.5]})
BLOB = bytes(range(256)) * 40  # 10,240 bytes


def run(coro):
    return asyncio.run(coro)


def every_type():
    return [
        ("t", "Hello, 世界", "text"),
        ("d", {"a": 1, "b": [1, 2, {"c": None}]}, "dictionary"),
        ("l", [1, "two", 3.0], "dictionary"),
        ("jt", [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}], "jsontable"),
        ("at", FRAME, "arrowtable"),
        ("tb", pa.Table.from_pandas(FRAME), "table"),
        ("img", BLOB, "image"),
        ("aud", bytearray(b"\x00\x01\x02"), "audio"),
        ("vid", memoryview(b"video bytes"), "video"),
        ("bin", b"", "binary"),
    ]


def assert_values(payloads, sent):
    assert [(n, t) for n, _, t in payloads] == [(n, t) for n, _, t in sent]
    for (name, got, kind), (_, want, _) in zip(payloads, sent):
        if kind in ("arrowtable", "table"):
            want_frame = want.to_pandas() if isinstance(want, pa.Table) else want
            assert isinstance(got, pd.DataFrame), name
            pd.testing.assert_frame_equal(got, want_frame)
        elif kind in ("image", "audio", "video", "binary"):
            assert isinstance(got, bytes), name
            assert got == bytes(want), name
        else:
            assert got == want, name


def msg_of(text: str):
    return SimpleNamespace(data=text.encode(), subject="t")


# ----------------------------------------------------------------------------- the API's shape


def test_one_import_gives_the_seeds_names_and_defaults():
    assert msghandler.smartpack is natsbridge.smartpack
    from natsbridge import smartpack, smartreceive, smartsend, smartunpack  # noqa: F401

    new = inspect.signature(natsbridge.smartpack).parameters
    old = inspect.signature(natsbridge.smartsend).parameters
    assert list(new) == list(old)
    assert list(new)[:5] == ["subject", "data", "broker_url", "fileserver_url", "fileserver_upload_handler"]
    assert (new["size_threshold"].default, new["sender_name"].default) == (500_000, "msghandler")
    assert (old["size_threshold"].default, old["sender_name"].default) == (1_000_000, "NATSBridge")
    assert new["is_publish"].default is True and new["nats_connection"].default is None
    assert new["fileserver_upload_handler"].default is natsbridge.plik_oneshot_upload
    receive = inspect.signature(natsbridge.smartunpack).parameters
    assert [(k, p.default) for k, p in receive.items()][1:] == [
        ("fileserver_download_handler", natsbridge.fetch_with_backoff), ("max_retries", 5), ("base_delay", 100),
        ("max_delay", 5000)]
    for f in (natsbridge.smartpack, natsbridge.smartunpack, natsbridge.smartsend, natsbridge.smartreceive):
        assert inspect.iscoroutinefunction(f)


def test_every_type_round_trips_direct_with_the_seeds_envelope():
    sent = every_type()
    env, env_json_str = run(natsbridge.smartpack("chat.room1", sent, is_publish=False, msg_id="m-1"))
    assert env == json.loads(env_json_str)
    assert (env["send_to"], env["sender_name"], env["msg_purpose"], env["msg_id"]) == (
        "chat.room1", "msghandler", "chat", "m-1")
    assert [p["transport"] for p in env["payloads"]] == ["direct"] * len(sent)
    assert base64.b64decode(env["payloads"][0]["data"]) == "Hello, 世界".encode()
    received = run(natsbridge.smartunpack(env_json_str))
    assert received["msg_id"] == "m-1" and received["correlation_id"] == env["correlation_id"]
    assert_values(received["payloads"], sent)
    # bytes, str and anything with .data are all messages.
    assert run(natsbridge.smartreceive(env_json_str.encode()))["msg_id"] == "m-1"


def test_the_calls_without_io_give_what_the_general_path_gives():
    # smartpack(is_publish=False) of text and bytes, and smartunpack of an envelope without links,
    # run on the calling thread (natsbridge._native.pack_local / unpack_local): same dicts as the
    # general path, which json-parses the envelope the Rust core wrote.
    sent = [("t", "Hello, 世界", "text"), ("img", BLOB, "image"), ("bin", b"", "binary")]
    fields = ("nats://h:4222", "chat", "me", "", "", "r.subject", "", "c-1", "m-1", None)
    env, env_json_str = natsbridge._native.pack_local("s", sent, 500_000, fields, 1 << 20)
    assert env == json.loads(env_json_str)
    assert (env["broker_url"], env["sender_name"], env["reply_to"], env["correlation_id"]) == (
        "nats://h:4222", "me", "r.subject", "c-1")
    assert [p["size"] for p in env["payloads"]] == [len("Hello, 世界".encode()), len(BLOB), 0]
    assert base64.b64decode(env["payloads"][1]["data"]) == BLOB
    # Not its call: a payload at the threshold, a type Python encodes, bytes-like but not bytes, a bad field.
    for data, threshold in (([("b", BLOB, "binary")], len(BLOB)), ([("d", {}, "dictionary")], 10),
                            ([("v", memoryview(b"x"), "video")], 10), (sent, True)):
        assert natsbridge._native.pack_local("s", data, threshold, fields, 1 << 20) is None
    assert natsbridge._native.pack_local("s", sent, 500_000, fields, 100) is None  # over max_payload

    general = {"correlation_id": "c", "msg_id": "m", "timestamp": "2024-01-15T10:30:00Z", "send_to": "s",
               "payloads": [{"dataname": n, "payload_type": t, "transport": "direct", "encoding": "base64",
                             "size": len(raw), "data": base64.b64encode(raw).decode()}
                            for n, raw, t in (("t", "é".encode(), "text"), ("d", b'{"a": [1]}', "dictionary"),
                                              ("x", b"\x00\xff", "someday"), ("b", BLOB, "binary"))]}
    message = json.dumps(general).encode()
    local = natsbridge._native.unpack_local(SimpleNamespace(data=message))
    assert local is not None
    assert local == run(natsbridge._unpack(message, None, 5, 100, 5000))
    assert local["payloads"] == [("t", "é", "text"), ("d", {"a": [1]}, "dictionary"),
                                 ("x", b"\x00\xff", "someday"), ("b", BLOB, "binary")]
    # Not its call: metadata, a link, text that is not UTF-8, a str message.
    for change in ({"metadata": {"k": 1}},
                   {"payloads": [{"dataname": "l", "payload_type": "binary", "transport": "link",
                                  "encoding": "none", "size": 1, "data": "http://127.0.0.1:9/f"}]},
                   {"payloads": [dict(general["payloads"][0], data=base64.b64encode(b"\xff").decode())]}):
        assert natsbridge._native.unpack_local(json.dumps(dict(general, **change)).encode()) is None
    assert natsbridge._native.unpack_local(message.decode()) is None


def test_smartsend_keeps_the_older_seeds_defaults():
    env, _ = run(natsbridge.smartsend("s", [("t", "x", "text")], is_publish=False))
    assert env["sender_name"] == "NATSBridge"


def test_large_payloads_go_by_link_to_the_file_server_and_come_back_checked(fileserver_url):
    big = bytes(600_000)
    sent = [("small", "hi", "text"), ("big", big, "binary"), ("frame", FRAME, "arrowtable")]
    env, env_json_str = run(natsbridge.smartpack("s", sent, fileserver_url=fileserver_url, size_threshold=1000,
                                                 is_publish=False))
    records = {p["dataname"]: p for p in env["payloads"]}
    assert records["small"]["transport"] == "direct"
    assert records["big"]["transport"] == "link" and records["big"]["data"].startswith(fileserver_url)
    assert records["big"]["size"] == len(big)
    assert len(records["big"]["sha256"]) == 64
    received = run(natsbridge.smartunpack(msg_of(env_json_str)))
    assert_values(received["payloads"], sent)


def test_the_default_size_threshold_decides_direct_or_link(fileserver_url):
    env, _ = run(natsbridge.smartpack("s", [("a", bytes(499_999), "binary"), ("b", bytes(500_000), "binary")],
                                      fileserver_url=fileserver_url, is_publish=False))
    assert [p["transport"] for p in env["payloads"]] == ["direct", "link"]


# ----------------------------------------------------------------------------- publishing


def test_publish_on_the_packages_own_connection(nats_url):
    async def main():
        nc = await nats.connect(nats_url)
        sub = await nc.subscribe("py.own")
        await nc.flush()
        sent = [("t", "over NATS", "text"), ("d", {"k": [1, 2]}, "dictionary")]
        for _ in range(2):  # the second call reuses the connection
            env, env_json_str = await natsbridge.smartpack("py.own", sent, broker_url=nats_url)
            msg = await sub.next_msg(timeout=10)
            assert msg.data.decode() == env_json_str
            received = await natsbridge.smartunpack(msg)
            assert received["msg_id"] == env["msg_id"] and received["broker_url"] == nats_url
            assert_values(received["payloads"], sent)
        await nc.close()

    run(main())


def test_close_drops_the_packages_connection_and_the_next_call_connects_again(nats_url):
    async def main():
        nc = await nats.connect(nats_url)
        sub = await nc.subscribe("py.close")
        await nc.flush()
        await natsbridge.smartpack("py.close", [("t", "before", "text")], broker_url=nats_url)
        await natsbridge.close()
        await natsbridge.smartpack("py.close", [("t", "after", "text")], broker_url=nats_url)
        got = [(await natsbridge.smartunpack(await sub.next_msg(timeout=10)))["payloads"][0][1] for _ in range(2)]
        assert got == ["before", "after"]
        await nc.close()

    run(main())


def test_publish_through_a_nats_py_connection_passed_in(nats_url):
    async def main():
        nc = await nats.connect(nats_url)
        sub = await nc.subscribe("py.passed")
        sent = [("t", "through nats-py", "text")]
        env, env_json_str = await natsbridge.smartsend("py.passed", sent, nats_connection=nc, broker_url=nats_url)
        msg = await sub.next_msg(timeout=10)
        assert msg.data.decode() == env_json_str
        assert (await natsbridge.smartreceive(msg))["payloads"] == [("t", "through nats-py", "text")]
        await nc.close()

    run(main())


def test_is_publish_false_publishes_nothing_on_a_connection_passed_in(nats_url):
    async def main():
        nc = await nats.connect(nats_url)
        sub = await nc.subscribe("py.quiet")
        await natsbridge.smartpack("py.quiet", [("t", "x", "text")], nats_connection=nc, is_publish=False)
        await nc.publish("py.quiet", b"marker")
        msg = await sub.next_msg(timeout=10)
        assert msg.data == b"marker"  # the envelope, published first, would have come first
        await nc.close()

    run(main())


# ----------------------------------------------------------------------------- the seed peer, both ways


def test_the_seed_peer_reads_what_the_package_sends(seed, fileserver_url):
    sent = [("t", "to the seed", "text"), ("d", {"a": 1}, "dictionary"), ("jt", [{"x": 1}], "jsontable"),
            ("at", FRAME, "arrowtable"), ("big", bytes(range(256)) * 4000, "binary")]
    _, env_json_str = run(natsbridge.smartpack("s", sent, fileserver_url=fileserver_url, size_threshold=100_000,
                                               is_publish=False))
    received = run(seed.smartunpack(msg_of(env_json_str)))
    assert_values(received["payloads"], sent)


def test_the_package_reads_what_the_seed_peer_sends(seed, fileserver_url):
    for pack, unpack, table_kind in ((seed.smartpack, natsbridge.smartunpack, "arrowtable"),
                                     (seed.smartsend, natsbridge.smartreceive, "table")):
        sent = [("t", "from the seed", "text"), ("d", [1, 2], "dictionary"), (table_kind, FRAME, table_kind),
                ("big", bytes(range(256)) * 4000, "image")]
        _, env_json_str = run(pack("s", sent, fileserver_url=fileserver_url, size_threshold=100_000,
                                   is_publish=False))
        received = run(unpack(msg_of(env_json_str)))
        assert_values(received["payloads"], sent)


def test_over_nats_with_the_seed_peer_both_ways(seed, nats_url, fileserver_url):
    """The seed peer publishes on its own connection, the package reads the nats-py message; the
    package publishes on its own, the seed peer reads it; a link payload each way."""
    sent = [("t", "across", "text"), ("big", bytes(range(256)) * 1000, "binary")]

    async def main():
        nc = await nats.connect(nats_url)
        sub = await nc.subscribe("py.seed.>")
        await nc.flush()
        await seed.smartpack("py.seed.in", sent, broker_url=nats_url, fileserver_url=fileserver_url,
                             size_threshold=100_000)
        received = await natsbridge.smartunpack(await sub.next_msg(timeout=10))
        assert received["sender_name"] == "msghandler"
        assert_values(received["payloads"], sent)

        await natsbridge.smartsend("py.seed.out", sent, broker_url=nats_url, fileserver_url=fileserver_url,
                                   size_threshold=100_000)
        received = await seed.smartreceive(await sub.next_msg(timeout=10))
        assert received["sender_name"] == "NATSBridge"
        assert_values(received["payloads"], sent)
        await nc.close()

    run(main())


# ----------------------------------------------------------------------------- handlers of one's own


def test_python_handlers_replace_the_rust_ones_and_links_are_still_checked():
    store = {}

    async def upload(fileserver_url, dataname, data):
        url = f"mem://{uuid.uuid4()}/{dataname}"
        store[url] = data
        return url

    async def download(url, max_retries, base_delay, max_delay):
        return store[url]

    sent = [("big", bytes(5000), "binary"), ("small", "s", "text")]
    env, env_json_str = run(natsbridge.smartpack("s", sent, fileserver_upload_handler=upload, size_threshold=1000,
                                                 is_publish=False))
    assert [p["transport"] for p in env["payloads"]] == ["link", "direct"]
    assert env["payloads"][0]["data"] in store
    received = run(natsbridge.smartunpack(env_json_str, fileserver_download_handler=download))
    assert_values(received["payloads"], sent)

    store[env["payloads"][0]["data"]] = bytes(4999) + b"x"  # same size, other bytes
    with pytest.raises(natsbridge.IntegrityError) as e:
        run(natsbridge.smartunpack(env_json_str, fileserver_download_handler=download))
    assert e.value.kind == "integrity" and 'payload "big"' in str(e.value)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("data, needle", [
    ([("x", "v", "spreadsheet")], "unknown payload type 'spreadsheet'"),
    ([("x", 42, "text")], "text must be a str"),
    ([("x", {"k": object()}, "dictionary")], "not JSON serializable"),
    ([("x", "not bytes", "binary")], "bytes, bytearray or memoryview"),
    ([("x", [1, 2], "arrowtable")], "pyarrow.Table"),
    ([("x", "v")], "(dataname, value, type)"),
    ("not a list", "list of (dataname, value, type)"),
])
def test_a_bad_payload_is_a_clear_error_before_anything_is_sent(data, needle):
    with pytest.raises(natsbridge.InvalidInputError) as e:
        run(natsbridge.smartpack("s", data, is_publish=False))
    assert needle in str(e.value)
    assert isinstance(e.value, natsbridge.Error) and isinstance(e.value, ValueError)
    assert e.value.kind == "invalid_input"
    # The interpreter and the package are fine afterwards.
    assert run(natsbridge.smartpack("s", [("t", "ok", "text")], is_publish=False))[0]["payloads"][0]["size"] == 2


def test_malformed_envelopes_are_malformed_errors_naming_what_is_wrong():
    good = json.loads(run(natsbridge.smartpack("s", [("t", "hello", "text")], is_publish=False))[1])
    bad_base64 = json.loads(json.dumps(good))
    bad_base64["payloads"][0]["data"] = "@@@not base64@@@"
    for message in ("not json", b"{\"msg_id\": 1}", json.dumps(bad_base64)):
        with pytest.raises(natsbridge.MalformedError) as e:
            run(natsbridge.smartunpack(message))
        assert e.value.layer == "envelope" and e.value.kind in ("not_json", "malformed", "base64")
    with pytest.raises(natsbridge.InvalidInputError):
        run(natsbridge.smartunpack(12345))
    with pytest.raises(natsbridge.InvalidInputError):
        run(natsbridge.smartunpack("{}", max_retries=-1))


def test_one_payload_that_does_not_decode_does_not_cost_the_others():
    env, _ = run(natsbridge.smartpack("s", [("good", "fine", "text"), ("bad", {"a": 1}, "dictionary"),
                                            ("also", b"\x01", "binary")], is_publish=False))
    env["payloads"][1]["data"] = base64.b64encode(b"{not json").decode()
    env["payloads"][1]["size"] = len(b"{not json")
    with pytest.raises(natsbridge.MalformedError) as e:
        run(natsbridge.smartunpack(json.dumps(env)))
    assert "'bad'" in str(e.value) and e.value.kind == "decode"
    assert e.value.envelope["payloads"] == [("good", "fine", "text"), ("bad", b"{not json", "dictionary"),
                                            ("also", b"\x01", "binary")]
    assert len(e.value.errors) == 1


def test_a_tampered_link_is_an_integrity_error(fileserver_url):
    env, _ = run(natsbridge.smartpack("s", [("big", bytes(3000), "binary")], fileserver_url=fileserver_url,
                                      size_threshold=1000, is_publish=False))
    env["payloads"][0]["sha256"] = "0" * 64
    with pytest.raises(natsbridge.IntegrityError) as e:
        run(natsbridge.smartunpack(json.dumps(env), max_retries=0))
    assert e.value.layer == "claimcheck"


def test_a_one_shot_link_fetched_twice_is_not_found(fileserver_url):
    _, env_json_str = run(natsbridge.smartpack("s", [("big", bytes(3000), "binary")], fileserver_url=fileserver_url,
                                               size_threshold=1000, is_publish=False))
    run(natsbridge.smartunpack(env_json_str))
    with pytest.raises(natsbridge.NotFoundError) as e:
        run(natsbridge.smartunpack(env_json_str, max_retries=0))
    assert e.value.kind in ("not_found", "gone")


def test_an_envelope_that_cannot_fit_is_payload_too_large():
    async def never(fileserver_url, dataname, data):
        raise AssertionError("nothing is at the threshold: no upload")

    with pytest.raises(natsbridge.PayloadTooLargeError) as e:
        run(natsbridge.smartpack("s", [("x", bytes(2_000_000), "binary")], fileserver_upload_handler=never,
                                 size_threshold=10**9, is_publish=False))
    assert e.value.kind == "payload_too_large"


def test_an_unreachable_broker_is_a_nats_error():
    port = __import__("conftest").free_port()
    with pytest.raises(natsbridge.Error) as e:
        run(natsbridge.smartpack("s", [("t", "x", "text")], broker_url=f"nats://127.0.0.1:{port}"))
    assert e.value.layer == "nats"


def test_the_default_handlers_are_usable_alone(fileserver_url):
    url = run(natsbridge.plik_oneshot_upload(fileserver_url, "file.bin", b"abc"))
    assert url.startswith(fileserver_url)
    assert run(natsbridge.fetch_with_backoff(url)) == b"abc"
    with pytest.raises(natsbridge.InvalidInputError):
        run(natsbridge.fetch_with_backoff("file:///etc/passwd", max_retries=0))


def test_the_interpreter_exits_cleanly_after_every_kind_of_call(nats_url, fileserver_url):
    """No thread of the Rust core calls into Python while it shuts down (with asyncio futures resolved
    from the runtime's threads, about one exit in three crashed): a program that packs, publishes on
    the package's connection, uploads and downloads, then exits, exits 0, every time."""
    import subprocess
    import sys

    program = f"""
import asyncio, natsbridge
async def main():
    env, s = await natsbridge.smartpack("py.exit", [("t", "x", "text"), ("b", bytes(5000), "binary")],
                                        broker_url={nats_url!r}, fileserver_url={fileserver_url!r},
                                        size_threshold=1000)
    assert (await natsbridge.smartunpack(s))["payloads"][1][1] == bytes(5000)
asyncio.run(main())
"""
    for _ in range(8):
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]


def test_transfers_release_the_gil_and_leave_the_event_loop_free():
    """A download from a server that is this very event loop answers: it can only finish if the call
    neither holds the GIL nor blocks the loop while it waits."""

    async def main():
        async def answer(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        assert await natsbridge.fetch_with_backoff(f"http://127.0.0.1:{port}/f", max_retries=0) == b"abc"
        server.close()
        await server.wait_closed()

    run(main())


def test_star_import_leaves_the_builtin_timeout_error_alone():
    namespace = {}
    exec("from natsbridge import *", namespace)
    assert "TimeoutError" not in namespace and "Error" in namespace and "smartpack" in namespace
    assert issubclass(natsbridge.TimeoutError, TimeoutError) and issubclass(natsbridge.TimeoutError, natsbridge.Error)
