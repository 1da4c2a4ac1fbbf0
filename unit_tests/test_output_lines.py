"""The command's lines are written in batches, in order, with every non-record message flushing what precedes it."""
from __future__ import annotations

import gc
import io
import threading

from source_stripe_ontologie.entrypoint import StdoutWriter, write_lines
from source_stripe_ontologie.run import GC_GEN0_THRESHOLD, tune_gc

RECORD = b'{"type":"RECORD","record":{"stream":"s","data":{"id":%d},"emitted_at":1}}'
STATE = b'{"type":"STATE","state":{"n":%d}}'


def test_records_go_out_in_batches_and_a_state_line_flushes_the_records_it_counts():
    lines = [RECORD % i for i in range(5)] + [STATE % 1] + [RECORD % i for i in range(5, 12)]
    writes = []

    write_lines(iter(lines), writes.append, per_write=4 * len(RECORD % 0))

    assert b"".join(writes) == b"".join(line + b"\n" for line in lines)
    assert [w.count(b"\n") for w in writes] == [4, 2, 4, 3]  # 4 records | record + state | 4 | the last 3
    assert writes[1].endswith(STATE % 1 + b"\n")


def test_a_failing_command_still_writes_the_lines_it_produced():
    def lines():
        yield RECORD % 1
        yield RECORD % 2
        raise RuntimeError("boom")

    writes = []
    try:
        write_lines(lines(), writes.append)
    except RuntimeError:
        pass

    assert b"".join(writes) == RECORD % 1 + b"\n" + RECORD % 2 + b"\n"


class PendingLogLines:
    """Stands in for the CDK's print buffer: text printed (log lines) waiting for its next flush into `out`."""

    def __init__(self, out: io.BytesIO, pending: str) -> None:
        self.lock = threading.RLock()
        self._out, self._pending = out, pending

    def flush(self) -> None:
        self._out.write(self._pending.encode())
        self._pending = ""


def test_record_bytes_go_out_after_the_log_lines_printed_before_them():
    out = io.BytesIO()
    writer = StdoutWriter(PendingLogLines(out, '{"type":"LOG","log":{"message":"m"}}\n'), stdout=out)

    writer.write(RECORD % 1 + b"\n")
    writer.write(RECORD % 2 + b"\n")

    assert out.getvalue().splitlines() == [b'{"type":"LOG","log":{"message":"m"}}', RECORD % 1, RECORD % 2]


def test_gc_is_tuned_after_start_up():
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_pages_in_flight_are_bounded_until_the_entry_point_takes_them_or_stops():
    import threading

    from source_stripe_ontologie.page_lane import PageAllowance, PageLines

    allowance = PageAllowance(pages=2)
    first, second = PageLines([b"a"], allowance), PageLines([b"b"], allowance)
    made = []
    worker = threading.Thread(target=lambda: made.append(PageLines([b"c"], allowance)))
    worker.start()
    worker.join(timeout=1.0)
    assert made == []  # the third page waits for a slot

    first.taken()
    worker.join(timeout=5.0)
    assert len(made) == 1

    stuck = threading.Thread(target=lambda: made.append(PageLines([b"d"], allowance)))
    stuck.start()
    allowance.close()  # the entry point stopped reading: nobody waits forever
    stuck.join(timeout=5.0)
    assert len(made) == 2 and second.count == 1


def test_the_malloc_arenas_are_limited_before_the_source_is_built(monkeypatch):
    import platform

    from source_stripe_ontologie import run as run_module

    calls = []
    monkeypatch.setattr(run_module, "limit_malloc_arenas", lambda: calls.append("arenas"))
    monkeypatch.setattr(run_module, "build_source", lambda args: calls.append("source"))
    monkeypatch.setattr(run_module, "tune_gc", lambda: calls.append("gc"))
    monkeypatch.setattr(run_module, "launch", lambda source, args: calls.append("launch"))

    run_module.run(["spec"])

    assert calls == ["arenas", "source", "gc", "launch"]
    monkeypatch.undo()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert run_module.limit_malloc_arenas(8) is True  # glibc accepted the setting (8: its own default)
