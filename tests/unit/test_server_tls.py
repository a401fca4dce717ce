"""The driver's TLS context: no CA store where nothing is verified, PyMySQL's own otherwise."""

from __future__ import annotations

import ssl

import pytest

from plakar_mysql.core.server import _Connection


@pytest.mark.parametrize(
    "sslp",
    [
        {},  # ssl_mode=preferred (the default): PyMySQL tries TLS, verifies nothing
        {"check_hostname": False, "verify_mode": 0},  # ssl_mode=required without ssl_ca
        {"verify_mode": "none"},
    ],
)
def test_unverified_tls_loads_no_ca_store(sslp: dict[str, object]) -> None:
    ctx = object.__new__(_Connection)._create_ssl_ctx(sslp)
    assert ctx.verify_mode == ssl.CERT_NONE
    assert not ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] == 0


def test_verified_tls_is_the_drivers_own() -> None:
    ctx = object.__new__(_Connection)._create_ssl_ctx({"verify_mode": True})
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.cert_store_stats()["x509_ca"] == len(ssl.create_default_context().get_ca_certs())
