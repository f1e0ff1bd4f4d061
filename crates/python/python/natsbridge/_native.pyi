"""Type stubs of the extension module (private to the package: use natsbridge's functions).

Each function blocks with the GIL released while the Rust core works; the package awaits them
through asyncio's default executor."""

from typing import Any, List, Mapping, Optional, Tuple, Union

DEFAULT_MAX_PAYLOAD: int

_Payload = Tuple[str, bytes, str, Optional[str]]
_Record = Tuple[str, str, str, Optional[bytes], Optional[str], Optional[int], Optional[str]]

def pack(subject: str, payloads: List[_Payload], options: Mapping[str, Any], *, upload: bool, publish: bool,
         max_payload: int) -> str: ...
def unpack(message: Union[bytes, bytearray], *, download: bool, max_retries: int, base_delay: int,
           max_delay: int) -> Tuple[str, List[_Record]]: ...
def upload(fileserver_url: str, dataname: str, data: bytes) -> str: ...
def download(url: str, max_retries: int, base_delay: int, max_delay: int) -> bytes: ...
def verify(dataname: str, data: bytes, size: Optional[int], sha256: Optional[str]) -> None: ...
def close() -> None: ...
