"""Shared pytest fixtures for rmxbench's tests.

- ``repo_root``: the repository root (``tests/..``).
- ``shared_dir``: the offline data folder ``../shared`` next to the repo root (benchmarks, the
  small GGUF model, the paper, reported numbers); the test is skipped with a clear reason when it
  is absent (e.g. on a fresh CI machine).
- ``tmp_home``: a fresh ``RMXBENCH_HOME`` (artifact store) in the test's tmp dir, so no test
  reads or writes the user's cache.
- ``small_tiny_spec(name)`` (a function, ``from conftest import small_tiny_spec``): ``specs/tiny.yaml``
  made small enough for whole runs in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT / ".." / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (offline benchmarks/models/reference); skips the test if it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"offline shared data not found at {SHARED_DIR.resolve()} (only on the dev machine)")
    return SHARED_DIR.resolve()


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``RMXBENCH_HOME`` at an empty folder under the test's tmp dir; returns it."""
    home = tmp_path / "rmxbench-home"
    home.mkdir()
    monkeypatch.setenv("RMXBENCH_HOME", str(home))
    return home


def small_tiny_spec(name: str) -> dict:
    """``specs/tiny.yaml`` as a dict, made small for whole-run tests on 2 cores: suite ``name``, 16
    test problems, 48 new tokens; GRPO 2 steps from a 16-problem pool; ReasonMaxxer a 24-problem
    pool x 4 rollouts, 8 training and 8 validation problems, one validation sample."""
    s = yaml.safe_load((REPO_ROOT / "specs" / "tiny.yaml").read_text())
    s["suite"]["name"] = name
    s["protocol"].update(limit={"tinymath": 16}, max_new_tokens=48, batch_size=16)
    s["rl_recipes"]["tiny-grpo"].update(
        pool={"source": "embedded_train", "size": 16, "balance_levels": False, "contamination": "off"},
        per_device_train_batch_size=8, max_steps=2, save_steps=1, max_completion_length=48)
    r = s["recipes"]["tiny-cpu"]
    r["pool"].update(size=24, contamination="off")
    r["rollouts"].update(k=4, batch_size=24, max_new_tokens=48)
    r["selection"].update(max_problems=8, validation_problems=8)
    r["optim"].update(max_seq_len=128)
    r["validation_samples"] = 1
    return s
