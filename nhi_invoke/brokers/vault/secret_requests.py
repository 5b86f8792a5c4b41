"""`--vault-secret 'PATH FIELD | ENV_NAME'`, in the syntax of hashicorp/vault-action's
`secrets` input: entries separated by `;` (and here also by newlines), each the API path of
a secret (KV v2 with `data/` after the mount, KV v1, or a dynamic path such as
`database/creds/readonly`), one field of it, and optionally the variable it goes into
(without one, the field's name as vault-action derives it: `api-key` -> `APIKEY`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from nhi_invoke.errors import ConfigError

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Variables nhi-invoke itself sets for the command (and its own): a secret may not take them.
RESERVED_PREFIXES = ("NHI_",)
_EXAMPLE = "--vault-secret 'secret/data/ci/deploy api_key | DEPLOY_KEY'"


@dataclass(frozen=True)
class SecretRequest:
    """One field of one secret, and the variable the command finds it in."""

    path: str  # the API path, without /v1/
    field: str
    variable: str

    def as_text(self) -> str:
        return f"{self.path} {self.field} | {self.variable}"


def split_entries(text: str) -> list[str]:
    """One option value (a flag, a variable, a multi-line action input) -> its entries."""
    return [part.strip() for part in re.split(r"[;\n]", text) if part.strip()]


def default_variable(field: str) -> str:
    """vault-action's name for a field without `| NAME`: its first `.` as `__`, dashes and
    other characters dropped, upper-cased."""
    name = field.replace(".", "__", 1).replace("-", "")
    return re.sub(r"[^A-Za-z0-9_]", "", name).upper()


def _path(path: str, entry: str) -> str:
    clean = path.strip("/")
    if clean.startswith("v1/"):
        clean = clean[3:]
    segments = clean.split("/")
    if not clean or any(s in ("", ".", "..") for s in segments) or re.search(r"[?#%\\]", clean):
        raise ConfigError(
            f"--vault-secret {entry!r}: {path!r} is not a Vault API path",
            f"give the path as the API has it, e.g. {_EXAMPLE}",
        )
    return clean


def parse(entry: str, reserved: Iterable[str] = ()) -> SecretRequest:
    """One entry, checked: `PATH FIELD` or `PATH FIELD | NAME`."""
    spec, bar, name = entry.rpartition("|") if "|" in entry else (entry, "", "")
    parts = spec.split()
    if len(parts) != 2:
        raise ConfigError(
            f"--vault-secret {entry!r} is not 'PATH FIELD | ENV_NAME'",
            f"give one path and one field, e.g. {_EXAMPLE}",
        )
    path, field = _path(parts[0], entry), parts[1]
    variable = name.strip() if bar else default_variable(field)
    if bar and not variable:
        raise ConfigError(
            f"--vault-secret {entry!r} has '|' but no variable name after it",
            f"name the variable, e.g. {_EXAMPLE}",
        )
    if not _VARIABLE.fullmatch(variable):
        raise ConfigError(
            f"--vault-secret {entry!r}: {variable!r} is not a valid environment variable name",
            "use letters, digits and _, not starting with a digit",
        )
    if variable in set(reserved) or variable.startswith(RESERVED_PREFIXES):
        raise ConfigError(
            f"--vault-secret {entry!r}: nhi-invoke sets {variable} for the command itself",
            "choose another variable name",
        )
    return SecretRequest(path, field, variable)


def parse_all(entries: Iterable[str], reserved: Iterable[str] = ()) -> tuple[SecretRequest, ...]:
    """Every entry of every value, checked, with each variable given once."""
    requests = tuple(parse(e, reserved) for text in entries for e in split_entries(text))
    seen: dict[str, SecretRequest] = {}
    for request in requests:
        earlier = seen.setdefault(request.variable, request)
        if earlier is not request:
            raise ConfigError(
                f"--vault-secret: {request.variable} is given twice ({earlier.as_text()!r} "
                f"and {request.as_text()!r})",
                "give each secret its own variable name",
            )
    return requests
