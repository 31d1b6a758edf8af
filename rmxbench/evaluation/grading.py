"""The one answer grader used everywhere in rmxbench (policy: ``GRADING.md`` at the repo root).

Two stages, both pure functions of (completion, gold, task):

1. **Extraction** (:func:`extract_answer`): the last *complete* ``\\boxed{...}`` / ``\\fbox{...}``
   (nested braces; ``\\boxed 5``; a box that never closes does not count), then the task's
   fallbacks in order: GSM8K ``#### N`` (the *first* one), a "final answer is ..." /
   "The answer is ..." statement (the last one), and the last number. Which fallbacks are on is
   a per-task table (:data:`POLICIES`); an unknown or ``None`` task uses :data:`DEFAULT_POLICY`.
2. **Equivalence** (:func:`is_equivalent`): cheap in-process checks first (canonical string
   equality; plain numbers compared exactly or with a relative tolerance), then math-verify
   (``math_verify.parse`` / ``math_verify.verify``) with both sides normalised and wrapped as
   ``\\boxed{...}`` so bare strings parse as intended, in a killable worker process with a hard
   per-check deadline. A check that overruns is counted incorrect and reported
   (``timed_out=True``); the worker is killed and respawned.

Numeric policy (see ``GRADING.md``): when at least one side contains a decimal/scientific literal
the values must agree to within a relative tolerance of :data:`REL_TOL` (``1e-6``, inclusive,
computed in exact rational arithmetic when both sides are rational); an exact zero on either side
admits ``|other| <= ABS_ZERO_TOL`` (``1e-12``). Two exact values (integers, fractions, radicals)
must be equal. math-verify's own float check rounds to 6 decimals (so it calls ``1e-7`` equal to
``4e-7``); inside the worker it is replaced by this relative check (``_patched_numeric_eq``).

This module imports only the standard library (well under 1 s, never torch); math-verify and
sympy are imported only inside the worker processes (or lazily by :func:`_worker_check`).

Not a paper equation: the paper's reward ``r_i in {0, 1}`` (Sec. 5, advantage normalisation) and
every pass@1 / avg@k in Table 3 are ``Grade.correct`` from this module.
"""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Iterable, NamedTuple, Sequence

# The equivalence machinery lives in two sibling modules (size); every name stays importable here.
from rmxbench.evaluation.grading_normalise import _TOKEN_RE, _BOX_CMD_RE, _brace_matches, _scan_boxes, _boxes, REL_TOL, ABS_ZERO_TOL, _NUM_CORE, _LEADING_NUMBER_RE, _NOT_UNIT_WORDS, _UNIT_WORDS_RE, _unwrap_box, _UNICODE, _UNICODE_RE, _SCI_RE, _TEXT_CMD, _TRAILING_UNIT_RE, _DEGREE_RE, _FRAC_SHORT_RE, _SQRT_SHORT_RE, _SPACING_RE, _PREFIX_RE, _drop_prefixes, _strip_delims, _strip_units, _unwrap_text, _prepare, _canon, _NUM_RE, _FRAC_NUM_RE, _Num, _parse_plain_number, _unparen, _close, _numbers_equal, _LETTER_RE, _quick_verdict  # noqa: E402,F401
from rmxbench.evaluation.grading_workers import DEFAULT_TIMEOUT_S, WORKER_STARTUP_TIMEOUT_S, GraderError, _MV_STATE, _mv_setup, _worker_check, _worker_main, _EOF, _Worker, _Pool, _POOL, _POOL_LOCK, _pool_size, _get_pool, _after_fork_in_child, shutdown, warm_up, _default_timeout, worker_pids  # noqa: E402,F401

__all__ = [
    "GRADER_VERSION",
    "REL_TOL",
    "ABS_ZERO_TOL",
    "DEFAULT_TIMEOUT_S",
    "Grade",
    "Extraction",
    "TaskPolicy",
    "POLICIES",
    "DEFAULT_POLICY",
    "GraderError",
    "policy_for",
    "extract_answer",
    "is_equivalent",
    "grade",
    "grade_many",
    "summarize",
    "majority_answer",
    "warm_up",
    "shutdown",
    "worker_pids",
]

#: Bump whenever extraction or equivalence policy changes (results record it for provenance).
GRADER_VERSION = "1.0.0"

#: Longest pred+gold (characters) decided in-process; longer pairs always go to a bounded worker.
_QUICK_MAX_CHARS = 10_000

log = logging.getLogger("rmxbench.evaluation.grading")


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grade:
    """Verdict for one completion.

    Attributes:
        correct: the extracted answer is equivalent to the gold answer (False on timeout).
        extracted: the raw extracted span (``None`` when no rule fired).
        rule: which extraction rule fired: ``"boxed"``, ``"fbox"``, ``"gsm8k_hash"``,
            ``"final_answer"``, ``"last_number"`` or ``"none"``.
        timed_out: the equivalence check produced no verdict within its bound (deadline overrun,
            or its worker process died); counted as incorrect.
    """

    correct: bool
    extracted: str | None
    rule: str
    timed_out: bool = False

    def to_dict(self) -> dict:
        """Plain-JSON form (for per-sample logs)."""
        return asdict(self)


class Extraction(NamedTuple):
    """Result of :func:`extract_answer`: the raw answer span and the rule that produced it."""

    span: str | None
    rule: str


@dataclass(frozen=True)
class TaskPolicy:
    """Which extraction rules a task uses (boxes are always on; order is fixed, see GRADING.md)."""

    gsm8k_hash: bool
    final_answer: bool
    last_number: bool


#: Per-task extraction policy. Keys are ``spec.TASKS`` plus the training pools.
POLICIES: dict[str, TaskPolicy] = {
    "gsm8k": TaskPolicy(gsm8k_hash=True, final_answer=True, last_number=True),
    "math500": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=False),
    "minerva_math": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=False),
    "olympiadbench": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=False),
    "aime24": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=True),
    "amc23": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=True),
    "tinymath": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=False),
}
# training pools grade like the benchmark they come from
POLICIES["gsm8k_train"] = POLICIES["gsm8k"]
POLICIES["math_train"] = POLICIES["math500"]
POLICIES["embedded_train"] = POLICIES["tinymath"]

#: Policy for ``task=None`` or a task name not in :data:`POLICIES`.
DEFAULT_POLICY = TaskPolicy(gsm8k_hash=True, final_answer=True, last_number=False)


def policy_for(task: str | None) -> TaskPolicy:
    """The extraction policy for ``task`` (:data:`DEFAULT_POLICY` for ``None`` / unknown names)."""
    if task is None:
        return DEFAULT_POLICY
    if task in POLICIES:
        return POLICIES[task]
    if task.startswith("tinymath") or task.startswith("embedded"):
        return POLICIES["tinymath"]
    return DEFAULT_POLICY


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------

_HASH_RE = re.compile(r"####[ \t]*([^\n]*)")
_FINAL_RE = re.compile(
    r"(?:\bfinal\s+answer|\bthe\s+answer|^[ \t>*#_]*answer)(?:\*\*|__)?[ \t]*(?:\bis\b|:|：)[ \t]*:?",
    re.IGNORECASE | re.MULTILINE,
)
_LAST_NUMBER_RE = re.compile(rf"(?<![\w.])[-−]?(?:{_NUM_CORE})(?:/\d+)?(?![\w])")


def _clean_statement_span(span: str) -> str | None:
    """Trim a fallback span: a leading number with trailing unit words keeps just the number."""
    span = span.strip().strip("*").strip()
    span = re.sub(r"[\s.,;:!?*]+$", "", span)
    if not span:
        return None
    m = _LEADING_NUMBER_RE.match(span)
    if m:
        rest = span[m.end() :]
        words = [w.lower().rstrip(".") for w in rest.split()]
        if not rest.strip() or (
            _UNIT_WORDS_RE.match(rest) and not any(w in _NOT_UNIT_WORDS for w in words)
        ):
            return m.group(1)
    return span


_STATEMENT_WINDOW = 4000  # characters read after an answer statement (keeps the scan linear)


def _final_answer_span(text: str) -> str | None:
    matches = list(_FINAL_RE.finditer(text))
    for m in reversed(matches):
        rest = text[m.end() : m.end() + _STATEMENT_WINDOW].lstrip(" \t*_")
        span: str | None = None
        if rest.startswith(("\\boxed", "\\fbox")):
            continue
        for open_, close in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
            if rest.startswith(open_):
                end = rest.find(close, len(open_))
                # A single `$` not closed on the same line is a currency sign ("is $120,000."),
                # not math: read the line instead of running on into later paragraphs.
                if open_ == "$" and (end == -1 or "\n" in rest[:end]):
                    rest = rest[1:]
                    break
                if end != -1:
                    span = rest[len(open_) : end].strip()
                break
        if span is None:
            line = rest.split("\n", 1)[0]
            line = re.split(r"\.(?=\s|$)", line, maxsplit=1)[0]
            span = _clean_statement_span(line)
        if span:
            return span
    return None


def extract_answer(completion: str, task: str | None = None) -> Extraction:
    """Extract the final-answer span from a model completion.

    Rules, first that fires wins (see GRADING.md; per-task switches in :data:`POLICIES`):
    ``boxed``/``fbox`` (last complete top-level box), ``gsm8k_hash`` (first ``#### N``),
    ``final_answer`` (last "final answer is ..."/"The answer is ..."/"Answer: ..."),
    ``last_number``; otherwise ``Extraction(None, "none")``. Linear time in ``len(completion)``.

    Raises:
        TypeError: ``completion`` is not a ``str``.
    """
    if not isinstance(completion, str):
        raise TypeError(f"completion must be str, got {type(completion).__name__}")
    policy = policy_for(task)
    boxes, unclosed = _scan_boxes(completion)
    if boxes:
        content, rule, _, _ = boxes[-1]
        return Extraction(_unwrap_box(content), rule)
    if unclosed is not None:
        # everything after an unclosed box is inside it (truncated answer): no fallback may use it
        completion = completion[:unclosed]
    if policy.gsm8k_hash:
        m = _HASH_RE.search(completion)
        if m:
            span = _clean_statement_span(m.group(1))
            if span:
                return Extraction(span, "gsm8k_hash")
    if policy.final_answer:
        span = _final_answer_span(completion)
        if span:
            return Extraction(span, "final_answer")
    if policy.last_number:
        last = None
        for last in _LAST_NUMBER_RE.finditer(completion):
            pass
        if last is not None:
            return Extraction(last.group(0), "last_number")
    return Extraction(None, "none")
def is_equivalent(pred: str, gold: str, *, timeout_s: float | None = None) -> tuple[bool, bool]:
    """Is the extracted answer ``pred`` mathematically equivalent to ``gold``?

    Cheap checks run in-process (no IPC); anything else goes to math-verify in a worker process
    with a hard deadline of ``timeout_s`` seconds (default :data:`DEFAULT_TIMEOUT_S`, env
    ``RMXBENCH_GRADER_TIMEOUT_S``) that holds from any thread or process. Not symmetric: ``gold``
    decides the format (e.g. a gold set vs. a gold tuple).

    Returns:
        ``(correct, timed_out)``; a timed-out check is ``(False, True)``.

    Raises:
        TypeError: ``pred`` or ``gold`` is not a ``str``.
        GraderError: no worker process could be started.
    """
    if not isinstance(pred, str) or not isinstance(gold, str):
        raise TypeError(
            f"is_equivalent(pred, gold) needs two str, got {type(pred).__name__}, {type(gold).__name__}"
        )
    # the in-process quick path has no deadline: keep it for inputs of ordinary size only
    quick = _quick_verdict(pred, gold) if len(pred) + len(gold) <= _QUICK_MAX_CHARS else None
    if quick is not None:
        return quick, False
    t = _default_timeout() if timeout_s is None else float(timeout_s)
    ok, timed_out = _get_pool().check(pred, gold, t)
    if timed_out:
        log.warning("grading check exceeded %.1f s (pred=%.60r, gold=%.60r); counted incorrect", t, pred, gold)
    return ok, timed_out


def grade(completion: str, gold: str, *, task: str | None = None, timeout_s: float | None = None) -> Grade:
    """Grade one completion against one gold answer (the only grading entry point).

    Args:
        completion: the model's full generated text.
        gold: the dataset's final answer string (``answer`` field of the benchmark rows).
        task: task name selecting the extraction policy (:data:`POLICIES`); ``None`` = default.
        timeout_s: hard bound for the equivalence check in seconds (default :data:`DEFAULT_TIMEOUT_S`).

    Returns:
        a :class:`Grade`.

    Raises:
        TypeError: ``completion`` or ``gold`` is not a ``str``.
        ValueError: ``gold`` is empty (broken benchmark row).
    """
    if not isinstance(gold, str):
        raise TypeError(f"gold answer must be str, got {type(gold).__name__}")
    if not gold.strip():
        raise ValueError("gold answer is empty; check the benchmark row's 'answer' field")
    ex = extract_answer(completion, task)
    if ex.span is None:
        return Grade(False, None, ex.rule, False)
    ok, timed_out = is_equivalent(ex.span, gold, timeout_s=timeout_s)
    return Grade(ok, ex.span, ex.rule, timed_out)


def grade_many(
    completions: Sequence[str],
    golds: Sequence[str],
    *,
    task: str | None = None,
    timeout_s: float | None = None,
    max_threads: int | None = None,
) -> list[Grade]:
    """Grade many (completion, gold) pairs concurrently; results in input order.

    Count timeouts with ``sum(g.timed_out for g in grades)`` or :func:`summarize`.

    Raises:
        ValueError: the two sequences have different lengths.
    """
    if len(completions) != len(golds):
        raise ValueError(f"grade_many: {len(completions)} completions but {len(golds)} golds")
    if not completions:
        return []
    threads = max_threads or max(2, 2 * _pool_size())
    with ThreadPoolExecutor(max_workers=threads) as ex:
        return list(ex.map(lambda cg: grade(cg[0], cg[1], task=task, timeout_s=timeout_s), zip(completions, golds)))


def summarize(grades: Iterable[Grade]) -> dict:
    """Aggregate counts: ``{"n", "correct", "timed_out", "accuracy", "by_rule": {rule: n}}``."""
    n = correct = timed_out = 0
    by_rule: dict[str, int] = {}
    for g in grades:
        n += 1
        correct += g.correct
        timed_out += g.timed_out
        by_rule[g.rule] = by_rule.get(g.rule, 0) + 1
    return {"n": n, "correct": correct, "timed_out": timed_out, "accuracy": correct / n if n else 0.0, "by_rule": by_rule}


def majority_answer(extracted: Sequence[str | None], *, timeout_s: float | None = None) -> str | None:
    """Majority vote for maj@k: group equivalent answers, return the largest group's first member.

    ``None`` entries (no answer extracted) do not vote. Ties go to the group whose first member
    appears earliest. Equivalence is :func:`is_equivalent` against each group's first member
    (a timed-out comparison counts as "different").

    Returns:
        the representative span, or ``None`` when no entry has an answer.
    """
    groups: list[list[str]] = []
    for ans in extracted:
        if ans is None or not str(ans).strip():
            continue
        for grp in groups:
            if grp[0] == ans or is_equivalent(ans, grp[0], timeout_s=timeout_s)[0]:
                grp.append(ans)
                break
        else:
            groups.append([ans])
    if not groups:
        return None
    best = max(range(len(groups)), key=lambda i: (len(groups[i]), -i))
    return groups[best][0]
