"""Request framing, byte by byte: one reading of every request, or its error status and a close.

Protocol tests (bytes through a StringTransport into the HTTP protocol, the
in-memory layer as the application) for the request-smuggling surface of
RFC 9112 sections 2-7 and 11.2, the Host rules of section 3.2, and the size
limits. Each refused request must not reach the application, and nothing
but its own connection may notice.
"""

from __future__ import annotations

import logging

import pytest

from interface_server.http_protocol import HTTPState

from .conftest import HTTPHarness

CHUNKED = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def refused(raw: bytes, status: int, **options) -> None:
    """Feed ``raw`` whole and one byte at a time: both get ``status``, a close, and nothing reaches the app."""
    for pieces in ([raw], [raw[i:i + 1] for i in range(len(raw))]):
        harness = HTTPHarness(**options)
        client = harness.connect()
        for piece in pieces:
            client.send(piece)
        data = client.output()
        assert data.startswith(b"HTTP/1.1 %d " % status), (raw[:80], data[:160])
        assert b"Connection: close" in data.partition(b"\r\n\r\n")[0]
        assert client.closed
        assert harness.receive("http.request") is None, raw[:80]


def served(raw: bytes, **options) -> dict:
    """Feed ``raw``: the application gets exactly one request, which is returned."""
    harness = HTTPHarness(**options)
    client = harness.connect()
    client.send(raw)
    message = client.request()
    assert harness.receive("http.request") is None
    assert not client.closed and client.output() == b""
    return message


# -- chunk sizes: 1*HEXDIG and nothing else (RFC 9112 section 7.1) ------------------------


@pytest.mark.parametrize("size", [b"+5", b"0x5", b"0_5", b" 5", b"5 ", b"-5", b"5 ;x=1", b"\t5", b"",
                                  b"10000000000000000", b"400000000000000000", b"fffffffffffffffff"])
def test_chunk_size_that_is_not_plain_hex_gets_400(size):
    refused(CHUNKED + size + b"\r\nhello\r\n0\r\n\r\n", 400)


@pytest.mark.parametrize("framing", [
    b"5\r\nhelloX\r\n0\r\n\r\n",          # chunk data longer than its size
    b"5\nhello\r\n0\r\n\r\n",             # bare LF after the size
    b"5\r\nhello\n0\r\n\r\n",             # bare LF after the data
    b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n",   # bare LF in a trailer
])
def test_malformed_chunk_framing_gets_400(framing):
    refused(CHUNKED + framing, 400)


def test_chunked_body_with_extensions_and_trailers_is_decoded():
    message = served(CHUNKED + b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    assert message["body"] == b"hello world"
    assert [b"x-trailer", b"1"] not in message["headers"]


# -- field names and values -------------------------------------------------------------


@pytest.mark.parametrize("line", [b"X Test: 1", b"X\x00Test: 1", b"X@Test: 1", b"X-Test : 1", b": empty name",
                                  b"X(Test): 1", b"X\x7fTest: 1", b"No colon here"])
def test_field_name_that_is_not_a_token_gets_400(line):
    refused(b"GET / HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n", 400)


@pytest.mark.parametrize("value", [b"a\x00b", b"a\rX-Injected: yes", b"a\x01b", b"a\x7fb", b"a\rb"])
def test_field_value_with_nul_bare_cr_or_ctl_gets_400(value):
    refused(b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: " + value + b"\r\n\r\n", 400)


def test_field_value_keeps_tabs_and_obs_text_and_loses_surrounding_whitespace():
    message = served(b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: \t a\tb caf\xc3\xa9 \t\r\n\r\n")
    assert [b"x-foo", b"a\tb caf\xc3\xa9"] in message["headers"]


# -- line ends: CRLF only -----------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\nX-Smuggle: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\nContent-Length: 56\r\n\r\n",
    b"GET / HTTP/1.1\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\n",
])
def test_bare_lf_in_the_head_gets_400(raw):
    refused(raw, 400)


def test_all_lf_head_gets_400_at_once_not_a_hang():
    refused(b"GET / HTTP/1.1\nHost: x\nX-A: b\n\n", 400)


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n\tb\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
])
def test_every_obs_fold_gets_400(raw):
    refused(raw, 400)


# -- Host (RFC 9112 section 3.2) ------------------------------------------------------------


@pytest.mark.parametrize("headers", [b"", b"Host: a\r\nHost: b\r\n", b"Host: a\r\nHost: a\r\n", b"Host: a b\r\n",
                                     b"Host: a/b\r\n", b"Host: a@b\r\n", b"Host: a:b\r\n", b"Host: [::1\r\n",
                                     b"Host: a:80:80\r\n", b"Host: %zz\r\n"])
def test_http11_without_exactly_one_valid_host_gets_400(headers):
    refused(b"GET / HTTP/1.1\r\n" + headers + b"\r\n", 400)


@pytest.mark.parametrize("host", [b"example.com", b"example.com:8000", b"127.0.0.1:80", b"[::1]:8000", b"[::1]",
                                  b"", b"xn--caf-dma.example", b"a%2Db"])
def test_valid_host_is_served(host):
    message = served(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert [b"host", host] in message["headers"]


def test_http10_may_omit_host_but_not_send_two():
    assert served(b"GET / HTTP/1.0\r\n\r\n")["http_version"] == "1.0"
    refused(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400)


# -- Content-Length and Transfer-Encoding (RFC 9112 sections 6.1-6.3) ---------------------------


@pytest.mark.parametrize("headers, status", [
    (b"Content-Length: " + b"9" * 4301, 400),      # int() would refuse it with a ValueError
    (b"Content-Length: 18446744073709551616", 400),
    (b"Content-Length: +5", 400),
    (b"Content-Length: -1", 400),
    (b"Content-Length: 5, 5", 400),
    (b"Content-Length: 5 5", 400),
    (b"Content-Length: 0x5", 400),
    (b"Content-Length: 5\r\nContent-Length: 5", 400),
    (b"Content-Length: 5\r\nContent-Length: 6", 400),
    (b"Content-Length: 5\r\nTransfer-Encoding: chunked", 400),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 5", 400),
    (b"Transfer-Encoding: chunked, gzip", 400),     # chunked not last: the length cannot be known
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400),
    (b"Transfer-Encoding: ", 400),
    (b"Transfer-Encoding: gzip", 400),
    (b"Transfer-Encoding: gzip, chunked", 501),     # well formed, but a coding we cannot decode
    (b"Transfer-Encoding: identity, chunked", 501),
])
def test_conflicting_or_malformed_body_framing_is_refused(headers, status):
    refused(b"POST / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n\r\nhello", status)


def test_transfer_encoding_in_http10_gets_400():
    refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400)


def test_transfer_encoding_is_case_insensitive_and_content_length_may_have_trailing_space():
    chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"
    assert served(chunked)["body"] == b"a"
    assert served(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 \r\n\r\na")["body"] == b"a"


# -- request line ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /x HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    (b"G@T /x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"get /x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET / http/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /x HTTP/2.0\r\n\r\n", 505),
    (b"GET /x HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    (b"GET /x HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    (b"GET /x\r\n\r\n", 505),                        # HTTP/0.9
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
])
def test_malformed_request_line_is_refused(raw, status):
    refused(raw, status)


def test_target_forms_give_the_asgi_path_and_query():
    message = served(b"GET /caf%C3%A9/x?a=1&b=%20#frag HTTP/1.1\r\nHost: x\r\n\r\n")
    assert message["path"] == "/café/x" and message["query_string"] == b"a=1&b=%20"
    message = served(b"GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert message["path"] == "/p" and message["query_string"] == b"q"
    assert served(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")["path"] == "*"


# -- size limits, at their edges ----------------------------------------------------------------


def head_of_size(size: int) -> bytes:
    """A request head of about ``size`` bytes as the server counts them."""
    base = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n"
    counted = 16 + 1 + len(b"Host") + 1 + 4 + len(b"X-Pad") + 4
    return base.replace(b"X-Pad: ", b"X-Pad: " + b"a" * (size - counted))


def test_head_at_the_limit_is_served_one_byte_over_gets_431():
    served(head_of_size(1000), max_header_size=1000)
    refused(head_of_size(1001), 431, max_header_size=1000)


def test_head_that_never_ends_gets_431_once_past_the_limit_not_when_it_ends():
    harness = HTTPHarness(max_header_size=1000)
    client = harness.connect()
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 900)
    assert client.output() == b""
    client.send(b"a" * 200)
    assert client.status() == 431 and client.closed


def test_long_request_line_gets_414_and_a_long_head_431():
    refused(b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)
    refused(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, max_header_size=1000)
    refused(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431)


def test_trailers_are_bounded_like_a_head():
    refused(CHUNKED + b"0\r\nX-Trailer: " + b"a" * 2000 + b"\r\n\r\n", 431, max_header_size=1000)


def test_body_at_the_limit_is_served_one_byte_over_gets_413():
    assert served(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 100,
                  max_body_size=100)["body"] == b"a" * 100
    refused(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", 413, max_body_size=100)
    assert served(CHUNKED + b"64\r\n" + b"a" * 100 + b"\r\n0\r\n\r\n", max_body_size=100)["body"] == b"a" * 100
    refused(CHUNKED + b"65\r\n" + b"a" * 101 + b"\r\n0\r\n\r\n", 413, max_body_size=100)


# -- header names with "_" -----------------------------------------------------------------------


def test_header_names_with_underscores_are_dropped():
    message = served(b"GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\nX-Real: 1\r\nA_B: c\r\n\r\n")
    names = [name for name, _ in message["headers"]]
    assert names == [b"host", b"x-real"]


def test_underscore_header_cannot_pose_as_a_proxy_header():
    harness = HTTPHarness(proxy_headers=True)
    client = harness.connect()
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\nX_Forwarded_Proto: https\r\n\r\n")
    message = client.request()
    assert message["client"] == ["127.0.0.1", 50000] and message["scheme"] == "http"


# -- pipelining and what follows an error ---------------------------------------------------------


def test_pipelined_requests_are_answered_in_order_and_an_error_after_them_last():
    harness = HTTPHarness()
    client = harness.connect()
    client.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /3 HTTP/1.1\r\nX\x00: y\r\n\r\n")
    first = client.request()
    assert first["path"] == "/1" and harness.receive() is None  # one at a time
    client.reply(first["reply_channel"], content=b"one")
    second = client.request()
    assert second["path"] == "/2"
    client.reply(second["reply_channel"], content=b"two")
    data = client.output()
    assert data.count(b"HTTP/1.1 200 OK") == 2 and data.index(b"one") < data.index(b"two")
    assert data.endswith(b"\r\n\r\n400 Bad Request: Invalid header token\n") and client.closed
    assert harness.receive() is None


def test_pipelined_requests_past_the_budget_are_left_for_the_client_to_retry():
    harness = HTTPHarness(max_header_size=1000)
    client = harness.connect()
    one = b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n"
    client.send(b"".join(one % i for i in range(100)))
    answered = 0
    while (message := harness.receive()) is not None:
        client.reply(message["reply_channel"])
        answered += 1
    assert 1 < answered < 100
    assert client.output().count(b"HTTP/1.1 200 OK") == answered and client.closed


def test_reading_pauses_while_a_request_is_answered():
    harness = HTTPHarness()
    client = harness.connect()
    client.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = client.request()["reply_channel"]
    assert client.transport.producerState == "producing"
    client.send(b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.transport.producerState == "paused"
    client.reply(reply)
    assert client.transport.producerState == "producing"
    assert client.request()["path"] == "/2"


def test_non_websocket_upgrade_is_served_as_plain_http_body_included():
    harness = HTTPHarness()
    client = harness.connect()
    client.send(b"POST /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\nabc"
                b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    message = client.request()
    assert message["path"] == "/u" and message["body"] == b"abc"
    client.reply(message["reply_channel"])
    assert client.request()["path"] == "/next"


def test_websocket_upgrade_is_handed_over_with_the_bytes_after_the_head():
    harness = HTTPHarness()
    client = harness.connect()
    client.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert client.protocol.state is HTTPState.UPGRADED
    assert client.transport.protocol is not client.protocol
    got, connect = harness.layer.receive(["websocket.connect"], block=False)
    assert got == "websocket.connect" and connect["path"] == "/ws"


def test_bad_input_is_logged_without_a_traceback(caplog):
    caplog.set_level(logging.DEBUG, logger="interface_server")
    refused(CHUNKED + b"+5\r\nhello\r\n0\r\n\r\n", 400)
    refused(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 400)
    assert not [r for r in caplog.records if r.exc_info]
