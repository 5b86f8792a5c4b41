"""The network environment is read as the SDKs read it: proxies with the standard library's
semantics (which botocore and requests use), CA bundles in the SDKs' order."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nhi_invoke.errors import ConfigError
from nhi_invoke.net import GENERAL_CA_VARIABLES
from nhi_invoke.net.environment import (
    CaBundle,
    NetworkEnvironment,
    Trust,
    bypasses,
    ca_bundle,
    environment_proxies,
    parse_proxy,
)
from nhi_invoke.settings.option import Origin, Source

PROXY_NAMES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture
def process_environ() -> Iterator[None]:
    """os.environ without proxy variables, restored after the test (the standard library's
    functions read nothing else)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            del os.environ[name]
    yield
    os.environ.clear()
    os.environ.update(saved)


ENVIRONMENTS = [
    {},
    {"HTTPS_PROXY": "http://upper:1"},
    {"https_proxy": "http://lower:1"},
    {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"},
    {"HTTPS_PROXY": "http://upper:1", "https_proxy": ""},
    {"HTTP_PROXY": "http://h:3", "REQUEST_METHOD": "GET"},
    {"HTTP_PROXY": "http://h:3", "http_proxy": "http://l:4", "REQUEST_METHOD": "GET"},
    {"NO_PROXY": "example.com", "no_proxy": "other.org"},
    {"No_Proxy": "mixed.case", "HTTPS_PROXY": "http://p:1"},
]


@pytest.mark.usefixtures("process_environ")
@pytest.mark.parametrize("environ", ENVIRONMENTS)
def test_proxy_variables_are_read_as_the_standard_library_reads_them(
    environ: dict[str, str],
) -> None:
    os.environ.update(environ)
    expected = urllib.request.getproxies_environment()
    assert {k: v for k, (v, _) in environment_proxies(environ).items()} == expected


NO_PROXY_CASES = [
    ("sts.amazonaws.com", "amazonaws.com"),
    ("sts.amazonaws.com:443", ".amazonaws.com"),
    ("notamazonaws.com", "amazonaws.com"),
    ("sts.amazonaws.com", "*"),
    ("sts.amazonaws.com", "*,other"),
    ("127.0.0.1:8080", "127.0.0.1"),
    ("127.0.0.1:8080", "127.0.0.1:8080"),
    ("host:8080", "host:9090"),
    ("HOST.Example.COM", "example.com"),
    ("[::1]:443", "[::1]"),
    ("a.b", " , ,b "),
    ("a.b", ""),
    ("host:", "host"),
    ("host:12a", "host"),
]


@pytest.mark.parametrize(("netloc", "no_proxy"), NO_PROXY_CASES)
def test_no_proxy_exempts_what_the_standard_library_exempts(netloc: str, no_proxy: str) -> None:
    expected = urllib.request.proxy_bypass_environment(netloc, {"no": no_proxy})
    assert bypasses(netloc, no_proxy) == bool(expected)


@settings(max_examples=300, deadline=None)
@given(
    netloc=st.text(alphabet="abc.:019[]-", max_size=16),
    no_proxy=st.text(alphabet="abc.:019*, -", max_size=16),
)
def test_no_proxy_matches_the_standard_library_for_any_text(netloc: str, no_proxy: str) -> None:
    expected = urllib.request.proxy_bypass_environment(netloc, {"no": no_proxy})
    assert bypasses(netloc, no_proxy) == bool(expected)


def test_without_no_proxy_nothing_is_exempt() -> None:
    assert not bypasses("127.0.0.1", None)


def test_a_proxy_url_with_credentials_gives_a_basic_header_and_hides_them() -> None:
    proxy = parse_proxy("http://us%40er:p%3Ass@proxy.corp:3128", "HTTPS_PROXY")
    assert (proxy.host, proxy.port) == ("proxy.corp", 3128)
    assert proxy.authorization == "Basic dXNAZXI6cDpzcw=="  # us@er:p:ss
    assert proxy.display == "http://proxy.corp:3128 (HTTPS_PROXY)"
    assert "p:ss" not in repr(proxy)
    assert "dXNA" not in repr(proxy)


def test_a_bare_authority_is_an_http_proxy_on_port_80_by_default() -> None:
    assert parse_proxy("proxy.corp:8080", "https_proxy").port == 8080
    assert parse_proxy("proxy.corp", "https_proxy").port == 80


@pytest.mark.parametrize("value", ["https://proxy:443", "socks5://proxy:1080"])
def test_a_proxy_that_is_not_plain_http_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigError, match="HTTPS_PROXY names a"):
        parse_proxy(value, "HTTPS_PROXY")


def test_a_proxy_url_that_does_not_parse_is_a_configuration_error() -> None:
    for value in ("http://u:pw@[::1", "http://u:pw@ho\uff03st:1"):  # IPv6, NFKC netloc
        with pytest.raises(ConfigError, match="HTTPS_PROXY is not a URL") as refused:
            parse_proxy(value, "HTTPS_PROXY")
        assert "pw" not in str(refused.value)


def test_a_refused_proxy_is_named_with_its_port_and_without_its_password() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_proxy("https://user:s3cret@proxy.corp:3128", "HTTP_PROXY")
    assert "(https://proxy.corp:3128)" in str(refused.value)
    assert "s3cret" not in str(refused.value)
    assert "user" not in str(refused.value)


def test_the_proxy_for_a_url_follows_its_scheme_and_no_proxy() -> None:
    environment = NetworkEnvironment(
        {"HTTPS_PROXY": "http://s:1", "HTTP_PROXY": "http://p:2", "NO_PROXY": "internal"}
    )
    https = environment.proxy_for("https", "sts.amazonaws.com")
    http = environment.proxy_for("http", "token.example")
    assert https is not None
    assert (https.host, https.variable) == ("s", "HTTPS_PROXY")
    assert http is not None
    assert (http.host, http.variable) == ("p", "HTTP_PROXY")
    assert environment.proxy_for("https", "sts.internal") is None
    # No fallback from one scheme's proxy to the other's, as in the SDKs.
    assert NetworkEnvironment({"HTTP_PROXY": "http://p:2"}).proxy_for("https", "x") is None


def test_ca_bundles_in_the_sdks_order_and_a_given_bundle_over_all() -> None:
    environ = {
        "AWS_CA_BUNDLE": "/aws.pem",
        "REQUESTS_CA_BUNDLE": "/requests.pem",
        "CURL_CA_BUNDLE": "/curl.pem",
        "SSL_CERT_FILE": "/openssl.pem",
    }
    environment = NetworkEnvironment(environ)
    assert environment.trust_for(("AWS_CA_BUNDLE",)).cafile == "/aws.pem"
    assert environment.trust_for(GENERAL_CA_VARIABLES).cafile == "/requests.pem"
    without_requests = NetworkEnvironment({k: v for k, v in environ.items() if "REQ" not in k})
    assert without_requests.trust_for(GENERAL_CA_VARIABLES).cafile == "/curl.pem"
    openssl_only = NetworkEnvironment({"SSL_CERT_FILE": "/openssl.pem"})
    trust = openssl_only.trust_for(("AWS_CA_BUNDLE",))
    assert (trust.cafile, trust.label) == ("/openssl.pem", "SSL_CERT_FILE=/openssl.pem")
    given_bundle = NetworkEnvironment(environ, CaBundle("/given.pem", "--ca-bundle"))
    for variables in (("AWS_CA_BUNDLE",), GENERAL_CA_VARIABLES):
        assert given_bundle.trust_for(variables).label == "--ca-bundle /given.pem"
    assert NetworkEnvironment({}).trust_for(GENERAL_CA_VARIABLES).label == "the system's CAs"


def test_a_ca_bundle_option_must_be_a_pem_file(tmp_path: Path) -> None:
    source = Source(Origin.FLAG, "--ca-bundle")
    with pytest.raises(ConfigError, match=r"--ca-bundle .*missing.pem: No such file"):
        ca_bundle(str(tmp_path / "missing.pem"), source)
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        ca_bundle(str(not_pem), source)
    good = tmp_path / "ca.pem"
    good.write_text("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n")
    assert ca_bundle(str(good), source) == CaBundle(str(good), "--ca-bundle")


def test_all_proxy_is_not_read_as_botocore_does_not() -> None:
    environment = NetworkEnvironment({"ALL_PROXY": "http://all:1", "all_proxy": "http://a:2"})
    assert environment.proxy_for("https", "sts.amazonaws.com") is None
    assert environment.proxy_for("http", "token.example") is None


def test_a_bundle_replaces_the_systems_cas(tmp_path: Path) -> None:
    import trustme  # noqa: PLC0415

    from nhi_invoke.net.connection import Network  # noqa: PLC0415

    bundle = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    network = Network({}, CaBundle(str(bundle), "--ca-bundle"))
    given = network._context(network.environment.trust_for(GENERAL_CA_VARIABLES))
    assert given.cert_store_stats()["x509_ca"] == 1  # the bundle's CA, and no other
    system = Network({})._context(NetworkEnvironment({}).trust_for(GENERAL_CA_VARIABLES))
    assert system.cert_store_stats()["x509_ca"] != 1


@pytest.mark.parametrize(
    ("trust", "fix"),
    [
        (Trust(None, None, "the system's CAs", ("AWS_CA_BUNDLE",)), "AWS_CA_BUNDLE or --ca-bundle"),
        # A service's own CA setting wins over --ca-bundle, so the fix names only its variable.
        (
            Trust("/ca.pem", None, "NHI_AZURE_CA_BUNDLE=/ca.pem", ("NHI_AZURE_CA_BUNDLE",),
                  from_service=True),
            "give its CA with NHI_AZURE_CA_BUNDLE",
        ),
    ],
)  # fmt: skip
def test_an_untrusted_certificates_fix_names_the_setting_that_applies(
    trust: Trust, fix: str
) -> None:
    import ssl  # noqa: PLC0415

    from nhi_invoke.net.connection import UntrustedCertificate, _Where  # noqa: PLC0415

    failure = ssl.SSLCertVerificationError(1, "certificate verify failed")
    failure.verify_message = "unable to get local issuer certificate"
    mapped = _Where("sts.internal", 443, None, trust).failure(failure, 5.0)
    assert isinstance(mapped, UntrustedCertificate)
    assert mapped.hint.endswith(fix)
    assert ("--ca-bundle" in mapped.hint) is not trust.from_service
