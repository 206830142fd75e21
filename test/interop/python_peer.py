"""The Python side of test/interop/python.test.ts: a zerocos node driven by calls to `py.control`.

Prints {"ready": {"node": id}} and serves until killed. `py.echo` answers calls with the request
and sends a message {from: pid, ...} back to `from`. `py.control` takes commands (see `command`).
Secret: the environment's ZEROCOS_SECRET (none: plain ZeroMQ).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))

from zerocos import Cluster, Node, RemoteName, ZerocosError  # noqa: E402
from zerocos.wire import as_pid  # noqa: E402

node = Node(name="py", secret=os.environ.get("ZEROCOS_SECRET") or None)
echo = node.spawn("py.echo")
control = node.spawn("py.control")
spawned = {}


def address(value):
    """A pid map, or {name, node}."""
    return as_pid(value) or RemoteName(value["name"], value["node"])


def command(request):
    op = request[0]
    if op == "hello":  # ["hello", endpoint] -> the node id there
        return node.hello(request[1])
    if op == "call":  # ["call", address, payload] -> its answer
        return node.call(address(request[1]), request[2])
    if op == "send":  # ["send", address, payload]
        node.send(address(request[1]), request[2], sender=echo.id)
        return "sent"
    if op == "spawn":  # -> a new pid id (a process that only waits to be ended)
        process = node.spawn()
        spawned[process.id] = process
        return process.id
    if op == "end":  # ["end", id, reason]
        spawned.pop(request[1]).exit(request[2])
        return "ended"
    if op == "monitor":  # ["monitor", address] -> ref; the Down goes to py.control's mailbox
        return control.monitor(address(request[1]))
    if op == "await-down":  # ["await-down", ref] -> the Down's reason
        return control.receive(30, lambda m: m.kind == "down" and m.ref == request[1]).reason
    if op == "run":  # ["run", daemon, source, args] -> the task's result
        return Cluster(node, request[1]).run(request[2], request[3])
    if op == "cluster":  # ["cluster", daemon] -> the daemon's `cluster` answer
        return Cluster(node, request[1]).daemons()
    if op == "stats":
        return {"protocolErrors": [e.reason for e in node.protocol_errors], "deadLetters": len(node.dead_letters)}
    raise ValueError(f"unknown command {op!r}")


print(json.dumps({"ready": {"node": node.id}}), flush=True)
while True:
    node.pump(0.1)
    while echo.mailbox:
        message = echo.mailbox.popleft()
        if message.kind == "call":
            echo.reply(message, message.payload)
        elif message.kind == "send" and isinstance(message.payload, dict) and as_pid(message.payload.get("from")):
            node.send(as_pid(message.payload["from"]), message.payload, sender=echo.id)
    while any(m.kind == "call" for m in control.mailbox):
        message = control.receive(0, lambda m: m.kind == "call")
        try:
            control.reply(message, command(message.payload))
        except ZerocosError as error:
            control.fail(message, type(error).__name__, str(error), error.code)
        except Exception as error:  # a bad command: the caller sees it, the node keeps serving
            control.fail(message, type(error).__name__, str(error), "EINVAL")
