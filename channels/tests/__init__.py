"""Deprecated alias of :mod:`channels.test`, kept because Channels 1.x had it.

Importing it warns (``DeprecationWarning``); import from ``channels.test``.
"""

import warnings

warnings.warn("channels.tests is deprecated; import from channels.test instead", DeprecationWarning, stacklevel=2)

from channels.test import *  # noqa: E402,F401,F403  (the whole public API, re-exported)
from channels.test import __all__  # noqa: E402,F401
