"""The SLURM batch script (``scripts/slurm/rmxbench_ray.sbatch``, issue 16): it parses, refuses to
run without a store, and the command it launches on every node is one that ``ray symmetric-run``,
``ray start`` and ``rmxbench run`` accept. SLURM's ``scontrol``/``srun`` are stand-ins that record
what they are asked to run (nothing starts Ray here)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm" / "rmxbench_ray.sbatch"


def test_script_parses():
    r = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _shims(tmp_path: Path) -> Path:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "scontrol").write_text("#!/bin/sh\nprintf 'gpu-a\\ngpu-b\\n'\n")
    # srun: `hostname --ip-address` answers the head's address; anything else is recorded
    (bin_ / "srun").write_text(
        "#!/bin/sh\ncase \" $* \" in *' hostname '*) echo 10.1.2.3; exit 0;; esac\n"
        f"printf '%s\\n' \"$@\" > {tmp_path / 'srun.args'}\n"
        f"printf 'RAY_AUTH_MODE=%s\\nRAY_AUTH_TOKEN=%s\\n' \"$RAY_AUTH_MODE\" \"$RAY_AUTH_TOKEN\" > {tmp_path / 'srun.env'}\n")
    for f in bin_.iterdir():
        f.chmod(0o755)
    return bin_


def _run(tmp_path: Path, **env_extra: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{_shims(tmp_path)}:/usr/bin:/bin", "HOME": str(tmp_path), "SLURM_JOB_NODELIST": "gpu-[a-b]",
           "SLURM_JOB_NUM_NODES": "2", "SLURM_CPUS_PER_TASK": "16", **env_extra}
    return subprocess.run(["bash", str(SCRIPT), "specs/qwen25.yaml", "--only", "qwen2.5-1.5b"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_script_needs_a_store(tmp_path):
    r = _run(tmp_path)
    assert r.returncode != 0 and "RMXBENCH_HOME" in r.stderr and not (tmp_path / "srun.args").exists()


def test_script_runs_symmetric_run_then_rmxbench_on_the_head(tmp_path):
    pytest.importorskip("ray", reason="the `ray` extra is not installed (pip install -e '.[ray]')")
    from ray.scripts.scripts import start
    from ray.scripts.symmetric_run import symmetric_run

    from rmxbench.cli import build_parser

    r = _run(tmp_path, RMXBENCH_HOME=str(tmp_path / "store"))
    assert r.returncode == 0, r.stderr
    args = (tmp_path / "srun.args").read_text().splitlines()
    srun_opts = args[:args.index("ray")]
    assert "--nodes=2" in srun_opts and "--ntasks-per-node=1" in srun_opts
    ray_args = args[args.index("ray") + 1:]
    sep = ray_args.index("--")
    assert ray_args[0] == "symmetric-run"
    ctx = symmetric_run.make_context("symmetric-run", ray_args[1:sep], resilient_parsing=True)
    assert ctx.params["address"] == "10.1.2.3:6379" and ctx.params["min_nodes"] == 2
    start_args = list(ctx.params["ray_args_and_entrypoint"])
    assert start_args == ["--num-cpus", "16"]
    assert start.make_context("start", start_args).params["num_cpus"] == 16  # a valid `ray start` option
    entry = ray_args[sep + 1:]
    assert entry[:2] == ["rmxbench", "run"], shlex.join(entry)
    run = build_parser("run").parse_args(entry[1:])
    assert (run.spec, run.executor, run.address, run.only) == ("specs/qwen25.yaml", "ray", "10.1.2.3:6379",
                                                               ["qwen2.5-1.5b"])
    assert os.access(SCRIPT, os.X_OK)


def test_script_gives_every_node_and_the_driver_one_ray_auth_token(tmp_path):
    """Ray's token authentication: srun passes RAY_AUTH_MODE=token and one token to every node's
    ``ray symmetric-run`` and so to the driver; a given RAY_AUTH_TOKEN is kept."""
    import re

    r = _run(tmp_path, RMXBENCH_HOME=str(tmp_path / "store"))
    assert r.returncode == 0, r.stderr
    env = dict(line.split("=", 1) for line in (tmp_path / "srun.env").read_text().splitlines())
    assert env["RAY_AUTH_MODE"] == "token" and re.fullmatch(r"[0-9a-f]{64}", env["RAY_AUTH_TOKEN"]), env
    given = tmp_path / "given"
    given.mkdir()
    r = _run(given, RMXBENCH_HOME=str(tmp_path / "store"), RAY_AUTH_TOKEN="abc123")
    assert r.returncode == 0, r.stderr
    assert "RAY_AUTH_TOKEN=abc123" in (given / "srun.env").read_text().splitlines()
