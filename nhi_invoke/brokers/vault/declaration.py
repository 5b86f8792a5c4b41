"""The Vault/OpenBao broker's declaration: its options, settings and plan. Nothing of the
runtime (or of the network) is imported here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nhi_invoke.brokers.grants import Secret
from nhi_invoke.brokers.interface import BrokerDeclaration, PlanContext
from nhi_invoke.brokers.vault import validation
from nhi_invoke.brokers.vault.secret_requests import SecretRequest, parse_all, split_entries
from nhi_invoke.errors import ConfigError
from nhi_invoke.settings.option import Kind, Option, OptionValues, Origin, Source

if TYPE_CHECKING:
    from nhi_invoke.brokers.vault.plan import VaultPlan

NAME = "vault"
DEFAULT_AUTH_PATH = "jwt"
DEFAULT_TTL = 900
ADDRESS_VARIABLES = ("VAULT_ADDR", "BAO_ADDR")
TOKEN_VARIABLES = ("VAULT_TOKEN", "BAO_TOKEN")
NAMESPACE_VARIABLES = ("VAULT_NAMESPACE", "BAO_NAMESPACE")
# The CLIs send everything through a Vault Agent when these are set: another identity.
AGENT_VARIABLES = ("VAULT_AGENT_ADDR", "BAO_AGENT_ADDR")
RESERVED = (*ADDRESS_VARIABLES, *TOKEN_VARIABLES, *NAMESPACE_VARIABLES, *AGENT_VARIABLES)


@dataclass(frozen=True)
class VaultSettings:
    address: str
    role: str
    auth_path: str
    audience: str
    namespace: str | None
    ttl: int
    secrets: tuple[SecretRequest, ...]
    tls: validation.TlsVariables


def _secrets(raw: Any, source: Source) -> tuple[str, ...]:
    """Flags and config lists hold entries; a variable (or a multi-line action input)
    holds them separated by newlines or `;`, as vault-action's `secrets` input does."""
    if source.origin is Origin.CONFIG and (
        not isinstance(raw, list) or not all(isinstance(v, str) for v in raw)
    ):
        key = source.label.split(" in ", 1)[0]
        raise ConfigError(
            f"{source.label} must be a list of strings",
            f'write {key} = ["secret/data/ci/deploy api_key | DEPLOY_KEY"]',
        )
    values = [raw] if isinstance(raw, str) else list(raw)
    return tuple(entry for value in values for entry in split_entries(str(value)))


OPTIONS = (
    Option(
        name="vault_role",
        help="The JWT auth role to log in to Vault or OpenBao with (asks for a Vault token).",
        group=NAME,
        env=("NHI_VAULT_ROLE",),
        metavar="ROLE",
        validate=validation.role,
    ),
    Option(
        name="vault_addr",
        help="The Vault or OpenBao server.",
        group=NAME,
        env=("NHI_VAULT_ADDR", *ADDRESS_VARIABLES),
        # Where the OIDC token and the secrets go: never a repository's file to choose.
        from_config=False,
        metavar="URL",
        validate=validation.address,
    ),
    Option(
        name="vault_auth_path",
        help="Where the JWT auth method is mounted (auth/<PATH>/login).",
        group=NAME,
        env=("NHI_VAULT_AUTH_PATH",),
        default=DEFAULT_AUTH_PATH,
        metavar="PATH",
        validate=lambda value: validation.mount("--vault-auth-path", value),
    ),
    Option(
        name="vault_audience",
        help="Audience requested for (and checked in) the OIDC token for Vault; one of the "
        "role's bound_audiences.",
        group=NAME,
        env=("NHI_VAULT_AUDIENCE",),
        from_config=False,
        default_text="the Vault address",
        metavar="AUDIENCE",
    ),
    Option(
        name="vault_namespace",
        help="The Vault (Enterprise) or OpenBao namespace of the role and the secrets.",
        group=NAME,
        env=("NHI_VAULT_NAMESPACE", *NAMESPACE_VARIABLES),
        metavar="NS",
        validate=lambda value: validation.mount("--vault-namespace", value),
    ),
    Option(
        name="vault_ttl",
        help="The longest the token may live at a time, in seconds: asked for at login "
        "and at each renewal while the command runs.",
        group=NAME,
        kind=Kind.NUMBER,
        env=("NHI_VAULT_TTL",),
        default=DEFAULT_TTL,
        metavar="SECONDS",
        validate=validation.ttl,
    ),
    Option(
        name="vault_secrets",
        help="'PATH FIELD | ENV_NAME' (repeatable): a field of a secret, read once with the "
        "invocation's token, in the command's environment.",
        group=NAME,
        kind=Kind.LIST,
        flags=("--vault-secret",),
        env=("NHI_VAULT_SECRETS",),
        metavar="SPEC",
        parse=_secrets,
        validate=lambda entries: parse_all(entries, RESERVED),
    ),
)

RECOVERY_OPTIONS = (
    Option(
        name="vault_token_file",
        help="A file holding a Vault token allowed to call auth/token/revoke-accessor, to "
        "revoke a crashed invocation's tokens (else VAULT_TOKEN).",
        group=NAME,
        env=("NHI_VAULT_TOKEN_FILE",),
        from_config=False,
        metavar="PATH",
    ),
)


def _recovery_token(values: OptionValues, environ: Mapping[str, str]) -> tuple[Secret, str] | None:
    """The token to revoke by accessor with, and where it came from (never the token)."""
    path = values.get("vault_token_file") if "vault_token_file" in values.options else None
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read().strip()
        except OSError as exc:
            raise ConfigError(
                f"--vault-token-file {path!r} cannot be read ({exc.strerror})",
                "give a file holding a Vault token allowed to call auth/token/revoke-accessor",
            ) from exc
        if not text:
            raise ConfigError(f"--vault-token-file {path!r} is empty", "put the token in it")
        return Secret(text), "--vault-token-file"
    for name in TOKEN_VARIABLES:
        if environ.get(name, "").strip():
            return Secret(environ[name].strip()), name
    return None


class VaultDeclaration(BrokerDeclaration[VaultSettings]):
    name = NAME
    title = "Vault"
    options = OPTIONS
    recovery_options = RECOVERY_OPTIONS
    audience_option = "vault_audience"
    requires = "vault_role"
    runtime = "nhi_invoke.brokers.vault.broker:VaultBroker"
    emulator = "nhi_invoke.sandbox.vault_emulator"

    def settings(self, values: OptionValues, environ: Mapping[str, str]) -> VaultSettings | None:
        # The role asks for Vault: a runner's VAULT_ADDR alone does not (settings/resolve.py
        # stops on Vault options given for this step without it).
        if not values.is_given("vault_role"):
            return None
        address = values.get("vault_addr")
        if address is None:
            raise ConfigError(
                "--vault-role is given but no Vault address",
                "pass --vault-addr (or set VAULT_ADDR), e.g. https://vault.example.com:8200",
            )
        return VaultSettings(
            address=address,
            role=values.get("vault_role"),
            auth_path=values.get("vault_auth_path"),
            audience=values.get("vault_audience") or address,
            namespace=values.get("vault_namespace"),
            ttl=values.get("vault_ttl"),
            secrets=values.get("vault_secrets") or (),
            tls=validation.tls_variables(environ),
        )

    def plan(self, settings: VaultSettings, context: PlanContext) -> VaultPlan:
        from nhi_invoke.brokers.vault.plan import VaultPlan  # noqa: PLC0415

        return VaultPlan(
            address=settings.address,
            namespace=settings.namespace,
            auth_path=settings.auth_path,
            role=settings.role,
            audience=settings.audience,
            ttl_seconds=settings.ttl,
            secrets=settings.secrets,
            ca_file=settings.tls.ca_file,
            ca_path=settings.tls.ca_path,
            skip_verify=settings.tls.skip_verify,
        )

    def recovery_plan(
        self, started: Mapping[str, Any], environ: Mapping[str, str]
    ) -> VaultPlan | None:
        return self.recovery_plan_with(started, environ, OptionValues({}, {}, environ, {}, ""))

    def recovery_plan_with(
        self, started: Mapping[str, Any], environ: Mapping[str, str], values: OptionValues
    ) -> VaultPlan | None:
        """Enough of the plan to revoke the tokens by accessor, with a token given now to
        `nhi-invoke revoke`; without one, they are recorded with their expiry."""
        from nhi_invoke.brokers.vault.plan import VaultPlan  # noqa: PLC0415

        address = started.get("address")
        if not isinstance(address, str):
            return None
        tls = validation.tls_variables(environ)
        found = _recovery_token(values, environ)
        return VaultPlan(
            address=address,
            namespace=started.get("namespace"),
            auth_path=str(started.get("auth_path", DEFAULT_AUTH_PATH)),
            role=str(started.get("role", "")),
            audience=str(started.get("audience", address)),
            ttl_seconds=DEFAULT_TTL,
            secrets=(),
            ca_file=tls.ca_file,
            ca_path=tls.ca_path,
            skip_verify=tls.skip_verify,
            revoke_with=found[0] if found else None,
            revoke_with_source=found[1] if found else None,
        )


DECLARATION = VaultDeclaration()
