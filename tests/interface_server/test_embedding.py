"""The Python API the Django runserver command embeds: Server, ServerConfig, on_ready, stop()."""

from __future__ import annotations

import http.client
import subprocess
import sys
import textwrap

from .conftest import REPO

SCRIPT = textwrap.dedent('''
    import sys, threading
    from asgi_backends.inmemory import ChannelLayer
    from interface_server.config import ServerConfig
    from interface_server.server import Server

    layer = ChannelLayer(blocking_timeout=0.2)

    def application():
        # In-process "worker": answer one request, then stop the server from this thread.
        while True:
            channel, message = layer.receive(["http.request"], block=True)
            if channel:
                layer.send(message["reply_channel"], {"status": 200, "content": b"embedded " + message["path"].encode()})
                server.stop()
                return

    def ready(addresses):
        print("READY", server.listening_ports[0], addresses, flush=True)

    server = Server(layer, ServerConfig(endpoints=["tcp:port=0:interface=127.0.0.1"], on_ready=ready,
                                        signal_handlers=False))
    threading.Thread(target=application, daemon=True).start()
    code = server.run()
    print("EXIT", code, server.ready.is_set(), flush=True)
''')


def test_server_embedded_with_in_memory_layer_and_stopped_from_a_thread(tmp_path):
    script = tmp_path / "embed.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY "), line
        port = int(line.split()[1])
        assert "tcp:127.0.0.1:%d" % port in line
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/hello")
        assert conn.getresponse().read() == b"embedded /hello"
        conn.close()
        assert proc.wait(10) == 0
        assert proc.stdout.read().strip() == "EXIT 0 True"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
