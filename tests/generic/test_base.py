"""BaseConsumer: method_mapping, route_class, as_route, session flags."""

from __future__ import annotations

from django.contrib.auth.models import User

from channels.auth import transfer_user
from channels.routing import route_class
from channels.sessions import save_channel_session, session_for_reply_channel
from channels.test import ChannelTestCase, Client, HttpClient, apply_routes

from .consumers import Recorder, SessionCounter, SessionUser


class BaseConsumerTests(ChannelTestCase):
    def test_channel_names_come_from_method_mapping(self):
        assert Recorder.channel_names() == {"thing.a", "thing.b"}
        route = route_class(Recorder)
        assert route.channel_names() == {"thing.a", "thing.b"}

    def test_each_channel_goes_to_its_method_with_routing_kwargs(self):
        client = Client()
        with apply_routes([route_class(Recorder, path=r"^/(?P<slug>\w+)/$")]):
            client.send_and_consume("thing.a", {"path": "/abc/", "value": 7})
            client.send_and_consume("thing.b", {"path": "/xyz/"})
            assert client.consume("thing.a", fail_on_none=False) is None
        first = self.get_next_message("results", require=True).content
        second = self.get_next_message("results", require=True).content
        assert first == {"handler": "a", "kwargs": {"slug": "abc"}, "value": 7}
        assert second == {"handler": "b", "kwargs": {"slug": "xyz"}}

    def test_filters_that_do_not_match_leave_the_message_unrouted(self):
        client = Client()
        with apply_routes([route_class(Recorder, path=r"^/only/$")]):
            client.send("thing.a", {"path": "/other/", "value": 1})
            with self.assertRaisesRegex(AssertionError, "No route matches"):
                client.consume("thing.a")

    def test_as_route_overrides_class_attributes_in_a_subclass(self):
        route = Recorder.as_route(attrs={"method_mapping": {"thing.c": "on_b"}}, path=r"^/c/$")
        assert route.channel_names() == {"thing.c"}
        assert Recorder.method_mapping == {"thing.a": "on_a", "thing.b": "on_b"}
        with apply_routes([route]):
            Client().send_and_consume("thing.c", {"path": "/c/"})
        assert self.get_next_message("results", require=True)["handler"] == "b"
        with self.assertRaisesRegex(TypeError, "dict of class attributes"):
            Recorder.as_route(attrs=["x"])

    def test_a_channel_outside_the_mapping_is_a_clear_error(self):
        from channels.message import Message

        message = Message({"value": 1}, "thing.z", self.get_layer())
        with self.assertRaisesRegex(ValueError, "'thing.z'.*method_mapping"):
            Recorder(message)

    def test_channel_session_flag_keeps_state_per_reply_channel(self):
        alice, bob = Client(), Client()
        with apply_routes([route_class(SessionCounter)]):
            alice.send_and_consume("count")
            alice.send_and_consume("count")
            bob.send_and_consume("count")
        counts = [self.get_next_message("results").content["n"] for _ in range(3)]
        assert counts == [1, 2, 1]

    def test_channel_session_user_flag_sets_message_user(self):
        user = User.objects.create_user("ada", password="pw")
        client = HttpClient()
        with apply_routes([route_class(SessionUser)]):
            client.send_and_consume("whoami")
            assert self.get_next_message("results").content == {"user": "AnonymousUser", "session": True}
            client.force_login(user)
            store = session_for_reply_channel(client.reply_channel)
            transfer_user(client.session, store)
            save_channel_session(store)
            client.send_and_consume("whoami")
        assert self.get_next_message("results").content == {"user": "ada", "session": True}

    def get_layer(self):
        from channels import channel_layers

        return channel_layers["default"]
