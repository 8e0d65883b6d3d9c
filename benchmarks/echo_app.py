"""A minimal "application" that answers straight from the channel layer.

It lets the interface server be measured alone: ``http.request`` gets a
200 "OK", ``websocket.connect`` is accepted, ``websocket.receive`` is
echoed back. It only uses the layer API shared by this project's Redis
layer and asgi_redis 1.4.3, so the same file serves both stacks::

    python benchmarks/echo_app.py --redis redis://127.0.0.1:6379/0 --prefix bench:
    /tmp/channels1-venv/bin/python benchmarks/echo_app.py --backend asgi_redis --redis ... --prefix ...

Runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal

CHANNELS = ["http.request", "websocket.connect", "websocket.receive", "websocket.disconnect"]
HTTP_RESPONSE = {"status": 200, "headers": [[b"content-type", b"text/plain"]], "content": b"OK", "more_content": False}
ACCEPT = {"accept": True}


def make_layer(backend: str, url: str, prefix: str):
    """Return the Redis channel layer of the chosen stack."""
    if backend == "ours":
        from asgi_backends.redis import RedisChannelLayer

        return RedisChannelLayer(hosts=[url], prefix=prefix, capacity=1000, blocking_timeout=0.3)
    if backend == "asgi_redis":
        from asgi_redis import RedisChannelLayer

        return RedisChannelLayer(hosts=[url], prefix=prefix, capacity=1000)
    raise ValueError(f"backend must be 'ours' or 'asgi_redis', not {backend!r}")


def serve(layer) -> None:
    """Answer messages until a signal asks to stop."""
    running = [True]

    def stop(signum, frame):
        running[0] = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    receive, send, full = layer.receive, layer.send, layer.ChannelFull
    while running[0]:
        channel, message = receive(CHANNELS, block=True)
        if channel is None:
            continue
        try:
            if channel == "http.request":
                send(message["reply_channel"], HTTP_RESPONSE)
            elif channel == "websocket.receive":
                if message.get("text") is not None:
                    send(message["reply_channel"], {"text": message["text"]})
                else:
                    send(message["reply_channel"], {"bytes": message["bytes"]})
            elif channel == "websocket.connect":
                send(message["reply_channel"], ACCEPT)
        except full:
            pass  # the benchmark counts what never came back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["ours", "asgi_redis"], default="ours")
    parser.add_argument("--redis", required=True, help="redis:// URL")
    parser.add_argument("--prefix", default="bench:")
    args = parser.parse_args()
    serve(make_layer(args.backend, args.redis, args.prefix))


if __name__ == "__main__":
    main()
