"""Database TLS: the DSN's sslmode/sslrootcert/sslcert/sslkey reach every connection the kit opens
(the SQLAlchemy engine, the bare asyncpg hot pool, Alembic migrations), against a real PostgreSQL
serving TLS with a certificate from a CA made here; and sslmode=disable still reaches a server
without TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text

from gameplane.devtools.infra import EmbeddedPostgres, tls_postgres_bin_dir
from gameplane.kit import migrate
from gameplane.kit.db import Database

NOW = dt.datetime.now(dt.UTC)


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(minutes=5))
            .not_valid_after(NOW + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))  # fmt: skip
    return key, cert


def _leaf(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, cn: str,
          sans: list[x509.GeneralName]) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(minutes=5)).not_valid_after(NOW + dt.timedelta(days=1)))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write(path: Path, key: ec.EllipticCurvePrivateKey | None = None, cert: x509.Certificate | None = None) -> Path:
    if key is not None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
    else:
        assert cert is not None
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


class Pki:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        ca_key, ca = _ca("gameplane test CA")
        _, other = _ca("somebody else's CA")
        self.ca = _write(root / "ca.crt", cert=ca)
        self.wrong_ca = _write(root / "wrong-ca.crt", cert=other)
        # The server's certificate names 127.0.0.1 (verify-full checks it) but not "localhost".
        key, cert = _leaf(ca_key, ca, "postgres", [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        self.server_key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption())
        self.server_cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        ckey, ccert = _leaf(ca_key, ca, "postgres", [])
        self.client_key = _write(root / "client.key", key=ckey)
        self.client_cert = _write(root / "client.crt", cert=ccert)


@pytest.fixture(scope="module")
def tls_pg(tmp_path_factory: pytest.TempPathFactory, pg_template_cache: Path) -> Iterator[tuple[EmbeddedPostgres, Pki]]:
    bin_dir = tls_postgres_bin_dir()
    if bin_dir is None:
        reason = "no PostgreSQL build with TLS (the wheel's has none): apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(f"TLS TESTS SKIPPED: {reason}")
    root = tmp_path_factory.mktemp("tls")
    pki = Pki(root / "pki")
    data = root / "pg"
    data.mkdir()
    # In the data directory: start() hands it to the server's user (postgres refuses a key file
    # that another user owns or that others can read).
    (data / "server.key").write_bytes(pki.server_key_pem)
    (data / "server.key").chmod(0o600)
    (data / "server.crt").write_bytes(pki.server_cert_pem)
    (data / "ca.crt").write_bytes(pki.ca.read_bytes())
    server = EmbeddedPostgres(data, template_cache=pg_template_cache, bin_dir=bin_dir, settings={
        "ssl": "on", "ssl_cert_file": str(data / "server.crt"), "ssl_key_file": str(data / "server.key"),
        "ssl_ca_file": str(data / "ca.crt")})
    server.start()
    server.create_database("gp_tls")
    yield server, pki
    server.stop()


def _url(server: EmbeddedPostgres, database: str, **params: str | Path) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{server.dsn(database)}?{query}" if query else server.dsn(database)


async def _tls_of_both_pools(db: Database) -> tuple[bool, bool]:
    async with db.engine.connect() as conn:
        engine_ssl = (await conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))).scalar()
    pool = await db.open_pool(2)
    pool_ssl = await pool.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    return bool(engine_ssl), bool(pool_ssl)


async def test_verify_full_with_the_right_ca_uses_tls_on_every_pool(tls_pg: tuple[EmbeddedPostgres, Pki]) -> None:
    server, pki = tls_pg
    db = Database(_url(server, "gp_tls", sslmode="verify-full", sslrootcert=pki.ca))
    try:
        assert await _tls_of_both_pools(db) == (True, True)
    finally:
        await db.dispose()


async def test_a_client_certificate_from_the_dsn_is_presented(tls_pg: tuple[EmbeddedPostgres, Pki]) -> None:
    server, pki = tls_pg
    db = Database(_url(server, "gp_tls", sslmode="verify-full", sslrootcert=pki.ca,
                       sslcert=pki.client_cert, sslkey=pki.client_key))
    try:
        async with db.engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))).one()
        assert row.ssl is True and row.client_dn == "/CN=postgres"
        # Negative control: without sslcert/sslkey no certificate is presented.
        plain = Database(_url(server, "gp_tls", sslmode="verify-full", sslrootcert=pki.ca))
        try:
            async with plain.engine.connect() as conn:
                query = text("SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                dn = (await conn.execute(query)).scalar()
            assert dn is None
        finally:
            await plain.dispose()
    finally:
        await db.dispose()


async def test_a_wrong_ca_is_refused_on_every_pool(tls_pg: tuple[EmbeddedPostgres, Pki]) -> None:
    server, pki = tls_pg
    db = Database(_url(server, "gp_tls", sslmode="verify-full", sslrootcert=pki.wrong_ca))
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await db.ping()
        with pytest.raises(ssl.SSLCertVerificationError):
            await db.open_pool(2)
    finally:
        await db.dispose()


async def test_verify_full_checks_the_host_name(tls_pg: tuple[EmbeddedPostgres, Pki]) -> None:
    server, pki = tls_pg
    # The right CA, but "localhost" is not a name the certificate carries.
    url = _url(server, "gp_tls", sslmode="verify-full", sslrootcert=pki.ca).replace("127.0.0.1", "localhost")
    db = Database(url)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await db.ping()
    finally:
        await db.dispose()
    ca_only = Database(url.replace("verify-full", "verify-ca"))
    try:
        await ca_only.ping()  # verify-ca checks the chain, not the name
    finally:
        await ca_only.dispose()


async def test_migrations_honour_the_dsn_tls_settings(tls_pg: tuple[EmbeddedPostgres, Pki]) -> None:
    server, pki = tls_pg
    server.create_database("gp_tls_migrations")
    with pytest.raises(ssl.SSLCertVerificationError):
        await migrate.upgrade_async("gameplane.players",
                                    _url(server, "gp_tls_migrations", sslmode="verify-full", sslrootcert=pki.wrong_ca))
    await migrate.upgrade_async("gameplane.players",
                                _url(server, "gp_tls_migrations", sslmode="verify-full", sslrootcert=pki.ca))
    assert server.psql("SELECT count(*) FROM alembic_version", database="gp_tls_migrations").strip() == "1"


async def test_sslmode_disable_reaches_a_server_without_tls(pg: EmbeddedPostgres,
                                                           tls_pg: tuple[EmbeddedPostgres, Pki]) -> None:
    _, pki = tls_pg
    for url in (_url(pg, "postgres", sslmode="disable"), pg.dsn("postgres")):
        db = Database(url)
        try:
            assert await _tls_of_both_pools(db) == (False, False)
        finally:
            await db.dispose()
    # Negative control: the non-TLS server refuses a client that demands TLS.
    strict = Database(_url(pg, "postgres", sslmode="verify-full", sslrootcert=pki.ca))
    try:
        with pytest.raises(ConnectionError):
            await strict.ping()
    finally:
        await strict.dispose()
