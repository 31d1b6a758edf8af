"""``rmxbench run SPEC --executor ray``: build a plan's independent nodes at once on a Ray cluster
(:class:`RayExecutor`, an :class:`~rmxbench.orchestrator.executor.Executor`; Ray is the ``rmxbench[ray]``
extra and is imported only here).

How nodes run:

- **A node with a model** (its engine's ``EngineSpec.model``) runs in that model's worker: a Ray
  actor holding the GPUs of the model's engine (the largest ``gpus`` of its requests: vLLM's
  tensor-parallel size, 1 for transformers) and owning one
  :class:`~rmxbench.backends.session.SessionPool`, so the engine starts once there and serves
  rollouts, every validation, the evaluation of the base and of every adapter, and (its
  ``weights`` role) entropy and training. A worker runs its calls one after another.
- **A node without a model** is a Ray task: ``num_cpus`` from the stage table and no GPU (pool,
  selection, pick), or, for a training node that loads its own model (GRPO), ``num_gpus`` in a
  fresh process (Ray's ``max_calls=1``: its GPU memory is freed when it ends).
- The driver (:class:`rmxbench.orchestrator.runner.Runner`) submits a node only once its inputs
  exist, so no worker ever waits on another. A model's worker starts when its first node is
  ready and GPUs are free, and stops when no remaining node needs that model. When a node needs
  GPUs that idle workers hold (a worker whose model has no ready node), the idle workers are
  stopped first (their engine restarts later if needed): no GPU is held idle while work waits.
- **Retries**: a worker that dies (SIGKILL, the OOM killer, a lost machine) is restarted and its
  calls run again (actor ``max_restarts``/``max_task_retries``, task ``max_retries``), up to
  ``retries`` times; an exception the build raises is not retried (a bug or a user error does
  not go away). A node that still fails is reported, its dependents are skipped, the other
  branches finish and the run exits non-zero naming it; the store keeps what was built.
- **Devices**: Ray sets ``CUDA_VISIBLE_DEVICES`` to the GPUs it assigned (logical GPUs too), and to
  ``""`` for GPU-free tasks (``RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=1`` in the job's environment), so
  a worker sees exactly its own GPUs; vLLM inside uses its own ``uni``/``mp`` executor, never Ray.
  Every meter records the worker (Ray node id, GPU ids, ``CUDA_VISIBLE_DEVICES``) and its start
  and end time, so parallel nodes are priced by their own devices.
- **The store** must be one folder at the same path on every machine (:mod:`rmxbench.pipeline.store`),
  and so must the spec's folder and the data dir; rmxbench must be installed on every machine.

Without ``address`` a local Ray is started for the run (``gpus`` logical GPUs: a CPU machine can
rehearse a cluster run) and shut down after it; with ``address`` the driver joins that cluster.
Builds' own progress bars are silent in workers; the driver shows each node's status.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from rmxbench.buildlog import capture
from rmxbench.errors import UserError
from rmxbench.orchestrator.executor import (FAILED_LOG_NOTE, BuildOutcome, BuildRequest, Executor, build_node,
                                            check_ray_arguments,
                                           check_reachable, resolve_inputs)
from rmxbench.pipeline.store import ArtifactStore
from rmxbench.spec.context import HOME_ENV

#: Object store size of a local Ray (MiB): only requests and outcomes pass through it.
OBJECT_STORE_MB = 128


def _worker_info() -> dict:
    """Where this build runs: the Ray node, its GPU ids and what the process sees."""
    ctx = ray.get_runtime_context()
    return {"executor": "ray", "node_id": ctx.get_node_id(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def _build_here(req: BuildRequest, home: str, pool: Any) -> BuildOutcome:
    """Build ``req`` in this worker process: inputs from the shared store, progress silent, the
    thread cap applied (:func:`rmxbench.orchestrator.executor.build_node`)."""
    from rmxbench import progress
    from rmxbench.threads import cap_threads

    cap_threads()
    store = ArtifactStore(home)
    with progress.use(progress.SILENT):
        try:
            return build_node(req, resolve_inputs(req, store), pool, store, worker=_worker_info())
        except Exception as exc:  # classified here: Ray passes the exception on without its causes
            from rmxbench.failures import classify

            user = classify(exc)
            if user is None or user is exc:
                raise
            for note in getattr(exc, "__notes__", ()):  # the kept build log
                user.add_note(note)
            raise user from None


def _task(req: BuildRequest, home: str) -> BuildOutcome:
    return _build_here(req, home, None)


#: GPU-free nodes (pool, selection, pick): a pooled worker process, ``num_cpus`` per request.
_cpu_task = ray.remote(num_gpus=0)(_task)
#: nodes that load their own model on GPUs (GRPO): a fresh process each (``max_calls=1``).
_gpu_task = ray.remote(num_gpus=1)(_task)


@ray.remote(num_cpus=0)
class ModelWorker:
    """One model's worker (see module doc): builds that model's nodes on its session pool."""

    def __init__(self, home: str, model: str):
        from rmxbench.backends.session import SessionPool

        self.home, self.model = home, model
        self.pool = SessionPool()

    def build(self, req: BuildRequest, keep: list[str]) -> BuildOutcome:
        """Build ``req``; then close the sessions whose keys are not in ``keep`` (the engines the
        model's remaining nodes need)."""
        try:
            return _build_here(req, self.home, self.pool)
        finally:
            self.pool.retain(set(keep))

    def close(self) -> None:
        self.pool.close_all()


@dataclass
class _Worker:
    actor: Any
    model: str
    label: str
    gpus: int
    in_flight: int = 0
    idle_since: float = field(default_factory=time.time)
    broken: bool = False


def model_gpus(requests: list[BuildRequest]) -> dict[str, int]:
    """model -> GPUs its worker holds: the largest ``gpus`` of that model's requests."""
    out: dict[str, int] = {}
    for r in requests:
        if r.affinity is not None:
            out[r.affinity] = max(out.get(r.affinity, 0), r.gpus)
    return out


def check_fits(requests: list[BuildRequest], per_machine_gpus: int, *, local: bool) -> None:
    """Raise UserError unless every request fits on one machine with ``per_machine_gpus`` GPUs (a
    model's worker needs the largest ``gpus`` of that model's requests), so no node waits forever.

    Raises:
        UserError: names the node and its GPUs, and how to give the cluster GPUs (``--gpus N``
            logical GPUs for a local Ray; ``ray start --num-gpus``) or need fewer.
    """
    group = model_gpus(requests)
    need = [(r.name, group[r.affinity] if r.affinity is not None else r.gpus) for r in requests]
    name, most = max(need, key=lambda x: x[1], default=("", 0))
    if most > per_machine_gpus:
        where = "has no GPU" if per_machine_gpus == 0 else f"has {per_machine_gpus}"
        raise UserError(
            f"{name} needs {most} GPU(s) on one machine, and the Ray cluster's largest machine {where}",
            hint="pass --gpus N to give the local Ray N logical GPUs (a rehearsal on a machine without GPUs)"
            if local else "start the cluster's machines with their GPUs (`ray start ... --num-gpus N`), or lower "
                          "protocol.vllm.tensor_parallel_size")


#: Seconds ``ray.init`` may take to join a cluster that answers (Ray's own retries give up after ~20 s).
#: The watchdog interrupts between Ray's retries, not inside a blocking C++ call; an address that
#: accepts TCP but never answers is refused before ``ray.init`` by
#: :func:`rmxbench.orchestrator.executor.check_reachable`.
CONNECT_TIMEOUT_S = 45.0
#: Ray's token authentication (on by default since Ray 2.52 for ``ray start``): the driver needs the
#: mode and the cluster's token, from ``$RAY_AUTH_TOKEN``, ``$RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``.
AUTH_HINT = ("the cluster uses Ray's token authentication: set RAY_AUTH_MODE=token in this shell, with the "
             "cluster's token in ~/.ray/auth_token (what `ray start` wrote on the head; `ray get-auth-token` "
             "prints it), $RAY_AUTH_TOKEN_PATH or $RAY_AUTH_TOKEN")


def connect_error(address: str, exc: BaseException) -> UserError:
    """The one-screen error for a failed ``ray.init(address=...)``: names the address and, when Ray
    refused the driver's token (``Unauthenticated``/``InvalidAuthToken``), how to pass it."""
    chain, e = [], exc
    while e is not None and len(chain) < 5:
        chain.append(str(e))
        e = e.__cause__ or e.__context__
    text = "\n".join(chain)
    if "Unauthenticated" in text or "InvalidAuthToken" in text or "AuthenticationError" in text:
        return UserError(f"--address {address}: the Ray cluster refused this driver (authentication token missing "
                         "or wrong)", hint=AUTH_HINT)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return UserError(f"--address {address}: could not join the Ray cluster ({first[:200]})",
                     hint="check that the cluster is up (`ray status --address ADDR`) and runs the same Ray "
                          f"version as this driver ({ray.__version__})")


def connect(address: str, kw: dict[str, Any], timeout: float = CONNECT_TIMEOUT_S) -> None:
    """``ray.init(**kw)`` joining ``address``, bounded by ``timeout`` seconds (checked whenever Ray's
    Python code runs, i.e. between its retries), Ray's C++ retry lines held back (shown again if it
    joins).

    Raises:
        UserError: from :func:`connect_error`, or the join took longer than ``timeout``.
    """
    import _thread
    import sys
    import tempfile
    import threading

    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        _thread.interrupt_main()

    watchdog = threading.Timer(timeout, interrupt)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)  # Ray's C++ client logs every retry to fd 2
        failure: BaseException | None = None
        watchdog.start()
        try:
            ray.init(**kw)
        except KeyboardInterrupt:
            if not timed_out.is_set():
                raise
            failure = TimeoutError(f"no answer within {timeout:g} s")
        except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
            failure = exc
        finally:
            watchdog.cancel()
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        if failure is None:
            held.seek(0)
            os.write(2, held.read())
    if failure is not None:
        if ray.is_initialized():
            ray.shutdown()
        raise connect_error(address, failure) from None


def cluster_line() -> str:
    """One line naming the Ray cluster this driver is connected to and its resources."""
    res = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    gcs = ray.get_runtime_context().gcs_address
    cpus, gpus = res.get("CPU", 0), res.get("GPU", 0)
    return (f"ray cluster {gcs}: {nodes} node{'' if nodes == 1 else 's'}, {cpus:g} CPU{'' if cpus == 1 else 's'}, "
            f"{gpus:g} GPU{'' if gpus == 1 else 's'}")


class RayExecutor(Executor):
    """Runs requests on Ray (see module doc).

    Args:
        store: the artifact store (its folder must be shared by every machine of the cluster).
        address: a running cluster's address (``ray start --head`` prints it; ``auto`` = the one
            on this machine); None starts a local Ray for the run.
        gpus, cpus: a local Ray's logical GPUs and CPUs (default: what the machine has).
        retries: times a node whose worker died is run again.
    """

    name = "ray"

    def __init__(self, store: ArtifactStore, *, address: str | None = None, gpus: int | None = None,
                 cpus: int | None = None, retries: int = 2):
        check_ray_arguments(address=address, gpus=gpus, cpus=cpus, retries=retries)
        self.store, self.address, self.gpus, self.cpus, self.retries = store, address, gpus, cpus, retries
        self.workers: dict[str, _Worker] = {}
        self.refs: dict[Any, tuple[BuildRequest, _Worker | None]] = {}
        self.group_gpus: dict[str, int] = {}
        self.remaining: list[BuildRequest] = []
        self.task_gpus = 0
        self.started_workers = 0
        self.engines: list = []
        self.cluster_line = ""  # which cluster the run joined and its resources (after start)
        self._started = False

    # ------------------------------------------------------------------ cluster

    def start(self, requests: list[BuildRequest]) -> None:
        """Start (or join) Ray and check the cluster can run every request.

        Raises:
            UserError: the cluster has no GPU (or too few on any one machine) for a node that needs them.
        """
        import logging

        env_vars = {k: v for k, v in os.environ.items() if k.startswith("RMXBENCH_")}
        env_vars.update({HOME_ENV: str(self.store.home), "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1"})
        kw: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.WARNING,
                                  runtime_env={"env_vars": env_vars})
        # Ray's own start-up notices (token authentication, resources) go to the store's driver log
        log = self.store.home / "logs" / "ray-driver.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if self.address is None:
            kw.update(address="local", num_cpus=self.cpus, num_gpus=self.gpus, include_dashboard=False,
                      object_store_memory=OBJECT_STORE_MB << 20)
            with capture(log, header="ray.init: starting a local Ray for this run"):
                ray.init(**kw)
        else:
            check_reachable(self.address)
            kw.update(address=self.address)
            with capture(log, header=f"ray.init: joining {self.address}"):
                connect(self.address, kw)
        self._started = True
        self.cluster_line = cluster_line()
        self.remaining = list(requests)
        self.group_gpus = model_gpus(requests)
        self._check(requests)

    def _check(self, requests: list[BuildRequest]) -> None:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        check_fits(requests, max((int(n["Resources"].get("GPU", 0)) for n in nodes), default=0),
                   local=self.address is None)

    def _total_gpus(self) -> int:
        return int(ray.cluster_resources().get("GPU", 0))

    def _held(self) -> int:
        return sum(w.gpus for w in self.workers.values()) + self.task_gpus

    # ------------------------------------------------------------------ submit / wait

    def submit(self, ready: list[tuple[BuildRequest, dict[str, Path]]]) -> list[str]:
        taken: list[str] = []
        waiting: list[BuildRequest] = []
        for req, _ in ready:  # existing workers and GPU-free tasks first: they need no new GPU
            w = self.workers.get(req.affinity) if req.affinity is not None else None
            if w is not None and not w.broken:
                self._call(w, req)
            elif req.affinity is None and req.gpus == 0:
                self._submit_task(req)
            else:
                waiting.append(req)
                continue
            taken.append(req.key)
        for req in waiting:  # then new GPU holders, in the driver's priority order
            w = self.workers.get(req.affinity) if req.affinity is not None else None
            if w is not None and w.broken:  # a new worker for this model once the dead one's calls are settled
                continue
            if w is not None:  # started for an earlier request of this loop
                self._call(w, req)
            else:
                need = self.group_gpus[req.affinity] if req.affinity is not None else req.gpus
                if not self._make_room(need):
                    continue
                if req.affinity is not None:
                    self._call(self._new_worker(req), req)
                else:
                    self._submit_task(req)
            taken.append(req.key)
        return taken

    def _make_room(self, need: int) -> bool:
        """True when ``need`` GPUs are free, after stopping idle workers if that makes them free."""
        free = self._total_gpus() - self._held()
        if free >= need:
            return True
        idle = sorted((w for w in self.workers.values() if w.in_flight == 0), key=lambda w: w.idle_since)
        if free + sum(w.gpus for w in idle) < need:
            return False
        for w in idle:
            self._stop(w)
            free += w.gpus
            if free >= need:
                break
        return True

    def _new_worker(self, req: BuildRequest) -> _Worker:
        gpus = self.group_gpus[req.affinity]
        actor = ModelWorker.options(num_gpus=gpus, max_restarts=self.retries,
                                    max_task_retries=self.retries).remote(str(self.store.home), req.affinity)
        w = _Worker(actor, req.affinity, getattr(req.engine, "label", "") or req.affinity[:12], gpus)
        self.workers[req.affinity] = w
        self.started_workers += 1
        return w

    def _call(self, w: _Worker, req: BuildRequest) -> None:
        keep = sorted({r.engine.key for r in self.remaining if r.affinity == w.model and r.engine is not None})
        self.refs[w.actor.build.remote(req, keep)] = (req, w)
        w.in_flight += 1

    def _submit_task(self, req: BuildRequest) -> None:
        fn = _gpu_task if req.gpus > 0 else _cpu_task
        ref = fn.options(num_gpus=req.gpus, num_cpus=req.cpus, max_retries=self.retries).remote(req, str(self.store.home))
        self.refs[ref] = (req, None)
        self.task_gpus += req.gpus

    def wait(self, timeout: float | None = None) -> list[BuildOutcome]:
        if not self.refs:
            return []
        done, _ = ray.wait(list(self.refs), num_returns=1, timeout=timeout)
        if done:
            done, _ = ray.wait(list(self.refs), num_returns=len(self.refs), timeout=0)
        outs = []
        for ref in done:
            req, w = self.refs.pop(ref)
            if w is not None:
                w.in_flight -= 1
                w.idle_since = time.time()
            else:
                self.task_gpus -= req.gpus
            try:
                out = ray.get(ref)
                self.engines.extend(e for e in out.engines if e.started)
            except ray.exceptions.RayTaskError as exc:  # the build raised: not retried
                cause = exc.cause
                text = cause.message if isinstance(cause, UserError) \
                    else f"{type(cause).__name__}: {(str(cause).strip().splitlines() or [''])[0]}"
                hint = (cause.hint or None) if isinstance(cause, UserError) else None
                notes = getattr(cause, "__notes__", ())
                text += "".join(f"; {n}" for n in notes if not n.startswith(FAILED_LOG_NOTE))
                kept = next((n.split(": ", 1)[-1] for n in notes if n.startswith(FAILED_LOG_NOTE)), None)
                out = BuildOutcome(req.key, req.stage, None, error=text, log=kept, hint=hint)
            except ray.exceptions.RayError as exc:  # the worker (or its machine) died too often
                if w is not None:
                    w.broken = True
                first = (str(exc).strip().splitlines() or [""])[0]
                out = BuildOutcome(req.key, req.stage, None,
                                   error=f"its worker died and {self.retries} retr{'y' if self.retries == 1 else 'ies'} "
                                         f"did not help ({type(exc).__name__}: {first[:160]})")
            outs.append(out)
        for w in [w for w in self.workers.values() if w.broken and w.in_flight == 0]:
            self._stop(w)
        self._rebalance()
        return outs

    def _rebalance(self) -> None:
        """A machine left the cluster: stop idle workers until the GPUs held fit what is left (a
        restarted worker waits for them)."""
        total = self._total_gpus()
        for w in sorted((w for w in self.workers.values() if w.in_flight == 0), key=lambda w: w.idle_since):
            if self._held() <= total:
                break
            self._stop(w)

    def retain(self, remaining: list[BuildRequest]) -> None:
        self.remaining = list(remaining)
        models = {r.affinity for r in remaining}
        for w in [w for w in self.workers.values() if w.model not in models and w.in_flight == 0]:
            self._stop(w)

    def _stop(self, w: _Worker) -> None:
        """Close a worker's sessions and end its process (its GPUs return to the cluster)."""
        self.workers.pop(w.model, None)
        if not w.broken:
            try:
                ray.get(w.actor.close.remote(), timeout=60)
            except ray.exceptions.RayError:
                pass
        ray.kill(w.actor, no_restart=True)

    def status(self) -> dict[str, str]:
        out = {}
        for req, w in self.refs.values():
            building = any(self.store.home.joinpath(req.stage).glob(f".tmp-{req.key}-*"))
            where = (f"worker {w.label} ({w.gpus} GPU)" if w is not None
                     else f"task ({req.gpus} GPU)" if req.gpus else f"task ({req.cpus:g} CPU)")
            out[req.key] = ("building in " if building else "queued for ") + where
        return out

    def describe(self) -> str:
        return self.cluster_line if self.address is not None else ""

    def summary(self) -> str:
        from rmxbench.backends.session import starts_line

        n = self.started_workers
        return f"ray: {n} model worker{'' if n == 1 else 's'} started; " + starts_line(self.engines)

    def close(self) -> None:
        """End the run's Ray work. Nodes still in flight (Ctrl-C, an error) are dropped at once: queued
        calls and tasks are cancelled and busy workers killed, not waited for (their temp folders
        never become artifacts); idle workers close their sessions first."""
        if not self._started:
            return
        try:
            for ref in list(self.refs):
                try:
                    ray.cancel(ref, force=False)
                except (ray.exceptions.RayError, TypeError, ValueError):
                    pass
            self.refs.clear()
            for w in list(self.workers.values()):
                if w.in_flight:
                    self.workers.pop(w.model, None)
                    ray.kill(w.actor, no_restart=True)
                else:
                    self._stop(w)
        finally:
            ray.shutdown()
            self._started = False
