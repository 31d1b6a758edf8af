"""Plain progress (issue 18 item 12): when the output is not a terminal, timestamped lines at a
bounded rate instead of rich's live display (which renders nothing into a file)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from rmxbench import progress
from rmxbench.errors import UserError

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def test_a_file_gets_plain_progress_and_a_terminal_rich_bars():
    assert isinstance(progress.new_display(Console(file=io.StringIO())), progress.PlainProgress)
    assert not isinstance(progress.new_display(Console(file=io.StringIO(), force_terminal=True)),
                          progress.PlainProgress)


def test_items_done_lines_come_at_most_every_interval_with_an_eta():
    out = io.StringIO()
    p = progress.PlainProgress(Console(file=out, width=40), interval=10)
    clock = [100.0]
    p._clock = lambda: clock[0]
    with progress.use(p):
        bar = progress.task("tiny-rmx: rollouts (96 problems x K=8)", 96)
        for _ in range(48):  # 48 items over 24 s: lines at 10 s and 20 s only
            clock[0] += 0.5
            bar.advance()
        bar.done()
    lines = out.getvalue().splitlines()
    assert [re.sub(STAMP, "T", x) for x in lines] == [
        "T tiny-rmx: rollouts (96 problems x K=8): 20/96 items, ETA 38 s",  # one line, not wrapped at 40 columns
        "T tiny-rmx: rollouts (96 problems x K=8): 40/96 items, ETA 28 s"]
    assert all(re.match(STAMP, x) for x in lines)


def test_a_bad_interval_is_an_error(monkeypatch):
    monkeypatch.setenv("RMXBENCH_PROGRESS_SECONDS", "soon")
    with pytest.raises(UserError, match="RMXBENCH_PROGRESS_SECONDS='soon'"):
        progress.plain_interval()
