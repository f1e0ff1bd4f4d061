"""The seeds' ``msghandler`` namespace: ``from natsbridge import msghandler`` then
``msghandler.smartpack(...)``, or ``from natsbridge.msghandler import smartpack``."""

from . import (  # noqa: F401
    fetch_with_backoff,
    plik_oneshot_upload,
    smartpack,
    smartreceive,
    smartsend,
    smartunpack,
)

__all__ = ["smartpack", "smartunpack", "smartsend", "smartreceive", "plik_oneshot_upload", "fetch_with_backoff"]
