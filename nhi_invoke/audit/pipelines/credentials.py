"""What counts as a cloud key, where it comes from, and how scripts bring keys in or spread them.

Names decide first: `AWS_SECRET_ACCESS_KEY`, `GCP_SA_KEY`, `credentials_json`,
`AZURE_CLIENT_SECRET`… are the secret half of a key; `AWS_ACCESS_KEY_ID` is the id half (a
key and its id are one key: the finding goes on the secret half). Values decide next: a stored
secret or variable, or a literal that looks like a key, is long-lived; an output of an earlier
step (freshly minted) is not; `test`, `dummy` and AWS's documentation keys are placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from nhi_invoke.audit.pipelines.model import Script, ScriptLine, Setting

# The secret half of a cloud key, by name (upper case, `-` read as `_`).
_SECRET_NAME = re.compile(
    r"(^|_)(AWS_SECRET(_ACCESS)?_KEY|SECRET_ACCESS_KEY)(_|$)"
    r"|^(GOOGLE|GCP|GCLOUD|GKE|GCS|GOOGLE_CLOUD)(_[A-Z0-9]+)*_(CREDENTIALS|KEY|KEYFILE|KEY_JSON|"
    r"JSON_KEY|KEYFILE_JSON|CREDENTIALS_JSON|SERVICE_KEY|SERVICE_ACCOUNT_KEY)$"
    r"|(^|_)(SA_KEY|SERVICE_ACCOUNT_KEY|SERVICE_ACCOUNT_JSON|CREDENTIALS_JSON|KEYFILE_JSON)(_|$)"
    r"|^(AZURE_CLIENT_SECRET|ARM_CLIENT_SECRET|AZURE_CREDENTIALS|ARM_ACCESS_KEY|"
    r"AZURE_STORAGE_KEY|AZURE_STORAGE_ACCOUNT_KEY)$"
)
_NOT_SECRET_NAME = re.compile(r"API_KEY|^GOOGLE_APPLICATION_CREDENTIALS$|_(ID|FILE|PATH|NAME)$")
_ID_NAME = re.compile(r"(^|_)ACCESS_KEY_ID$|^(AWS_)?ACCESS_KEY$")
# Inputs and parameters of actions, orbs and pipes that take a key by another name.
SECRET_INPUTS = {
    "azure/login": frozenset({"creds", "client-secret"}),
    "google-github-actions/setup-gcloud": frozenset({"service_account_key"}),
    "bitbucket:image.aws": frozenset({"secret-key"}),
}
# An input of a local action that carries a key: its name says key, secret or credentials.
_KEYISH_INPUT = re.compile(r"KEY|SECRET|CREDENTIAL|CREDS|PASSWORD")
# A variable whose value is a credential when written to a file later steps load.
_CREDENTIAL_VARIABLE = re.compile(
    r"SECRET|TOKEN|PASSWORD|CREDENTIAL|PRIVATE_KEY|ACCESS_KEY|^GOOGLE_APPLICATION_CREDENTIALS$"
)
_NOT_CREDENTIAL_VARIABLE = re.compile(r"_(URL|EXPIRATION|EXPIRY|TYPE|NAME|REGION)$")

PLACEHOLDERS = frozenset({
    "test", "testing", "dummy", "fake", "foo", "bar", "x", "xxx", "none", "null", "example",
    "changeme", "minio", "minioadmin", "localstack", "secret", "password", "key", "mock", "local",
    "akiaiosfodnn7example", "wjalrxutnfemi/k7mdeng/bpxrficyexamplekey",  # AWS's documentation
})  # fmt: skip
LITERAL_KEY_ID = re.compile(r"\bAKIA[0-9A-Z]{16}\b")
LITERAL_SECRET = re.compile(
    r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----|\"private_key\"\s*:|\"type\"\s*:\s*\"service_account\""
)
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_STORED_EXPRESSION = re.compile(r"\b(secrets|vars)\s*(\.\s*([A-Za-z_][\w-]*)|\[)")
_SHELL_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
_ASSIGNMENT = re.compile(
    r"(?:^|[\s;&|(])(?:export\s+|local\s+|declare\s+(?:-\w+\s+)*)?"
    r"([A-Za-z_][A-Za-z0-9_]*)="
)
_AWS_CONFIGURE_SECRET = re.compile(r"aws\s+configure\s+set\s+(\S*\.)?aws_secret_access_key\s+(.+)")
_AWS_CONFIGURE_ID = re.compile(r"aws\s+configure\s+set\s+(\S*\.)?aws_access_key_id\b")
_KEY_FILE_LOGIN = re.compile(
    r"gcloud\s+auth\s+activate-service-account\b.*--key-file|"
    r"az\s+login\b.*--service-principal\b.*\s(-p|--password|--secret)[\s=]"
)
_EXPORTS_CREDENTIALS = re.compile(r"aws\s+configure\s+export-credentials\b")


def normalized(name: str) -> str:
    return name.strip().upper().replace("-", "_").replace(".", "_")


def is_secret_name(name: str, uses: str = "") -> bool:
    """Whether `name` is the secret half of a cloud key (for `uses`' inputs too)."""
    if name.lower() in SECRET_INPUTS.get(uses, frozenset()):
        return True
    upper = normalized(name)
    return bool(_SECRET_NAME.search(upper)) and not _NOT_SECRET_NAME.search(upper)


def is_id_name(name: str) -> bool:
    return bool(_ID_NAME.search(normalized(name)))


def is_keyish_input(name: str) -> bool:
    return bool(_KEYISH_INPUT.search(normalized(name)))


def is_credential_variable(name: str) -> bool:
    upper = normalized(name)
    return bool(_CREDENTIAL_VARIABLE.search(upper)) and not _NOT_CREDENTIAL_VARIABLE.search(upper)


def stored_names(value: str, ci_variables: bool = True) -> list[str]:
    """Names of stored secrets/variables a value reads: `${{ secrets.X }}`, and `$X`, `${X}`
    where a shell variable can come from the CI's settings (not on GitHub, whose runner
    environment comes only from the file and from earlier steps)."""
    names = []
    for expression in _EXPRESSION.findall(value):
        names += [m.group(3) or "" for m in _STORED_EXPRESSION.finditer(expression)]
    if ci_variables:
        outside = _EXPRESSION.sub("", value)
        names += [m.group(1) for m in _SHELL_REFERENCE.finditer(outside)]
    return names


def source(value: str) -> str:
    """Where a value comes from: "stored", "minted", "literal-key", or "" (nothing to report)."""
    text = value.strip()
    if not text:
        return ""
    expressions = _EXPRESSION.findall(text)
    if any(_STORED_EXPRESSION.search(e) for e in expressions):
        return "stored"
    if any(re.search(r"\binputs\s*\.", e) for e in expressions):
        return "stored"  # handed on by a composite action or reusable workflow
    if any(re.search(r"\b(steps|needs|jobs)\s*\.", e) for e in expressions):
        return "minted"  # an output of an earlier step: freshly minted
    if expressions:
        return ""  # env., matrix., github. … : not a key that enters here
    if _SHELL_REFERENCE.search(text) or text.startswith("<<"):
        return "stored"  # a CI/CD variable, a context, a parameter
    if LITERAL_KEY_ID.search(text) or LITERAL_SECRET.search(text):
        return "" if text.lower() in PLACEHOLDERS else "literal-key"
    if text.lower() in PLACEHOLDERS or len(text) < 16 or " " in text or text.startswith(("/", "~")):
        return ""
    return "literal-key"


@dataclass(frozen=True)
class KeySetting:
    """A setting that brings a key in, and whether it is the secret or the id half."""

    setting: Setting
    secret: bool
    source: str


def key_settings(settings: Iterable[Setting]) -> Iterator[KeySetting]:
    """The settings that bring a long-lived key in; of a key/id pair only the secret half."""
    candidates: list[KeySetting] = []
    for setting in settings:
        found = source(setting.value)
        if found in ("", "minted"):
            continue
        secret = is_secret_name(setting.name, setting.input_of) or any(
            is_secret_name(n) for n in stored_names(setting.value)
        )
        keyish = is_keyish_input(setting.name) and not is_id_name(setting.name)
        if not secret and setting.local_input and keyish:
            secret = found == "stored" and "GITHUB_TOKEN" not in setting.value.upper()
        if not secret and found == "literal-key" and LITERAL_SECRET.search(setting.value):
            secret = True
        # A key id alone matters when it is stored or written: an id handed in as a
        # workflow input is not a credential by itself.
        handed_on = found == "stored" and not stored_names(setting.value)
        identity = (
            not secret
            and not handed_on
            and (is_id_name(setting.name) or bool(LITERAL_KEY_ID.search(setting.value)))
        )
        if secret or identity:
            candidates.append(KeySetting(setting, secret, found))
    with_secret = {c.setting.group for c in candidates if c.secret}
    for candidate in candidates:
        if candidate.secret or candidate.setting.group not in with_secret:
            yield candidate


@dataclass(frozen=True)
class ScriptKey:
    line: ScriptLine
    detail: str
    secret: bool
    login: bool  # logs in with a key file or secret brought in elsewhere


def _assigned(line: str) -> set[str]:
    return set(_ASSIGNMENT.findall(line))


def script_keys(script: Script, declared: set[str], ci_variables: bool) -> list[ScriptKey]:
    """Lines of a script that bring a stored key in (names it, or configures a tool with it).

    A name the file declares (env:, variables:) is reported where it is declared; a name the
    script itself assigned earlier holds what the script minted.
    """
    assigned: set[str] = set()
    found: list[ScriptKey] = []
    for line in script.lines:
        text = line.text
        names = [
            n for n in stored_names(text, ci_variables) if n not in assigned and n not in declared
        ]
        secret = [n for n in names if is_secret_name(n)]
        ids = [n for n in names if is_id_name(n)]
        configure = _AWS_CONFIGURE_SECRET.search(text)
        if secret:
            found.append(ScriptKey(line, f"reads {secret[0]}", True, False))
        elif configure and _configured_from_stored(configure.group(2), assigned, ci_variables):
            found.append(ScriptKey(line, "configures aws_secret_access_key", True, False))
        elif LITERAL_SECRET.search(text) or LITERAL_KEY_ID.search(text):
            pass  # a key written in the file: reported from the file's text
        elif _KEY_FILE_LOGIN.search(text):
            found.append(ScriptKey(line, "logs in with a key", True, True))
        elif ids or _AWS_CONFIGURE_ID.search(text):
            found.append(
                ScriptKey(line, f"reads {ids[0] if ids else 'an access key id'}", False, False)
            )
        assigned |= _assigned(text)
    if any(k.secret for k in found):
        found = [k for k in found if k.secret]
    return found


def _configured_from_stored(value: str, assigned: set[str], ci_variables: bool) -> bool:
    if "$(" in value or "`" in value:
        return False  # a command's output: minted in the script
    stored = stored_names(value, ci_variables)
    if stored:
        return any(n not in assigned for n in stored)
    return "$" not in value  # a literal key (a shell variable here holds what a step minted)


_REDIRECT = r"(>>?|\btee\s+(-a\s+)?)\s*"


def _target_pattern(target: str) -> re.Pattern[str]:
    if target.isupper():  # a variable naming the file, e.g. GITHUB_ENV, BASH_ENV
        name = rf"[\"']?\$\{{?{target}\}}?[\"']?"
    else:
        name = rf"[\"']?(\./)?{re.escape(target)}[\"']?"
    return re.compile(_REDIRECT + name + r"(\s|$|;|\))")


def credential_write(script: Script, targets: Iterable[str]) -> tuple[ScriptLine, str] | None:
    """The line where a script writes credentials to one of `targets` (the secret half first).

    A write of several variables is one write: `{ echo A=…; echo B=…; } >> "$GITHUB_ENV"`, a
    here-document, or consecutive `echo … >> "$GITHUB_ENV"` lines.
    """
    patterns = [_target_pattern(t) for t in targets]
    lines = script.lines
    regions: list[list[ScriptLine]] = []
    index = 0
    while index < len(lines):
        text = lines[index].text
        if any(p.search(text) for p in patterns):
            heredoc = re.search(r"<<-?\s*['\"]?(\w+)", text)
            if heredoc:
                end = next(
                    (
                        j
                        for j in range(index + 1, len(lines))
                        if lines[j].text.strip() == heredoc.group(1)
                    ),
                    len(lines),
                )
                regions.append(list(lines[index : end + 1]))
                index = end + 1
                continue
            start = index
            if text.lstrip().startswith(("}", ")", "done")):
                while start > 0 and not lines[start].text.rstrip().endswith(("{", "do", "(")):
                    start -= 1
            regions.append(list(lines[start : index + 1]))
        index += 1
    written: list[tuple[ScriptLine, str, bool]] = []
    for region in regions:
        for line in region:
            if _EXPORTS_CREDENTIALS.search(line.text):
                written.append(
                    (line, "the credentials of `aws configure export-credentials`", True)
                )
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", line.text):
                if is_credential_variable(name):
                    written.append((line, name, not is_id_name(name)))
    if not written:
        return None
    line, name, _ = next((w for w in written if w[2]), written[0])
    return line, name
