"""The AWS container-credentials endpoint refuses a wrong token, whatever its characters."""

from __future__ import annotations

from typing import Any

import pytest

from nhi_invoke.brokers.aws.endpoint import ContainerCredentials


class _NoGrant:
    """A `CurrentGrant` never reached: the token is checked first."""

    def get(self) -> Any:
        raise AssertionError("a refused request must not be served a credential")


@pytest.mark.parametrize("presented", ["", "wrong", "tökén-ü", "\udcff"])
def test_a_wrong_or_non_ascii_token_is_401_not_an_error(presented: str) -> None:
    endpoint = ContainerCredentials(_NoGrant())  # type: ignore[arg-type]
    reply = endpoint.handle("", {"Authorization": presented}, {})
    assert reply.status == 401
