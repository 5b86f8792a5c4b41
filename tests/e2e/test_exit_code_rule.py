"""One exit code per kind of mistake, across commands (docs/reference.md, "Exit codes"):
2 for usage only (an unknown option or command, a missing argument, options that exclude
each other); 78 for any missing or invalid value, whether it fails to parse or is out of
range, and for a ledger that does not exist, in every command that reads one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.runs import run_nhi

pytestmark = pytest.mark.e2e
ROLE = "arn:aws:iam::111122223333:role/deploy"
PROVIDER = "projects/123456789/locations/global/workloadIdentityPools/ci-pool/providers/github"
ACCOUNT = "deployer@my-project.iam.gserviceaccount.com"


def _run(*options: str) -> list[str]:
    return ["run", "--dry-run", *options, "--", "true"]


# (what, a value that does not parse, a value out of range): the same option both times.
VALUES = [
    ("--aws-duration", _run("--aws-role-arn", ROLE, "--aws-duration", "abc"),
     _run("--aws-role-arn", ROLE, "--aws-duration", "5")),
    ("--gcp-lifetime", _run("--gcp-provider", PROVIDER, "--gcp-service-account", ACCOUNT,
                            "--gcp-lifetime", "ten"),
     _run("--gcp-provider", PROVIDER, "--gcp-service-account", ACCOUNT, "--gcp-lifetime", "0")),
    ("--timeout", _run("--aws-role-arn", ROLE, "--timeout", "1m"),
     _run("--aws-role-arn", ROLE, "--timeout", "0")),
    ("--refresh-margin", _run("--aws-role-arn", ROLE, "--serve", "--refresh-margin", "x"),
     _run("--aws-role-arn", ROLE, "--serve", "--refresh-margin", "900")),
    ("audit show --since", ["audit", "show", "{ledger}", "--since", "yesterday"],
     ["audit", "show", "{ledger}", "--since", "2026-13-01"]),
    ("audit pipelines --fail-on", ["audit", "pipelines", "{folder}", "--fail-on", "bogus"],
     ["audit", "pipelines", "{folder}", "--fail-on", "7"]),
    ("audit trace --fail-on", ["audit", "trace", "{ledger}", "--fail-on", "bogus"],
     ["audit", "trace", "{ledger}", "--fail-on", "3"]),
    ("sandbox --cloud", ["sandbox", "--cloud", "moon", "--", "true"],
     ["sandbox", "--cloud", ",", "--", "true"]),
    ("completion SHELL", ["completion", "tcsh"], ["completion", "3"]),
]  # fmt: skip


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text("")
    folder = tmp_path / "repo" / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "ci.yml").write_text("on: push\njobs:\n  a:\n    runs-on: x\n    steps: []\n")
    return {"ledger": str(ledger), "folder": str(tmp_path / "repo")}


@pytest.mark.parametrize(("what", "unparsable", "out_of_range"), VALUES, ids=[v[0] for v in VALUES])
def test_a_value_that_does_not_parse_and_one_out_of_range_both_exit_78(
    base_env: dict[str, str],
    places: dict[str, str],
    what: str,
    unparsable: list[str],
    out_of_range: list[str],
) -> None:
    for args in (unparsable, out_of_range):
        result = run_nhi([a.format(**places) for a in args], base_env)
        assert result.code == 78, (args, result.stderr)
        (line,) = result.stderr.splitlines()
        assert line.startswith("nhi-invoke: error: ")
        assert "; fix: " in line
        assert what.rsplit(maxsplit=1)[-1].lower() in line.lower()  # it names the option


def test_a_bad_value_from_a_variable_is_the_same_mistake_as_from_a_flag(
    base_env: dict[str, str],
) -> None:
    for value in ("abc", "5"):
        result = run_nhi(_run("--aws-role-arn", ROLE), base_env | {"NHI_AWS_DURATION": value})
        assert result.code == 78, result.stderr
        assert "NHI_AWS_DURATION" in result.stderr or "--aws-duration" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "verify", "{missing}"],
        ["audit", "show", "{missing}"],
        ["revoke", "--ledger", "{missing}"],
        ["audit", "verify"],  # the default ledger (NHI_LEDGER) is missing too
        ["audit", "show"],
        ["revoke"],
    ],
    ids=" ".join,
)
def test_a_missing_ledger_exits_78_in_every_command_that_reads_one(
    base_env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    missing = str(tmp_path / "nowhere" / "ledger.jsonl")
    env = base_env | {"NHI_LEDGER": missing}
    result = run_nhi([a.format(missing=missing) for a in args], env)
    assert result.code == 78, result.stderr
    assert missing in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--no-such-option", "--", "true"],  # unknown option
        ["sandbox", "--clouds", "aws"],
        ["deploy"],  # unknown command
        ["audit", "verfy"],
        ["run", "--dry-run", "--aws-role-arn", ROLE],  # missing argument: the command
        ["completion"],
        ["run", "--aws-role-arn"],  # an option without its value
        ["audit", "trust-policy"],  # FILE or --role: one is needed
        ["audit", "trust-policy", "p.json", "--role", "deploy"],  # they exclude each other
    ],
    ids=" ".join,
)
def test_usage_mistakes_exit_2(base_env: dict[str, str], args: list[str]) -> None:
    result = run_nhi(args, base_env)
    assert result.code == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("nhi-invoke: error: ")
    assert "; fix: " in line


def test_a_missing_default_ledger_points_to_the_sandboxs(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    (state / "nhi-invoke").mkdir(parents=True)
    (state / "nhi-invoke" / "sandbox-ledger.jsonl").write_text("")
    result = run_nhi(["audit", "show"], base_env | {"XDG_STATE_HOME": str(state)})
    assert result.code == 78
    assert f"the sandbox's is {state}/nhi-invoke/sandbox-ledger.jsonl" in result.stderr
