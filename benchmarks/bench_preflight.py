"""What the adapter pre-flight costs (``rmxbench/backends/adapters.py``), per model size.

For each base: the time to list its modules (``BaseModules.of_model`` on loaded weights, as the HF
session does once at start; ``BaseModules.of_config``, a meta-device skeleton built from the config
alone, as the vLLM session does at its first adapter) and the time of one ``preflight`` of a rank-16
LoRA adapter on q/k/v/o (config + safetensors header read, every check), best of ``--repeat``.

Bases: the embedded tiny model (Qwen2, 0.8M), SmolLM2-135M (its config from the GGUF in
``../shared/models``; skipped when absent) and Qwen2.5-7B / Llama-3-70B-sized configs (built from
their published sizes: no download; the skeleton holds no weights, so size only changes the module
count). The adapters for the configs without weights are written with zero tensors of the right
shapes (the pre-flight reads only names and shapes).

    RMXBENCH_THREADS=1 python benchmarks/bench_preflight.py

Measured (2026-12-03, transformers 5.19.0, peft 0.21.2, RMXBENCH_THREADS=1, 2 cores shared with other
jobs, load average ~13; best of 3):

    base                  modules  of_model s  of_config s  preflight s  adapter tensors
    tiny (Qwen2 0.8M)          39       0.000        0.060        0.001               32
    SmolLM2-135M              273       0.002        0.549        0.002              240
    Qwen2.5-7B-size           255           —        0.467        0.003              224
    Llama-3-70B-size          723           —        1.135        0.009              640

(against an engine start of 30-40 s for the tiny model on vLLM here, and a load of the weights.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOL = ROOT.parent / "shared" / "models" / "smollm2-135m-instruct"


def best(fn, repeat: int) -> tuple[float, object]:
    out, t = None, float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t = min(t, time.perf_counter() - t0)
    return t, out


def write_adapter(base, folder: Path, rank: int = 16) -> int:
    """A PEFT-layout rank-``rank`` LoRA on q/k/v/o of ``base`` (BaseModules), zero tensors; returns
    the tensor count."""
    import json

    import torch
    from safetensors.torch import save_file

    targets = ("q_proj", "k_proj", "v_proj", "o_proj")
    tensors = {}
    for name, m in base.modules.items():
        if name.rsplit(".", 1)[-1] in targets:
            a, b = m.lora_shapes(rank)
            tensors[f"base_model.model.{name}.lora_A.weight"] = torch.zeros(a)
            tensors[f"base_model.model.{name}.lora_B.weight"] = torch.zeros(b)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, folder / "adapter_model.safetensors", metadata={"format": "pt"})
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": list(targets), "bias": "none",
        "task_type": "CAUSAL_LM"}))
    return len(tensors)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from rmxbench.threads import cap_threads

    cap_threads()
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, Qwen2Config

    from rmxbench.backends.adapters import HF_RULES, BaseModules, preflight
    from rmxbench.embedded import tiny_model_dir

    bases: list[tuple[str, object, object]] = []  # (label, config, loaded model or None)
    tiny_cfg = AutoConfig.from_pretrained(tiny_model_dir())
    bases.append(("tiny (Qwen2 0.8M)", tiny_cfg, AutoModelForCausalLM.from_pretrained(tiny_model_dir())))
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if (SMOL / gguf).is_file():
        cfg = AutoConfig.from_pretrained(SMOL, gguf_file=gguf)
        bases.append(("SmolLM2-135M", cfg, AutoModelForCausalLM.from_pretrained(SMOL, gguf_file=gguf)))
    else:
        print(f"(SmolLM2 skipped: {SMOL / gguf} not found)")
    bases.append(("Qwen2.5-7B-size", Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                                 num_attention_heads=28, num_key_value_heads=4, vocab_size=152064),
                  None))
    bases.append(("Llama-3-70B-size", LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                                                  num_attention_heads=64, num_key_value_heads=8, vocab_size=128256),
                  None))
    print(f"{'base':20} {'modules':>8} {'of_model s':>11} {'of_config s':>12} {'preflight s':>12} {'adapter tensors':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, cfg, model in bases:
            t_cfg, base = best(lambda: BaseModules.of_config(cfg), args.repeat)
            t_model = best(lambda: BaseModules.of_model(model), args.repeat)[0] if model is not None else None
            n = write_adapter(base, Path(tmp) / label)
            t_pre = best(lambda: preflight(Path(tmp) / label, base, HF_RULES), args.repeat)[0]
            tm = f"{t_model:11.3f}" if t_model is not None else f"{'—':>11}"
            print(f"{label:20} {len(base.modules):8d} {tm} {t_cfg:12.3f} {t_pre:12.3f} {n:16d}")


if __name__ == "__main__":
    main()
