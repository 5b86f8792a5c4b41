"""Shell completion: `nhi-invoke completion bash|zsh|fish` prints the script, and the script's
call back into nhi-invoke completes commands and options (bash through bash itself)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.e2e.runs import NHI, run_nhi

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o default -F _nhi_invoke_completion nhi-invoke"),
        ("zsh", "compdef _nhi_invoke_completion nhi-invoke"),
        ("fish", "complete --command nhi-invoke"),
    ],
)
def test_the_completion_script_prints_for_each_shell(
    base_env: dict[str, str], shell: str, marker: str
) -> None:
    result = run_nhi(["completion", shell], base_env)
    assert result.code == 0, result.stderr
    assert marker in result.stdout
    assert "_NHI_INVOKE_COMPLETE=complete_" + shell in result.stdout


def test_an_unknown_shell_is_a_configuration_error(base_env: dict[str, str]) -> None:
    result = run_nhi(["completion", "tcsh"], base_env)
    assert result.code == 78
    assert "use one of bash, zsh, fish" in result.stderr


def _bash_completes(words: list[str], base_env: dict[str, str]) -> list[str]:
    """What bash offers after `words` (the last one being typed), through the printed script
    and no interactive shell."""
    script = run_nhi(["completion", "bash"], base_env).stdout
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
        '_nhi_invoke_completion nhi-invoke; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", program],
        env=base_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.split()


def test_bash_completes_a_run_option_a_command_and_a_subcommand(
    base_env: dict[str, str],
) -> None:
    assert _bash_completes(["nhi-invoke", "run", "--aws-ro"], base_env) == ["--aws-role-arn"]
    assert _bash_completes(["nhi-invoke", "sa"], base_env) == ["sandbox"]
    assert _bash_completes(["nhi-invoke", "audit", "tr"], base_env) == ["trust-policy", "trace"]


@pytest.mark.parametrize(
    ("shell", "extra"),
    [
        ("zsh", {}),
        ("fish", {"_TYPER_COMPLETE_FISH_ACTION": "get-args"}),
    ],
)
def test_zsh_and_fish_get_the_same_answers_through_their_protocol(
    base_env: dict[str, str], shell: str, extra: dict[str, str]
) -> None:
    # What the zsh and fish scripts send (the shells themselves are not installed here).
    done = subprocess.run(
        [NHI],
        env=base_env
        | extra
        | {
            "_NHI_INVOKE_COMPLETE": f"complete_{shell}",
            "_TYPER_COMPLETE_ARGS": "nhi-invoke run --gcp-life",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--gcp-lifetime" in done.stdout
    assert "--aws-role-arn" not in done.stdout
