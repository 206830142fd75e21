"""zerocos for Python: a node that speaks the zerocos wire protocol (docs/protocol.md)."""
from .cluster import Cluster
from .curve import default_secret, derive_keys
from .node import CallTimeout, Message, Node, NodeDownError, NoProcError, Process, ZerocosError
from .wire import ActorHandle, LocatedValue, ObjectRef, Pid, ProtocolError, RemoteFunction, RemoteName

__all__ = [
    "ActorHandle", "CallTimeout", "Cluster", "LocatedValue", "Message", "Node", "NodeDownError", "NoProcError",
    "ObjectRef", "Pid", "Process", "ProtocolError", "RemoteFunction", "RemoteName", "ZerocosError",
    "default_secret", "derive_keys",
]
