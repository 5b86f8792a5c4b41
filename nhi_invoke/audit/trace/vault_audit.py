"""The Vault/OpenBao file audit device: one JSON object per line, a `request` and a `response`
entry per request, sharing `request.id`. `auth.accessor` is an HMAC (`hmac-sha256:...`) unless
the device was configured with `hmac_accessor=false`.

Format: https://openbao.org/docs/audit/
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from nhi_invoke.audit.trace.duck import Engine
from nhi_invoke.audit.trace.files import LogFile, is_empty
from nhi_invoke.audit.trace.model import LogEvent, Problem, SourceStats, VaultIdentity
from nhi_invoke.audit.trace.sources import Needles, SourceRead

ENTRY = json.dumps(
    {
        "time": "VARCHAR",
        "type": "VARCHAR",
        "auth": {"accessor": "VARCHAR", "display_name": "VARCHAR", "metadata": {"role": "VARCHAR"}},
        "request": {
            "id": "VARCHAR",
            "operation": "VARCHAR",
            "path": "VARCHAR",
            "mount_type": "VARCHAR",
        },
        "response": {"auth": {"accessor": "VARCHAR"}},
        "error": "VARCHAR",
    }
)


def _query(relation: str) -> str:
    # Only this module's constants are spliced in: every value is a query parameter.
    return f"""
        WITH entries AS (
            SELECT filename, from_json(json, '{ENTRY}') AS e FROM {relation}
        )
        SELECT filename, count(*) FILTER (WHERE e.request.id IS NOT NULL AND e.time IS NOT NULL),
            list(e) FILTER (WHERE
                e.auth.accessor IN (SELECT unnest($accessors::VARCHAR[]))
                OR e.response.auth.accessor IN (SELECT unnest($accessors::VARCHAR[]))
                OR e.auth.metadata.role IN (SELECT unnest($roles::VARCHAR[])))
        FROM entries GROUP BY filename
    """


class VaultAuditReader:
    name = "vault"
    suffixes = (".log", ".json", ".jsonl", ".log.gz", ".json.gz", ".jsonl.gz")

    def read(self, engine: Engine, files: Sequence[LogFile], needles: Needles) -> SourceRead:
        problems: list[Problem] = []
        lines = []
        for log in files:
            if log.first_char in ("{", ""):
                lines.append(log)
            else:
                problems.append(_not_vault(log.path))
        params = {"accessors": list(needles.vault_accessors), "roles": list(needles.vault_roles)}
        by_request: dict[str, LogEvent] = {}
        scanned = used = 0
        if lines:
            scan = engine.scan(lines, "newline_delimited", _query, params, salvage_lines=True)
            problems += scan.problems
            counted: dict[str, int] = {}
            for filename, count, hits in scan.rows:
                counted[filename] = count
                for hit in hits or ():
                    event = _event(hit)
                    # The response entry says how the request ended: it wins over the request.
                    if event is not None and (
                        event.event_id not in by_request or hit.get("type") == "response"
                    ):
                        by_request[event.event_id] = event
            failed = {p.path for p in scan.problems if p.message.endswith("skipped")}
            for log in lines:
                if log.path in failed:
                    continue
                scanned += counted.get(log.path, 0)
                if not counted.get(log.path) and not is_empty(log) and log.head.strip():
                    problems.append(_not_vault(log.path))
                else:
                    used += 1
        events = tuple(by_request.values())
        return SourceRead(events, tuple(problems), SourceStats(self.name, used, scanned))


def _not_vault(path: str) -> Problem:
    return Problem(
        path,
        "is not a Vault/OpenBao audit log; skipped",
        "pass the file a 'file' audit device writes (one JSON object per line)",
    )


def _event(entry: dict[str, Any]) -> LogEvent | None:
    request = entry.get("request") or {}
    auth = entry.get("auth") or {}
    try:
        moment = datetime.fromisoformat(str(entry.get("time")))
    except ValueError:
        return None
    if not request.get("id"):
        return None
    error = entry.get("error")
    identity = VaultIdentity(
        accessor=auth.get("accessor") or None,
        display_name=auth.get("display_name") or None,
        role=(auth.get("metadata") or {}).get("role") or None,
        minted_accessor=((entry.get("response") or {}).get("auth") or {}).get("accessor") or None,
    )
    return LogEvent(
        source="vault",
        event_id=str(request["id"]),
        event_time=moment,
        event_name=str(request.get("operation") or ""),
        service=request.get("mount_type"),
        resource=request.get("path"),
        # Vault's error texts are lists ("1 error occurred: * permission denied"): keep the gist.
        error_code=_error(error) if error else None,
        principal=identity.display_name,
        identity=identity,
    )


def _error(text: str) -> str:
    reasons = [line.strip(" \t*") for line in text.splitlines() if line.strip().startswith("*")]
    return "; ".join(reasons) or text.strip()


READER = VaultAuditReader()
