"""The run plan: every (row, stage) of a spec with its content key and whether it is cached.

From a spec the plan is (paper Table 3 rows, ARCHITECTURE.md):

- every base model: ``eval`` per task;
- every RL baseline: ``eval`` per task; a baseline with ``unavailable`` set gets one
  ``reported`` item (its reported numbers are shown, nothing is evaluated);
- every ReasonMaxxer row: ``train`` (pool → rollouts → selection → entropy → train(τ) × |τ|
  → validate(τ) → pick, built by :func:`rmxbench.reasonmaxxer_trainer.train_row`) and then
  ``eval`` per task with the picked adapter.

Every item has a content key (:meth:`rmxbench.store.ArtifactStore.key`) over everything that
determines its output, so ``rmxbench run --dry-run`` shows what is cached and what will run.
Building the plan never imports torch or touches the network: models are identified by hub
repo + revision or by the sha256 of their local files, data by file sha256.

Eval keys (:func:`eval_key_parts`): model identity (hub repo + revision, or local file hash,
plus the adapter's file hash for ReasonMaxxer rows), the protocol fields that matter for the task
(decoding, k, token caps, backend, subset size, seed), task, prompt style + its template text,
chat template flag, dtype, grader version, the task's data-file sha256 (or embedded data hash),
the lm-eval version and :data:`EVAL_CODE_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from rmxbench.errors import UserError
from rmxbench.spec import BaseModelSpec, ModelRef, Protocol, Spec
from rmxbench.store import DONE_MARKER, ArtifactStore, file_sha256

#: Bump when the runner's evaluation wiring changes in a way that changes eval outputs.
EVAL_CODE_VERSION = "eval-1"
#: Version of the runner's record of a ReasonMaxxer row's training (the ``rowtrain`` artifact).
ROWTRAIN_CODE_VERSION = "rowtrain-1"

#: Stages a user can ``--force``, in pipeline order; forcing one forces all later ones.
STAGES: tuple[str, ...] = ("pool", "rollouts", "selection", "entropy", "train", "validate", "eval")
TRAIN_STAGES: frozenset[str] = frozenset(STAGES[:-1])
#: Store stage of the runner's record of a row's train_row result (status, adapter, stage dirs).
ROWTRAIN_STAGE = "rowtrain"
EVAL_STAGE = "eval"


def force_closure(stages: Iterable[str]) -> frozenset[str]:
    """Stages to rebuild for ``--force`` values: each named stage and every stage downstream.

    ``all`` forces everything. Example: ``{"entropy"}`` → ``{entropy, train, validate, eval}``.

    Raises:
        UserError: an unknown stage name (the message lists the allowed values).
    """
    out: set[str] = set()
    for s in stages:
        if s == "all":
            return frozenset(STAGES)
        if s not in STAGES:
            raise UserError(f"--force {s!r} is not a stage; allowed: {', '.join(STAGES)}, all")
        out.update(STAGES[STAGES.index(s):])
    return frozenset(out)


# ----------------------------------------------------------------------------- identities


class HashCache:
    """sha256 of files, remembered across runs in ``<home>/.hashcache.json`` by (path, size, mtime).

    Hashing a multi-GB checkpoint on every ``--dry-run`` would be slow; the cache makes the second
    time free. A changed file (size or mtime) is re-hashed.
    """

    def __init__(self, home: Path):
        self.path = Path(home) / ".hashcache.json"
        try:
            self.data: dict[str, list] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
        self.dirty = False

    def sha256(self, f: Path) -> str:
        st = f.stat()
        k = str(f.resolve())
        hit = self.data.get(k)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        digest = file_sha256(f)
        self.data[k] = [st.st_size, st.st_mtime_ns, digest]
        self.dirty = True
        return digest

    def files_sha256(self, root: Path, files: list[Path]) -> str:
        h = hashlib.sha256()
        for f in sorted(files):
            h.update(str(f.relative_to(root)).encode())
            h.update(self.sha256(f).encode())
        return h.hexdigest()

    def save(self) -> None:
        if not self.dirty:
            return
        from rmxbench.results import atomic_write_json

        try:
            atomic_write_json(self.path, self.data)
        except OSError:  # pragma: no cover - read-only home: just don't remember
            pass
        self.dirty = False


_IGNORED = re.compile(r"(^|/)(\.|README|PROVENANCE|LICENSE)|\.md$")


def model_identity(ref: ModelRef, *, spec_dir: Path | None, hashes: HashCache) -> dict[str, Any]:
    """What identifies a model's weights in keys: hub ``repo`` + ``revision``, or the sha256 of
    the local files (the GGUF file alone when ``gguf_file`` is set; READMEs and dotfiles ignored).

    Raises:
        UserError: a local path that does not exist.
    """
    ident: dict[str, Any] = {"gguf_file": ref.gguf_file, "tokenizer": ref.tokenizer}
    if ref.repo is not None:
        ident.update(repo=ref.repo, revision=ref.revision)
        return ident
    from rmxbench.modeling import resolve_path

    p = resolve_path(ref.path, spec_dir)
    if p.is_file():
        ident["sha256"] = hashes.sha256(p)
    elif ref.gguf_file:
        f = p / ref.gguf_file
        if not f.is_file():
            raise UserError(f"model.gguf_file {ref.gguf_file!r} not found in {p}",
                            hint="fix `model.gguf_file` (a file name inside `model.path`)")
        ident["sha256"] = hashes.sha256(f)
    else:
        files = [f for f in p.rglob("*") if f.is_file() and not _IGNORED.search(str(f.relative_to(p)))]
        ident["sha256"] = hashes.files_sha256(p, files)
    return ident


def adapter_identity(adapter_dir: Path, hashes: HashCache) -> str:
    """sha256 of a PEFT adapter folder's weight/config files (not its timing or metadata files)."""
    files = [f for f in Path(adapter_dir).rglob("*") if f.is_file() and f.name.startswith("adapter_")]
    if not files:  # unknown layout: hash everything except bookkeeping
        files = [f for f in Path(adapter_dir).rglob("*") if f.is_file()
                 and f.name not in {"meter.json", DONE_MARKER, "rmx_metadata.json"}]
    return hashes.files_sha256(Path(adapter_dir), files)


def data_identity(name: str, data_dir: Path | None, hashes: HashCache) -> dict[str, Any]:
    """What identifies benchmark/pool ``name`` in keys: the sha256 of its JSONL file (data dir or
    embedded), or the hub dataset name (+ revision if :mod:`rmxbench.hub_data` pins one).

    Raises:
        UserError: the data dir lacks the file (names it and the flag to fix it).
    """
    from rmxbench.data import EMBEDDED, FILES

    if name in EMBEDDED:
        from rmxbench.embedded import tinymath_path

        return {"embedded": name, "sha256": hashes.sha256(tinymath_path(EMBEDDED[name]))}
    if name not in FILES:
        raise UserError(f"unknown benchmark {name!r}; known: {sorted([*FILES, *EMBEDDED])}")
    if data_dir is not None:
        f = Path(data_dir) / FILES[name]
        if not f.is_file():
            raise UserError(f"benchmark file {f} not found (needed for {name!r})",
                            hint="pass --data-dir pointing at a folder with the shared/benchmarks files, "
                                 "or omit it to use the hub datasets")
        return {"file": FILES[name], "sha256": hashes.sha256(f)}
    ident: dict[str, Any] = {"hub": name}
    try:  # torch-free: the hub source (dataset id, configs, split) of the benchmark
        from rmxbench.hub_data import SOURCES

        src = SOURCES.get(name)
        if src is not None:
            ident["source"] = [src.dataset, list(src.configs), src.split]
    except Exception:  # noqa: BLE001 - hub_data absent or broken: key by name only
        pass
    return ident


def _grader_version() -> str:
    try:
        from rmxbench.grading import GRADER_VERSION

        return str(GRADER_VERSION)
    except Exception:  # noqa: BLE001 - grader not installed yet: key on its source text
        p = Path(__file__).with_name("grading.py")
        return "src:" + (file_sha256(p)[:16] if p.is_file() else "absent")


def _lm_eval_version() -> str:
    try:
        return metadata.version("lm_eval")
    except metadata.PackageNotFoundError:
        return "absent"


def _tasks_hash() -> str:
    """sha256 of rmxbench's lm-eval task definitions (``rmxbench/lm_tasks/`` or a ``tasks/`` folder)."""
    import rmxbench

    pkg = Path(rmxbench.__file__).parent
    h = hashlib.sha256()
    for root in (pkg / "lm_tasks", pkg / "tasks", pkg.parent / "tasks"):
        if root.is_dir():
            for f in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                            and p.suffix not in {".md", ".txt"}):
                h.update(str(f.relative_to(root)).encode())
                h.update(file_sha256(f).encode())
    return h.hexdigest()[:20]


def task_protocol(protocol: Protocol, task: str) -> dict[str, Any]:
    """The protocol fields that change the score of ``task`` (paper §6.1: pass@1 greedy, or avg@k)."""
    if task in protocol.avg_at_k.tasks:
        dec = {"metric": f"avg@{protocol.avg_at_k.k}", "k": protocol.avg_at_k.k,
               "temperature": protocol.avg_at_k.temperature, "top_p": protocol.avg_at_k.top_p, "top_k": 0}
    else:
        p = protocol.pass_at_1
        dec = {"metric": "pass@1", "k": 1, "temperature": p.temperature, "top_p": p.top_p, "top_k": p.top_k}
    dec.update(max_new_tokens=protocol.max_new_tokens, max_model_len=protocol.max_model_len,
               backend=protocol.backend, limit=protocol.limit.get(task), seed=protocol.seed)
    if protocol.backend == "hf":
        dec["batch_size"] = protocol.batch_size  # padding changes greedy numerics slightly
    else:
        dec["tensor_parallel_size"] = protocol.vllm.tensor_parallel_size
    return dec


def prompt_identity(style: str) -> dict[str, Any]:
    """The prompt template text and stop sequences of ``style`` (so a template edit re-evaluates)."""
    from rmxbench import prompts

    return {"style": style, "template": getattr(prompts, "TEMPLATES", {}).get(style),
            "stop": getattr(prompts, "STOP_SEQUENCES", {}).get(style)}


# ----------------------------------------------------------------------------- plan


@dataclass
class EvalSettings:
    """How one row is evaluated (the row's own overrides applied over its base's settings)."""

    model: ModelRef
    prompt_style: str
    chat_template: bool
    dtype: str
    trust_remote_code: bool


@dataclass
class PlanItem:
    """One unit of work: a row's training, or a (row, task) evaluation cell.

    ``status`` is one of ``cached``, ``run``, ``forced``, ``reported``, ``after-train`` (eval of a
    ReasonMaxxer row whose adapter does not exist yet, key unknown until training),
    ``too-few-mixed`` (training stored that too few mixed-success problems were found; eval skipped).
    """

    row_id: str
    kind: str  # base | rl_baseline | reasonmaxxer
    stage: str  # eval | train | reported
    task: str | None
    key: str | None
    status: str
    base: BaseModelSpec
    row: Any
    settings: EvalSettings | None = None
    detail: str = ""
    parts: dict[str, Any] = field(default_factory=dict)
    #: For a cached ``train`` item: trainer stage label -> artifact folder (relative to the store home).
    substages: dict[str, str] = field(default_factory=dict)

    @property
    def to_run(self) -> bool:
        return self.status in {"run", "forced", "after-train"}


@dataclass
class Plan:
    """The whole plan of a spec (see module doc); ``items`` in board order."""

    spec: Spec
    spec_path: Path
    spec_dir: Path
    data_dir: Path | None
    store: ArtifactStore
    force: frozenset[str]
    only: tuple[str, ...]
    items: list[PlanItem]
    warnings: list[str]

    def selected(self) -> list[PlanItem]:
        """Items of the rows selected by ``--only`` (all rows when none given)."""
        return [i for i in self.items if not self.only or i.row_id in self.only]


def eval_settings(base: BaseModelSpec, kind: str, row: Any) -> EvalSettings:
    """Evaluation settings of a row: RL baselines may override prompt, chat template and dtype."""
    if kind == "rl_baseline":
        return EvalSettings(
            model=row.model,
            prompt_style=row.prompt_style or base.prompt_style,
            chat_template=base.chat_template if row.chat_template is None else row.chat_template,
            dtype=row.dtype or base.dtype,
            trust_remote_code=row.trust_remote_code,
        )
    return EvalSettings(model=base.model, prompt_style=base.prompt_style, chat_template=base.chat_template,
                        dtype=base.dtype, trust_remote_code=base.trust_remote_code)


def eval_key_parts(settings: EvalSettings, task: str, *, protocol: Protocol, model_id: dict[str, Any],
                   adapter_id: str | None, data_id: dict[str, Any]) -> dict[str, Any]:
    """Everything that determines a (row, task) evaluation cell (see module doc)."""
    return {
        "model": model_id,
        "adapter": adapter_id,
        "task": task,
        "protocol": task_protocol(protocol, task),
        "prompt": prompt_identity(settings.prompt_style),
        "chat_template": settings.chat_template,
        "dtype": settings.dtype,
        "grader": _grader_version(),
        "data": data_id,
        "lm_eval": _lm_eval_version(),
        "tasks": _tasks_hash(),
        "code": EVAL_CODE_VERSION,
    }


def rowtrain_key_parts(spec: Spec, base: BaseModelSpec, row: Any, *, model_id: dict[str, Any],
                       data_dir: Path | None, hashes: HashCache) -> dict[str, Any]:
    """Key parts of the runner's record of a ReasonMaxxer row's training (``rowtrain`` stage):
    base model identity and settings, the recipe, the pool data and the evaluation sets (the pool
    is decontaminated against them). The trainer's own per-stage keys decide what it rebuilds;
    this record only lets ``--dry-run`` show training as cached without importing torch."""
    recipe = spec.recipes[row.recipe]
    evalsets = {t: data_identity(t, data_dir, hashes) for t in spec.protocol.tasks}
    return {
        "model": model_id,
        "dtype": base.dtype,
        "prompt": prompt_identity(base.prompt_style),
        "chat_template": base.chat_template,
        "recipe": recipe.model_dump(mode="json"),
        "pool": data_identity(recipe.pool.source, data_dir, hashes),
        "evalsets": evalsets,
        "trainer_src": _trainer_src_hash(),
        "code": ROWTRAIN_CODE_VERSION,
    }


#: Modules whose code decides a ReasonMaxxer row's training; their source hash is part of the
#: ``rowtrain`` key so an upgrade re-asks the trainer (whose own stage keys decide what reruns).
TRAINER_MODULES = ("reasonmaxxer_trainer.py", "reasonmaxxer_config.py", "pool.py", "rollouts.py", "entropy.py",
                   "loss.py", "generation.py", "modeling.py", "prompts.py", "grading.py", "data.py")


def _trainer_src_hash() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in TRAINER_MODULES:
        f = here / name
        h.update(name.encode())
        h.update(file_sha256(f).encode() if f.is_file() else b"absent")
    return h.hexdigest()[:20]


def read_rowtrain(store: ArtifactStore, key: str) -> dict | None:
    """The stored ``rowtrain`` record (``status``, ``message``, ``adapter_dir``, ``stage_dirs`` as
    paths relative to the store home), or None if absent or its adapter/stage folders are gone."""
    d = store.get(ROWTRAIN_STAGE, key)
    if d is None:
        return None
    try:
        rec = json.loads((d / "train_result.json").read_text())
    except (OSError, ValueError):
        return None
    for rel in [rec.get("adapter_dir"), *rec.get("stage_dirs", {}).values()]:
        if rel and not (store.home / rel / DONE_MARKER).is_file() and not (store.home / rel).is_dir():
            return None
    return rec


def build_plan(spec: Spec, *, spec_path: str | Path, store: ArtifactStore, data_dir: Path | None,
               only: Iterable[str] = (), force: Iterable[str] = ()) -> Plan:
    """Build the plan of ``spec`` (see module doc). Pure bookkeeping: no torch, no network.

    Args:
        spec: the validated spec.
        spec_path: the spec file (relative model paths and ``reference`` resolve against its folder).
        store: the artifact store (to check what is cached).
        data_dir: resolved benchmark data dir, or None for hub datasets.
        only: row ids to run (``--only``); empty = all rows. The plan still lists every row.
        force: ``--force`` stage names (closure taken with :func:`force_closure`).

    Raises:
        UserError: an ``--only`` id that is not a row of the spec; missing local model/data files.
    """
    spec_path = Path(spec_path)
    spec_dir = spec_path.resolve().parent
    forced = force_closure(force)
    only = tuple(dict.fromkeys(only))
    ids = [row.id for _, _, row in spec.rows()]
    unknown = [o for o in only if o not in ids]
    if unknown:
        raise UserError(f"--only {', '.join(map(repr, unknown))}: no such row in {spec_path}",
                        hint="row ids: " + ", ".join(ids))
    hashes = HashCache(store.home)
    items: list[PlanItem] = []
    warnings: list[str] = []
    data_ids = {t: data_identity(t, data_dir, hashes) for t in spec.protocol.tasks}
    model_ids: dict[str, dict] = {}

    def mid(ref: ModelRef) -> dict:
        k = ref.model_dump_json()
        if k not in model_ids:
            model_ids[k] = model_identity(ref, spec_dir=spec_dir, hashes=hashes)
        return model_ids[k]

    for base, kind, row in spec.rows():
        if kind == "rl_baseline" and row.unavailable:
            items.append(PlanItem(row.id, kind, "reported", None, None, "reported", base, row,
                                  detail=f"no checkpoint ({row.unavailable}); reported numbers only"))
            continue
        if kind == "rl_baseline" and getattr(row, "train", None) is not None:
            raise UserError(f"row {row.id!r}: `train:` rows (RL baselines rmxbench trains itself) are not "
                            "wired into this planner yet", hint="rmxbench.rl.grpo_stage.build_grpo trains one "
                            "directly; remove the row to run the rest of the spec")
        settings = eval_settings(base, kind, row)
        if not settings.model.pinned:
            warnings.append(f"{row.id}: hub revision {settings.model.revision!r} of {settings.model.repo} is "
                            "not pinned to a commit sha; results may change when the repo changes")
        model_id = mid(settings.model)
        adapter_id: str | None = None
        skip_eval = None
        if kind == "reasonmaxxer":
            tparts = rowtrain_key_parts(spec, base, row, model_id=model_id, data_dir=data_dir, hashes=hashes)
            tkey = store.key(ROWTRAIN_STAGE, **tparts)
            rec = read_rowtrain(store, tkey)
            train_forced = bool(forced & TRAIN_STAGES)
            if rec is None or train_forced:
                status = "forced" if (train_forced and rec is not None) else "run"
                detail = f"recipe {row.recipe}: pool → rollouts → selection → entropy → τ sweep → pick"
            else:
                status = "cached" if rec.get("status") == "ok" else "too-few-mixed"
                detail = rec.get("message") or f"adapter {rec.get('adapter_dir')}"
            items.append(PlanItem(row.id, kind, "train", None, tkey, status, base, row, settings,
                                  detail=detail, parts=tparts,
                                  substages=dict((rec or {}).get("stage_dirs") or {}) if status != "forced" else {}))
            if rec is not None and not train_forced:
                if rec.get("status") != "ok":
                    skip_eval = rec.get("message") or "training found too few mixed-success problems"
                else:
                    adapter_id = adapter_identity(store.home / rec["adapter_dir"], hashes)
            else:
                adapter_id = None
        for task in spec.protocol.tasks:
            if skip_eval is not None:
                items.append(PlanItem(row.id, kind, "eval", task, None, "too-few-mixed", base, row, settings,
                                      detail="skipped: " + skip_eval))
                continue
            if kind == "reasonmaxxer" and adapter_id is None:
                items.append(PlanItem(row.id, kind, "eval", task, None, "after-train", base, row, settings,
                                      detail="key known once the adapter exists"))
                continue
            parts = eval_key_parts(settings, task, protocol=spec.protocol, model_id=model_id,
                                   adapter_id=adapter_id, data_id=data_ids[task])
            key = store.key(EVAL_STAGE, **parts)
            cached = store.get(EVAL_STAGE, key) is not None
            status = ("forced" if cached else "run") if "eval" in forced else ("cached" if cached else "run")
            items.append(PlanItem(row.id, kind, "eval", task, key, status, base, row, settings, parts=parts))
    hashes.save()
    return Plan(spec=spec, spec_path=spec_path, spec_dir=spec_dir, data_dir=data_dir, store=store,
                force=forced, only=only, items=items, warnings=list(dict.fromkeys(warnings)))


# ----------------------------------------------------------------------------- spec + display


_STYLE = {"cached": "green", "run": "yellow", "forced": "magenta", "after-train": "yellow",
          "reported": "cyan", "too-few-mixed": "red"}


def render_plan(plan: Plan, console) -> None:
    """Print the plan as a rich table (row, stage, task, key, status) plus pinning warnings."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"plan for {plan.spec.suite.name} ({plan.spec_path})", show_lines=False)
    for col, kw in (("row", {"overflow": "fold"}), ("stage", {}), ("task", {}), ("key", {"no_wrap": True}),
                    ("status", {"no_wrap": True}), ("note", {"overflow": "fold", "ratio": 1})):
        t.add_column(col, **kw)
    sel = set(i.row_id for i in plan.selected())
    prev = None
    for it in plan.items:
        status = it.status if it.row_id in sel else f"{it.status} (not selected)"
        style = _STYLE.get(it.status, "") if it.row_id in sel else "dim"
        name = "" if it.row_id == prev else (it.row_id if it.kind == "base" else "  " + it.row_id)
        prev = it.row_id
        note = it.detail if (it.stage != "eval" or it.status in {"too-few-mixed"}) else ""
        t.add_row(escape(name), it.stage, it.task or "", (it.key or "—")[:12],
                  f"[{style}]{status}[/]" if style else status, escape(note))
        for label, rel in it.substages.items():  # the trainer's stages, as stored
            t.add_row("", f"  └ {escape(label)}", "", Path(rel).name[:12], "[dim]cached[/]", "")
    console.print(t)
    sel_items = plan.selected()
    n_run = sum(i.to_run for i in sel_items)
    n_cached = sum(i.status == "cached" for i in sel_items)
    console.print(f"{len(sel_items)} items: [green]{n_cached} cached[/], [yellow]{n_run} to run[/]"
                  + (f", forced stages: {', '.join(s for s in STAGES if s in plan.force)}" if plan.force else "")
                  + f"; store: {escape(str(plan.store.home))}"
                  + f"; data: {escape(str(plan.data_dir)) if plan.data_dir else 'hub datasets'}")
    for w in plan.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")


def resolve_home(cli_home: str | None) -> Path:
    """``--home`` > ``$RMXBENCH_HOME`` > user cache dir."""
    from rmxbench.store import default_home

    return Path(cli_home).expanduser() if cli_home else default_home()


def resolve_spec_data_dir(spec: Spec, spec_path: Path, cli_data_dir: str | None) -> Path | None:
    """The benchmark data dir: ``--data-dir`` > ``$RMXBENCH_DATA_DIR`` > ``protocol.data_dir``
    (relative to the spec file's folder) > None (hub datasets)."""
    from rmxbench.data import resolve_data_dir

    spec_value = spec.protocol.data_dir
    if spec_value and not os.path.isabs(os.path.expanduser(spec_value)):
        spec_value = str(spec_path.resolve().parent / spec_value)
    return resolve_data_dir(cli_data_dir, spec_value)
