"""Everything drawn for a person (rich tables) or a program (JSON)."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

from nhi_invoke.plan import AwsPlan, GcpPlan, Plan

if TYPE_CHECKING:
    from nhi_invoke.audit.show import InvocationRow
    from nhi_invoke.clouds.interface import Grant, Release
    from nhi_invoke.recovery import Outcome
    from nhi_invoke.tokeninfo import TokenReport


def _console() -> Any:
    """A rich console; off a terminal (CI logs) wide enough that tables do not fold."""
    from rich.console import Console  # noqa: PLC0415

    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160, soft_wrap=False)


def plan_dict(plan: Plan) -> dict[str, Any]:
    """The plan as plain data: names and decisions, never a secret (it holds none)."""
    data = dataclasses.asdict(plan)
    if plan.aws is not None:
        data["aws"]["tags"] = {t.key: t.value for t in plan.aws.tags}
        data["aws"]["chained"] = plan.aws.chained
    if plan.gcp is not None:
        data["gcp"]["sts_audience"] = plan.gcp.sts_audience
    data["ci"] = plan.ci.as_dict()
    data["clouds"] = list(plan.clouds)
    data["endings"] = [{"credential": c, "ends": e} for c, e in plan.endings]
    return data


def _aws_rows(aws: AwsPlan) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [("AWS OIDC audience", aws.audience)]
    if aws.chained:
        rows.append(
            (
                "AWS hop 1",
                f"AssumeRoleWithWebIdentity -> {aws.entry_role_arn} "
                f"({aws.entry_duration_seconds} s, used by nhi-invoke only)",
            )
        )
        rows.append(("AWS hop 2", f"AssumeRole -> {aws.role_arn} ({aws.duration_seconds} s)"))
    else:
        rows.append(
            ("AWS hop", f"AssumeRoleWithWebIdentity -> {aws.role_arn} ({aws.duration_seconds} s)")
        )
    rows += [
        ("AWS session name", aws.session_name),
        ("AWS STS", f"{aws.sts_endpoint} ({aws.region})"),
    ]
    if aws.tags:
        rows.append(("AWS session tags", ", ".join(f"{t.key}={t.value}" for t in aws.tags)))
        rows.append(("AWS transitive", ", ".join(aws.transitive_tag_keys)))
    if aws.source_identity:
        rows.append(("AWS SourceIdentity", aws.source_identity))
    if aws.session_policy:
        rows.append(("AWS session policy", f"{len(aws.session_policy)} characters"))
    if aws.policy_arns:
        rows.append(("AWS policy ARNs", ", ".join(aws.policy_arns)))
    rows.append(
        (
            "AWS revocation",
            f"deny policy nhi-revoked-<expiry>-<hash> on {aws.role_arn.rsplit('/', 1)[-1]}, put by "
            "the entry session when the command ends, naming only this session"
            if aws.revokes
            else f"none: the session expires {aws.duration_seconds} s after issue (add "
            "--aws-revoke to deny it when the command ends)",
        )
    )
    return rows


def _gcp_rows(gcp: GcpPlan) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [
        ("GCP OIDC audience", gcp.audience),
        ("GCP exchange", f"STS {gcp.sts_endpoint}/v1/token for {gcp.sts_audience}"),
    ]
    if gcp.service_account:
        rows.append(
            (
                "GCP impersonation",
                f"generateAccessToken -> {gcp.service_account} ({gcp.lifetime_seconds} s)",
            )
        )
        lifetime = f"{gcp.lifetime_seconds} s after issue"
    else:
        rows.append(("GCP impersonation", "none: the federated token is handed over"))
        lifetime = "when the OIDC token's lifetime allows (up to 1 h)"
    rows += [
        ("GCP scopes", ", ".join(gcp.scopes)),
        (
            "GCP attribution",
            f"X-Goog-Request-Reason: {gcp.request_reason} (GCP has no caller-chosen session name)",
        ),
        ("GCP revocation", f"none: GCP access tokens cannot be revoked; they expire {lifetime}"),
    ]
    if gcp.project:
        rows.append(("GCP project", gcp.project))
    return rows


def plan(plan: Plan, *, as_json: bool) -> None:
    """Print the plan of `run --dry-run`."""
    if as_json:
        print(json.dumps(plan_dict(plan), indent=2))
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
    if plan.aws is not None:
        rows += _aws_rows(plan.aws)
    if plan.gcp is not None:
        rows += _gcp_rows(plan.gcp)
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


def _md(text: str) -> str:
    """Text safe inside a markdown table cell and code span."""
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def job_summary(
    plan: Plan, ended: list[tuple[Grant, Release]], exit_code: int, head: str | None
) -> str:
    """The markdown appended to $GITHUB_STEP_SUMMARY: names and times, never a secret."""
    lines = [
        f"### nhi-invoke: `{_md(plan.step_id)}` (invocation `{plan.invocation_id}`, "
        f"exit {exit_code})",
        "",
        "| credential | principal | expires | ended |",
        "|---|---|---|---|",
    ]
    for grant, release in ended:
        how = (
            "revoked (deny policy)"
            if release.method != "expire"
            else "expiring (cannot be revoked)"
            if release.failure is None
            else "expiring (revocation failed)"
        )
        lines.append(
            f"| {grant.cloud} {grant.purpose} | `{_md(grant.principal)}` | "
            f"{grant.expires_at:%Y-%m-%d %H:%M:%S}Z | {how} |"
        )
    lines += [
        "",
        f"Ledger head `{head}`: check it with `nhi-invoke audit verify --head {head}`.",
        "",
    ]
    return "\n".join(lines)


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
                    row.step_id,
                    row.ci_run,
                    "\n".join(_short_principal(c.principal) for c in children) or "-",
                    _short_time(min((c.issued for c in children), default="")),
                    _short_time(max((c.expires_at for c in children), default="")),
                    "-" if row.exit_code is None else str(row.exit_code),
                    row.ended,
                    "-" if exposure is None else f"{exposure:g} s",
                )
            )
        )
    _console().print(table)


def _short_principal(principal: str) -> str:
    # arn:aws:sts::123456789012:assumed-role/ROLE/SESSION -> assumed-role/ROLE/SESSION
    return principal.split(":", 5)[-1] if principal.startswith("arn:") else principal


def _short_time(stamp: str) -> str:
    return stamp[5:19].replace("T", " ") if stamp else "-"
