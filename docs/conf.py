"""Sphinx configuration for the project's documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (or
``make -C docs html``); warnings are errors, so the build stays clean.
"""

from __future__ import annotations

import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

# The reference imports the Django app's modules; they need settings.
import django  # noqa: E402
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions",
                        "channels", "channels.delay"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CHANNEL_LAYERS={"default": {"BACKEND": "asgi_backends.inmemory.ChannelLayer", "ROUTING": []}},
        USE_TZ=True,
    )
    django.setup()

project = "Channels worker bus"
author = "the project's contributors"
copyright = "the project's contributors"
release = "1.2.0"
version = "1.2"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# "Attributes:" sections become field lists, not attribute entries of their
# own, so a property that is also listed there is not described twice.
napoleon_use_ivar = True
# Some classes list their options under "Class attributes:"; render those like
# parameters instead of letting docutils misread them.
napoleon_custom_sections = [("Class attributes", "params_style")]

_SECTION_WITH_NOTE = re.compile(r"^(\s*)(Class attributes|Args|Attributes|Returns|Raises) \(.*\):\s*$")


def _plain_section_headers(app, what, name, obj, options, lines):
    """Turn "Class attributes (besides X's):" into "Class attributes:" so napoleon sees a section."""
    for index, line in enumerate(lines):
        match = _SECTION_WITH_NOTE.match(line)
        if match:
            lines[index] = f"{match.group(1)}{match.group(2)}:"


def setup(app):
    # Runs before napoleon's own handler (priority 500), which parses the sections.
    app.connect("autodoc-process-docstring", _plain_section_headers, priority=400)

templates_path: list[str] = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = ["_static"]
html_theme_options = {
    "description": "Worker-model message bus for Django",
    "fixed_sidebar": True,
}
# Literal blocks are highlighted as Python when they parse as Python and
# shown plain otherwise (shell lines, diagrams, Procfiles).
highlight_language = "default"
# The same exception is reachable under two names (``layer.ChannelFull`` and
# ``asgi_backends.exceptions.ChannelFull``; ``channels.worker.Worker`` wraps
# ``worker.worker.Worker``): Sphinx links to one of them, which is right, but
# warns about the choice.
suppress_warnings = ["ref.python"]
# Forward references in type hints ("Message", "Router") that autodoc cannot
# resolve are cosmetic; do not let them fail the -W build.
nitpicky = False
