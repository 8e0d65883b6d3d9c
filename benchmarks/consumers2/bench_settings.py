"""The peer benchmark project's Channels 4 settings (``benchproj``, BENCH_STACK=ch4), run on this project.

Only ``"daphne"`` leaves INSTALLED_APPS: the same ASGI_APPLICATION
(``benchproj.asgi_ch4.application``), the same consumers, the same
``channels_redis.core.RedisChannelLayer`` CONFIG.
"""

import os

os.environ.setdefault("BENCH_STACK", "ch4")

from benchproj.settings import *  # noqa: E402,F401,F403

INSTALLED_APPS = ["channels"]
