"""Everything drawn for a person (rich tables) or a program (JSON)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nhi_invoke.figures import duration, epoch
from nhi_invoke.plan import Plan

if TYPE_CHECKING:
    from nhi_invoke.audit.show import InvocationRow
    from nhi_invoke.invocation.recovery import Outcome
    from nhi_invoke.tokeninfo import TokenReport


def _console() -> Any:
    """A rich console; off a terminal (CI logs) wide enough that tables do not fold, unless
    COLUMNS says how wide to draw."""
    from rich.console import Console  # noqa: PLC0415

    chosen = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(file=sys.stdout, width=None if chosen else 160, soft_wrap=False)


def envelope(command: str, body: Mapping[str, Any], *, indent: int | None = 2) -> str:
    """The one JSON shape of every command's --json: an object with the command, nhi-invoke's
    version, then the command's own keys."""
    from nhi_invoke import __version__  # noqa: PLC0415

    return json.dumps({"command": command, "version": __version__, **body}, indent=indent)


def plan(plan: Plan, *, as_json: bool, known: tuple[str, ...]) -> None:
    """Print the plan of `run --dry-run`; `known`: every broker's name (JSON has a key each)."""
    if as_json:
        planned = plan.as_dict(known)
        # The envelope's "command" is "run"; the command the plan would run is "argv".
        planned["argv"] = planned.pop("command")
        print(envelope("run", {"dry_run": True, **planned}))
        return
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(
        title=f"nhi-invoke plan (dry run): invocation {plan.invocation_id}",
        show_header=False,
        title_justify="left",
    )
    table.add_column("", style="bold", no_wrap=True)
    # Fold long ARNs and URLs rather than cut them: a plan must show every character.
    table.add_column("", overflow="fold")
    rows: list[tuple[str, str]] = [
        ("step", f"{plan.step_id}  (from {plan.step_source})"),
        ("CI", ", ".join(f"{k}={v}" for k, v in plan.ci.as_dict().items())),
        ("OIDC token", plan.token_source),
    ]
    for part in plan.brokers:
        rows += part.rows()
    rows += [("ends", f"{credential}: {ending}") for credential, ending in plan.endings]
    if plan.serve:
        rows.append(
            (
                "serving",
                "credentials on 127.0.0.1 behind a random path (and token), "
                f"re-issued with less than {duration(plan.refresh_margin_seconds)} "
                "left, stopped when the command exits",
            )
        )
    rows += [
        ("child env set", ", ".join(plan.env_set)),
        ("child env removed", ", ".join(plan.env_removed) or "(none inherited)"),
        ("command", " ".join(plan.command)),
        ("ledger", plan.ledger_path),
    ]
    for key, value in rows:
        table.add_row(key, escape(value))
    console = _console()
    console.print(table)
    for warning in plan.warnings:
        # One line each, however long: a warning is read (and grepped) whole.
        console.print(
            f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True
        )


def token_dict(report: TokenReport) -> dict[str, Any]:
    return {
        "source": report.source,
        "claims": dict(report.claims),
        "alg": report.algorithm,
        "kid": report.key_id,
        "fingerprint": report.fingerprint,
        "expires_in_seconds": report.expires_in_seconds,
        "checks": "passed" if report.problem is None else report.problem.message,
        "signature": report.signature or "not checked (pass --verify)",
    }


# JWT NumericDate claims (seconds since 1970): shown as times.
_TIME_CLAIMS = ("iat", "nbf", "exp", "auth_time")


def _claim(name: str, value: Any) -> str:
    if name in _TIME_CLAIMS and isinstance(value, int | float) and not isinstance(value, bool):
        return epoch(value)
    return value if isinstance(value, str) else json.dumps(value)


def _expiry(report: TokenReport) -> str:
    left = report.expires_in_seconds
    if left is None:
        return "missing: the token has no 'exp' claim"
    return f"in {duration(left)}" if left >= 0 else f"{duration(-left)} ago"


def token(report: TokenReport) -> None:
    """Print `nhi-invoke token`'s report: claims and checks, never the token."""
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    # The claims are trusted only when the signature was checked against the issuer's keys.
    verified = report.signature is not None and report.signature.startswith("valid")
    title = (
        "OIDC token (claims, signature verified)" if verified else "OIDC token (unverified claims)"
    )
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    rows = [("source", report.source)]
    rows += [(claim, _claim(claim, value)) for claim, value in report.claims.items()]
    rows += [
        ("algorithm", report.algorithm or "none"),
        ("key id", report.key_id or "none (the header has no 'kid')"),
        ("fingerprint", report.fingerprint),
        ("expires", _expiry(report)),
        ("checks", "passed" if report.problem is None else report.problem.message),
        ("signature", report.signature or "not checked (pass --verify)"),
    ]
    for key, value in rows:
        table.add_row(key, escape(value))
    _console().print(table)


def outcome_dict(outcome: Outcome) -> dict[str, Any]:
    return {
        "invocation_id": outcome.invocation_id,
        "principal": outcome.principal,
        "action": outcome.action,
        "detail": outcome.detail,
    }


def outcomes(results: list[Outcome]) -> None:
    """Print what `nhi-invoke revoke` did, one row per credential."""
    if not results:
        print("nhi-invoke revoke: no open credential in the ledger")
        return
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title="nhi-invoke revoke", title_justify="left")
    for column in ("invocation", "principal", "action", "detail"):
        table.add_column(column)
    for result in results:
        table.add_row(
            *(
                escape(v)
                for v in (result.invocation_id, result.principal, result.action, result.detail)
            )
        )
    _console().print(table)


def invocations(rows: list[InvocationRow]) -> None:
    """Print `nhi-invoke audit show`: one row per invocation."""
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title="nhi-invoke ledger", title_justify="left")
    # Ids, times and figures are read whole; names fold when the terminal is narrow.
    for column, folds in (
        ("invocation", False),
        ("step", True),
        ("CI run", True),
        ("principal(s)", True),
        ("issued", False),
        ("expires", False),
        ("exit", False),
        ("ended", False),
        ("exposure", False),
    ):
        table.add_column(column, overflow="fold", no_wrap=not folds)
    for row in rows:
        children = [c for c in row.credentials if c.purpose == "child"]
        exposure = row.exposure_seconds
        table.add_row(
            *(
                escape(v)
                for v in (
                    row.invocation_id,
                    _step(row),
                    row.ci_run,
                    "\n".join(c.shown_principal for c in children) or "-",
                    _short_time(min((c.issued for c in children), default="")),
                    _short_time(max((c.expires_at for c in children), default="")),
                    "-" if row.exit_code is None else _exit(row),
                    row.ended,
                    "-" if exposure is None else duration(exposure),
                )
            )
        )
    _console().print(table)


def _exit(row: InvocationRow) -> str:
    """The exit code, and how a Python API block ended when it did not return."""
    shown = str(row.exit_code)
    return f"{shown} ({row.ended_by})" if row.ended_by not in (None, "return") else shown


def _step(row: InvocationRow) -> str:
    """The step, and the agent and user of a task."""
    task = row.task
    if task is None or (task.agent is None and task.on_behalf_of is None):
        return row.step_id
    who = " ".join(
        part
        for part in (
            f"by {task.agent}" if task.agent else "",
            f"for {task.on_behalf_of}" if task.on_behalf_of else "",
        )
        if part
    )
    return f"{row.step_id}\n{who}"


def _short_time(stamp: str) -> str:
    """A ledger's RFC 3339 time (milliseconds) as ISO 8601 to the second."""
    return stamp[:19] + "Z" if stamp else "-"
