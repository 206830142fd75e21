"""A zerocos node in Python: one ROUTER in, one DEALER per peer out (docs/protocol.md §3-§7).

Its DEALERs set a zerocos routing id and are read too (§3, rule 2): a node they reach answers
on that connection, so a pair with a TypeScript node needs one connection, not two.

Single-threaded: nothing happens between calls. `receive`, `call` and `serve` pump the sockets
(deliver envelopes, answer services and stale batches, notice lost peers) while they wait.
"""
from __future__ import annotations

import collections
import itertools
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple, Union

import zmq
from zmq.utils.monitor import recv_monitor_message

from . import wire
from .wire import CALL, DEAD_LETTER, DEMONITOR, DOWN, EXIT, LINK, MONITOR, REPLY, SEND, UNLINK, Address, Pid, RemoteName

CONNECT_TIMEOUT_S = 5.0
_MONITORS = itertools.count(1)
HEARTBEAT_MS = {"ivl": 1000, "timeout": 3000, "ttl": 3000}
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def routing_id() -> bytes:
    """`zc` + 10 base-36 digits: tells the peer's ROUTER that this DEALER reads answers (§3, rule 2)."""
    return ("zc" + "".join(secrets.choice(_DIGITS) for _ in range(10))).encode()


class ZerocosError(Exception):
    """A failed call: `code` is the remote ErrorInfo's code (or EREMOTE), `info` the ErrorInfo."""

    def __init__(self, message: str, code: str = "EREMOTE", info: Optional[dict] = None) -> None:
        super().__init__(message)
        self.code = code
        self.info = info or {}


class NoProcError(ZerocosError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "ENOPROC")


class NodeDownError(ZerocosError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "ENODEDOWN")


class CallTimeout(ZerocosError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "ETIMEDOUT")


@dataclass
class Message:
    """A message in a mailbox: a Send's payload, a call, a Down or an exit signal."""

    kind: str  # "send", "call", "down", "exit"
    payload: Any = None
    sender: Optional[Pid] = None
    ref: int = 0
    reason: Any = None


@dataclass
class Process:
    """A Python process: a pid and a mailbox. Exit signals arrive as messages (it traps exits)."""

    node: "Node"
    id: int
    mailbox: Deque[Message] = field(default_factory=collections.deque)
    watchers: Set[Tuple[str, int, int]] = field(default_factory=set)  # (node, pid id, ref)
    links: Set[Pid] = field(default_factory=set)

    @property
    def pid(self) -> Pid:
        return Pid(self.node.id, self.id)

    def receive(self, timeout: Optional[float] = None, match: Callable[[Message], bool] = lambda m: True) -> Message:
        """The first message that matches, pumping until one arrives; TimeoutError after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for message in self.mailbox:
                if match(message):
                    self.mailbox.remove(message)
                    return message
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("no matching message")
            self.node.pump(0.1 if left is None else min(left, 0.1))

    def reply(self, call: Message, value: Any) -> None:
        """Answers `call` with status 0."""
        self.node.reply(call, value)

    def fail(self, call: Message, name: str, message: str, code: str) -> None:
        """Answers `call` with status 1 and an ErrorInfo."""
        self.node.reply(call, {"name": name, "message": message, "code": code, "nodeId": self.node.id, "pid": self.id}, 1)

    def send(self, to: Address, payload: Any) -> None:
        self.node.send(to, payload, sender=self.id)

    def monitor(self, target: Address) -> int:
        """Watches `target`; a `down` message with the returned ref arrives when it ends."""
        return self.node.monitor(target, watcher=self.id)

    def link(self, target: Pid) -> None:
        self.links.add(target)
        self.node.enqueue(target.node, [LINK, target.id, self.id])

    def exit(self, reason: Any = "normal") -> None:
        """Ends the process: its watchers get Down, its links Exit, both with `reason`."""
        self.node.end_process(self, reason)


class Peer:
    """One outbound channel (a DEALER) to a node id, or to a bare endpoint for hello."""

    def __init__(self, node: "Node", to_node: str, endpoint: str) -> None:
        self.to_node = to_node
        self.socket = node.context.socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.setsockopt(zmq.ROUTING_ID, routing_id())
        self.socket.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS["ivl"])
        self.socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_MS["timeout"])
        self.socket.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_MS["ttl"])
        if node.keys:
            public, secret = node.keys
            self.socket.curve_serverkey, self.socket.curve_publickey, self.socket.curve_secretkey = public, public, secret
        # A unique inproc address: pyzmq's default reuses the file descriptor number, which a
        # socket opened after this one closed may get again while the old endpoint lingers.
        self.monitor = self.socket.get_monitor_socket(addr=f"inproc://zerocos-monitor-{next(_MONITORS)}")
        self.connected = False
        self.opened = time.monotonic()
        self.socket.connect(endpoint)

    def close(self, linger_ms: int = 0) -> None:
        self.socket.disable_monitor()
        self.monitor.close()
        self.socket.linger = linger_ms
        self.socket.close()


class Node:
    """A zerocos node: bind a ROUTER, spawn processes, send, call, monitor (see the README)."""

    def __init__(self, name: str = "py", host: str = "127.0.0.1", port: int = 0, advertise: Optional[str] = None,
                 secret: Optional[str] = None, cluster: str = "zerocos") -> None:
        from .curve import derive_keys

        self.context = zmq.Context()
        self.keys = derive_keys(secret, cluster) if secret else None
        self.router = self.context.socket(zmq.ROUTER)
        self.router.linger = 0
        if self.keys:
            self.router.curve_server = True
            self.router.curve_secretkey = self.keys[1]
        self.router.bind(f"tcp://{host}:{port or '*'}")
        bound = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        endpoint = f"tcp://{advertise}:{bound.rsplit(':', 1)[1]}" if advertise else bound
        self.id = f"{name}:{os.urandom(6).hex()}@{endpoint}"
        self.endpoint = endpoint
        self.poller = zmq.Poller()
        self.poller.register(self.router, zmq.POLLIN)
        self.peers: Dict[str, Peer] = {}
        self.processes: Dict[int, Process] = {}
        self.names: Dict[str, int] = {}
        self.next_pid = itertools.count(1)
        self.next_ref = itertools.count(1)
        self.calls: Dict[int, Tuple[Optional[str], Optional[List[Any]]]] = {}  # ref -> (node, [status, value]) once settled
        self.watches: Dict[int, Tuple[str, int]] = {}  # ref -> (watched node, watcher pid id)
        self.down_nodes: List[Tuple[str, str]] = []  # (node id, reason), in order
        self.dead_letters: List[Tuple[Any, str, Any]] = []  # (target, reason, payload)
        self.protocol_errors: List[wire.ProtocolError] = []
        self.on_node_down: Optional[Callable[[str, str], None]] = None

    # -- processes ---------------------------------------------------------------------------------
    def spawn(self, name: Optional[str] = None) -> Process:
        process = Process(self, next(self.next_pid))
        self.processes[process.id] = process
        if name is not None:
            self.names[name] = process.id
        return process

    def end_process(self, process: Process, reason: Any) -> None:
        if self.processes.pop(process.id, None) is None:
            return
        self.names = {n: i for n, i in self.names.items() if i != process.id}
        for node, watcher, ref in process.watchers:
            self.enqueue(node, [DOWN, watcher, process.id, ref, reason])
        for link in process.links:
            self.enqueue(link.node, [EXIT, link.id, process.id, reason, 1])

    # -- sending -----------------------------------------------------------------------------------
    def enqueue(self, to_node: str, envelope: List[Any]) -> None:
        """Sends one envelope to `to_node` on its DEALER (a batch of one: batching is optional)."""
        if to_node == self.id:
            self.dispatch(self.id, [envelope])
            return
        peer = self.peer(to_node)
        if peer is not None:
            peer.socket.send_multipart(wire.encode_batch(self.id, peer.to_node, [envelope]))

    def peer(self, to_node: str) -> Optional[Peer]:
        if to_node not in self.peers:
            parsed = wire.parse_node_id(to_node)
            if parsed is None:
                return None
            self.peers[to_node] = Peer(self, to_node, parsed[2])
            self.poller.register(self.peers[to_node].monitor, zmq.POLLIN)
            self.poller.register(self.peers[to_node].socket, zmq.POLLIN)  # the peer answers on it
        return self.peers[to_node]

    @staticmethod
    def _target(to: Address) -> Tuple[str, Union[int, str]]:
        return (to.node, to.id) if isinstance(to, Pid) else (to.node, to.name)

    def send(self, to: Address, payload: Any, sender: int = 0) -> None:
        node, target = self._target(to)
        self.enqueue(node, [SEND, target, sender, payload])

    def monitor(self, target: Address, watcher: int) -> int:
        node, to = self._target(target)
        ref = next(self.next_ref)
        self.watches[ref] = (node, watcher)
        self.enqueue(node, [MONITOR, to, watcher, ref])
        return ref

    def demonitor(self, ref: int) -> None:
        watch = self.watches.pop(ref, None)
        if watch:
            self.enqueue(watch[0], [DEMONITOR, 0, watch[1], ref])

    def reply(self, call: Message, value: Any, status: int = 0) -> None:
        assert call.sender is not None
        self.enqueue(call.sender.node, [REPLY, call.sender.id, call.ref, status, value])

    def call(self, to: Address, request: Any, timeout: float = 10.0, sender: int = 0) -> Any:
        """Calls `to` and returns its answer; ZerocosError (NoProc, NodeDown, CallTimeout, remote errors)."""
        node, target = self._target(to)
        ref = next(self.next_ref)
        self.calls[ref] = (node, None)
        self.enqueue(node, [CALL, target, sender, ref, request])
        return self._await_call(ref, node, target, sender, timeout)

    def hello(self, endpoint: str, timeout: float = 5.0) -> str:
        """The id of the node listening at `endpoint` (§3, hello channel)."""
        channel = Peer(self, "", endpoint)
        self.poller.register(channel.monitor, zmq.POLLIN)
        ref = next(self.next_ref)
        self.calls[ref] = (None, None)
        channel.socket.send_multipart(wire.encode_batch(self.id, "", [[CALL, 0, 0, ref, ["hello"]]]))
        try:
            return str(self._await_call(ref, None, 0, 0, timeout))
        finally:
            self.poller.unregister(channel.monitor)
            channel.close()

    def _await_call(self, ref: int, node: Optional[str], target: Any, sender: int, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while self.calls[ref][1] is None:
            left = deadline - time.monotonic()
            if left <= 0:
                del self.calls[ref]
                if node is not None:
                    self.enqueue(node, [DEMONITOR, target, sender, ref])
                raise CallTimeout(f"call to {target!r} timed out after {timeout} s")
            self.pump(min(left, 0.1))
        status, value = self.calls.pop(ref)[1]  # type: ignore[misc]
        if status == 0:
            return value
        if status == "down":
            if value == "noproc":
                raise NoProcError(f"no process {target!r}")
            if value == "nodedown":
                raise NodeDownError(f"node {node} is down")
            raise ZerocosError(f"the callee exited: {value!r}", "EEXIT", {"reason": value})
        info = value if isinstance(value, dict) else {}
        raise ZerocosError(str(info.get("message", value)), str(info.get("code", "EREMOTE")), info)

    # -- receiving ---------------------------------------------------------------------------------
    def serve(self, seconds: float) -> None:
        """Pumps for `seconds` (answering calls to services and delivering to mailboxes)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump(deadline - time.monotonic())

    def pump(self, timeout: float) -> None:
        """Handles whatever arrives within `timeout` seconds: batches, peer events, connect timeouts."""
        ready = dict(self.poller.poll(max(0, int(timeout * 1000))))
        if self.router in ready:
            while True:
                try:
                    frames = self.router.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.receive_batch(frames[1:])
        for node_id, peer in list(self.peers.items()):
            if peer.socket in ready:
                self._read_peer(peer)
            if peer.monitor in ready:
                self._peer_events(node_id, peer)
            elif not peer.connected and time.monotonic() - peer.opened > CONNECT_TIMEOUT_S:
                self.peer_down(node_id, "unreachable")

    def _peer_events(self, node_id: str, peer: Peer) -> None:
        while peer.monitor.poll(0):
            event = recv_monitor_message(peer.monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                peer.connected = True
            elif event == zmq.EVENT_DISCONNECTED:
                return self.peer_down(node_id, "disconnected")
            elif event == zmq.EVENT_CONNECT_RETRIED and not peer.connected:
                return self.peer_down(node_id, "unreachable")  # refused: as the TS node does, at once
            elif event in (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
                return self.peer_down(node_id, "auth")

    def _read_peer(self, peer: Peer) -> None:
        """Handles what the peer sent back on this node's DEALER (a batch without a routing-id frame)."""
        while True:
            try:
                frames = peer.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.receive_batch(frames)

    def peer_down(self, node_id: str, reason: str) -> None:
        """Closes the channel and fails what depended on the node: calls, monitors, links."""
        peer = self.peers.get(node_id)
        if peer is None:
            return
        self._read_peer(peer)  # its last batches (a stopping node's Downs) come before its loss
        if self.peers.get(node_id) is not peer:
            return  # reported while those were handled
        del self.peers[node_id]
        self.poller.unregister(peer.monitor)
        self.poller.unregister(peer.socket)
        peer.close()
        self.down_nodes.append((node_id, reason))
        for ref, (node, settled) in self.calls.items():
            if node == node_id and settled is None:
                self.calls[ref] = (node, ["down", "nodedown"])
        for ref, (node, watcher) in list(self.watches.items()):
            if node == node_id:
                del self.watches[ref]
                self._deliver(watcher, Message("down", ref=ref, reason="nodedown"))
        for process in self.processes.values():
            process.watchers = {w for w in process.watchers if w[0] != node_id}
            for link in [l for l in process.links if l.node == node_id]:
                process.links.discard(link)
                process.mailbox.append(Message("exit", sender=link, reason="nodedown"))
        if self.on_node_down:
            self.on_node_down(node_id, reason)

    def receive_batch(self, frames: List[bytes]) -> None:
        try:
            from_node, to_node, envelopes = wire.decode_batch(frames)
        except wire.ProtocolError as error:
            self.protocol_errors.append(error)  # dropped whole, counted; the node keeps serving
            return
        if to_node == self.id:
            self.dispatch(from_node, envelopes)
        else:
            self._answer_stale(from_node, envelopes, hello=to_node == "")

    def _answer_stale(self, from_node: str, envelopes: List[List[Any]], hello: bool) -> None:
        """A batch for another incarnation (or a hello batch): answered as a dead pid would be (§4)."""
        for envelope in envelopes:
            kind = envelope[0]
            if hello and kind == CALL and envelope[1] == 0:
                self.dispatch(from_node, [envelope])
            elif kind == SEND:
                self.enqueue(from_node, [DEAD_LETTER, envelope[2], envelope[1], "noproc", envelope[3]])
            elif kind in (CALL, MONITOR):
                self.enqueue(from_node, [DOWN, envelope[2], envelope[1], envelope[3], "noproc"])
            elif kind == LINK:
                self.enqueue(from_node, [EXIT, envelope[2], envelope[1], "noproc", 1])

    def _process(self, target: Any) -> Optional[Process]:
        pid_id = self.names.get(target) if isinstance(target, str) else target
        return self.processes.get(pid_id) if pid_id is not None else None

    def _deliver(self, pid_id: int, message: Message) -> None:
        process = self.processes.get(pid_id)
        if process is not None:
            process.mailbox.append(message)

    def dispatch(self, from_node: str, envelopes: List[List[Any]]) -> None:
        for envelope in envelopes:
            kind, to = envelope[0], envelope[1]
            process = self._process(to)
            if kind == SEND:
                if process:
                    process.mailbox.append(Message("send", envelope[3], Pid(from_node, envelope[2])))
                else:
                    self.enqueue(from_node, [DEAD_LETTER, envelope[2], to, "noproc", envelope[3]])
            elif kind == CALL:
                self._on_call(from_node, envelope, process)
            elif kind == REPLY:
                ref = envelope[2]
                if ref in self.calls and self.calls[ref][1] is None:
                    self.calls[ref] = (self.calls[ref][0], [envelope[3], envelope[4]])
            elif kind in (LINK, MONITOR):
                if process is None:
                    answer = [EXIT, envelope[2], to, "noproc", 1] if kind == LINK else [DOWN, envelope[2], to, envelope[3], "noproc"]
                    self.enqueue(from_node, answer)
                elif kind == LINK:
                    process.links.add(Pid(from_node, envelope[2]))
                else:
                    process.watchers.add((from_node, envelope[2], envelope[3]))
                self.peer(from_node)  # watch the node, so that its loss is noticed
            elif kind == UNLINK and process:
                process.links.discard(Pid(from_node, envelope[2]))
            elif kind == DEMONITOR and process:
                process.watchers = {w for w in process.watchers if (w[0], w[2]) != (from_node, envelope[3])}
            elif kind == EXIT and process:
                if envelope[4] == 1:
                    process.links.discard(Pid(from_node, envelope[2]))
                process.mailbox.append(Message("exit", sender=Pid(from_node, envelope[2]), reason=envelope[3]))
            elif kind == DOWN:
                self._on_down(envelope)
            elif kind == DEAD_LETTER:
                self.dead_letters.append((envelope[2], envelope[3], envelope[4]))

    def _on_call(self, from_node: str, envelope: List[Any], process: Optional[Process]) -> None:
        _, to, sender, ref, request = envelope
        if to == 0:
            self.enqueue(from_node, [REPLY, sender, ref, *self._service(request)])
        elif process is None:
            self.enqueue(from_node, [DOWN, sender, to, ref, "noproc"])
        else:
            process.mailbox.append(Message("call", request, Pid(from_node, sender), ref))
            self.peer(from_node)

    def _service(self, request: Any) -> List[Any]:
        """Node services (§7.4): hello and whereis."""
        if request == ["hello"]:
            return [0, self.id]
        if isinstance(request, list) and len(request) == 2 and request[0] == "whereis":
            return [0, self.names.get(request[1])]
        return [1, {"name": "InvalidArgumentError", "message": f"unknown node service {request!r}", "code": "EINVAL", "nodeId": self.id, "pid": 0}]

    def _on_down(self, envelope: List[Any]) -> None:
        ref, reason = envelope[3], envelope[4]
        if ref in self.calls and self.calls[ref][1] is None:
            self.calls[ref] = (self.calls[ref][0], ["down", reason])
        elif ref in self.watches:
            _, watcher = self.watches.pop(ref)
            self._deliver(watcher, Message("down", sender=None, ref=ref, reason=reason))

    def stop(self) -> None:
        """Every process exits with "shutdown" (its watchers and links are told), then the sockets close."""
        for process in list(self.processes.values()):
            self.end_process(process, "shutdown")
        for peer in self.peers.values():
            peer.close(linger_ms=1000)  # let the shutdown Downs go
        self.peers.clear()
        self.router.close()
        self.context.term()
