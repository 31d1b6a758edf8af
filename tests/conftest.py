"""Shared pytest fixtures for rmxbench's tests.

- ``repo_root``: the repository root (``tests/..``).
- ``shared_dir``: the offline data folder ``../shared`` next to the repo root (benchmarks, the
  small GGUF model, the paper, reported numbers); the test is skipped with a clear reason when it
  is absent (e.g. on a fresh CI machine).
- ``tmp_home``: a fresh ``RMXBENCH_HOME`` (artifact store) in the test's tmp dir, so no test
  reads or writes the user's cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
