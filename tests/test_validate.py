"""``rmxbench validate`` / ``rmxbench.spec.check.load_spec``: every malformed spec in
``tests/bad_specs/`` is rejected with a one-screen message naming the file, the line and the
field path, exit code 1 and no traceback; good specs load exactly as ``yaml.safe_load`` +
``Spec.model_validate`` would; warnings (unpinned revision, missing reference) keep exit 0.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rmxbench.cli import main
from rmxbench.spec.schema import Spec
from rmxbench.spec.check import SpecError, check_spec_file, load_spec

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "bad_specs"
RMXBENCH = Path(sys.executable).parent / "rmxbench"  # the installed console script

#: file -> (expected line, expected field-path substring, words the output must contain).
#: Field "" = a whole-file problem (no field path). Lines count the fixture's header comment.
CASES: dict[str, tuple[int, str, list[str]]] = {
    "near_miss_key.yaml": (14, "recipes.tiny.lora.rnak", ["unknown key", "did you mean 'rank'", "rank, alpha"]),
    "split_key.yaml": (14, "recipes.tiny.lora_rank", ["unknown key", "lora: {rank"]),
    "misplaced_key.yaml": (14, "recipes.tiny.k", ["unknown key", "key of `rollouts:`"]),
    "unknown_top_key.yaml": (14, "modles", ["unknown key", "did you mean 'models'", "missing required key 'models'"]),
    "wrong_type_int.yaml": (14, "recipes.tiny.rollouts.k", ["whole number", "'many'"]),
    "wrong_type_list.yaml": (5, "protocol.tasks", ["must be a list", "tinymath"]),
    "missing_field.yaml": (15, "models[0].family", ["missing required key 'family'", "add `family:`"]),
    "missing_pricing.yaml": (1, "pricing", ["missing required key 'pricing'", "usd_per_hour"]),
    "undefined_recipe.yaml": (29, "models[0].reasonmaxxer[0].recipe", ["undefined recipe 'tiyn'", "did you mean 'tiny'"]),
    "unsafe_id_dotdot.yaml": (15, "models[0].id", ["'../evil'", "not safe as a file name"]),
    "unsafe_id_space.yaml": (21, "models[0].rl_baselines[0].id", ["'A B'", "not safe as a file name", "'a-b'"]),
    "duplicate_id.yaml": (28, "models[0].reasonmaxxer[0].id", ["duplicate id 'tiny-rl'", "line 21"]),
    "yaml_tab.yaml": (16, "", ["YAML syntax error", "tabs"]),
    "yaml_unclosed.yaml": (11, "", ["YAML syntax error", "flow mapping", "line 10"]),
    "empty.yaml": (1, "", ["empty"]),
    "comments_only.yaml": (1, "", ["empty"]),
    "top_list.yaml": (2, "", ["top level must be a mapping", "got a list"]),
    "top_scalar.yaml": (2, "", ["top level must be a mapping", "single value"]),
    "non_utf8.yaml": (3, "", ["not valid UTF-8", "0xe9"]),
    "k_zero.yaml": (14, "recipes.tiny.rollouts.k", ["must be >= 1", "given: 0"]),
    "taus_empty.yaml": (13, "recipes.tiny.taus", ["at least 1 item", "got 0"]),
    "taus_negative.yaml": (15, "recipes.tiny.taus[1]", [">= 0 nats", "-0.4"]),
    "temperature_negative.yaml": (7, "protocol.pass_at_1.temperature", ["must be >= 0", "-0.5"]),
    "seed_negative.yaml": (7, "protocol.seed", ["must be >= 0", "-5", "< 4294967296"]),
    "context_too_small.yaml": (4, "protocol", ["max_new_tokens=64 must be < max_model_len=16"]),
    "control_char_name.yaml": (17, "models[0].display_name", ["control character", "\\x1b"]),
    "window_outside.yaml": (15, "recipes.tiny.selection.max_pass_rate", ["<= 1", ">= 0.0 and <= 1.0", "1.5"]),
    "window_empty.yaml": (15, "recipes.tiny.selection.min_pass_rate", ["window is empty", "0.8", "0.2"]),
    "negative_price.yaml": (12, "pricing.usd_per_hour.A100-80G", [">= 0 USD/hour", "-1.0"]),
    "gpu_type_unpriced.yaml": (12, "pricing.hardware.gpu_type", ["has no price", "H100-80G"]),
    "repo_without_revision.yaml": (26, "models[0].rl_baselines[0].model", ["`revision` is required"]),
    "repo_and_path.yaml": (21, "models[0].model", ["exactly one of `repo`", "`path`"]),
    "unknown_prompt_style.yaml": (19, "models[0].prompt_style", ["'qwen-raw'", "tiny_story", "did you mean 'qwen_raw'"]),
    "unknown_task.yaml": (5, "protocol.tasks[1]", ["'math501'", "aime24", "did you mean 'math500'"]),
    "unknown_limit_task.yaml": (7, "protocol.limit.gsm8kk", ["not an allowed key", "did you mean 'gsm8k'"]),
    "bad_basis.yaml": (26, "models[0].rl_baselines[0].cost.basis", ["'quoted'", "measured, reported, estimated"]),
    "duplicate_key.yaml": (5, "suite.name", ["duplicate key 'name'", "line 3"]),
    "revision_number.yaml": (25, "models[0].rl_baselines[0].model.revision", ["text string", "quotes"]),
    "bad_date.yaml": (8, "pricing.date", ["YYYY-MM-DD", "28/04/2026"]),
    "rl_without_model.yaml": (21, "models[0].rl_baselines[0]", ["`unavailable`"]),
    "unsafe_recipe_name.yaml": (12, "recipes.Tiny Recipe", ["not safe as a file name", "'tiny-recipe'"]),
    "models_empty.yaml": (14, "models", ["at least 1 item"]),
    "model_as_string.yaml": (18, "models[0].model", ["must be a mapping", "repo, revision, path"]),
    "negative_lr.yaml": (15, "recipes.tiny.optim.learning_rate", ["must be > 0", "-0.001"]),
    # issue 10: no float anywhere in the schema accepts inf/nan (model, list item, dict value)
    "inf_anchor_weight.yaml": (14, "recipes.tiny.anchor_weight", ["finite number", "given: inf", ">= 0"]),
    "inf_temperature.yaml": (7, "protocol.pass_at_1.temperature", ["finite number", "given: inf"]),
    "nan_tau.yaml": (13, "recipes.tiny.taus[1]", ["finite number", "given: nan"]),
    "nan_price.yaml": (10, "pricing.usd_per_hour.H100-80G", ["finite number", "given: nan"]),
    # fresh-user trial: a repeated task crashed `run` ("duplicate node"); a stray avg@k task was ignored
    "duplicate_task.yaml": (4, "protocol", ["listed once", "'tinymath'"]),
    "avg_at_k_task_not_evaluated.yaml": (4, "protocol", ["not in protocol.tasks", "gsm8k"]),
    # issue 10: a value the YAML loader cannot construct is a normal error, never "internal error"
    "date_out_of_range.yaml": (8, "pricing.date", ["cannot read this value", "month must be in 1..12",
                                                   "'2026-13-45'", "YYYY-MM-DD"]),
    "bad_int_tag.yaml": (7, "protocol.seed", ["cannot read this value", "'twelve'"]),
    # issue 10: RL rows are evaluated with the base prompt unless `eval_prompt: trained`
    "rl_prompt_style_renamed.yaml": (24, "models[0].rl_baselines[0].prompt_style",
                                     ["now `trained_prompt_style`", "eval_prompt: trained"]),
    # issue 18 item 10: a YAML boolean is never a number (scalar, list item, mapping value)
    "bool_max_steps.yaml": (13, "rl_recipes.g.max_steps", ["whole number, not a boolean", "given: true",
                                                           "yes/no/on/off", ">= 1"]),
    "bool_seed.yaml": (7, "protocol.seed", ["whole number, not a boolean", "given: false", ">= 0"]),
    "bool_tau.yaml": (13, "recipes.tiny.taus[1]", ["a number, not a boolean", "given: true"]),
    "bool_price.yaml": (10, "pricing.usd_per_hour.H100-80G", ["a number, not a boolean", "given: true"]),
    # issue 18 item 3: TRL 1.16's own rules (GRPOConfig/GRPOTrainer) and the round/step alignment
    "grpo_num_generations.yaml": (15, "rl_recipes.g.num_generations",
                                  ["must divide the generation batch 32", "use 2, 4, 8, 16 or 32"]),
    "grpo_steps_per_generation.yaml": (15, "rl_recipes.g.steps_per_generation",
                                       ["steps_per_generation=2", "gradient_accumulation_steps=3", "off-policy",
                                        "divisor of 3 (1 or 3)", "multiple (6, 9, …)"]),
    "grpo_iterations_in_one_step.yaml": (16, "rl_recipes.g.steps_per_generation",
                                         ["num_iterations=2", "multiple of 4 (4, 8, 12, …)"]),
    "grpo_lora_lm_head.yaml": (15, "rl_recipes.g.lora.target_modules", ["lm_head", "never train"]),
    # issue 19 item 1: training seeds of a trained row (non-empty, unique, ints in [0, 2^32), no booleans)
    "seeds_empty.yaml": (30, "models[0].reasonmaxxer[0].seeds", ["at least 1 item", "got 0"]),
    "seeds_duplicate.yaml": (30, "models[0].reasonmaxxer[0].seeds", ["listed once each", "repeated: [0]"]),
    "seeds_bool.yaml": (30, "models[0].reasonmaxxer[0].seeds[1]", ["whole number, not a boolean", "given: true"]),
    "seeds_out_of_range.yaml": (30, "models[0].reasonmaxxer[0].seeds[1]", ["must be < 4294967296",
                                                                          "given: 4294967296"]),
    "seeds_scalar.yaml": (30, "models[0].reasonmaxxer[0].seeds", ["must be a list", "given: 3"]),
    "seeds_without_train.yaml": (27, "models[0].rl_baselines[0].seeds", ["only to rows rmxbench trains",
                                                                        "`train:`", "drop `seeds`"]),
}

#: A minimal valid spec (the fixtures are mutations of it, with one header comment line).
GOOD = (BAD / "bad_basis.yaml").read_text().replace("basis: quoted", "basis: reported")


def screen_rows(text: str, width: int = 80) -> int:
    """Rows the text takes on a ``width``-column terminal (long lines wrap)."""
    return sum(max(1, math.ceil(len(line) / width)) for line in text.splitlines())


def _schema_models(model=None, seen=None) -> list:
    """Every pydantic model class reachable from :class:`rmxbench.spec.Spec`."""
    import typing

    from pydantic import BaseModel

    from rmxbench.spec.schema import Spec

    model = model or Spec
    seen = seen if seen is not None else []
    if model in seen:
        return seen
    seen.append(model)

    def walk(tp):
        for a in typing.get_args(tp) or ():
            walk(a)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            _schema_models(tp, seen)

    for f in model.model_fields.values():
        walk(f.annotation)
    return seen


def test_no_float_in_the_schema_accepts_inf_or_nan():
    """Every float field of every schema model (scalars, list items, dict values) rejects
    inf/-inf/nan: checked field by field on the real models, not just on the fixtures."""
    import typing

    from pydantic import ValidationError

    checked = 0
    for model in _schema_models():
        for name, f in model.model_fields.items():
            ann = f.annotation
            flat = [ann, *typing.get_args(ann), *[x for a in typing.get_args(ann) for x in typing.get_args(a)]]
            if float not in flat:
                continue
            for bad in (float("inf"), float("-inf"), float("nan")):
                value = {dict: {"k": bad}, list: [bad]}.get(typing.get_origin(ann), bad)
                with pytest.raises(ValidationError, match="finite number"):
                    model.__pydantic_validator__.validate_assignment(model.model_construct(), name, value)
            checked += 1
    assert checked >= 20


def _number_fields():
    """(model, field name, annotation) of every schema field that holds numbers: int/float scalars,
    list items and mapping values (``bool`` fields are not numbers)."""
    import typing

    out = []
    for model in _schema_models():
        for name, f in model.model_fields.items():
            ann = f.annotation
            flat = [ann, *typing.get_args(ann), *[x for a in typing.get_args(ann) for x in typing.get_args(a)]]
            if (int in flat or float in flat) and bool not in flat:
                out.append((model, name, ann))
    return out


def test_no_number_in_the_schema_accepts_a_boolean():
    """Issue 18 item 10: every int/float field of every schema model (scalars, list items, dict
    values) rejects YAML booleans (``max_steps: yes`` used to validate as 1, ``seed: off`` as 0),
    through the one validator of StrictModel; bool fields still take booleans."""
    import typing

    from pydantic import ValidationError

    from rmxbench.spec.grpo_recipe import GRPORecipe
    from rmxbench.spec.recipe import PoolConfig

    checked = 0
    for model, name, ann in _number_fields():
        for bad in (True, False):
            value = {dict: {"k": bad}, list: [bad]}.get(typing.get_origin(ann), bad)
            with pytest.raises(ValidationError, match="not a boolean") as ei:
                model.__pydantic_validator__.validate_assignment(model.model_construct(), name, value)
            assert ei.value.errors()[0]["type"] == "bool_for_number"
        checked += 1
    assert checked >= 90
    assert GRPORecipe(max_steps=12).max_steps == 12 and GRPORecipe(learning_rate=1).learning_rate == 1.0
    assert PoolConfig(balance_levels=False).balance_levels is False  # a real bool field is untouched


def test_fixture_table_covers_every_file():
    files = sorted(p.name for p in BAD.glob("*.yaml"))
    assert len(files) >= 25
    assert sorted(CASES) == files, "every tests/bad_specs file needs a row in CASES (and vice versa)"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_spec_is_reported_at_file_line_field(name, capsys):
    line, field, words = CASES[name]
    path = BAD / name
    result = check_spec_file(path)
    assert not result.ok and result.spec is None
    hits = [p for p in result.errors if p.line == line and field in p.field and p.file == str(path)]
    assert hits, f"no problem at line {line} / field {field!r}: {[(p.line, p.field, p.message) for p in result.errors]}"
    if not field:
        assert any(p.field == "" for p in hits)

    rc = main(["validate", str(path)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert rc == 1
    assert f"{path}:{line}" in text
    assert field in text
    for w in words:
        assert w.lower() in text.lower(), f"{w!r} missing from:\n{text}"
    assert "Traceback" not in text
    assert screen_rows(text) <= 25, text


def test_load_spec_raises_spec_error_with_problems():
    path = BAD / "undefined_recipe.yaml"
    with pytest.raises(SpecError) as ei:
        load_spec(path)
    (p,) = ei.value.problems
    assert (p.file, p.line, p.field) == (str(path), 29, "models[0].reasonmaxxer[0].recipe")
    assert p.given == "'tiyn'" and "tiny" in p.allowed and p.hint == "did you mean 'tiny'?"
    # str(exc) is the one-screen listing any command prints through print_user_error
    assert f"{path}:29: models[0].reasonmaxxer[0].recipe: undefined recipe 'tiyn'" in str(ei.value)


@pytest.mark.parametrize("name", ["near_miss_key.yaml", "unsafe_id_dotdot.yaml", "yaml_tab.yaml", "empty.yaml"])
def test_console_script_subprocess(name):
    if not RMXBENCH.exists():
        pytest.skip(f"console script not installed at {RMXBENCH}")
    line, field, words = CASES[name]
    rel = os.path.relpath(BAD / name, ROOT)
    proc = subprocess.run([str(RMXBENCH), "validate", rel], cwd=ROOT, capture_output=True, text=True, timeout=60)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text
    assert f"{rel}:{line}" in text and field in text
    assert all(w.lower() in text.lower() for w in words), text
    assert "Traceback" not in text
    assert screen_rows(text) <= 25


def test_missing_file_and_directory(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main(["validate", str(missing)]) == 1
    text = capsys.readouterr().out
    assert str(missing) in text and "file not found" in text

    assert main(["validate", str(BAD)]) == 1
    text = capsys.readouterr().out
    assert str(BAD) in text and "is a directory" in text and "*.yaml" in text
    assert "Traceback" not in text


def test_unsafe_yaml_tags_are_not_constructed(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.yaml"
    p.write_text(f"suite: !!python/object/apply:os.system ['touch {marker}']\n")
    result = check_spec_file(p)
    assert not result.ok and result.errors[0].line == 1 and "YAML" in result.errors[0].message
    assert not marker.exists()


def test_good_spec_loads_like_safe_load(tmp_path, capsys):
    p = tmp_path / "good.yaml"
    p.write_text(GOOD)
    spec = load_spec(p)
    assert spec == Spec.model_validate(yaml.safe_load(GOOD))
    assert [r.id for _, _, r in spec.rows()] == ["tiny", "tiny-rl", "tiny-rmx"]
    assert main(["validate", str(p)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK") and "3 rows (1 base, 1 RL, 1 ReasonMaxxer), 1 task" in out


@pytest.mark.parametrize("spec_file", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_repo_specs_load_like_safe_load(spec_file):
    assert load_spec(spec_file) == Spec.model_validate(yaml.safe_load(spec_file.read_text()))


def test_repo_specs_validate_ok(capsys):
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").glob("*.yaml"))
    assert files
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        assert main(["validate", "-q", *files]) == 0
    finally:
        os.chdir(cwd)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(files) and all(l.startswith("OK") for l in lines)


def test_warnings_keep_exit_zero(tmp_path, capsys):
    text = GOOD.replace("revision: 0123456789abcdef0123456789abcdef01234567", "revision: main")
    text = text.replace("recipes:\n", "reference: no/such/table.yaml\nrecipes:\n")
    p = tmp_path / "warn.yaml"
    p.write_text(text)
    result = check_spec_file(p)
    assert result.ok and not result.errors
    by_field = {w.field: w for w in result.warnings}
    assert by_field["models[0].rl_baselines[0].model.revision"].line == 26
    assert "unpinned" in by_field["models[0].rl_baselines[0].model.revision"].message
    assert by_field["reference"].line == 11 and "not found" in by_field["reference"].message
    assert main(["validate", str(p)]) == 0
    out = capsys.readouterr().out
    assert "(2 warnings)" in out and f"{p}:26" in out and f"{p}:11" in out
    assert main(["validate", "-q", str(p)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_pinned_spec_with_reference_has_no_warnings(tmp_path):
    (tmp_path / "ref.yaml").write_text("families: {}\n")
    p = tmp_path / "pinned.yaml"
    p.write_text(GOOD.replace("recipes:\n", "reference: ref.yaml\nrecipes:\n")
                 .replace("model: {path: package:embedded/tiny}", "model: {path: .}"))
    result = check_spec_file(p)
    assert result.ok and result.warnings == []


def test_several_files_one_bad(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad = BAD / "k_zero.yaml"
    assert main(["validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("OK") and "FAIL" in out and "1 of 2 spec files have errors" in out


def test_many_errors_are_capped_to_one_screen(tmp_path, capsys):
    text = GOOD.replace("    taus: [1.2, 1.4]\n", "    taus: [1.2, 1.4]\n" + "".join(
        f"    bogus_{i}: 1\n" for i in range(12)))
    p = tmp_path / "many.yaml"
    p.write_text(text)
    assert len(check_spec_file(p).errors) == 12
    assert main(["validate", str(p)]) == 1
    text = capsys.readouterr().out
    assert "12 errors" in text and "7 more error(s)" in text
    assert screen_rows(text) <= 25


def test_rich_markup_in_values_is_printed_literally(tmp_path, capsys):
    p = tmp_path / "markup.yaml"
    p.write_text(GOOD.replace("  - id: tiny\n", "  - id: '[red]x[/red]'\n"))
    assert main(["validate", str(p)]) == 1
    assert "'[red]x[/red]'" in capsys.readouterr().out


def test_json_output(capsys):
    import json

    assert main(["validate", "--json", str(BAD / "k_zero.yaml")]) == 1
    rec = json.loads(capsys.readouterr().out)
    assert rec["ok"] is False
    assert rec["errors"][0]["line"] == 14 and rec["errors"][0]["field"] == "recipes.tiny.rollouts.k"


def test_readme_spec_example_validates(tmp_path):
    """The spec layout shown in README.md is a valid spec (placeholders filled in)."""
    import re

    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S) if "models:" in b)
    p = tmp_path / "readme.yaml"
    p.write_text(block.replace("<40-hex commit sha>", "a" * 40).replace("<sha>", "b" * 40))
    spec = load_spec(p)
    assert [r.id for _, _, r in spec.rows()] == ["qwen2.5-1.5b", "qwen2.5-1.5b-simplerl-zoo", "qwen2.5-1.5b-grpo-here",
                                                 "qwen2.5-1.5b-rmx"]
    assert spec.models[0].rl_baselines[1].train.recipe in spec.rl_recipes


def test_spec_error_prints_one_screen_through_any_command(capsys):
    """Commands other than validate (run, board, …) print a SpecError via print_user_error."""
    from rmxbench.errors import print_user_error

    path = BAD / "unknown_top_key.yaml"
    with pytest.raises(SpecError) as ei:
        load_spec(path)
    print_user_error(ei.value)
    raw = capsys.readouterr().err
    err = " ".join(raw.split())  # print_user_error's console may wrap long lines at spaces
    assert f"{path}: 2 problems in the spec" in err
    assert f"{path}:14: modles: unknown key 'modles'" in err and "did you mean 'models'?" in err
    assert f"{path}:1: models: missing required key 'models'" in err
    assert "Traceback" not in raw and screen_rows(raw) <= 25


def test_reported_row_missing_from_reference_is_a_warning(tmp_path):
    (tmp_path / "ref.yaml").write_text(
        "columns: [tinymath, avg]\nfamilies:\n  tiny:\n"
        "    - {model: Tiny, role: base, scores: [0.1, 0.1]}\n"
        "    - {model: Tiny + RL, role: rl_baseline, scores: [0.2, 0.2]}\n"
    )
    text = GOOD.replace("recipes:\n", "reference: ref.yaml\nrecipes:\n")
    text = text.replace("    display_name: Tiny\n", "    display_name: Tiny\n    reported: {family: tiny, model: Tiny}\n")
    text = text.replace("        display_name: + RL\n", "        display_name: + RL\n"
                        "        reported:\n          family: tiny\n          model: Tiny + RLL\n")
    p = tmp_path / "rep.yaml"
    p.write_text(text)
    result = check_spec_file(p)
    assert result.ok
    (w,) = result.warnings
    assert (w.line, w.field) == (27, "models[0].rl_baselines[0].reported.model")
    assert "no such model in the reference file ref.yaml" in w.message and w.hint == "did you mean 'Tiny + RL'?"


def test_grpo_recipe_clipping_warnings(tmp_path):
    """Issue 18 item 2: validate warns (exit 0) when a GRPO recipe makes clipping likely (a completion
    cap below the evaluation's max_new_tokens) or certain for long completions (the protocol's context, which TRL's
    engine holds max_model_len tokens); a cap within both budgets gets no warning."""
    base = (BAD / "bool_max_steps.yaml").read_text().replace("max_steps: yes", "max_steps: 3")
    p = tmp_path / "clip.yaml"
    p.write_text(base.replace("    max_steps: 3", "    max_steps: 3\n    max_completion_length: 16"))
    r = check_spec_file(p)
    (w,) = r.warnings
    assert r.ok and (w.line, w.field, w.given) == (14, "rl_recipes.g.max_completion_length", "16")
    assert "clipping likely" in w.message and "protocol.max_new_tokens=3072" in w.message
    p.write_text(base.replace("  backend: hf", "  backend: vllm\n  max_new_tokens: 1024\n  max_model_len: 2048"))
    (w,) = check_spec_file(p).warnings
    assert w.line == 14 and "clipping certain" in w.message and "max_model_len=2048" in w.message
    assert main(["validate", str(p)]) == 0
    p.write_text(base.replace("    max_steps: 3", "    max_steps: 3\n    max_completion_length: 4000"))
    assert check_spec_file(p).warnings == []


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_problem_on_line_100_is_printed_as_line_100(command, tmp_path, capsys, monkeypatch):
    """``file:100:`` must not become rich's ``:100:`` emoji (found by a fresh-user trial)."""
    monkeypatch.setenv("RMXBENCH_HOME", str(tmp_path / "home"))
    lines = (Path(__file__).resolve().parents[1] / "specs" / "tiny.yaml").read_text().splitlines()
    assert lines[99].strip() == "dtype: float32"  # line 100
    lines[99] = lines[99].replace("float32", "float33")
    path = tmp_path / "bad_dtype.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert main([command, str(path)]) == 1
    captured = capsys.readouterr()
    shown = " ".join((captured.out + captured.err).split())
    assert f"{path}:100: models[0].dtype" in shown and "\N{HUNDRED POINTS SYMBOL}" not in shown, shown
