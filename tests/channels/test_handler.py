"""AsgiRequest, AsgiHandler and ViewConsumer against the in-memory layer."""

from __future__ import annotations

import threading

import pytest
from django.core import signals
from django.http import HttpResponse, StreamingHttpResponse
from django.test import override_settings

from channels.exceptions import RequestAborted, RequestTimeout
from channels.handler import AsgiHandler, AsgiRequest, ViewConsumer
from channels.worker import Worker
from tests.channels.helpers import dispatch, drain, message


def request_message(layer, path="/", method="GET", **extra):
    content = {
        "reply_channel": "http.response!test", "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "query_string": b"", "root_path": "", "headers": [], "body": b"",
        "client": ["10.1.2.3", 51000], "server": ["127.0.0.1", 8000],
    }
    content.update(extra)
    return message(layer, "http.request", **content)


def response_of(layer):
    """Reassemble the response messages on the test reply channel."""
    parts = drain(layer, "http.response!")
    assert parts, "no response sent"
    first = parts[0]
    body = b"".join(part.get("content", b"") for part in parts)
    assert parts[-1]["more_content"] is False
    assert all(part["more_content"] for part in parts[:-1])
    return first["status"], {k.lower(): v for k, v in first["headers"]}, body, len(parts)


def test_request_meta_get_post_cookies(layer):
    msg = request_message(
        layer, "/app/echo/", "post", root_path="/app", query_string=b"q=search%20me",
        headers=[[b"content-type", b"application/x-www-form-urlencoded"], [b"cookie", b"flavour=oat"],
                 [b"x-thing", b"one"], [b"x-thing", b"two"], [b"host", b"example.com"]],
        body=b"name=J%C3%BCrgen", scheme="https",
    )
    request = AsgiRequest(msg)
    assert request.method == "POST" and request.path == "/app/echo/" and request.path_info == "/echo/"
    assert request.META["SCRIPT_NAME"] == "/app"
    assert request.META["REMOTE_ADDR"] == "10.1.2.3" and request.META["REMOTE_PORT"] == 51000
    assert request.META["SERVER_NAME"] == "127.0.0.1" and request.META["SERVER_PORT"] == "8000"
    assert request.META["HTTP_X_THING"] == "one,two"
    assert request.GET["q"] == "search me"
    assert request.POST["name"] == "Jürgen"
    assert request.COOKIES == {"flavour": "oat"}
    assert request.is_secure() and request.get_host() == "example.com"
    assert request.body == b"name=J%C3%BCrgen"


def test_body_channel_chunks_are_joined(layer):
    layer.send("http.request.body?1", {"content": b"part2-", "more_content": True})
    layer.send("http.request.body?1", {"content": b"part3", "more_content": False})
    request = AsgiRequest(request_message(layer, "/", "PUT", body=b"part1-", body_channel="http.request.body?1"))
    assert request.body == b"part1-part2-part3"
    assert request.META["CONTENT_LENGTH"] == str(len(request.body))


def test_body_channel_timeout_and_abort(layer, monkeypatch):
    monkeypatch.setattr(AsgiRequest, "body_receive_timeout", 0.2)
    with pytest.raises(RequestTimeout):
        AsgiRequest(request_message(layer, "/", "PUT", body_channel="http.request.body?slow"))
    layer.send("http.request.body?gone", {"closed": True})
    with pytest.raises(RequestAborted):
        AsgiRequest(request_message(layer, "/", "PUT", body_channel="http.request.body?gone"))


def test_timeout_becomes_408_and_abort_sends_nothing(layer, monkeypatch):
    monkeypatch.setattr(AsgiRequest, "body_receive_timeout", 0.2)
    dispatch(layer, "http.request", request_message(layer, "/", "PUT", body_channel="http.request.body?s").content)
    assert response_of(layer)[0] == 408
    layer.send("http.request.body?g", {"closed": True})
    dispatch(layer, "http.request", request_message(layer, "/", "PUT", body_channel="http.request.body?g").content)
    assert drain(layer, "http.response!") == []


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10)
def test_upload_limit_gives_413_or_400(layer):
    layer.send("http.request.body?big", {"content": b"x" * 20, "more_content": False})
    dispatch(layer, "http.request", request_message(layer, "/echo/", "POST", body_channel="http.request.body?big").content)
    assert response_of(layer)[0] == 413
    dispatch(layer, "http.request", request_message(
        layer, "/echo/", "POST", body=b"y" * 20, headers=[[b"content-length", b"20"]]).content)
    assert response_of(layer)[0] == 400  # Django's own RequestDataTooBig handling


def test_multipart_upload(layer):
    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\n{'z' * 3000}\r\n--{boundary}--\r\n").encode()
    dispatch(layer, "http.request", request_message(
        layer, "/upload/", "POST", body=body,
        headers=[[b"content-type", f"multipart/form-data; boundary={boundary}".encode()],
                 [b"content-length", str(len(body)).encode()]]).content)
    assert response_of(layer)[2] == b"a.txt:3000"


def test_views_404_500_and_cookies(layer):
    dispatch(layer, "http.request", request_message(layer, "/").content)
    assert response_of(layer)[:3:2] == (200, b"OK")
    dispatch(layer, "http.request", request_message(layer, "/nowhere/").content)
    assert response_of(layer)[0] == 404
    dispatch(layer, "http.request", request_message(layer, "/boom/").content)
    status, headers, body, _ = response_of(layer)
    assert status == 500 and b"Server Error" in body
    dispatch(layer, "http.request", request_message(layer, "/cookie/").content)
    status, headers, body, _ = response_of(layer)
    assert headers[b"set-cookie"].startswith(b"flavour=oat")


def test_response_later_sends_nothing(layer):
    dispatch(layer, "http.request", request_message(layer, "/later/").content)
    assert drain(layer, "http.response!") == []


def test_large_response_is_chunked_and_streaming_ends_with_empty_chunk(layer):
    dispatch(layer, "http.request", request_message(layer, "/big/").content)
    status, _, body, count = response_of(layer)
    assert status == 200 and body == b"x" * (1300 * 1024) and count == 3
    messages = list(AsgiHandler.encode_response(StreamingHttpResponse(iter([b"a", b"", b"b"]))))
    assert [m.get("content") for m in messages] == [b"a", b"b", b""]
    assert [m["more_content"] for m in messages] == [True, True, False]
    assert messages[0]["status"] == 200 and "status" not in messages[1]


def test_encode_response_headers_are_bytes_pairs():
    [msg] = AsgiHandler.encode_response(HttpResponse("hé", content_type="text/plain; charset=utf-8"))
    assert msg["content"] == "hé".encode() and msg["more_content"] is False
    assert [b"Content-Type", b"text/plain; charset=utf-8"] in msg["headers"]


def test_request_signals_fire(layer):
    seen = []

    def started(**kwargs):
        seen.append("started")

    def finished(**kwargs):
        seen.append("finished")

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        ViewConsumer()(request_message(layer, "/"))
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert seen == ["started", "finished"]
    assert response_of(layer)[0] == 200


def test_view_consumer_is_safe_across_threads(layer):
    consumer = ViewConsumer()
    errors = []

    def run(n):
        try:
            for _ in range(20):
                consumer(message(layer, "http.request", **{**request_message(layer, "/").content,
                                                           "reply_channel": f"http.response!t{n}"}))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(drain(layer, "http.response!")) == 80


def test_a_full_reply_channel_is_retried_then_the_response_abandoned(caplog):
    from asgi_backends.inmemory import ChannelLayer

    small = ChannelLayer(channel_capacity={"http.response!": 1})
    small.send("http.response!test", {"filler": True})  # the client has not read its last reply
    consumer = ViewConsumer()
    consumer.send_timeout = 0.05
    with caplog.at_level("WARNING", logger="django.request"):
        consumer(request_message(small, "/big/"))  # three chunks: the first is refused
    assert "stayed full; abandoning the response" in caplog.text
    assert drain(small, "http.response!") == [{"filler": True}]
    assert small.channel_statistics("http.response!test")["channel_full_count"] > 1  # retried, not given up at once


def test_a_slow_reader_gets_the_whole_response():
    from asgi_backends.inmemory import ChannelLayer

    small = ChannelLayer(channel_capacity={"http.response!": 1})
    parts = []

    def read():  # reads one chunk at a time, so every chunk after the first meets a full channel
        while not parts or parts[-1]["more_content"]:
            channel, part = small.receive(["http.response!"], block=True)
            if channel is not None:
                parts.append(part)

    reader = threading.Thread(target=read)
    reader.start()
    ViewConsumer()(request_message(small, "/big/"))
    reader.join(10)
    assert b"".join(part["content"] for part in parts) == b"x" * (1300 * 1024) and len(parts) == 3


def test_only_the_last_message_of_a_response_carries_the_workers_next_receive(layer):
    from worker.fetch import Fetch

    class RecordingFetch(Fetch):
        def send_batch(self, layer, items):
            self.carried = [message["more_content"] for _, message in items]
            return super().send_batch(layer, items)

    waiting = request_message(layer, "/").content
    layer.send("http.request", waiting)
    fetch = RecordingFetch(layer, ["http.request"], 1)
    Worker(layer, signal_handlers=False).handle("http.request", request_message(layer, "/big/").content, fetch)
    status, _, body, count = response_of(layer)
    assert status == 200 and body == b"x" * (1300 * 1024) and count == 3
    assert fetch.carried == [False]
    assert fetch.received == [("http.request", waiting)]
