"""The headless-Chromium driver against a static page served by ``python -m http.server``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.browser import Browser, BrowserError
from tests.support.redis_server import free_port
from tests.support.waiting import wait_until


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


pytestmark = pytest.mark.browser

PAGE = """<!doctype html><html><head><title>probe</title></head>
<body><p id="out">waiting</p><button id="b" onclick="clicked()">go</button>
<script>
function clicked() { document.getElementById('out').textContent = 'clicked'; }
setTimeout(function () { window.later = 42; console.log('later set'); }, 300);
</script></body></html>"""


@pytest.fixture(scope="module")
def static_site(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text(PAGE)
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_text("<!doctype html><body>sub page</body>")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    try:
        wait_until(lambda: port_open(port), max(0.0, deadline - time.monotonic()), what=f"a server on port {port}")
    except AssertionError:
        server.kill()
        raise
    yield f"http://127.0.0.1:{port}/index.html"
    server.terminate()
    server.wait(timeout=5)


def test_open_evaluate_wait_screenshot_close(static_site, tmp_path):
    with Browser() as browser:
        pid = browser.process.pid
        page = browser.new_page(static_site)
        assert page.evaluate("document.title") == "probe"
        assert page.evaluate("Promise.resolve(6 * 7)") == 42
        assert page.wait_for("window.later", timeout=5) == 42
        assert "log: later set" in page.console()
        page.evaluate("document.getElementById('b').click()")
        assert page.wait_for("document.getElementById('out').textContent === 'clicked'")
        shot = page.screenshot(tmp_path / "probe.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        page.reload()
        assert page.evaluate("document.getElementById('out').textContent") == "waiting"
        page.goto(static_site.rsplit("/", 1)[0] + "/sub")  # redirected to /sub/
        assert page.evaluate("location.pathname") == "/sub/"
        assert page.evaluate("document.body.textContent") == "sub page"
        with pytest.raises(BrowserError, match="never"):
            page.wait_for("window.never", timeout=0.3, what="never")
        with pytest.raises(BrowserError, match="ReferenceError"):
            page.evaluate("undefinedThing.x")
        page.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
