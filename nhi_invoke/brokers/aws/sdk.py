"""The AWS credential of a Python API task as a boto3 session (boto3 imported only here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nhi_invoke.brokers.grants import Grant

if TYPE_CHECKING:
    import boto3


def session(grant: Grant, region: str) -> boto3.Session:
    """A boto3 session holding exactly this credential, in the task's region.

    No profile is read: an inherited `AWS_PROFILE` naming a missing profile would otherwise
    fail every client, and a profile must not add another identity.
    """
    import boto3  # noqa: PLC0415 - only when a task asks for a session
    import botocore.session  # noqa: PLC0415

    core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    env = grant.environment
    return boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"].reveal(),
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"].reveal(),
        aws_session_token=env["AWS_SESSION_TOKEN"].reveal(),
        region_name=region,
        botocore_session=core,
    )
