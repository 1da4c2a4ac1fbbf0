"""Reads several connected accounts at once, handing every message to the one thread that writes the output.

Why: a Connect sync of thousands of small accounts spends most of each account's time waiting for Stripe (a size
probe and a window per stream, each a round trip). Read one after the other, 10,000 accounts take hours even
though the rate budget sits mostly idle. A few accounts in flight overlap those waits; every request still paces
through the sync's one rate budget, so more accounts in flight never means more requests per second than allowed.

How: `in_flight` reader threads take the next account from the (lazy) account iterator, read it, and put its
messages, then its end (with its failure, if any), on a bounded queue. The consumer (ConnectSync, on the calling
thread) gets them in arrival order: an account's own messages stay in their order, so its state still only follows
its own finished reads. The queue is bounded, so readers wait when the output is slow, and an account is forgotten
once read (AccountSweeper frees it): memory holds `in_flight` accounts, not all of them. A failure while listing the
accounts ends the sync (raised on the consumer's thread); a failure while reading an account ends that account only.
"""
from __future__ import annotations

import gc
import queue
import threading
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple

FINISHED = object()  # the message of an account's end: (account, FINISHED, its failure or None)
_READER_DONE = object()
QUEUE_SIZE = 2_000


def in_flight_for(requests_per_second: float, configured: Optional[int] = None) -> int:
    """Accounts read at once: the configured number, else one per 12.5 requests/s of the rate budget, between 2 and
    8 (a live key's 100/s gives 8, a test key's 25/s gives 2). A small account's first sync asks a size probe per
    stream at once, so a dozen requests per second per account keeps the budget busy without piling up waits."""
    if configured:
        return max(1, int(configured))
    return max(2, min(8, int(requests_per_second // 12.5)))


class AccountSweeper:
    """Frees the accounts already read: a full garbage collection once every `every` accounts have finished.

    Why: an account is read by a source of its own, a graph of CDK components that point at each other (streams,
    cursors, requesters, their parameters). Reference counting never frees such a graph once the account is done;
    only Python's cyclic collector does. The sync tunes that collector for records (run.tune_gc: young collections
    every 50,000 allocations), which leaves full collections ~150 small accounts apart, so peak RSS grew with the
    number of accounts: 160 -> 314 MB over 300 small accounts, ~0.5 MB each. Collecting once per round of accounts
    in flight keeps at most about one round of read accounts in memory, however many accounts the platform has.
    Each collection walks only what start-up did not freeze; its cost is mostly freeing the read accounts (~13,000
    objects each), which would be paid anyway: the same CPU time in all over a sync, in more, smaller pauses.
    """

    def __init__(self, every: int, collect: Callable[[], Any] = gc.collect) -> None:
        self._every = max(1, every)
        self._collect = collect
        self._finished = 0

    def account_finished(self) -> None:
        self._finished += 1
        if self._finished % self._every == 0:
            self._collect()


class AccountPool:
    """Runs `read(account)` for up to `in_flight` accounts at once and merges what they yield (module docstring)."""

    def __init__(self, in_flight: int, read: Callable[[str], Iterable[Any]], queue_size: int = QUEUE_SIZE) -> None:
        self._in_flight = max(1, in_flight)
        self._sweeper = AccountSweeper(self._in_flight)
        self._read = read
        self._queue: "queue.Queue[Tuple[Optional[str], Any, Optional[BaseException]]]" = queue.Queue(queue_size)
        self._stop = threading.Event()
        self._next_lock = threading.Lock()

    def messages(self, accounts: Iterable[str]) -> Iterator[Tuple[str, Any, Optional[BaseException]]]:
        """(account, message, None) for each message of each account, then (account, FINISHED, failure or None)."""
        pending = iter(accounts)
        readers = [threading.Thread(target=self._reader, args=(pending,), name=f"account-reader-{n}", daemon=True)
                   for n in range(self._in_flight)]
        for reader in readers:
            reader.start()
        running = len(readers)
        try:
            while running:
                account, message, failure = self._queue.get()
                if message is _READER_DONE:
                    running -= 1
                elif account is None:  # the accounts could not be listed: the sync cannot go on
                    raise failure  # type: ignore[misc]
                else:
                    if message is FINISHED:  # its reader has let go of the account's source
                        self._sweeper.account_finished()
                    yield account, message, failure
        finally:
            self._stop.set()
            for reader in readers:
                reader.join(timeout=5)

    def _reader(self, pending: Iterator[str]) -> None:
        try:
            while not self._stop.is_set():
                with self._next_lock:  # the listing is a generator: one reader advances it at a time
                    try:
                        account = next(pending)
                    except StopIteration:
                        return
                    except Exception as error:
                        self._put((None, None, error))
                        return
                failure = None
                try:
                    for message in self._read(account):
                        if not self._put((account, message, None)):
                            return
                except Exception as error:  # this account only
                    failure = error
                self._put((account, FINISHED, failure))
        finally:
            self._put((None, _READER_DONE, None))

    def _put(self, item: Tuple[Optional[str], Any, Optional[BaseException]]) -> bool:
        """Waits while the queue is full; False once the consumer has stopped (nobody will take the item)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False
