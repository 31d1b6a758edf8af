"""Shared pytest fixtures for rmxbench's tests.

- ``repo_root``: the repository root (``tests/..``).
- ``shared_dir``: the offline data folder ``../shared`` next to the repo root (benchmarks, the
  small GGUF model, the paper, reported numbers); the test is skipped with a clear reason when it
  is absent (e.g. on a fresh CI machine).
- ``tmp_home``: a fresh ``RMXBENCH_HOME`` (artifact store) in the test's tmp dir, so no test
  reads or writes the user's cache.
- ``small_tiny_spec(name)`` (a function, ``from conftest import small_tiny_spec``): ``specs/tiny.yaml``
  made small enough for whole runs in CI; ``board_without_costs(path)``: a board's Markdown minus its
  measured-cost figures, for comparing the boards of two runs; ``mini_spec()``: a whole spec (tiny
  model, a ReasonMaxxer row with 2 τ, an RL row without checkpoint) small enough for CI.
"""

from __future__ import annotations

import re
from pathlib import Path

import copy

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


def board_without_costs(md_path: Path) -> str:
    """The board Markdown at ``md_path`` with its measured-cost figures (CPU/GPU-hours, measured USD,
    cost ratios) replaced by ``#``: everything else must be identical between two runs of a spec."""
    md = Path(md_path).read_text()
    md = re.sub(r"[\d.,]+ (CPU|GPU)-h", r"# \1-h", md)
    md = re.sub(r"\$[\d.,]+ \(measured\)", "$# (measured)", md)
    md = re.sub(r"[\d.,]+× \(", "#× (", md)
    return re.sub(r"\(([\d.,]+) ÷ ", "(# ÷ ", md)


# Small enough for CI on 2 cores: 16 test problems, 24 pool problems x 4 rollouts, 2 taus.
_MINI = {
    "suite": {"name": "mini"},
    "protocol": {"tasks": ["tinymath"], "backend": "hf", "batch_size": 16, "max_new_tokens": 48,
                 "max_model_len": 256, "avg_at_k": {"k": 2, "tasks": []}, "limit": {"tinymath": 16}},
    "pricing": {"date": "2026-04-28", "source": "test", "usd_per_hour": {"H100-80G": 2.49}},
    "recipes": {"toy": {
        "pool": {"source": "embedded_train", "size": 24, "balance_levels": False},
        "rollouts": {"k": 4, "max_new_tokens": 48, "batch_size": 16},
        "selection": {"max_problems": 8, "validation_problems": 8},
        "taus": [0.5, 1.0], "lora": {"rank": 4, "alpha": 8},
        "optim": {"epochs": 1.0, "gradient_accumulation_steps": 4, "max_seq_len": 128}}},
    "models": [{
        "id": "tiny", "display_name": "Tiny", "family": "tiny", "model": {"path": "package:embedded/tiny"},
        "dtype": "float32", "prompt_style": "tiny_story",
        "rl_baselines": [{"id": "tiny-rl", "display_name": "+ RL", "algorithm": "GRPO", "source": "x",
                          "unavailable": "no public checkpoint",
                          "cost": {"usd": 5, "basis": "estimated", "source": "paper"}}],
        "reasonmaxxer": [{"id": "tiny-rmx", "recipe": "toy"}],
    }],
}


def mini_spec() -> dict:
    """A fresh copy of a small whole spec: the embedded tiny model on 16 ``tinymath`` problems (HF,
    fp32), a ReasonMaxxer row ``tiny-rmx`` (recipe ``toy``: 24-problem pool x 4 rollouts, τ 0.5 and
    1.0, rank-4 LoRA) and an RL row ``tiny-rl`` with no public checkpoint."""
    return copy.deepcopy(_MINI)
