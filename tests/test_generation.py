"""HF generation (:func:`rmxbench.backends.hf_session.hf_generate`, what HFSession runs): explicit
decoding, per-sample seeding independent of batch company, token ids kept (no re-tokenisation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rmxbench.backends.hf_session import generation_config, hf_generate
from rmxbench.errors import UserError
from rmxbench.spec.sampling import Sampling

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
    d = Sampling.of(n=3, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=12, seed=7)
    a = hf_generate(model, tok, PROMPTS, d, batch_size=2)
    b = hf_generate(model, tok, PROMPTS, d, batch_size=2)
    c = hf_generate(model, tok, PROMPTS, Sampling.of(n=3, temperature=1.0, max_new_tokens=12, seed=8), batch_size=2)
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


def test_sample_depends_on_seed_problem_and_index_not_batch_company(model_tok):
    """vLLM #51226's failure mode, checked on HF: a problem's samples are the same whether it is
    generated alone, first or last in a batch, or with another batch size (seeded per request id)."""
    model, tok = model_tok
    d = Sampling.of(n=2, temperature=1.0, max_new_tokens=12, seed=3)
    more = PROMPTS + ["Problem: Bo has 4 hats and finds 5.\nSolution:"]
    ids = ["p0", "p1", "p2"]
    together = hf_generate(model, tok, more, d, request_ids=ids, batch_size=3)
    alone = [hf_generate(model, tok, [p], d, request_ids=[i], batch_size=1)[0] for p, i in zip(more, ids)]
    reordered = hf_generate(model, tok, more[::-1], d, request_ids=ids[::-1], batch_size=2)[::-1]
    seq = lambda r: [[s.completion_ids for s in x] for x in r]  # noqa: E731
    assert seq(together) == seq(alone) == seq(reordered)
    # another request id (problem) or sample index gives another sample
    other = hf_generate(model, tok, more, d, request_ids=["q0", "q1", "q2"], batch_size=3)
    assert seq(other) != seq(together)
    assert any(x[0].completion_ids != x[1].completion_ids for x in together)


def test_seeded_sampler_matches_the_distribution(model_tok):
    """The per-row sampler draws from transformers' own warped distribution: on one fixed logits
    row, 4000 draws match softmax(logits / T) after top-k within sampling error."""
    from rmxbench.backends.hf_session import SeededSampler, warpers

    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0]])
    sm = Sampling.of(n=1, temperature=0.7, top_k=4)
    proc = SeededSampler(range(4000), warpers(sm))
    picks = proc(None, logits.expand(4000, -1)).argmax(-1)
    freq = torch.bincount(picks, minlength=5).float() / 4000
    want = torch.softmax(torch.tensor([2.0, 1.0, 0.5, float("-inf"), 0.0]) / 0.7, -1)
    assert freq[3] == 0  # cut by top-k
    assert torch.allclose(freq, want, atol=0.03)


def test_greedy_equals_manual_argmax(model_tok):
    model, tok = model_tok
    out = hf_generate(model, tok, PROMPTS, Sampling.of(n=1, temperature=0.0, max_new_tokens=6), batch_size=2)
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
    """Sampling never reaches transformers' own sampler (the seeded per-row sampler does it), and
    the model's hostile generation_config.json sets nothing."""
    from rmxbench.backends.hf_session import warpers

    model, tok = model_tok
    cfg = generation_config(model, tok, Sampling.of(n=4, temperature=0.7, top_p=0.9, max_new_tokens=33))
    assert cfg.do_sample is False and cfg.temperature is None and cfg.top_k is None
    assert cfg.num_return_sequences == 1 and cfg.max_new_tokens == 33
    w = warpers(Sampling.of(n=4, temperature=0.7, top_p=0.9, top_k=5))
    assert [type(x).__name__ for x in w] == ["TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper"]


def test_vllm_missing_is_a_user_error(monkeypatch):
    from rmxbench.backends import select as backends
    from rmxbench.backends.session import EngineSpec, open_session

    monkeypatch.setattr(backends, "vllm_build", lambda: None)  # as on a machine without vLLM
    with pytest.raises(UserError, match="vLLM is not installed"):
        open_session(EngineSpec(backend="vllm", model="x"))


def test_truncation_at_eos_and_stop_strings(model_tok):
    from rmxbench.backends.generation import truncate_at_stop

    _, tok = model_tok
    ids = tok(" Plan: x. The answer is 5.\nProblem: Ann has", add_special_tokens=False)["input_ids"]
    eos = tok.eos_token_id
    cut, why = truncate_at_stop(ids, {eos}, eos, tok, ["\nProblem:"])
    assert why == "stop" and tok.decode(cut).endswith("\nProblem:") and cut == ids[:len(cut)]
    cut, why = truncate_at_stop(ids[:4] + [eos, eos, eos], {eos}, eos, tok, ["\nProblem:"])
    assert why == "stop" and cut == ids[:4] + [eos]  # EOS kept, padding after it dropped
    cut, why = truncate_at_stop(ids[:5], {eos}, eos, tok, ["\nProblem:"])
    assert why == "length" and cut == ids[:5]
