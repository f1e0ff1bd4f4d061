"""``natsbridge.Bridge``: a connection of its own speaking natsbridge envelopes, in asyncio's idiom.

What the seeds' Python does not have: connect with natscli's options or one of its contexts, then
``smartsend``, ``async for envelope in bridge.subscribe(subject)``, ``request`` and an answering
loop (``async for req in bridge.requests(subject)`` ... ``await req.respond(data)``),
``jetstream_send`` and a durable JetStream consumer (``bridge.consume(stream, durable)``)::

    async with await natsbridge.Bridge.connect("nats://localhost:4222",
                                               fileserver="http://localhost:8080") as bridge:
        await bridge.smartsend("greetings", [("msg", "hello", "text")])
        async for envelope in bridge.subscribe("greetings"):
            if isinstance(envelope, natsbridge.Error):   # a bad message: the iteration goes on
                continue
            print(envelope["payloads"])

Each call runs on the Rust core's own runtime with the GIL released and is awaited through
asyncio's default executor, as the module's functions are; a subscription is read the same way,
one short wait at a time, on threads of its own (a few open subscriptions must not hold every
thread of the default executor, which asyncio's DNS lookups use too), so no thread of the Rust
runtime ever calls into Python.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import weakref
from typing import Any, Dict, Generator, List, NamedTuple, Optional, Tuple, Union

from . import _native
from . import _call, _envelope, _options, _payloads, _str, Payloads
from .errors import Error, NatsError, _input_error

#: How long one read of a subscription waits on the Rust side before handing back (milliseconds):
#: bounds how long an abandoned iteration keeps an executor thread.
_WAIT_MS = 200

#: The threads subscriptions wait on. Not asyncio's default executor: it has a handful of threads
#: (CPUs + 4), and asyncio's own DNS lookups and every other run_in_executor wait for one, so a few
#: open subscriptions would hold them all. Threads are started as reads need them, and joined at
#: interpreter exit before anything is torn down (each read returns within _WAIT_MS).
_READS = concurrent.futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="natsbridge-read")


async def _read(native: Any) -> Any:
    """One read of a subscription (``NativeSubscription.next``) on the reading threads."""
    return await asyncio.get_running_loop().run_in_executor(_READS, native.next, _WAIT_MS)


class JetStreamAck(NamedTuple):
    """The stream's acknowledgement of a :meth:`Bridge.jetstream_send`."""

    stream: str
    sequence: int
    #: True when the stream already held a message with this ``msg_id`` and dropped this one.
    duplicate: bool


def _bridge_options(*args: Any) -> dict:
    """:func:`natsbridge._options` for a bridge: it writes its own URL (without credentials) as
    ``broker_url``, and its file server is the one given to :meth:`Bridge.connect`."""
    return _options("", "", *args)


def _send_args(data: Payloads, options: dict) -> Tuple[list, dict]:
    """The payloads as the Rust core takes them (every one serialized first: a bad one raises before
    anything is sent) and the options."""
    return [(name, raw, kind, None) for name, raw, kind in _payloads(data)], options


class Bridge:
    """A NATS connection speaking natsbridge envelopes, on the Rust core (``natsbridge::Bridge``).

    Make one with :meth:`connect`; close it with :meth:`close` or use it as an async context
    manager. Every call checks and retries as the Rust peer does: link payloads go to the store
    given to :meth:`connect` (a Plik file server, HTTP PUT, S3 or the JetStream object store) and
    are downloaded, size and SHA-256 checked, from the origins :meth:`connect` says.
    """

    def __init__(self, native: Any, url: Optional[str]) -> None:
        self._native = native
        self._url = url
        self._closed = False
        self._subscriptions: "weakref.WeakSet[Subscription]" = weakref.WeakSet()

    @property
    def _live(self) -> Any:
        """The Rust bridge, or :class:`natsbridge.NatsError` (``kind == "closed"``) once closed."""
        if self._closed:
            raise NatsError("this Bridge is closed", kind="closed", layer="nats")
        return self._native

    def _subscription(self, open_native: Any, args: tuple, answerable: bool) -> "Subscription":
        sub = Subscription(open_native, args, answerable=answerable)
        self._subscriptions.add(sub)
        return sub

    def __repr__(self) -> str:
        return f"<natsbridge.Bridge {self._url or 'from context'}{' closed' if self._closed else ''}>"

    @classmethod
    async def connect(cls, url: Optional[str] = None, *, fileserver: Optional[str] = None,
                      put_url: Optional[str] = None, s3_bucket: Optional[str] = None,
                      s3_endpoint: Optional[str] = None, s3_region: Optional[str] = None,
                      object_store: Optional[str] = None,
                      allow_origins: Optional[List[str]] = None, context: Optional[str] = None,
                      name: Optional[str] = None, inbox_prefix: Optional[str] = None,
                      user: Optional[str] = None, password: Optional[str] = None,
                      token: Optional[str] = None, nkey: Optional[str] = None, creds: Optional[str] = None,
                      tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                      tls_key: Optional[str] = None) -> "Bridge":
        """Connects to ``url`` (``nats://host:port``, several comma-separated; credentials in it are
        never written into envelopes), or with natscli's ``context`` (its servers, credentials and
        TLS files; not both). With neither, natscli's selected context, else
        ``nats://localhost:4222``.

        ``fileserver``: a Plik-compatible file server for payloads of ``size_threshold`` bytes or
        more (without one, every payload must fit the envelope); links are then downloaded from its
        origin only. ``put_url``: an HTTP PUT store instead, a URL template with ``{uuid}`` and
        ``{name}`` (one PUT per payload; the URL is the link; ``natsbridge fileserver`` serves
        ``/put/{uuid}/{name}``). ``s3_bucket``: an S3 bucket instead (presigned GET links;
        credentials and defaults from the standard ``AWS_*`` variables; ``s3_endpoint`` and
        ``s3_region`` for storage other than AWS). ``object_store``: a JetStream object store bucket
        instead (``nats-os://`` links, read by Rust peers only). With ``put_url``, ``s3_endpoint`` or
        ``allow_origins`` (a list of ``scheme://host:port`` origins), links are downloaded from the
        stores' origins and those only; with no store and no ``allow_origins``, from any http(s)
        origin, as the seeds do.

        The rest are natscli's options of the same names: the connection ``name``,
        ``inbox_prefix``, ``user`` / ``password``, ``token``, an ``nkey`` seed, a ``creds`` file,
        ``tls_ca``, and ``tls_cert`` with ``tls_key``.

        Raises :class:`natsbridge.NatsError` when the server cannot be reached,
        :class:`natsbridge.InvalidInputError` for bad options.
        """
        given: Dict[str, Any] = {
            "url": url, "context": context, "fileserver": fileserver, "put_url": put_url,
            "s3_bucket": s3_bucket, "s3_endpoint": s3_endpoint, "s3_region": s3_region,
            "object_store": object_store, "name": name, "inbox_prefix": inbox_prefix, "user": user,
            "password": password, "token": token, "nkey": nkey, "creds": creds, "tls_ca": tls_ca,
            "tls_cert": tls_cert, "tls_key": tls_key}
        for key, value in given.items():
            if value is not None:
                _str(key, value)
        if allow_origins is not None:
            if isinstance(allow_origins, str) or not isinstance(allow_origins, (list, tuple)):
                raise _input_error(f"allow_origins must be a list of str, not {type(allow_origins).__name__}")
            given["allow_origins"] = [_str("allow_origins[]", o) for o in allow_origins]
        else:
            given["allow_origins"] = None
        native = await _call(_native.NativeBridge.connect, given)
        return cls(native, url)

    async def close(self) -> None:
        """Flushes what was published, ends the subscriptions made from this bridge and lets the
        connection go; a later call raises :class:`natsbridge.NatsError` (``kind == "closed"``).
        Idempotent."""
        if not self._closed:
            self._closed = True
            for sub in list(self._subscriptions):
                await sub.close()
            await _call(self._native.close)

    async def __aenter__(self) -> "Bridge":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def smartsend(self, subject: str, data: Payloads, *, size_threshold: int = 1_000_000,
                        correlation_id: Optional[str] = None, msg_purpose: str = "chat",
                        sender_name: str = "NATSBridge", receiver_name: str = "", receiver_id: str = "",
                        reply_to: str = "", reply_to_msg_id: str = "", msg_id: Optional[str] = None,
                        sender_id: Optional[str] = None) -> Tuple[dict, str]:
        """Publishes ``data`` (the seeds' ``(dataname, value, type)`` tuples) to ``subject`` as one
        envelope, with the seeds' options and :func:`natsbridge.smartsend`'s defaults. Returns
        ``(env, env_json_str)`` as :func:`natsbridge.smartsend` does."""
        payloads, options = _send_args(data, _bridge_options(
            size_threshold, correlation_id, msg_purpose, sender_name, receiver_name, receiver_id,
            reply_to, reply_to_msg_id, msg_id, sender_id))
        json_str, _ = await _call(self._live.send, _str("subject", subject), payloads, options,
                                  jetstream=False)
        return _parsed(json_str), json_str

    async def jetstream_send(self, subject: str, data: Payloads, *, size_threshold: int = 1_000_000,
                             correlation_id: Optional[str] = None, msg_purpose: str = "chat",
                             sender_name: str = "NATSBridge", receiver_name: str = "",
                             receiver_id: str = "", reply_to: str = "", reply_to_msg_id: str = "",
                             msg_id: Optional[str] = None,
                             sender_id: Optional[str] = None) -> Tuple[dict, str, JetStreamAck]:
        """Publishes the envelope to the JetStream stream that captures ``subject`` and waits for
        its ack. The envelope's ``msg_id`` is sent as ``Nats-Msg-Id`` and a publish that timed out
        is retried with it, so the stream keeps the message once. Returns ``(env, env_json_str,
        ack)``; raises :class:`natsbridge.NotFoundError` when no stream captures ``subject``."""
        payloads, options = _send_args(data, _bridge_options(
            size_threshold, correlation_id, msg_purpose, sender_name, receiver_name, receiver_id,
            reply_to, reply_to_msg_id, msg_id, sender_id))
        json_str, ack = await _call(self._live.send, _str("subject", subject), payloads, options,
                                    jetstream=True)
        return _parsed(json_str), json_str, JetStreamAck(*ack)

    async def request(self, subject: str, data: Payloads, *, timeout: float = 5.0,
                      size_threshold: int = 1_000_000, correlation_id: Optional[str] = None,
                      msg_purpose: str = "request", sender_name: str = "NATSBridge",
                      receiver_name: str = "", receiver_id: str = "", msg_id: Optional[str] = None,
                      sender_id: Optional[str] = None) -> dict:
        """Sends ``data`` to ``subject`` as a request and returns the answer as
        :func:`natsbridge.smartunpack` does (links fetched and checked). The request's ``reply_to``
        is a fresh inbox, so responders written from the seeds (which answer ``reply_to``) and NATS
        responders (which answer the reply inbox) both reach it.

        Raises :class:`natsbridge.TimeoutError` when no answer comes within ``timeout`` seconds,
        :class:`natsbridge.NatsError` (``kind == "no_responders"``) when nobody listens.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
                or timeout <= 0:
            raise _input_error(f"timeout must be a positive number of seconds, not {timeout!r}")
        payloads, options = _send_args(data, _bridge_options(
            size_threshold, correlation_id, msg_purpose, sender_name, receiver_name, receiver_id, "", "",
            msg_id, sender_id))
        unpacked = await _call(self._live.request, _str("subject", subject), payloads, options,
                               max(1, round(timeout * 1000)))
        return _envelope(unpacked)

    def subscribe(self, subject: str, *, queue: Optional[str] = None) -> "Subscription":
        """Subscribes to ``subject`` (wildcards allowed; in the queue group ``queue`` when given,
        each message then going to one member): ``async for envelope in bridge.subscribe(subject)``
        yields each message as :func:`natsbridge.smartunpack` returns it, links fetched and checked.
        ``await bridge.subscribe(subject)`` subscribes at once, and returns once the server has the
        subscription (iterating subscribes at the first step otherwise): await it before anything
        publishes what it must see."""
        return self._subscription(self._live.subscribe, (_str("subject", subject), _queue(queue)), False)

    def requests(self, subject: str, *, queue: Optional[str] = None) -> "Subscription":
        """:meth:`subscribe`, yielding each message as a :class:`Request` to answer with
        :meth:`Request.respond`."""
        return self._subscription(self._live.subscribe, (_str("subject", subject), _queue(queue)), True)

    async def service(self, name: str, version: str, *, description: str = "",
                      metadata: Optional[Dict[str, str]] = None) -> "Service":
        """Registers a NATS service (the micro protocol, ADR-32: ``nats micro ls`` / ``info`` /
        ``stats`` see it) named ``name`` (letters, digits, ``-``, ``_``) at SemVer ``version``. Its
        endpoints (:meth:`Service.endpoint`) yield :class:`Request` objects; every answer is counted
        in the service's stats. It answers until the bridge is closed or it is garbage collected
        with its endpoints."""
        if metadata is not None and not (isinstance(metadata, dict)
                                         and all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items())):
            raise _input_error("metadata must be a dict of str to str")
        native = await _call(self._live.service, _str("name", name), _str("version", version),
                             _str("description", description), metadata or {})
        return Service(self, native)

    def consume(self, stream: str, durable: str) -> "Subscription":
        """A JetStream durable pull consumer ``durable`` on ``stream`` (created if missing): yields
        the stream's envelopes as :meth:`subscribe` does, each acked once received and decoded
        (a message that fails is naked: the stream delivers it again after a backoff, and it is
        yielded as the error)."""
        return self._subscription(self._live.consume, (_str("stream", stream), _str("durable", durable)), False)


def _queue(queue: Optional[str]) -> Optional[str]:
    return None if queue is None else _str("queue", queue)


def _parsed(json_str: str) -> dict:
    return json.loads(json_str)


class Service:
    """A registered NATS service (from :meth:`Bridge.service`)."""

    def __init__(self, bridge: Bridge, native: Any) -> None:
        self._bridge = bridge
        self._native = native
        #: The service instance's id (the ``ID`` of ``$SRV.PING.NAME.ID``).
        self.id: str = native.id()

    def endpoint(self, subject: str) -> "Subscription":
        """The requests to ``subject`` (in the services' queue group ``q``), as :meth:`Bridge.requests`
        yields them: ``async for req in service.endpoint(subject)`` ... ``await req.respond(data)``
        or ``await req.respond_error(code, description, data)``."""
        return self._bridge._subscription(self._native.endpoint, (_str("subject", subject),), True)


class Request:
    """A received envelope that can be answered (from :meth:`Bridge.requests`)."""

    def __init__(self, native: Any, subject: str, envelope: dict) -> None:
        self._native = native
        #: The subject it arrived on.
        self.subject = subject
        #: The envelope as :func:`natsbridge.smartunpack` returns it.
        self.envelope = envelope

    def __repr__(self) -> str:
        return f"<natsbridge.Request on {self.subject} msg_id={self.envelope.get('msg_id')!r}>"

    async def respond(self, data: Payloads, *, size_threshold: int = 1_000_000, msg_purpose: str = "reply",
                      sender_name: str = "NATSBridge", msg_id: Optional[str] = None,
                      sender_id: Optional[str] = None) -> Optional[Tuple[dict, str]]:
        """Answers with ``data``: on NATS's reply inbox when it came as a NATS request, else on its
        ``reply_to`` subject (the seeds' convention), carrying the request's ``correlation_id`` and
        ``reply_to_msg_id`` = its ``msg_id``. Returns ``(env, env_json_str)`` as sent, or ``None``
        when the request asked for no answer."""
        return await self._respond(data, None, size_threshold, msg_purpose, sender_name, msg_id, sender_id)

    async def respond_error(self, code: int, description: str, data: Payloads, *,
                            size_threshold: int = 1_000_000, msg_purpose: str = "reply",
                            sender_name: str = "NATSBridge", msg_id: Optional[str] = None,
                            sender_id: Optional[str] = None) -> Optional[Tuple[dict, str]]:
        """A service endpoint's error answer: :meth:`respond`, with the ``Nats-Service-Error:
        description`` and ``Nats-Service-Error-Code: code`` headers, counted as an error in the
        service's stats (the payloads still go). Raises :class:`natsbridge.InvalidInputError` for a
        request of :meth:`Bridge.requests`, which is no service's."""
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < 65536:
            raise _input_error(f"code must be an int from 0 to 65535, not {code!r}")
        error = (code, _str("description", description))
        return await self._respond(data, error, size_threshold, msg_purpose, sender_name, msg_id, sender_id)

    async def _respond(self, data: Payloads, error: Optional[Tuple[int, str]], size_threshold: int,
                       msg_purpose: str, sender_name: str, msg_id: Optional[str],
                       sender_id: Optional[str]) -> Optional[Tuple[dict, str]]:
        payloads, options = _send_args(data, _bridge_options(
            size_threshold, None, msg_purpose, sender_name, "", "", "", "", msg_id, sender_id))
        json_str = await _call(self._native.respond, payloads, options, error)
        return None if json_str is None else (_parsed(json_str), json_str)


class Subscription:
    """Messages of :meth:`Bridge.subscribe`, :meth:`Bridge.requests` or :meth:`Bridge.consume`, as
    an async iterator (and an async context manager that closes it).

    Each item is the envelope dict (a :class:`Request` from :meth:`Bridge.requests`), or, for a
    message that could not be read (not an envelope, a link that failed its checks, a payload that
    does not decode as its type), the :class:`natsbridge.Error` itself, **yielded, not raised**: one
    bad message never ends the iteration. The error carries ``subject`` and ``data`` (the message's
    bytes as they arrived); a :class:`natsbridge.MalformedError` for a payload that does not decode
    as its type carries ``envelope`` instead, with every other payload decoded (``data`` is
    ``None``).

    Cancel safe: a task cancelled while it waits here (``asyncio.wait_for``, a task group) loses
    nothing. The read under way goes on, and what it finds is the next iteration's first item.
    """

    def __init__(self, open_native: Any, args: tuple, *, answerable: bool) -> None:
        self._open = open_native
        self._args = args
        self._answerable = answerable
        self._native: Any = None
        self._closed = False
        #: The read under way, kept when the task waiting on it is cancelled (see the class docs).
        self._reading: "Optional[asyncio.Future[Any]]" = None

    async def _start(self) -> "Subscription":
        if self._native is None:
            self._native = await _call(self._open, *self._args)
        return self

    def __await__(self) -> Generator[Any, None, "Subscription"]:
        return self._start().__await__()

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Union[dict, Request, Error]:
        if self._closed:
            raise StopAsyncIteration
        await self._start()
        while True:
            if self._reading is None:
                self._reading = asyncio.ensure_future(_read(self._native))
            # Shielded: cancelling this task leaves the read running and its result kept.
            step = await asyncio.shield(self._reading)
            self._reading = None
            if step is None:
                if self._closed:
                    raise StopAsyncIteration
                continue
            if step is False:
                self._closed = True
                raise StopAsyncIteration
            subject, request, header_json, records, error, data = step
            if error is not None:
                return error
            try:
                envelope = _envelope((header_json, records))
            except Error as e:
                e.subject, e.data = subject, None
                return e
            return Request(request, subject, envelope) if self._answerable else envelope

    async def close(self) -> None:
        """Ends the iteration and unsubscribes (at once, or when a read under way returns, within a
        fraction of a second). Idempotent."""
        self._closed = True
        if self._native is not None:
            self._native.close()

    async def __aenter__(self) -> "Subscription":
        return await self._start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


__all__: List[str] = ["Bridge", "Service", "Subscription", "Request", "JetStreamAck"]
