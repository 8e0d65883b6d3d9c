"""Receive every reply addressed to this server and hand it to its connection.

The server listens on one process-specific channel prefix
(``interface.response.<random>!``); each request or WebSocket gets a name
under it from ``layer.new_channel``. Replies are received without polling,
in one of three ways: through the layer's reactor client
(:class:`~asgi_backends.base.ReactorLayerClient`), whose blocking pop runs
in the reactor and takes every reply waiting (up to :data:`REPLY_BATCH`) in
one round trip; through the layer's native ``receive_twisted``; or on a
dedicated thread blocking in ``layer.receive_batch(..., block=True)``, which
takes a batch the same way and hands it to the reactor in one
``callFromThread``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any, Protocol

from twisted.internet import reactor as default_reactor

from asgi_backends.base import BaseChannelLayer, ChannelLayer, ReactorLayerClient, loggable_name
from asgi_backends.retry import Outage

logger = logging.getLogger(__name__)

PREFIX_BASE = "interface.response."

REPLY_BATCH = 200
"""Most replies taken from the layer (and handed to the reactor) at once."""



class ReplyTarget(Protocol):
    """What a connection registered for replies must offer."""

    def handle_reply(self, message: dict[str, Any]) -> None: ...


def make_prefix() -> str:
    """Return a fresh process-specific prefix for this server's reply channels."""
    return f"{PREFIX_BASE}{secrets.token_hex(8)}!"


def _has_native_twisted_receive(layer: ChannelLayer) -> bool:
    """True if the layer's ``receive_twisted`` is its own, not the thread-pool default."""
    if "twisted" not in layer.extensions:
        return False
    # A bound method's __func__ is the function the layer's class defines.
    method = getattr(layer.receive_twisted, "__func__", None)
    return method is not BaseChannelLayer.receive_twisted


class ReplyReceiver:
    """Routes messages from this server's reply prefix to registered targets.

    Args:
        layer: the channel layer.
        prefix: the process-specific prefix to receive on (ends in ``!``).
        reactor: the Twisted reactor the targets live in.
        outage: paces the retries while the layer is down (exponential
            backoff with jitter) and logs one line when it goes away and
            one when it is back; the server shares it with its sender.
        client: the layer's reactor client, to receive through it (no thread).
    """

    def __init__(self, layer: ChannelLayer, prefix: str, reactor: Any = None, outage: Outage | None = None,
                 client: ReactorLayerClient | None = None) -> None:
        if not prefix.endswith("!"):
            raise ValueError(f"reply prefix must end in '!', not {prefix!r}")
        self.layer = layer
        self.prefix = prefix
        self.reactor = reactor or default_reactor
        self.targets: dict[str, ReplyTarget] = {}
        self._running = False
        self._thread: threading.Thread | None = None
        self.client = client
        self.native = client is None and _has_native_twisted_receive(layer)
        self.outage = outage or Outage(logger, "Receiving replies from the channel layer")

    def new_channel(self, target: ReplyTarget) -> str:
        """Return a fresh reply channel name and route its messages to ``target``."""
        name = self.layer.new_channel(self.prefix)
        self.targets[name] = target
        return name

    def forget(self, name: str | None) -> None:
        """Stop routing ``name``; later messages for it are dropped quietly."""
        if name is not None:
            self.targets.pop(name, None)

    def start(self) -> None:
        """Begin receiving (call in the reactor thread)."""
        if self._running:
            return
        self._running = True
        if self.client is not None:
            # One pop at a time: a second one pipelined behind it made replies (and so an open-loop
            # client's next requests) come in bursts that overfilled http.request at half load.
            self._receive_client()
        elif self.native:
            self._receive_native()
        else:
            self._thread = threading.Thread(target=self._receive_blocking, name="reply-receiver", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop receiving. A blocked thread notices at its next wake-up."""
        self._running = False

    def dispatch(self, channel: str | None, message: dict[str, Any] | None) -> None:
        """Hand one received message to its target (reactor thread)."""
        if channel is None or message is None:
            return
        target = self.targets.get(channel)
        if target is None:
            # The client has gone (or timed out); its late replies are expected.
            logger.debug("Dropping message for unknown reply channel %s", loggable_name(channel))
            return
        try:
            target.handle_reply(message)
        except Exception:
            logger.exception("Error handling reply on %s", loggable_name(channel))

    # -- the two ways of receiving ------------------------------------------

    def _receive_native(self) -> None:
        if not self._running:
            return
        try:
            deferred = self.layer.receive_twisted([self.prefix])
        except Exception as exc:
            self.reactor.callLater(self.outage.failed(exc), self._receive_native)
            return
        deferred.addCallbacks(self._native_result, self._native_error, errbackArgs=(self._receive_native,))

    def _native_result(self, result: tuple[str | None, dict | None]) -> None:
        self.outage.succeeded()
        self.dispatch(*result)
        self._receive_native()

    def _native_error(self, failure: Any, again: Any) -> None:
        if not self._running:
            return  # stopped: the wait was cut short on purpose (the connection closed at shutdown)
        self.reactor.callLater(self.outage.failed(failure.value), again)

    def _receive_client(self) -> None:
        if not self._running:
            return
        try:
            waiting = self.client.receive_replies(self.prefix, REPLY_BATCH)
        except Exception as exc:
            self.reactor.callLater(self.outage.failed(exc), self._receive_client)
            return
        waiting.addCallbacks(self._client_result, self._native_error, errbackArgs=(self._receive_client,))

    def _client_result(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        self.outage.succeeded()
        if batch:
            self.dispatch_many(batch)
        self._receive_client()

    def _receive_blocking(self) -> None:
        channels = [self.prefix]
        call = self.reactor.callFromThread
        dispatch = self.dispatch_many
        receive_batch = self.layer.receive_batch
        outage = self.outage
        while self._running:
            try:
                batch = receive_batch(channels, REPLY_BATCH, block=True)
            except Exception as exc:
                # Redis down and the like: keep the thread alive and retry, backing off.
                time.sleep(outage.failed(exc))  # nothing to wait on: the layer is what we would wait for
                continue
            outage.succeeded()
            if batch:
                call(dispatch, batch)

    def dispatch_many(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        """Hand each received message of a batch to its target, in order (reactor thread)."""
        dispatch = self.dispatch
        for channel, message in batch:
            dispatch(channel, message)
