"""Generation backends: explicit decoding, seeding, token ids kept (no re-tokenisation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rmxbench.errors import UserError
from rmxbench.backends.generation import Decoding, HFGenerator, VLLMGenerator

TINY = Path(__file__).resolve().parents[1] / "rmxbench" / "embedded" / "tiny"


@pytest.fixture(scope="module")
def model_tok():
    if not (TINY / "tokenizer.json").is_file():
        pytest.skip("embedded tiny model (rmxbench/embedded/tiny) not present")
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(TINY)
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = Qwen2ForCausalLM(cfg).eval()
    # a hostile generation_config: must be ignored (we pass every knob explicitly)
    model.generation_config = GenerationConfig(do_sample=True, temperature=5.0, top_k=1, max_new_tokens=2)
    return model, tok


PROMPTS = ["Problem: Ann has 3 pens. She buys 2 and loses 1. How many pens does Ann have now?\nSolution:",
           "Problem: Tom has 8 cards.\nSolution:"]


def test_samples_keep_token_ids_and_are_seeded(model_tok):
    model, tok = model_tok
    gen = HFGenerator(model, tok, batch_size=2)
    d = Decoding(n=3, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=12, seed=7)
    a = gen.generate(PROMPTS, d)
    b = gen.generate(PROMPTS, d)
    c = gen.generate(PROMPTS, Decoding(n=3, temperature=1.0, max_new_tokens=12, seed=8))
    assert len(a) == 2 and all(len(x) == 3 for x in a)
    for p, samples in zip(PROMPTS, a):
        for s in samples:
            assert s.prompt_ids == tok(p, add_special_tokens=False)["input_ids"]  # unpadded prompt ids
            assert s.text == tok.decode(s.completion_ids, skip_special_tokens=True)
            assert 1 <= len(s.completion_ids) <= 12
            assert tok.pad_token_id not in s.completion_ids[:-1]
            assert (s.finish_reason == "stop") == (s.completion_ids[-1] == tok.eos_token_id)
    ids = lambda r: [[s.completion_ids for s in x] for x in r]  # noqa: E731
    assert ids(a) == ids(b)  # same seed -> same rollouts
    assert ids(a) != ids(c)  # another seed -> different rollouts
    # not all n samples identical at T=1 (hostile generation_config's top_k=1 was ignored)
    assert len({tuple(s.completion_ids) for s in a[0]}) > 1


def test_greedy_equals_manual_argmax(model_tok):
    model, tok = model_tok
    gen = HFGenerator(model, tok, batch_size=2)
    out = gen.generate(PROMPTS, Decoding(n=1, temperature=0.0, max_new_tokens=6, seed=0))
    for p, (s,) in zip(PROMPTS, out):
        ids = torch.tensor([tok(p, add_special_tokens=False)["input_ids"]])
        want = []
        with torch.no_grad():
            for _ in range(6):
                nxt = int(model(input_ids=ids).logits[0, -1].argmax())
                want.append(nxt)
                if nxt == tok.eos_token_id:
                    break
                ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
        assert s.completion_ids == want
        assert len(s.completion_ids) == 6 or s.completion_ids[-1] == tok.eos_token_id


def test_generation_config_is_explicit(model_tok):
    model, tok = model_tok
    gen = HFGenerator(model, tok)
    cfg = gen.generation_config(Decoding(n=4, temperature=0.7, top_p=0.9, top_k=0, max_new_tokens=33))
    assert cfg.do_sample is True and cfg.temperature == 0.7 and cfg.top_p == 0.9 and cfg.top_k == 0
    assert cfg.num_return_sequences == 4 and cfg.max_new_tokens == 33
    g = gen.generation_config(Decoding(temperature=0.0))
    assert g.do_sample is False


def test_vllm_missing_is_a_user_error(monkeypatch):
    from rmxbench.backends import select as backends

    monkeypatch.setattr(backends, "vllm_build", lambda: None)  # as on a machine without vLLM
    with pytest.raises(UserError, match="vLLM is not installed"):
        VLLMGenerator("some/model")


def test_truncation_at_eos_and_stop_strings(model_tok):
    from rmxbench.backends.generation import _truncate_at_stop

    _, tok = model_tok
    ids = tok(" Plan: x. The answer is 5.\nProblem: Ann has", add_special_tokens=False)["input_ids"]
    eos = tok.eos_token_id
    cut, why = _truncate_at_stop(ids, {eos}, eos, tok, ["\nProblem:"])
    assert why == "stop" and tok.decode(cut).endswith("\nProblem:") and cut == ids[:len(cut)]
    cut, why = _truncate_at_stop(ids[:4] + [eos, eos, eos], {eos}, eos, tok, ["\nProblem:"])
    assert why == "stop" and cut == ids[:4] + [eos]  # EOS kept, padding after it dropped
    cut, why = _truncate_at_stop(ids[:5], {eos}, eos, tok, ["\nProblem:"])
    assert why == "length" and cut == ids[:5]
