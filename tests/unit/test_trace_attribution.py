"""`audit trace`'s attribution rules, one behaviour per test, on invocations built by hand."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from nhi_invoke.audit.trace.attribution import attribute
from nhi_invoke.audit.trace.findings import Findings, count, exit_code
from nhi_invoke.audit.trace.model import (
    AwsIdentity,
    CiRun,
    Credential,
    GcpIdentity,
    Invocation,
    LogEvent,
    TracedEvent,
    VaultIdentity,
)
from nhi_invoke.errors import ConfigError

T0 = datetime(2026, 12, 3, 9, 0, 0, 250000, tzinfo=UTC)
ENTRY_ROLE = "arn:aws:iam::123456789012:role/ci-entry"
TARGET_ROLE = "arn:aws:iam::123456789012:role/deploy"
SA = "deployer@proj.iam.gserviceaccount.com"
FEDERATED = "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/repo:o/r:ref:refs/heads/main"


def session_arn(role: str, session: str) -> str:
    return f"arn:aws:sts::123456789012:assumed-role/{role.rsplit('/', 1)[1]}/{session}"


def aws_invocation(
    invocation_id: str, start: datetime, *, runs: float = 30, chained: bool = True
) -> Invocation:
    session = f"deploy.1-1.{invocation_id}"
    credentials = []
    if chained:
        credentials.append(
            Credential(
                cloud="aws",
                purpose="entry",
                principal=session_arn(ENTRY_ROLE, session),
                issued_at=start,
                expires_at=start + timedelta(seconds=900),
                fingerprint="sha256:entry-" + invocation_id,
                access_key_id=f"ASIAENTRY{invocation_id.upper():0>11}",
                session_name=session,
                role_arn=ENTRY_ROLE,
            )
        )
    credentials.append(
        Credential(
            cloud="aws",
            purpose="child",
            principal=session_arn(TARGET_ROLE, session),
            issued_at=start,
            expires_at=start + timedelta(seconds=900),
            fingerprint="sha256:child-" + invocation_id,
            access_key_id=f"ASIACHILD{invocation_id.upper():0>11}",
            session_name=session,
            role_arn=TARGET_ROLE,
            source_identity=invocation_id if chained else None,
        )
    )
    return Invocation(
        invocation_id=invocation_id,
        step_id="deploy",
        ledger="ledger.jsonl",
        started_at=start,
        command_ended_at=start + timedelta(seconds=runs),
        finished_at=start + timedelta(seconds=runs + 2),
        exit_code=0,
        ci=CiRun(provider="github", repository="o/r", run_id="1", run_attempt="1"),
        credentials=tuple(credentials),
    )


def aws_event(
    event_id: str,
    moment: datetime,
    *,
    key: str | None,
    principal: str,
    issuer: str | None = TARGET_ROLE,
    source_identity: str | None = None,
    name: str = "GetObject",
    requested: str | None = None,
    minted: str | None = None,
) -> LogEvent:
    return LogEvent(
        source="cloudtrail",
        event_id=event_id,
        event_time=moment.replace(microsecond=0),
        event_name=name,
        service="s3.amazonaws.com",
        resource=None,
        error_code=None,
        principal=principal,
        identity=AwsIdentity("AssumedRole", key, issuer, source_identity, requested, minted),
        whole_seconds=True,
    )


def only(traced: list[TracedEvent]) -> TracedEvent:
    assert len(traced) == 1, traced
    return traced[0]


A = aws_invocation("inva", T0)
CHILD_A = A.credentials[1]
ENTRY_A = A.credentials[0]


def test_a_call_is_tied_to_its_invocation_by_the_access_key() -> None:
    event = aws_event("e", T0 + timedelta(seconds=5), key=CHILD_A.access_key_id, principal="x")
    traced = only(attribute([event], [A], {}))
    assert (traced.invocation_id, traced.match, traced.after_end) == ("inva", "access-key", False)


def test_the_web_identity_exchange_is_tied_by_the_key_it_returned() -> None:
    event = aws_event(
        "e",
        T0,
        key=None,
        principal="token.actions.githubusercontent.com:sts.amazonaws.com:repo:o/r",
        issuer=None,
        name="AssumeRoleWithWebIdentity",
        requested=ENTRY_ROLE,
        minted=ENTRY_A.access_key_id,
    )
    assert (
        only(attribute([event], [A], {})).match,
        only(attribute([event], [A], {})).invocation_id,
    ) == (
        "minted",
        "inva",
    )


def test_a_session_chained_from_the_command_is_tied_by_its_source_identity() -> None:
    event = aws_event(
        "e",
        T0 + timedelta(seconds=3),
        key="ASIAUNKNOWN000000001",
        principal=session_arn("arn:aws:iam::123456789012:role/helper", "x"),
        issuer="arn:aws:iam::123456789012:role/helper",
        source_identity="inva",
    )
    traced = only(attribute([event], [A], {}))
    assert (traced.invocation_id, traced.match) == ("inva", "source-identity")


def test_a_record_without_a_key_is_tied_by_session_name_only_within_the_session() -> None:
    inside = aws_event("in", T0 + timedelta(seconds=10), key=None, principal=CHILD_A.principal)
    outside = aws_event("out", T0 + timedelta(seconds=901), key=None, principal=CHILD_A.principal)
    traced = {t.event.event_id: t for t in attribute([inside, outside], [A], {})}
    assert (traced["in"].invocation_id, traced["in"].match) == ("inva", "session-name")
    assert traced["out"].invocation_id is None
    assert traced["out"].unattributed


def test_sessions_the_command_assumed_itself_are_followed_hop_by_hop() -> None:
    helper = "arn:aws:iam::123456789012:role/helper"
    other = "arn:aws:iam::123456789012:role/other"
    b = aws_invocation("invb", T0, chained=False)
    key_b = b.credentials[0].access_key_id
    hop1 = aws_event(
        "hop1",
        T0 + timedelta(seconds=2),
        key=key_b,
        principal="x",
        name="AssumeRole",
        requested=helper,
        minted="ASIAHOP1000000000001",
    )
    hop2 = aws_event(
        "hop2",
        T0 + timedelta(seconds=3),
        key="ASIAHOP1000000000001",
        principal="y",
        issuer=helper,
        name="AssumeRole",
        requested=other,
        minted="ASIAHOP2000000000002",
    )
    use = aws_event(
        "use", T0 + timedelta(seconds=4), key="ASIAHOP2000000000002", principal="z", issuer=other
    )
    traced = {t.event.event_id: t for t in attribute([use, hop2, hop1], [b], {})}
    assert traced["hop1"].match == "access-key"
    assert (traced["hop2"].invocation_id, traced["hop2"].match) == ("invb", "assume-role")
    assert (traced["use"].invocation_id, traced["use"].match) == ("invb", "assume-role")


def test_a_foreign_session_of_a_managed_role_is_unattributed() -> None:
    foreign = aws_event(
        "f",
        T0 + timedelta(seconds=5),
        key="ASIAFOREIGN000000001",
        principal=session_arn(TARGET_ROLE, "by-hand"),
    )
    traced = only(attribute([foreign], [A], {}))
    assert traced.unattributed
    assert traced.invocation_id is None
    assert traced.note is None


def test_a_session_reusing_an_invocations_name_with_another_key_is_unattributed() -> None:
    spoof = aws_event(
        "s", T0 + timedelta(seconds=5), key="ASIAFOREIGN000000002", principal=CHILD_A.principal
    )
    traced = only(attribute([spoof], [A], {}))
    assert traced.unattributed
    assert traced.note == "the session name of an invocation, but not its access key"


def test_a_role_assumption_of_a_managed_role_outside_nhi_invoke_is_unattributed() -> None:
    mint = aws_event(
        "m",
        T0,
        key=None,
        principal="someone",
        issuer=None,
        name="AssumeRoleWithWebIdentity",
        requested=TARGET_ROLE,
        minted="ASIAFOREIGN000000003",
    )
    assert only(attribute([mint], [A], {})).unattributed


def test_calls_of_roles_nhi_invoke_does_not_manage_are_left_out() -> None:
    other = aws_event(
        "o",
        T0,
        key="ASIAOTHER00000000001",
        principal="x",
        issuer="arn:aws:iam::123456789012:role/unrelated",
    )
    assert attribute([other], [A], {}) == []


@pytest.mark.parametrize(
    ("key_of", "after_seconds", "expected"),
    [
        ("child", 31, True),  # the command exited at +30.25 s: a second later is a leak
        ("child", 30, False),  # CloudTrail's whole second of the exit itself is not
        ("entry", 31, False),  # nhi-invoke's own cleanup with the entry session, before finish
        ("entry", 33, True),  # and the entry session after the invocation finished
    ],
)
def test_a_credential_used_after_its_invocation_ended_is_flagged(
    key_of: str, after_seconds: int, expected: bool
) -> None:
    credential = CHILD_A if key_of == "child" else ENTRY_A
    event = aws_event(
        "e", T0 + timedelta(seconds=after_seconds), key=credential.access_key_id, principal="x"
    )
    assert only(attribute([event], [A], {})).after_end is expected


def gcp_invocation(invocation_id: str, start: datetime, lifetime: float = 600) -> Invocation:
    reason = f"nhi-invoke invocation {invocation_id}"
    common = {"issued_at": start, "request_reason": reason, "federated_principal": FEDERATED}
    return Invocation(
        invocation_id=invocation_id,
        step_id="gcp",
        ledger="ledger.jsonl",
        started_at=start,
        command_ended_at=start + timedelta(seconds=5),
        finished_at=start + timedelta(seconds=6),
        exit_code=0,
        ci=CiRun(),
        credentials=(
            Credential(
                cloud="gcp",
                purpose="entry",
                principal=FEDERATED,
                kind="federated",
                expires_at=start + timedelta(seconds=300),
                fingerprint="f-" + invocation_id,
                **common,  # type: ignore[arg-type]
            ),
            Credential(
                cloud="gcp",
                purpose="child",
                principal=SA,
                kind="service_account",
                expires_at=start + timedelta(seconds=lifetime),
                fingerprint="c-" + invocation_id,
                **common,  # type: ignore[arg-type]
            ),
        ),
    )


def gcp_event(
    insert_id: str,
    moment: datetime,
    *,
    email: str | None = SA,
    subject: str | None = None,
    delegates: tuple[str, ...] = (FEDERATED,),
    reason: str | None = None,
) -> LogEvent:
    return LogEvent(
        source="gcp",
        event_id=insert_id,
        event_time=moment,
        event_name="storage.objects.get",
        service="storage.googleapis.com",
        resource="projects/_/buckets/b",
        error_code=None,
        principal=email or subject,
        identity=GcpIdentity(email, subject, delegates, reason),
    )


def test_gcp_token_calls_are_tied_exactly_by_their_request_reason() -> None:
    a, b = gcp_invocation("ga", T0), gcp_invocation("gb", T0 + timedelta(seconds=1))
    mint = gcp_event(
        "m",
        T0 + timedelta(seconds=1),
        email=None,
        subject=FEDERATED,
        delegates=(),
        reason="nhi-invoke invocation gb",
    )
    traced = only(attribute([mint], [a, b], {}))
    assert (traced.invocation_id, traced.match, traced.ambiguous) == ("gb", "request-reason", ())


def test_gcp_calls_with_the_federated_token_itself_are_tied_by_principal_and_window() -> None:
    direct = gcp_event("d", T0 + timedelta(seconds=3), email=None, subject=FEDERATED, delegates=())
    late = gcp_event("l", T0 + timedelta(seconds=301), email=None, subject=FEDERATED, delegates=())
    traced = {
        t.event.event_id: t for t in attribute([direct, late], [gcp_invocation("ga", T0)], {})
    }
    assert (traced["d"].invocation_id, traced["d"].match) == ("ga", "gcp-window")
    assert traced["l"].unattributed  # the federated token had expired: not this invocation's


def test_gcp_calls_while_two_invocations_of_one_service_account_overlap_are_ambiguous() -> None:
    a, b = gcp_invocation("ga", T0), gcp_invocation("gb", T0 + timedelta(seconds=60))
    early = gcp_event("early", T0 + timedelta(seconds=2))
    both = gcp_event("both", T0 + timedelta(seconds=62))
    traced = {t.event.event_id: t for t in attribute([early, both], [a, b], {})}
    assert (traced["early"].invocation_id, traced["early"].ambiguous) == ("ga", ())
    assert traced["both"].invocation_id is None
    assert traced["both"].ambiguous == ("ga", "gb")
    assert not traced["both"].unattributed
    # ga's command had ended, gb's had not: no certain leak.
    assert traced["both"].after_end is False


def test_gcp_invocations_whose_windows_do_not_overlap_are_told_apart() -> None:
    a = gcp_invocation("ga", T0, lifetime=1)
    b = gcp_invocation("gb", T0 + timedelta(seconds=2), lifetime=1)
    first = gcp_event("first", T0 + timedelta(seconds=0.5))
    second = gcp_event("second", T0 + timedelta(seconds=2.5))
    traced = {t.event.event_id: t for t in attribute([first, second], [a, b], {})}
    assert traced["first"].invocation_id == "ga"
    assert traced["second"].invocation_id == "gb"


def test_gcp_ambiguous_calls_after_every_candidate_ended_are_a_leak() -> None:
    a, b = gcp_invocation("ga", T0), gcp_invocation("gb", T0 + timedelta(seconds=60))
    late = gcp_event("late", T0 + timedelta(seconds=120))
    assert only(attribute([late], [a, b], {})).after_end is True


@pytest.mark.parametrize(
    "delegates",
    [
        (),
        (
            "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/other",
        ),
    ],
)
def test_gcp_service_account_use_not_delegated_by_the_invocations_principal_is_unattributed(
    delegates: tuple[str, ...],
) -> None:
    event = gcp_event("k", T0 + timedelta(seconds=2), delegates=delegates)
    traced = only(attribute([event], [gcp_invocation("ga", T0)], {}))
    assert traced.unattributed
    assert traced.invocation_id is None


def vault_invocation() -> Invocation:
    return Invocation(
        invocation_id="va",
        step_id="db",
        ledger="l",
        started_at=T0,
        command_ended_at=T0 + timedelta(seconds=10),
        finished_at=T0 + timedelta(seconds=11),
        exit_code=0,
        ci=CiRun(),
        credentials=(
            Credential(
                cloud="vault",
                purpose="child",
                principal="vault:jwt/role/ci-deploy",
                issued_at=T0,
                expires_at=T0 + timedelta(minutes=10),
                fingerprint="v",
                accessor="ACCESSOR0000000000000001",
            ),
        ),
    )


def vault_event(
    request_id: str,
    *,
    accessor: str | None,
    display: str = "jwt-repo:o/r",
    role: str | None = None,
    minted: str | None = None,
    seconds: float = 1,
) -> LogEvent:
    return LogEvent(
        source="vault",
        event_id=request_id,
        event_time=T0 + timedelta(seconds=seconds),
        event_name="read",
        service="kv",
        resource="secret/data/app",
        error_code=None,
        principal=display,
        identity=VaultIdentity(accessor, display, role, minted),
    )


def test_vault_requests_are_tied_by_accessor_plain_or_hmaced() -> None:
    hashes = {"ACCESSOR0000000000000001": "hmac-sha256:abc"}
    plain = vault_event("p", accessor="ACCESSOR0000000000000001")
    hashed = vault_event("h", accessor="hmac-sha256:abc", seconds=12)
    traced = {t.event.event_id: t for t in attribute([plain, hashed], [vault_invocation()], hashes)}
    assert (traced["p"].invocation_id, traced["p"].match) == ("va", "accessor")
    assert (traced["h"].invocation_id, traced["h"].after_end) == ("va", True)


def test_the_revocation_in_the_millisecond_the_ledger_finished_is_within_the_invocation() -> None:
    # The ledger writes whole milliseconds (finished at 11.000 s); Vault logs microseconds.
    def revoke(request_id: str, seconds: float) -> LogEvent:
        event = vault_event(request_id, accessor="ACCESSOR0000000000000001", seconds=seconds)
        return dataclasses.replace(event, resource="auth/token/revoke-self")

    same_ms, later = revoke("same", 11.000082), revoke("later", 11.0011)
    traced = {t.event.event_id: t for t in attribute([same_ms, later], [vault_invocation()], {})}
    assert traced["same"].after_end is False
    assert traced["same"].note == "nhi-invoke's revocation at the end of the invocation"
    assert traced["later"].after_end is True


def test_a_vault_login_is_tied_by_the_accessor_it_returned() -> None:
    login = vault_event("l", accessor=None, minted="ACCESSOR0000000000000001")
    assert only(attribute([login], [vault_invocation()], {})).match == "minted"


def test_a_token_of_the_same_vault_role_that_no_ledger_knows_is_unattributed() -> None:
    foreign = vault_event("f", accessor="OTHERACCESSOR00000000001", role="ci-deploy")
    other_mount = vault_event("o", accessor="OTHER2", role="ci-deploy", display="oidc-someone")
    traced = attribute([foreign, other_mount], [vault_invocation()], {})
    assert [(t.event.event_id, t.unattributed) for t in traced] == [("f", True)]


@pytest.mark.parametrize(
    ("fail_on", "after", "unattributed", "code"),
    [
        ("none", 3, 3, 0),
        ("after-end", 1, 0, 1),
        ("after-end", 0, 5, 0),
        ("unattributed", 0, 1, 1),
        ("unattributed", 1, 0, 1),
        ("unattributed", 0, 0, 0),
    ],
)
def test_fail_on_gates_the_exit_code(
    fail_on: str, after: int, unattributed: int, code: int
) -> None:
    assert exit_code(Findings(after, unattributed, 2), fail_on) == code


def test_fail_on_rejects_unknown_levels() -> None:
    with pytest.raises(ConfigError, match="--fail-on 'high' is not a choice"):
        exit_code(Findings(0, 0, 0), "high")


def test_findings_count_each_kind() -> None:
    event = aws_event("e", T0, key="k", principal="p")
    traced = [
        TracedEvent(event, "a", "access-key", after_end=True),
        TracedEvent(event, None, None, unattributed=True),
        TracedEvent(event, None, "gcp-window", ambiguous=("a", "b")),
    ]
    assert count(traced) == Findings(after_end=1, unattributed=1, ambiguous=1)
