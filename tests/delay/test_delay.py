"""The delay server in-process: request validation, storing, sending due rows, full channels."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.retry import RetryPolicy
from channels import channel_layers
from channels.delay.models import DelayedMessage, InvalidDelayedMessage
from channels.delay.worker import DelayWorker
from channels.test import ChannelTestCase


def layer():
    return channel_layers["default"]


class RequestTests(ChannelTestCase):
    def test_bad_requests_are_refused_with_the_reason(self):
        cases = [
            ("not a dict", "must be a dict"),
            ({"channel": "x", "content": {}}, "lacks ['delay']"),
            ({"channel": 5, "content": {}, "delay": 1}, "'channel' must be a channel name"),
            ({"channel": "bad name!!", "content": {}, "delay": 1}, "is not a valid channel name"),
            ({"channel": "body?", "content": {}, "delay": 1}, "is not a valid channel name"),  # a pattern
            ({"channel": "x", "content": [1], "delay": 1}, "'content' must be a dict"),
            ({"channel": "x", "content": {}, "delay": "soon"}, "'delay' must be a number"),
            ({"channel": "x", "content": {}, "delay": True}, "'delay' must be a number"),
            ({"channel": "x", "content": {}, "delay": float("nan")}, "'delay' must be a number"),
            ({"channel": "x", "content": {}, "delay": -1}, "between 0 and"),
        ]
        for request, reason in cases:
            with pytest.raises(InvalidDelayedMessage, match=reason.replace("[", r"\[").replace("]", r"\]")):
                DelayedMessage.from_request(request, layer())

    def test_due_date_and_content_round_trip(self):
        now = timezone.now()
        row = DelayedMessage.from_request({"channel": "out", "content": {"b": b"\x00\xff", "s": "x"}, "delay": 1500},
                                          layer(), now=now)
        assert row.due_date == now + datetime.timedelta(milliseconds=1500)
        row.save()
        assert DelayedMessage.objects.get(pk=row.pk).message() == {"b": b"\x00\xff", "s": "x"}


class SendingTests(ChannelTestCase):
    def setUp(self):
        self.worker = DelayWorker(layer(), signal_handlers=False, full_retries=2)

    def test_store_logs_and_drops_bad_messages(self):
        with self.assertLogs("channels.delay.worker", "ERROR") as logs:
            assert self.worker.store({"channel": "x"}) is None
        assert "Dropping a bad asgi.delay message" in logs.output[0]
        assert not DelayedMessage.objects.exists()

    def test_only_due_messages_are_sent_in_due_order(self):
        self.worker.store({"channel": "out", "content": {"n": "later"}, "delay": 60_000})
        second = self.worker.store({"channel": "out", "content": {"n": 2}, "delay": 0})
        first = self.worker.store({"channel": "out", "content": {"n": 1}, "delay": 0})
        first.due_date = second.due_date - datetime.timedelta(milliseconds=1)
        first.save()
        assert self.worker.send_due() == 2
        got = [layer().receive(["out"])[1]["n"] for _ in range(2)]
        assert got == [1, 2]
        assert layer().receive(["out"]) == (None, None)
        assert DelayedMessage.objects.count() == 1
        assert DelayedMessage.objects.next_due_date() > timezone.now() + datetime.timedelta(seconds=50)

    def test_a_row_sent_elsewhere_is_not_sent_again(self):
        row = self.worker.store({"channel": "out", "content": {}, "delay": 0})
        DelayedMessage.objects.filter(pk=row.pk).delete()  # as another delay server would
        assert self.worker.send_one(row) == 0
        assert layer().receive(["out"]) == (None, None)

    def test_a_full_channel_is_retried_then_dropped(self):
        full = layer()
        for n in range(full.get_capacity("out") if hasattr(full, "get_capacity") else 100):
            try:
                full.send("out", {"filler": n})
            except full.ChannelFull:
                break
        row = self.worker.store({"channel": "out", "content": {"x": 1}, "delay": 0})
        with self.assertLogs("channels.delay.worker", "WARNING"):
            assert self.worker.send_one(row) == 0
        row.refresh_from_db()
        assert row.attempts == 1 and row.due_date > timezone.now()
        row.attempts = 2
        row.save()
        with self.assertLogs("channels.delay.worker", "ERROR") as logs:
            self.worker.send_one(row)
        assert "stayed full after 2 retries" in logs.output[0]
        assert not DelayedMessage.objects.exists()

    def test_a_full_channel_is_rescheduled_after_the_next_pause_of_the_policy(self):
        from channels.delay.worker import FULL_RETRY

        full = layer()
        while True:
            try:
                full.send("out", {"filler": True})
            except full.ChannelFull:
                break
        self.worker.full_retries = 10
        row = self.worker.store({"channel": "out", "content": {"x": 1}, "delay": 0})
        row.attempts = 3
        row.save()
        before = timezone.now()
        with self.assertLogs("channels.delay.worker", "WARNING"):
            assert self.worker.send_one(row) == 0
        after = timezone.now()
        row.refresh_from_db()
        nominal = datetime.timedelta(seconds=min(FULL_RETRY.max_delay, FULL_RETRY.first_delay * 2 ** 3))
        assert row.attempts == 4
        assert before + nominal * (1 - FULL_RETRY.jitter) < row.due_date <= after + nominal


class Unreachable:
    """The test layer, but every send raises ``LayerUnavailable`` with the given ``may_have_run``."""

    def __init__(self, real, may_have_run):
        self.real = real
        self.may_have_run = may_have_run

    def send(self, channel, message):
        raise LayerUnavailable("Redis is unreachable", may_have_run=self.may_have_run)

    def __getattr__(self, name):
        return getattr(self.real, name)


class OutageTests(ChannelTestCase):
    """A send the layer could not complete: kept when it provably did not run, dropped when it may have."""

    def worker(self, may_have_run):
        worker = DelayWorker(Unreachable(layer(), may_have_run), signal_handlers=False)
        worker._send_outage.policy = RetryPolicy(timeout=0, first_delay=0.001, max_delay=0.001)
        return worker

    def test_a_send_that_did_not_run_keeps_its_row_for_the_next_try(self):
        worker = self.worker(False)
        row = worker.store({"channel": "out", "content": {"x": 1}, "delay": 0})
        with self.assertLogs("channels.delay.worker", "WARNING"):
            assert worker.send_one(row) == 0
        assert DelayedMessage.objects.filter(pk=row.pk).exists()

    def test_a_send_whose_reply_was_lost_is_not_sent_again(self):
        worker = self.worker(True)
        row = worker.store({"channel": "out", "content": {"x": 1}, "delay": 0})
        with self.assertLogs("channels.delay.worker", "WARNING") as logs:
            assert worker.send_one(row) == 1
        assert "not sending it again" in "\n".join(logs.output)
        assert not DelayedMessage.objects.exists()
