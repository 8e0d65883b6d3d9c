"""Settings of the fault harness's project; the harness sets the environment.

``FAULTS_REDIS_URL`` names one Redis server (``asgi_redis.RedisChannelLayer``,
the 1.x path), or ``FAULTS_SENTINELS`` (``host:port,...``) the sentinels of
service ``mymaster`` (``asgi_redis.RedisSentinelChannelLayer``, 1.x
arguments). Channel sessions live in the same Redis (the cache), so the
soak's key count sees them. ``FAULTS_JOURNAL`` is the directory the
consumers journal into (see ``journal.py``); ``FAULTS_EXPIRY`` the layer's
message expiry (default 10 s, so idle statistics keys lapse within 20 s);
``FAULTS_CONNECT_CAPACITY`` the capacity of ``websocket.connect`` (default:
the layer's 100, as for every channel).
"""

import os

SECRET_KEY = "fault-harness-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels", "faultproj"]
MIDDLEWARE = []
ROOT_URLCONF = "faultproj.urls"
DATABASES = {}
USE_TZ = True
LOGGING_CONFIG = None

_config = {"capacity": 100, "expiry": int(os.environ.get("FAULTS_EXPIRY", "10"))}
if os.environ.get("FAULTS_CONNECT_CAPACITY"):
    # Room for a burst of handshakes (every socket of a restarted server reconnecting at once).
    _config["channel_capacity"] = {"websocket.connect": int(os.environ["FAULTS_CONNECT_CAPACITY"])}
if os.environ.get("FAULTS_SENTINELS"):
    _sentinels = [(host, int(port)) for host, port in
                  (entry.rsplit(":", 1) for entry in os.environ["FAULTS_SENTINELS"].split(","))]
    CHANNEL_LAYERS = {"default": {"BACKEND": "asgi_redis.RedisSentinelChannelLayer",
                                  "CONFIG": {"hosts": _sentinels, "services": ["mymaster"], **_config},
                                  "ROUTING": "faultproj.routing.channel_routing"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    _url = os.environ.get("FAULTS_REDIS_URL", "redis://127.0.0.1:6379/0")
    CHANNEL_LAYERS = {"default": {"BACKEND": "asgi_redis.RedisChannelLayer",
                                  "CONFIG": {"hosts": [_url], **_config},
                                  "ROUTING": "faultproj.routing.channel_routing"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _url,
                          "KEY_PREFIX": "cache"}}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
