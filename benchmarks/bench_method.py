"""Speed and peak memory of ReasonMaxxer's entropy scoring and training step (paper §5.2-5.3).

Model: a randomly initialised Qwen2 with Qwen2.5-0.5B's shape (vocab 151,936, hidden 896, 24
layers, 14 heads, 2 KV heads, MLP 4864, tied embeddings); ``--layers`` runs fewer layers (CPU).
One sequence of ``--seq-len`` tokens (default 2048). Four measurements, each in its own
subprocess so peak memory is clean:

- ``forward``: bare forward that returns only the last hidden state (no logits) — the baseline
  for scoring;
- ``entropy``: :func:`rmxbench.method.entropy.token_entropy` (chunked lm_head + softmax entropy);
- ``lora_ce``: one plain LoRA cross-entropy training step (HF ``labels=`` loss, AdamW step) —
  the baseline for training;
- ``rmx_step``: one ReasonMaxxer step (:func:`rmxbench.method.loss.model_loss`: adapter-disabled base
  pass + adapter pass + chunked/checkpointed log-prob + KL, backward, AdamW step).

Peak memory: CUDA ``torch.cuda.max_memory_allocated`` (bytes allocated by tensors); CPU: peak
resident set size of the subprocess during warm-up + timed steps, sampled every 5 ms by a psutil
thread (tracemalloc cannot see torch allocations), reported in total and above the RSS right
before the first step (i.e. the model and inputs). Speed: tokens/s over
``--reps`` timed repetitions after one warm-up.

Targets (issue): scoring ≤ 1.25x the memory and ≥ 0.8x the speed of the bare forward.

    python benchmarks/bench_method.py --layers 4 --seq-len 2048          # CPU
    python benchmarks/bench_method.py --device cuda                       # full 24 layers
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

QWEN25_05B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_attention_heads=14,
                  num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True,
                  rope_theta=1000000.0, rms_norm_eps=1e-6)


def _child(args: argparse.Namespace) -> dict:
    import resource

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    cfg = Qwen2Config(num_hidden_layers=args.layers, **QWEN25_05B)
    cfg._attn_implementation = "sdpa"
    model = Qwen2ForCausalLM(cfg).to(dev, dtype).eval()
    ids = torch.randint(0, cfg.vocab_size, (1, args.seq_len), device=dev)
    mask = torch.ones_like(ids)
    step = None
    if args.what in ("lora_ce", "rmx_step"):
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=32, lora_alpha=64, target_modules=["q_proj", "k_proj", "v_proj",
                                                                                      "o_proj"]))
        # move B away from 0 so the KL term and its gradient do real work
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 1e-3)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        model.train()
        dec = torch.zeros_like(ids, dtype=torch.bool)
        dec[:, args.seq_len // 2::20] = True  # ~2.5% decision points in the completion half
        batch = {"input_ids": ids, "attention_mask": mask, "decision": dec, "advantage": torch.tensor([1.0])}

        def step():
            if args.what == "lora_ce":
                loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
            else:
                from rmxbench.method.loss import model_loss

                loss = model_loss(model, batch, anchor_weight=0.2, chunk_size=args.chunk).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    elif args.what == "forward":
        from rmxbench.method.entropy import hidden_states

        def step():
            with torch.no_grad():
                return hidden_states(model, ids, mask)
    else:
        from rmxbench.method.entropy import token_entropy

        def step():
            return token_entropy(model, ids, mask, chunk_size=args.chunk)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    import threading

    import psutil  # a dependency of accelerate

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    peak = [rss0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            stop.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_alloc = torch.cuda.memory_allocated()
    step()  # warm-up
    sync()
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    out = {"what": args.what, "seconds": med, "tokens_per_s": args.seq_len / med}
    if dev.type == "cuda":
        out["peak_bytes"] = torch.cuda.max_memory_allocated()
        out["peak_above_model_bytes"] = out["peak_bytes"] - base_alloc
    else:
        stop.set()
        sampler.join()
        out["peak_bytes"] = peak[0]
        out["peak_above_model_bytes"] = peak[0] - rss0
        out["ru_maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=24, help="decoder layers (24 = Qwen2.5-0.5B)")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16 (CUDA default)")
    ap.add_argument("--chunk", type=int, default=256, help="positions per lm_head chunk (rmxbench default 256)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", action="append", default=[], choices=["forward", "entropy", "lora_ce", "rmx_step"])
    ap.add_argument("--what", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    args.dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    if args.what:
        print(json.dumps(_child(args)))
        return 0
    res = {}
    for what in args.only or ["forward", "entropy", "lora_ce", "rmx_step"]:
        cmd = [sys.executable, __file__, "--what", what, "--layers", str(args.layers), "--seq-len", str(args.seq_len),
               "--device", args.device, "--dtype", args.dtype, "--chunk", str(args.chunk), "--reps", str(args.reps),
               "--threads", str(args.threads)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{what}: failed\n{p.stderr[-2000:]}", file=sys.stderr)
            continue
        res[what] = json.loads(p.stdout.strip().splitlines()[-1])
        r = res[what]
        print(f"{what:9s} {r['seconds']:8.2f} s  {r['tokens_per_s']:9.1f} tok/s  peak {r['peak_bytes'] / 2**20:8.0f} MiB"
              f"  (+{r['peak_above_model_bytes'] / 2**20:.0f} MiB over model)", flush=True)
    print(f"config: Qwen2.5-0.5B shape, {args.layers} layers, seq {args.seq_len}, {args.device} {args.dtype}, "
          f"chunk {args.chunk}, threads {args.threads}, reps {args.reps}")
    if "forward" in res and "entropy" in res:
        f, e = res["forward"], res["entropy"]
        print(f"scoring vs bare forward: memory {e['peak_bytes'] / f['peak_bytes']:.2f}x (target <= 1.25x), "
              f"speed {e['tokens_per_s'] / f['tokens_per_s']:.2f}x (target >= 0.8x); extra memory "
              f"{(e['peak_above_model_bytes'] - f['peak_above_model_bytes']) / 2**20:.0f} MiB")
    if "lora_ce" in res and "rmx_step" in res:
        c, r = res["lora_ce"], res["rmx_step"]
        print(f"ReasonMaxxer step vs plain LoRA CE step: memory {r['peak_bytes'] / c['peak_bytes']:.2f}x, "
              f"speed {r['tokens_per_s'] / c['tokens_per_s']:.2f}x")
    if args.json:
        print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
