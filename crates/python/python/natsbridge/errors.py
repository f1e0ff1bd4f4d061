"""The exceptions of natsbridge: one base class, :class:`Error`, and a subclass per kind of failure.

Every exception the package raises for bad input or a failed transfer is an :class:`Error`. Its
``kind`` names the Rust core's error kind in snake case (``"integrity"``, ``"not_found"``,
``"payload_too_large"``, ``"malformed"``, ...) and ``layer`` the part that failed (``"envelope"``,
``"claimcheck"`` for uploads and downloads, ``"nats"``, ``"input"`` for a caller's argument,
``"payload"`` for a value that does not decode). The message carries the whole cause chain.
"""

from __future__ import annotations

import builtins
from typing import Any, List, Optional

__all__ = [
    "Error",
    "InvalidInputError",
    "MalformedError",
    "IntegrityError",
    "NotFoundError",
    "TimeoutError",
    "PayloadTooLargeError",
    "TransferError",
    "NatsError",
]


class Error(Exception):
    """Base class of every natsbridge exception."""

    kind: str = "error"
    layer: str = "other"

    def __init__(self, message: str, *, kind: Optional[str] = None, layer: Optional[str] = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        if layer is not None:
            self.layer = layer


class InvalidInputError(Error, ValueError):
    """An argument the call cannot use: an unknown payload type, a value of the wrong Python type, a
    refused URL or subject. Raised before anything is uploaded or published. Not retried."""

    kind = "invalid_input"
    layer = "input"


class MalformedError(Error, ValueError):
    """A received envelope or payload that does not parse (not JSON, a missing field, bad base64, a
    payload whose bytes do not decode as its type). Not retried.

    When payloads of an envelope fail to decode, ``envelope`` is the envelope dict with every other
    payload decoded (the failed ones keep their raw bytes) and ``errors`` the per-payload errors: one
    bad payload does not cost the others."""

    kind = "malformed"
    layer = "envelope"
    envelope: Optional[dict] = None
    errors: List["Error"] = []


class IntegrityError(Error):
    """A downloaded payload whose size or SHA-256 is not the one its record declares. Not retried."""

    kind = "integrity"
    layer = "claimcheck"


class NotFoundError(Error):
    """A link whose file is not (or no longer) on the server, e.g. a one-shot file already fetched.
    Not retried."""

    kind = "not_found"
    layer = "claimcheck"


class TimeoutError(Error, builtins.TimeoutError):
    """A transfer or NATS operation that ran out of time (after the retries)."""

    kind = "timed_out"


class PayloadTooLargeError(Error, ValueError):
    """An envelope or download over its size limit (the server's max_payload, the download cap)."""

    kind = "payload_too_large"


class TransferError(Error):
    """An upload or download that failed after its retries (connection refused, HTTP errors, a bad
    answer of the file server)."""

    layer = "claimcheck"


class NatsError(Error):
    """NATS failed: connect, authorization, TLS, a closed connection, no responders."""

    layer = "nats"


def _payload_error(dataname: str, payload_type: str, cause: BaseException) -> MalformedError:
    """A payload whose bytes do not decode as its type."""
    e = MalformedError(f"payload {dataname!r}: not a valid {payload_type}: {type(cause).__name__}: {cause}",
                       kind="decode", layer="payload")
    e.__cause__ = cause
    return e


def _input_error(message: str, cause: Any = None) -> InvalidInputError:
    e = InvalidInputError(message)
    if isinstance(cause, BaseException):
        e.__cause__ = cause
    return e
