"""Frames, envelopes and extension types of the zerocos wire protocol (docs/protocol.md §4-§6, §11)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import msgpack

MAGIC = b"ZC"
PROTOCOL_VERSION = 2
FRAME_TYPE_BATCH = 1
HEADER = MAGIC + bytes([PROTOCOL_VERSION, FRAME_TYPE_BATCH])
BLOB_FLAG = 0x40
MAX_NODE_ID_LENGTH = 255

# Envelope kinds (§5).
SEND, CALL, REPLY, LINK, UNLINK, EXIT, MONITOR, DEMONITOR, DOWN, DEAD_LETTER = range(1, 11)
# Where each blob-capable kind keeps its payload.
PAYLOAD_INDEX = {SEND: 3, CALL: 4, REPLY: 4, DEAD_LETTER: 4}
ARITY = {SEND: 4, CALL: 5, REPLY: 5, LINK: 3, UNLINK: 3, EXIT: 5, MONITOR: 4, DEMONITOR: 4, DOWN: 5, DEAD_LETTER: 5}

EXT_OBJECT_REF = 20
EXT_LOCATED_VALUE = 21
EXT_REMOTE_FUNCTION = 22
EXT_ACTOR_HANDLE = 23


class ProtocolError(Exception):
    """A batch that breaks the protocol; `reason` is the counter key of §8."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Pid:
    """A process: its node's id and its id there (0 is the node itself)."""

    node: str
    id: int


@dataclass(frozen=True)
class RemoteName:
    """A process registered as `name` on `node`."""

    name: str
    node: str


Address = Union[Pid, RemoteName]


@dataclass(frozen=True)
class ObjectRef:
    """Extension 20: a value owned by `owner` (a task result or a `put`)."""

    id: int
    owner: str


@dataclass(frozen=True)
class LocatedValue:
    """Extension 21: an argument held on node `at` under `key`, which the worker fetches itself."""

    at: str
    key: str


@dataclass(frozen=True)
class RemoteFunction:
    """Extension 22: shipped code (`code`), its task options and origin node."""

    code: Any
    options: Any
    origin: Optional[str]


@dataclass(frozen=True)
class ActorHandle:
    """Extension 23: an actor's pid and registered name."""

    node: str
    id: int
    name: Optional[str]


def _is_uint(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, float) and value.is_integer() and value >= 0
    )


def _default(value: Any) -> Any:
    """msgpack `default`: the extension types, each a standard ext whose data is a msgpack array."""
    if isinstance(value, ObjectRef):
        return msgpack.ExtType(EXT_OBJECT_REF, packb([value.id, value.owner]))
    if isinstance(value, LocatedValue):
        return msgpack.ExtType(EXT_LOCATED_VALUE, packb([value.at, value.key]))
    if isinstance(value, RemoteFunction):
        return msgpack.ExtType(EXT_REMOTE_FUNCTION, packb([value.code, value.options, value.origin]))
    if isinstance(value, ActorHandle):
        return msgpack.ExtType(EXT_ACTOR_HANDLE, packb([value.node, value.id, value.name]))
    if isinstance(value, (Pid,)):
        return {"node": value.node, "id": value.id}
    raise TypeError(f"cannot encode {type(value).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code not in (EXT_OBJECT_REF, EXT_LOCATED_VALUE, EXT_REMOTE_FUNCTION, EXT_ACTOR_HANDLE):
        return msgpack.ExtType(code, data)
    if data == b"\x00":
        raise ProtocolError("version", f"extension {code} is in the protocol version 1 form")
    items = unpackb(data)
    if not isinstance(items, list):
        raise ProtocolError("shape", f"extension {code}: data is not an array")
    if code == EXT_OBJECT_REF and len(items) == 2 and _is_uint(items[0]) and isinstance(items[1], str):
        return ObjectRef(int(items[0]), items[1])
    if code == EXT_LOCATED_VALUE and len(items) == 2 and all(isinstance(x, str) for x in items):
        return LocatedValue(items[0], items[1])
    if code == EXT_REMOTE_FUNCTION and len(items) == 3:
        return RemoteFunction(items[0], items[1], items[2])
    if code == EXT_ACTOR_HANDLE and len(items) == 3 and isinstance(items[0], str) and _is_uint(items[1]):
        return ActorHandle(items[0], int(items[1]), items[2])
    raise ProtocolError("shape", f"extension {code}: data has the wrong shape")


def packb(value: Any) -> bytes:
    """Plain msgpack (str as str, bytes as bin) with the zerocos extension types."""
    return msgpack.packb(value, default=_default, use_bin_type=True)


def unpackb(data: bytes) -> Any:
    """Decodes exactly one msgpack value (trailing bytes are an error), extension types included."""
    # Timestamps (ext -1) stay msgpack.Timestamp; map keys may be any type, as the TS decoder allows.
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def pid_map(pid: Pid) -> dict:
    """A pid as payloads carry it: a map with the keys `node` and `id`."""
    return {"node": pid.node, "id": pid.id}


def as_pid(value: Any) -> Optional[Pid]:
    """The pid a payload map stands for, or None."""
    if isinstance(value, dict) and isinstance(value.get("node"), str) and _is_uint(value.get("id")):
        return Pid(value["node"], int(value["id"]))
    return None


def encode_batch(from_node: str, to_node: str, envelopes: Sequence[List[Any]]) -> List[bytes]:
    """The frames `[header, body, ...blobs]` of one batch; a payload of type bytes goes inline as bin."""
    return [HEADER, packb([from_node, to_node, *envelopes])]


def decode_batch(frames: Sequence[bytes]) -> Tuple[str, str, List[List[Any]]]:
    """`(fromNode, toNode, envelopes)` of a batch (routing id removed); ProtocolError on any defect."""
    if len(frames) < 2:
        raise ProtocolError("truncated", "fewer than 2 frames")
    header = frames[0]
    if len(header) != 4 or header[:2] != MAGIC:
        raise ProtocolError("magic", "not a zerocos header")
    if header[2] != PROTOCOL_VERSION:
        raise ProtocolError("version", f"protocol version {header[2]} (this node speaks {PROTOCOL_VERSION})")
    if header[3] != FRAME_TYPE_BATCH:
        raise ProtocolError("frame-type", f"frame type {header[3]}")
    try:
        body = unpackb(frames[1])
    except ProtocolError:
        raise
    except Exception as error:  # msgpack raises several types (ExtraData, ValueError, ...)
        raise ProtocolError("decode", f"body is not one msgpack value: {error}") from error
    if not isinstance(body, list) or len(body) < 2 or not all(isinstance(x, str) for x in body[:2]):
        raise ProtocolError("shape", "body is not [fromNode, toNode, ...envelopes]")
    if len(body[0]) > MAX_NODE_ID_LENGTH or "@" not in body[0]:
        raise ProtocolError("shape", "fromNode is not a node id")
    envelopes: List[List[Any]] = []
    blobs = list(frames[2:])
    for index, envelope in enumerate(body[2:]):
        if not isinstance(envelope, list) or not envelope or not _is_uint(envelope[0]):
            raise ProtocolError("shape", f"envelope {index} is not an array starting with a kind")
        kind = int(envelope[0])
        plain = kind & ~BLOB_FLAG
        if plain not in ARITY or len(envelope) != ARITY[plain]:
            raise ProtocolError("shape", f"envelope {index}: bad kind or arity")
        envelope[0] = plain
        if kind & BLOB_FLAG:
            if plain not in PAYLOAD_INDEX or not blobs:
                raise ProtocolError("truncated" if plain in PAYLOAD_INDEX else "shape", f"envelope {index}: bad blob")
            envelope[PAYLOAD_INDEX[plain]] = blobs.pop(0)
        envelopes.append(envelope)
    if blobs:
        raise ProtocolError("shape", "blob frames not referred to by any envelope")
    return body[0], body[1], envelopes


def parse_node_id(node_id: str) -> Optional[Tuple[str, str, str]]:
    """`(name, incarnation, endpoint)` of `name:incarnation@endpoint`, or None."""
    if len(node_id) > MAX_NODE_ID_LENGTH or "@" not in node_id:
        return None
    head, endpoint = node_id.split("@", 1)
    if ":" not in head or "://" not in endpoint:
        return None
    name, incarnation = head.split(":", 1)
    return name, incarnation, endpoint


def shipped_source(source: str, name: str = "task") -> dict:
    """A self-contained JavaScript function as `run` ships it (§11.2): `source` is a JS expression."""
    return {"kind": "source", "source": source, "name": name, "hash": hashlib.sha256(source.encode()).hexdigest()}
