"""Submitting tasks to a zerocos cluster from Python (docs/protocol.md §11.1-§11.3)."""
from __future__ import annotations

import itertools
from typing import Any, List, Optional, Sequence

from .node import Node, ZerocosError
from .wire import LocatedValue, ObjectRef, RemoteName, shipped_source

DAEMON_PROCESS = "zerocos.daemon"
WORKER_PROCESS = "zerocos.worker"
OBJECTS_PROCESS = "zerocos.objects"


class Cluster:
    """A cluster seen through one daemon: its workers, and `run` on one of them."""

    def __init__(self, node: Node, daemon: str) -> None:
        self.node = node
        self.daemon = daemon
        self.task_ids = itertools.count(1)
        self.turn = itertools.count()

    def daemons(self, timeout: float = 10.0) -> List[dict]:
        """The daemon's `cluster` answer: `[{daemon, workers, resources, info?}]`."""
        return list(self.node.call(RemoteName(DAEMON_PROCESS, self.daemon), ["cluster"], timeout))

    def workers(self) -> List[str]:
        return [worker for view in self.daemons() for worker in view["workers"]]

    def resolve(self, ref: ObjectRef, timeout: float = 30.0) -> Any:
        """A ref argument as the owner hands it to a worker: its value, or where it is held."""
        answer = self.node.call(RemoteName(OBJECTS_PROCESS, ref.owner), ["resolve", ref.id], timeout)
        if answer[0] == 0:
            return answer[1]
        if answer[0] == 1:
            return LocatedValue(answer[1], answer[2])
        info = answer[1] if isinstance(answer[1], dict) else {}
        raise ZerocosError(str(info.get("message", "the object failed")), str(info.get("code", "EREMOTE")), info)

    def run(self, source: str, args: Sequence[Any] = (), worker: Optional[str] = None, timeout: float = 60.0) -> Any:
        """Runs the JavaScript function expression `source` on a worker with `args` and returns its result.

        Top-level ObjectRef arguments are resolved first (to a value, or a LocatedValue the worker
        fetches); a large result kept on the worker is fetched from it.
        """
        if worker is None:
            workers = self.workers()
            if not workers:
                raise ZerocosError("the cluster has no workers", "EUNSCHEDULABLE")
            worker = workers[next(self.turn) % len(workers)]
        task_id = next(self.task_ids)
        wire_args = [self.resolve(arg) if isinstance(arg, ObjectRef) else arg for arg in args]
        answer = self.node.call(RemoteName(WORKER_PROCESS, worker), ["run", task_id, shipped_source(source), wire_args], timeout)
        if answer[0] == 0:
            return answer[1]
        return self.node.call(RemoteName(OBJECTS_PROCESS, worker), ["fetch", f"{self.node.id}|{task_id}"], timeout)
