"""Binding and WebsocketBinding in-process: outbound broadcasts and inbound actions."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User

from channels.binding.base import Binding
from channels.binding.websockets import WebsocketBinding
from channels.generic.websockets import WebsocketDemultiplexer
from channels.routing import route_class
from channels.test import ChannelTestCase, WSClient, apply_routes

from .models import Item


class ItemBinding(WebsocketBinding):
    model = "binding.Item"
    stream = "items"
    exclude = ["secret"]

    @classmethod
    def group_names(cls, instance):
        return ["items", f"owner-{instance.owner}"]

    def has_permission(self, user, action, pk):
        return user is not None and user.is_authenticated and (action != "delete" or user.is_staff)


class NameOnlyBinding(WebsocketBinding):
    model = Item
    stream = "names"
    fields = ["name"]
    send_on_commit = True

    @classmethod
    def group_names(cls, instance):
        return ["names"]


class Demux(WebsocketDemultiplexer):
    http_user = True
    consumers = {"items": ItemBinding.consumer}
    groups = ["items"]


@pytest.fixture(autouse=True, scope="module")
def _unregister():
    yield
    ItemBinding.unregister()
    NameOnlyBinding.unregister()


def frames(client):
    found = []
    while (frame := client.receive()) is not None:
        found.append(frame)
    return found


def watcher(*groups):
    from channels import Group

    client = WSClient()
    for group in groups:
        Group(group).add(client.reply_channel)
    return client


class OutboundTests(ChannelTestCase):
    def test_create_update_delete_reach_the_groups(self):
        everyone = watcher("items")
        item = Item.objects.create(name="lamp", value=3, owner="ada", secret="s3")
        item.value = 4
        item.save()
        pk = item.pk
        item.delete()
        sent = frames(everyone)
        assert [f["stream"] for f in sent] == ["items"] * 3
        assert [f["payload"]["action"] for f in sent] == ["create", "update", "delete"]
        assert all(f["payload"]["pk"] == pk and f["payload"]["model"] == "binding.item" for f in sent)
        assert sent[0]["payload"]["data"] == {"name": "lamp", "value": 3, "owner": "ada"}  # no secret
        assert sent[1]["payload"]["data"]["value"] == 4

    def test_moving_between_groups_sends_delete_and_create(self):
        ada, bob = watcher("owner-ada"), watcher("owner-bob")
        item = Item.objects.create(name="pen", owner="ada")
        assert [f["payload"]["action"] for f in frames(ada)] == ["create"]
        item.owner = "bob"
        item.save()
        assert [f["payload"]["action"] for f in frames(ada)] == ["delete"]
        assert [(f["payload"]["action"], f["payload"]["data"]["owner"]) for f in frames(bob)] == [("create", "bob")]

    def test_send_on_commit_waits_for_the_transaction(self):
        names = watcher("names")
        with self.captureOnCommitCallbacks(execute=True):
            Item.objects.create(name="cup")
            assert frames(names) == []
        sent = frames(names)
        assert [(f["stream"], f["payload"]["data"]) for f in sent] == [("names", {"name": "cup"})]

    def test_fields_or_exclude_is_required(self):
        with pytest.raises(ValueError, match="exactly one of fields"):
            class Neither(WebsocketBinding):
                model = Item

    def test_hooks_must_be_implemented(self):
        class Bare(Binding):
            pass

        with pytest.raises(NotImplementedError, match="group_names"):
            Bare.group_names(Item())


class InboundTests(ChannelTestCase):
    def setUp(self):
        self.user = User.objects.create_user("ada", password="pw")
        self.client_ = WSClient()
        self.client_.force_login(self.user)
        self.routes = apply_routes([route_class(Demux)])
        self.routes.__enter__()
        self.client_.send_and_consume("websocket.connect")

    def tearDown(self):
        self.routes.__exit__(None, None, None)

    def request(self, payload, client=None):
        client = client or self.client_
        client.send_and_consume("websocket.receive", text={"stream": "items", "payload": payload})
        return [f["payload"] for f in frames(client)]

    def test_create_update_come_back_as_broadcasts(self):
        created = self.request({"action": "create", "data": {"name": "mug", "value": 1}})
        assert [(p["action"], p["data"]["name"]) for p in created] == [("create", "mug")]
        pk = created[0]["pk"]
        updated = self.request({"action": "update", "pk": pk, "data": {"value": 9}})
        assert [(p["action"], p["data"]["value"]) for p in updated] == [("update", 9)]
        assert Item.objects.get(pk=pk).value == 9

    def test_permission_hook_refuses(self):
        item = Item.objects.create(name="vase")
        frames(self.client_)
        assert self.request({"action": "delete", "pk": item.pk}) == [
            {"error": "permission denied for delete", "action": "delete", "pk": item.pk}]
        assert Item.objects.filter(pk=item.pk).exists()
        self.user.is_staff = True
        self.user.save()
        assert [p["action"] for p in self.request({"action": "delete", "pk": item.pk})] == ["delete"]
        assert not Item.objects.filter(pk=item.pk).exists()

    def test_anonymous_users_are_refused(self):
        stranger = WSClient()
        stranger.send_and_consume("websocket.connect")
        reply = self.request({"action": "create", "data": {"name": "x"}}, client=stranger)
        assert reply == [{"error": "permission denied for create", "action": "create", "pk": None}]
        assert not Item.objects.exists()

    def test_bad_requests_get_clear_errors(self):
        item = Item.objects.create(name="box")
        frames(self.client_)
        cases = [
            ({"data": {}}, 'expected an object with "action" (and "pk", "data")'),
            ({"action": "explode", "pk": 1}, "unknown action 'explode'; use one of create, update, delete"),
            ({"action": "update", "data": {}}, "update needs a pk"),
            ({"action": "update", "pk": 999999, "data": {"value": 1}}, "no item with pk 999999"),
            ({"action": "update", "pk": item.pk, "data": {"secret": "x"}},
             "fields ['secret'] cannot be set (settable: ['name', 'owner', 'value'])"),
            ({"action": "update", "pk": item.pk, "data": [1]}, '"data" must be an object, not [1]'),
        ]
        for payload, error in cases:
            assert [p["error"] for p in self.request(payload)] == [error], payload
        invalid = self.request({"action": "update", "pk": item.pk, "data": {"value": "lots"}})
        assert invalid[0]["error"].startswith("invalid data")
        too_long = self.request({"action": "create", "data": {"name": "x" * 60}})
        assert too_long[0]["error"].startswith("invalid data") and "name" in too_long[0]["error"]
        assert Item.objects.get(pk=item.pk).secret == ""
        assert Item.objects.count() == 1

    def test_without_a_demultiplexer_errors_are_bare_frames(self):
        from channels.routing import route

        client = WSClient()
        with apply_routes([route("websocket.receive", ItemBinding.consumer)]):
            client.send_and_consume("websocket.receive", text={"action": "create", "data": {"name": "x"}})
        assert client.get_next_message(client.reply_channel).content == {
            "text": json.dumps({"error": "permission denied for create", "action": "create", "pk": None})}


class MembersTests(ChannelTestCase):
    def test_send_members_adds_attributes_and_methods(self):
        from channels.binding.websockets import WebsocketBindingWithMembers

        class WithMembers(WebsocketBindingWithMembers):
            model = Item
            stream = "members"
            fields = ["name"]
            send_members = ["__str__", "name.upper", "pk"]

            @classmethod
            def group_names(cls, instance):
                return ["members"]

        try:
            members = watcher("members")
            item = Item.objects.create(name="ink")
            data = frames(members)[0]["payload"]["data"]
            assert data == {"name": "ink", "__str__": "Item object (%d)" % item.pk, "name.upper": "INK", "pk": item.pk}
        finally:
            WithMembers.unregister()
