"""The one answer grader used everywhere in rmxbench (policy: ``GRADING.md`` at the repo root).

Two stages, both pure functions of (completion, gold, task) and, for equivalence, the benchmark
row's own numeric tolerance if it has one (OlympiadBench ``error``):

1. **Extraction** (:func:`extract_answer`): a box that never closes means the final answer was
   cut off (no answer at all); else the last ``<answer>`` tag (``orz_think``/``prime_chat``), the
   last *complete* ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces; ``\\boxed 5``; OlympiadBench
   joins a final run of boxes), then the task's fallbacks in order: GSM8K ``#### N`` (the *first*
   one that is not a Markdown heading), a "final answer is ..." / "The answer is ..." statement
   (the last one followed by an answer, not prose), and the last number. Which fallbacks are on
   is a per-task table (:data:`POLICIES`); an unknown or ``None`` task uses :data:`DEFAULT_POLICY`.
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

This module imports only the standard library (well under 1 s, never torch); math-verify and
sympy are imported only inside the worker processes (or lazily by :func:`_worker_check`).

Not a paper equation: the paper's reward ``r_i in {0, 1}`` (Sec. 5, advantage normalisation) and
every pass@1 / avg@k in Table 3 are ``Grade.correct`` from this module.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

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
GRADER_VERSION = "1.1.0"

#: Relative tolerance for numeric comparison when at least one side is a decimal/scientific literal.
REL_TOL = Fraction(1, 10**6)
#: Absolute tolerance used only when one side is exactly zero.
ABS_ZERO_TOL = Fraction(1, 10**12)
#: Default hard bound per equivalence check, seconds (env ``RMXBENCH_GRADER_TIMEOUT_S`` overrides).
DEFAULT_TIMEOUT_S = 5.0
#: Longest pred+gold (characters) decided in-process; longer pairs always go to a bounded worker.
_QUICK_MAX_CHARS = 10_000
#: Seconds allowed for a worker process to start (import math-verify/sympy and warm up).
WORKER_STARTUP_TIMEOUT_S = 120.0

log = logging.getLogger("rmxbench.grading")


class GraderError(RuntimeError):
    """The grader could not run at all (e.g. math-verify is not importable in the worker)."""


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


#: Per-task extraction policy. Keys are ``spec.TASKS`` plus the training pools.
POLICIES: dict[str, TaskPolicy] = {
    "gsm8k": TaskPolicy(gsm8k_hash=True, final_answer=True, last_number=True),
    "math500": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=False),
    "minerva_math": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=False),
    "olympiadbench": TaskPolicy(gsm8k_hash=False, final_answer=True, last_number=False, join_final_boxes=True),
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

_BOX_CMD_RE = re.compile(r"\\(boxed|fbox)(?![A-Za-z])")
_TOKEN_RE = re.compile(r"[^\s$]+")
_HASH_RE = re.compile(r"(?<!#)####(?!#)[ \t]*([^\n]*)")
_FINAL_RE = re.compile(
    r"(?:\bfinal\s+answer|\bthe\s+answer|^[ \t>*#_]*answer)(?:\*\*|__)?[ \t]*(?:\bis\b|:|：)[ \t]*:?",
    re.IGNORECASE | re.MULTILINE,
)
_NUM_CORE = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_LAST_NUMBER_RE = re.compile(rf"(?<![\w.])[-−]?(?:{_NUM_CORE})(?:/\d+)?(?![\w])")
_LEADING_NUMBER_RE = re.compile(
    rf"^(?:\\?\$|[€£¥])?\s*([-−]?(?:{_NUM_CORE})(?:\s*\\?%)?)(?=$|[\s.,;:!?)])"
)
_UNIT_WORDS_RE = re.compile(r"^\s+(?:[A-Za-z]{2,}(?![A-Za-z])\.?\s*)+$")  # maximal words: no backtracking
_NOT_UNIT_WORDS = {"pi", "sqrt", "ln", "log", "sin", "cos", "tan", "exp", "and", "or", "times", "cdot"}


def _brace_matches(text: str) -> dict[int, int]:
    """Map index of each unescaped ``{`` to the index of its matching ``}`` (unclosed: absent). O(n)."""
    match: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2  # an escaped char (\{, \}, \\) is never a group delimiter
            continue
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            match[stack.pop()] = i
        i += 1
    return match


def _scan_boxes(text: str) -> tuple[list[tuple[str, str, int, int]], int | None]:
    """Complete top-level boxes as ``(content, rule, start, end)`` in text order, and the start of
    the first box that never closes (``None`` if every box closes). O(len(text))."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return [], None
    braces = _brace_matches(text)
    found: list[tuple[str, str, int, int]] = []
    first_unclosed: int | None = None
    covered_until = -1
    for m in _BOX_CMD_RE.finditer(text):
        if m.start() < covered_until:
            continue  # inside an already accepted box (nested box: the outer one counts)
        j = m.end()
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            close = braces.get(j)
            if close is None:  # a box that never closes does not count
                if first_unclosed is None:
                    first_unclosed = m.start()
                continue
            content, end = text[j + 1 : close], close + 1
        elif j > m.end():  # "\boxed 5" form: one whitespace-delimited token
            tok = _TOKEN_RE.match(text, j)
            if not tok:
                continue
            content, end = tok.group(0).rstrip(".,;:"), tok.end()
        else:
            if j >= len(text) and first_unclosed is None:
                first_unclosed = m.start()  # text ends right after "\boxed"
            continue
        if content.strip():
            found.append((content.strip(), m.group(1), m.start(), end))
            covered_until = end
    return found, first_unclosed


def _boxes(text: str) -> list[tuple[str, str, int, int]]:
    return _scan_boxes(text)[0]


def _unwrap_box(s: str) -> str:
    """``\\boxed{\\boxed{x}}`` -> ``x`` (a span that is exactly one box)."""
    for _ in range(10):
        boxes = _boxes(s)
        if len(boxes) == 1 and boxes[0][2] == 0 and boxes[0][3] == len(s):
            s = boxes[0][0]
        else:
            break
    return s


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
    return [w.lower() for w in _WORD_RE.findall(s) if w.lower() not in _NOT_UNIT_WORDS]


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


def _final_answer_span(text: str) -> str | None:
    """The last answer statement that is followed by an answer (GRADING.md, ``final_answer``)."""
    for m in reversed(list(_FINAL_RE.finditer(text))[-_MAX_STATEMENTS:]):
        span = _statement_span(text[m.end() : m.end() + _STATEMENT_WINDOW])
        if span:
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
        c = _unwrap_box(content)
        if c not in out:
            out.append(c)
    return out


def extract_answer(completion: str, task: str | None = None) -> Extraction:
    """Extract the final-answer span from a model completion.

    Rules, first that fires wins (see GRADING.md; per-task switches in :data:`POLICIES`):
    a box that never closes means the final answer was cut off (``none``, nothing else is
    read); the last ``<answer>`` tag (its last box if it holds one, else its content,
    ``answer_tag``); ``boxed``/``fbox`` (last complete top-level box; ``boxed_joined`` when the
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
    boxes, unclosed = _scan_boxes(completion)
    if unclosed is not None:
        # the final answer was cut off inside its box: an earlier box is not rescued (GRADING.md)
        return Extraction(None, "none")
    tag = _answer_tag(completion)
    if tag is not None and tag.strip():
        tag_boxes = _boxes(tag)
        if not tag_boxes:
            inner = _final_answer_span(tag) if _FINAL_RE.search(tag) else None
            span = inner or _math_delimited(tag.strip())[0] or _clean_statement_span(tag)
            if span:
                return Extraction(span, "answer_tag")
        else:
            boxes = tag_boxes
            completion = tag
    if boxes:
        if policy.join_final_boxes:
            parts = _final_box_run(completion, boxes)
            if len(parts) > 1:
                return Extraction(", ".join(parts), "boxed_joined")
        content, rule, _, _ = boxes[-1]
        return Extraction(_unwrap_box(content), rule)
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
            return Extraction(last.group(0), "last_number")
    return Extraction(None, "none")


# --------------------------------------------------------------------------------------------
# Normalisation (shared by the in-process checks and the worker)
# --------------------------------------------------------------------------------------------

_UNICODE = {
    "\u2212": "-", "\u2012": "-", "\u2013": "-", "\ufe63": "-", "\uff0d": "-",
    "\u00d7": "\\times ", "\u22c5": "\\cdot ", "\u00b7": "\\cdot ", "\u2219": "\\cdot ", "\u00f7": "\\div ",
    "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u00b1": "\\pm ", "\u2213": "\\mp ",
    "\u2264": "\\le ", "\u2265": "\\ge ", "\u2260": "\\ne ", "\u222a": "\\cup ", "\u2229": "\\cap ",
    "\u00b0": "^\\circ", "\uff0c": ",", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2002": " ",
    "\u2003": " ", "\u200b": "", "\u2044": "/", "\u2215": "/",
    "\u00bd": "\\frac{1}{2}", "\u2153": "\\frac{1}{3}", "\u2154": "\\frac{2}{3}", "\u00bc": "\\frac{1}{4}",
    "\u00be": "\\frac{3}{4}", "\u2155": "\\frac{1}{5}", "\u2159": "\\frac{1}{6}", "\u215b": "\\frac{1}{8}",
}
# fullwidth ASCII (U+FF01..U+FF5E: "８", "＋", "（") -> ASCII
_UNICODE.update({chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F) if chr(c) not in _UNICODE})
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
#: superscript / subscript characters; a run becomes one ``^{...}`` / ``_{...}`` group
_SUPERSCRIPT = dict(zip("\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207a\u207b\u207c\u207d\u207e\u207f\u2071", "0123456789+-=()ni"))
_SUBSCRIPT = dict(zip("\u2080\u2081\u2082\u2083\u2084\u2085\u2086\u2087\u2088\u2089\u208a\u208b\u208c\u208d\u208e", "0123456789+-=()"))
_SUPER_RUN_RE = re.compile("[%s]+" % "".join(_SUPERSCRIPT))
_SUB_RUN_RE = re.compile("[%s]+" % "".join(_SUBSCRIPT))
# a radical sign and its radicand: digits, one letter, a (...) or {...} group without nesting, or \\pi
_RADICAL_RE = re.compile(r"([\u221a\u221b\u221c])\s*(\d+(?:\.\d+)?|\\pi(?![A-Za-z])|[A-Za-z]|\([^()]*\)|\{[^{}]*\})?")
# Euler's number written upright: \mathrm{e}, \operatorname{e}, \text{e}, \textrm{e}, \mathit{e}
_EULER_RE = re.compile(
    r"\\(?:mathrm|operatorname|text|textrm|textnormal|mathit|rm)\s*\{\s*e\s*\}|\{\s*\\rm\s+e\s*\}"
)


def _radical(m: re.Match) -> str:
    index = {"\u221a": "", "\u221b": "[3]", "\u221c": "[4]"}[m.group(1)]
    arg = m.group(2)
    if arg is None:
        return "\\sqrt" + index + " "
    if arg[0] in "({":
        arg = arg[1:-1]
    return "\\sqrt%s{%s}" % (index, arg)


def _normalize_unicode(s: str) -> str:
    """Unicode math -> LaTeX: ``x²`` -> ``x^{2}``, ``a₁`` -> ``a_{1}``, ``√2`` -> ``\\sqrt{2}``,
    ``∛x`` -> ``\\sqrt[3]{x}``, ``−`` -> ``-``, ``×``/``·`` -> ``\\times``/``\\cdot``, ``π`` -> ``\\pi``,
    ``½`` -> ``\\frac{1}{2}``, fullwidth ``８`` -> ``8`` (GRADING.md, Normalisation)."""
    if s.isascii():
        return s
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    s = _SUPER_RUN_RE.sub(lambda m: "^{%s}" % "".join(_SUPERSCRIPT[c] for c in m.group(0)), s)
    s = _SUB_RUN_RE.sub(lambda m: "_{%s}" % "".join(_SUBSCRIPT[c] for c in m.group(0)), s)
    return _RADICAL_RE.sub(_radical, s)
_SCI_RE = re.compile(r"(?<![\w.\\])(\d+(?:\.\d+)?|\.\d+)[eE]([-+]?\d+)(?![\w.])")
_TEXT_CMD = r"\\(?:text|textbf|textit|textrm|textnormal|mbox|mathrm|mathbf|mathit|operatorname)"
_TRAILING_UNIT_RE = re.compile(
    rf"^(?P<head>.*?[\d}})\]a-zA-Z])(?:\\[,;:!]|~|\s)*{_TEXT_CMD}\s*\{{(?P<unit>[^{{}}]*)\}}"
    r"(?:\s*\^\s*\{?\s*-?\d\s*\}?)?\s*$",
    re.DOTALL,
)
_DEGREE_RE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ(?![A-Za-z])|\\degree(?![A-Za-z])")
_FRAC_SHORT_RE = re.compile(r"\\frac\s*(\d|\{[^{}]*\})\s*(\d|\{[^{}]*\})")
_SQRT_SHORT_RE = re.compile(r"\\sqrt\s*(\d)")
_SPACING_RE = re.compile(r"(?<!\\)\\[,;:! ]|\\quad(?![A-Za-z])|\\qquad(?![A-Za-z])|~")
# "x =", "k=", "\\theta =", "a_1 =", "f(x) =", "p(n) =": a single-name prefix (left side of an assignment)
_PREFIX_RE = re.compile(r"^\s*(?:\\[A-Za-z]+|[A-Za-z])(?:_\{?[A-Za-z0-9]+\}?)?(?:\([A-Za-z,\s]*\))?\s*=\s*")


def _drop_prefixes(p: str, g: str) -> tuple[str, str]:
    """Drop an assignment prefix from one side when the other side has no ``=``."""
    if "=" not in g and _PREFIX_RE.match(p):
        p = _PREFIX_RE.sub("", p, count=1)
    if "=" not in p and _PREFIX_RE.match(g):
        g = _PREFIX_RE.sub("", g, count=1)
    return p, g


def _strip_delims(s: str) -> str:
    s = s.strip()
    changed = True
    while changed and s:
        changed = False
        for a, b in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(s) >= len(a) + len(b) and s.startswith(a) and s.endswith(b):
                s = s[len(a) : len(s) - len(b)].strip()
                changed = True
                break
    return s


def _strip_units(s: str) -> str:
    """Remove trailing ``\\text{ unit}`` blocks after a value (``5\\text{ cm}`` -> ``5``)."""
    for _ in range(5):
        m = _TRAILING_UNIT_RE.match(s)
        if not m:
            break
        unit = m.group("unit").replace("~", " ").strip()
        if unit in {"e", "i"} or not re.fullmatch(r"[A-Za-z][A-Za-z\s/.^\-0-9]*", unit or "?"):
            break
        s = m.group("head")
    return s


def _unwrap_text(s: str) -> str:
    return re.sub(rf"{_TEXT_CMD}\s*\{{([^{{}}]*)\}}", r"\1", s)


def _prepare(s: str) -> str:
    """Structure-preserving normalisation used for both the quick checks and math-verify input.

    Unicode math -> LaTeX, ``$``/``\\(``/``\\[`` delimiters and an outer box removed,
    ``\\dfrac``/``\\tfrac`` -> ``\\frac``, ``\\frac58`` -> ``\\frac{5}{8}``, scientific ``1.2e-3``
    -> ``1.2\\times10^{-3}``, ``{,}`` -> ``,``, degrees and trailing ``\\text{}`` units removed,
    ``\\left``/``\\right`` and spacing commands removed, ``\\$`` removed, trailing ``.`` removed.
    """
    s = _EULER_RE.sub("e", _normalize_unicode(s))
    s = _unwrap_box(_strip_delims(s))
    s = re.sub(r"^\$\s*(?=[-\d.])", "", s) if s.count("$") == 1 else s  # "$18" (currency, no closing $)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\displaystyle", "")
    s = re.sub(r"\\left(?![A-Za-z])\.?", "", s)
    s = re.sub(r"\\right(?![A-Za-z])\.?", "", s)
    s = _SPACING_RE.sub(" ", s)
    s = s.replace("{,}", ",").replace("\\$", "").replace("\\%", "%")
    s = _DEGREE_RE.sub("", s)
    s = _FRAC_SHORT_RE.sub(lambda m: "\\frac{%s}{%s}" % (m.group(1).strip("{}"), m.group(2).strip("{}")), s)
    s = _SQRT_SHORT_RE.sub(r"\\sqrt{\1}", s)
    # scientific notation marks an inexact value: keep a decimal point so math-verify sees a Float
    s = _SCI_RE.sub(lambda m: "%s\\times10^{%s}" % (m.group(1) if "." in m.group(1) else m.group(1) + ".0", m.group(2)), s)
    s = re.sub(r"\\(?:leq|leqslant)(?![A-Za-z])", r"\\le", s)
    s = re.sub(r"\\(?:geq|geqslant)(?![A-Za-z])", r"\\ge", s)
    s = re.sub(r"\\neq(?![A-Za-z])", r"\\ne", s)
    s = _strip_units(s.strip())
    return s.rstrip().rstrip(".").strip()


def _canon(s: str) -> str:
    """Canonical string for exact comparison (whitespace and ``\\text`` wrappers removed)."""
    s = _prepare(s)
    m = _LEADING_NUMBER_RE.match(s)
    if m and _UNIT_WORDS_RE.match(s[m.end() :]):
        words = [w.lower().rstrip(".") for w in s[m.end() :].split()]
        if not any(w in _NOT_UNIT_WORDS for w in words):
            s = m.group(1)
    s = _unwrap_text(s)
    return re.sub(r"\s+", "", s)


_NUM_RE = re.compile(
    r"^(?P<sign>[-+]?)(?:(?P<thou>\d{1,3}(?:,\d{3})+)(?P<tfrac>\.\d+)?|(?P<int>\d+)(?P<frac>\.\d*)?|(?P<dec>\.\d+))"
    r"(?:(?:\\times|\\cdot|\*)10\^(?:\{(?P<exp1>[-+]?\d{1,4})\}|(?P<exp2>[-+]?\d{1,4})))?(?P<pct>%)?$"
)
_FRAC_NUM_RE = re.compile(
    r"^(?P<sign>[-+]?)(?:\\frac\{(?P<a>-?\d{1,50})\}\{(?P<b>-?\d{1,50})\}|(?P<c>\d{1,50})/(?P<d>\d{1,50}))(?P<pct>%)?$"
)


class _Num(NamedTuple):
    value: Fraction
    exact: bool  # no decimal point / scientific notation
    pct: bool


def _parse_plain_number(c: str) -> _Num | None:
    """Parse a canonical string that is a plain number (int, decimal, sci, a/b, \\frac{a}{b}, %)."""
    if len(c) > 80:
        return None
    m = _NUM_RE.match(c)
    if m:
        if m.group("thou"):
            body = m.group("thou").replace(",", "") + (m.group("tfrac") or "")
        else:
            body = (m.group("int") or "") + (m.group("frac") or "") + (m.group("dec") or "")
        if body.endswith("."):
            body = body[:-1]
        exp = m.group("exp1") or m.group("exp2")
        try:
            value = Fraction(body)
        except (ValueError, ZeroDivisionError):
            return None
        if exp is not None:
            value *= Fraction(10) ** int(exp)
        if m.group("sign") == "-":
            value = -value
        exact = "." not in body and exp is None
        return _Num(value, exact, bool(m.group("pct")))
    m = _FRAC_NUM_RE.match(c)
    if m:
        a, b = (m.group("a"), m.group("b")) if m.group("a") is not None else (m.group("c"), m.group("d"))
        if int(b) == 0:
            return None
        value = Fraction(int(a), int(b))
        if m.group("sign") == "-":
            value = -value
        return _Num(value, True, bool(m.group("pct")))
    return None


def _unparen(c: str) -> str:
    """``(073)`` -> ``073``: one pair of parentheses around a comma-free string (not a tuple)."""
    if c.startswith("(") and c.endswith(")") and "," not in c and c.count("(") == 1:
        return c[1:-1]
    return c


def _close(a: Fraction, b: Fraction, exact: bool, abs_tol: Fraction | None = None) -> bool:
    """Numeric policy: exact equality for two exact values, else relative tolerance REL_TOL;
    a per-problem absolute tolerance ``abs_tol`` (OlympiadBench ``error``) also admits
    ``|a-b| <= abs_tol``."""
    if abs_tol is not None and abs(a - b) <= abs_tol:
        return True
    if exact:
        return a == b
    if a == 0 or b == 0:
        return abs(a - b) <= ABS_ZERO_TOL
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


def _numbers_equal(p: _Num, g: _Num, abs_tol: Fraction | None = None) -> bool:
    exact = p.exact and g.exact
    if p.pct == g.pct:
        return _close(p.value, g.value, exact, abs_tol)
    pct, other = (p, g) if p.pct else (g, p)
    # "10%" matches both 10 and 0.1
    return _close(pct.value, other.value, exact, abs_tol) or _close(pct.value / 100, other.value, exact, abs_tol)


_LETTER_RE = re.compile(r"^\(?([A-Ea-e])\)?$")


def _quick_verdict(pred: str, gold: str, abs_tol: Fraction | None = None) -> bool | None:
    """Cheap in-process verdict, or ``None`` when math-verify is needed."""
    p, g = _canon(pred), _canon(gold)
    if not p or not g:
        return False
    if p == g:
        return True
    p, g = _drop_prefixes(p, g)
    if p == g:
        return True
    pn, gn = _parse_plain_number(_unparen(p)), _parse_plain_number(_unparen(g))
    if pn is not None and gn is not None:
        return _numbers_equal(pn, gn, abs_tol)
    pl, gl = _LETTER_RE.match(p), _LETTER_RE.match(g)
    if pl and gl:
        return pl.group(1).upper() == gl.group(1).upper()
    return None


# --------------------------------------------------------------------------------------------
# math-verify side (runs inside worker processes)
# --------------------------------------------------------------------------------------------

_MV_STATE: dict = {}


def _mv_setup() -> None:
    """Import math-verify, replace its float check with the relative-tolerance policy."""
    if _MV_STATE:
        return
    from functools import lru_cache

    import math_verify.grader as mvg
    from math_verify import LatexExtractionConfig, parse, verify
    from sympy import Float, MatrixBase, Rational, UnevaluatedExpr
    from sympy.matrices.expressions import MatrixExpr

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    cfg = [LatexExtractionConfig(boxed_match_priority=0)]

    @lru_cache(maxsize=4096)
    def parse_cached(s: str):
        return parse("\\boxed{" + s + "}", extraction_config=cfg, parsing_timeout=None)

    pct_marker = UnevaluatedExpr(Rational(1, 100))

    def as_number(e):
        """``(rational_or_Float value, has_float, is_pct)`` or None when ``e`` is not a number."""
        pct = False
        try:
            from sympy import Mul

            if isinstance(e, Mul) and len(e.args) == 2 and e.args[1] == pct_marker:
                e, pct = e.args[0], True
            e = mvg.safe_sympy_doit(e)
            if not getattr(e, "is_number", False) or e.free_symbols:
                return None
            floats = e.atoms(Float)
            if floats:
                e = e.xreplace({f: Rational(str(f)) for f in floats})
            if e.is_Rational:
                return Fraction(int(e.p), int(e.q)), bool(floats), pct
            v = e.evalf(60)
            if not v.is_number or v.has(mvg.nan, mvg.zoo):
                return None
            return v, bool(floats), pct
        except Exception:
            return None

    def num_close(a, b, inexact: bool) -> bool:
        if isinstance(a, Fraction) and isinstance(b, Fraction):
            return _close(a, b, not inexact, _MV_STATE.get("abs_tol"))
        from sympy import Abs, Max

        a_, b_ = (Rational(a.numerator, a.denominator) if isinstance(a, Fraction) else a), (
            Rational(b.numerator, b.denominator) if isinstance(b, Fraction) else b
        )
        diff = Abs((a_ - b_).evalf(60))
        scale = Max(Abs(a_.evalf(60)), Abs(b_.evalf(60)))
        tol = _MV_STATE.get("abs_tol")
        if tol is not None and bool(diff <= Rational(tol.numerator, tol.denominator)):
            return True
        if not inexact:
            return bool(diff <= Rational(1, 10**40) * scale) or bool(diff == 0)
        if a_ == 0 or b_ == 0:
            return bool(diff <= Rational(1, 10**12))
        return bool(diff <= Rational(1, 10**6) * scale)

    def patched_numeric_eq(a, b, float_rounding, numeric_precision):
        if isinstance(a, (MatrixBase, MatrixExpr)) and isinstance(b, (MatrixBase, MatrixExpr)):
            # doit() only on matrix expressions: on a plain matrix it would evaluate 10% to 1/10
            a = a if isinstance(a, MatrixBase) else mvg.safe_sympy_doit(a)
            b = b if isinstance(b, MatrixBase) else mvg.safe_sympy_doit(b)
            if isinstance(a, MatrixBase) and isinstance(b, MatrixBase) and a.shape == b.shape:
                return all(patched_numeric_eq(x, y, float_rounding, numeric_precision) for x, y in zip(a, b))
            return False
        na, nb = as_number(a), as_number(b)
        if na is not None and nb is not None:
            (va, fa, pa), (vb, fb, pb) = na, nb
            inexact = fa or fb
            if pa == pb:
                return num_close(va, vb, inexact)
            pv, ov = (va, vb) if pa else (vb, va)
            hundred = Fraction(100) if isinstance(pv, Fraction) else Rational(100)
            return num_close(pv, ov, inexact) or num_close(pv / hundred, ov, inexact)
        try:
            return (a - b).evalf(chop=True, n=numeric_precision) == 0
        except Exception:
            return False

    mvg.sympy_numeric_eq = patched_numeric_eq
    _MV_STATE.update(parse=parse_cached, verify=verify)


def _parsed_math(parsed: list) -> bool:
    """math-verify returned a math object (it returns only the raw string when parsing failed)."""
    return any(not isinstance(x, str) for x in parsed)


def _worker_check(pred: str, gold: str, abs_tol: Fraction | None = None) -> bool:
    """Full (possibly slow) equivalence check with math-verify; called inside a worker process.

    When either side does not parse into a math object the verdict is ``False``: math-verify
    would then compare the raw (often truncated) strings, which called ``1-\\frac{1}{\\mathrm{K}^{2}}``
    equal to ``1-\\frac{1}{\\mathrm{K}}`` (identical strings were already accepted by the quick path).
    """
    quick = _quick_verdict(pred, gold, abs_tol)
    if quick is not None:
        return quick
    _mv_setup()
    p, g = _drop_prefixes(_prepare(pred), _prepare(gold))
    if not p or not g:
        return False
    gold_parsed = _MV_STATE["parse"](g)
    pred_parsed = _MV_STATE["parse"](p)
    if not _parsed_math(gold_parsed) or not _parsed_math(pred_parsed):
        return False
    _MV_STATE["abs_tol"] = abs_tol
    try:
        return bool(_MV_STATE["verify"](gold_parsed, pred_parsed, timeout_seconds=None))
    finally:
        _MV_STATE["abs_tol"] = None


def _worker_main() -> None:  # pragma: no cover - runs in the child process
    """Worker loop: JSON lines on stdin -> JSON lines on a private copy of stdout."""
    import signal

    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # stray prints from libraries must not corrupt the protocol
    sys.stdout = sys.stderr
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    parent = os.getppid()

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    mem_mb = int(os.environ.get("RMXBENCH_GRADER_WORKER_MEM_MB", "4096"))
    if mem_mb > 0:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (mem_mb * 2**20, mem_mb * 2**20))
        except Exception:
            pass
    try:
        _mv_setup()
        _worker_check("0.5", "\\frac{1}{2}")
        _worker_check("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(x+1)^2")
    except BaseException:
        import traceback

        proto.write(json.dumps({"ready": False, "error": traceback.format_exc()[-2000:]}) + "\n")
        return
    proto.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError:
            continue
        try:
            tol = Fraction(req["tol"]) if req.get("tol") is not None else None
            resp = {"id": req["id"], "ok": _worker_check(req["pred"], req["gold"], tol)}
        except (Exception, RecursionError, MemoryError) as exc:
            resp = {"id": req["id"], "ok": False, "error": repr(exc)[:300]}
        proto.write(json.dumps(resp) + "\n")


# --------------------------------------------------------------------------------------------
# Worker pool (parent side)
# --------------------------------------------------------------------------------------------

_EOF = object()


class _Worker:
    """One persistent worker process; at most one request in flight."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.inbox: queue.Queue = queue.Queue()
        self.ready = False
        self._next_id = 0

    def start(self) -> None:
        env = dict(os.environ)
        pkg_parent = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("OMP_NUM_THREADS", "1")
        self.inbox = queue.Queue()
        self.ready = False
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from rmxbench.grading import _worker_main; _worker_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self.proc, self.inbox), daemon=True).start()

    @staticmethod
    def _read(proc: subprocess.Popen, inbox: queue.Queue) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                inbox.put(json.loads(raw))
            except ValueError:
                continue
        inbox.put(_EOF)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure_ready(self) -> None:
        if self.ready and self.alive():
            return
        if not self.alive():
            self.start()
        try:
            msg = self.inbox.get(timeout=WORKER_STARTUP_TIMEOUT_S)
        except queue.Empty:
            self.kill()
            raise GraderError(f"grader worker did not start within {WORKER_STARTUP_TIMEOUT_S:.0f} s")
        if msg is _EOF or not msg.get("ready"):
            err = "" if msg is _EOF else msg.get("error", "")
            self.kill()
            raise GraderError(
                "grader worker failed to start (is math-verify installed in this environment? "
                f"`pip install math-verify`).\n{err}"
            )
        self.ready = True

    def call(self, pred: str, gold: str, timeout_s: float, abs_tol: Fraction | None = None) -> tuple[bool, bool]:
        """Run one check; returns ``(correct, timed_out)``; kills + respawns on overrun."""
        self.ensure_ready()
        assert self.proc is not None and self.proc.stdin is not None
        self._next_id += 1
        rid = self._next_id
        deadline = time.monotonic() + timeout_s
        try:
            req = {"id": rid, "pred": pred, "gold": gold, "tol": None if abs_tol is None else str(abs_tol)}
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.restart()
            return False, True
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.restart()
                return False, True
            try:
                msg = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            if msg is _EOF:
                log.warning("grader worker died during a check; counted as timed out")
                self.restart()
                return False, True
            if msg.get("id") == rid:
                return bool(msg.get("ok")), False

    def kill(self) -> None:
        proc, self.proc, self.ready = self.proc, None, False
        if proc is None:
            return
        try:
            proc.kill()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (proc.stdin, proc.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass

    def restart(self) -> None:
        self.kill()
        self.start()  # non-blocking: imports happen while the caller moves on

    def close(self) -> None:
        self.kill()  # workers hold no state worth a graceful exit


class _Pool:
    def __init__(self, size: int) -> None:
        self.pid = os.getpid()
        self.workers = [_Worker() for _ in range(size)]
        self.idle: queue.Queue = queue.Queue()
        for w in self.workers:
            self.idle.put(w)

    def check(self, pred: str, gold: str, timeout_s: float, abs_tol: Fraction | None = None) -> tuple[bool, bool]:
        w = self.idle.get()
        try:
            return w.call(pred, gold, timeout_s, abs_tol)
        finally:
            self.idle.put(w)

    def warm_up(self) -> None:
        for w in self.workers:
            if not w.alive():
                w.start()
        for w in self.workers:
            w.ensure_ready()

    def close(self) -> None:
        for w in self.workers:
            w.close()


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def _pool_size() -> int:
    try:
        n = int(os.environ.get("RMXBENCH_GRADER_WORKERS", "0"))
    except ValueError:
        n = 0
    return n if n > 0 else max(1, min(2, os.cpu_count() or 1))


def _get_pool() -> _Pool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = _Pool(_pool_size())
        return _POOL


def _after_fork_in_child() -> None:
    # never touch the parent's workers from a forked child; start our own lazily
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def shutdown() -> None:
    """Stop all worker processes of this process (also run automatically at interpreter exit)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None and pool.pid == os.getpid():
        pool.close()


atexit.register(shutdown)


def warm_up() -> None:
    """Start the worker processes now (otherwise they start on the first check that needs one).

    Raises:
        GraderError: a worker could not start (math-verify missing or broken).
    """
    _get_pool().warm_up()


def _default_timeout() -> float:
    try:
        return float(os.environ.get("RMXBENCH_GRADER_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def worker_pids() -> list[int]:
    """PIDs of this process's live grader workers (diagnostics and tests)."""
    pool = _POOL
    if pool is None or pool.pid != os.getpid():
        return []
    return [w.proc.pid for w in pool.workers if w.proc is not None and w.alive()]


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
    quick = _quick_verdict(pred, gold, tol) if len(pred) + len(gold) <= _QUICK_MAX_CHARS else None
    if quick is not None:
        return quick, False
    t = _default_timeout() if timeout_s is None else float(timeout_s)
    ok, timed_out = _get_pool().check(pred, gold, t, tol)
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
