"""What the Vault broker costs, and how soon a dynamic database user is gone after the step.

    python benchmarks/vault.py [--rounds 15]

Starts, in this process, the sandbox's OIDC issuer (GitHub's token protocol) and an OpenBao
dev server with PostgreSQL behind its database engine (nhi_invoke.sandbox.vault), then runs,
interleaved, once per round: `nhi-invoke run` with a login only, with a KV read, with a KV
read and a database user; and the same login, read and revocation with the bao CLI as a step
would script them (the baseline: three processes of a Go binary, the OIDC token already
fetched). After each run with a database user it polls PostgreSQL (every 5 ms) until the
user is gone: the lag Vault's background revocation leaves after `revoke-self` answers.
Writes benchmarks/vault_results.json. Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nhi_invoke.sandbox.oidc_issuer import OidcIssuer
from nhi_invoke.sandbox.vault import IssuerTrust, VaultSandbox, VaultServers

HERE = Path(__file__).resolve().parent
NHI = str(Path(sys.executable).with_name("nhi-invoke"))
PROBE = "import json, os; open(os.environ['OUT'], 'w').write(os.environ.get('PGUSER', ''))"


def _roles(vault: VaultSandbox) -> set[str]:
    assert vault.database is not None
    server = vault.database.postgres
    done = subprocess.run(
        [server.psql, "-X", "-A", "-t", "-h", server.host, "-p", str(server.port), "-U",
         server.superuser, "-d", server.database, "-c", "SELECT rolname FROM pg_roles"],
        env={"PATH": os.defpath, "PGPASSWORD": server.superuser_password.reveal()},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(done.stdout.split())


def _timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    issuer = OidcIssuer().start()
    trust = IssuerTrust(issuer.url, issuer.discovery()["jwks_uri"], issuer.run.repository)
    work = Path(tempfile.mkdtemp(prefix="nhi-bench-vault-"))
    with VaultServers(trust, database=True) as vault:
        assert vault.database is not None
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(work),
            "RUNNER_TEMP": str(work),
            **issuer.run.runner_environment(),
            "ACTIONS_ID_TOKEN_REQUEST_URL": issuer.request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": issuer.request_token,
            "OUT": str(work / "user"),
        }
        base = [NHI, "run", "--quiet", "--vault-addr", vault.address, "--vault-role", vault.role]
        kv = ["--vault-secret", f"{vault.kv2.api_path} api_key | KEY"]
        creds = vault.database.creds_path
        db = [
            "--vault-secret",
            f"{creds} username | PGUSER",
            "--vault-secret",
            f"{creds} password | PGPASSWORD",
        ]
        probe = ["--", sys.executable, "-c", PROBE]
        cases = {
            "login": base + probe,
            "login+kv": base + kv + probe,
            "login+kv+db": base + kv + db + probe,
        }
        times: dict[str, list[float]] = {name: [] for name in (*cases, "bao CLI login+kv+revoke")}
        lags: list[float] = []
        jwt_file = work / "jwt"
        bao = {"PATH": os.defpath, "HOME": str(work), "VAULT_ADDR": vault.address}
        for _ in range(rounds):
            for name, args in cases.items():
                times[name].append(_timed(args, env))
                if name == "login+kv+db":
                    ended, user = time.perf_counter(), (work / "user").read_text()
                    while user in _roles(vault):
                        time.sleep(0.005)
                    lags.append(time.perf_counter() - ended)
            jwt_file.write_text(issuer.mint(vault.audience))
            start = time.perf_counter()
            login = subprocess.run(
                [vault.binary, "write", "-field=token", "auth/jwt/login", f"role={vault.role}", f"jwt=@{jwt_file}"],  # noqa: E501
                env=bao, capture_output=True, text=True, check=True,
            )  # fmt: skip
            with_token = bao | {"VAULT_TOKEN": login.stdout.strip()}
            for command in (["kv", "get", vault.kv2.cli_path], ["token", "revoke", "-self"]):
                subprocess.run(
                    [vault.binary, *command], env=with_token, capture_output=True, check=True
                )
            times["bao CLI login+kv+revoke"].append(time.perf_counter() - start)
    issuer.stop()
    results = {
        "rounds": rounds,
        "median_ms": {name: round(statistics.median(t) * 1000, 1) for name, t in times.items()},
        "database_user_gone_after_exit_ms": {
            "median": round(statistics.median(lags) * 1000, 1),
            "max": round(max(lags) * 1000, 1),
        },
    }
    (HERE / "vault_results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
