"""``rmxbench eval``: evaluate one model (+ optional LoRA adapter) on rmxbench's lm-eval tasks.

Example (CPU, offline data)::

    rmxbench eval --model ../shared/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --tasks gsm8k,math500 --limit 20 --data-dir ../shared/benchmarks --prompt-style r1_chat \\
        --backend hf --max-new-tokens 256 --out runs/smollm2

Writes ``<out>/<task>/{results.json,samples.jsonl,record.json,meter.json}`` and prints a table
of scores (pass@1, or avg@k with pass@k and maj@k) and wall time per task. The engine's, lm-eval's
and other libraries' messages and progress bars go to ``<out>/eval.log``, not the terminal.
"""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

from rmxbench.commands.flags import positive_int, task_list
from rmxbench.errors import UserError
from rmxbench.spec.benchmarks import benchmark, tasks as known_tasks
from rmxbench.spec.schema import BACKENDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="REF_OR_PATH",
                        help="hub repo id (owner/name), a local model directory, or a local .gguf file")
    parser.add_argument("--revision", help="hub revision (commit sha preferred; default `main`, unpinned)")
    parser.add_argument("--gguf-file", help="GGUF file name inside the repo/directory")
    parser.add_argument("--tokenizer", help="tokenizer repo/path if it differs from the model's")
    parser.add_argument("--adapter", metavar="DIR", help="PEFT LoRA adapter directory")
    parser.add_argument("--tasks", type=task_list, help=f"comma-separated tasks from: {', '.join(known_tasks())} "
                        "(default: the spec's protocol.tasks, else the six paper tasks)")
    parser.add_argument("--spec", metavar="SPEC", help="spec file whose `protocol` (decoding, limits, backend) to use")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="evaluate only the first N problems of each task")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="benchmark JSONL folder (default: $RMXBENCH_DATA_DIR, spec protocol.data_dir, else hub)")
    parser.add_argument("--prompt-style", default="qwen_raw",
                        help="prompt style (paper App. C): qwen_raw, mistral_qa, r1_chat, simplerl_chatml, "
                        "orz_think, prime_chat, tiny_story (default qwen_raw; a benchmark whose record fixes a style, like "
                        "tinymath's tiny_story, always uses it)")
    parser.add_argument("--chat-template", action="store_true",
                        help="render the prompt through the tokenizer's chat template (implied by r1_chat)")
    parser.add_argument("--backend", choices=list(BACKENDS),
                        help="generation backend (default: the spec's, else auto = vLLM where a usable build is "
                        "installed, HF otherwise)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--trust-remote-code", action="store_true", help="run the model repo's own code (off by default)")
    parser.add_argument("--max-new-tokens", type=positive_int, metavar="N", help="override protocol.max_new_tokens")
    parser.add_argument("--batch-size", type=positive_int, metavar="N", help="override protocol.batch_size (HF backend)")
    parser.add_argument("--row-id", default="model", help="row id stored in the records (default `model`)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default rmxbench-eval/<UTC timestamp>)")


def model_ref_of(args: argparse.Namespace):
    """The :class:`~rmxbench.spec.schema.ModelRef` of ``args.model`` (a local folder, a ``.gguf``
    file, a ``package:`` path or a hub id ``owner/name`` at ``args.revision``; also used by
    ``rmxbench analyze``).

    Raises:
        UserError: a path-like value that does not exist, or a malformed hub id.
    """
    from rmxbench.spec.schema import ModelRef

    p = Path(args.model).expanduser()
    try:
        if p.is_file() and p.suffix == ".gguf":
            return ModelRef(path=str(p.resolve().parent), gguf_file=p.name, tokenizer=args.tokenizer)
        if p.exists():
            return ModelRef(path=str(p.resolve()), gguf_file=args.gguf_file, tokenizer=args.tokenizer)
        if args.model.startswith("package:"):
            return ModelRef(path=args.model, gguf_file=args.gguf_file, tokenizer=args.tokenizer)
        if args.model.startswith(("/", ".", "~")) or args.model.count("/") > 1:  # meant as a local path
            raise UserError(f"--model {args.model!r}: no such file or folder ({p.resolve()})",
                            hint="pass an existing local directory, a .gguf file, or a hub id owner/name")
        return ModelRef(repo=args.model, revision=args.revision or "main", gguf_file=args.gguf_file,
                        tokenizer=args.tokenizer)
    except ValueError as exc:  # pydantic validation
        msg = "; ".join(e["msg"] for e in getattr(exc, "errors", lambda: [])()) or str(exc)
        raise UserError(f"--model {args.model!r}: {msg}",
                        hint="pass a local directory, a .gguf file, or a hub id owner/name") from None


def _protocol(args: argparse.Namespace, tasks: list[str] | None, spec=None):
    """The protocol of ``--spec`` (``spec`` if already loaded; else the default with ``backend: auto``)
    with the command's overrides."""
    from rmxbench.spec.schema import Protocol

    if spec is None and args.spec:
        from rmxbench.spec.check import load_spec

        spec = load_spec(args.spec)
    if spec is not None:
        proto = spec.protocol
    else:
        proto = Protocol(backend="auto")  # vLLM where usable, else HF
    upd: dict = {}
    if tasks:
        proto = proto.for_tasks(tasks)
    if args.backend:
        upd["backend"] = args.backend
    if args.max_new_tokens is not None:
        upd["max_new_tokens"] = args.max_new_tokens
    if args.batch_size is not None:
        upd["batch_size"] = args.batch_size
    if args.limit is not None:
        upd["limit"] = {t: args.limit for t in (tasks or proto.tasks)}
    from pydantic import ValidationError

    try:
        return Protocol.model_validate({**proto.model_dump(), **upd})
    except ValidationError as exc:  # the flags and the spec's protocol together are not a valid protocol
        e = exc.errors()[0]
        raise UserError(f"the eval flags{' and --spec ' + args.spec if args.spec else ''} give an invalid protocol: "
                        f"{'.'.join(map(str, e['loc'])) or 'protocol'}: {e['msg']}",
                        hint="protocol fields and allowed values: rmxbench/spec/schema.py (Protocol)") from None


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    tasks = args.tasks  # a list (commands.flags.task_list), or None
    if tasks:
        bad = [t for t in tasks if t not in known_tasks()]
        if bad:
            raise UserError(f"--tasks: unknown task(s) {', '.join(bad)}; allowed: {', '.join(known_tasks())}")
    from rmxbench.evaluation.prompts import STOP_SEQUENCES

    if args.prompt_style not in STOP_SEQUENCES:
        raise UserError(f"--prompt-style {args.prompt_style!r} is not a known style; "
                        f"allowed: {', '.join(sorted(STOP_SEQUENCES))}")
    if args.adapter and not Path(args.adapter).is_dir():
        raise UserError(f"--adapter {args.adapter!r} is not a directory")
    if args.adapter:  # its config and tensor layout now; its module names once the engine holds the model
        from rmxbench.backends.adapters import preflight

        preflight(args.adapter, None)
    ref = model_ref_of(args)
    from rmxbench.spec.context import SpecContext, resolve_data_dir

    ctx = SpecContext.load(args.spec, data_dir=args.data_dir) if args.spec else None
    protocol = _protocol(args, tasks, ctx.spec if ctx is not None else None)
    data_dir = ctx.data_dir if ctx is not None else resolve_data_dir(args.data_dir)
    out = Path(args.out or f"rmxbench-eval/{_dt.datetime.now(_dt.timezone.utc):%Y%m%dT%H%M%SZ}")
    from rmxbench.commands.flags import check_writable_dir

    check_writable_dir("--out", out)  # before the engine starts, not after
    from rmxbench.evaluation.data import data_identity, load_benchmark

    for t in protocol.tasks:  # every task's data file is there (and readable) before the engine starts
        data_identity(t, data_dir)
        if data_dir is not None and not (benchmark(t).derived_from or benchmark(t).embedded):
            load_benchmark(t, data_dir=data_dir)
    from rmxbench.buildlog import capture, terminal, width

    console = Console(emoji=False, highlight=False, file=terminal(), width=width(terminal()))  # the engine's and lm-eval's output go to eval.log
    if ref.repo is not None and not ref.pinned:
        console.print(f"[yellow]warning:[/] {escape(ref.repo)}@{escape(str(ref.revision))} is not pinned to a commit sha")

    from rmxbench.backends.session import SessionPool
    from rmxbench.evaluation.lmeval import evaluate_task

    spec_dir = ctx.dir if ctx is not None else None
    engine = _engine(ref, args, protocol, spec_dir)
    pool = SessionPool()
    records = []
    out.mkdir(parents=True, exist_ok=True)
    log = out / "eval.log"
    try:
        with capture(log, header=f"rmxbench eval: starting the {engine.backend} engine of {args.model}"):
            session = pool.get(engine)  # one engine for every task (and the adapter)
        for t in protocol.tasks:
            style = benchmark(t).prompt_style or args.prompt_style
            console.print(f"[bold]{t}[/]: evaluating ({session.name}, style {style}, "
                          f"limit {protocol.limit.get(t, 'all')}) …")
            with capture(log, header=f"rmxbench eval: {t}"):
                records.append(evaluate_task(session, t, protocol=protocol, prompt_style=style,
                                             chat_template=args.chat_template, model_ref=ref,
                                             adapter_dir=args.adapter, spec_dir=spec_dir, data_dir=data_dir,
                                             out_dir=out / t, row_id=args.row_id))
    finally:
        with capture(log):
            pool.close_all()

    table = Table(title=f"rmxbench eval — {escape(args.model)}" + (f" + {escape(args.adapter)}" if args.adapter else ""))
    for col, just in [("task", "left"), ("metric", "left"), ("score", "right"), ("pass/maj@k", "right"),
                      ("n", "right"), ("k", "right"), ("no ans.", "right"), ("t/o", "right"), ("wall s", "right")]:
        table.add_column(col, justify=just, no_wrap=True)
    for r in records:
        extra = " / ".join(f"{v:.3f}" for v in r.extra.values()) if r.extra else "—"
        table.add_row(r.task, r.metric, f"{r.score:.3f}", extra, str(r.n_problems), str(r.k),
                      str(r.malformed), str(r.timeouts), f"{r.provenance.get('wall_seconds', 0):.1f}")
    console.print(table)
    console.print("n = problems, k = samples per problem, no ans. = completions with no extractable answer, "
                  "t/o = grader timeouts (counted wrong)")
    console.print(f"outputs: {escape(str(out.resolve()))}/<task>/{{results.json, samples.jsonl, record.json}}; "
                  f"log (the engine's and lm-eval's messages): {escape(str(log.resolve()))}; {pool.summary()}")
    return 0


def _engine(ref, args: argparse.Namespace, protocol, spec_dir: Path | None):
    """The :class:`~rmxbench.backends.session.EngineSpec` of ``--model`` (+ ``--adapter``'s LoRA rank)."""
    from rmxbench.backends.session import engine_of
    from rmxbench.pipeline.store import ArtifactStore

    v = protocol.vllm
    return engine_of(ref, backend=protocol.backend, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                     max_model_len=protocol.max_model_len, spec_dir=spec_dir, home=ArtifactStore().home,
                     tensor_parallel_size=v.tensor_parallel_size, gpu_memory_utilization=v.gpu_memory_utilization,
                     enforce_eager=v.enforce_eager,
                     adapter=args.adapter, max_lora_rank=v.max_lora_rank, label=args.row_id)
