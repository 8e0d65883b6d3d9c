"""Class-based consumer overhead: a JsonWebsocketConsumer echo, ours against Channels 1.1.8.

One process, in-memory layer, no network: each iteration sends a
``websocket.receive`` frame, takes it off the layer, routes it through
``route_class``, runs the consumer exactly as the worker does (signals,
held sends flushed at the end) and takes the JSON reply off the reply
channel. That isolates what ``channels.generic`` and the dispatch around it
cost per message.

::

    python3 benchmarks/generic_consumers.py [--runs 5] [--seconds 2]

Channels 1.1.8 (with asgiref 1.1.2's in-memory layer and Django 2.2) runs
under ``/tmp/channels1-venv/bin/python`` (``--channels1-venv`` to point
elsewhere); runs of the two alternate and the medians and per-run ratios
are printed.

Measured twice (5 interleaved runs of 2 s each, Python 3.11, 2 cores shared
with other work, so noisy): ours 6,083 / 11,290 msg/s median, Channels 1.1.8
4,506 / 9,063 msg/s; median of per-run ratios 1.32 and 1.49 (per-run ratios
ranged 0.68-2.08). Per message, the layer's msgpack round trips and JSON
dominate a profile of ours; the consumer classes are a small share.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FRAME = json.dumps({"n": 1, "text": "x" * 200})


def configure(stack: str) -> None:
    import django
    from django.conf import settings

    backend = "asgi_backends.inmemory.ChannelLayer" if stack == "ours" else "asgiref.inmemory.ChannelLayer"
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "channels"],
        DATABASES={},
        CHANNEL_LAYERS={"default": {"BACKEND": backend, "ROUTING": "__main__.routing"}},
        CHANNELS_WS_AUTO_ACCEPT=False,
    )
    django.setup()


def child(stack: str, seconds: float) -> None:
    """Run the loop for ``seconds`` under one stack; print messages per second."""
    if stack == "ours":
        sys.path.insert(0, str(REPO))
    configure(stack)
    from channels.generic.websockets import JsonWebsocketConsumer
    from channels.routing import route_class

    class Echo(JsonWebsocketConsumer):
        def receive(self, content, **kwargs):
            self.send(content)

    sys.modules["__main__"].routing = [route_class(Echo, path=r"^/echo/$")]
    from channels import channel_layers

    layer = channel_layers["default"]
    if stack == "ours":
        from channels.worker import Worker

        worker = Worker(layer, signal_handlers=False)

        def handle(channel: str, content: dict) -> None:
            worker.handle(channel, content)
    else:
        from channels.message import Message
        from channels.signals import consumer_finished, consumer_started

        def handle(channel: str, content: dict) -> None:
            # What Channels 1.1.8's Worker.run does per message.
            message = Message(content=content, channel_name=channel, channel_layer=layer)
            consumer, kwargs = layer.router.match(message)
            consumer_started.send(sender=None, environ={})
            try:
                consumer(message, **kwargs)
            finally:
                consumer_finished.send(sender=None)

    receive = layer.receive if stack == "ours" else layer.receive_batch
    count = 0
    order = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(100):
            order += 1
            layer.send("websocket.receive", {"reply_channel": "bench.reply", "path": "/echo/", "text": FRAME,
                                             "order": order})
            channel, content = receive(["websocket.receive"])
            handle(channel, content)
            _, reply = receive(["bench.reply"])
            if json.loads(reply["text"]) != {"n": 1, "text": "x" * 200}:
                raise RuntimeError(f"wrong reply {reply!r}")
        count += 100
    print(count / (time.perf_counter() - start))


def asgi_ipc_shim() -> str:
    """Return a directory holding a stand-in ``asgi_ipc`` for the old venv.

    asgi_ipc 1.4.2 there cannot import (its msgpack-python requirement is
    gone) and Channels 1.1.8 imports it at start-up only to check its
    version; a module with just ``__version__`` satisfies that check.
    """
    shim = Path(tempfile.mkdtemp(prefix="generic-bench-shim-"))
    (shim / "asgi_ipc").mkdir()
    (shim / "asgi_ipc" / "__init__.py").write_text('__version__ = "1.4.2"\n')
    return str(shim)


def run(python: str, stack: str, seconds: float, shim: str = "") -> float:
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = str(REPO) if stack == "ours" else shim
    result = subprocess.run([python, __file__, "--child", stack, "--seconds", str(seconds)],
                            capture_output=True, text=True, env=env, cwd="/tmp", timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{stack} run failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--channels1-venv", default="/tmp/channels1-venv")
    parser.add_argument("--child", choices=["ours", "channels1"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seconds)
        return
    old_python = str(Path(args.channels1_venv) / "bin" / "python")
    shim = asgi_ipc_shim()
    ours, theirs = [], []
    for n in range(args.runs):
        ours.append(run(sys.executable, "ours", args.seconds))
        theirs.append(run(old_python, "channels1", args.seconds, shim))
        print(f"run {n + 1}: ours {ours[-1]:8.0f} msg/s   channels 1.1.8 {theirs[-1]:8.0f} msg/s   "
              f"ratio {ours[-1] / theirs[-1]:.2f}")
    ratios = [a / b for a, b in zip(ours, theirs)]
    print(f"median: ours {statistics.median(ours):.0f} msg/s, channels 1.1.8 {statistics.median(theirs):.0f} msg/s, "
          f"ratio {statistics.median(ratios):.2f} (per-run ratios {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
