"""Unit tests of the chat consumers and views, with channels' test helpers.

Run them with ``python manage.py test chat`` (the project's suite does,
from ``tests/examples/test_chat_unit.py``).
"""

import json

from channels.test import ChannelTestCase, HttpClient, WSClient

from .models import MAX_MESSAGE_LENGTH, ChatMessage, Room


class ChatConsumerTests(ChannelTestCase):
    def connect(self, room="lobby", nick="ann"):
        client = WSClient()
        client.send_and_consume("websocket.connect", path=f"/chat/{room}/?nick={nick}")
        return client

    def say(self, client, frame, room="lobby"):
        client.send_and_consume("websocket.receive", path=f"/chat/{room}/", text=frame)

    def test_message_is_saved_and_broadcast_to_the_room_only(self):
        ann, ben = self.connect(nick="ann"), self.connect(nick="ben")
        cy = self.connect(room="random", nick="cy")
        self.say(ann, {"type": "message", "message": "hi all"})
        self.assertIsNone(ben.receive())  # nothing until chat-messages runs
        ann.consume("chat-messages")
        for client in (ann, ben):
            frame = client.receive()
            self.assertEqual((frame["nick"], frame["message"], frame["room"]), ("ann", "hi all", "lobby"))
        self.assertIsNone(cy.receive())
        saved = ChatMessage.objects.get()
        self.assertEqual((saved.room.slug, saved.nick, saved.message), ("lobby", "ann", "hi all"))

    def test_unknown_room_is_refused(self):
        client = WSClient()
        client.send_and_consume("websocket.connect", path="/chat/no-such-room/", check_accept=False)
        self.assertEqual(client.receive(json=False), {"close": True})

    def test_other_paths_are_refused(self):
        client = WSClient()
        client.send_and_consume("websocket.connect", path="/elsewhere/", check_accept=False)
        self.assertEqual(client.receive(json=False), {"close": True})

    def test_bad_frames_get_an_error_and_queue_nothing(self):
        ann = self.connect()
        for frame in ("not json", "[1, 2]", {"type": "dance"},
                      {"type": "message", "message": "x" * (MAX_MESSAGE_LENGTH + 1)}):
            self.say(ann, frame)
            self.assertEqual(ann.receive()["type"], "error")
        self.assertIsNone(self.get_next_message("chat-messages"))

    def test_nick_change_applies_to_later_messages(self):
        ann = self.connect()
        self.say(ann, {"type": "nick", "nick": "  Ann   Lee "})
        self.say(ann, {"type": "message", "message": "renamed"})
        message = self.get_next_message("chat-messages", require=True)
        self.assertEqual(message.content["nick"], "Ann Lee")

    def test_disconnect_leaves_the_group(self):
        ann, ben = self.connect(nick="ann"), self.connect(nick="ben")
        ben.send_and_consume("websocket.disconnect", {"code": 1000}, path="/chat/lobby/")
        self.say(ann, {"type": "message", "message": "anyone?"})
        ann.consume("chat-messages")
        self.assertEqual(ann.receive()["message"], "anyone?")
        self.assertIsNone(ben.receive())


class ChatViewTests(ChannelTestCase):
    def test_room_page_shows_history(self):
        lobby = Room.objects.get(slug="lobby")
        ChatMessage.objects.create(room=lobby, nick="ann", message="<b>earlier</b>")
        response = HttpClient().request("GET", "/room/lobby/")
        self.assertEqual(response["status"], 200)
        page = response["content"].decode()
        self.assertIn("\\u003Cb\\u003Eearlier\\u003C/b\\u003E", page)  # JSON-escaped, never raw HTML
        self.assertNotIn("<b>earlier</b>", page)

    def test_messages_after_an_id(self):
        lobby = Room.objects.get(slug="lobby")
        first = ChatMessage.objects.create(room=lobby, nick="ann", message="one")
        ChatMessage.objects.create(room=lobby, nick="ann", message="two")
        response = HttpClient().request("GET", f"/room/lobby/messages/?after={first.id}")
        self.assertEqual([m["message"] for m in json.loads(response["content"])["messages"]], ["two"])
        bad = HttpClient().request("GET", "/room/lobby/messages/?after=x")
        self.assertEqual(bad["status"], 400)

    def test_post_queues_on_chat_messages(self):
        client = HttpClient()
        response = client.request("POST", "/room/help/messages/", body=b'{"nick": "bot", "message": "beep"}',
                                  headers={"Content-Type": "application/json"})
        self.assertEqual(response["status"], 202)
        client.consume("chat-messages")
        self.assertEqual(ChatMessage.objects.get().message, "beep")
        not_json = client.request("POST", "/room/help/messages/", body=b"message=beep",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(not_json["status"], 415)

    def test_new_room(self):
        from django.test import Client

        response = Client().post("/rooms/new/", {"title": "Book Club"})
        self.assertEqual(response["Location"], "/room/book-club/")
        self.assertTrue(Room.objects.filter(slug="book-club", title="Book Club").exists())
