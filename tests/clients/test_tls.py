"""pymemcache over TLS (`-Z`): certificates made with the openssl command, a server verifying
client certificates, and a plain-text client refused on the TLS listener."""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheError

from memcached_server import Server


def openssl(cwd, *args):
    subprocess.run(("openssl",) + args, cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="memcached-rs-tls-")
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.crt", "-days", "30", "-subj", "/CN=test CA")
    for name, subject, ext in (
        ("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1\n"),
        ("client", "/CN=client", "extendedKeyUsage=clientAuth\n"),
    ):
        with open(os.path.join(d, name + ".cnf"), "w") as f:
            f.write(ext)
        openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
                "-out", name + ".csr", "-subj", subject)
        openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".crt", "-days", "30",
                "-extfile", name + ".cnf")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def tls_server(pki, *extra_o):
    o = "ssl_chain_cert=%s,ssl_key=%s,ssl_ca_cert=%s" % (
        os.path.join(pki, "server.crt"), os.path.join(pki, "server.key"),
        os.path.join(pki, "ca.crt"))
    for e in extra_o:
        o += "," + e
    return Server("-Z", "-o", o)


def context(pki, client_cert):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    if client_cert:
        ctx.load_cert_chain(os.path.join(pki, "client.crt"), os.path.join(pki, "client.key"))
    return ctx


def test_pymemcache_stores_and_reads_over_tls(pki):
    server = tls_server(pki)
    try:
        c = Client(server.address, tls_context=context(pki, False), connect_timeout=5,
                   timeout=5)
        assert c.set("k", b"v" * 100000)
        assert c.get("k") == b"v" * 100000
        assert c.incr("n", 1) is None
        c.set("n", b"41")
        assert c.incr("n", 1) == 42
        assert c.get_many(["k", "n", "missing"]).keys() == {"k", "n"}
        assert b"ssl_handshake_errors" in c.stats()
        c.close()
    finally:
        server.stop()


def test_a_client_certificate_is_required_when_verify_mode_says_so(pki):
    server = tls_server(pki, "ssl_verify_mode=2")
    try:
        c = Client(server.address, tls_context=context(pki, True), connect_timeout=5,
                   timeout=5)
        assert c.set("k", b"v")
        assert c.get("k") == b"v"
        c.close()
        bare = Client(server.address, tls_context=context(pki, False), connect_timeout=5,
                      timeout=5)
        with pytest.raises((ssl.SSLError, OSError, MemcacheError)):
            bare.set("k", b"v")
            bare.get("k")
    finally:
        server.stop()


def test_plain_text_clients_get_nothing_on_a_tls_listener(pki):
    server = tls_server(pki)
    try:
        with socket.create_connection((server.host, server.port), timeout=5) as s:
            s.sendall(b"version\r\n")
            try:
                got = s.recv(100)
            except ConnectionResetError:
                got = b""  # closed with our request unread: a reset instead of a FIN
            assert got == b""
    finally:
        server.stop()
