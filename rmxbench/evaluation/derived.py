"""Derived benchmarks: built at load time from shipped benchmark rows, never stored in the repo.

``gsm8k_calc`` (rmxbench-derived, not a paper benchmark): the single-operation calculator steps of
GSM8K's reference solutions. GSM8K annotates every arithmetic step of a solution as
``<<a op b=c>>`` (Cobbe et al. 2021, the calculator annotations). Each annotation with exactly one
operator (``+ - * /``) between two non-negative decimal literals whose stated result ``c`` equals
the exact value of ``a op b`` becomes one problem ``"What is a op b?"`` with gold answer ``c``;
repeats of the same ``(a, op, b)`` within a split are kept once (first occurrence). GSM8K train
(7,473 problems) gives 7,358 such problems: the pool ``gsm8k_calc_train``. GSM8K test gives 2,152,
of which the 862 whose ``a op b`` never occurs in train form the test set ``gsm8k_calc``: held out
by construction. (Keeping all 2,152 and letting the pool's contamination guard drop the 2,172 pool
problems that equal a test problem left a pool of rare, hard expressions: measured base pass rate
0.03 at T=0.7 on 32 of them, 0 mixed-success problems, so ReasonMaxxer halted.)

Why it exists: SmolLM2-135M-Instruct scores about 0 on every paper benchmark and on GSM8K
problems with one or two calculator steps (measured: greedy 1/32 on ≤1-step train problems;
2/160 samples at T=1.0 on ≤2-step problems, 96 of them cut at 256 tokens), so neither RL nor
ReasonMaxxer has mixed-success problems to learn from. On ``gsm8k_calc`` it has: greedy 12/32
correct, and at T=0.7 25 of 40 problems have 1-3 of 4 samples correct. Its errors are a policy
choice at the first token (answer ``a op b = c`` directly, or start a rambling "To solve this
math problem…"), the kind of decision point the paper studies.

The pool's contamination guard still runs like for every pool; against this test set it finds
nothing to drop.
Records in :mod:`rmxbench.spec.benchmarks`: ``gsm8k_calc`` (test, from ``gsm8k`` and
``gsm8k_train``) and ``gsm8k_calc_train`` (pool, from ``gsm8k_train``); graded with GSM8K's policy. Works on the hub
rows too (they keep GSM8K's annotated solution). Torch-free; the derivation's version
(:data:`VERSIONS`) is part of the data identity in keys.
"""

from __future__ import annotations

import re
from fractions import Fraction

#: Bump when the derivation changes (part of the data identity of ``gsm8k_calc*`` in keys).
CALC_VERSION = "gsm8k_calc-2"
_CALC = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
_ONE_OP = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([-+*/])\s*(\d+(?:\.\d+)?)\s*$")


def _exact(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b if b else None


def calc_problems(rows: list[dict]) -> list[dict]:
    """The ``gsm8k_calc`` problems of GSM8K ``rows`` (each with ``id`` and ``solution``), see module doc.

    Returns:
        rows ``{id: "<source id>#<k>", problem: "What is a op b?", answer: c, source_id, expression}``
        in source order; ``k`` counts the source solution's annotations from 0.
    """
    out: list[dict] = []
    seen: set[tuple[str, str, str]] = set()
    for r in rows:
        for k, m in enumerate(_CALC.finditer(r.get("solution") or "")):
            one = _ONE_OP.match(m.group(1))
            if one is None:
                continue
            a, op, b = one.groups()
            stated = m.group(2).strip()
            try:
                exact = _exact(Fraction(a), op, Fraction(b)) == Fraction(stated)
            except (ValueError, ZeroDivisionError):
                continue
            if not exact or (a, op, b) in seen:
                continue
            seen.add((a, op, b))
            out.append({"id": f"{r['id']}#{k}", "problem": f"What is {a} {op} {b}?", "answer": stated,
                        "source_id": r["id"], "expression": f"{a}{op}{b}"})
    return out


def calc_held_out(test_rows: list[dict], train_rows: list[dict]) -> list[dict]:
    """The ``gsm8k_calc`` test problems: :func:`calc_problems` of GSM8K test whose ``a op b`` never
    occurs among the calculator steps of GSM8K train (held out by construction, so the training
    pool, built from train, shares no problem with it)."""
    seen = {r["expression"] for r in calc_problems(train_rows)}
    return [r for r in calc_problems(test_rows) if r["expression"] not in seen]


#: derivation name (``Benchmark.derive``) -> function of the rows of ``Benchmark.derived_from`` (in order).
DERIVATIONS = {"gsm8k_calc_held_out": calc_held_out, "gsm8k_calc": calc_problems}
#: derivation name -> version (part of the data identity; bump when a derivation changes).
VERSIONS = {"gsm8k_calc_held_out": CALC_VERSION, "gsm8k_calc": CALC_VERSION}
