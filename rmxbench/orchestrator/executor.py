"""The executor seam: a plan's nodes as portable build requests, and who runs them.

A :class:`BuildRequest` is everything a machine needs to build one node, and nothing that only
means something in the planning process: the stage and its module, the content key, the config
(what the stage's ``declare`` gave the node), the inputs as keys (``role -> (stage, key)``: the
builder finds their folders in the store), the node's engine
(:class:`rmxbench.backends.session.EngineSpec`), its resources from the stage table (GPUs, CPUs,
:class:`rmxbench.pipeline.graph.Resources`) and its model affinity (``EngineSpec.model``: nodes of
one model run where that model's engine session lives, so it starts once).

:func:`build_node` is THE function that builds a node, whatever runs it: the stage module's
``build`` into a temp folder the store publishes (:meth:`rmxbench.pipeline.store.ArtifactStore.build`),
metered (wall seconds, devices, start and end time, the machine and its GPUs: ``meter.json``).

An :class:`Executor` runs requests for the driver (:class:`rmxbench.orchestrator.runner.Runner`), which
walks the graph, submits a request only once its inputs exist, never has one key in flight twice,
and handles what finished (halts, notes, the board):

- :class:`LocalExecutor` (the default): one node after another in this process, in the driver's
  order, with one :class:`~rmxbench.backends.session.SessionPool`; an exception ends the run.
- :class:`rmxbench.orchestrator.ray_executor.RayExecutor` (``--executor ray``): independent nodes at
  once on a Ray cluster, one worker per model, retries when a worker dies.

Torch-free at import; imports nothing from the planner or runner.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rmxbench.buildlog import BUILD_LOG, capture
from rmxbench.errors import UserError
from rmxbench.pipeline.graph import BuildEnv, Node, Stage
from rmxbench.pipeline.metering import METER_FILE, device_info, read_meter
from rmxbench.pipeline.store import ArtifactStore


@dataclass(frozen=True)
class BuildRequest:
    """One node to build (see module doc).

    Attributes:
        stage, module: the stage name (store folder) and the module whose ``build`` runs.
        key: the node's content key.
        row_id, label, task: the node's board row, label and benchmark (messages, ``_complete.json``).
        config: passed to ``build`` (must pickle: a worker process receives it).
        inputs: role -> (stage, key) of each input artifact.
        engine: the node's engine session spec, or None.
        gpus: GPUs the node holds while it runs (the table's :class:`~rmxbench.pipeline.graph.Resources`
            resolved for its engine: vLLM's tensor-parallel size, 1 for transformers, 0 without a model).
        cpus: CPU cores a node without GPUs reserves.
        force: rebuild even if the key is stored (``--force``).
        estimate: the cost estimate made before the run (issue 20: the node's
            :meth:`rmxbench.orchestrator.estimate.NodeEstimate.record`), written into its ``meter.json``
            so the measurement can be set beside it and calibrate later estimates; None if not estimated.
    """

    stage: str
    module: str
    key: str
    row_id: str
    label: str
    config: Any
    inputs: dict[str, tuple[str, str]]
    engine: Any = None
    gpus: int = 0
    cpus: float = 1.0
    task: str | None = None
    force: bool = False
    estimate: dict | None = None

    @property
    def name(self) -> str:
        """``<row> <label>``: how messages name the node."""
        return f"{self.row_id} {self.label}"

    @property
    def affinity(self) -> str | None:
        """The model whose worker runs the node (:attr:`EngineSpec.model`), or None (any worker)."""
        return None if self.engine is None else self.engine.model


def request_of(node: Node, stage: Stage, *, force: bool = False, estimate: dict | None = None) -> BuildRequest:
    """The :class:`BuildRequest` of a planned ``node`` of ``stage`` (its table entry); ``estimate``: the
    record of its cost estimate (:attr:`BuildRequest.estimate`)."""
    return BuildRequest(stage=node.stage, module=stage.module, key=node.key, row_id=node.row_id, label=node.label,
                        config=node.config, inputs={r: (n.stage, n.key) for r, n in node.inputs.items()},
                        engine=node.engine, gpus=stage.resources.gpus_of(node.engine),
                        cpus=float(stage.resources.cpus), task=node.task, force=force, estimate=estimate)


@dataclass
class BuildOutcome:
    """What came of one request.

    Attributes:
        key, stage: the request's.
        path: the artifact folder (None when the build failed).
        built: True when this build wrote it; False when another builder (another driver sharing
            the store) published the key while this one waited for its lock.
        seconds: the node's metered wall seconds (0 when not built here).
        error: why the build failed (after the executor's retries), or None.
        engines: the engine sessions the build started or reused
            (:class:`~rmxbench.backends.session.SessionEvent`).
        log: where a failed build's log was kept (:func:`keep_failed_log`), or None.
        hint: what to do about ``error`` (a :class:`~rmxbench.errors.UserError`'s hint), or None.
    """

    key: str
    stage: str
    path: Path | None
    built: bool = False
    seconds: float = 0.0
    error: str | None = None
    engines: list = field(default_factory=list)
    log: str | None = None
    hint: str | None = None


#: How a failed build's exception names its kept log: ``FAILED_LOG_NOTE + "<name>: <path>"`` (a note).
FAILED_LOG_NOTE = "build log of "


def resolve_inputs(req: BuildRequest, store: ArtifactStore) -> dict[str, Path]:
    """role -> the finished input folder of each input key, found in ``store``.

    Raises:
        FileNotFoundError: an input is not in the store as seen from this machine (a store that
            is not shared at the same path on every machine of the cluster).
    """
    out = {}
    for role, (stage, key) in req.inputs.items():
        d = store.get(stage, key)
        if d is None:
            raise FileNotFoundError(f"{req.name}: input {role!r} ({stage}/{key}) is not in the store "
                                    f"{store.home} as seen from {socket.gethostname()}: the store must be one "
                                    "folder shared at the same path by every machine of the run")
        out[role] = d
    return out


def build_node(req: BuildRequest, inputs: dict[str, Path], sessions: Any, store: ArtifactStore, *,
               worker: dict | None = None) -> BuildOutcome:
    """Build ``req`` through ``store`` (every executor calls this).

    Args:
        inputs: role -> finished input folder (:func:`resolve_inputs`).
        sessions: the process's :class:`~rmxbench.backends.session.SessionPool` (None: a node
            that loads no model).
        worker: where it runs, recorded in the meter (``executor``, ``node_id``, ``gpu_ids``,
            ``cuda_visible_devices``); a worker that holds no GPU (``gpu_ids == []``) is metered as
            a CPU node without asking torch (its process must not initialise CUDA).
    Returns:
        The outcome; ``built`` is False when another builder published the key meanwhile (the
        artifact's meter carries another ``build_id``): the run counts it as reused.
    Raises:
        Whatever the stage's ``build`` raises (nothing is published), with a note naming the
        kept build log (:func:`keep_failed_log`).

    Output: what the build writes to stdout/stderr (third-party logging, warnings, tqdm bars, child
    processes) goes to ``build.log`` in the node's folder (:func:`rmxbench.buildlog.capture`).

    The meter (``meter.json``) gets the node's wall seconds (unless the build metered itself),
    its devices, ``started_at``/``finished_at`` (Unix seconds), ``host``, ``pid``, ``build_id``, ``worker``, and
    the engine sessions it started or reused; for the cost estimate (issue 20) also the whole build's
    wall and process CPU seconds (``node_seconds``, ``node_cpu_seconds``: engine starts included), the
    counts the build returned (``completion_tokens``, ``scored_tokens``, ``trained_tokens``, ...) and the
    request's ``estimate``.
    """
    import importlib
    import json

    from rmxbench.results import atomic_write_json

    mod = importlib.import_module(req.module)
    env = BuildEnv(sessions, req.engine, work_dir=store.home / "work" / req.stage / req.key)
    ran: list[bool] = []
    build_id = uuid.uuid4().hex  # tells this build's artifact from another builder's (issue 18 item 9)

    def fn(tmp: Path) -> None:
        ran.append(True)
        started, t0, c0 = time.time(), time.perf_counter(), time.process_time()
        log = tmp / BUILD_LOG
        try:
            with capture(log, header=f"{req.name} ({req.stage}/{req.key}) on {socket.gethostname()}, pid {os.getpid()}"):
                counts = mod.build(req.config, inputs, tmp, env)
        except BaseException as exc:  # the temp folder goes: keep its log where the error names it
            kept = keep_failed_log(log, store, req)
            if kept is not None:
                exc.add_note(f"{FAILED_LOG_NOTE}{req.name}: {kept}")
            raise
        meter = read_meter(tmp)
        if meter is None:  # a build may meter itself (with item counts)
            devices = ({"device": "cpu", "accelerators": 0, "accelerator_name": None}
                       if worker is not None and worker.get("gpu_ids") == [] else device_info())
            meter = {"stage": req.label, "seconds": time.perf_counter() - t0, **devices}
        meter.update(started_at=started, finished_at=time.time(), host=socket.gethostname(), pid=os.getpid(),
                     build_id=build_id)
        meter.update(node_seconds=time.perf_counter() - t0, node_cpu_seconds=time.process_time() - c0)
        meter.update({k: v for k, v in (counts or {}).items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool)})
        if req.estimate is not None:
            meter["estimate"] = req.estimate
        if worker is not None:
            meter["worker"] = worker
        if env.used:
            meter["engines"] = [asdict(e) for e in env.used]
        atomic_write_json(tmp / METER_FILE, json.loads(json.dumps(meter, default=str)))

    d = store.build(req.stage, req.key, fn, force=req.force,
                    meta={"row_id": req.row_id, "label": req.label, "task": req.task})
    m = read_meter(d)
    # built here only if the published artifact is this build's: a builder that lost the publish
    # race (a store without locks) ran too, but the folder holds the other's artifact and timing
    built = bool(ran) and m is not None and m.get("build_id") == build_id
    return BuildOutcome(req.key, req.stage, d, built=built, seconds=float(m["seconds"]) if built else 0.0,
                        engines=list(env.used) if ran else [])


def keep_failed_log(log: Path, store: ArtifactStore, req: BuildRequest) -> Path | None:
    """Copy a failed build's ``build.log`` (its temp folder is about to be removed) to
    ``<home>/logs/failed/<stage>-<key>-<time>-<pid>.log``; the copy, or None if there was no log."""
    import shutil

    if not log.is_file():
        return None
    dest = store.home / "logs" / "failed" / f"{req.stage}-{req.key}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, dest)
    except OSError:
        return None
    return dest


def check_ray_arguments(*, address: str | None, gpus: int | None, cpus: int | None, retries: int) -> None:
    """Raise UserError for ``--executor ray`` options that cannot work together (checked by ``run``
    and ``run --dry-run`` before anything starts, and by :class:`RayExecutor`).

    Raises:
        UserError: ``--gpus``/``--cpus`` with ``--address`` (a joined cluster has its own resources);
            ``--cpus`` below 1 (every GPU-free node is a 1-CPU task: it would wait forever); a
            negative ``--gpus`` or ``--retries``.
    """
    if address is not None and (gpus is not None or cpus is not None):
        raise UserError("--gpus/--cpus size a local Ray; a cluster given with --address has its own resources",
                        hint="drop --gpus/--cpus, or drop --address to start a local Ray")
    if cpus is not None and cpus < 1:
        raise UserError(f"--cpus {cpus}: a local Ray needs at least 1 CPU (pool, selection and pick nodes are "
                        "1-CPU tasks, which would wait forever)", hint="pass --cpus 1 or more, or leave it out "
                                                                      "(the machine's CPUs)")
    if gpus is not None and gpus < 0:
        raise UserError(f"--gpus {gpus}: must be 0 or more")
    if retries < 0:
        raise UserError(f"--retries {retries}: must be 0 or more")


#: Seconds to wait for a TCP connection to ``--address`` before ``ray.init`` (which retries forever).
REACHABLE_TIMEOUT_S = 5.0


def check_reachable(address: str, timeout: float = REACHABLE_TIMEOUT_S) -> None:
    """Raise UserError unless something accepts a TCP connection at ``address`` (``host:port``, the
    cluster's GCS, or ``ray://host:port``, a Ray Client server) within ``timeout`` seconds and answers
    a gRPC handshake: ``ray.init`` retries a dead address forever (a dead Ray Client address for
    ~30 s, after the plan). ``auto`` is left to Ray.

    Raises:
        UserError: the address is not ``host:port`` or ``ray://host:port`` (another scheme, no
            port), the host name does not resolve, nothing answers at that port, or what answers
            does not speak gRPC (not a Ray GCS or Ray Client server).
    """
    if address == "auto":
        return
    allowed = ("host:port (the GCS address `ray start --head` prints, e.g. 10.0.0.1:6379), ray://host:port (Ray "
               "Client, port 10001) or auto")
    if "://" in address and not address.startswith("ray://"):
        raise UserError(f"--address {address}: {address.split('://')[0]}:// is not a Ray address; allowed: {allowed}")
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        raise UserError(f"--address {address}: expected {allowed}")
    client = address.startswith("ray://")
    usual = ("the head's Ray Client port is 10001 unless `ray start --head --ray-client-server-port` said otherwise"
             if client else "the head's GCS port is 6379 unless `ray start --head --port` said otherwise")
    if not 0 < int(port) < 65536:
        raise UserError(f"--address {address}: port {port} is out of range; allowed: 1–65535 ({usual})")
    try:
        socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UserError(f"--address {address}: the host name {host!r} does not resolve ({exc.strerror})",
                        hint="use the head machine's IP address or a name this machine resolves") from None
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise UserError(f"--address {address}: no Ray cluster answers there ({why} within {timeout:g} s)",
                        hint="start the head with `ray start --head --port PORT` (it prints the address to pass), "
                             "or check the host, the port and the firewall") from None
    if not _speaks_grpc(host, int(port), timeout):
        raise UserError(f"--address {address}: something accepts connections there but does not answer as a Ray "
                        f"cluster (no gRPC handshake within {timeout:g} s)",
                        hint=f"pass the address `ray start --head` printed ({usual}), not another service's "
                             "port") from None


def _speaks_grpc(host: str, port: int, timeout: float) -> bool:
    """True when a gRPC (HTTP/2) channel to ``host:port`` becomes ready within ``timeout`` seconds,
    as a Ray GCS does; also True where the check cannot be made (``grpcio``, a Ray dependency, is
    missing, or ``RAY_USE_TLS`` asks for TLS channels). A listener that never answers would
    otherwise hold ``ray.init`` in Ray's C++ GCS client for ~40 s before its first retry."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return True
    try:
        import grpc
    except ImportError:
        return True
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    channel = grpc.insecure_channel(target)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


class Executor:
    """Runs :class:`BuildRequest` s for the driver (see module doc). Subclasses implement
    :meth:`submit` and :meth:`wait`; the rest has defaults.

    Attributes:
        in_order: True when the executor builds one node at a time in the driver's order (the
            driver then offers it only the first ready node).
        name: shown in the run summary.
    """

    in_order: bool = False
    name: str = "executor"

    def start(self, requests: list[BuildRequest]) -> None:
        """Called once before the first :meth:`submit`, with every request the run may submit."""

    def submit(self, ready: list[tuple[BuildRequest, dict[str, Path]]]) -> list[str]:
        """Offer requests whose inputs exist (``(request, role -> input folder)``, in the driver's
        priority order); returns the keys taken (the others are offered again later)."""
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> list[BuildOutcome]:
        """Block until at least one taken request finished (or ``timeout`` seconds passed);
        returns every outcome finished since the last call."""
        raise NotImplementedError

    def retain(self, remaining: list[BuildRequest]) -> None:
        """The requests not finished yet: release engines and workers none of them needs."""

    def status(self) -> dict[str, str]:
        """key -> a short status of each taken, unfinished request (for the display)."""
        return {}

    def describe(self) -> str:
        """One line saying where the nodes build (after :meth:`start`; e.g. the Ray cluster joined and
        its resources), or ``""``."""
        return ""

    def summary(self) -> str:
        """One line for the run summary (engines started, workers, ...)."""
        return ""

    def close(self) -> None:
        """Release everything (end of the run, or an error)."""


class LocalExecutor(Executor):
    """One node at a time in this process, in the driver's order, sharing one session pool (the
    default executor: a node's exception ends the run)."""

    in_order = True
    name = "local"

    def __init__(self, store: ArtifactStore):
        from rmxbench.backends.session import SessionPool

        self.store = store
        self.pool = SessionPool()
        self._queued: tuple[BuildRequest, dict[str, Path]] | None = None

    def submit(self, ready: list[tuple[BuildRequest, dict[str, Path]]]) -> list[str]:
        if self._queued is not None or not ready:
            return []
        self._queued = ready[0]
        return [ready[0][0].key]

    def wait(self, timeout: float | None = None) -> list[BuildOutcome]:
        if self._queued is None:
            return []
        req, inputs = self._queued
        self._queued = None
        return [build_node(req, inputs, self.pool, self.store)]

    def retain(self, remaining: list[BuildRequest]) -> None:
        self.pool.retain({r.engine.key for r in remaining if r.engine is not None})

    def summary(self) -> str:
        return self.pool.summary()

    def close(self) -> None:
        self.pool.close_all()
