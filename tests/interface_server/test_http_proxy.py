"""Trusted proxies: X-Forwarded-* believed only from them, and the rightmost untrusted entry is the client."""

from __future__ import annotations

import pytest

from interface_server.config import ServerConfig
from interface_server.proxy import TrustedProxies, parse_trusted

from .conftest import HTTPHarness


def forwarded(headers: bytes, peer: tuple[str, int] = ("127.0.0.1", 40000), **options) -> dict:
    harness = HTTPHarness(proxy_headers=True, **options)
    client = harness.connect(peer)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    return client.request()


def test_the_client_is_the_rightmost_entry_that_is_not_a_trusted_proxy():
    message = forwarded(b"X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\nX-Forwarded-Proto: https\r\n")
    assert message["client"] == ["203.0.113.9", 0] and message["scheme"] == "https"


def test_every_trusted_proxy_on_the_way_is_skipped():
    message = forwarded(b"X-Forwarded-For: 6.6.6.6, 203.0.113.9, 10.0.0.2, 10.0.0.1\r\n",
                        proxy_headers_from="127.0.0.1,10.0.0.0/8")
    assert message["client"] == ["203.0.113.9", 0]


def test_repeated_headers_are_one_list():
    message = forwarded(b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.9\r\n")
    assert message["client"] == ["203.0.113.9", 0]


def test_port_and_scheme_come_from_the_same_position_or_the_last():
    message = forwarded(b"X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\nX-Forwarded-Port: 1, 8443\r\n"
                        b"X-Forwarded-Proto: http, https\r\n")
    assert message["client"] == ["203.0.113.9", 8443] and message["scheme"] == "https"
    message = forwarded(b"X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Port: 8443\r\nX-Forwarded-Proto: gopher\r\n")
    assert message["client"] == ["203.0.113.9", 8443] and message["scheme"] == "http"


def test_headers_from_an_untrusted_peer_are_ignored():
    message = forwarded(b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n", peer=("198.51.100.4", 5555))
    assert message["client"] == ["198.51.100.4", 5555] and message["scheme"] == "http"


def test_ipv6_and_ipv4_mapped_peers():
    assert forwarded(b"X-Forwarded-For: 203.0.113.9\r\n", peer=("::1", 1))["client"] == ["203.0.113.9", 0]
    assert forwarded(b"X-Forwarded-For: 203.0.113.9\r\n", peer=("::ffff:127.0.0.1", 1))["client"] == ["203.0.113.9", 0]
    message = forwarded(b"X-Forwarded-For: [2001:db8::1]:443, 127.0.0.1\r\n")
    assert message["client"] == ["2001:db8::1", 0]


def test_trust_all_takes_the_leftmost():
    message = forwarded(b"X-Forwarded-For: 203.0.113.9, 198.51.100.4\r\n", peer=("192.0.2.1", 1),
                        proxy_headers_from="*")
    assert message["client"] == ["203.0.113.9", 0]


def test_all_entries_trusted_gives_the_leftmost():
    assert forwarded(b"X-Forwarded-For: 127.0.0.2, 127.0.0.1\r\n",
                     proxy_headers_from="127.0.0.0/8")["client"] == ["127.0.0.2", 0]


def test_unix_socket_peers_are_trusted():
    proxies = TrustedProxies(("127.0.0.1",))
    assert proxies.forwarded(b"203.0.113.9", None, b"https", None, "http") == (["203.0.113.9", 0], "https")


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "example.com", "1.2.3.4.5", "10.0.0.1/8/1"])
def test_a_bad_entry_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
        ServerConfig(proxy_headers_from=f"127.0.0.1,{bad}")


def test_entries_are_normalised():
    assert parse_trusted(" 127.0.0.1 , ::1,") == ("127.0.0.1", "::1")
    assert ServerConfig(proxy_headers_from=["10.0.0.0/8"]).proxy_headers_from == ("10.0.0.0/8",)
    with pytest.raises(TypeError):
        parse_trusted(42)
