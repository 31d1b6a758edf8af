"""A problem in a spec file and where it is: :class:`Problem` (file, line, field path, what was
given, what is allowed, a hint), :class:`LineIndex` (the line and column of every key of a
composed YAML node tree), :func:`field_path` and :func:`value_at`. Shared by the schema checks
(:mod:`rmxbench.spec.check`) and the cross-field checks (:mod:`rmxbench.spec.crosscheck`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import yaml

#: Most problems shown per file (keeps one file's report on one screen).
MAX_SHOWN = 5

Loc = tuple  # tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or suspicious) in a spec file.

    Attributes:
        file: the spec file as the user named it.
        line: 1-based line number, or None when the file could not be read at all.
        field: dotted field path, e.g. ``models[0].rl_baselines[1].cost.basis`` ("" = whole file).
        given: what the file says there (a short repr), if meaningful.
        allowed: what is allowed there (literal values, bounds, type, defined names).
        hint: a next step, e.g. "did you mean 'rank'?".
        message: what is wrong, in one sentence.
        column: 1-based column, when known.
        severity: ``"error"`` (exit 1) or ``"warning"`` (reported, exit 0).
    """

    file: str
    line: int | None
    field: str
    given: str | None = None
    allowed: str | None = None
    hint: str | None = None
    message: str = ""
    column: int | None = None
    severity: Literal["error", "warning"] = "error"

    def where(self) -> str:
        """``file:line`` (or just ``file``)."""
        return f"{self.file}:{self.line}" if self.line else self.file

    def detail(self, prev: "Problem | None" = None) -> str:
        """``given: …; allowed: …`` (allowed abbreviated when equal to ``prev``'s)."""
        allowed = self.allowed
        if allowed and prev is not None and prev.allowed == allowed:
            allowed = "(as above)"
        return "; ".join(
            p for p in (f"given: {self.given}" if self.given is not None else "",
                        f"allowed: {allowed}" if allowed else "") if p
        )

    def lines(self, prev: "Problem | None" = None) -> list[str]:
        """Plain-text rendering: a headline and up to two indented detail lines."""
        head = f"{self.where()}: {self.field + ': ' if self.field else ''}{self.message}"
        out = [head]
        detail = self.detail(prev)
        if detail:
            out.append("    " + detail)
        if self.hint:
            out.append("    hint: " + self.hint)
        return out


def format_problems(problems: list[Problem], max_shown: int = MAX_SHOWN) -> str:
    """Plain-text listing of ``problems`` (at most ``max_shown``, then a count of the rest)."""
    out: list[str] = []
    prev = None
    for p in problems[:max_shown]:
        out.extend(p.lines(prev))
        prev = p
    if len(problems) > max_shown:
        out.append(f"... and {len(problems) - max_shown} more problem(s) in the same file; fix these first")
    return "\n".join(out)


class LineIndex:
    """Line/column of every mapping key and sequence item in a composed YAML node tree."""

    def __init__(self) -> None:
        self.pos: dict[tuple[str, ...], tuple[int, int]] = {(): (1, 1)}
        self.duplicates: list[tuple[tuple[str, ...], int, int]] = []  # (path, line, first line)
        self.node_loc: dict[int, Loc] = {}  # id(node) -> pydantic-style loc (list indices as int)

    def walk(self, node: yaml.Node, path: tuple[str, ...], seen: set[int], loc: Loc = ()) -> None:
        if id(node) in seen:  # an alias: lines stay those of the alias's parent key
            return
        seen.add(id(node))
        self.node_loc[id(node)] = loc
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                if key == "<<":  # merge key: keep the merged keys' own lines
                    self.walk(value_node, path, seen, loc)
                    continue
                line = key_node.start_mark.line + 1
                if key in first:
                    self.duplicates.append((path + (key,), line, first[key]))
                else:
                    first[key] = line
                    self.pos[path + (key,)] = (line, key_node.start_mark.column + 1)
                self.walk(value_node, path + (key,), seen, loc + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.pos[path + (str(i),)] = (item.start_mark.line + 1, item.start_mark.column + 1)
                self.walk(item, path + (str(i),), seen, loc + (i,))

    def line(self, loc: Loc) -> tuple[int, int]:
        """Line of ``loc``, or of its nearest ancestor that has one."""
        key = tuple(str(p) for p in loc)
        while key not in self.pos:
            key = key[:-1]
        return self.pos[key]


def field_path(loc: Loc) -> str:
    """``('models', 0, 'cost', 'basis')`` -> ``models[0].cost.basis``."""
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def value_at(data: Any, loc: Loc) -> Any:
    """The value at key path ``loc`` of parsed YAML ``data`` (None where the path does not exist)."""
    cur = data
    for p in loc:
        if isinstance(cur, dict):
            cur = cur.get(p, cur.get(str(p)))
        elif isinstance(cur, list) and isinstance(p, int) and 0 <= p < len(cur):
            cur = cur[p]
        else:
            return None
    return cur
