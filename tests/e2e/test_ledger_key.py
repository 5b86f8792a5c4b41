"""Where the ledger's HMAC key comes from, and what happens when a configured key cannot be
loaded (docs/threat-model.md)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import NHI, RUNS, Result, declare_secrets, ledger_path, run_nhi

pytestmark = pytest.mark.e2e
KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0-ledger-key"
ROOT = Path(__file__).parent.parent.parent


def _run(sandbox: dict[str, Any], marker: Path, *flags: str) -> list[str]:
    return [
        "run",
        "--step-id",
        "keyed",
        *flags,
        "--aws-role-arn",
        sandbox["target_role_arn"],
        "--",
        "sh",
        "-c",
        # The command looks for the key where it could be: its variables and open descriptors.
        'env | grep -c "^NHI_LEDGER_KEY" > "$0"; ls /proc/self/fd >> "$0"',
        str(marker),
    ]


def _key_file(folder: Path, mode: int = 0o600, text: str = KEY + "\n") -> Path:
    path = folder / "ledger.key"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_key_from_a_descriptor_signs_every_line_and_is_gone_before_the_command_starts(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    declare_secrets(tmp_path, KEY)
    marker = tmp_path / "seen"
    read, write = os.pipe()
    os.write(write, KEY.encode() + b"\n")
    os.close(write)
    try:
        done = subprocess.run(
            [NHI, *_run(sandbox, marker, "--ledger-key-file", f"fd:{read}")],
            env=github_env,
            capture_output=True,
            text=True,
            pass_fds=(read,),
            check=False,
        )
    finally:
        os.close(read)
    RUNS.append(Result(done.returncode, done.stdout, done.stderr))
    assert done.returncode == 0, done.stderr
    variables, *descriptors = marker.read_text().split()
    assert variables == "0"
    assert str(read) not in descriptors
    key_file = _key_file(tmp_path)
    checked = run_nhi(
        ["audit", "verify", str(ledger_path(github_env)), "--ledger-key-file", str(key_file)],
        github_env,
    )
    assert checked.code == 0, checked.stderr
    assert "lines intact" in checked.stdout
    assert "hash chain and HMACs (key " in checked.stdout
    # The same key given as the variable gives the same key id.
    same = run_nhi(
        ["audit", "verify", str(ledger_path(github_env)), "--require-hmac"],
        github_env | {"NHI_LEDGER_KEY": KEY},
    )
    assert same.code == 0, same.stderr


def test_a_private_key_file_named_by_the_variable_signs_the_ledger_and_is_hidden(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    declare_secrets(tmp_path, KEY)
    key_file = _key_file(tmp_path)
    marker = tmp_path / "seen"
    result = run_nhi(_run(sandbox, marker), github_env | {"NHI_LEDGER_KEY_FILE": str(key_file)})
    assert result.code == 0, result.stderr
    assert marker.read_text().split()[0] == "0"  # neither NHI_LEDGER_KEY nor _FILE
    verified = run_nhi(
        ["audit", "verify", str(ledger_path(github_env)), "--require-hmac"],
        github_env | {"NHI_LEDGER_KEY_FILE": str(key_file)},
    )
    assert verified.code == 0, verified.stderr


def test_a_key_file_that_others_can_read_is_refused_before_anything_is_minted(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    declare_secrets(tmp_path, KEY)
    key_file = _key_file(tmp_path, 0o644)
    marker = tmp_path / "seen"
    result = run_nhi(
        _run(sandbox, marker),
        github_env | {"NHI_LEDGER_KEY_FILE": str(key_file)},
    )
    assert result.code == 78
    assert result.stderr.splitlines() == [
        f"nhi-invoke: error: the ledger key file {key_file} is open to others (mode 0644); "
        f"fix: chmod 600 {key_file}"
    ]
    assert not marker.exists()
    assert not ledger_path(github_env).exists()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("fd:2", "is not fd:N with N of 3 or above"),
        ("fd:97", "fd:97: descriptor 97 is not open"),
        ("{tmp}/missing.key", "cannot read the ledger key from"),
        ("{tmp}", "is not a regular file"),
        ("{short}", "is shorter than 16 characters"),
        ("{key} NHI_LEDGER_KEY", "both NHI_LEDGER_KEY and a ledger key file"),
    ],
)
def test_a_ledger_key_that_cannot_be_loaded_stops_the_run_with_78(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path, given: str, message: str
) -> None:
    declare_secrets(tmp_path, KEY)
    short = tmp_path / "short.key"
    short.write_text("too-short\n")
    short.chmod(0o600)
    env = dict(github_env)
    if given.endswith(" NHI_LEDGER_KEY"):
        given = given.removesuffix(" NHI_LEDGER_KEY")
        env["NHI_LEDGER_KEY"] = KEY
    source = given.format(tmp=tmp_path, short=short, key=_key_file(tmp_path))
    marker = tmp_path / "seen"
    result = run_nhi(_run(sandbox, marker, "--ledger-key-file", source), env)
    assert result.code == 78, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr
    assert not marker.exists()
    assert not ledger_path(github_env).exists()


def _keyring_env(github_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return github_env | {
        "PYTHON_KEYRING_BACKEND": "tests.keyring_file_backend.FileKeyring",
        "TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
        "PYTHONPATH": str(ROOT),
    }


def test_a_keyring_key_that_cannot_be_read_is_an_error_not_a_ledger_without_hmacs(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    stored = _keyring_env(github_env, tmp_path)
    assert run_nhi(["audit", "key", "init"], stored).code == 0
    marker = tmp_path / "seen"
    # The keyring is there, but its backend fails (a locked or absent keyring).
    locked = github_env | {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    result = run_nhi(_run(sandbox, marker), locked)
    assert result.code == 78
    (line,) = result.stderr.splitlines()
    assert "a ledger key is kept in the OS keyring" in line
    assert "cannot be read (NoKeyringError)" in line
    assert "keyring-key-id to write ledgers without an HMAC" in line
    assert not marker.exists()
    assert not ledger_path(github_env).exists()
    # keyring itself cannot be imported (a broken install): the same, never UnboundLocalError.
    shim = tmp_path / "shim" / "keyring"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('a broken keyring install')\n")
    broken = run_nhi(_run(sandbox, marker), github_env | {"PYTHONPATH": str(shim.parent)})
    assert broken.code == 78
    assert "keyring cannot be imported (ImportError)" in broken.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    verify = run_nhi(["audit", "verify", str(empty)], locked)
    assert verify.code == 78  # a configured key that cannot load: no silent chain-only check


def test_verify_without_a_key_does_not_claim_integrity_and_require_hmac_fails(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    """A command that rewrites the ledger and recomputes the chain (it has no key) passes a
    keyless check, which says so; --require-hmac fails it."""
    declare_secrets(tmp_path, KEY)
    keyed = github_env | {"NHI_LEDGER_KEY": KEY}
    assert run_nhi(_run(sandbox, tmp_path / "seen"), keyed).code == 0
    path = ledger_path(github_env)
    forger = [
        "python3",
        "-c",
        "import json,sys,hashlib\n"
        "p=sys.argv[1]; prev='0'*64; out=[]\n"
        "for line in open(p):\n"
        "    r=json.loads(line); r.pop('hmac',None); r.pop('key_id',None); r['prev']=prev\n"
        "    r['principal']=r.get('principal') and 'arn:aws:sts::1:assumed-role/x/forged'\n"
        "    s=json.dumps(r,separators=(',',':')); prev=hashlib.sha256(s.encode()).hexdigest()\n"
        "    out.append(s)\n"
        "open(p,'w').write('\\n'.join(out)+'\\n')\n",
        str(path),
    ]
    subprocess.run(forger, check=True)
    keyless = run_nhi(["audit", "verify", str(path)], github_env)
    assert keyless.code == 0, keyless.stderr
    assert "intact" not in keyless.stdout
    assert "hash chain consistent (no HMAC key: anyone could have re-chained it)" in keyless.stdout
    required = run_nhi(["audit", "verify", str(path), "--require-hmac"], github_env)
    assert required.code == 1
    assert "no HMAC key to check it with (--require-hmac)" in required.stderr
    with_key = run_nhi(["audit", "verify", str(path), "--require-hmac"], keyed)
    assert with_key.code == 1
    assert "line 1 has no HMAC" in with_key.stderr
