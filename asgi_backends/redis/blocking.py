"""Blocking pops across several shards at once, without polling.

One ``BLPOP`` cannot span servers, so a receive whose channels live on
several shards sends a ``BLPOP`` to each of them on its own pooled
connection and waits on all the sockets with ``poll``. The first answer
wins; the other pops are cancelled with ``CLIENT UNBLOCK``. A pop that
raced the cancel and did take an entry puts it back at the head of its list
with ``LPUSH``, so no message is lost and each is still delivered once.
"""

from __future__ import annotations

import logging
import random
import select
from typing import Sequence

from redis.connection import Connection
from redis.exceptions import AuthenticationError

from .connection import UNAVAILABLE_ERRORS, Shard

logger = logging.getLogger(__name__)


class _Pop:
    """One in-flight ``BLPOP`` on one shard."""

    def __init__(self, shard: Shard, keys: Sequence[str], timeout: float) -> None:
        self.shard = shard
        self.connection: Connection = shard.pool.get_connection()
        self.done = False
        try:
            # CLIENT ID travels with the BLPOP: no extra round trip.
            self.connection.send_packed_command(
                self.connection.pack_commands([("CLIENT", "ID"), ("BLPOP", *keys, timeout)])
            )
            self.client_id = self.connection.read_response()
        except BaseException:
            self.release(broken=True)
            raise

    def ready(self) -> bool:
        return self.connection.can_read(timeout=0)

    def fileno(self) -> int:
        return self.connection._sock.fileno()

    def result(self) -> list | None:
        """Read the pop's answer: ``[key, entry]`` or None on timeout."""
        try:
            answer = self.connection.read_response()
        except BaseException:
            self.release(broken=True)
            raise
        self.release()
        return answer

    def cancel(self) -> None:
        """Stop the pop; put back anything it took meanwhile."""
        try:
            self.shard.execute("CLIENT", "UNBLOCK", self.client_id)
            answer = self.result()
        except UNAVAILABLE_ERRORS:
            logger.warning("Could not cancel a blocking pop on %s", self.shard.label, exc_info=True)
            self.release(broken=True)
            return
        if answer is not None:
            key, entry = answer
            self.shard.execute("LPUSH", key, entry)

    def release(self, broken: bool = False) -> None:
        if self.done:
            return
        self.done = True
        if broken:
            self.connection.disconnect()
        self.shard.pool.release(self.connection)


def pop_many(targets: Sequence[tuple[Shard, list[str]]], timeout: float) -> list | None:
    """``BLPOP`` the keys of several shards at once; return the first ``[key, entry]``.

    Returns None if nothing arrived within ``timeout`` seconds.

    Raises:
        LayerUnavailable: a shard cannot be reached.
    """
    pops: list[_Pop] = []
    try:
        for shard, keys in targets:
            try:
                pops.append(_Pop(shard, keys, timeout))
            except AuthenticationError:
                raise
            except UNAVAILABLE_ERRORS as exc:
                raise shard.unavailable(exc) from exc
        ready = [pop for pop in pops if pop.ready()]
        if not ready:
            # poll, not select: a busy server's sockets can be numbered past 1024.
            poller = select.poll()
            by_fd = {pop.fileno(): pop for pop in pops}
            for fd in by_fd:
                poller.register(fd, select.POLLIN)
            ready = [by_fd[fd] for fd, _ in poller.poll((timeout + 1.0) * 1000)]
        if not ready:
            return None
        winner = random.choice(ready)
        try:
            return winner.result()
        except UNAVAILABLE_ERRORS as exc:
            raise winner.shard.unavailable(exc) from exc
    finally:
        for pop in pops:
            if not pop.done:
                pop.cancel()
