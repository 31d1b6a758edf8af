"""The spec-PR workflow (.github/workflows/spec-pr.yml, issue 20): valid YAML, triggered by PRs that
change specs/, uses only the official checkout/setup-python actions and the README's own install
command, names only rmxbench commands and options that exist, and its shell steps run here: with a fake
``GITHUB_STEP_SUMMARY`` and ``RUNNER_TEMP`` they write the validate output and the changed specs'
dry-runs with their cost estimates into the summary. The install step is not run (it would change the
shared environment); it is checked to be the README's command instead."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WF = REPO / ".github" / "workflows" / "spec-pr.yml"


def _workflow() -> dict:
    return yaml.safe_load(WF.read_text())


def _steps() -> list[dict]:
    return _workflow()["jobs"]["spec"]["steps"]


def test_workflow_is_yaml_triggered_by_spec_prs():
    wf = _workflow()
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on["pull_request"]["paths"] == ["specs/**"]
    assert wf["permissions"] == {"contents": "read"}
    uses = [s["uses"].split("@")[0] for s in _steps() if "uses" in s]
    assert uses == ["actions/checkout", "actions/setup-python"]


def test_install_step_is_the_readmes_light_install():
    install = [s["run"].strip() for s in _steps() if "Install" in s.get("name", "")]
    assert install == ["pip install torch==2.13.0 && pip install -e ."]
    assert install[0] in (REPO / "README.md").read_text()


def test_rmxbench_invocations_exist():
    """Every `rmxbench ...` line parses with rmxbench's own argument parser."""
    from rmxbench.cli import build_parser

    found = 0
    for s in _steps():
        for line in s.get("run", "").splitlines():
            if not line.strip().startswith("rmxbench "):
                continue
            cmd = re.split(r"\s+2>&1|\s+\|", line.strip()[len("rmxbench "):])[0]
            argv = shlex.split(cmd.replace('"$spec"', "specs/tiny.yaml").replace(
                '"$RUNNER_TEMP/rmxbench-home"', "/tmp/x").replace("specs/*.yaml", "specs/tiny.yaml"))
            parser = build_parser(argv[0])
            args = parser.parse_args(argv)  # raises SystemExit on an unknown command or option
            assert args._command == argv[0]
            found += 1
    assert found == 2


def test_shell_steps_run_here_and_fill_the_summary(tmp_path):
    """Run the workflow's shell steps (all but the install) in order, as GitHub would, for two specs."""
    summary, temp = tmp_path / "summary.md", tmp_path / "runner"
    temp.mkdir()
    root = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.split()
    if not root:
        pytest.skip("not a git checkout")
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary), "RUNNER_TEMP": str(temp), "BASE_SHA": root[0],
           "PYTHONPATH": str(REPO), "RMXBENCH_THREADS": "1"}
    for s in _steps():
        if "run" not in s or "Install" in s.get("name", ""):
            continue
        step_env = {**env, **{k: str(v) for k, v in (s.get("env") or {}).items() if "${{" not in str(v)}}
        if "Dry-run" in s["name"]:  # the changed-spec list of a PR that touches these two
            (temp / "changed-specs.txt").write_text("specs/tiny.yaml\nspecs/qwen25.yaml\n")
        r = subprocess.run(["bash", "-e", "-c", s["run"]], cwd=REPO, env=step_env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, (s["name"], r.stdout[-2000:], r.stderr[-2000:])
        if s["name"] == "Changed specs":
            listed = (temp / "changed-specs.txt").read_text().split()
            assert listed and all(p.startswith("specs/") and (REPO / p).is_file() for p in listed)
    text = summary.read_text()
    assert "## rmxbench validate" in text and "OK   specs/tiny.yaml" in text
    assert "## rmxbench run specs/tiny.yaml --dry-run" in text and "## rmxbench run specs/qwen25.yaml --dry-run" in text
    assert text.count("cost estimate on") == 2
    assert "1 x RTX-Pro-6000 at $1.89/GPU-h" in text and "qwen2.5-32b-rmx" in text
    assert re.search(r"estimated total: .*GPU-h, \$[0-9.,]+", text)
