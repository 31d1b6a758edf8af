"""Paper-reported numbers (``reference:`` file, e.g. ``shared/reference/paper_table3.yaml``) for the
board's reported column."""

from __future__ import annotations

from pathlib import Path

import warnings

def load_reference(path: str | Path | None) -> dict | None:
    """Load the paper's reported numbers (``paper_table3.yaml`` shape) with ``yaml.safe_load``.

    Shape: ``{"columns": [task..., "avg"], "families": {family: [{"model", "role", "scores":
    [...], "cost_usd"?, "cost_basis"?}, ...]}}``.

    Returns None (and warns) when ``path`` is None or the file does not exist.

    Raises:
        rmxbench.errors.UserError: the file exists but is not YAML of that shape.
    """
    import yaml

    from rmxbench.errors import UserError

    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        warnings.warn(f"reference file {p} not found: the board shows no reported (paper) numbers", stacklevel=2)
        return None
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{p}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list) or not isinstance(
        data.get("families"), dict
    ):
        raise UserError(f"{p}: expected keys `columns` (list) and `families` (mapping), as in paper_table3.yaml")
    cols = data["columns"]
    for fam, rows in data["families"].items():
        if not isinstance(rows, list):
            raise UserError(f"{p}: families.{fam} must be a list of rows")
        for i, r in enumerate(rows):
            if not isinstance(r, dict) or "model" not in r or not isinstance(r.get("scores"), list):
                raise UserError(f"{p}: families.{fam}[{i}] needs `model` and a `scores` list")
            if len(r["scores"]) != len(cols):
                raise UserError(
                    f"{p}: families.{fam}[{i}] ({r['model']}) has {len(r['scores'])} scores for "
                    f"{len(cols)} columns {cols}"
                )
    return data


def lookup_reported(reference: dict | None, reported) -> dict | None:
    """The reference row a spec row's ``reported: {family, model}`` points at.

    Returns ``{"model", "role", "scores": {column: value}, "cost_usd", "cost_basis"}`` (the
    ``scores`` keys are the reference ``columns``, including ``avg``) or None when there is no
    reference, no pointer, or no such row.
    """
    if not isinstance(reference, dict) or reported is None:
        return None
    cols = reference.get("columns")
    fams = reference.get("families")
    if not isinstance(cols, list) or not isinstance(fams, dict):
        return None
    rows = fams.get(reported.family)
    if not isinstance(rows, list):
        return None
    for r in rows:
        if isinstance(r, dict) and r.get("model") == reported.model and isinstance(r.get("scores"), list):
            return {
                "model": r["model"],
                "role": r.get("role"),
                "scores": {c: (None if v is None else float(v)) for c, v in zip(cols, r["scores"])},
                "cost_usd": r.get("cost_usd"),
                "cost_basis": r.get("cost_basis"),
            }
    return None


# --------------------------------------------------------------------------- board model

