"""Answer normalisation and the cheap in-process equivalence checks of the grader (canonical
strings, plain numbers with the relative tolerance, multiple-choice letters). Part of
:mod:`rmxbench.evaluation.grading` (import the grader from there; policy: GRADING.md)."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple


REL_TOL = Fraction(1, 10**6)
#: Absolute tolerance used only when one side is exactly zero.
ABS_ZERO_TOL = Fraction(1, 10**12)

NUM_CORE = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
#: After a number: it is never cut short, neither inside its digits, at its decimal point
#: (``12.5kg`` is not ``12``) nor at a thousands group (``1,000kg`` is not ``1``).
NUM_END = r"(?!\d|\.\d|,\d{3}(?!\d))"

#: Unit symbols a number may be glued to (``45kg``, ``3.5cm``, ``60km/h``), matched
#: case-insensitively: two or more letters only. A single glued letter (``6m``, ``2n``) is a
#: product with a variable (OlympiadBench answers), never a unit; ``pi``, ``ln`` … are not units.
_UNIT_SYMBOLS = (
    "mm cm dm km nm um µm ft in inch inches foot feet yd mi mile miles km/h km/hr mi/h mi/hr ft/s m/s "
    "mg kg lb lbs oz ton tons tonnes kgs gm gms ml cl dl gal gals qt cc "
    "ms sec secs min mins hr hrs yr yrs wk wks mph kph kmh rpm bpm "
    "hz khz mhz ghz kw mw gw kwh wh mah kj mj cal kcal ev kev mev gev pa kpa mpa hpa atm psi mol mmol db "
    "kb mb gb tb bps kbps mbps gbps"
).split()
#: a glued unit symbol (longest first), optionally squared/cubed (``cm²``, ``cm^2``); ends the word
GLUED_UNIT = r"(?i:%s)(?:[\u00b2\u00b3]|\^\{?[23]\}?)?(?![A-Za-z0-9_])" % "|".join(
    re.escape(u) for u in sorted(_UNIT_SYMBOLS, key=len, reverse=True)
)

LEADING_NUMBER_RE = re.compile(
    rf"^(?:\\?\$|[€£¥])?\s*([-−]?(?:{NUM_CORE}){NUM_END}(?:\s*\\?%)?)(?:{GLUED_UNIT})?(?=$|[\s.,;:!?)])"
)

NOT_UNIT_WORDS = {"pi", "sqrt", "ln", "log", "sin", "cos", "tan", "exp", "and", "or", "times", "cdot"}

UNIT_WORDS_RE = re.compile(r"^\s+(?:[A-Za-z]{2,}(?![A-Za-z])\.?\s*)+$")  # maximal words: no backtracking

_TOKEN_RE = re.compile(r"[^\s$]+")
_BOX_CMD_RE = re.compile(r"\\(boxed|fbox)(?![A-Za-z])")


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


def scan_boxes(text: str) -> tuple[list[tuple[str, str, int, int]], int | None]:
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


def complete_boxes(text: str) -> list[tuple[str, str, int, int]]:
    return scan_boxes(text)[0]


def unwrap_box(s: str) -> str:
    """``\\boxed{\\boxed{x}}`` -> ``x`` (a span that is exactly one box)."""
    for _ in range(10):
        boxes = complete_boxes(s)
        if len(boxes) == 1 and boxes[0][2] == 0 and boxes[0][3] == len(s):
            s = boxes[0][0]
        else:
            break
    return s


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
#: TeX commands whose arguments may be written without braces, and their argument count
_MACRO_ARGS = {"frac": 2, "dfrac": 2, "tfrac": 2, "cfrac": 2, "binom": 2, "dbinom": 2, "tbinom": 2, "sqrt": 1}
_MACRO_RE = re.compile(r"\\(%s)(?![A-Za-z])" % "|".join(_MACRO_ARGS))
#: a one-token TeX argument: one digit or letter, or a symbol's control word (``\pi``, ``\theta``;
#: never a command that takes arguments itself, such as ``\frac`` or ``\text``)
_SYMBOL_WORDS = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi varpi "
    "rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma "
    "Upsilon Phi Psi Omega infty ell"
).split()
_TOKEN_ARG_RE = re.compile(r"\s*(\\(?:%s)(?![A-Za-z])|[A-Za-z0-9])" % "|".join(_SYMBOL_WORDS))
_OPTIONAL_ARG_RE = re.compile(r"\s*\[[^\[\]{}]*\]")
_SPACES_RE = re.compile(r"\s*")


def _brace_macro_args(s: str) -> str:
    """Brace TeX's one-token arguments, as TeX reads them: ``\\frac12`` -> ``\\frac{1}{2}``,
    ``\\frac\\pi2`` -> ``\\frac{\\pi}{2}``, ``\\sqrt2`` -> ``\\sqrt{2}``, ``\\sqrt[4]x`` ->
    ``\\sqrt[4]{x}``, ``\\sqrt[3]8`` -> ``\\sqrt[3]{8}`` (math-verify parses none of the
    shorthand forms with an index or a control word). Braced arguments are kept; an argument that
    is neither a group nor one token (``\\sqrt(x+1)``) stops the rewrite of that command. O(len(s))."""
    if "\\" not in s:
        return s
    braces = _brace_matches(s)
    edits: list[tuple[int, int, str]] = []  # (start, end, braced token); never overlapping
    for m in _MACRO_RE.finditer(s):
        j = m.end()
        if m.group(1) == "sqrt":
            opt = _OPTIONAL_ARG_RE.match(s, j)
            j = opt.end() if opt else j
        for _ in range(_MACRO_ARGS[m.group(1)]):
            k = _SPACES_RE.match(s, j).end()
            if k < len(s) and s[k] == "{" and k in braces:
                j = braces[k] + 1  # a group: kept (commands inside it are found by finditer)
                continue
            tok = _TOKEN_ARG_RE.match(s, j)
            if tok is None:
                break
            edits.append((j, tok.end(), "{%s}" % tok.group(1)))
            j = tok.end()
    if not edits:
        return s
    out, done = [], 0
    for start, end, text in sorted(edits):
        out += [s[done:start], text]
        done = end
    out.append(s[done:])
    return "".join(out)


#: LaTeX's explicit thousands commas: ``{,}`` and ``,\\!`` (a negative space cancels the space
#: TeX puts after a comma), also with whitespace after them (MATH-500: ``11,\\! 111,\\! 111,\\! 100``)
_THOUSANDS_MARK_RE = re.compile(r"(?<=\d)(?:\{,\}(?:\s*\\!)?|,\s*\\!)\s*(?=\d)")
#: A comma followed by whitespace between two digits separates list items (``32, 349`` is the
#: list 32, 349, never the number 32349; ``32,349`` is); canonical strings keep it as ``", "``.
_LIST_COMMA_RE = re.compile(r"(?<=\d),\s+(?=\d)")
_SPACING_RE = re.compile(r"(?<!\\)\\[,;:! ]|\\quad(?![A-Za-z])|\\qquad(?![A-Za-z])|~")
# "x =", "k=", "\\theta =", "a_1 =", "f(x) =", "p(n) =": a single-name prefix (left side of an assignment)
_PREFIX_RE = re.compile(r"^\s*(?:\\[A-Za-z]+|[A-Za-z])(?:_\{?[A-Za-z0-9]+\}?)?(?:\([A-Za-z,\s]*\))?\s*=\s*")


def drop_prefixes(p: str, g: str) -> tuple[str, str]:
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


def prepare(s: str) -> str:
    """Structure-preserving normalisation used for both the quick checks and math-verify input.

    Unicode math -> LaTeX, ``$``/``\\(``/``\\[`` delimiters and an outer box removed,
    ``\\dfrac``/``\\tfrac`` -> ``\\frac``, ``\\frac58`` -> ``\\frac{5}{8}``, scientific ``1.2e-3``
    -> ``1.2\\times10^{-3}``, ``{,}`` -> ``,``, degrees and trailing ``\\text{}`` units removed,
    ``\\left``/``\\right`` and spacing commands removed, ``\\$`` removed, trailing ``.`` removed.
    """
    s = _EULER_RE.sub("e", _normalize_unicode(s))
    s = unwrap_box(_strip_delims(s))
    s = re.sub(r"^\$\s*(?=[-\d.])", "", s) if s.count("$") == 1 else s  # "$18" (currency, no closing $)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\displaystyle", "")
    s = re.sub(r"\\left(?![A-Za-z])\.?", "", s)
    s = re.sub(r"\\right(?![A-Za-z])\.?", "", s)
    s = _THOUSANDS_MARK_RE.sub(",", s)  # "10,\\!080", "10{,}080": LaTeX's thousands comma
    s = _SPACING_RE.sub(" ", s)
    s = s.replace("{,}", ",").replace("\\$", "").replace("\\%", "%")
    s = _DEGREE_RE.sub("", s)
    s = _brace_macro_args(s)
    # scientific notation marks an inexact value: keep a decimal point so math-verify sees a Float
    s = _SCI_RE.sub(lambda m: "%s\\times10^{%s}" % (m.group(1) if "." in m.group(1) else m.group(1) + ".0", m.group(2)), s)
    s = re.sub(r"\\(?:leq|leqslant)(?![A-Za-z])", r"\\le", s)
    s = re.sub(r"\\(?:geq|geqslant)(?![A-Za-z])", r"\\ge", s)
    s = re.sub(r"\\neq(?![A-Za-z])", r"\\ne", s)
    s = _strip_units(s.strip())
    return s.rstrip().rstrip(".").strip()


def _canon(s: str) -> str:
    """Canonical string for exact comparison (whitespace and ``\\text`` wrappers removed; a list
    comma between digits keeps one space: ``32, 349`` stays a list, :data:`_LIST_COMMA_RE`)."""
    s = prepare(s)
    m = LEADING_NUMBER_RE.match(s)
    if m and (m.end() == len(s) or UNIT_WORDS_RE.match(s[m.end() :])):
        words = [w.lower().rstrip(".") for w in s[m.end() :].split()]
        if not any(w in NOT_UNIT_WORDS for w in words):
            s = m.group(1)
    s = _unwrap_text(s)
    return ", ".join(re.sub(r"\s+", "", part) for part in _LIST_COMMA_RE.split(s))


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


def close_enough(a: Fraction, b: Fraction, exact: bool, abs_tol: Fraction | None = None) -> bool:
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
        return close_enough(p.value, g.value, exact, abs_tol)
    pct, other = (p, g) if p.pct else (g, p)
    # "10%" matches both 10 and 0.1
    return close_enough(pct.value, other.value, exact, abs_tol) or close_enough(pct.value / 100, other.value, exact, abs_tol)


_LETTER_RE = re.compile(r"^\(?([A-Ea-e])\)?$")


def quick_verdict(pred: str, gold: str, abs_tol: Fraction | None = None) -> bool | None:
    """Cheap in-process verdict, or ``None`` when math-verify is needed."""
    p, g = _canon(pred), _canon(gold)
    if not p or not g:
        return False
    if p == g:
        return True
    p, g = drop_prefixes(p, g)
    if p == g:
        return True
    pn, gn = _parse_plain_number(_unparen(p)), _parse_plain_number(_unparen(g))
    if pn is not None and gn is not None:
        return _numbers_equal(pn, gn, abs_tol)
    pl, gl = _LETTER_RE.match(p), _LETTER_RE.match(g)
    if pl and gl:
        return pl.group(1).upper() == gl.group(1).upper()
    return None
