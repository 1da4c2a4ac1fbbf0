"""Re-reading a window after its cursor vanished sends each record once: new ones yes, repeated ones no."""
from __future__ import annotations

import threading

from airbyte_cdk.sources.types import StreamSlice

from source_stripe_ontologie.vanished_cursor import SkipRecordsAlreadySentInWindow
from unit_tests.factories import stripe_object

WINDOW = StreamSlice(partition={}, cursor_slice={"start": "1", "end": "2"})


def _pass(skipper, page, stream_slice=WINDOW):
    return [r["id"] for r in skipper.filter_records(page, stream_state={}, stream_slice=stream_slice)]


def _listing(*created):
    return [stripe_object("charges", created=c) for c in created]


def test_first_read_of_a_window_passes_everything_including_objects_sharing_a_second():
    skipper = SkipRecordsAlreadySentInWindow(parameters={})
    first, second = _listing(10, 9, 9), _listing(9, 8, 7)

    assert _pass(skipper, first) + _pass(skipper, second) == [r["id"] for r in first + second]


def test_re_read_skips_what_was_sent_and_passes_new_and_unread_objects():
    skipper = SkipRecordsAlreadySentInWindow(parameters={})
    listing = _listing(10, 9, 9, 8, 7, 7, 6)
    sent = _pass(skipper, listing[:5])  # up to the first object created at 7
    created_meanwhile = stripe_object("charges", created=11)
    same_second_as_top = stripe_object("charges", created=10)

    re_read = [created_meanwhile, same_second_as_top] + listing[:3] + listing[4:]  # listing[3] was deleted

    assert _pass(skipper, re_read) == [created_meanwhile["id"], same_second_as_top["id"], listing[5]["id"],
                                       listing[6]["id"]]
    assert len(sent) == 5


def test_a_new_window_starts_with_a_clean_memory():
    skipper = SkipRecordsAlreadySentInWindow(parameters={})
    page = _listing(10, 9)
    _pass(skipper, page)
    other_window = StreamSlice(partition={}, cursor_slice={"start": "2", "end": "3"})

    assert _pass(skipper, page, other_window) == [r["id"] for r in page]


def test_windows_read_by_different_threads_do_not_share_memory():
    skipper = SkipRecordsAlreadySentInWindow(parameters={})
    page = _listing(10, 9)
    _pass(skipper, page)
    seen_in_other_thread = []

    worker = threading.Thread(target=lambda: seen_in_other_thread.extend(_pass(skipper, page)))
    worker.start()
    worker.join()

    assert seen_in_other_thread == [r["id"] for r in page]
