"""The end-to-end project on the same-machine layer: interface server and two runworkers, no Redis.

The tests are the Redis stack's own (imported below), run against a
``stack`` fixture that wires the processes through a SQLite layer directory
instead.
"""

from __future__ import annotations

import pytest

from tests.e2e import test_redis_stack as redis_stack
from tests.e2e.support import deployment, project_env

# In the order they are defined there: the last two stop the workers.
test_django_views_over_http = redis_stack.test_django_views_over_http
test_both_workers_share_the_requests = redis_stack.test_both_workers_share_the_requests
test_websocket_echo = redis_stack.test_websocket_echo
test_chat_survives_a_killed_worker = redis_stack.test_chat_survives_a_killed_worker
test_runworker_exits_0_on_sigterm = redis_stack.test_runworker_exits_0_on_sigterm

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Yield (http port, [worker Procs]) for the e2e project on a SQLite layer directory."""
    tmp = tmp_path_factory.mktemp("e2e-sqlite")
    env = project_env(tmp / "db.sqlite3")
    env["E2E_SQLITE_PATH"] = str(tmp / "layer")
    with deployment(env, tmp) as running:
        yield running
