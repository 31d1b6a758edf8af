"""Cross-field checks of a spec file on its raw YAML and the validated spec (ids, paths,
references, pinning): the warnings and errors pydantic cannot see. Part of
:mod:`rmxbench.spec.check` (use :func:`rmxbench.spec.check.check_spec_file`)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml

from rmxbench.spec.analysis_pairs import check_entries
from rmxbench.spec.benchmarks import tasks
from rmxbench.spec.context import resolve_spec_path
from rmxbench.spec.problems import LineIndex, Loc, Problem, field_path, value_at
from rmxbench.spec.schema import SAFE_ID, Spec
from rmxbench.spec.styles import PROMPT_STYLES


def safe_id_example(v: Any) -> str:
    """A safe id close to ``v`` (lower case, a-z 0-9 . _ -, at most 64 characters), quoted, for hints."""
    s = re.sub(r"[^a-z0-9._-]+", "-", str(v).lower()).strip("-._").replace("..", ".") or "my-row"
    return repr(s[:64])


def raw_checks(data: dict, idx: LineIndex, shown: str) -> list[Problem]:
    """Cross-reference checks on the raw YAML (each pointing at its own line)."""
    out: list[Problem] = []
    names: dict[str, list[str]] = {}
    for section in ("recipes", "rl_recipes"):
        recipes = data.get(section)
        names[section] = [str(k) for k in recipes] if isinstance(recipes, dict) else []
        for name in names[section]:
            if not SAFE_ID.match(name) or ".." in name:
                loc = (section, name)
                out.append(Problem(shown, idx.line(loc)[0], field_path(loc), repr(name),
                                   "1-64 characters from a-z 0-9 . _ -, starting with a letter or digit, no '..'",
                                   "recipe names become directory names; use e.g. " + safe_id_example(name),
                                   "recipe name is not safe as a file name"))
    models = data.get("models")
    if not isinstance(models, list):
        return out
    seen: dict[str, tuple[Loc, int]] = {}
    for i, m in enumerate(models):
        if not isinstance(m, dict):
            continue
        rows: list[Loc] = [("models", i)]
        for kind in ("rl_baselines", "reasonmaxxer"):
            if isinstance(m.get(kind), list):
                rows += [("models", i, kind, j) for j, r in enumerate(m[kind]) if isinstance(r, dict)]
        for row_loc in rows:
            row = value_at(data, row_loc)
            rid = row.get("id")
            if not isinstance(rid, str):
                continue
            loc = row_loc + ("id",)
            line = idx.line(loc)[0]
            if rid in seen:
                first_loc, first_line = seen[rid]
                out.append(Problem(shown, line, field_path(loc), repr(rid), "ids unique across the whole spec",
                                   "ids name artifact folders and board rows; rename one of them",
                                   f"duplicate id {rid!r} (first used by {field_path(first_loc)} at line {first_line})"))
            else:
                seen[rid] = (loc, line)
        # (rows key, path to the recipe name inside a row, recipes section, hint for a missing one)
        for kind, sub, section, add in (
                ("reasonmaxxer", ("recipe",), "recipes", "an empty mapping `{}` means the paper's defaults"),
                ("rl_baselines", ("train", "recipe"), "rl_recipes", "an empty mapping `{}` means SimpleRL-Zoo's defaults")):
            for j, r in enumerate(m.get(kind) if isinstance(m.get(kind), list) else []):
                name = value_at(r, sub) if isinstance(r, dict) else None
                if not isinstance(name, str) or name in names[section]:
                    continue
                loc = ("models", i, kind, j, *sub)
                close = difflib.get_close_matches(name, names[section], n=1, cutoff=0.6)
                out.append(Problem(
                    shown, idx.line(loc)[0], field_path(loc), repr(name),
                    f"a recipe defined under `{section}:`: " + (", ".join(names[section]) or "(none defined)"),
                    f"did you mean {close[0]!r}?" if close else f"add it under `{section}:` ({add})",
                    f"undefined recipe {name!r}"))
    return out


# --------------------------------------------------------------------------- warnings


def spec_warnings(spec: Spec, data: dict, idx: LineIndex, path: Path, shown: str) -> list[Problem]:
    """The warnings of a valid spec (severity ``warning``, exit code 0): unpinned hub revisions, a
    missing local model path or reference file, reported rows the reference lacks, GRPO clipping,
    a data dir that is not a folder."""
    out: list[Problem] = []
    refs: list[tuple[Loc, Any]] = []
    for i, m in enumerate(spec.models):
        refs.append((("models", i, "model"), m.model))
        for j, b in enumerate(m.rl_baselines):
            if b.model is not None:
                refs.append((("models", i, "rl_baselines", j, "model"), b.model))
    spec_dir = path.parent
    for loc, ref in refs:
        if ref.repo is not None and not ref.pinned:
            rloc = loc + ("revision",)
            out.append(Problem(shown, idx.line(rloc)[0], field_path(rloc), repr(ref.revision), "a 40-hex commit sha",
                               "pin revisions to 40-hex commit shas (huggingface.co/<repo>/commits/main lists them)",
                               f"unpinned hub revision {ref.revision!r} of {ref.repo}", severity="warning"))
        if ref.path is not None:
            target = resolve_spec_path(ref.path, spec_dir)
            if not target.exists():
                ploc = loc + ("path",)
                out.append(Problem(shown, idx.line(ploc)[0], field_path(ploc), repr(ref.path), None,
                                   "relative paths are resolved against the spec file's folder",
                                   f"local model path does not exist ({target})", severity="warning"))
    if spec.reference:
        target = resolve_spec_path(spec.reference, spec_dir)
        if not target.is_file():
            out.append(Problem(shown, idx.line(("reference",))[0], "reference", repr(spec.reference), None,
                               "relative to the spec file's folder; without it the board has no reported column",
                               "reference file not found", severity="warning"))
        else:
            out += _reported_warnings(spec, target, idx, shown)
    out += _clipping_warnings(spec, idx, shown)
    dd = spec.protocol.data_dir
    if dd and not resolve_spec_path(dd, spec_dir).is_dir():
        out.append(Problem(shown, idx.line(("protocol", "data_dir"))[0], "protocol.data_dir", repr(dd), None,
                           "pass --data-dir or set RMXBENCH_DATA_DIR at run time, or fix the path",
                           "data dir is not a directory here", severity="warning"))
    return out


def _clipping_warnings(spec: Spec, idx: LineIndex, shown: str) -> list[Problem]:
    """GRPO recipes whose completion cap makes clipping likely or certain (issue 18 item 2).

    Rules: (1) ``max_completion_length`` below ``protocol.max_new_tokens``: training cuts
    completions that evaluation lets finish (a cut answer scores 0; TRL counts it in
    ``clipped_ratio``); (2) with ``backend: vllm``, ``max_completion_length`` at or above
    ``protocol.max_model_len``: the protocol's context (and TRL's vLLM engine, ``vllm_max_model_length``)
    holds ``max_model_len`` tokens of prompt + completion, so no completion can reach the cap.
    """
    p, out = spec.protocol, []
    for name, r in spec.rl_recipes.items():
        loc = ("rl_recipes", name, "max_completion_length")
        cap = r.max_completion_length
        if cap < p.max_new_tokens:
            out.append(Problem(shown, idx.line(loc)[0], field_path(loc), str(cap), f">= {p.max_new_tokens}",
                               f"raise max_completion_length to at least {p.max_new_tokens}, or lower "
                               "protocol.max_new_tokens",
                               f"clipping likely: GRPO cuts completions at {cap} tokens but evaluation lets them run "
                               f"to protocol.max_new_tokens={p.max_new_tokens} (a cut answer earns reward 0)",
                               severity="warning"))
        if cap >= p.max_model_len:
            out.append(Problem(shown, idx.line(loc)[0], field_path(loc), str(cap), f"< {p.max_model_len}",
                               "raise protocol.max_model_len above max_completion_length + the longest prompt, "
                               "or lower max_completion_length",
                               f"clipping certain for long completions: the protocol's context holds "
                               f"max_model_len={p.max_model_len} tokens of prompt + completion (TRL's vLLM engine is "
                               f"sized to it), so no completion reaches {cap} tokens", severity="warning"))
    return out


def _reported_warnings(spec: Spec, reference: Path, idx: LineIndex, shown: str) -> list[Problem]:
    """Rows whose ``reported: {family, model}`` names no row of the reference file."""
    try:
        ref = yaml.safe_load(reference.read_text(encoding="utf-8"))
        families = ref["families"]
        names = {f: [r["model"] for r in rows if isinstance(r, dict) and "model" in r]
                 for f, rows in families.items()}
    except Exception:  # an unreadable reference is the board's to report; validate stays quiet
        return []
    out = []
    for i, m in enumerate(spec.models):
        locs = [(("models", i), m)]
        locs += [(("models", i, "rl_baselines", j), b) for j, b in enumerate(m.rl_baselines)]
        locs += [(("models", i, "reasonmaxxer", j), r) for j, r in enumerate(m.reasonmaxxer)]
        for loc, row in locs:
            rep = row.reported
            if rep is None:
                continue
            if rep.family not in names:
                bad, options, given = loc + ("reported", "family"), list(names), rep.family
            elif rep.model not in names[rep.family]:
                bad, options, given = loc + ("reported", "model"), names[rep.family], rep.model
            else:
                continue
            close = difflib.get_close_matches(given, options, n=1, cutoff=0.6)
            out.append(Problem(shown, idx.line(bad)[0], field_path(bad), repr(given), None,
                               f"did you mean {close[0]!r}?" if close else f"choose from {reference.name}",
                               f"no such {bad[-1]} in the reference file {reference.name}; the row gets no "
                               "reported numbers", severity="warning"))
    return out


# --------------------------------------------------------------------------- public API


def analysis_problems(spec: Spec, idx: LineIndex, shown: str) -> list[Problem]:
    """Errors of the ``analyses:`` section that need the whole spec (row ids, tasks, prompt styles;
    :func:`rmxbench.spec.analysis_pairs.check_entries`), each at the line of its key."""
    out = []
    for loc, message, allowed in check_entries(spec, spec.analyses, tasks=tasks(), styles=PROMPT_STYLES):
        given = value_at(spec.model_dump(mode="json"), loc)
        close = difflib.get_close_matches(str(given), [a.strip() for a in allowed.split(",")], n=1, cutoff=0.6) \
            if isinstance(given, str) else []
        out.append(Problem(shown, idx.line(loc)[0], field_path(loc), repr(given) if isinstance(given, str) else None,
                           allowed, f"did you mean {close[0]!r}?" if close else None, message))
    return out
