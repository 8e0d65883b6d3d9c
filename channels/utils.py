"""Small helpers shared by the app's modules."""

from __future__ import annotations

import types
from typing import Any


def name_that_thing(thing: Any) -> str:
    """Return a human-readable dotted name for a function, class, method or instance."""
    if isinstance(thing, types.MethodType):
        return f"{name_that_thing(thing.__self__)}.{thing.__func__.__name__}"
    if hasattr(thing, "__qualname__") and hasattr(thing, "__module__"):
        return f"{thing.__module__}.{thing.__qualname__}"
    if hasattr(thing, "__class__"):
        return f"{type(thing).__module__}.{type(thing).__qualname__}"
    return repr(thing)
