"""Cost of the reranking statistics (paper §3.1) vs the work they cannot avoid.

Target (issue 12): the reranking statistics take ≤ 1.3x the time of the other model's greedy
generation plus one teacher-forced base pass over the same tokens.

In one process, interleaved over ``--reps`` repetitions (medians reported, so machine load hits
both sides alike):

- **baseline** = ``HFGenerator`` greedy generation of the other model on the prompts + one plain
  transformers forward of the base over prompt + completion (``model(input_ids,
  attention_mask).logits``, the same batches);
- **statistics** = :func:`rmxbench.analysis.reranking.build`'s measured phases: the same greedy
  generation + :func:`teacher_forced_stats` (chunked lm_head over completion positions: argmax,
  rank, entropy) + :func:`divergence_stats`;
- **build** = the whole :func:`reranking.build` call (also grading every completion with the
  grader and drawing the two figures), reported for information.

Models: ``--model tiny`` (default): the embedded tiny model against itself plus a random LoRA
(the cost does not depend on how often they disagree). ``--model qwen-shape``: a randomly
initialised Qwen2 with Qwen2.5-0.5B's vocabulary (151,936) and width, ``--layers`` layers, so
the per-token lm_head/rank work over a real vocabulary is in the measurement.

    python benchmarks/bench_reranking.py                         # embedded tiny, 64 problems
    python benchmarks/bench_reranking.py --model qwen-shape --layers 2 --n 16 --max-new-tokens 64
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _models(kind: str, layers: int):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

    root = Path(__file__).resolve().parents[1] / "rmxbench" / "embedded" / "tiny"
    tok = AutoTokenizer.from_pretrained(root)
    tok.padding_side = "left"
    if kind == "tiny":
        base = AutoModelForCausalLM.from_pretrained(root).eval()
        other = AutoModelForCausalLM.from_pretrained(root)
    else:
        cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_attention_heads=14,
                          num_key_value_heads=2, num_hidden_layers=layers, tie_word_embeddings=True,
                          max_position_embeddings=4096, eos_token_id=0, pad_token_id=0, bos_token_id=0)
        torch.manual_seed(0)
        base = AutoModelForCausalLM.from_config(cfg).eval()
        other = AutoModelForCausalLM.from_config(cfg)
        other.load_state_dict(base.state_dict())
    torch.manual_seed(1)
    other = get_peft_model(other, LoraConfig(r=4, lora_alpha=4, target_modules=["o_proj"], init_lora_weights=False))
    return (base, tok), (other.eval(), tok)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["tiny", "qwen-shape"], default="tiny")
    ap.add_argument("--layers", type=int, default=2, help="layers of the qwen-shape model")
    ap.add_argument("--n", type=int, default=64, help="problems")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from rmxbench.analysis import reranking
    from rmxbench.spec.analyses import RerankingConfig
    from rmxbench.analysis.common import ModelHandle, Pair, greedy_samples, prompts_for
    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.spec.schema import ModelRef

    torch.set_num_threads(args.threads)
    (base, tok), (other, _) = _models(args.model, args.layers)
    problems = load_benchmark("tinymath", limit=args.n)
    ref = ModelRef(path="package:embedded/tiny")
    pair = Pair(ModelHandle("base", ref), ModelHandle("other", ref), "tiny_story")
    prompts = prompts_for(problems, "tiny_story", tok)
    cfg = RerankingConfig(batch_size=args.batch_size)

    def baseline() -> tuple[float, float, int]:
        t0 = time.perf_counter()
        samples = greedy_samples(other, tok, prompts, style="tiny_story", max_new_tokens=args.max_new_tokens,
                                 batch_size=args.batch_size)
        t1 = time.perf_counter()
        seqs = [s.prompt_ids + s.completion_ids for s in samples]
        with torch.no_grad():
            for s in range(0, len(seqs), args.batch_size):
                chunk = seqs[s:s + args.batch_size]
                w = max(map(len, chunk))
                ids = torch.tensor([q + [0] * (w - len(q)) for q in chunk])
                mask = torch.tensor([[1] * len(q) + [0] * (w - len(q)) for q in chunk])
                base(input_ids=ids, attention_mask=mask).logits.float()
        return t1 - t0, time.perf_counter() - t1, sum(len(s.completion_ids) for s in samples)

    rows = []
    for _ in range(args.reps):
        gen, tf, n_tok = baseline()
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            r = reranking.build(cfg, pair, problems, task="tinymath", max_new_tokens=args.max_new_tokens,
                                out_dir=Path(d), models=((base, tok), (other, tok)))
        total = time.perf_counter() - t0
        sec = r.data["seconds"]
        rows.append({"gen": gen, "tf": tf, "stats_gen": sec["generation"], "stats_tf": sec["teacher_forced"],
                     "stats_rest": sec["statistics"], "build": total, "tokens": n_tok})
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    base_t = med["gen"] + med["tf"]
    stats_t = med["stats_gen"] + med["stats_tf"] + med["stats_rest"]
    print(f"model {args.model}{f' ({args.layers} layers, vocab 151936)' if args.model != 'tiny' else ''}, "
          f"{args.n} problems, {int(med['tokens'])} completion tokens, {args.reps} interleaved reps (medians), "
          f"{args.threads} thread(s)")
    print(f"baseline: generation {med['gen']:.3f} s + teacher-forced forward {med['tf']:.3f} s = {base_t:.3f} s")
    print(f"statistics: generation {med['stats_gen']:.3f} s + teacher-forced stats {med['stats_tf']:.3f} s "
          f"+ divergence {med['stats_rest']:.3f} s = {stats_t:.3f} s")
    print(f"ratio statistics / baseline = {stats_t / base_t:.3f} (target ≤ 1.3)")
    print(f"whole build (+ grading + 2 figures) = {med['build']:.3f} s, ratio {med['build'] / base_t:.3f}")


if __name__ == "__main__":
    main()
