"""What one invocation fetched and issued: every OIDC token (checked, masked) and every grant
(masked, then recorded in the ledger) the moment it exists, from whichever thread.

Once the command has started (or cleanup has begun), a ledger write that fails no longer
stops anything: the first failure is kept, every credential is still released, and the
caller reports it once at the end."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from nhi_invoke import oidc
from nhi_invoke.brokers.grants import Grant, GrantRecorder, TokenSupplier
from nhi_invoke.ci.interface import Reporting, TokenSource
from nhi_invoke.errors import NhiError
from nhi_invoke.ledger.records import CredentialIssued, CredentialUpdated, Record
from nhi_invoke.ledger.store import Ledger


class Journal:
    """The tokens and grants of one invocation (or of one recovery), and the ledger they go to."""

    def __init__(
        self,
        ledger: Ledger,
        source: TokenSource,
        reporting: Reporting,
        *,
        issued_purpose: str | None = None,
    ) -> None:
        self.ledger = ledger
        # Renames the purpose of every grant issued (a recovery's are its own, not the run's).
        self.issued_purpose = issued_purpose
        self.source = source
        self.reporting = reporting
        self.grants: list[Grant] = []
        # While the command runs (a --serve refresh) its output may be mid-line: a mask
        # command must then start a line of its own, or the runner would not see it.
        self.child_running = False
        # Other code writes to the same output at any moment (the Python API's host process):
        # every mask command starts a line of its own.
        self.shared_output = False
        # From the command's start (or cleanup's) on: ledger failures are kept, not raised.
        self.tolerant = False
        self.ledger_failure: NhiError | None = None
        self.unwritten = 0
        self._token_records: dict[str, dict[str, Any]] = {}
        self._masked: set[str] = set()
        self._lock = threading.Lock()

    def write(self, record: Record) -> None:
        """Append `record` to the ledger; when tolerant, a failure is kept instead of raised."""
        try:
            self.ledger.write(record, datetime.now(UTC))
        except NhiError as error:
            with self._lock:
                self.unwritten += 1
                self.ledger_failure = self.ledger_failure or error
            if not self.tolerant:
                raise

    def mask(self, value: str) -> None:
        with self._lock:
            if value in self._masked:
                return
            self._masked.add(value)
        self.reporting.mask(value, own_line=self.child_running or self.shared_output)

    def tokens(self, audience: str, audience_flag: str | None = None) -> TokenSupplier:
        """Fetches, masks and pre-flight checks an OIDC token for one audience."""

        def supply(fresh: bool) -> str:
            token = self.source.fetch(audience)
            self.mask(token)
            claims = oidc.load_checked(token, audience, time.time(), audience_flag=audience_flag)
            with self._lock:
                self._token_records[audience] = {
                    "claims": claims.recorded(),
                    "fingerprint": oidc.fingerprint(token),
                    "fresh": fresh,
                }
            return token

        return supply

    def recorder(self, audience: str) -> GrantRecorder:
        """Records each grant as it is issued; a grant recorded again (the same broker and
        fingerprint: renewed, or holding what was obtained with it since) replaces the one
        recorded before, and the ledger records the change as `credential.updated`."""

        def record(grant: Grant) -> None:
            # Masked before anything else happens: nothing may print a secret unmasked.
            for secret in grant.secrets:
                self.mask(secret.reveal())
            with self._lock:
                known = next(
                    (
                        i
                        for i, g in enumerate(self.grants)
                        if g.fingerprint == grant.fingerprint and g.broker == grant.broker
                    ),
                    None,
                )
                if known is not None:
                    grant = dataclasses.replace(grant, purpose=self.grants[known].purpose)
                    self.grants[known] = grant
                else:
                    if self.issued_purpose is not None:
                        grant = dataclasses.replace(grant, purpose=self.issued_purpose)
                    self.grants.append(grant)
                oidc_record = self._token_records.get(audience, {})
            if known is not None:
                self.write(CredentialUpdated.of(grant))
            else:
                self.write(CredentialIssued.of(grant, oidc_record))

        return record

    def adopt(self, grants: Iterable[Grant]) -> None:
        """Take grants recorded earlier (by a crashed invocation) to release them."""
        with self._lock:
            self.grants.extend(grants)
