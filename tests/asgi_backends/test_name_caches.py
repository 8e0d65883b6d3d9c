"""The layers' per-name caches hold what recurs, not every reply channel ever seen (a worker's memory stays flat)."""

from __future__ import annotations

import secrets

from asgi_backends.inmemory import ChannelLayer
from asgi_backends.redis import RedisChannelLayer


def one_off_names(count: int) -> list[str]:
    """Reply channels of one interface server and body channels: each name seen once, as a worker sees them."""
    prefix = f"interface.response.{secrets.token_hex(8)}!"
    return ([prefix + secrets.token_hex(12) for _ in range(count)]
            + [f"http.request.body?{secrets.token_hex(12)}" for _ in range(count)])


def test_capacity_cache_keeps_one_entry_per_prefix():
    layer = ChannelLayer(capacity=7, channel_capacity={"interface.response.*": 3})
    for name in one_off_names(2000):
        assert layer.get_capacity(name) == (3 if name.startswith("interface.") else 7)
    assert layer.get_capacity("http.request") == 7
    assert len(layer._capacity_cache) == 2  # the prefix and http.request


def test_redis_route_cache_keeps_one_entry_per_prefix():
    layer = RedisChannelLayer(hosts=["redis://127.0.0.1:1/0", "redis://127.0.0.1:2/0"])  # never connects
    names = one_off_names(2000)
    routes = {layer._route(name) for name in names if "!" in name}
    assert len(routes) == 1  # every reply channel of a prefix lives in the prefix's list
    assert layer._route(names[-1])[1] == "asgi:" + names[-1]
    assert len(layer._route_cache) == 1
