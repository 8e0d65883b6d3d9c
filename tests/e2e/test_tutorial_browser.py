"""The seed 002 tutorial in headless Chromium: two tabs on one room, as the seed's last step tells the reader to do.

Real processes (redis-server, ``interface-server config.asgi:application``,
two ``runworker``), the seed's own ``room.html`` (a plain ``new WebSocket``).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_tutorial_project import Deployment
from tests.support.browser import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def type_and_send(page: Page, text: str) -> None:
    """Type into the message box and press Enter, as the reader would."""
    page.evaluate(f"""(() => {{
        const input = document.querySelector('#chat-message-input');
        input.value = {json.dumps(text)};
        input.dispatchEvent(new KeyboardEvent('keyup', {{keyCode: 13}}));
    }})()""")


def log_has(text: str) -> str:
    return f"document.querySelector('#chat-log').value.split('\\n').includes({json.dumps(text)})"


def open_room(browser: Browser, port: int, room: str) -> Page:
    page = browser.new_page(f"http://127.0.0.1:{port}/chat/{room}/")
    page.wait_for("typeof chatSocket !== 'undefined' && chatSocket.readyState === WebSocket.OPEN", timeout=10,
                  what=f"the {room} page's socket to open")
    return page


def test_two_tabs_in_one_room_see_each_others_messages(tmp_path):
    running = Deployment(tmp_path)
    try:
        with Browser() as browser:
            first = open_room(browser, running.port, "lobby")
            second = open_room(browser, running.port, "lobby")
            elsewhere = open_room(browser, running.port, "kitchen")
            type_and_send(first, "hello from tab one")
            for page in (first, second):
                page.wait_for(log_has("hello from tab one"), what="tab one's message")
            type_and_send(second, "and back from tab two")
            for page in (first, second):
                page.wait_for(log_has("and back from tab two"), what="tab two's message")
            type_and_send(elsewhere, "kitchen only")
            elsewhere.wait_for(log_has("kitchen only"), what="the kitchen's own message")
            assert not first.evaluate(log_has("kitchen only"))
            assert first.evaluate("document.querySelector('#chat-log').value") == (
                "hello from tab one\nand back from tab two\n")
            first.screenshot(tmp_path / "tutorial-tab-one.png")
    finally:
        running.stop()
