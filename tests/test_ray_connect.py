"""``rmxbench run --executor ray``: joining a cluster fails on one screen, quickly (issue: fresh-user
trial of the Ray executor). A dead or unresolvable ``--address`` is refused before ``ray.init``
(which retries forever); a cluster with Ray's token authentication (on by default since Ray 2.52)
that refuses a driver without its token gives the hint to set ``RAY_AUTH_MODE=token``; joining
prints the cluster and its resources; ``--cpus 0`` and ``--address`` with ``--gpus`` are refused
by ``--dry-run`` too.

The one Ray started here is a 1-CPU head without dashboard, in its own temp folder and ``$HOME``
(its token), stopped by the fixture; drivers never use ``--address auto``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "tiny.yaml"

HEAD = """
import sys, ray
ctx = ray.init(num_cpus=1, num_gpus=0, include_dashboard=False, object_store_memory=80 << 20,
               _temp_dir=sys.argv[1])
print(ctx.address_info["gcs_address"], flush=True)
sys.stdin.read()  # until the test closes stdin
ray.shutdown()
"""


def _env(home: Path, **extra: str) -> dict[str, str]:
    """This test's environment without the pytest process's Ray settings (another test's cluster
    sets RAY_AUTH_MODE), ``$HOME`` = ``home`` (where Ray keeps its token)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO), RMXBENCH_HOME=str(home / "store"), COLUMNS="200", **extra)
    return env


def _rmx(home: Path, *args: str, timeout: float = 120, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "rmxbench.cli", "run", str(SPEC), *args], capture_output=True,
                       text=True, timeout=timeout, env=_env(home, **env), cwd=REPO)
    return r, time.monotonic() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_address_is_a_quick_user_error(tmp_path):
    port = _free_port()  # closed again: nothing listens there
    r, took = _rmx(tmp_path, "--executor", "ray", "--address", f"127.0.0.1:{port}", timeout=90)
    assert r.returncode == 1, r.stderr
    assert f"--address 127.0.0.1:{port}: no Ray cluster answers there (Connection refused within 5 s)" in r.stderr
    assert "ray start --head" in r.stderr and "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert "plan for" not in r.stdout  # refused before the plan: nothing else on the screen
    assert took < 30, took
    # a Ray Client address is probed the same way (Ray itself gives up after ~30 s, after the plan)
    r, took = _rmx(tmp_path, "--executor", "ray", "--address", f"ray://127.0.0.1:{port}", timeout=90)
    assert r.returncode == 1 and f"--address ray://127.0.0.1:{port}: no Ray cluster answers there" in r.stderr, r.stderr
    assert "plan for" not in r.stdout and took < 20, (r.stdout, took)


def test_a_port_that_accepts_but_never_answers_is_a_quick_user_error(tmp_path):
    # a listener that completes TCP handshakes and says nothing (a wrong service, a hung head):
    # ray.init would sit ~40 s in Ray's C++ GCS client before the join watchdog could act
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        r, took = _rmx(tmp_path, "--executor", "ray", "--address", f"127.0.0.1:{port}", timeout=90)
    assert r.returncode == 1, r.stderr
    assert (f"--address 127.0.0.1:{port}: something accepts connections there but does not answer as a Ray "
            "cluster (no gRPC handshake within 5 s)") in r.stderr, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr and "plan for" not in r.stdout
    assert took < 30, took


def test_an_unresolvable_host_is_a_quick_user_error(tmp_path):
    r, took = _rmx(tmp_path, "--executor", "ray", "--address", "nosuchhost.invalid:6379", timeout=90)
    assert r.returncode == 1, r.stderr
    assert "--address nosuchhost.invalid:6379: the host name 'nosuchhost.invalid' does not resolve" in r.stderr
    assert "internal error" not in r.stderr and took < 30, (r.stderr, took)


def test_an_address_that_is_not_host_port_is_refused(tmp_path):
    r, _ = _rmx(tmp_path, "--executor", "ray", "--address", "10.0.0.1")
    assert r.returncode == 1 and "--address 10.0.0.1: expected host:port" in r.stderr, r.stderr
    r, _ = _rmx(tmp_path, "--executor", "ray", "--address", "127.0.0.1:99999")
    assert r.returncode == 1 and "--address 127.0.0.1:99999: port 99999 is out of range; allowed: 1–65535" in r.stderr, \
        r.stderr
    r, _ = _rmx(tmp_path, "--executor", "ray", "--address", "ray://127.0.0.1:99999")
    assert r.returncode == 1 and "the head's Ray Client port is 10001" in r.stderr, r.stderr  # not the GCS port
    r, _ = _rmx(tmp_path, "--executor", "ray", "--address", "ray://")
    assert r.returncode == 1 and "--address ray://: expected host:port" in r.stderr and "plan for" not in r.stdout
    # a dashboard URL (what a user may copy from the browser): refused with what is allowed, before the plan
    r, _ = _rmx(tmp_path, "--executor", "ray", "--address", "http://127.0.0.1:8265")
    assert r.returncode == 1 and "--address http://127.0.0.1:8265: http:// is not a Ray address; allowed: host:port" \
        in r.stderr and "ray://host:port" in r.stderr and "plan for" not in r.stdout, (r.stdout, r.stderr)


@pytest.mark.parametrize("flags, message", [
    (["--cpus", "0"], "--cpus 0: a local Ray needs at least 1 CPU"),
    (["--gpus", "2", "--cpus", "-1"], "--cpus -1: a local Ray needs at least 1 CPU"),
    (["--gpus", "-1"], "--gpus -1: must be 0 or more"),
    (["--address", "10.0.0.1:6379", "--gpus", "2"], "--gpus/--cpus size a local Ray"),
])
def test_dry_run_applies_the_executor_checks_of_a_real_run(flags, message, capsys):
    from rmxbench.cli import main

    for dry in (["--dry-run"], []):
        assert main(["run", str(SPEC), "--executor", "ray", *flags, *dry]) == 1
        err = " ".join(capsys.readouterr().err.split())
        assert message in err, err


@pytest.mark.parametrize("flags, message", [
    (["--address", "auto"], "--address applies only to --executor ray"),
    (["--gpus", "2", "--cpus", "2"], "--gpus, --cpus apply only to --executor ray"),
])
def test_ray_flags_without_the_ray_executor(flags, message, capsys):
    from rmxbench.cli import main

    assert main(["run", str(SPEC), "--dry-run", *flags]) == 1
    assert message in " ".join(capsys.readouterr().err.split())


@pytest.fixture(scope="module")
def token_head(tmp_path_factory):
    """A 1-CPU Ray head with token authentication (Ray's default for a new local cluster): its
    GCS address and the ``$HOME`` holding its token (``~/.ray/auth_token``)."""
    pytest.importorskip("ray", reason="the `ray` extra is not installed (pip install -e '.[ray]')")
    home = tmp_path_factory.mktemp("head-home")
    temp = tempfile.mkdtemp(prefix="rxr", dir="/tmp")  # short: Ray's socket paths
    p = subprocess.Popen([sys.executable, "-c", HEAD, temp], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env=_env(home))
    try:
        address = p.stdout.readline().strip()
        assert address, "the Ray head did not start"
        assert (home / ".ray" / "auth_token").is_file()
        yield address, home
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_a_driver_without_the_token_gets_the_auth_hint(token_head, tmp_path):
    address, home = token_head
    r, took = _rmx(home, "--executor", "ray", "--address", address, timeout=180)
    assert r.returncode == 1, r.stderr
    err = " ".join(r.stderr.split())
    assert f"--address {address}: the Ray cluster refused this driver (authentication token missing or wrong)" in err
    assert "set RAY_AUTH_MODE=token" in err and "~/.ray/auth_token" in err and "$RAY_AUTH_TOKEN" in err
    # one screen: Ray's 20 retry lines are held back, no traceback
    assert "Failed to get cluster ID" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) <= 4, r.stderr
    assert took < 90, took


def test_a_driver_with_the_token_joins_and_names_the_cluster(token_head, tmp_path):
    address, home = token_head
    code = ("import sys; from rmxbench.pipeline.store import ArtifactStore; "
            "from rmxbench.orchestrator.ray_executor import RayExecutor; "
            "ex = RayExecutor(ArtifactStore(sys.argv[1]), address=sys.argv[2]); ex.start([]); "
            "print(ex.describe()); ex.close()")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "store"), address], capture_output=True,
                       text=True, timeout=180, env=_env(home, RAY_AUTH_MODE="token"), cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ray cluster {address}: 1 node, 1 CPU, 0 GPUs", r.stdout
