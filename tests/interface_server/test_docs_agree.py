"""The interface server's documentation says what its code does: defaults, versions, close codes."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from interface_server.cli import build_parser
from interface_server.config import ServerConfig
from interface_server.http_parse import _VERSIONS
from interface_server.ws_protocol import is_sendable_close_code

DOCS = Path(__file__).resolve().parents[2] / "docs"


def option_blocks() -> dict[str, str]:
    """Map each flag documented in interface-server.rst to its paragraph (whitespace collapsed)."""
    page = (DOCS / "interface-server.rst").read_text()
    blocks = {}
    for match in re.finditer(r"^\.\. option:: (.+)\n((?:\n|   .*\n)*)", page, re.M):
        text = " ".join(match.group(2).split())
        for flag in re.findall(r"(--?[\w-]+)", match.group(1)):
            blocks[flag] = text
    return blocks


def number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_every_option_documents_its_default_as_the_parser_has_it():
    blocks = option_blocks()
    for action in build_parser()._actions:
        if not action.option_strings or action.nargs == 0 or action.dest == "help":
            continue  # the positional, flags, --help
        text = blocks[action.option_strings[-1]]
        assert "default" in text.lower(), f"{action.option_strings} documents no default"
        if isinstance(action.default, (int, float)) and not isinstance(action.default, bool):
            documented = re.findall(r"\(default (-?[\d.]+)", text)
            assert documented, f"{action.option_strings}: no '(default N' in {text!r}"
            assert float(documented[0]) == action.default, (
                f"{action.option_strings}: docs say default {documented[0]}, the code {action.default}")


def test_server_config_docstring_gives_every_field_and_numeric_default():
    doc = " ".join(ServerConfig.__doc__.split())
    for field in dataclasses.fields(ServerConfig):
        entry = re.search(rf" {field.name}: (.*?)(?= \w+: |$)", doc)
        assert entry, f"ServerConfig docstring does not describe {field.name}"
        default = field.default
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert f"Default {number(default)}" in entry.group(1), f"{field.name}: default {default} not documented"


def test_http_versions_documented_are_those_the_server_produces():
    page = (DOCS / "asgi.rst").read_text()
    row = re.search(r"^``http_version``\s+(.*(?:\n {20}.*)*)", page, re.M).group(1)
    claimed = set(re.findall(r'``"([\d.]+)"``', row.split("ASGI also allows")[0]))
    assert claimed == set(_VERSIONS.values())


def test_close_codes_documented_are_those_the_server_sends():
    codes = [code for code in range(65536) if is_sendable_close_code(code)]
    ranges, start = [], codes[0]
    for previous, code in zip(codes, codes[1:] + [None]):
        if code != previous + 1:
            ranges.append(f"{start}-{previous}")
            start = code
    assert ranges == ["1000-1003", "1007-1014", "3000-4999"]
    for page in ("asgi.rst", "interface-server.rst"):
        text = " ".join((DOCS / page).read_text().split())
        assert "1000-1003, 1007-1014 and 3000-4999" in text, page
