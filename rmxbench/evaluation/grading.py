"""The one answer grader used everywhere in rmxbench (policy: ``GRADING.md`` at the repo root).

Two stages, both pure functions of (completion, gold, task) and, for equivalence, the benchmark
row's own numeric tolerance if it has one (OlympiadBench ``error``):

1. **Extraction** (:func:`extract_answer`): a box that never closes means the final answer was
   cut off (no answer at all); else the last ``<answer>`` tag (``orz_think``/``prime_chat``), the
   last *complete* ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces; ``\\boxed 5``; OlympiadBench
   joins a final run of boxes; an explicit final-answer statement after the last box outranks
   it), then the task's fallbacks in order: GSM8K ``#### N`` (the *first* one that is not a
   Markdown heading), a "final answer is ..." / "The answer is ..." statement (the last one
   followed by an answer, not prose), and the last number (never cut at its decimal point,
   possibly glued to a unit: ``12.5kg``). Which fallbacks are on is a per-task table
   (:data:`POLICIES`, named by each benchmark's record); an unknown or ``None`` task uses
   :data:`DEFAULT_POLICY`.
2. **Equivalence** (:func:`is_equivalent`): cheap in-process checks first (canonical string
   equality; plain numbers compared exactly or with a relative tolerance), then math-verify
   (``math_verify.parse`` / ``math_verify.verify``) with both sides normalised (unicode math,
   upright ``e``) and wrapped as ``\\boxed{...}`` so bare strings parse as intended (a side that
   does not parse never matches), in a killable worker process with a hard
   per-check deadline. A check that overruns is counted incorrect and reported
   (``timed_out=True``); the worker is killed and respawned.

Numeric policy (see ``GRADING.md``): when at least one side contains a decimal/scientific literal
the values must agree to within a relative tolerance of :data:`REL_TOL` (``1e-6``, inclusive,
computed in exact rational arithmetic when both sides are rational); an exact zero on either side
admits ``|other| <= ABS_ZERO_TOL`` (``1e-12``). Two exact values (integers, fractions, radicals)
must be equal. math-verify's own float check rounds to 6 decimals (so it calls ``1e-7`` equal to
``4e-7``); inside the worker it is replaced by this relative check (``_patched_numeric_eq``).

This module imports only the standard library, its two helper modules and the benchmark records
(well under 1 s, never torch); math-verify and sympy are imported only inside the worker processes
(or lazily by :func:`rmxbench.evaluation.grading_workers._worker_check`).

Not a paper equation: the paper's reward ``r_i in {0, 1}`` (Sec. 5, advantage normalisation) and
every pass@1 / avg@k in Table 3 are ``Grade.correct`` from this module.
"""
from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Iterable, NamedTuple, Sequence

# The equivalence machinery lives in two sibling modules: normalisation and the quick verdict
# (grading_normalise), the math-verify worker pool (grading_workers). The grader's public API
# (``__all__``) is importable from here; everything else from the module that defines it.
from rmxbench.evaluation.grading_normalise import (ABS_ZERO_TOL, GLUED_UNIT, LEADING_NUMBER_RE, NOT_UNIT_WORDS,
                                                  NUM_CORE, NUM_END, REL_TOL, UNIT_WORDS_RE, complete_boxes,
                                                  quick_verdict, scan_boxes, unwrap_box)
from rmxbench.evaluation.grading_workers import (DEFAULT_TIMEOUT_S, GraderError, default_timeout, get_pool,
                                                pool_size, shutdown, warm_up, worker_pids)
from rmxbench.spec.benchmarks import BENCHMARKS

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
GRADER_VERSION = "1.2.0"

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
        rule: which extraction rule fired: ``"boxed"``, ``"fbox"``, ``"boxed_joined"``,
            ``"answer_tag"``, ``"gsm8k_hash"``, ``"final_answer"``, ``"last_number"`` or ``"none"``.
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
    #: join the final run of boxes (``x=\\boxed{2}`` and ``y=\\boxed{-3}`` -> ``2, -3``), as the
    #: official OlympiadBench judge does for multi-answer problems
    join_final_boxes: bool = False


#: Extraction policies by name. A benchmark's record names its policy
#: (:attr:`rmxbench.spec.benchmarks.Benchmark.grading`; training pools and derived benchmarks name the
#: policy of the benchmark they come from).
POLICIES: dict[str, TaskPolicy] = {
    "gsm8k": TaskPolicy(gsm8k_hash=True, final_answer=True, last_number=True),
    "math500": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=False),
    "minerva_math": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=False),
    "olympiadbench": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=False, join_final_boxes=True),
    "aime24": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=True),
    "amc23": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=True),
    "tinymath": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=False),
}

#: Policy for ``task=None`` or a task name that is neither a benchmark nor a policy.
DEFAULT_POLICY = TaskPolicy(gsm8k_hash=True, final_answer=True, last_number=False)


def policy_for(task: str | None) -> TaskPolicy:
    """The extraction policy of benchmark ``task``: the policy its record names
    (:data:`rmxbench.spec.benchmarks.BENCHMARKS`); a policy name is also accepted;
    :data:`DEFAULT_POLICY` for ``None`` / unknown names."""
    if task is None:
        return DEFAULT_POLICY
    record = BENCHMARKS.get(task)
    return POLICIES[record.grading] if record is not None else POLICIES.get(task, DEFAULT_POLICY)


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------

_HASH_RE = re.compile(r"(?<!#)####(?!#)[ \t]*([^\n]*)")
# group `explicit`: an explicit final-answer statement ("final answer is/:", a line "Answer: ...")
_FINAL_RE = re.compile(
    r"(?:(?P<explicit>\bfinal\s+answer|^[ \t>*#_]*answer)|\bthe\s+answer)(?:\*\*|__)?[ \t]*(?:\bis\b|:|：)[ \t]*:?",
    re.IGNORECASE | re.MULTILINE,
)
# a whole number (never cut at its decimal point or a thousands group: NUM_END), not the tail of a
# name (``x2``, ``sepehr2010``) nor a thousands group of a longer number (which also keeps the scan
# linear), optionally glued to a unit symbol (``45kg``, ``12.5kg``: GLUED_UNIT)
_LAST_NUMBER_RE = re.compile(
    r"(?<![\w.])(?!(?:(?<=,\d{3},)|(?<=(?<![\d.])\d,)|(?<=(?<![\d.])\d\d,)|(?<=(?<![\d.])\d{3},))\d{3}(?!\d))"
    rf"(?P<num>[-−]?(?:{NUM_CORE})(?:/\d+)?){NUM_END}(?!/\d)(?:{GLUED_UNIT})?(?![\w])"
)


def _clean_statement_span(span: str) -> str | None:
    """Trim a fallback span: a leading number with trailing unit words keeps just the number."""
    span = span.strip().strip("*").strip()
    span = re.sub(r"[\s.,;:!?*]+$", "", span)
    if not span:
        return None
    m = LEADING_NUMBER_RE.match(span)
    if m:
        rest = span[m.end() :]
        words = [w.lower().rstrip(".") for w in rest.split()]
        if not rest.strip() or (
            UNIT_WORDS_RE.match(rest) and not any(w in NOT_UNIT_WORDS for w in words)
        ):
            return m.group(1)
    return span


_STATEMENT_WINDOW = 4000  # characters read after an answer statement (keeps the scan linear)
_LINE_WINDOW = 400  # characters of a plain (non-math) answer line; longer is prose anyway
_MAX_STATEMENTS = 64  # answer statements examined, from the last one back

# A plain prose word: 2+ ASCII letters, not a LaTeX command name (``\frac``) and not inside one.
_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}(?![A-Za-z])")
_TEXT_BLOCK_RE = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|mbox|mathrm|mathbf|mathit|operatorname)\s*\{[^{}]*\}"
)
_INLINE_MATH_RE = re.compile(r"\$[^$\n]*\$|\\\(.*?\\\)")
#: First words that make an answer statement's rest a comment, not an answer
#: ("the answer is at most 1", "the answer is correct", "the answer is a positive integer").
_PROSE_START = frozenset(
    "at not correct incorrect wrong right indeed still consistent reasonable valid invalid plausible "
    "that this these those the an as above below same less more greater smaller larger bigger fewer "
    "positive negative unchanged also then so because since if when which what how to be being it its "
    "in on of for from with without between within likely probably clearly obviously verified confirmed "
    "checked given different independent very".split()
)


def _plain_words(span: str) -> list[str]:
    """Prose words of ``span`` (lower case); ``\\text{...}`` blocks and ``$...$`` math are not prose."""
    s = _INLINE_MATH_RE.sub(" ", _TEXT_BLOCK_RE.sub(" ", span))
    return [w.lower() for w in _WORD_RE.findall(s) if w.lower() not in NOT_UNIT_WORDS]


def _looks_like_prose(span: str) -> bool:
    """A fallback span that is a comment rather than an answer: it starts with a prose function
    word (``at most 1``, ``correct``) or holds three or more prose words."""
    words = _plain_words(span)
    if not words:
        return False
    first = _WORD_RE.match(span.lstrip(" *_(\"'"))
    return (first is not None and first.group(0).lower() in _PROSE_START) or len(words) >= 3


def _math_delimited(rest: str) -> tuple[str | None, str]:
    """If ``rest`` starts with ``$…$``/``$$…$$``/``\\(…\\)``/``\\[…\\]``: ``(inside, rest)``.
    A single ``$`` not closed on its line is a currency sign: ``(None, rest without it)``."""
    for open_, close in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
        if rest.startswith(open_):
            end = rest.find(close, len(open_))
            if open_ == "$" and (end == -1 or "\n" in rest[:end]):
                return None, rest[1:]
            if end != -1:
                return rest[len(open_) : end].strip(), rest
            return None, rest
    return None, rest


_LIST_ITEM_RE = re.compile(r"^(?:\d{1,2}[.)]|[-*+•])\s")


def _statement_span(rest: str) -> str | None:
    """The answer right after an answer statement (``rest`` = text after "the answer is"), or
    ``None`` when none follows: an empty line is skipped to the next line; math delimiters give
    their inside; else the line up to its first sentence end, minus trailing unit words; a
    span that reads as prose (:func:`_looks_like_prose`) is no answer."""
    rest = rest.lstrip(" \t*_")
    next_line = rest.startswith(("\n", "\r"))
    if next_line:
        rest = rest.lstrip(" \t\r\n*_")  # "Final Answer:\n\n$$x$$": the answer is on the next line
    if rest.startswith(("\\boxed", "\\fbox")):
        return None
    span, rest = _math_delimited(rest)
    if span:
        return span
    if next_line:
        # a whole next line counts only when it is bare math, not a list item or a sentence
        line = rest[:_LINE_WINDOW].split("\n", 1)[0].strip().rstrip(".")
        if not line or _plain_words(line) or _LIST_ITEM_RE.match(line):
            return None
        return _clean_statement_span(line)
    line = rest[:_LINE_WINDOW].split("\n", 1)[0]
    line = re.split(r"\.(?=\s|$)", line, maxsplit=1)[0]
    span = _clean_statement_span(line)
    if span is None or _looks_like_prose(span):
        return None
    return span


def _final_answer_span(text: str, start: int = 0, *, explicit_only: bool = False) -> str | None:
    """The last answer statement at or after ``start`` that is followed by an answer (GRADING.md,
    ``final_answer``). ``explicit_only``: only explicit final-answer statements ("final answer
    is ...", "Final Answer: ...", a line "Answer: ...") whose answer is math, not words."""
    for m in reversed(list(_FINAL_RE.finditer(text, start))[-_MAX_STATEMENTS:]):
        if explicit_only and m.group("explicit") is None:
            continue
        span = _statement_span(text[m.end() : m.end() + _STATEMENT_WINDOW])
        if span and not (explicit_only and _plain_words(span)):
            return span
    return None


def _hash_span(text: str) -> str | None:
    """The first ``#### N`` line whose content is an answer; a Markdown heading
    (``#### Step 1: Cost of the pens``, ``#### Final Answer``) is not one."""
    for m in _HASH_RE.finditer(text):
        span = _clean_statement_span(m.group(1))
        if span and not _plain_words(span):
            return span
    return None


_ANSWER_OPEN_RE = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE_RE = re.compile(r"</answer>", re.IGNORECASE)


def _answer_tag(text: str) -> str | None:
    """Content of the last ``<answer>`` tag (ORZ / PRIME-Zero styles); the closing tag may be cut
    off by the style's stop sequence, so an unclosed last tag runs to the end of the text."""
    last = None
    for last in _ANSWER_OPEN_RE.finditer(text):
        pass
    if last is None:
        return None
    close = _ANSWER_CLOSE_RE.search(text, last.end())
    return text[last.end() : close.start() if close else len(text)]


# Text allowed between two boxes of one multi-part final answer: spaces, `$`/`\(`/`\)`,
# `,`/`;`, "and"/"or", `\quad`, and single-name assignments (`y =`, `f(x)=`, `a_1 =`).
_BOX_GAP_RE = re.compile(
    r"(?:\s|[$,;&]|\\[()\[\],;!]|\\q?quad(?![A-Za-z])|\\text\{\s*(?:and|or)\s*\}|\b(?:and|or)\b"
    r"|(?:\\[A-Za-z]+|[A-Za-z])(?:_\{?[A-Za-z0-9]+\}?)?(?:\([A-Za-z,\s]*\))?\s*=)*"
)
_BOX_GAP_MAX = 80  # characters


def _final_box_run(text: str, boxes: list[tuple[str, str, int, int]]) -> list[str]:
    """Contents of the final run of boxes joined only by connective text (:data:`_BOX_GAP_RE`),
    in text order, duplicates dropped (``x=\\boxed{2}`` and ``y=\\boxed{-3}`` -> ``["2", "-3"]``)."""
    run = [boxes[-1]]
    for prev in reversed(boxes[:-1]):
        gap = text[prev[3] : run[0][2]]
        if len(gap) > _BOX_GAP_MAX or _BOX_GAP_RE.fullmatch(gap) is None or len(run) >= 20:
            break
        run.insert(0, prev)
    out: list[str] = []
    for content, *_ in run:
        c = unwrap_box(content)
        if c not in out:
            out.append(c)
    return out


def extract_answer(completion: str, task: str | None = None) -> Extraction:
    """Extract the final-answer span from a model completion.

    Rules, first that fires wins (see GRADING.md; per-task switches in :data:`POLICIES`):
    a box that never closes means the final answer was cut off (``none``, nothing else is
    read); the last ``<answer>`` tag (its last box if it holds one, else its content,
    ``answer_tag``); an explicit final-answer statement after the last box (``final_answer``);
    ``boxed``/``fbox`` (last complete top-level box; ``boxed_joined`` when the
    task joins a final run of several boxes), ``gsm8k_hash`` (first ``#### N`` that is not a
    heading), ``final_answer`` (last "final answer is ..."/"The answer is ..."/"Answer: ..."
    followed by an answer, not prose), ``last_number``; otherwise ``Extraction(None, "none")``.
    Linear time in ``len(completion)``.

    Raises:
        TypeError: ``completion`` is not a ``str``.
    """
    if not isinstance(completion, str):
        raise TypeError(f"completion must be str, got {type(completion).__name__}")
    policy = policy_for(task)
    boxes, unclosed = scan_boxes(completion)
    if unclosed is not None:
        # the final answer was cut off inside its box: an earlier box is not rescued (GRADING.md)
        return Extraction(None, "none")
    tag = _answer_tag(completion)
    if tag is not None and tag.strip():
        tag_boxes = complete_boxes(tag)
        if not tag_boxes:
            inner = _final_answer_span(tag) if _FINAL_RE.search(tag) else None
            span = inner or _math_delimited(tag.strip())[0] or _clean_statement_span(tag)
            if span:
                return Extraction(span, "answer_tag")
        else:
            boxes = tag_boxes
            completion = tag
    if boxes:
        if policy.final_answer:
            # an explicit final-answer statement after the last box outranks the boxes before it
            # (boxed intermediate results, then "Final Answer: The final answer is $10,455$.")
            span = _final_answer_span(completion, boxes[-1][3], explicit_only=True)
            if span:
                return Extraction(span, "final_answer")
        if policy.join_final_boxes:
            parts = _final_box_run(completion, boxes)
            if len(parts) > 1:
                return Extraction(", ".join(parts), "boxed_joined")
        content, rule, _, _ = boxes[-1]
        return Extraction(unwrap_box(content), rule)
    if policy.gsm8k_hash:
        span = _hash_span(completion)
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
            return Extraction(last.group("num"), "last_number")
    return Extraction(None, "none")


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _as_tolerance(tolerance: float | str | Fraction | None) -> Fraction | None:
    """A per-problem absolute tolerance as an exact ``Fraction`` (``"1e-1"`` -> 1/10).

    Raises:
        ValueError: not a finite number >= 0.
    """
    if tolerance is None:
        return None
    try:
        tol = Fraction(str(tolerance).strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}") from None
    if tol < 0:
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    return tol


def is_equivalent(
    pred: str, gold: str, *, timeout_s: float | None = None, tolerance: float | str | Fraction | None = None
) -> tuple[bool, bool]:
    """Is the extracted answer ``pred`` mathematically equivalent to ``gold``?

    Cheap checks run in-process (no IPC); anything else goes to math-verify in a worker process
    with a hard deadline of ``timeout_s`` seconds (default :data:`DEFAULT_TIMEOUT_S`, env
    ``RMXBENCH_GRADER_TIMEOUT_S``) that holds from any thread or process. Not symmetric: ``gold``
    decides the format (e.g. a gold set vs. a gold tuple). ``tolerance``: the problem's own
    absolute numeric tolerance (OlympiadBench's ``error`` field, e.g. ``"1e-1"``): numbers within
    it also match, on top of the default policy (GRADING.md).

    Returns:
        ``(correct, timed_out)``; a timed-out check is ``(False, True)``.

    Raises:
        TypeError: ``pred`` or ``gold`` is not a ``str``.
        ValueError: ``tolerance`` is not a finite number >= 0.
        GraderError: no worker process could be started.
    """
    if not isinstance(pred, str) or not isinstance(gold, str):
        raise TypeError(
            f"is_equivalent(pred, gold) needs two str, got {type(pred).__name__}, {type(gold).__name__}"
        )
    # the in-process quick path has no deadline: keep it for inputs of ordinary size only
    tol = _as_tolerance(tolerance)
    quick = quick_verdict(pred, gold, tol) if len(pred) + len(gold) <= _QUICK_MAX_CHARS else None
    if quick is not None:
        return quick, False
    t = default_timeout() if timeout_s is None else float(timeout_s)
    ok, timed_out = get_pool().check(pred, gold, t, tol)
    if timed_out:
        log.warning("grading check exceeded %.1f s (pred=%.60r, gold=%.60r); counted incorrect", t, pred, gold)
    return ok, timed_out


def grade(
    completion: str,
    gold: str,
    *,
    task: str | None = None,
    timeout_s: float | None = None,
    tolerance: float | str | Fraction | None = None,
) -> Grade:
    """Grade one completion against one gold answer (the only grading entry point).

    Args:
        completion: the model's full generated text.
        gold: the dataset's final answer string (``answer`` field of the benchmark rows).
        task: task name selecting the extraction policy (:data:`POLICIES`); ``None`` = default.
        timeout_s: hard bound for the equivalence check in seconds (default :data:`DEFAULT_TIMEOUT_S`).
        tolerance: the problem's absolute numeric tolerance, if the benchmark row has one
            (OlympiadBench ``error``; ``None`` = the default numeric policy only).

    Returns:
        a :class:`Grade`.

    Raises:
        TypeError: ``completion`` or ``gold`` is not a ``str``.
        ValueError: ``gold`` is empty (broken benchmark row), or ``tolerance`` is not a number >= 0.
    """
    if not isinstance(gold, str):
        raise TypeError(f"gold answer must be str, got {type(gold).__name__}")
    if not gold.strip():
        raise ValueError("gold answer is empty; check the benchmark row's 'answer' field")
    ex = extract_answer(completion, task)
    if ex.span is None:
        return Grade(False, None, ex.rule, False)
    ok, timed_out = is_equivalent(ex.span, gold, timeout_s=timeout_s, tolerance=tolerance)
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
    threads = max_threads or max(2, 2 * pool_size())
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
