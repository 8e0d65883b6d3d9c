"""The layer's Lua scripts: read once from ``scripts/*.lua``, called by SHA.

Every script is ``common.lua`` followed by its own file, so helpers such as
expiry trimming are written once. The SHA1 is computed here, so nothing is
sent to Redis until a script is first needed; :class:`~.connection.Shard`
loads it on ``NOSCRIPT`` (first use, or after a Redis restart emptied the
script cache).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

NAMES = ("send", "send_batch", "receive", "receive_batch", "send_group", "group_add", "group_discard", "group_channels", "channel_statistics",
         "expired")


@dataclass(frozen=True)
class Script:
    """One Lua script's source and SHA1."""

    name: str
    source: str
    sha: str


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("scripts", f"{name}.lua").read_text(encoding="utf-8")


def load_scripts() -> dict[str, Script]:
    """Return every script of the layer keyed by name."""
    common = _read("common")
    scripts = {}
    for name in NAMES:
        source = f"{common}\n-- {name}.lua\n{_read(name)}"
        scripts[name] = Script(name, source, hashlib.sha1(source.encode("utf-8")).hexdigest())
    return scripts


SCRIPTS = load_scripts()
