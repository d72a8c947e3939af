"""Connections built by the providers' hooks: every documented extra works (issue 14 items 3 and 6).

TLS: a PostgreSQL cluster of the installed binaries is started by the fixture (``initdb`` /
``pg_ctl``, a self-signed certificate made here, a free port), and whether a session uses TLS is
read from the server's own ``pg_stat_ssl``. SQLite: two real reader processes and a writer process
work on one file at once.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bulksync.errors import ConfigurationError, SourceConnectionError
from bulksync.hooks.sql import SqlAlchemyHook
from tests.conftest import ROOT, service_missing
from tests.integration.test_sql_source import read_all, source

SSL_QUERY = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (its own CA) and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crt, pem = folder / f"{name}.crt", folder / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pem.chmod(0o600)
    return crt, pem


def _as_postgres(args: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator[dict[str, Any]]:
    """A throw-away PostgreSQL cluster with TLS on (TLS and plain connections both allowed)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        service_missing("no PostgreSQL server binaries (initdb) under /usr/lib/postgresql")
    bindir = Path(bins[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="bulksync-tls-"))
    folder.chmod(0o755)
    crt, key = _self_signed(folder, "server")
    other_ca, _ = _self_signed(folder, "other-ca")
    data, port = folder / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(key, "postgres")
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-N"]),
        check=True,
        capture_output=True,
    )
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{folder}'\n"
            f"ssl = on\nssl_cert_file = '{crt}'\nssl_key_file = '{key}'\nfsync = off\n"
        )
    (data / "pg_hba.conf").write_text(
        "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 trust\nlocal all all trust\n"
    )
    log = folder / "server.log"
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres", str(folder)], check=True)
    subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield {"port": port, "ca": crt, "other_ca": other_ca}
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


def _pg_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, port: int, **extra: Any) -> None:
    import json

    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": port,
                "login": "postgres",
                "schema": "postgres",
                "extra": extra,
            }
        ),
    )


def _ssl_of(conn_id: str) -> tuple[bool, str | None]:
    hook = SqlAlchemyHook(conn_id)
    try:
        with hook.connect() as conn:
            ssl, version = conn.exec_driver_sql(SSL_QUERY).one()
            return bool(ssl), version
    finally:
        hook.engine.dispose()


def test_sslmode_require_connects_over_tls(tls_postgres: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _pg_conn(monkeypatch, "pg_tls", tls_postgres["port"], sslmode="require")
    ssl, version = _ssl_of("pg_tls")
    assert ssl is True and version and version.startswith("TLS")


def test_sslmode_disable_is_honoured_too(tls_postgres: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # libpq's default (prefer) would use TLS here: only an applied extra turns it off
    _pg_conn(monkeypatch, "pg_plain", tls_postgres["port"], sslmode="disable")
    assert _ssl_of("pg_plain") == (False, None)


def test_sql_source_reads_over_verified_tls(tls_postgres: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _pg_conn(monkeypatch, "pg_verify", tls_postgres["port"], sslmode="verify-full", sslrootcert=str(tls_postgres["ca"]))
    table = read_all(source("pg_verify", query=SSL_QUERY))
    assert table.column("ssl").to_pylist() == [True]


def test_wrong_root_certificate_is_refused(tls_postgres: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _pg_conn(
        monkeypatch, "pg_badca", tls_postgres["port"], sslmode="verify-full", sslrootcert=str(tls_postgres["other_ca"])
    )
    with pytest.raises(SourceConnectionError, match=r"connection 'pg_badca'.*certificate verify failed"):
        _ssl_of("pg_badca")


def test_options_and_application_name_extras_reach_the_session(
    tls_postgres: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _pg_conn(
        monkeypatch,
        "pg_opts",
        tls_postgres["port"],
        options="-c statement_timeout=4321",
        application_name="nightly-acme",
    )
    hook = SqlAlchemyHook("pg_opts")
    with hook.connect() as conn:
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar_one() == "4321ms"
        assert conn.exec_driver_sql("SELECT current_setting('application_name')").scalar_one() == "nightly-acme"
    hook.engine.dispose()


def test_mysql_charset_extra_reaches_the_session(mariadb_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    base = os.environ["AIRFLOW_CONN_TEST_MARIADB"]
    monkeypatch.setenv("AIRFLOW_CONN_MARIA_LATIN1", f"{base}?charset=latin1")
    hook = SqlAlchemyHook("maria_latin1")
    with hook.connect() as conn:
        assert conn.exec_driver_sql("SELECT @@character_set_client").scalar_one() == "latin1"
    hook.engine.dispose()


def test_malformed_sqlalchemy_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BROKEN_URL",
        '{"conn_type": "postgres", "extra": {"sqlalchemy_url": "postgresql://etl:S3cretPw@db:notaport/crm"}}',
    )
    with pytest.raises(ConfigurationError) as info:
        source("broken_url", table="accounts").schema()
    msg = str(info.value)
    assert "connection 'broken_url'" in msg and "extra.sqlalchemy_url" in msg and "S3cretPw" not in msg


# -- SQLite: readers in parallel while a writer writes ------------------------------------------

READER = r"""
import hashlib, os, sys, time
from pathlib import Path
from tests.integration.test_sql_source import source
from bulksync.staging.partition import Window

flags, me = Path(sys.argv[1]), sys.argv[2]
src = source("sqlite_shared", Window(), table="t", batch_size=100)
count = src.source_count()
digest, rows = hashlib.sha256(), 0
for i, batch in enumerate(src.read()):
    if i == 0:
        (flags / f"ready-{me}").touch()
        deadline = time.monotonic() + 25
        while not (flags / "written").exists():  # the writer commits while this read is open
            if time.monotonic() > deadline:
                sys.exit("reader: the writer never wrote")
            time.sleep(0.05)
    for r in batch.to_pylist():
        digest.update(repr(sorted(r.items())).encode())
        rows += 1
src.close()
(flags / f"result-{me}").write_text(f"{count} {rows} {digest.hexdigest()}")
"""

WRITER = r"""
import sys, time
from pathlib import Path
import sqlalchemy as sa
from bulksync.hooks.sql import SqlAlchemyHook

flags = Path(sys.argv[1])
deadline = time.monotonic() + 25
while not all((flags / f"ready-{i}").exists() for i in (1, 2)):  # both readers inside their read
    if time.monotonic() > deadline:
        sys.exit("writer: the readers never both started reading")
    time.sleep(0.05)
hook = SqlAlchemyHook("sqlite_shared")
with hook.connect() as conn, conn.begin():
    conn.execute(sa.text("INSERT INTO t VALUES (:id, :v)"), [{"id": 100000 + i, "v": "new"} for i in range(500)])
(flags / "written").touch()
"""


def test_two_reader_processes_and_a_writer_share_one_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "shared.db"
    monkeypatch.setenv("AIRFLOW_CONN_SQLITE_SHARED", f"sqlite:///{db}")
    hook = SqlAlchemyHook("sqlite_shared")  # a bulksync writer created the file: WAL mode
    with hook.connect() as conn, conn.begin():
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute(sa.text("INSERT INTO t VALUES (:id, :v)"), [{"id": i, "v": f"v{i}"} for i in range(3000)])
    hook.engine.dispose()
    expected = hashlib.sha256()
    for i in range(3000):
        expected.update(repr(sorted({"id": i, "v": f"v{i}"}.items())).encode())

    flags = tmp_path / "flags"
    flags.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", READER, str(flags), str(i)], env=env, cwd=ROOT, stderr=subprocess.PIPE)
        for i in (1, 2)
    ]
    procs.append(
        subprocess.Popen([sys.executable, "-c", WRITER, str(flags)], env=env, cwd=ROOT, stderr=subprocess.PIPE)
    )
    errors = [p.communicate(timeout=120)[1].decode()[-2000:] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    for i in (1, 2):  # each read one consistent snapshot: every row before the write, none after
        assert (flags / f"result-{i}").read_text() == f"3000 3000 {expected.hexdigest()}"
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 3500
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
