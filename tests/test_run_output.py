"""What ``rmxbench run`` prints (issue 18 items 9 and 12), as users see it: two real ``rmxbench run``
processes of a small vLLM spec (``specs/tiny.yaml`` with ``backend: vllm``, made small) start together
on one store, one on a terminal (a pseudo-terminal) and one redirected to a file (a batch job).

- Item 12: neither output holds a third-party warning, log line or progress bar (vLLM's INFO/WARNING
  lines, TRL's and lm-eval's warnings, tqdm bars); the nodes' ``build.log`` files hold them. The
  redirected run prints a timestamped line for every node it started and for its end (finished
  in s, or reused), which rich's live display would not render into a file.
- Item 9: every node is built once; each run reports the nodes the other built as reused (their
  meters carry the other's pid), its own as built, and the boards are identical.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from rmxbench.backends.select import vllm_usable
from rmxbench.pipeline.store import DONE_MARKER
from conftest import board_without_costs, small_tiny_spec

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 900
#: What third-party output looks like (vLLM's log lines, Python warnings, tqdm bars, TRL, transformers).
THIRD_PARTY = re.compile(r"\b(INFO|WARNING)\b \d\d-\d\d|UserWarning|FutureWarning|it/s\]|\(MainProcess|"
                         r"Loading weights|Writing model shards|TRL currently supports")
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def small_vllm_spec(path: Path) -> Path:
    """``specs/tiny.yaml`` on vLLM, small: 16 test problems, GRPO 2 steps, 24-problem pool x 4."""
    s = small_tiny_spec("out")
    s["protocol"]["backend"] = "vllm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(s, sort_keys=False))
    return path


def start(spec: Path, home: Path, out: Path, *, tty: bool) -> tuple[subprocess.Popen, Path]:
    """An ``rmxbench run`` in its own session; its stdout and stderr go to ``<out>.log``, through a
    pseudo-terminal (``tty``) or directly (a redirected batch job)."""
    env = dict(os.environ, RMXBENCH_HOME=str(home), RMXBENCH_THREADS="1", COLUMNS="160",
               RMXBENCH_PROGRESS_SECONDS="2", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.pop("RMXBENCH_DEBUG", None)
    cmd = [sys.executable, "-m", "rmxbench.cli", "run", str(spec), "--out", str(out)]
    log = out.parent / f"{out.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if not tty:
        with log.open("w") as fh:
            return subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True), log
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, env=env, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, start_new_session=True)
    os.close(slave)

    def copy() -> None:  # drain the terminal (a full pty would block the run)
        with log.open("wb") as fh:
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the run closed its terminal
                    break
                if not chunk:
                    break
                fh.write(chunk)
        os.close(master)

    p.reader = threading.Thread(target=copy, daemon=True)
    p.reader.start()
    return p, log


def finish(p: subprocess.Popen, log: Path) -> str:
    try:
        p.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        raise
    if hasattr(p, "reader"):  # a terminal's output: without colours, cursor moves and carriage returns
        p.reader.join(timeout=30)
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", log.read_text(errors="replace"))
    return log.read_text(errors="replace")


def board(out: Path) -> str:
    """The board Markdown minus its measured-cost figures (timings differ between the runs)."""
    return board_without_costs(out / "out.md")


def builders(home: Path) -> dict[str, int]:
    """node label (``<row> <label>``) -> pid of the process that built it, from the meters."""
    out = {}
    for d in home.glob("*/*"):
        if (d / DONE_MARKER).is_file() and (d / "meter.json").is_file():
            done = json.loads((d / DONE_MARKER).read_text())
            out[f"{done['row_id']} {done['label']}"] = json.loads((d / "meter.json").read_text())["pid"]
    return out


@pytest.mark.skipif(not vllm_usable()[0], reason=f"vLLM cannot run here: {vllm_usable()[1]}")
def test_two_runs_on_one_store_a_terminal_and_a_file(tmp_path):
    spec = small_vllm_spec(tmp_path / "spec" / "out.yaml")
    home = tmp_path / "home"
    runs = {"tty": start(spec, home, tmp_path / "tty", tty=True), "file": start(spec, home, tmp_path / "file", tty=False)}
    text = {k: finish(p, log) for k, (p, log) in runs.items()}
    pid = {k: p.pid for k, (p, _) in runs.items()}
    assert [runs[k][0].returncode for k in runs] == [0, 0], {k: t[-3000:] for k, t in text.items()}
    assert board(tmp_path / "tty") == board(tmp_path / "file")

    # item 9: each node built once; each run counts the other's nodes as reused
    by = builders(home)
    assert set(by.values()) <= set(pid.values()) and len(by) == 14, by
    reused_total = 0
    for k, t in text.items():
        built, cached, reused = (int(x) for x in re.search(
            r"(\d+) built, (\d+) cached(?:, (\d+) reused \(built meanwhile by another run\))?",
            " ".join(t.split())).groups(default="0"))
        mine = sum(1 for p in by.values() if p == pid[k])
        assert (built, built + cached + reused) == (mine, 14), (k, built, cached, reused, mine)
        assert reused + cached == 14 - mine  # the other's nodes, never "built"
        reused_total += reused
    assert reused_total > 0  # the runs overlapped: one waited for a node the other was building

    # item 12: no third-party output on the terminal or in the file; the build logs hold it
    for k, t in text.items():
        assert not THIRD_PARTY.search(t), (k, THIRD_PARTY.search(t).group(0), t[:4000])
    logs = [d.read_text() for d in home.glob("*/*/build.log")]
    assert len(logs) == 14 and any(re.search(r"/vllm/|\(MainProcess|Loading safetensors checkpoint shards", x)
                                   for x in logs)  # vLLM's output (its log lines, when VLLM_LOGGING_LEVEL allows)
    assert any(THIRD_PARTY.search(d.read_text()) for d in home.glob("grpo/*/build.log"))  # TRL, transformers
    # the redirected run: a timestamped line for every node it started, and for how it ended
    lines = text["file"].splitlines()
    started = [m.group(1) for x in lines if (m := re.fullmatch(rf"{STAMP} \[\d+/\d+\] (.+) started", x))]
    ended = [m.group(1) for x in lines
             if (m := re.fullmatch(rf"{STAMP} \[\d+/\d+\] (.+) (?:finished in [\d.]+ s|reused: built meanwhile by another run)", x))]
    assert started and sorted(started) == sorted(ended), lines
    own = sorted(label for label, p in by.items() if p == pid["file"])
    assert set(own) <= set(started), (own, started)
    assert all(f"{label} finished in" in text["file"] for label in own)
