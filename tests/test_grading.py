"""Tests for rmxbench.evaluation.grading: the examples table in GRADING.md, extraction, equivalence, the
numeric policy, the per-check time bound (threads, processes, pathological inputs) and maj@k.

Runs the real math-verify in real worker processes (no mocks).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from fractions import Fraction
from pathlib import Path

import pytest

from rmxbench.evaluation import grading
from rmxbench.evaluation import grading_normalise as gn
from rmxbench.evaluation import grading_workers as gw
from rmxbench.evaluation.grading import (
    GRADER_VERSION,
    POLICIES,
    Extraction,
    Grade,
    extract_answer,
    grade,
    grade_many,
    is_equivalent,
    majority_answer,
    summarize,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared"


@pytest.fixture(scope="module", autouse=True)
def _warm():
    grading.warm_up()  # worker start-up is not part of any timed assertion below
    yield


# ----------------------------------------------------------------------------------------------
# GRADING.md examples table (keeps the doc and the code honest)
# ----------------------------------------------------------------------------------------------


def _parse_examples() -> list[dict]:
    text = (REPO / "GRADING.md").read_text(encoding="utf-8")
    block = text.split("<!-- examples:start -->", 1)[1].split("<!-- examples:end -->", 1)[0]
    rows = [ln for ln in block.strip().splitlines() if ln.startswith("| ") and not ln.startswith("| id ")]
    out = []
    for ln in rows:
        cells = [c.strip() for c in ln.strip()[1:-1].split(" | ")]
        assert len(cells) == 8, f"bad examples row (need 8 cells): {ln}"
        ident, kind, task, comp, gold, extracted, rule, correct = cells

        def code(c: str) -> str:
            assert c.startswith("`") and c.endswith("`"), f"cell not a code span: {c!r} in {ln}"
            return c[1:-1].replace("⏎", "\n")

        task_v, ex_v = code(task), code(extracted)
        out.append(
            dict(
                id=ident,
                kind=kind,
                task=None if task_v == "-" else task_v,
                completion=code(comp),
                gold=code(gold),
                extracted=None if ex_v == "-" else ex_v,
                rule=code(rule),
                correct={"True": True, "False": False}[correct],
            )
        )
    return out


EXAMPLES = _parse_examples()


def test_examples_table_is_substantial():
    assert len(EXAMPLES) >= 50
    assert len({e["id"] for e in EXAMPLES}) == len(EXAMPLES)
    # every rule and both verdicts are exercised
    assert {e["rule"] for e in EXAMPLES} == {
        "boxed", "fbox", "boxed_joined", "answer_tag", "gsm8k_hash", "final_answer", "last_number", "none"
    }
    assert sum(e["correct"] for e in EXAMPLES) > 10 and sum(not e["correct"] for e in EXAMPLES) > 10
    assert GRADER_VERSION in (REPO / "GRADING.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("ex", EXAMPLES, ids=[e["id"] for e in EXAMPLES])
def test_grading_md_example(ex):
    g = grade(ex["completion"], ex["gold"], task=ex["task"])
    assert isinstance(g, Grade)
    assert (g.extracted, g.rule) == (ex["extracted"], ex["rule"]), ex["kind"]
    assert g.correct is ex["correct"], f'{ex["kind"]}: {ex["extracted"]!r} vs gold {ex["gold"]!r}'
    assert g.timed_out is False
    assert extract_answer(ex["completion"], ex["task"]) == Extraction(ex["extracted"], ex["rule"])


# ----------------------------------------------------------------------------------------------
# Extraction specifics
# ----------------------------------------------------------------------------------------------


def test_policy_table_covers_every_task():
    """Every benchmark record names a policy of the table; pools grade like their benchmark."""
    from rmxbench.spec.benchmarks import BENCHMARKS

    assert {b.grading for b in BENCHMARKS.values()} <= set(POLICIES)
    assert grading.policy_for("olympiadbench").join_final_boxes and not grading.policy_for("gsm8k").join_final_boxes
    assert grading.policy_for(None) == grading.DEFAULT_POLICY
    assert grading.policy_for("no_such_task") == grading.DEFAULT_POLICY
    assert grading.policy_for("gsm8k_train") == POLICIES["gsm8k"]
    assert grading.policy_for("embedded_train") == POLICIES["tinymath"]


def test_last_complete_box_wins_and_nested_braces():
    comp = r"We get \boxed{\frac{1}{2}} then \boxed{\left\{ x \mid x^{2} > 0 \right\}} ok"
    assert extract_answer(comp) == Extraction(r"\left\{ x \mid x^{2} > 0 \right\}", "boxed")
    # a fbox after a boxed wins, being last
    assert extract_answer(r"\boxed{1} \fbox{2}") == Extraction("2", "fbox")
    # empty boxes are ignored
    assert extract_answer(r"\boxed{4} and \boxed{ }") == Extraction("4", "boxed")
    # \boxedx is not a box command
    assert extract_answer(r"\boxedfoo{3}", task="math500") == Extraction(None, "none")


def test_final_answer_takes_last_statement_and_dollar_span():
    comp = "The answer is 3.\nActually, recheck.\nThe final answer is $x^2 + 1$. I hope it is correct."
    assert extract_answer(comp, "minerva_math") == Extraction("x^2 + 1", "final_answer")
    assert extract_answer("So the answer is 3.5.", "math500") == Extraction("3.5", "final_answer")
    assert extract_answer("**Final Answer:** 42", "math500") == Extraction("42", "final_answer")
    # issue 10 kind 2: a statement followed by prose, a list or nothing is no answer
    assert extract_answer("The answer is 7.\nSo the answer is at least 5.", "math500") == Extraction("7", "final_answer")
    assert extract_answer("The answer is:\n\n1. First we add", "math500") == Extraction(None, "none")
    assert extract_answer("The answer is:\nLet me check this again.", "math500") == Extraction(None, "none")
    assert extract_answer("Final Answer:\n\n42", "math500") == Extraction("42", "final_answer")
    assert extract_answer("Final Answer:\n\\[\n\\frac{7}{3}\n\\]", "math500") == Extraction("\\frac{7}{3}", "final_answer")
    assert extract_answer("The answer is no.", "math500") == Extraction("no", "final_answer")  # a word answer stays


# Issue 10: every prompt style's documented answer format must be extractable. The format is read
# from the style's own prompt text (rmxbench.evaluation.prompts): a "\\boxed{}" instruction, "<answer>" tags,
# or neither (mistral_qa: free text, "The answer is ..."). The completion is cut at the style's
# stop sequences first, as generation does (e.g. orz_think stops at "</answer>").
_FORMAT_COMPLETIONS = {
    "boxed": " Adding gives 6 + 13/2 = 25/2, so the area is $\\boxed{\\frac{25}{2}}$.",
    "answer_tag": " areas 6 and 13/2 </think> <answer> \\frac{25}{2} </answer> more text",
    "answer_tag_boxed": " areas 6 and 13/2 </think> <answer> \\boxed{\\frac{25}{2}} </answer>",
    "statement": "\nThe areas are 6 and 13/2.\nThe answer is $\\frac{25}{2}$.\n\nQuestion:\nnext",
}


def _documented_formats(style: str) -> set[str]:
    from rmxbench.evaluation.prompts import R1_USER, build_prompt

    text = R1_USER if style == "r1_chat" else build_prompt("P", style)
    formats = set()
    if "\\boxed{" in text:
        formats.add("boxed")
    if "<answer>" in text:
        formats |= {"answer_tag", "answer_tag_boxed"}
    return formats or {"statement"}


def test_every_prompt_styles_answer_format_is_extracted():
    from rmxbench.evaluation.prompts import STOP_SEQUENCES, truncate_at_stops

    seen = set()
    for style in STOP_SEQUENCES:
        for fmt in _documented_formats(style):
            seen.add(fmt)
            text = truncate_at_stops(_FORMAT_COMPLETIONS[fmt] + "".join(STOP_SEQUENCES[style][:1]) + " junk", style)
            for task in ("math500", "minerva_math", "olympiadbench", "tinymath", None):
                g = grade(text, "12.5", task=task)
                assert (g.correct, g.extracted) == (True, "\\frac{25}{2}"), (style, fmt, task, g)
    assert seen == set(_FORMAT_COMPLETIONS)  # every format is some style's, and each was checked
    # issue 10 example 5 exactly as generation returns it (the stop "</answer>" cut the closing tag)
    cut = truncate_at_stops("… areas 3 and 7/2. </think> <answer> \\frac{13}{2} </answer>", "orz_think")
    assert grade(cut, "\\frac{13}{2}", task="math500") == Grade(True, "\\frac{13}{2}", "answer_tag", False)


def test_olympiadbench_tolerance_is_absolute_and_inclusive():
    # OlympiadBench row 0316: "correct to one decimal place", answer 4.2, error "1e-1"
    for pred, ok in (("4.25", True), ("4.1", True), ("4.3", True), ("4.31", False), ("4.2\\%", True)):
        assert grade(f"\\boxed{{{pred}}}", "4.2", task="olympiadbench", tolerance="1e-1").correct is ok, pred
        assert grade(f"\\boxed{{{pred}}}", "4.2", task="olympiadbench").correct is (pred in ("4.2\\%",)), pred
    # inside containers the worker applies the same tolerance
    assert is_equivalent("(4.25, 1)", "(4.2, 1)", tolerance=0.1) == (True, False)
    assert is_equivalent("(4.35, 1)", "(4.2, 1)", tolerance=0.1) == (False, False)
    assert is_equivalent("(4.25, 1)", "(4.2, 1)") == (False, False)
    for bad in ("inf", "nan", "-1", "abc"):
        with pytest.raises(ValueError, match="tolerance must be a finite number"):
            grade("\\boxed{4}", "4", tolerance=bad)


def _random_distinct_pair(rng: random.Random) -> tuple[str, str]:
    """Two answers that are different by construction (numeric, symbolic, or with a constant
    math-verify cannot parse), each in a random notation."""
    kind = rng.choice(["numeric", "symbolic", "unknown_constant", "unknown_function"])
    if kind == "numeric":
        a = Fraction(rng.randint(-999, 999), rng.choice([1, 2, 4, 5, 8, 10, 3, 7]))
        b = a
        while abs(b - a) <= abs(a) / 1000 or b == a:
            b = Fraction(rng.randint(-999, 999), rng.choice([1, 2, 4, 5, 8, 10, 3, 7]))

        def render(v: Fraction) -> str:
            forms = [f"\\frac{{{v.numerator}}}{{{v.denominator}}}", f"{v.numerator}/{v.denominator}"]
            if v.denominator == 1:
                forms.append(str(v.numerator))
            if 10**6 % v.denominator == 0:
                forms.append(f"{float(v):.6f}")
            return rng.choice(forms)

        return render(a), render(b)
    if kind == "symbolic":
        ca = [rng.randint(-9, 9) for _ in range(3)]
        cb = list(ca)
        cb[rng.randrange(3)] += rng.choice([-2, -1, 1, 2])
        var = rng.choice(["x", "t", "n"])
        poly = lambda c: f"{c[0]}{var}^{{2}} + {c[1]}{var} + {c[2]}".replace("+ -", "- ")  # noqa: E731
        return poly(ca), poly(cb)
    const = rng.choice(["\\mathrm{K}", "\\mathrm{Li}", "\\operatorname{Cl}", "\\mathrm{Ai}"])
    if kind == "unknown_constant":
        n, m = rng.sample(range(1, 6), 2)
        head = rng.randint(1, 9)
        return (f"{head} - \\frac{{1}}{{{const}^{{{n}}}}}", f"{head} - \\frac{{1}}{{{const}^{{{m}}}}}")
    a, b = rng.sample(range(2, 20), 2)
    return f"{const}({a})", f"{const}({b})"


def test_property_distinct_answers_never_equal_when_a_parse_fails():
    """200 seeded random pairs of distinct answers: never graded equal; at least a quarter of
    them have a side math-verify cannot parse (the case that used to compare raw strings)."""
    rng = random.Random(20261201)
    pairs = [_random_distinct_pair(rng) for _ in range(200)]
    assert len(set(pairs)) > 150 and all(p != g for p, g in pairs)
    gw._mv_setup()
    failed = [
        (p, g) for p, g in pairs
        if not all(gw._parsed_math(gw._MV_STATE["parse"](gn.prepare(x))) for x in (p, g))
    ]
    assert len(failed) >= 50
    with ThreadPoolExecutor(max_workers=4) as ex:
        verdicts = list(ex.map(lambda pg: is_equivalent(pg[0], pg[1], timeout_s=30), pairs))
    assert [pg for pg, v in zip(pairs, verdicts) if v != (False, False)] == []
    # and the grader's verdict on a failed parse is never the raw string comparison
    for p, g in failed[:20]:
        assert gw._worker_check(p, g) is False
        assert gw._worker_check(p, p) is True  # identical answers still match


# Issue 18 item 11: one mechanism per kind, checked over the whole kind (not only the examples).


def test_glued_unit_symbols_are_one_rule_in_every_rule():
    """Every unit symbol glued to a number gives that number in the last-number rule, in a
    statement span and in the canonical string; one glued letter never does (a variable)."""
    from rmxbench.evaluation.grading_normalise import _UNIT_SYMBOLS

    assert len(_UNIT_SYMBOLS) > 50 and all(len(u) >= 2 for u in _UNIT_SYMBOLS)
    for unit in _UNIT_SYMBOLS + [u.upper() for u in _UNIT_SYMBOLS]:
        assert extract_answer(f"Of the 3 parts the total is 12.5{unit}", "gsm8k") == Extraction("12.5", "last_number"), unit
        assert extract_answer(f"We need 7 more, so 1,000{unit}", "gsm8k") == Extraction("1,000", "last_number"), unit
        assert extract_answer(f"The answer is -4{unit}.", "gsm8k") == Extraction("-4", "final_answer"), unit
        assert gn._canon(f"12.5{unit}") == "12.5", unit
    for letter in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        assert extract_answer(f"Of the 3 parts the total is 12.5{letter}", "gsm8k") == Extraction("3", "last_number"), letter
        assert gn._canon(f"6{letter}") == f"6{letter}", letter


def test_list_comma_is_a_list_in_the_quick_path_and_in_math_verify():
    """A comma followed by whitespace between digits separates list items, in-process and in the
    worker (math-verify reads ``32, 349`` as a set); no whitespace keeps thousands."""
    for pred, gold, expected in [
        ("32, 349", "32349", False), ("32,349", "32349", True), ("32, 349", "32,349", False),
        ("1, 000, 000", "1000000", False), ("1,000,000", "1000000", True), ("349, 32", "32, 349", True),
        ("10{,} 080", "10080", True), ("10,\\! 080", "10080", True), ("(1, 2)", "(1,2)", True),
    ]:
        assert is_equivalent(pred, gold) == (expected, False), (pred, gold)
        assert gw._worker_check(pred, gold) is expected, (pred, gold)
    rng = random.Random(18)
    for _ in range(200):  # any a, bbb: the list "a, bbb" is never the number a,bbb
        a, b = rng.randint(1, 999), rng.randint(0, 999)
        assert gn.quick_verdict(f"{a}, {b:03d}", f"{a}{b:03d}") is not True
        assert gn.quick_verdict(f"{a},{b:03d}", f"{a}{b:03d}") is True


SHORTHAND = [
    ("\\sqrt[4]x", "\\sqrt[4]{x}"), ("\\sqrt[3]8", "\\sqrt[3]{8}"), ("\\sqrt[n]x", "\\sqrt[n]{x}"),
    ("\\sqrt2", "\\sqrt{2}"), ("\\sqrt x", "\\sqrt{x}"), ("\\sqrt\\pi", "\\sqrt{\\pi}"),
    ("\\frac12", "\\frac{1}{2}"), ("\\frac 1 2", "\\frac{1}{2}"), ("\\frac\\pi2", "\\frac{\\pi}{2}"),
    ("\\frac{1}x", "\\frac{1}{x}"), ("\\frac1{x+1}", "\\frac{1}{x+1}"), ("\\binom42", "\\binom{4}{2}"),
    ("\\frac{\\frac12}3", "\\frac{\\frac{1}{2}}{3}"), ("\\sqrt23", "\\sqrt{2}3"),
    ("\\sqrt(x+1)", "\\sqrt(x+1)"), ("\\sqrt\\frac{1}{2}", "\\sqrt\\frac{1}{2}"),  # not one token: left alone
]


@pytest.mark.parametrize("short,braced", SHORTHAND, ids=[s for s, _ in SHORTHAND])
def test_tex_shorthand_arguments_are_braced_and_parse(short, braced):
    assert gn._brace_macro_args(short) == braced
    if short != braced:
        gw._mv_setup()
        assert gw._parsed_math(gw._MV_STATE["parse"](gn.prepare(short)))
        assert is_equivalent(short, braced) == (True, False)


@pytest.mark.parametrize("statement", [
    "Final Answer: The final answer is $10,455$. I hope it is correct.",
    "The final answer is 10455.",
    "**Final Answer:** $10455$",
    "Final answer:\n\\[10455\\]",
    "Answer: 10,455",
])
def test_explicit_final_answer_after_boxes_outranks_them(statement):
    comp = "The factors are $\\boxed{85}$ and $\\boxed{123}$.\n" + statement
    for task in ("gsm8k", "math500", "minerva_math", "olympiadbench", "aime24", None):
        assert grade(comp, "10455", task=task).correct is True, (task, statement)
        assert extract_answer(comp, task).rule == "final_answer"
        # the reverse: a box after the statement is the later answer
        assert extract_answer(comp + "\nCorrection: $\\boxed{7}$", task) == Extraction("7", "boxed")
    # a conversational "the answer is" after the box does not outrank it
    assert extract_answer("$\\boxed{85}$\nIf the answer is 10455 then", "math500") == Extraction("85", "boxed")


def test_gsm8k_hash_is_first_not_last():
    comp = "#### 5\n#### 6\n#### 7"
    assert extract_answer(comp, "gsm8k") == Extraction("5", "gsm8k_hash")
    assert extract_answer("no answer here", "gsm8k") == Extraction(None, "none")


def test_extraction_is_linear_time_on_huge_input():
    comp = "\\boxed{" * 20000 + "x" + " 1 2 3" * 20000
    t = time.process_time()  # CPU seconds of this process: a busy shared machine does not inflate them
    assert extract_answer(comp, "gsm8k") == Extraction(None, "none")  # all boxes unclosed: nothing before them
    assert time.process_time() - t < 2.0


ADVERSARIAL = [
    "5 " + "a" * 40 + "1",  # nested-quantifier trap for unit-word stripping
    "5 " + "ab " * 3000 + "1",
    "5" + " " * 20000 + "\\text{cm}x",
    "(" * 5000,
    "1" * 5000 + "a",
    "\\frac" * 3000,
    "{" * 5000 + "}" * 4000,
    "1," * 3000,
    "the answer is " * 2000,
    "#### " + "9" * 5000 + "x",
    "$" * 5000,
    "\\text{" * 3000,
    "answer: \\boxed{" * 5000,
    "\\boxed 5 " * 5000,
    "x" * 30000 + " the answer is $" + "y" * 30000,
    # issue 18 item 11: numbers never cut, glued units, list commas, TeX shorthand, statements after boxes
    "1" + ",000" * 5000 + "x",  # a thousands number glued to a non-unit: was a quadratic rescan (11 s)
    "1,000.5" * 3000 + "x",
    "5" + "kg" * 20000,
    "1" * 20000 + "x",
    "1, " * 8000,
    "\\sqrt[" * 5000,
    "\\frac " * 5000 + "x",
    "\\sqrt" + " " * 30000 + "x",
    "\\boxed{1}" + " Final answer: 5," * 3000,
    "\\boxed{1}" + "\nAnswer: " * 5000,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_in_process_paths_have_no_regex_blowup(text):
    # the in-process code has no deadline, so it must be (near-)linear on any input (CPU seconds of
    # this process, so other work on a shared machine does not count)
    t = time.process_time()
    extract_answer(text, "gsm8k")
    extract_answer(text, None)
    gn.quick_verdict(text, "5")
    gn.quick_verdict("5", text)
    assert time.process_time() - t < 1.0


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="completion must be str"):
        grade(None, "5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gold answer must be str"):
        grade("5", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gold answer is empty"):
        grade(r"\boxed{5}", "  ")
    with pytest.raises(ValueError, match="2 completions but 1 golds"):
        grade_many(["a", "b"], ["1"])


# ----------------------------------------------------------------------------------------------
# Equivalence: in-process quick path and the worker path agree
# ----------------------------------------------------------------------------------------------

NUMERIC_PAIRS = [
    ("1e-7", "4e-7", False),
    ("1e-7", "1.0000005e-7", True),
    ("0.333333", r"\frac{1}{3}", True),
    ("0.33333", r"\frac{1}{3}", False),
    ("1000001", "1000000", False),
    ("1000000.5", "1000000", True),  # decimal side: relative 5e-7
    ("0", "0.0", True),
    ("1e-13", "0", True),  # the only absolute tolerance: around exact zero
    ("1e-11", "0", False),
    ("10%", "0.1", True),
    ("10%", "10", True),
    ("10%", "0.1%", False),
    ("-3", "3", False),
    ("2/4", r"\frac{1}{2}", True),
]


@pytest.mark.parametrize("pred,gold,expected", NUMERIC_PAIRS)
def test_numeric_policy_quick_and_worker_agree(pred, gold, expected):
    quick = gn.quick_verdict(pred, gold)
    assert quick is expected  # plain numbers are decided in-process
    assert is_equivalent(pred, gold) == (expected, False)
    # the worker-side math-verify path (used for numbers inside tuples, matrices, ...) agrees
    mat = "\\begin{pmatrix}%s\\\\1\\end{pmatrix}"
    assert gw._worker_check(mat % pred, mat % gold) is expected


def test_math_verify_float_rounding_pitfall_is_fixed_in_containers():
    # raw math-verify rounds to 6 decimals and calls these equal; our worker must not
    from math_verify import LatexExtractionConfig, parse

    cfg = [LatexExtractionConfig()]
    import math_verify.grader as mvg

    a, b = parse(r"$0.0000001$", cfg, parsing_timeout=None), parse(r"$0.0000004$", cfg, parsing_timeout=None)
    assert mvg.verify(a, b, timeout_seconds=None) is False  # patched numeric check in this process
    assert is_equivalent(r"\begin{pmatrix}0.0000001\\1\end{pmatrix}", r"\begin{pmatrix}0.0000004\\1\end{pmatrix}") == (False, False)
    assert is_equivalent(r"\begin{pmatrix}0.5\\1\end{pmatrix}", r"\begin{pmatrix}\frac12\\1\end{pmatrix}") == (True, False)


def test_is_equivalent_rejects_non_strings():
    with pytest.raises(TypeError, match="needs two str"):
        is_equivalent(5, "5")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Time bound, threads, processes
# ----------------------------------------------------------------------------------------------

TOWER = r"\boxed{2^{2^{2^{2^{2^{2}}}}}}"  # sympy tries to evaluate 2^65536-th powers: never finishes
PARENS = r"\boxed{" + "(" * 2000 + "1" + ")" * 2000 + "}"  # math-verify parse alone takes ~15 s


@pytest.mark.parametrize("completion,gold", [(TOWER, "5"), (PARENS, "2")], ids=["power_tower", "deep_parens"])
def test_pathological_input_is_cut_off_by_the_time_bound(completion, gold):
    bound = 1.0
    grading.warm_up()  # a replacement worker may still be starting from an earlier timeout
    t = time.perf_counter()
    g = grade(completion, gold, timeout_s=bound)
    elapsed = time.perf_counter() - t
    assert (g.correct, g.timed_out, g.rule) == (False, True, "boxed")
    assert bound <= elapsed < bound + 0.5, elapsed
    # the killed worker was replaced: grading continues normally
    assert grade(r"\boxed{x+1}", "1+x", timeout_s=30) == Grade(True, "x+1", "boxed", False)


def test_time_bound_holds_off_the_main_thread_and_timeouts_are_counted():
    comps = [TOWER, r"\boxed{(x+1)^2}", r"\boxed{3}", r"\boxed{\sqrt{8}}"]
    golds = ["5", "x^2+2x+1", "4", r"2\sqrt{2}"]
    t = time.perf_counter()
    grades = grade_many(comps, golds, task="math500", timeout_s=1.0)
    elapsed = time.perf_counter() - t
    assert [g.correct for g in grades] == [False, True, False, True]
    assert [g.timed_out for g in grades] == [True, False, False, False]
    s = summarize(grades)
    assert (s["n"], s["correct"], s["timed_out"], s["by_rule"]) == (4, 2, 1, {"boxed": 4})
    assert elapsed < 1.0 + 10.0


def test_1000_checks_in_a_thread_pool():
    """1000 mixed checks (most decided in-process, ~1 in 7 through math-verify workers)."""
    base = [
        (r"\boxed{\dfrac{5}{8}}", r"\frac58", True),
        (r"\boxed{1,000}", "1000", True),
        (r"\boxed{x = 5}", "5", True),
        (r"\boxed{1e-7}", "4e-7", False),
        (r"#### 42", "42", True),
        (r"\boxed{7}", "8", False),
        (r"\boxed{10\%}", "10", True),
    ]
    slow = [
        (r"\boxed{(x+1)^2}", "x^2+2x+1", True),
        (r"\boxed{0.1}", "0,1", False),
        (r"\boxed{\pm 2}", "2,-2", True),
        (r"\boxed{3}", r"(-\infty, 3)", False),
    ]
    items = []
    for i in range(1000):
        if i % 7 == 3:
            items.append(slow[i % len(slow)])
        else:
            items.append(base[i % len(base)])
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as ex:
        grades = list(ex.map(lambda it: grade(it[0], it[1], task="gsm8k", timeout_s=10), items))
    elapsed = time.perf_counter() - t
    assert [g.correct for g in grades] == [e for _, _, e in items]
    assert not any(g.timed_out for g in grades)
    assert elapsed < 60.0, f"1000 checks took {elapsed:.1f} s"


def test_works_in_spawned_and_forked_worker_processes():
    pairs = [(r"\boxed{(x+1)^2}", "x^2+2x+1"), (r"\boxed{\pm 2}", "2,-2"), (r"\boxed{2}", "3")]
    expected = [True, True, False]
    for method in ("spawn", "fork"):
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context(method)) as ex:
            got = list(ex.map(grade, [c for c, _ in pairs], [g for _, g in pairs]))
            child_workers = ex.submit(grading.worker_pids).result()
        assert [g.correct for g in got] == expected, method
        assert not any(g.timed_out for g in got)
        # the child's own grader workers go away with it (a fork child skips atexit: the
        # workers' parent-death watchdog handles that case)
        assert child_workers and not set(child_workers) & set(grading.worker_pids())
        assert _wait_gone(child_workers) == [], method
    # the parent's own workers are untouched by the forked child
    assert is_equivalent(r"(y+1)^2", "y^2+2y+1") == (True, False)


def test_workers_are_cleaned_up_at_interpreter_exit(tmp_path):
    script = (
        "import json\n"
        "from rmxbench.evaluation.grading import is_equivalent, worker_pids\n"
        "assert is_equivalent('(x+1)^2', 'x^2+2x+1') == (True, False)\n"
        "print(json.dumps(worker_pids()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    pids = json.loads(out.stdout.strip().splitlines()[-1])
    assert pids
    assert _wait_gone(pids) == [], "grader workers still running after interpreter exit"


def _wait_gone(pids: list[int], within_s: float = 5.0) -> list[int]:
    deadline = time.time() + within_s
    alive = list(pids)
    while alive and time.time() < deadline:
        alive = [p for p in pids if _pid_alive(p)]
        time.sleep(0.1)
    return alive


def _pid_alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def test_import_is_fast_and_light():
    code = (
        "import time, sys; t = time.perf_counter(); import rmxbench.evaluation.grading; "
        "print(time.perf_counter() - t, 'torch' in sys.modules, 'sympy' in sys.modules, 'math_verify' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    secs, torch_in, sympy_in, mv_in = out.stdout.split()
    assert float(secs) < 0.5
    assert (torch_in, sympy_in, mv_in) == ("False", "False", "False")


# ----------------------------------------------------------------------------------------------
# maj@k
# ----------------------------------------------------------------------------------------------


def test_majority_answer_groups_equivalent_answers():
    assert majority_answer([r"\frac12", "3", "0.5", None, "3", "1/2"]) == r"\frac12"
    assert majority_answer(["3", r"\frac12", "0.5", "3"]) == "3"  # 2-2 tie: first group wins
    assert majority_answer([None, None]) is None
    assert majority_answer([]) is None
    assert majority_answer(["x = 5", "5", "6"]) == "x = 5"
    assert majority_answer([r"(x+1)^2", "x^2+2x+1", "7"]) == "(x+1)^2"


# ----------------------------------------------------------------------------------------------
# Real benchmark data (skipped without ../shared)
# ----------------------------------------------------------------------------------------------


def _rows(name: str) -> list[dict]:
    path = SHARED / "benchmarks" / f"{name}.jsonl"
    if not path.is_file():
        pytest.skip(f"offline benchmark data not found at {path.resolve()}")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_reference_solutions_grade_correct():
    gsm = _rows("gsm8k")
    g = grade_many([r["solution"] for r in gsm], [r["answer"] for r in gsm], task="gsm8k")
    s = summarize(g)
    assert (s["correct"], s["by_rule"]) == (1319, {"gsm8k_hash": 1319})
    for name, n in (("math500", 500), ("minerva_math", 272), ("aime24", 30)):
        rows = _rows(name)
        g = grade_many([r["solution"] for r in rows], [r["answer"] for r in rows], task=name)
        assert (len(rows), summarize(g)["correct"]) == (n, n), name


def test_shifted_math500_answers_are_wrong_unless_really_equal():
    rows = _rows("math500")
    golds = [r["answer"] for r in rows]
    preds = golds[1:] + golds[:1]
    grades = grade_many([f"\\boxed{{{p}}}" for p in preds], golds, task="math500", timeout_s=10)
    assert not any(g.timed_out for g in grades)
    wrong_true = [(p, g) for p, g, v in zip(preds, golds, grades) if v.correct and gn.quick_verdict(p, g) is not True]
    assert wrong_true == []
    assert sum(v.correct for v in grades) <= 5


def test_decimal_forms_of_math500_answers():
    """Every non-integer numeric MATH-500 gold vs its 10-digit decimal (True) and a 1e-4-off decimal (False)."""
    rows = _rows("math500")
    import sympy

    gw._mv_setup()
    comps, golds, expected = [], [], []
    for r in rows:
        parsed = gw._MV_STATE["parse"](gn.prepare(r["answer"]))
        e = parsed[0] if parsed else None
        if isinstance(e, sympy.Expr) and e.is_number and e.is_real and not e.is_Integer:
            val = e.evalf(12)
            for factor, ok in ((1, True), (1 + sympy.Rational(1, 10**4), False)):
                comps.append("\\boxed{%s}" % sympy.Float(val * factor, 10))
                golds.append(r["answer"])
                expected.append(ok)
    assert len(comps) > 150
    grades = grade_many(comps, golds, task="math500", timeout_s=10)
    assert [g.correct for g in grades] == expected
    assert not any(g.timed_out for g in grades)


def test_worker_start_failure_is_a_clear_error():
    # a 60 MiB address-space cap makes the worker's math-verify import fail: a real start failure
    script = (
        "from rmxbench.evaluation.grading import is_equivalent, GraderError, grade\n"
        "assert grade(r'\\boxed{5}', '5').correct  # quick path needs no worker\n"
        "try:\n"
        "    is_equivalent('(x+1)^2', 'x^2+2x+1')\n"
        "except GraderError as e:\n"
        "    print('GRADER_ERROR', str(e).splitlines()[0])\n"
    )
    env = dict(os.environ, RMXBENCH_GRADER_WORKER_MEM_MB="60")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "GRADER_ERROR grader worker failed to start (is math-verify installed" in out.stdout


def test_olympiadbench_multi_answer_rows_graded_from_separate_boxes():
    """Every OlympiadBench row whose official final answer lists several answers (``$69$,$84$``):
    one box per answer, joined by "and", in reverse order, grades correct; one box alone does not."""
    rows = [r for r in _rows("olympiadbench") if "$,$" in r["final_answer"][0]]
    assert len(rows) == 14
    comps, golds, expected = [], [], []
    for r in rows:
        parts = [p.strip("$ ") for p in r["final_answer"][0].split("$,$")]
        comps.append("Hence " + " and ".join(f"$\\boxed{{{p}}}$" for p in reversed(parts)) + ".")
        golds.append(r["answer"])
        expected.append(True)
        comps.append(f"Hence $\\boxed{{{parts[0]}}}$.")
        golds.append(r["answer"])
        expected.append(False)
    grades = grade_many(comps, golds, task="olympiadbench", timeout_s=20)
    assert [(c, g.extracted, gold) for c, g, gold, e in zip(comps, grades, golds, expected) if g.correct is not e] == []
