"""STS answers, as the query API writes them, for scripted servers in unit tests."""

from __future__ import annotations

OK = """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAEXAMPLEEXAMPLE01</AccessKeyId>
<SecretAccessKey>secret-key</SecretAccessKey><SessionToken>session-token</SessionToken>
<Expiration>2030-01-01T00:15:00Z</Expiration></Credentials><AssumedRoleUser>
<AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/deploy/s</Arn>
</AssumedRoleUser></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"""


def error(code: str, message: str = "no") -> str:
    return (
        f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "</ErrorResponse>"
    )
