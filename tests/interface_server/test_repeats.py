"""Floods of one warning: the first is logged, then one count per interval."""

from __future__ import annotations

import logging

import pytest
from twisted.internet import task

from interface_server.repeats import RepeatedWarnings

logger = logging.getLogger("interface_server.test")


def test_the_first_of_a_kind_is_logged_then_a_count_per_interval(caplog):
    clock = task.Clock()
    warnings = RepeatedWarnings(clock, interval=10)
    with caplog.at_level("WARNING", logger="interface_server.test"):
        for n in range(500):
            warnings.warn(logger, "full; answering 503 to %s", n)
        warnings.warn(logger, "another kind %s", 1)
        assert [r.getMessage() for r in caplog.records] == ["full; answering 503 to 0", "another kind 1"]
        clock.advance(10)
        assert caplog.records[-1].getMessage() == "... and 499 more like 'full; answering 503 to %s' in the last 10 s"
        clock.advance(10)  # nothing held back: no line
        assert len(caplog.records) == 3
        clock.advance(5)
        warnings.warn(logger, "full; answering 503 to %s", "later")
        assert caplog.records[-1].getMessage() == "full; answering 503 to later"


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        RepeatedWarnings(task.Clock(), interval=0)
