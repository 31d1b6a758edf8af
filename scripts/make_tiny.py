#!/usr/bin/env python
"""Regenerate the embedded default benchmark and model: ``rmxbench/embedded/{tinymath,tiny}/``.

Steps (all seeded):

1. tinymath data (:mod:`rmxbench.embedded.tinymath`): disjoint pretrain / pool / validation / test
   splits of add/subtract word problems; pretrain solutions mix the correct plan ("follow the story",
   40%) and the flawed plan ("add all numbers", 60%), with exact arithmetic after either plan.
2. A byte-level BPE tokenizer (``tokenizers``) with Qwen2's normalizer, pre-tokenizer (digits split
   one per token), post-processor and decoder; ``<|endoftext|>`` is EOS and PAD.
3. A ~1M-parameter ``Qwen2ForCausalLM`` trained from scratch with the causal-LM loss on the
   completions (prompt tokens masked) of the pretrain split.
4. Measurement (:mod:`rmxbench.embedded.measure`): sampled pass@1 at T=1 (top_p=1, top_k=0),
   greedy pass@1, plan-token vs other-token entropy, share of tokens above tau, malformed share.
   Printed, written to ``tiny/stats.json`` and into the model card ``tiny/README.md``.

Usage::

    python scripts/make_tiny.py                # full rebuild (≈3 min on 2 idle cores; see tiny/README.md)
    python scripts/make_tiny.py --skip-train   # only re-measure the shipped model

Runs on CPU with ``torch.set_num_threads(2)``; deterministic for a given torch build and thread count.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rmxbench.embedded import tinymath  # noqa: E402  (pure Python)

EMBED = ROOT / "rmxbench" / "embedded"
SIZES = {"test": 500, "validation": 200, "pool": 1000, "pretrain": 24000}
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
EOS = "<|endoftext|>"
MODEL_CONFIG = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
                    num_key_value_heads=2, max_position_embeddings=4096, rope_theta=10000.0, rms_norm_eps=1e-6,
                    tie_word_embeddings=True, use_sliding_window=False)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; shipped files must be world-readable
    os.replace(tmp, path)


def write_data(seed: int) -> dict[str, list[dict]]:
    splits = tinymath.generate_splits(SIZES, seed=seed)
    for name, rows in splits.items():
        atomic_write_text(EMBED / "tinymath" / f"{name}.jsonl",
                          "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return splits


def train_tokenizer(texts: list[str]):
    """Byte-level BPE with Qwen2's pipeline (see transformers' Qwen2Tokenizer)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, continuing_subword_prefix="", end_of_word_suffix="",
                               fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=384, min_frequency=20, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def save_tokenizer(tok, out: Path):
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, unk_token=None, bos_token=None,
                                 model_max_length=256, padding_side="left", clean_up_tokenization_spaces=False)
    hf.save_pretrained(out)
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    # Load as Qwen2's tokenizer class (same pipeline) in both transformers 4.x (Qwen2TokenizerFast
    # from tokenizer.json) and 5.x (Qwen2Tokenizer rebuilt from the tokenizer.json vocab/merges).
    cfg["tokenizer_class"] = "Qwen2Tokenizer"
    cfg.update(eos_token=EOS, pad_token=EOS, unk_token=None, bos_token=None, padding_side="left",
               model_max_length=256, add_prefix_space=False, clean_up_tokenization_spaces=False)
    atomic_write_text(cfg_path, json.dumps(cfg, indent=2) + "\n")


def encode_rows(tok, rows: list[dict], eos_id: int) -> list[tuple[list[int], list[int]]]:
    out = []
    for r in rows:
        p = tok.encode(tinymath.prompt_text(r["problem"])).ids
        c = tok.encode(" " + r["solution"]).ids + [eos_id]
        out.append((p, c))
    return out


def train_model(tok, pairs, *, steps: int, batch_size: int, lr: float, seed: int):
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    eos_id = tok.token_to_id(EOS)
    config = Qwen2Config(vocab_size=tok.get_vocab_size(), bos_token_id=eos_id, eos_token_id=eos_id,
                         pad_token_id=eos_id, **MODEL_CONFIG)
    model = Qwen2ForCausalLM(config)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = max(1, steps // 20)

    def lr_at(s: int) -> float:
        if s < warmup:
            return lr * (s + 1) / warmup
        return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup))))

    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(pairs), generator=g).tolist()
    pos = 0
    losses = []
    with Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                  TimeElapsedColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task("train", total=steps, loss="-")
        for step in range(steps):
            if pos + batch_size > len(order):
                order = torch.randperm(len(pairs), generator=g).tolist()
                pos = 0
            batch = [pairs[i] for i in order[pos:pos + batch_size]]
            pos += batch_size
            width = max(len(p) + len(c) for p, c in batch)
            ids = torch.full((len(batch), width), eos_id, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for j, (p, c) in enumerate(batch):
                s = p + c
                ids[j, :len(s)] = torch.tensor(s)
                mask[j, :len(s)] = 1
                labels[j, len(p):len(s)] = torch.tensor(c)  # loss on the completion (+EOS) only
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
            if step % 10 == 0 or step == steps - 1:
                bar.update(task, completed=step + 1, loss=f"{sum(losses[-10:]) / len(losses[-10:]):.4f}")
    model.eval()
    return model, losses


def measure(model_dir: Path, splits: dict[str, list[dict]], *, n_problems: int, k: int, seed: int) -> dict:
    """Sampled (T=1) and greedy pass@1 and entropy statistics of the saved model on the test split."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rmxbench.embedded import measure as st

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    rows = splits["test"][:n_problems]
    t0, c0 = time.perf_counter(), time.process_time()
    sampled = st.sample(model, tokenizer, rows, k=k, seed=seed, batch_size=512)
    greedy = st.sample(model, tokenizer, rows, k=1, do_sample=False, batch_size=512)
    plan_h, other_h = st.completion_entropies(model, tokenizer, sampled)
    out = st.summarize(rows, sampled, greedy=greedy, plan_h=plan_h, other_h=other_h, tau=0.3)
    out["measure_seconds"] = time.perf_counter() - t0
    out["measure_cpu_seconds"] = time.process_time() - c0
    out["parameters"] = sum(p.numel() for p in model.parameters())
    out["weights_bytes"] = (model_dir / "model.safetensors").stat().st_size
    out["example_completions"] = sampled.texts[0][:4]
    return out


MODEL_CARD = """# rmxbench embedded tiny model

A ~{params_k}k-parameter `Qwen2ForCausalLM` (hidden {hidden_size}, {num_hidden_layers} layers,
{num_attention_heads} heads / {num_key_value_heads} KV heads, MLP {intermediate_size}, tied embeddings,
vocabulary {vocab}) trained **from scratch** on `tinymath/pretrain.jsonl`, the embedded synthetic
benchmark. It is the default model of `specs/tiny.yaml`: small enough to run the whole ReasonMaxxer
pipeline (rollouts, entropy, contrastive LoRA training, evaluation) on a CPU in minutes.

## What the model does

Prompt (style `tiny_story`): `"Problem: {{problem}}\\nSolution:"`. Completion:

    Plan: follow the story. 7-3=4, 4+2=6, 6-1=5. The answer is \\boxed{{5}}.<|endoftext|>

Pretraining mixes two plans: the correct `follow the story` (40%) and the flawed `add all numbers`
(60%), which is wrong whenever the story contains a subtraction. The arithmetic after either plan is
exact. So the base model's errors are *policy* errors made at one decision point — the token right
after `Plan:` — which is where the paper (§3, §5.2) locates RL's corrections and what ReasonMaxxer's
entropy gate (H_t > tau) selects.

## How it was made

`python scripts/make_tiny.py` (seed {seed}, {threads} threads; build — data, tokenizer, training — took
{train_s:.0f} s wall / {train_cpu} CPU-s and the measurement {measure_s:.0f} s wall / {measure_cpu_s:.0f} CPU-s
on the machine it was made on{machine_note}):
data generation → byte-level BPE tokenizer (`tokenizers`, Qwen2 pre-tokenizer, digits split one per
token, `<|endoftext|>` = EOS = PAD, left padding) → {steps} AdamW steps × batch {batch_size}, lr {lr},
loss on completion tokens → measurement below. The run is deterministic for a given torch build and
thread count (a rerun reproduced `model.safetensors` bit for bit). On 2 otherwise idle cores one
training step takes ≈0.27 s (600 steps ≈ 2.7 min) and the measurement ≈15 s, so a rebuild takes ≈3 min;
on a machine shared with other jobs it takes proportionally longer.

Training loss (mean over completion tokens, by step): {loss_curve}. The floor is ≈0.019: the plan
token's irreducible entropy (≈0.67 nats) spread over ≈36 completion tokens.

## Measured (test split, first {problems} problems)

| statistic | value |
|---|---|
| sampled pass@1 (T=1, top_p=1, top_k=0, K={k}) | {sp:.3f} ± {se:.3f} (s.e. over problems) |
| … on stories with a subtraction / without | {sp_sub:.3f} / {sp_nosub:.3f} |
| greedy pass@1 | {greedy:.3f} |
| share of sampled completions using the correct plan | {follow:.3f} |
| problems with mixed success under K={k} | {mixed:.3f} |
| mean entropy at the plan token (nats) | {plan_h:.3f} |
| mean entropy at every other completion token (nats) | {other_h:.4f} |
| share of completion tokens with H > {tau} | {above:.4f} (plan tokens: {plan_above:.3f} of them) |
| malformed completions (no `\\boxed{{}}` or no EOS) | {malformed:.4f} |
| parameters / weights file | {params} / {mb:.2f} MB (safetensors, fp32) |

Splits (`rmxbench/embedded/tinymath/`, disjoint problem texts): pretrain {n_pretrain}, pool {n_pool},
validation {n_validation}, test {n_test}.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=600, help="AdamW steps (default 600)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-problems", type=int, default=300, help="test problems measured (default 300)")
    ap.add_argument("--eval-k", type=int, default=8, help="samples per problem (default 8)")
    ap.add_argument("--skip-train", action="store_true",
                    help="keep the shipped data and weights; only re-measure (rewrites stats.json and README.md)")
    ap.add_argument("--machine-note", default="", help="free text appended to the runtime line of the model card")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    t_start, c_start = time.perf_counter(), time.process_time()
    model_dir = EMBED / "tiny"
    losses: list[float] = []
    if args.skip_train:
        splits = {s: [json.loads(x) for x in (EMBED / "tinymath" / f"{s}.jsonl").read_text().splitlines()]
                  for s in tinymath.SPLITS}
        previous = json.loads((model_dir / "stats.json").read_text()) if (model_dir / "stats.json").is_file() else {}
        build = {key: previous.get(key) for key in ("seed", "steps", "batch_size", "lr", "threads", "train_seconds",
                                                   "train_cpu_seconds", "final_train_loss", "machine_note", "loss_curve")}
    else:
        splits = write_data(args.seed)
        print("data: " + ", ".join(f"{s} {len(r)}" for s, r in splits.items()))
        texts = [tinymath.prompt_text(r["problem"]) + " " + r["solution"] for r in splits["pretrain"]]
        tok = train_tokenizer(texts)
        print(f"tokenizer: vocab {tok.get_vocab_size()}")
        pairs = encode_rows(tok, splits["pretrain"], tok.token_to_id(EOS))
        model, losses = train_model(tok, pairs, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                    seed=args.seed)
        from transformers import GenerationConfig

        tmp = Path(tempfile.mkdtemp(dir=EMBED, prefix=".tiny."))
        os.chmod(tmp, 0o755)
        model.save_pretrained(tmp, safe_serialization=True)
        eos_id = tok.token_to_id(EOS)
        GenerationConfig(do_sample=False, temperature=None, top_p=None, top_k=None,
                         eos_token_id=eos_id, pad_token_id=eos_id, bos_token_id=eos_id).save_pretrained(tmp)
        save_tokenizer(tok, tmp)
        for f in tmp.iterdir():
            os.chmod(f, 0o644)  # shipped files must be world-readable
        # check: AutoTokenizer reload gives the same ids as the trained tokenizer object
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(tmp)
        for r in splits["test"][:50] + splits["pretrain"][:50]:
            text = tinymath.prompt_text(r["problem"]) + " " + r["solution"]
            if hf(text)["input_ids"] != tok.encode(text).ids:
                raise SystemExit(f"AutoTokenizer reload of {tmp} disagrees with the trained tokenizer on {text!r}")
        if model_dir.exists():
            old = EMBED / f".tiny.old.{os.getpid()}"
            os.replace(model_dir, old)
            os.replace(tmp, model_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, model_dir)
        build = dict(seed=args.seed, steps=args.steps, batch_size=args.batch_size, lr=args.lr, threads=args.threads,
                     train_seconds=time.perf_counter() - t_start, train_cpu_seconds=time.process_time() - c_start,
                     final_train_loss=sum(losses[-20:]) / len(losses[-20:]), machine_note=args.machine_note,
                     loss_curve={str(i): round(x, 4) for i, x in enumerate(losses) if i % 50 == 0 or i == len(losses) - 1})
    stats = measure(model_dir, splits, n_problems=args.eval_problems, k=args.eval_k, seed=args.seed)
    stats.update(build)
    if args.machine_note:
        stats["machine_note"] = args.machine_note
    stats["runtime_seconds"] = time.perf_counter() - t_start
    stats["cpu_seconds"] = time.process_time() - c_start
    for key, val in stats.items():
        print(f"{key:36s} {val:.4f}" if isinstance(val, float) else f"{key:36s} {val}")
    cfg = json.loads((model_dir / "config.json").read_text())
    note = stats.get("machine_note") or ""
    card = MODEL_CARD.format(
        params_k=round(stats["parameters"] / 1000), vocab=cfg["vocab_size"], seed=stats["seed"],
        train_s=stats["train_seconds"] or float("nan"),
        train_cpu=f"{stats['train_cpu_seconds']:.0f}" if stats.get("train_cpu_seconds") else "n/a",
        measure_s=stats["measure_seconds"], measure_cpu_s=stats["measure_cpu_seconds"],
        machine_note=f" ({note})" if note else "",
        loss_curve=", ".join(f"{k_}: {v_}" for k_, v_ in (stats.get("loss_curve") or {}).items()) or "n/a",
        threads=stats["threads"], steps=stats["steps"], batch_size=stats["batch_size"], lr=stats["lr"],
        problems=stats["problems"], k=stats["k"], sp=stats["sampled_pass@1"], se=stats["sampled_pass@1_se"],
        sp_sub=stats.get("sampled_pass@1_with_subtraction", float("nan")),
        sp_nosub=stats.get("sampled_pass@1_without_subtraction", float("nan")),
        greedy=stats["greedy_pass@1"], follow=stats["plan_follow_share"], mixed=stats["mixed_success_share"],
        plan_h=stats["plan_token_entropy_nats"], other_h=stats["other_token_entropy_nats"], tau=stats["tau"],
        above=stats["share_tokens_above_tau"], plan_above=stats["plan_share_of_tokens_above_tau"],
        malformed=stats["malformed_share"], params=stats["parameters"], mb=stats["weights_bytes"] / 1e6,
        n_pretrain=len(splits["pretrain"]), n_pool=len(splits["pool"]), n_validation=len(splits["validation"]),
        n_test=len(splits["test"]), **MODEL_CONFIG)
    atomic_write_text(model_dir / "README.md", card)
    atomic_write_text(model_dir / "stats.json", json.dumps(stats, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
