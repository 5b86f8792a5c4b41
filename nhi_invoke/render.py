"""Everything drawn for a person (rich tables) or a program (JSON)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from nhi_invoke.plan import Plan

if TYPE_CHECKING:
    from nhi_invoke.audit.show import InvocationRow
    from nhi_invoke.invocation.recovery import Outcome
    from nhi_invoke.tokeninfo import TokenReport


def _console() -> Any:
    """A rich console; off a terminal (CI logs) wide enough that tables do not fold."""
    from rich.console import Console  # noqa: PLC0415

    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160, soft_wrap=False)


def plan(plan: Plan, *, as_json: bool, known: tuple[str, ...]) -> None:
    """Print the plan of `run --dry-run`; `known`: every broker's name (JSON has a key each)."""
    if as_json:
        print(json.dumps(plan.as_dict(known), indent=2))
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
                f"re-issued with less than {plan.refresh_margin_seconds} s "
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
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)


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


def token(report: TokenReport) -> None:
    """Print `nhi-invoke token`'s report: claims and checks, never the token."""
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title="OIDC token (unverified claims)", show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    for key, value in token_dict(report).items():
        if key == "claims":
            for claim, claim_value in report.claims.items():
                table.add_row(claim, escape(json.dumps(claim_value)))
        else:
            table.add_row(key, escape(str(value)))
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
    for column in (
        "invocation",
        "step",
        "CI run",
        "principal(s)",
        "issued",
        "expires",
        "exit",
        "ended",
        "exposure",
    ):
        table.add_column(column, overflow="fold")
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
                    "-" if exposure is None else f"{exposure:g} s",
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
    return stamp[5:19].replace("T", " ") if stamp else "-"
