"""Runs the composite action's steps the way the GitHub runner does.

The runner substitutes `${{ inputs.* }}`, `${{ steps.*.outputs.* }}` and
`${{ github.action_path }}` into each step's `env:` and `run:`, runs `run:` with
`bash --noprofile --norc -eo pipefail`, gives each step a fresh `$GITHUB_OUTPUT` file and
collects `key=value` lines from it. `actions/setup-python` cannot run here; its one output,
`python-path`, is this interpreter.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


@dataclass
class ActionRun:
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""
    exit_code: int = 0
    step_outputs: dict[str, dict[str, str]] = field(default_factory=dict)


def _read_outputs(path: Path) -> dict[str, str]:
    outputs: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line and "=" not in line.split("<<")[0]:  # name<<DELIMITER multi-line form
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, index + 1)
            outputs[name] = "\n".join(lines[index + 1 : end])
            index = end + 1
            continue
        name, _, value = line.partition("=")
        outputs[name] = value
        index += 1
    return outputs


def run_action(
    action_dir: Path, inputs: dict[str, str], env: dict[str, str], workdir: Path
) -> ActionRun:
    spec: dict[str, Any] = yaml.safe_load((action_dir / "action.yml").read_text())
    values = {name: str(given.get("default", "")) for name, given in spec["inputs"].items()}
    unknown = set(inputs) - set(values)
    assert not unknown, f"not inputs of the action: {unknown}"
    values.update(inputs)
    result = ActionRun()

    def substitute(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("inputs."):
                return values[expression.removeprefix("inputs.")]
            if expression == "github.action_path":
                return str(action_dir)
            if expression.startswith("steps."):
                step_id, _, name = expression.removeprefix("steps.").partition(".outputs.")
                return result.step_outputs.get(step_id, {}).get(name, "")
            raise AssertionError(f"the harness does not know ${{{{ {expression} }}}}")

        return EXPRESSION.sub(one, text)

    for index, step in enumerate(spec["runs"]["steps"]):
        step_id = step.get("id", f"step{index}")
        if "uses" in step:
            assert PINNED.match(step["uses"].split("#")[0].strip()), step["uses"]
            assert step["uses"].startswith("actions/setup-python@")
            result.step_outputs[step_id] = {"python-path": sys.executable}
            continue
        output_file = workdir / f"output-{step_id}"
        step_env = env | {k: substitute(str(v)) for k, v in (step.get("env") or {}).items()}
        step_env |= {"GITHUB_ACTION_PATH": str(action_dir), "GITHUB_OUTPUT": str(output_file)}
        script = workdir / f"step-{step_id}.sh"
        script.write_text(substitute(step["run"]))
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            env=step_env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=workdir,
        )
        result.log += done.stdout + done.stderr
        result.step_outputs[step_id] = _read_outputs(output_file)
        if done.returncode != 0:
            result.exit_code = done.returncode
            break
    result.outputs = {
        name: substitute(str(out["value"])) for name, out in spec.get("outputs", {}).items()
    }
    return result
