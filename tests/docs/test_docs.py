"""The documentation builds cleanly and stays in step with the code."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

SHELL_PREFIXES = ("django-admin", "python", "cd ", "pip ", "redis-server", "curl ", "systemctl",
                  "interface-server", "web:", "bash ", "browsers", "honcho")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Build the HTML docs with warnings as errors; return the output directory."""
    out = tmp_path_factory.mktemp("docs")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / ".doctrees"), str(DOCS), str(out / "html")],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert result.returncode == 0, f"sphinx-build -W failed:\n{result.stdout}\n{result.stderr}"
    assert "WARNING" not in result.stderr, result.stderr
    return out


def test_docs_build_without_warnings(built):
    html = built / "html"
    for page in ("index", "getting-started", "backends", "interface-server", "deploying", "reference"):
        assert (html / f"{page}.html").exists(), page
    reference = (html / "reference.html").read_text()
    # autodoc really imported the modules (an import failure leaves no entries).
    for name in ("channels.routing.Route", "asgi_backends.redis.layer.RedisChannelLayer",
                 "interface_server.server.Server", "worker.worker.Worker"):
        assert f'id="{name}"' in reference, f"{name} missing from the reference"


def test_every_interface_server_option_is_documented():
    from interface_server.cli import build_parser

    page = (DOCS / "interface-server.rst").read_text()
    documented = set(re.findall(r"^\.\. option:: (.+)$", page, re.M))
    flags = {flag for line in documented for flag in re.findall(r"(--?[\w-]+)", line)}
    missing = [option for action in build_parser()._actions for option in action.option_strings
               if option not in flags]
    assert not missing, f"interface-server options missing from docs/interface-server.rst: {missing}"


COMMAND_OPTIONS = """
import json
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=["django.contrib.staticfiles", "channels"], STATIC_URL="/static/")
django.setup()
from django.core.management import load_command_class
from django.core.management.base import BaseCommand
base = {o for a in BaseCommand().create_parser("manage.py", "x")._actions for o in a.option_strings}
found = {}
for name in ("runserver", "runworker"):
    parser = load_command_class("channels", name).create_parser("manage.py", name)
    found[name] = sorted(o for a in parser._actions for o in a.option_strings if o not in base)
print(json.dumps(found))
"""


def test_every_command_option_is_documented():
    """runserver's and runworker's own options appear in docs/commands.rst."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", COMMAND_OPTIONS], capture_output=True, text=True, cwd=REPO,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    page = (DOCS / "commands.rst").read_text()
    documented = " ".join(re.findall(r"^\.\. option:: (.+)$", page, re.M)).split()
    # Django's own runserver options are described in prose, not one by one.
    django_own = {"--ipv6", "-6", "--nothreading", "--noreload", "--nostatic", "--insecure", "--skip-checks"}
    missing = [option for options in json.loads(result.stdout).values() for option in options
               if option not in documented and option not in django_own]
    assert not missing, f"command options missing from docs/commands.rst: {missing}"


def test_getting_started_code_is_valid_python(built):
    """Every Python block of the walkthrough compiles (shell and JS blocks aside)."""
    from docutils import nodes

    doctree = pickle.loads((built / ".doctrees" / "getting-started.doctree").read_bytes())
    checked = 0
    for block in doctree.findall(nodes.literal_block):
        text = block.astext()
        language = block.get("language", "default")
        if language not in ("default", "python", "python3") or text.lstrip().startswith(SHELL_PREFIXES):
            continue
        compile(text, f"getting-started block {checked}", "exec")
        checked += 1
    assert checked >= 10
