"""The chat example end to end: real runserver, real headless Chromium pages."""

from __future__ import annotations

import json
import shutil
import urllib.request
import uuid

import pytest

from tests.examples.chat_server import ChatServer
from tests.support.browser import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = "/tmp/chat-example.png"


@pytest.fixture(scope="module")
def chat_servers(tmp_path_factory):
    """Start chat servers on demand, one per layer, shared by the module's tests."""
    started: dict[str, ChatServer] = {}

    def get(layer: str) -> ChatServer:
        if layer not in started:
            chat = ChatServer(tmp_path_factory.mktemp(f"chat-{layer}"), layer=layer)
            chat.migrate()
            started[layer] = chat.start()
        return started[layer]

    yield get
    for chat in started.values():
        chat.stop(workers=True)


@pytest.fixture
def server(chat_servers):
    """runserver alone, on the in-memory layer."""
    return chat_servers("inmemory")


@pytest.fixture(params=["inmemory", "sqlite"])
def any_server(request, chat_servers):
    """runserver alone on the in-memory layer, or runserver --noworker + two runworkers on the same-machine layer."""
    return chat_servers(request.param)


@pytest.fixture(scope="module")
def browser():
    with Browser() as chromium:
        yield chromium


def open_room(browser: Browser, server: ChatServer, room: str, nick: str) -> Page:
    page = browser.new_page(f"{server.url}/room/{room}/")
    page.wait_for("window.chat && window.chat.state === 'connected'", timeout=10,
                  what=f"the {room} page to connect")
    page.evaluate(f"window.chat.setNick({json.dumps(nick)})")
    return page


def say(page: Page, text: str) -> None:
    """Type into the input box and press Send, as a person would."""
    page.evaluate(f"""(() => {{
        const input = document.getElementById('input');
        input.value = {json.dumps(text)};
        document.getElementById('send').click();
    }})()""")


def shows(text: str) -> str:
    return ("Array.from(document.querySelectorAll('#messages .text'))"
            f".some(el => el.textContent === {json.dumps(text)})")


def texts(page: Page) -> list[str]:
    return page.evaluate("Array.from(document.querySelectorAll('#messages .text')).map(el => el.textContent)")


def test_rooms_talk_and_history_persists(any_server, browser, tmp_path):
    server = any_server
    alice = open_room(browser, server, "lobby", "alice")
    bob = open_room(browser, server, "lobby", "bob")
    carol = open_room(browser, server, "random", "carol")
    tag = uuid.uuid4().hex[:8]
    hello, reply, elsewhere = f"hello from alice {tag}", f"hi alice, bob here {tag}", f"carol alone {tag}"

    say(alice, hello)
    bob.wait_for(shows(hello), what="bob to see alice's message")
    alice.wait_for(shows(hello), what="alice to see her own message")
    say(bob, reply)
    alice.wait_for(shows(reply), what="alice to see bob's reply")
    assert bob.evaluate("document.querySelector('#messages li:last-child .nick').textContent") == "bob"

    # Carol's own message reaches her only after both lobby messages were
    # broadcast, so by then she would have seen them if rooms leaked.
    say(carol, elsewhere)
    carol.wait_for(shows(elsewhere), what="carol to see her own message")
    assert hello not in texts(carol) and reply not in texts(carol)
    assert elsewhere not in texts(alice)
    assert all(frame.get("room") == "random" for frame in carol.evaluate("window.chat.received"))

    # History: a reload (and a brand-new page) shows what was said, in order.
    bob.reload()
    bob.wait_for(shows(reply), timeout=5, what="history after reload")
    said = texts(bob)
    assert said.index(hello) < said.index(reply)
    late = browser.new_page(f"{server.url}/room/lobby/")
    late.wait_for(shows(hello) + " && " + shows(reply), timeout=5, what="history on a new page")
    assert elsewhere not in texts(late)

    shot = late.screenshot(tmp_path / "chat.png")
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    shutil.copy(shot, SCREENSHOT)  # kept for a person to look at
    for page in (alice, bob, carol, late):
        page.close()


def test_anything_can_post_to_chat_messages(server, browser):
    """A view feeds the chat-messages channel like the socket does; the page shows it."""
    page = open_room(browser, server, "help", "dora")
    text = f"posted over HTTP {uuid.uuid4().hex[:8]}"
    request = urllib.request.Request(
        f"{server.url}/room/help/messages/", data=json.dumps({"nick": "bot", "message": text}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    page.wait_for(shows(text), what="the posted message on the page")
    page.close()


def test_unknown_room_socket_is_refused(server, browser):
    page = browser.new_page(f"{server.url}/room/lobby/")
    outcome = page.evaluate(f"""new Promise(resolve => {{
        const socket = new WebSocket('ws://127.0.0.1:{server.port}/chat/no-such-room/');
        socket.onopen = () => resolve('open');
        socket.onclose = () => resolve('closed');
    }})""")
    assert outcome == "closed"
    page.close()


def test_page_reconnects_after_server_restart(server, browser):
    page = open_room(browser, server, "lobby", "erin")
    before = page.evaluate("window.chat.connects")
    server.stop()
    page.wait_for("window.chat.state === 'offline'", timeout=10, what="the page to notice the restart")
    assert page.evaluate("document.getElementById('status-text').textContent").startswith("Offline")
    assert page.evaluate("document.getElementById('input').disabled") is True
    server.start()
    page.wait_for(f"window.chat.state === 'connected' && window.chat.connects > {before}", timeout=20,
                  what="the page to reconnect")
    text = f"back again {uuid.uuid4().hex[:8]}"
    say(page, text)
    page.wait_for(shows(text), what="a message after the reconnect")
    page.close()
