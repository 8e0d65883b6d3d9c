"""channel_session, http_session, channel_and_http_session, and auth decorators."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.cache import SessionStore
from django.test import override_settings

from channels.auth import (
    channel_session_user,
    channel_session_user_from_http,
    http_session_user,
)
from channels.sessions import (
    channel_and_http_session,
    channel_session,
    http_session,
    session_for_reply_channel,
)
from tests.channels.helpers import message


def ws(layer, channel="websocket.receive", reply="websocket.send!abc", **extra):
    return message(layer, channel, reply_channel=reply, path="/chat/", **extra)


def test_channel_session_persists_per_reply_channel(layer):
    @channel_session
    def connect(message):
        message.channel_session["room"] = "lobby"

    @channel_session
    def receive(message):
        return message.channel_session.get("room")

    connect(ws(layer, "websocket.connect"))
    assert receive(ws(layer)) == "lobby"
    assert receive(ws(layer, reply="websocket.send!other")) is None
    assert session_for_reply_channel("websocket.send!abc")["room"] == "lobby"


def test_channel_session_saves_only_when_modified_and_not_on_error(layer):
    @channel_session
    def read_only(message):
        return message.channel_session.get("x")

    read_only(ws(layer))
    assert not SessionStore().exists(session_for_reply_channel("websocket.send!abc").session_key)

    @channel_session
    def failing(message):
        message.channel_session["x"] = 1
        raise RuntimeError("no save")

    with pytest.raises(RuntimeError):
        failing(ws(layer))
    assert session_for_reply_channel("websocket.send!abc").get("x") is None


def test_channel_session_needs_a_reply_channel(layer):
    @channel_session
    def consumer(message):
        pass

    with pytest.raises(ValueError, match="reply_channel"):
        consumer(message(layer, "plain.channel"))


def test_channel_session_works_on_methods(layer):
    class Consumer:
        @channel_session
        def handle(self, message):
            message.channel_session["m"] = 1

    Consumer().handle(ws(layer))
    assert session_for_reply_channel("websocket.send!abc")["m"] == 1


def test_http_session_from_cookie_and_query(layer):
    session = SessionStore()
    session["colour"] = "blue"
    session.save()

    @http_session
    def consumer(message):
        return None if message.http_session is None else message.http_session.get("colour")

    assert consumer(ws(layer, "websocket.connect", headers=[[b"cookie", f"sessionid={session.session_key}".encode()]])) == "blue"
    assert consumer(ws(layer, "websocket.connect", query_string=f"session_key={session.session_key}".encode())) == "blue"
    assert consumer(ws(layer, "websocket.connect")) is None


def test_channel_and_http_session_remembers_the_key(layer):
    session = SessionStore()
    session["colour"] = "red"
    session.save()

    @channel_and_http_session
    def consumer(message):
        return message.http_session and message.http_session.get("colour")

    assert consumer(ws(layer, "websocket.connect", headers=[[b"cookie", f"sessionid={session.session_key}".encode()]])) == "red"
    assert consumer(ws(layer)) == "red"  # later messages carry no cookie


@override_settings(CHANNEL_SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies")
def test_signed_cookie_sessions_are_refused(layer):
    @channel_session
    def consumer(message):
        pass

    with pytest.raises(ValueError, match="signed_cookies"):
        consumer(ws(layer))


@override_settings(CHANNEL_SESSION_ENGINE="django.contrib.sessions.backends.db")
def test_channel_session_on_the_database_backend(layer, django_db):
    @channel_session
    def write(message):
        message.channel_session["n"] = message.channel_session.get("n", 0) + 1

    write(ws(layer, reply="websocket.send!db1"))
    write(ws(layer, reply="websocket.send!db1"))
    assert session_for_reply_channel("websocket.send!db1")["n"] == 2


def test_auth_decorators(layer, django_db):
    from django.test import Client

    client = Client()
    session_key = client.get("/login/alice/").content.decode()
    cookie = [[b"cookie", f"sessionid={session_key}".encode()]]

    @http_session_user
    def who_http(message):
        return message.user

    @channel_session_user_from_http
    def connect(message):
        return message.user.username

    @channel_session_user
    def receive(message):
        return message.user

    assert who_http(ws(layer, "websocket.connect", headers=cookie)).username == "alice"
    assert who_http(ws(layer, "websocket.connect")).is_anonymous
    assert connect(ws(layer, "websocket.connect", headers=cookie)) == "alice"
    assert receive(ws(layer)).username == "alice"  # from the channel session, no cookie needed
    assert receive(ws(layer, reply="websocket.send!stranger")).is_anonymous


def test_channel_session_key_is_keyed_with_the_secret_and_not_derivable_from_the_name():
    import hashlib

    from channels.sessions import session_key_for

    key = session_key_for("websocket.send!abc")
    assert len(key) == 32 and key.startswith("chn;")
    assert hashlib.sha1(b"websocket.send!abc").hexdigest()[:29] not in key
    with override_settings(SECRET_KEY="another-secret-entirely-for-this-test"):
        assert session_key_for("websocket.send!abc") != key  # an HMAC of the name, keyed by SECRET_KEY


def test_a_channel_session_key_is_never_an_http_session(layer):
    from django.http import parse_cookie

    from channels.sessions import session_key_for

    store = session_for_reply_channel("websocket.send!abc")
    store["_auth_user_id"] = "1"
    store.save(must_create=True)
    key = session_key_for("websocket.send!abc")
    # As a cookie it cannot even be sent: ';' ends a cookie value.
    assert parse_cookie(f"sessionid={key}").get("sessionid") != key

    @http_session
    def connect(message):
        return message.http_session

    query = f"session_key={key.replace(';', '%3B')}".encode()
    assert connect(ws(layer, "websocket.connect", query_string=query, headers=[])) is None


def test_sessions_under_the_old_unkeyed_key_move_to_the_new_one(layer):
    from channels.sessions import legacy_session_key_for

    def store_under_old_key(reply, data):
        from django.core.cache import cache  # the sessions of these tests live in the cache

        cache.set(SessionStore.cache_key_prefix + legacy_session_key_for(reply), data)

    store_under_old_key("websocket.send!up", {"room": "before-upgrade"})

    @channel_session
    def receive(message):
        return message.channel_session.get("room")

    assert receive(ws(layer, reply="websocket.send!up")) == "before-upgrade"
    assert not SessionStore().exists(legacy_session_key_for("websocket.send!up"))  # gone from the old key
    assert session_for_reply_channel("websocket.send!up")["room"] == "before-upgrade"  # saved under the new

    store_under_old_key("websocket.send!late", {"room": "ignored"})
    with override_settings(CHANNELS_READ_LEGACY_SESSION_KEYS=False):
        assert receive(ws(layer, reply="websocket.send!late")) is None


def test_channel_session_is_deleted_after_the_disconnect_consumer(layer):
    @channel_session
    def connect(message):
        message.channel_session["room"] = "lobby"

    seen = []

    @channel_session
    def disconnect(message):
        seen.append(message.channel_session.get("room"))
        message.channel_session["left"] = True

    connect(ws(layer, "websocket.connect"))
    key = session_for_reply_channel("websocket.send!abc").session_key
    assert SessionStore().exists(key)
    disconnect(ws(layer, "websocket.disconnect", code=1000))
    assert seen == ["lobby"]  # the consumer still had it
    assert not SessionStore().exists(key)


def test_the_old_key_is_looked_up_once_per_connection_not_on_every_message(layer):
    from channels.sessions import legacy_session_key_for
    from tests.channels import counting_sessions

    @channel_session
    def read_only(message):
        return message.channel_session.get("room")

    with override_settings(CHANNEL_SESSION_ENGINE="tests.channels.counting_sessions"):
        for _ in range(5):
            assert read_only(ws(layer, reply="websocket.send!quiet")) is None
    assert counting_sessions.loads[legacy_session_key_for("websocket.send!quiet")] == 1
