"""GitHub Actions: the runner's token-request protocol and the run's context."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import urllib.parse
from collections.abc import Mapping

from nhi_invoke import net
from nhi_invoke.ci.interface import CIContext, Reporting, env_value
from nhi_invoke.errors import ConfigError, UnavailableError
from nhi_invoke.retry import Retryable, RetryPolicy, call_with_retries

REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 - a variable name
OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _is_fork_pull_request(environ: Mapping[str, str]) -> bool:
    if environ.get("GITHUB_EVENT_NAME") not in ("pull_request", "pull_request_review"):
        return False
    path = env_value(environ, "GITHUB_EVENT_PATH")
    if path is None:
        return False
    try:
        with open(path, encoding="utf-8") as handle:
            event = json.load(handle)
        head_repo = event["pull_request"]["head"]["repo"]
        return bool(head_repo.get("fork")) or head_repo.get("full_name") != environ.get(
            "GITHUB_REPOSITORY"
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


class GitHubActions:
    name = "github"

    def context(self, environ: Mapping[str, str]) -> CIContext | None:
        if environ.get("GITHUB_ACTIONS") != "true":
            return None
        action = env_value(environ, "GITHUB_ACTION")
        # GITHUB_ACTION is the step's `id:`, or `__run`, `__run_2`, `__owner_repo` when the
        # step has none; only a real id names the step.
        step = action if action and not action.startswith("__") else None
        return CIContext(
            provider=self.name,
            repository=env_value(environ, "GITHUB_REPOSITORY"),
            run_id=env_value(environ, "GITHUB_RUN_ID"),
            run_attempt=env_value(environ, "GITHUB_RUN_ATTEMPT"),
            job=env_value(environ, "GITHUB_JOB"),
            step=step,
            ref=env_value(environ, "GITHUB_REF"),
            sha=env_value(environ, "GITHUB_SHA"),
            actor=env_value(environ, "GITHUB_ACTOR"),
            workflow=env_value(environ, "GITHUB_WORKFLOW_REF"),
            token_variables=(REQUEST_URL, REQUEST_TOKEN),
        )

    def fetch_token(self, environ: Mapping[str, str], audience: str, policy: RetryPolicy) -> str:
        url = env_value(environ, REQUEST_URL)
        bearer = env_value(environ, REQUEST_TOKEN)
        if url is None or bearer is None:
            if _is_fork_pull_request(environ):
                raise ConfigError(
                    "GitHub gives no OIDC token to workflows run for a pull request from a fork",
                    "skip this step for forks (if: github.event.pull_request.head.repo.fork "
                    "== false); never widen the trust to pull_request_target",
                )
            raise ConfigError(
                f"GitHub Actions did not provide {REQUEST_URL}/{REQUEST_TOKEN}: the job may "
                "not request OIDC tokens",
                "add 'permissions: id-token: write' to the job (and 'contents: read')",
            )
        # The URL already carries '?api-version=…'; the audience is one more parameter.
        separator = "&" if urllib.parse.urlsplit(url).query else "?"
        full_url = f"{url}{separator}audience={urllib.parse.quote(audience, safe='')}"
        headers = {"Authorization": f"bearer {bearer}", "Accept": "application/json"}

        def attempt() -> str:
            resp = net.request("GET", full_url, headers=headers)
            if resp.retryable:
                raise Retryable(f"HTTP {resp.status} from the GitHub token endpoint")
            if resp.status != 200:
                raise ConfigError(
                    f"the GitHub token endpoint refused the request (HTTP {resp.status})",
                    "check the job has 'permissions: id-token: write' and the step has not "
                    "overwritten ACTIONS_ID_TOKEN_REQUEST_*",
                )
            try:
                value = json.loads(resp.body)["value"]
            except (ValueError, KeyError, TypeError) as exc:
                raise Retryable("a malformed answer from the GitHub token endpoint", exc) from exc
            if not isinstance(value, str) or not value:
                raise Retryable("an empty token from the GitHub token endpoint")
            return value

        host = urllib.parse.urlsplit(url).hostname
        return call_with_retries(
            attempt,
            policy,
            on_give_up=lambda failure, tries: UnavailableError(
                f"could not get an OIDC token from GitHub ({host}) after {tries} tries: "
                f"{failure.what}",
                # A proxy that is down is the runner's network, not GitHub's.
                "check that proxy, or exempt the host in NO_PROXY"
                if " the proxy " in f" {failure.what}"
                else "re-run the job; if it persists, check githubstatus.com",
            ),
        )

    def reporting(self, environ: Mapping[str, str]) -> Reporting:
        return GitHubReporting(environ)


# Whether this process's stdout is nhi-invoke's own (the CLI's `run`): only then does a
# redirected stdout mean the step's output file. An embedding host (the Python API) owns its
# stdout, whatever it points at.
STDOUT_IS_OURS: list[bool] = [False]


def claim_stdout() -> None:
    """Called by the CLI: this process's stdout is nhi-invoke's."""
    STDOUT_IS_OURS[0] = True


def _escaped(data: str) -> str:
    """A workflow command's data, escaped as @actions/core's escapeData does."""
    return data.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


class GitHubReporting:
    """Workflow commands on stdout (masking), and the job's summary and output files."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self._to_file: bool | None = None  # stdout redirected to a file: decided once

    def mask(self, value: str, *, own_line: bool = False) -> None:
        """Register a secret with the runner so that it is masked in every later log line."""
        if self._stdout_is_a_file():
            return  # the runner reads none of it, and the file would hold the secret
        # Workflow commands are read from stdout; one line each, so mask line by line. The
        # runner unescapes a command's data (%25, %0D, %0A), so it is escaped as the
        # toolkit's setSecret does: else "a%25b" would be registered as "a%b".
        lines = [f"::add-mask::{_escaped(line)}\n" for line in value.splitlines() if line.strip()]
        sys.stdout.write(("\n" if own_line and lines else "") + "".join(lines))
        sys.stdout.flush()

    def _stdout_is_a_file(self) -> bool:
        """`nhi-invoke run … > out.json`: the mask lines would write every secret into the
        file, where no runner hides them. Said once, on stderr, without a secret."""
        if self._to_file is None and not STDOUT_IS_OURS[0]:
            self._to_file = False
        if self._to_file is None:
            try:
                self._to_file = stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode)
            except (OSError, ValueError):  # no descriptor (an embedding host's stream)
                self._to_file = False
            if self._to_file:
                print(
                    "nhi-invoke: warning: stdout is a file, so the credentials are not "
                    "registered with ::add-mask:: (that would write them into it); to keep a "
                    "command's output, redirect inside it: nhi-invoke run -- sh -c 'cmd > file'",
                    file=sys.stderr,
                    flush=True,
                )
        return self._to_file

    def write_summary(self, markdown: str) -> None:
        path = env_value(self.environ, "GITHUB_STEP_SUMMARY")
        if path is None:
            return
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown)

    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        """Append the outputs in the multi-line-safe form (`name<<DELIMITER`), each value on
        one line of its own: a value with a line break, or a name GitHub would not take, is
        refused and nothing is written."""
        path = env_value(self.environ, "GITHUB_OUTPUT")
        if path is None:
            return
        for name, value in outputs.items():
            if not OUTPUT_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a step output name")
            if not value.isprintable():
                raise ValueError(f"the value of {name} is not one printable line")
        delimiter = f"ghadelimiter_{os.urandom(16).hex()}"
        text = "".join(f"{n}<<{delimiter}\n{v}\n{delimiter}\n" for n, v in outputs.items())
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
