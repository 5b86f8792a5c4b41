"""botocore for the signed calls: the SigV4 signer (chained AssumeRole) and clients (IAM),
imported only for them. A client builds, signs and parses; the bytes go through
`nhi_invoke.net`, like every request of ours (its `before-send` event hands them over)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nhi_invoke import net
from nhi_invoke.brokers.aws.sts_query import AWS_CA_VARIABLES

IAM_TIMEOUT_SECONDS = 15.0  # bounded further by the retry deadline (net.request)

if TYPE_CHECKING:
    from nhi_invoke.brokers.aws.sts_query import StsCredentials


def preload() -> None:
    """Import botocore's signer ahead of its first use (called from a background thread)."""
    import botocore.auth  # noqa: PLC0415
    import botocore.awsrequest  # noqa: PLC0415
    import botocore.credentials  # noqa: PLC0415, F401


def sigv4_headers(
    url: str, body: bytes, region: str, credentials: StsCredentials, headers: dict[str, str]
) -> dict[str, str]:
    """The headers of a POST to STS, signed with SigV4 by botocore's signer."""
    import botocore.auth  # noqa: PLC0415
    import botocore.awsrequest  # noqa: PLC0415
    import botocore.credentials  # noqa: PLC0415

    request = botocore.awsrequest.AWSRequest(
        method="POST", url=url, data=body, headers=dict(headers)
    )
    signer = botocore.credentials.Credentials(
        credentials.access_key_id,
        credentials.secret_access_key.reveal(),
        credentials.session_token.reveal(),
    )
    botocore.auth.SigV4Auth(signer, "sts", region).add_auth(request)
    return dict(request.headers.items())


@functools.cache
def _loader(data_path: str | None) -> Any:
    """botocore's data files (service models, endpoint rules), parsed once per process.

    A long-lived process (the Python API) revokes a session per task, and each new botocore
    session would parse them again (~80 ms of CPU). Once loaded they are only read, as when
    the clients of one botocore session share them.
    """
    import botocore.loaders  # noqa: PLC0415

    return botocore.loaders.create_loader(data_path)


def client(service: str, *, region: str, endpoint: str | None, credentials: StsCredentials) -> Any:
    """A client signing with `credentials`; our own retries, so botocore makes one attempt."""
    import botocore.config  # noqa: PLC0415 - ~150 ms, only on the paths that sign
    import botocore.session  # noqa: PLC0415

    from nhi_invoke.retry import remaining  # noqa: PLC0415

    # An inherited AWS_PROFILE naming a missing profile would make botocore raise
    # ProfileNotFound; credentials here are explicit, so no profile is read at all.
    session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    session.register_component("data_loader", _loader(session.get_config_variable("data_path")))
    created = session.create_client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key.reveal(),
        aws_session_token=credentials.session_token.reveal(),
        config=botocore.config.Config(
            retries={"total_max_attempts": 1},
            connect_timeout=remaining(5),
            read_timeout=remaining(15),
        ),
    )
    created.meta.events.register("before-send", send_through_seam)
    return created


class _Body:
    """A response body as botocore reads it (`stream()`)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def send_through_seam(request: Any, **_: Any) -> Any:
    """botocore's `before-send`: send a signed request through `nhi_invoke.net` (its proxies,
    CA bundles and deadline) and hand botocore the answer to parse."""
    from botocore.awsrequest import AWSResponse  # noqa: PLC0415
    from botocore.compat import HTTPHeaders  # noqa: PLC0415

    body = request.body
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode()
    answer = net.request(
        request.method,
        request.url,
        body=body or None,
        headers={k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()},
        timeout=IAM_TIMEOUT_SECONDS,
        ca_variables=AWS_CA_VARIABLES,
    )
    headers = HTTPHeaders.from_pairs(list(answer.headers.items()))
    return AWSResponse(request.url, answer.status, headers, _Body(answer.body))


def error_code(exc: Any) -> tuple[str, int]:
    """The error code and HTTP status of a botocore ClientError."""
    response = getattr(exc, "response", {}) or {}
    code = str(response.get("Error", {}).get("Code", "Unknown"))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status
