"""The Vault broker's pieces without a server: `--vault-secret` in vault-action's syntax, the
settings (what asks for Vault, what falls back to Vault's own variables), the child's
environment, and the renewal schedule against a Vault API stand-in (a subclass of ours)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.brokers.grants import Secret
from nhi_invoke.brokers.vault.api import Answer, VaultApi, unwrap
from nhi_invoke.brokers.vault.declaration import DECLARATION, RESERVED, VaultSettings
from nhi_invoke.brokers.vault.plan import VaultPlan
from nhi_invoke.brokers.vault.reads import Lease
from nhi_invoke.brokers.vault.renewal import Held, Renewer
from nhi_invoke.brokers.vault.secret_requests import (
    SecretRequest,
    default_variable,
    parse,
    parse_all,
    split_entries,
)
from nhi_invoke.ci.interface import LOCAL
from nhi_invoke.errors import ConfigError
from nhi_invoke.retry import Retryable, RetryOutcome, RetryPolicy
from nhi_invoke.settings import by_name
from nhi_invoke.settings.option import OptionValues
from nhi_invoke.settings.resolve import resolve

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


# --vault-secret


def test_entries_are_split_on_semicolons_and_newlines_as_a_multi_line_input_writes_them() -> None:
    text = "secret/data/ci/aws accessKey | AWS_ACCESS_KEY_ID ;\n secret/data/ci/aws secretKey ;\n"
    assert split_entries(text) == [
        "secret/data/ci/aws accessKey | AWS_ACCESS_KEY_ID",
        "secret/data/ci/aws secretKey",
    ]


def test_an_entry_names_a_path_a_field_and_a_variable() -> None:
    assert parse("database/creds/readonly password | PGPASSWORD") == SecretRequest(
        "database/creds/readonly", "password", "PGPASSWORD"
    )
    assert parse("/v1/kv1/ci/legacy  password|P").path == "kv1/ci/legacy"


@pytest.mark.parametrize(
    ("field", "variable"),
    [("api_key", "API_KEY"), ("api-key", "APIKEY"), ("db.host.name", "DB__HOSTNAME")],
)
def test_without_a_name_the_variable_is_the_field_as_vault_action_names_it(
    field: str, variable: str
) -> None:
    assert default_variable(field) == variable
    assert parse(f"secret/data/x {field}").variable == variable


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("secret/data/x", "is not 'PATH FIELD | ENV_NAME'"),
        ("secret/data/x a b | C", "is not 'PATH FIELD | ENV_NAME'"),
        ("secret/data/x a |", "has '|' but no variable name"),
        ("secret/data/x a | 9LIVES", "is not a valid environment variable name"),
        ("secret/../sys/x a | A", "is not a Vault API path"),
        ("secret/data/x?version=1 a | A", "is not a Vault API path"),
        ("secret/data/x a | VAULT_TOKEN", "nhi-invoke sets VAULT_TOKEN"),
        ("secret/data/x a | NHI_STEP_ID", "nhi-invoke sets NHI_STEP_ID"),
    ],
)
def test_a_bad_entry_is_a_configuration_error_naming_it(entry: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("?", r"\?").replace("|", r"\|")):
        parse_all([entry], RESERVED)


def test_one_variable_may_not_take_two_secrets() -> None:
    with pytest.raises(ConfigError, match="DB is given twice"):
        parse_all(["kv/a x | DB", "kv/b y | DB"])


# Settings


def _settings(given: dict[str, Any], environ: dict[str, str] | None = None) -> VaultSettings | None:
    environ = environ or {}
    values = OptionValues(by_name(environ), given, environ, {}, "nhi-invoke.toml")
    return DECLARATION.settings(values, environ)


def test_a_runners_vault_addr_alone_does_not_ask_for_vault() -> None:
    assert _settings({}, {"VAULT_ADDR": "https://vault:8200", "VAULT_NAMESPACE": "ns"}) is None


def test_the_role_asks_for_vault_and_the_address_falls_back_to_vault_addr() -> None:
    found = _settings({"vault_role": "ci"}, {"VAULT_ADDR": "https://vault:8200/"})
    assert found is not None
    assert found.address == "https://vault:8200"
    assert found.audience == "https://vault:8200"  # the address, by default
    assert (found.auth_path, found.ttl, found.namespace) == ("jwt", 900, None)


def test_vault_options_given_to_nhi_invoke_without_a_role_are_refused() -> None:
    with pytest.raises(
        ConfigError,
        match=r"--vault-namespace is given \(by NHI_VAULT_NAMESPACE\) but --vault-role is not",
    ):
        resolve(
            {"aws_role_arn": "arn:aws:iam::123456789012:role/r"},
            {"NHI_VAULT_NAMESPACE": "team"},
            LOCAL,
            "/x",
        )
    # A runner's own VAULT_NAMESPACE is for other tools: no Vault, no error.
    assert _settings({}, {"VAULT_NAMESPACE": "team"}) is None


def test_the_secrets_come_from_a_multi_line_variable() -> None:
    found = _settings(
        {"vault_role": "ci", "vault_addr": "https://v"},
        {"NHI_VAULT_SECRETS": "kv/a x | X ;\nkv/b y | Y\n"},
    )
    assert found is not None
    assert [s.variable for s in found.secrets] == ["X", "Y"]


def test_vaults_own_tls_variables_are_read_as_its_cli_reads_them(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    given = {"vault_role": "ci", "vault_addr": "https://v"}
    found = _settings(given, {"VAULT_CACERT": str(bundle), "BAO_SKIP_VERIFY": "t"})
    assert found is not None
    assert (found.tls.ca_file, found.tls.skip_verify) == (str(bundle), True)
    with pytest.raises(ConfigError, match="VAULT_CAPATH='/nowhere' is not a folder"):
        _settings(given, {"VAULT_CAPATH": "/nowhere"})


# The plan


def _plan(**changes: Any) -> VaultPlan:
    fields: dict[str, Any] = {
        "address": "https://vault:8200",
        "namespace": None,
        "auth_path": "jwt",
        "role": "ci",
        "audience": "https://vault:8200",
        "ttl_seconds": 900,
        "secrets": (SecretRequest("kv/a", "x", "X"),),
    }
    return VaultPlan(**(fields | changes))


def test_the_child_gets_both_cli_families_and_loses_inherited_tokens_and_agents() -> None:
    variables = _plan().child_variables()
    for name in ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR", "X"):
        assert name in variables.set
    for name in ("VAULT_AGENT_ADDR", "BAO_AGENT_ADDR", "VAULT_NAMESPACE", "BAO_NAMESPACE"):
        assert variables.strips(name)
    assert not variables.strips("VAULT_CACERT")  # the command trusts what we trust
    env = _plan(namespace="team").child_environment((), None)
    assert env == {
        "VAULT_ADDR": "https://vault:8200",
        "BAO_ADDR": "https://vault:8200",
        "VAULT_NAMESPACE": "team",
        "BAO_NAMESPACE": "team",
    }


def test_the_plan_warns_of_skipped_verification_plain_http_and_long_ttls() -> None:
    warnings = " ".join(
        _plan(address="http://vault.example:8200", skip_verify=True, ttl_seconds=3600).warnings()
    )
    assert "VAULT_SKIP_VERIFY is set" in warnings
    assert "plain http" in warnings
    assert "may live 3600 s at a time" in warnings
    assert _plan(address="http://127.0.0.1:8200").warnings() == ()


def test_a_recovery_plan_holds_its_token_out_of_sight(tmp_path: Path) -> None:
    token_file = tmp_path / "operator"
    token_file.write_text("s.operator-token-value\n")
    options = {o.name: o for o in DECLARATION.recovery_options}
    values = OptionValues(options, {"vault_token_file": str(token_file)}, {}, {}, "")
    plan = DECLARATION.recovery_plan_with(_plan().started_fields(), {}, values)
    assert plan is not None
    assert plan.revoke_with is not None
    assert plan.revoke_with.reveal() == "s.operator-token-value"
    assert plan.revoke_with_source == "--vault-token-file"
    assert "operator-token-value" not in repr(plan)
    from_env = DECLARATION.recovery_plan(_plan().started_fields(), {"VAULT_TOKEN": "s.env"})
    assert from_env is not None
    assert from_env.revoke_with_source == "VAULT_TOKEN"


def test_errors_wrapped_by_vault_are_unwrapped() -> None:
    assert unwrap("1 error occurred:\n\t* permission denied\n\n") == "permission denied"
    assert unwrap("2 errors occurred:\n\t* a\n\t* b\n\n") == "a; b"
    assert Answer(403, {"errors": ["permission denied"]}).token_invalid
    assert Answer(403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}).policy_denied


# Renewal


class ScriptedApi(VaultApi):
    """Vault's answers to renewals, scripted (our own API class, its transport replaced)."""

    def __init__(self, answers: list[Answer | Exception]) -> None:
        super().__init__(_plan(), RetryPolicy(), RetryOutcome())
        self.answers = answers
        self.asked: list[tuple[str, Any]] = []

    def once(self, method: str, path: str, token: Secret | None = None, body: Any = None) -> Answer:
        self.asked.append((path, body))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _renewer(answers: list[Answer | Exception], clock: Clock, lease: bool = False) -> Renewer:
    token = Held("the Vault token", 60, T0 + timedelta(seconds=60), T0 + timedelta(seconds=30))
    leases = []
    if lease:
        found = Lease("database/creds/ro", "database/creds/ro/abc", 40, True, T0)
        leases.append(
            Held(
                "the lease", 40, T0 + timedelta(seconds=40), T0 + timedelta(seconds=20), lease=found
            )
        )
    return Renewer(ScriptedApi(answers), Secret("s.token"), token, leases, clock)


def _auth(seconds: int, *warnings: str) -> Answer:
    return Answer(200, {"auth": {"lease_duration": seconds}, "warnings": list(warnings) or None})


def test_each_is_renewed_at_half_its_time_by_the_ttl_it_was_granted() -> None:
    clock = Clock()
    renewer = _renewer([Answer(200, {"lease_duration": 40}), _auth(60)], clock, lease=True)
    assert renewer.next_due() == T0 + timedelta(seconds=20)
    clock.now = T0 + timedelta(seconds=20)
    changed, warnings = renewer.renew()
    assert (changed, warnings) == (True, [])
    assert renewer.api.asked == [  # type: ignore[attr-defined]
        ("sys/leases/renew", {"lease_id": "database/creds/ro/abc", "increment": 40})
    ]
    assert renewer.next_due() == T0 + timedelta(seconds=30)  # the token's turn
    clock.now = T0 + timedelta(seconds=30)
    renewer.renew()
    assert renewer.held.expires_at == T0 + timedelta(seconds=90)
    assert renewer.held.renew_at == T0 + timedelta(seconds=60)
    assert renewer.held.renewals == 1


def test_a_capped_renewal_ends_renewal_and_says_when_the_token_expires() -> None:
    clock = Clock()
    clock.now = T0 + timedelta(seconds=30)
    cap = 'TTL of "1m" exceeded the effective max_ttl of "12s"; TTL value is capped accordingly'
    renewer = _renewer([_auth(12, cap)], clock)
    changed, warnings = renewer.renew()
    assert changed
    assert renewer.next_due() is None
    assert renewer.held.ended == f"its max TTL: {cap}"
    assert warnings == [
        "warning: the Vault token reached its max TTL and is not renewed again; it expires at "
        f"09:00:42Z ({cap})"
    ]


def test_a_failed_renewal_is_tried_again_soon_and_a_refused_one_ends() -> None:
    clock = Clock()
    clock.now = T0 + timedelta(seconds=30)
    renewer = _renewer([Retryable("connection refused"), Answer(503, {}), _auth(60)], clock)
    _, warnings = renewer.renew()
    assert warnings == [
        "warning: could not renew the Vault token (connection refused); trying again"
    ]
    assert renewer.held.renew_at == T0 + timedelta(seconds=37.5)  # a quarter of what is left
    clock.now = renewer.held.renew_at
    assert renewer.renew() == (False, [])  # 503: again, quietly
    clock.now = renewer.held.renew_at
    assert renewer.renew()[0]
    revoked = _renewer([Answer(403, {"errors": ["permission denied"]})], clock, lease=True)
    revoked.held.renew_at = clock.now
    _, warnings = revoked.renew()
    assert revoked.next_due() is None  # the token and, with it, its lease
    assert "it was revoked (by the command?) or has expired" in warnings[0]


def test_a_leases_max_ttl_and_a_policy_without_lease_renewal_each_end_its_renewal() -> None:
    clock = Clock()
    clock.now = T0 + timedelta(seconds=20)
    capped = _renewer([Answer(200, {"lease_duration": 25})], clock, lease=True)
    changed, warnings = capped.renew()
    assert changed
    assert capped.leases[0].renew_at is None
    assert warnings[0].startswith("warning: the lease reached its max TTL")
    denied = _renewer(
        [Answer(403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]})],
        clock,
        lease=True,
    )
    _, warnings = denied.renew()
    assert denied.leases[0].ended == "the token's policies do not allow update on sys/leases/renew"
    assert denied.held.renew_at is not None  # the token's own renewal goes on
    assert len(warnings) == 1


def test_a_token_vault_finds_expired_is_asked_for_again_once_then_is_65() -> None:
    from nhi_invoke.brokers.vault.login import login  # noqa: PLC0415
    from nhi_invoke.errors import TokenError  # noqa: PLC0415

    stale = Answer(
        400,
        {
            "errors": [
                "error validating token: invalid expiration time (exp) claim: token is expired"
            ]
        },
    )
    api = ScriptedApi([stale, stale])
    asked: list[bool] = []

    def tokens(fresh: bool) -> str:
        asked.append(fresh)
        return "header.payload.signature"

    with pytest.raises(TokenError, match="Vault refused the OIDC token as expired"):
        login(api, tokens)
    assert asked == [False, True]


def test_a_field_no_environment_variable_can_hold_is_refused() -> None:
    from nhi_invoke.brokers.vault.reads import Answered, pick  # noqa: PLC0415

    answered = Answered("kv/bin", {"blob": "a\x00b", "n": 3}, None, None)
    assert pick(answered, (SecretRequest("kv/bin", "n", "N"),))["N"].reveal() == "3"
    with pytest.raises(ConfigError, match="holds a NUL character"):
        pick(answered, (SecretRequest("kv/bin", "blob", "BLOB"),))
