"""The embedded default model and benchmark (rmxbench/embedded/): data, tokenizer, weights, behaviour.

The behavioural test samples the shipped model on the test split and checks the properties the
ReasonMaxxer pipeline relies on (paper §5): mixed success under sampling, one high-entropy decision
point (the plan token) and near-zero entropy everywhere else.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from rmxbench.embedded import SPLITS, tiny_model_dir, tinymath_path
from rmxbench.embedded import measure as st
from rmxbench.embedded.tinymath import PLANS, generate_splits, prompt_text


def _rows(split: str) -> list[dict]:
    return [json.loads(line) for line in tinymath_path(split).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict]]:
    return {s: _rows(s) for s in SPLITS}


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir())


@pytest.fixture(scope="module")
def model():
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(min(2, torch.get_num_threads()))
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir(), dtype=torch.float32).eval()


def test_split_sizes_fields_and_disjointness(splits):
    assert len(splits["test"]) >= 400 and len(splits["validation"]) >= 100 and len(splits["pool"]) >= 600
    assert len(splits["pretrain"]) >= 5000
    assert splits["test"][1]["id"] == "tinymath/0001"
    all_ids = [r["id"] for rows in splits.values() for r in rows]
    assert len(all_ids) == len(set(all_ids))
    texts = {s: {r["problem"] for r in rows} for s, rows in splits.items()}
    for s, rows in splits.items():
        assert len(texts[s]) == len(rows), f"duplicate problem inside {s}"
        for r in rows:
            assert set(r) >= {"id", "problem", "answer", "solution", "has_subtraction", "steps"}
            assert re.fullmatch(r"\d+", r["answer"]), r  # non-negative integer string
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert not texts[a] & texts[b], f"{a} and {b} share problems"


def test_solutions_and_plan_semantics(splits):
    # Evaluation splits carry the correct solution; its boxed answer equals the gold answer.
    for s in ("pool", "validation", "test"):
        for r in splits[s]:
            assert r["solution"].startswith("Plan:" + PLANS["follow"])
            assert st.is_correct(r["solution"], r["answer"])
    # Pretrain mixes plans ~40/60; the flawed plan is wrong exactly when the story subtracts.
    pre = splits["pretrain"]
    share = sum(r["plan"] == "follow" for r in pre) / len(pre)
    assert 0.35 < share < 0.45
    for r in pre:
        ok = st.is_correct(r["solution"], r["answer"])
        assert ok == (r["plan"] == "follow" or not r["has_subtraction"]), r
    sub_share = sum(r["has_subtraction"] for r in splits["test"]) / len(splits["test"])
    assert 0.6 < sub_share < 0.9


def test_generator_is_seeded():
    sizes = {"test": 5, "validation": 5, "pool": 5, "pretrain": 20}
    assert generate_splits(sizes, seed=3) == generate_splits(sizes, seed=3)
    assert generate_splits(sizes, seed=3) != generate_splits(sizes, seed=4)


def test_helpers_reject_unknown_split():
    with pytest.raises(ValueError, match="pretrain, pool, validation, test"):
        tinymath_path("train")


def test_tokenizer_round_trip_and_digits(tokenizer, splits):
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(tiny_model_dir() / "tokenizer.json"))
    texts = [prompt_text(r["problem"]) + " " + r["solution"] for rows in splits.values() for r in rows]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    for text, row_ids in zip(texts, ids):
        assert tokenizer.decode(row_ids) == text
    for text, row_ids in zip(texts[:2000], ids[:2000]):
        assert raw.encode(text).ids == row_ids
    # digits are single tokens, and no vocabulary entry mixes a digit with anything else
    assert tokenizer.convert_ids_to_tokens(tokenizer("12+305=317")["input_ids"]) == list("12+305=317")
    for tok in tokenizer.get_vocab():
        if any(c.isdigit() for c in tok):
            assert len(tok) == 1, tok
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.padding_side == "left" and tokenizer.bos_token is None
    # the plan is decided at exactly one token, right after " Plan:"
    a = tokenizer(" Plan:" + PLANS["follow"])["input_ids"]
    b = tokenizer(" Plan:" + PLANS["add_all"])["input_ids"]
    marker = tokenizer(" Plan:")["input_ids"]
    assert a[:len(marker)] == b[:len(marker)] == marker and a[len(marker)] != b[len(marker)]


def test_weights_size_and_config(model):
    from transformers import GenerationConfig

    path = tiny_model_dir() / "model.safetensors"
    assert path.stat().st_size <= 5 * 1024 * 1024
    n = sum(p.numel() for p in model.parameters())
    assert 0.5e6 <= n <= 2e6, n
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.config.tie_word_embeddings
    gen = GenerationConfig.from_pretrained(tiny_model_dir())
    assert gen.do_sample is False


@pytest.mark.slow
def test_sampled_behaviour_has_one_decision_point(model, tokenizer, splits):
    rows = splits["test"][:200]
    sampled = st.sample(model, tokenizer, rows, k=4, seed=1)
    plan_h, other_h = st.completion_entropies(model, tokenizer, sampled)
    s = st.summarize(rows, sampled, plan_h=plan_h, other_h=other_h, tau=0.3)
    assert 0.35 <= s["sampled_pass@1"] <= 0.75, s
    assert s["malformed_share"] < 0.02, s
    assert s["mixed_success_share"] > 0.4, s  # the pool filter of §5.1 keeps many problems
    assert s["plan_token_entropy_nats"] > 0.3, s
    assert s["other_token_entropy_nats"] < 0.05, s
    assert 0.005 < s["share_tokens_above_tau"] < 0.10, s
    assert s["plan_share_of_tokens_above_tau"] > 0.8, s
    # The flawed plan loses only on stories with a subtraction: the error is a policy error.
    for r, texts, oks in zip(rows, sampled.texts, sampled.correct):
        for text, ok in zip(texts, oks):
            if text.startswith(" Plan:" + PLANS["add_all"]) and r["has_subtraction"]:
                assert not ok
    # The integer-exact grader agrees with rmxbench's grader on these completions.
    grading = pytest.importorskip("rmxbench.evaluation.grading")
    for r, texts, oks in list(zip(rows, sampled.texts, sampled.correct))[:25]:
        for text, ok in zip(texts, oks):
            assert grading.grade(text, r["answer"], task="tinymath").correct == ok
