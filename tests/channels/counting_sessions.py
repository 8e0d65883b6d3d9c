"""A session engine for tests: the cache engine, counting the loads of each session key."""

from collections import Counter

from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore

loads: Counter = Counter()


class SessionStore(CacheSessionStore):
    def load(self):
        loads[self.session_key] += 1
        return super().load()
