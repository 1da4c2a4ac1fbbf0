"""The command's lines are written in batches, in order, with every non-record message flushing what precedes it."""
from __future__ import annotations

import gc

from source_stripe_ontologie.entrypoint import write_lines
from source_stripe_ontologie.run import GC_GEN0_THRESHOLD, tune_gc

RECORD = '{"type":"RECORD","record":{"stream":"s","data":{"id":%d},"emitted_at":1}}'
STATE = '{"type":"STATE","state":{"n":%d}}'


def test_records_go_out_in_batches_and_a_state_line_flushes_the_records_it_counts():
    lines = [RECORD % i for i in range(5)] + [STATE % 1] + [RECORD % i for i in range(5, 12)]
    writes = []

    write_lines(iter(lines), writes.append, per_write=4)

    assert "".join(writes) == "".join(f"{line}\n" for line in lines)
    assert [w.count("\n") for w in writes] == [4, 2, 4, 3]  # 4 records | record + state | 4 | the last 3
    assert writes[1].endswith(STATE % 1 + "\n")


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

    assert "".join(writes) == RECORD % 1 + "\n" + RECORD % 2 + "\n"


def test_gc_is_tuned_after_start_up():
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
