"""The invocation's summary for a CI's job page (markdown): names and times, never a secret."""

from __future__ import annotations

from nhi_invoke.brokers.grants import Grant, Release
from nhi_invoke.figures import moment
from nhi_invoke.plan import Plan


def _md(text: str) -> str:
    """Text safe inside a markdown table cell and code span."""
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def _ended(release: Release) -> str:
    if release.revoked:
        return f"revoked ({release.method.replace('-', ' ')})"
    if release.failure is None:
        return "expiring (cannot be revoked)"
    return "expiring (revocation failed)"


def markdown(
    plan: Plan, ended: list[tuple[Grant, Release]], exit_code: int, head: str | None
) -> str:
    lines = [
        f"### nhi-invoke: `{_md(plan.step_id)}` (invocation `{plan.invocation_id}`, "
        f"exit {exit_code})",
        "",
        "| credential | principal | expires | ended |",
        "|---|---|---|---|",
    ]
    for grant, release in ended:
        lines.append(
            f"| {grant.broker} {grant.purpose} | `{_md(grant.principal)}` | "
            f"{moment(grant.expires_at)} | {_ended(release)} |"
        )
    lines += [
        "",
        f"Ledger head `{head}`: check it with `nhi-invoke audit verify --head {head}`.",
        "",
    ]
    return "\n".join(lines)
