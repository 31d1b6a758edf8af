"""``rmxbench analyze``: the paper's analyses on an ad-hoc (base, other) pair, outside any spec.

Examples (CPU, embedded model; the adapter from ``rmxbench train specs/tiny.yaml --model tiny-rmx``)::

    rmxbench analyze --base package:embedded/tiny --other-adapter ADAPTER_DIR --task tinymath \\
        --prompt-style tiny_story --limit 100 --analysis reranking --analysis interventions --out out/
    rmxbench analyze --base Qwen/Qwen2.5-1.5B --base-revision SHA \\
        --other hkust-nlp/Qwen-2.5-1.5B-SimpleRL-Zoo --other-revision SHA --task math500 --prompt-style qwen_raw

``--other`` names other weights (an RL checkpoint); ``--other-adapter`` a PEFT adapter applied
on top of ``--other`` (default: on the base, e.g. a ReasonMaxxer adapter). The τ curve takes
``--sweep ADAPTER_DIR`` (a picked ReasonMaxxer adapter; every τ adapter of its sweep is scored;
repeatable, e.g. once for a ``positive_only`` row). ``--config FILE.yaml`` sets analysis
settings with the spec's ``analyses:`` keys (``reranking:``, ``interventions:``,
``distillation:``, ``tau_curve:``), validated like a spec.

Writes ``OUT/<analysis>-<task>/`` (``result.json`` + PNG figures; each folder is built under a
temporary name and renamed when complete, so an interrupted run leaves no partial result and a
rerun skips finished analyses unless ``--force``; each folder's ``request.json`` records the settings
it was computed with, and a rerun into it with other settings is refused unless ``--force``) and ``OUT/analyses.md`` + ``OUT/analyses.html``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shutil
from pathlib import Path

from rmxbench.commands.flags import positive_int
from rmxbench.errors import UserError

ANALYSES = ("reranking", "interventions", "distillation", "tau_curve")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", required=True, metavar="REF_OR_PATH", help="base model: hub id, local dir or package: path")
    p.add_argument("--base-revision", help="hub revision of --base (commit sha preferred)")
    p.add_argument("--other", metavar="REF_OR_PATH", help="the other model's weights (default: the base's)")
    p.add_argument("--other-revision", help="hub revision of --other")
    p.add_argument("--other-adapter", metavar="DIR", help="PEFT adapter applied on --other (or on the base)")
    p.add_argument("--sweep", action="append", default=[], metavar="ADAPTER_DIR",
                   help="τ curve: a picked ReasonMaxxer adapter folder (rmx_metadata.json); repeatable")
    p.add_argument("--analysis", action="append", choices=ANALYSES, metavar="NAME",
                   help=f"analysis to run ({', '.join(ANALYSES)}); repeatable; default reranking + interventions")
    p.add_argument("--task", required=True, help="test task (e.g. math500, gsm8k, tinymath)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="first N problems of the task")
    p.add_argument("--prompt-style", required=True, help="prompt style both models see (paper App. C)")
    p.add_argument("--max-new-tokens", type=positive_int, default=1024, metavar="N", help="completion cap in tokens (default 1024)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--config", metavar="FILE", help="YAML with per-analysis settings (see module doc)")
    p.add_argument("--data-dir", metavar="DIR", help="benchmark JSONL folder (default: $RMXBENCH_DATA_DIR, else hub)")
    p.add_argument("--out", metavar="DIR", help="output folder (default rmxbench-analyses/<UTC timestamp>)")
    p.add_argument("--force", action="store_true", help="recompute analyses whose folder exists")


def _ref(value: str, revision: str | None):
    from rmxbench.commands.eval import model_ref_of

    return model_ref_of(argparse.Namespace(model=value, revision=revision, gguf_file=None, tokenizer=None))


def _configs(path: str | None) -> dict:
    """Per-analysis configs from ``--config`` (safe YAML, unknown keys are errors)."""
    import yaml
    from pydantic import ValidationError

    from rmxbench.spec import analyses as ac

    classes = {"reranking": ac.RerankingConfig, "interventions": ac.InterventionConfig,
               "distillation": ac.DistillationConfig, "tau_curve": ac.TauCurveConfig}
    raw: dict = {}
    if path:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"--config {path}: cannot read YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(raw, dict) or set(raw) - set(classes):
            raise UserError(f"--config {path}: top-level keys must be among {', '.join(classes)}",
                            hint=f"got: {', '.join(map(str, raw)) if isinstance(raw, dict) else type(raw).__name__}")
    out = {}
    for name, cls in classes.items():
        try:
            out[name] = cls.model_validate(raw.get(name) or {})
        except ValidationError as exc:
            e = exc.errors()[0]
            raise UserError(f"--config {path}: {name}.{'.'.join(map(str, e['loc']))}: {e['msg']}",
                            hint="keys and allowed values: rmxbench/spec/analyses.py") from None
    return out


#: What an analysis folder was computed from (:func:`_request`), beside its result.json.
REQUEST_FILE = "request.json"


def _request(args: argparse.Namespace, data_dir: Path | None) -> dict:
    """The settings every analysis of the command shares, by content where content decides: each
    model by its engine key (hub repo + revision, or the sha256 of local weights), the adapter by
    its sha256, the task's rows by :func:`~rmxbench.evaluation.data.data_identity` (``data_dir``:
    the resolved one, ``$RMXBENCH_DATA_DIR`` included); then limit, decoding and dtype. Each
    analysis adds its name, its config and (``tau_curve``) its sweeps. Hashes go through the
    process's hash cache, which the engines reuse."""
    from rmxbench.evaluation.data import data_identity
    from rmxbench.pipeline.identity import adapter_identity

    return {"base": _weights(_ref(args.base, args.base_revision), args).model,
            "other": _weights(_ref(args.other, args.other_revision), args).model if args.other else None,
            "other_adapter": adapter_identity(args.other_adapter) if args.other_adapter else None,
            "task": args.task, "data": data_identity(args.task, data_dir), "limit": args.limit,
            "prompt_style": args.prompt_style, "max_new_tokens": args.max_new_tokens, "dtype": args.dtype}


def _check_same_request(final: Path, request: dict) -> None:
    """Raise UserError when the finished folder ``final`` was computed from other settings than
    ``request`` (a rerun would otherwise report the old pair's result as this one's). A folder
    without :data:`REQUEST_FILE` (written before it existed) is taken as it is.

    Raises:
        UserError: names the settings that differ, old and new.
    """
    import json

    try:
        old = json.loads((final / REQUEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise UserError(f"{final / REQUEST_FILE} cannot be read ({exc}), so it is unknown what {final} was computed "
                        "from", hint="--force recomputes it there, or pass another --out") from None
    diff = [k for k in request if old.get(k) != request[k]]
    if diff:
        def short(v):
            text = json.dumps(v, sort_keys=True)
            return text if len(text) <= 60 else text[:57] + "…"

        shown = "; ".join(f"{k}: {short(old.get(k))} then, {short(request[k])} now" for k in diff[:4])
        raise UserError(f"{final} holds a {request['analysis']} result computed with other settings ({shown})",
                        hint="--force recomputes it there, or pass another --out")


def _weights(ref, args: argparse.Namespace):
    """The HF :class:`~rmxbench.backends.session.EngineSpec` of a model of the pair (torch weights:
    teacher-forced passes and lockstep decoding)."""
    from rmxbench.backends.session import engine_of

    return engine_of(ref, dtype=args.dtype).for_weights()


def _load_pair(args: argparse.Namespace, sessions) -> tuple:
    """The (base, other) :class:`~rmxbench.analysis.common.ModelHandle` pair of the flags, their
    weights loaded on ``sessions`` (other None without ``--other``/``--other-adapter``)."""
    from rmxbench.analysis.common import ModelHandle

    base_ref = _ref(args.base, args.base_revision)
    base = ModelHandle(args.base, base_ref, dtype=args.dtype, session=sessions.get(_weights(base_ref, args)))
    if not (args.other or args.other_adapter):
        return base, None
    label = args.other or args.base
    if args.other_adapter:
        label += f" + adapter {Path(args.other_adapter).name}"
    other_ref = _ref(args.other, args.other_revision) if args.other else base.ref
    other = ModelHandle(label, other_ref, adapter_dir=Path(args.other_adapter).resolve() if args.other_adapter else None,
                        dtype=args.dtype,
                        session=sessions.get(_weights(other_ref, args), alongside=[_weights(base_ref, args).key])
                        if args.other and not args.other_adapter else None)
    return base, other


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from rich.markup import escape as rich_escape

    from rmxbench import progress
    from rmxbench.analysis.api import build_analysis, expected_items
    from rmxbench.board.analyses import render_sections
    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.evaluation.prompts import STOP_SEQUENCES
    from rmxbench.results import atomic_write_json, atomic_write_text

    names = list(dict.fromkeys(args.analysis or ["reranking", "interventions"]))
    if args.prompt_style not in STOP_SEQUENCES:
        raise UserError(f"--prompt-style {args.prompt_style!r} is not a known style",
                        hint=f"allowed: {', '.join(sorted(STOP_SEQUENCES))}")
    for flag, d in [("--other-adapter", args.other_adapter), *(("--sweep", d) for d in args.sweep)]:
        if d and not Path(d).is_dir():
            raise UserError(f"{flag} {d!r} is not a directory")
    pair_names = [n for n in names if n != "tau_curve"]
    if pair_names and not (args.other or args.other_adapter):
        verb = "compares" if len(pair_names) == 1 else "compare"
        raise UserError(f"{', '.join(pair_names)} {verb} two models: give --other and/or --other-adapter")
    if "tau_curve" in names and not args.sweep:
        raise UserError("tau_curve needs --sweep ADAPTER_DIR (a picked ReasonMaxxer adapter)")
    configs = _configs(args.config)
    out = Path(args.out or f"rmxbench-analyses/{_dt.datetime.now(_dt.timezone.utc):%Y%m%dT%H%M%SZ}")
    from rmxbench.commands.flags import check_writable_dir

    check_writable_dir("--out", out)  # before any model loads
    from rmxbench.spec.context import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)  # --data-dir, else $RMXBENCH_DATA_DIR, else the hub
    problems = load_benchmark(args.task, data_dir=data_dir, limit=args.limit)  # a bad task or file: before too
    if not problems:
        raise UserError(f"--task {args.task}: no problems to analyse")
    from rmxbench.pipeline.identity import folder_sha256

    shared = _request(args, data_dir)
    requests = {name: {"analysis": name, **shared, "config": configs[name].model_dump(mode="json"),
                       "sweep": [folder_sha256(d) for d in args.sweep] if name == "tau_curve" else []}
                for name in names}
    finals = {name: out / f"{name}-{args.task}" for name in names}
    done = [name for name in names if finals[name].is_dir() and not args.force]
    for name in done:  # a finished folder of other settings is refused before any model loads
        _check_same_request(finals[name], requests[name])
    from rmxbench.backends.session import SessionPool
    from rmxbench.buildlog import capture

    sessions = SessionPool()  # each model is loaded once for every analysis of this command
    base = other = None  # no model is loaded when every analysis asked for is done already
    if len(done) < len(names):
        with capture(out / "analyze.log", header=f"rmxbench analyze: loading {args.base}"):  # loaders' bars
            base, other = _load_pair(args, sessions)
    console = Console(emoji=False, highlight=False)
    folders = []
    for name in names:
        final = finals[name]
        folders.append((final, f"{final.name}/"))
        if name in done:
            console.print(f"{name}: done already ({escape(str(final))}); --force recomputes")
            continue
        tmp = out / f".tmp-{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        sweeps = None
        if name == "tau_curve":
            from rmxbench.analysis.tau_curve import sweep_from_adapter, sweep_label

            sweeps = {}
            for s in args.sweep:
                label = sweep_label(Path(s))
                sweeps[label if label not in sweeps else f"{label} {Path(s).name}"] = sweep_from_adapter(Path(s))
        pool = (load_benchmark(configs["distillation"].pool, data_dir=data_dir)
                if name == "distillation" else None)
        try:
            with progress.new_progress(console) as display, progress.use(display):
                total = expected_items(name, configs[name], n=len(problems), reference=other is not None,
                                       sweep_points=sum(len(v) for v in (sweeps or {}).values()))
                bar = progress.task(rich_escape(f"{name} on {args.task}"), total)
                build_analysis(name, configs[name], base=base, other=other, prompt_style=args.prompt_style,
                               problems=problems, task=args.task, max_new_tokens=args.max_new_tokens,
                               out_dir=tmp, pool=pool, sweeps=sweeps, progress=bar.advance)
                bar.done()
            atomic_write_json(tmp / REQUEST_FILE, requests[name])
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        console.print(f"{name}: {escape(str(final))}")
    sessions.close_all()
    md, page = render_sections(folders)
    atomic_write_text(out / "analyses.md", f"# rmxbench analyses\n\n{md}\n")
    atomic_write_text(out / "analyses.html", "<!doctype html><html><head><meta charset=\"utf-8\"><title>rmxbench "
                      f"analyses</title></head><body>{page}</body></html>\n")
    console.print(f"report: {escape(str((out / 'analyses.md').resolve()))} and analyses.html")
    return 0
