"""Load and check spec files with line-numbered, one-screen errors (no model, no network).

:func:`load_spec` reads a ``specs/*.yaml`` file into a :class:`rmxbench.spec.schema.Spec`. The YAML is
parsed with PyYAML's ``SafeLoader`` (the same constructor as ``yaml.safe_load``), but the node
tree is kept: every mapping key and sequence item is mapped to its line, so each pydantic error
location (``loc`` tuple) is reported as ``file:line`` plus the field path
(``models[0].rl_baselines[1].cost.basis``), what was given and what is allowed, with a
"did you mean" suggestion for near-miss keys and values.

Beyond the schema (``rmxbench/spec/schema.py``), the cross-field checks of
:mod:`rmxbench.spec.crosscheck` run on the raw YAML, so that each problem points at its own line:
duplicate YAML keys, duplicate row ids, recipe names unsafe as file names, rows that use an
undefined recipe, and the ``analyses:`` entries. Warnings (exit code 0) are raised for hub
references whose revision is not a 40-hex commit sha ("unpinned"), a ``reference:`` file or a
local model ``path:`` that does not exist, and a ``protocol.data_dir`` that is not a directory.
Problems and their lines: :mod:`rmxbench.spec.problems`.

Importing this module never imports torch.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from rmxbench.errors import UserError
from rmxbench.spec.benchmarks import OneOf
from rmxbench.spec.crosscheck import analysis_problems, raw_checks, safe_id_example, spec_warnings
from rmxbench.spec.problems import LineIndex, Loc, Problem, field_path, format_problems, value_at
from rmxbench.spec.recipe import BOOL_FOR_NUMBER
from rmxbench.spec.schema import Spec
from rmxbench.spec.yaml_loader import SafeLoaderKeepingBadScalars


class SpecError(UserError):
    """A spec file has errors. ``problems`` lists them (each with file, line, field, …).

    ``str(exc)`` is the one-screen listing, so any command that calls :func:`load_spec` prints a
    useful error through :func:`rmxbench.errors.print_user_error`.
    """

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        files = sorted({p.file for p in problems})
        n = len(problems)
        head = f"{', '.join(files)}: {n} problem{'s' if n != 1 else ''} in the spec"
        super().__init__(head + "\n" + format_problems(self.problems))


@dataclass
class CheckResult:
    """Outcome of :func:`check_spec_file`: the spec (None if it has errors), errors and warnings."""

    file: str
    spec: Spec | None
    errors: list[Problem] = dc_field(default_factory=list)
    warnings: list[Problem] = dc_field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# --------------------------------------------------------------------------- YAML with lines


def _short(v: Any, n: int = 60) -> str:
    """A short human rendering of a YAML value for 'given: ...'."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        keys = ", ".join(str(k) for k in list(v)[:6])
        return f"a mapping (keys: {keys}{', …' if len(v) > 6 else ''})" if v else "an empty mapping {}"
    if isinstance(v, list):
        return f"a list of {len(v)} item{'s' if len(v) != 1 else ''}" if v else "an empty list []"
    s = repr(v) if isinstance(v, str) else str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def _read_yaml(path: Path, shown: str) -> tuple[Any, LineIndex, list[Problem]]:
    """Read ``path`` as UTF-8 YAML (SafeLoader). Returns (data, line index, problems)."""
    idx = LineIndex()

    def fail(message: str, line: int | None = None, hint: str | None = None, column: int | None = None):
        return None, idx, [Problem(shown, line, "", hint=hint, message=message, column=column)]

    if not path.exists():
        return fail("file not found", hint="check the path; spec files live in specs/*.yaml")
    if path.is_dir():
        return fail("is a directory, not a spec file", hint=f"pass the files, e.g. {shown.rstrip('/')}/*.yaml")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return fail(f"cannot read the file: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return fail(f"not valid UTF-8 text (byte 0x{raw[exc.start]:02x} at column {col})", line,
                    hint="save the file as UTF-8", column=col)
    if text.startswith("\ufeff"):
        text = text[1:]
    loader = SafeLoaderKeepingBadScalars(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = ": ".join(s for s in (exc.context, exc.problem) if s) or "YAML syntax error"
        if exc.context and exc.context.startswith("while") and exc.context_mark is not None and \
                exc.problem_mark is not None and exc.context_mark.line != exc.problem_mark.line:
            what += f" (the construct started at line {exc.context_mark.line + 1})"
        if "\\t" in what or "\t" in what:
            hint = "YAML indentation must use spaces, not tabs"
        elif "single document" in what:
            what = "the file holds more than one YAML document (a second `---`)"
            hint = "put one spec in each file"
        elif "could not determine a constructor" in what:
            hint = "YAML tags (!!python/…, !custom) are not allowed in spec files"
        else:
            hint = ("check indentation and that every `key: value` has a space after the colon; "
                    "quote values that contain ': ' or start with [ { & * ! | > % @ `")
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        label = "YAML syntax error" if isinstance(exc, (yaml.scanner.ScannerError, yaml.parser.ParserError)) \
            else "YAML error"
        return fail(f"{label}: {what}", line, hint=hint, column=col)
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked YAML errors are rare
        return fail(f"YAML error: {exc}", 1)
    finally:
        loader.dispose()
    if node is None:
        return fail("the file is empty (no YAML document)", 1,
                    hint="a spec needs at least `suite`, `pricing` and `models`; copy one from specs/")
    if not isinstance(node, yaml.MappingNode):
        kind = "a list" if isinstance(node, yaml.SequenceNode) else f"a single value ({_short(data)})"
        return fail(f"the top level must be a mapping (`suite:`, `pricing:`, `models:` …), got {kind}",
                    node.start_mark.line + 1,
                    hint="a spec is key: value lines starting at column 1; see specs/ for examples")
    idx.walk(node, (), set())
    problems = [
        Problem(shown, n.start_mark.line + 1, field_path(idx.node_loc.get(id(n), ())), given=repr(n.value),
                message=f"YAML cannot read this value: {reason}", column=n.start_mark.column + 1,
                hint="dates are YYYY-MM-DD with a real month and day; quote the value if it is meant as text"
                if n.tag.endswith(":timestamp") else "fix the value, or quote it if it is meant as text")
        for n, reason in loader.bad_scalars.values()
    ] + [
        Problem(shown, line, field_path(p), message=f"duplicate key {p[-1]!r} (first at line {first}); "
                "YAML would silently keep only the last one", hint="delete or merge one of them")
        for p, line, first in idx.duplicates
    ]
    return data, idx, problems


# --------------------------------------------------------------------------- schema introspection


def _unwrap(tp: Any) -> Any:
    """Strip Optional/Annotated wrappers."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _type_at(loc: Loc) -> tuple[Any, Any]:
    """Walk ``Spec``'s annotations along ``loc``; return (annotation, FieldInfo of last field)."""
    tp: Any = Spec
    finfo = None
    for part in loc:
        u = _unwrap(tp)
        origin = typing.get_origin(u)
        if _is_model(u):
            f = u.model_fields.get(str(part))
            if f is None:
                return None, None
            tp, finfo = f.annotation, f
        elif origin in (list, tuple, set, frozenset):
            tp = typing.get_args(u)[0]
        elif origin is dict:
            tp = typing.get_args(u)[1]
        else:
            return None, None
    return tp, finfo


def _literal_values(tp: Any) -> list[str]:
    """The allowed values of a ``Literal`` or a registry-name (:class:`~rmxbench.spec.benchmarks.OneOf`)
    annotation (``Optional`` unwrapped), else ``[]``."""
    while typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            return []
        tp = args[0]
    if typing.get_origin(tp) is typing.Annotated:
        names = [m for m in typing.get_args(tp)[1:] if isinstance(m, OneOf)]
        if names:
            return list(names[0].names())
    u = _unwrap(tp)
    if typing.get_origin(u) is Literal:
        return [str(a) for a in typing.get_args(u)]
    return []


def _type_name(tp: Any) -> str:
    """Human description of an annotation ('a whole number', 'one of: a, b', …)."""
    if tp is None:
        return ""
    optional = type(None) in typing.get_args(tp)
    u = _unwrap(tp)
    origin = typing.get_origin(u)
    if _literal_values(tp):
        s = "one of: " + ", ".join(_literal_values(tp))
    elif _is_model(u):
        names = list(u.model_fields)
        s = "a mapping with keys: " + ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
    elif origin in (list, tuple):
        inner = _type_name(typing.get_args(u)[0])
        if inner.startswith("one of:"):
            s = f"a list, each item {inner}"
        elif inner.startswith("a mapping"):
            s = "a list of mappings, each" + inner[len("a mapping"):]
        else:
            s = "a list" + (f" of {inner.removeprefix('a ').removeprefix('an ')}s" if inner else "")
    elif origin is dict:
        k, v = typing.get_args(u)
        s = f"a mapping of {_type_name(k).removeprefix('a ')} -> {_type_name(v).removeprefix('a ')}"
    else:
        s = {bool: "true or false", int: "a whole number", float: "a number", str: "a text string"}.get(u)
        if s is None:
            s = "a date YYYY-MM-DD" if getattr(u, "__name__", "") == "date" else getattr(u, "__name__", str(u))
    return s + (" or null" if optional else "")


def _nested_suggestion(model: type[BaseModel], key: str) -> str | None:
    """Suggest where an unknown ``key`` belongs: a nested section, or a split key like lora_rank."""
    for name, f in model.model_fields.items():
        sub = _unwrap(f.annotation)
        if not _is_model(sub):
            continue
        if key in sub.model_fields:
            return f"`{key}` is a key of `{name}:`; put it under that section"
        prefix = name + "_"
        if key.startswith(prefix):
            close = difflib.get_close_matches(key[len(prefix):], list(sub.model_fields), n=1, cutoff=0.6)
            if close:
                return f"did you mean `{name}: {{{close[0]}: ...}}`?"
    return None


# --------------------------------------------------------------------------- pydantic errors -> problems

_TYPE_MESSAGES = {
    "int": "must be a whole number",
    "float": "must be a number",
    "string": "must be a text string",
    "bool": "must be true or false",
    "date": "must be a date YYYY-MM-DD",
    "list": "must be a list",
    "dict": "must be a mapping (key: value lines)",
    "model": "must be a mapping (key: value lines)",
}

_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _bounds_text(finfo: Any) -> str:
    parts = []
    for m in getattr(finfo, "metadata", []) or []:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                parts.append(f"{op} {getattr(m, attr)}")
    return " and ".join(parts)



def _refine(loc: Loc, msg: str, data: Any) -> Loc:
    """Point a model-level validator error at the sub-field it is about."""
    obj = value_at(data, loc)
    if not isinstance(obj, (dict, list)):
        return loc
    if "hardware.gpu_type" in msg:
        return loc + ("hardware", "gpu_type")
    if "pass-rate window" in msg:
        return loc + (("min_pass_rate",) if "min_pass_rate" in obj else ("max_pass_rate",) if "max_pass_rate" in obj else ())
    last = loc[-1] if loc else None
    if isinstance(obj, dict) and last in ("usd_per_hour", "limit"):
        floor = 0 if last == "usd_per_hour" else 1
        for k, v in obj.items():
            if isinstance(v, (int, float)) and v < floor:
                return loc + (k,)
    if isinstance(obj, list) and last == "taus":
        seen = set()
        for i, t in enumerate(obj):
            if (isinstance(t, (int, float)) and t < 0 and "duplicates" not in msg) or ("duplicates" in msg and t in seen):
                return loc + (i,)
            seen.add(t)
    if isinstance(obj, dict):  # the last back-quoted field (or dotted path) the YAML sets
        present = [tuple(n.split(".")) for n in re.findall(r"`([A-Za-z_][A-Za-z_.]*)`", msg)
                   if value_at(obj, tuple(n.split("."))) is not None]
        if present:
            return loc + present[-1]
    return loc


def _problem_from_error(err: dict, data: Any, idx: LineIndex, shown: str) -> Problem:
    etype: str = err["type"]
    loc: Loc = tuple(err["loc"])
    given_v = err.get("input")
    ctx = err.get("ctx") or {}
    hint = None
    key_error = bool(loc) and loc[-1] == "[key]"
    if key_error:
        loc = loc[:-1]
        given_v = loc[-1]
    tp, finfo = _type_at(loc)
    desc = (getattr(finfo, "description", None) or "").rstrip(".")
    if len(desc) > 90:
        desc = desc[:89].rstrip() + "…"
    given = _short(given_v)
    allowed = None

    if etype == "extra_forbidden":
        parent_tp, _ = _type_at(loc[:-1])
        model = _unwrap(parent_tp)
        names = list(model.model_fields) if _is_model(model) else []
        key = str(loc[-1])
        message = f"unknown key {key!r}"
        given = None
        allowed = "keys here: " + ", ".join(names) if names else None
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        nested = _nested_suggestion(model, key) if _is_model(model) else None
        hint = nested or (f"did you mean {close[0]!r}?" if close else None)
    elif etype == "missing":
        message = f"missing required key {loc[-1]!r}"
        given = None
        allowed = (desc + ("; " if desc else "") + _type_name(tp)) if tp is not None else desc or None
        line, col = idx.line(loc[:-1])
        return Problem(shown, line, field_path(loc), None, allowed, f"add `{loc[-1]}:` here", message, col)
    elif etype == "literal_error":
        values = _literal_values(tp) or re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        what = "key" if key_error else "value"
        message = f"{_short(given_v)} is not an allowed {what}"
        allowed = "one of: " + ", ".join(values)
        close = difflib.get_close_matches(str(given_v), values, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else None
    elif etype in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        message = f"must be {_BOUNDS[etype]} {bound}"
        allowed = _bounds_text(finfo) or f"{_BOUNDS[etype]} {bound}"
        if desc:
            allowed += f" ({desc})"
    elif etype == BOOL_FOR_NUMBER:  # StrictModel: a YAML boolean where a number belongs
        loc = loc + tuple(ctx.get("where") or ())
        tp, _ = _type_at(loc)
        whole = _unwrap(tp) is int
        message = f"must be {'a whole number' if whole else 'a number'}, not a boolean"
        given = _short(value_at(data, loc))
        allowed = ", ".join(p for p in (_type_name(tp), _bounds_text(finfo)) if p) + (f" ({desc})" if desc else "")
        hint = "YAML reads yes/no/on/off/true/false as booleans; write the number itself"
    elif etype == "finite_number":
        message = "must be a finite number (not .inf or .nan)"
        allowed = (_bounds_text(finfo) or "a finite number") + (f" ({desc})" if desc else "")
    elif etype == "too_short":
        n = ctx.get("min_length", 1)
        message = f"needs at least {n} item{'s' if n != 1 else ''}, got {ctx.get('actual_length', 0)}"
        allowed = _type_name(tp) + (f" ({desc})" if desc else "")
    elif etype in ("value_error", "assertion_error"):
        message = re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
        loc = _refine(loc, message, data)
        v = value_at(data, loc)
        given = _short(v) if v is not None and not isinstance(v, (dict, list)) else None
        if "not safe as a file name" in message:
            hint = "use lower case letters, digits and . _ - only, e.g. " + safe_id_example(given_v)
    else:
        family = etype.split("_", 1)[0]
        is_type_error = etype.endswith(("_type", "_parsing")) or etype.startswith(("int_from_float", "date_"))
        message = _TYPE_MESSAGES.get(family, err["msg"]) if is_type_error else err["msg"]
        if etype.startswith("int_from_float"):
            message = "must be a whole number (no fractional part)"
        allowed = _type_name(tp) or None
        if family == "string" and isinstance(given_v, (int, float, bool)):
            hint = "YAML read this as a number/boolean; put the value in quotes"
        elif family in ("model", "dict") and isinstance(given_v, str):
            hint = "write it as indented `key: value` lines under this key"
        elif family == "list" and not isinstance(given_v, list):
            hint = "write a list as [a, b] or one `- item` per line"
    line, col = idx.line(loc)
    return Problem(shown, line, field_path(loc), given, allowed, hint, message, col)


def check_spec_file(path: str | Path) -> CheckResult:
    """Load and check one spec file; never raises for bad input.

    Returns:
        CheckResult with ``spec`` (None when there are errors), ``errors`` and ``warnings``,
        each a list of :class:`Problem` ordered by line.
    """
    shown = str(path)
    p = Path(path)
    data, idx, problems = _read_yaml(p, shown)
    if data is None and problems:
        return CheckResult(shown, None, problems)
    raw_problems = raw_checks(data, idx, shown)
    yaml_fields = {q.field for q in problems if q.field}  # already explained (e.g. an unreadable date)
    spec = None
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            if not err["loc"] and err["type"] == "value_error" and raw_problems:
                continue  # the Spec-level cross-reference error, already reported line by line
            q = _problem_from_error(err, data, idx, shown)
            if q.field not in yaml_fields:
                problems.append(q)
    if spec is not None and not problems and not raw_problems:
        raw_problems += analysis_problems(spec, idx, shown)
    problems = _dedupe(problems + raw_problems)
    if problems:
        return CheckResult(shown, None, problems)
    return CheckResult(shown, spec, [], sorted(spec_warnings(spec, data, idx, p, shown), key=lambda q: q.line or 0))


def _dedupe(problems: list[Problem]) -> list[Problem]:
    out, seen = [], set()
    for q in sorted(problems, key=lambda q: (q.line or 0, q.field)):
        k = (q.line, q.field, q.message)
        if k not in seen:
            seen.add(k)
            out.append(q)
    return out


def load_spec(path: str | Path) -> Spec:
    """Read a spec file into a :class:`~rmxbench.spec.schema.Spec` (no model, no network, no torch).

    Args:
        path: the YAML file.

    Returns:
        The validated spec. Warnings (unpinned revisions, missing reference file) are not
        raised; use :func:`check_spec_file` to get them.

    Raises:
        SpecError: the file is missing/unreadable/not YAML, or violates the schema; its
            ``problems`` name file, line, field path, the value given and what is allowed.
    """
    result = check_spec_file(path)
    if result.errors:
        raise SpecError(result.errors)
    assert result.spec is not None
    return result.spec
