"""Share the worker threads between streams, so that every Stripe endpoint is read at once."""
from __future__ import annotations

import math
import threading
from typing import Any, Iterable

from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.partition_generator import PartitionGenerator


# Stripe's ~250 ms per list page, plus jitter.
LATENCY_SECONDS = 0.3


class StreamFairShare(PartitionGenerator):
    """Lets a stream have only its share of the workers reading its windows at any moment.

    Stripe allows 25 requests/s per endpoint but 100 per account: only several endpoints read together can use
    the account's limit. The CDK queues each stream's windows as fast as they are generated, so one stream's
    hundreds of windows fill every worker, and those workers then wait on that one endpoint's budget (measured:
    26 req/s of a 100 req/s ceiling). Holding each stream to `limit` windows in progress leaves the other
    workers to the other streams. The manifest has no per-stream concurrency setting.

    A window is released when its `read()` ends (records read, or failed); its class and identity stay the
    CDK's, so cursors and the events reader see the same partition objects.
    """

    def __init__(self, windows: PartitionGenerator, limit: int) -> None:
        self._windows = windows
        self._slots = threading.BoundedSemaphore(limit)

    @staticmethod
    def limit_for(workers: int, endpoint_rate: float) -> int:
        """Windows one endpoint can keep busy: its paced rate through Stripe's latency, plus one to cover the switch.

        More would not read faster (the endpoint's limit binds), and they would queue in the CDK's thread pool
        (first in, first out) ahead of other streams' windows: with 17 windows a stream, the biggest stream got
        2-12 of its 25 req/s for seconds and finished alone at the end (measured with `make bench`, live key).
        """
        return max(2, min(workers, math.ceil(endpoint_rate * LATENCY_SECONDS) + 1))

    def generate(self) -> Iterable[Partition]:
        for window in self._windows.generate():
            self._slots.acquire()
            yield self._releasing_after_read(window)

    def _releasing_after_read(self, window: Partition) -> Partition:
        read = window.read
        slots = self._slots

        def read_then_release() -> Iterable[Any]:
            try:
                yield from read()
            finally:
                slots.release()

        window.read = read_then_release  # type: ignore[method-assign]
        return window
