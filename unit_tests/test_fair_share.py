"""Each stream keeps only its share of the workers, so every endpoint is read at once."""
from __future__ import annotations

import threading

from source_stripe_ontologie import SourceStripeOntologie
from source_stripe_ontologie.fair_share import StreamFairShare
from source_stripe_ontologie.rate_budget import LIVE_REQUESTS_PER_SECOND
from unit_tests.factories import STREAMS, config


class FakeWindow:
    def __init__(self, number: int) -> None:
        self.number = number

    def read(self):
        yield {"window": self.number}


class FakeWindows:
    def __init__(self, count: int) -> None:
        self.count = count

    def generate(self):
        for number in range(self.count):
            yield FakeWindow(number)


def test_a_stream_gets_no_more_windows_in_progress_than_its_share():
    generator = StreamFairShare(FakeWindows(10), limit=3).generate()
    handed_out = [next(generator) for _ in range(3)]
    blocked = threading.Thread(target=lambda: handed_out.append(next(generator)), daemon=True)

    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive() and len(handed_out) == 3  # the fourth window waits

    assert list(handed_out[0].read()) == [{"window": 0}]  # reading a window to its end frees a slot
    blocked.join(2)
    assert not blocked.is_alive() and len(handed_out) == 4


def test_a_window_that_fails_still_frees_its_slot():
    class FailingWindow(FakeWindow):
        def read(self):
            raise RuntimeError("403")
            yield

    class FailingWindows(FakeWindows):
        def generate(self):
            yield FailingWindow(0)
            yield FakeWindow(1)

    generator = StreamFairShare(FailingWindows(0), limit=1).generate()
    first = next(generator)
    try:
        list(first.read())
    except RuntimeError:
        pass

    assert next(generator).number == 1


def test_windows_keep_their_class_for_the_cursor():
    window = next(StreamFairShare(FakeWindows(1), limit=1).generate())

    assert type(window) is FakeWindow


def test_a_stream_gets_the_windows_its_endpoints_rate_keeps_busy_through_stripes_latency():
    assert StreamFairShare.limit_for(64, 23.75) == 9  # Stripe's 25/s per endpoint, paced at 95%: 8 in flight + 1
    assert StreamFairShare.limit_for(64, 9_500) == 64  # limits lifted: every worker
    assert StreamFairShare.limit_for(1, 23.75) == 2


def test_the_windows_of_every_stream_of_a_six_stream_sync_fit_the_readers_left():
    source = SourceStripeOntologie(config=config(max_requests_per_second=None,
                                                 max_requests_per_endpoint_per_second=None))
    streams = 6  # the core streams, each big enough to want all its windows at once
    readers = source.workers() - streams  # the CDK lists each stream's windows on a worker

    assert streams * source.windows_per_stream() <= readers  # none queues behind another stream's


def test_by_default_enough_workers_are_left_to_keep_a_live_key_busy_while_every_stream_lists_its_windows():
    source = SourceStripeOntologie(config=config())
    workers = source.workers()
    listers = min(len(STREAMS), workers // 2)  # the CDK lists each stream's windows on a worker, up to half of them

    in_flight_at_live_rate = LIVE_REQUESTS_PER_SECOND * 0.3  # Stripe's ~250 ms latency, plus jitter
    assert workers - listers >= in_flight_at_live_rate


def test_num_workers_sets_the_workers():
    assert SourceStripeOntologie(config=config(num_workers=8)).workers() == 8
