"""The tokenization contract (rmxbench.backends.tokenization): for every prompt style, every backend feeds
the model the same token ids — HF rollouts, vLLM rollouts, lm-eval's HF model and lm-eval's vLLM
model — with BOS exactly once where the tokenizer adds one.

Two tokenizers, both built here from the embedded model so nothing is downloaded:
- ``plain``: the embedded byte-level BPE tokenizer (no BOS, like Qwen2) plus a ChatML chat template;
- ``bos``: the same with a new ``<s>`` BOS that the tokenizer prepends (Llama/Mistral-style
  post-processor) and a chat template that starts with the BOS *text* (like Llama-2/Mistral/
  R1-Distill templates), so a naive encoder would produce a double BOS. The model's embedding is
  resized to the new vocabulary.
Entropy scoring and training reuse the rollouts' ids (never re-tokenised), so they inherit them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rmxbench.backends.select import vllm_usable
from rmxbench.evaluation.prompts import STOP_SEQUENCES, build_prompt, task_prompt

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "rmxbench" / "embedded" / "tiny"
PROBLEM = "Ann has 3 pens. She buys 2. How many pens does Ann have?"
STYLES = sorted(STOP_SEQUENCES)  # every prompt style, r1_chat included
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAMA = ("{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}")


def _build(kind: str, out: Path) -> Path:
    from tokenizers import processors
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(TINY)
    model = AutoModelForCausalLM.from_pretrained(TINY)
    if kind == "bos":
        tok.add_special_tokens({"bos_token": "<s>"})
        tok._tokenizer.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                          special_tokens=[("<s>", tok.bos_token_id)])])
        model.resize_token_embeddings(len(tok), mean_resizing=False)
        tok.chat_template = LLAMA
    else:
        tok.chat_template = CHATML
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module", params=["plain", "bos"])
def model_dir(request, tmp_path_factory):
    return _build(request.param, tmp_path_factory.mktemp(request.param)), request.param


def _expected(tok):
    from rmxbench.backends.tokenization import prompt_ids

    return {s: prompt_ids(tok, build_prompt(PROBLEM, s, tok)) for s in STYLES}


def test_rule_bos_exactly_once(model_dir):
    from transformers import AutoTokenizer

    from rmxbench.backends.tokenization import adds_bos

    d, kind = model_dir
    tok = AutoTokenizer.from_pretrained(d)
    exp = _expected(tok)
    assert adds_bos(tok) is (kind == "bos")
    for style, ids in exp.items():
        text = build_prompt(PROBLEM, style, tok)
        if kind == "bos":
            assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1, style
            assert ids[1:] == tok(text.removeprefix("<s>"), add_special_tokens=False)["input_ids"], style
        else:
            assert ids == tok(text, add_special_tokens=False)["input_ids"], style


def _rollout_ids(session, tok):
    from rmxbench.spec.sampling import Sampling

    prompts = [build_prompt(PROBLEM, s, tok) for s in STYLES]
    outs = session.generate(prompts, Sampling.of(n=1, temperature=0.0, max_new_tokens=1), batch_size=len(STYLES))
    return {s: o[0].prompt_ids for s, o in zip(STYLES, outs)}


def _session(d, backend):
    from rmxbench.backends.session import engine_of, open_session
    from rmxbench.spec.schema import ModelRef

    return open_session(engine_of(ModelRef(path=str(d)), backend=backend, dtype="float32", max_model_len=1024))


def _session_lm_ids(session, tok):
    """The ids the session's lm-eval model generates from, per style (chat styles rendered by
    lm-eval through :meth:`SessionLM.apply_chat_template`, as ``rmxbench eval`` runs them)."""
    from rmxbench.backends.tokenization import prompt_ids
    from rmxbench.spec.sampling import Sampling

    lm = session.lm(sampling=Sampling.of())
    out = {}
    for s in STYLES:
        ctx = task_prompt(PROBLEM, s)
        if s == "r1_chat":
            ctx = lm.apply_chat_template([{"role": "user", "content": ctx}], add_generation_prompt=True)
        out[s] = prompt_ids(tok, ctx)
    return out


def test_hf_rollouts_and_lm_eval_hf(model_dir):
    import torch
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    d, _ = model_dir
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(d)
    exp = _expected(tok)
    session = _session(d, "hf")
    assert _rollout_ids(session, tok) == exp
    assert _session_lm_ids(session, tok) == exp  # evaluation (lm-eval on the session) sees the same ids
    lm = HFLM(pretrained=str(d), device="cpu", dtype="float32", batch_size=1, max_length=256)
    got = {}
    for s in STYLES:
        ctx = task_prompt(PROBLEM, s)
        if s == "r1_chat":  # rmxbench eval runs chat styles with apply_chat_template=True
            ctx = lm.apply_chat_template([{"role": "user", "content": ctx}], add_generation_prompt=True)
        ids, _ = lm.tok_batch_encode([ctx])
        got[s] = ids[0].tolist()
    assert got == exp


@pytest.mark.slow
@pytest.mark.skipif(not vllm_usable()[0], reason=f"vLLM backend not usable here: {vllm_usable()[1]}")
def test_vllm_rollouts_and_lm_eval_vllm(model_dir):
    from transformers import AutoTokenizer

    from rmxbench.backends.select import prepare_vllm

    d, _ = model_dir
    tok = AutoTokenizer.from_pretrained(d)
    exp = _expected(tok)
    session = _session(d, "vllm")
    assert _rollout_ids(session, tok) == exp
    assert _session_lm_ids(session, tok) == exp
    session.close()
    prepare_vllm()
    from lm_eval.models.vllm_causallms import VLLM

    lm = VLLM(pretrained=str(d), dtype="float32", max_model_len=1024, seed=0)
    got = {}
    for s in STYLES:
        ctx = task_prompt(PROBLEM, s)
        if s == "r1_chat":
            ctx = lm.apply_chat_template([{"role": "user", "content": ctx}], add_generation_prompt=True)
        got[s] = list(lm.tok_encode(ctx))
    assert got == exp
