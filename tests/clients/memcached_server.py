"""Starts a memcached server for the Python test suites (tests/python and tests/clients).

The server is the release build of memcached-rs unless MEMCACHED_BIN names another binary
(MEMCACHED_BIN=/usr/bin/memcached runs the same tests against memcached itself, which proves the
tests right). MEMCACHED_RS_BIN, the older name, is still honoured. Every Server listens on its own
free loopback port and is stopped by the fixture that started it.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = (
    os.environ.get("MEMCACHED_BIN")
    or os.environ.get("MEMCACHED_RS_BIN")
    or os.path.join(ROOT, "target", "release", "memcached-rs")
)

# The release build of memcached-rs (or a copy named so) as opposed to a reference memcached.
IS_MEMCACHED_RS = os.path.basename(BINARY).startswith("memcached-rs")

SASL_USER = "clientuser"
SASL_PASSWORD = "s3cret-pass"


def known_divergence(reason):
    """Marks a test that memcached passes and memcached-rs does not yet.

    Strict: once memcached-rs is fixed the test passes, pytest reports XPASS as a failure, and the
    mark must go. Against any other server the test runs normally."""
    import pytest

    return pytest.mark.xfail(IS_MEMCACHED_RS, reason="memcached-rs differs: " + reason, strict=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SaslConfig:
    """Credentials for a server started with -S, in both forms a server may read them.

    memcached-rs reads `user:password` lines from the file named by MEMCACHED_SASL_PWDB (as
    memcached does when built with --enable-sasl-pwdb). Debian's memcached is built without that
    and asks Cyrus SASL instead, which reads SASL_CONF_PATH/memcached.conf and, from there, a
    sasldb written by saslpasswd2 (package sasl2-bin). Both are set up, so either server accepts
    the same user and password.
    """

    def __init__(self, user=SASL_USER, password=SASL_PASSWORD):
        self.user = user
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="memcached-sasl-")
        self.pwdb = os.path.join(self.dir, "pwdb")
        with open(self.pwdb, "w") as f:
            f.write("%s:%s\n" % (user, password))
        sasldb = os.path.join(self.dir, "sasldb")
        saslpasswd2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
        if os.path.exists(saslpasswd2):
            subprocess.run(
                [saslpasswd2, "-p", "-c", "-a", "memcached", "-f", sasldb, user],
                input=password.encode(),
                check=True,
            )
        with open(os.path.join(self.dir, "memcached.conf"), "w") as f:
            f.write("mech_list: plain\nsasldb_path: %s\n" % sasldb)

    def env(self):
        return {"MEMCACHED_SASL_PWDB": self.pwdb, "SASL_CONF_PATH": self.dir}

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """One server process on a free loopback port; `extra` are more command-line flags."""

    def __init__(self, *extra, env=None):
        self.port = free_port()
        self.args = [BINARY, "-p", str(self.port), "-U", "0", "-l", "127.0.0.1", "-t", "2", *extra]
        if os.geteuid() == 0:
            self.args += ["-u", "root"]
        # A file, not a pipe: a chatty server must never block on a full pipe.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.args,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        deadline = time.time() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    out = self.output()
                    self.stop()
                    raise RuntimeError("%s did not start: %s" % (" ".join(self.args), out))
                time.sleep(0.02)

    @property
    def host(self):
        return "127.0.0.1"

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, wait=True):
        """SIGTERM, then wait for the exit (SIGKILL after 5 s). With wait=False the wait is left
        to reap_stopped(), so that a server slow to exit (memcached takes about a second) does
        not hold up the next test, which has its own port."""
        if self.proc.poll() is None:
            self.proc.terminate()
        if wait:
            self._reap()
        else:
            _stopping.append(self)

    def _reap(self):
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


_stopping = []


def reap_stopped():
    """Waits for every server stopped with wait=False."""
    while _stopping:
        _stopping.pop()._reap()

def text_stats(server, arg=""):
    """`stats [arg]` over a plain text-protocol connection, as a dict of strings."""
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(("stats %s\r\n" % arg).strip().encode() + b"\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed in stats: %r" % data)
            data += chunk
    stats = {}
    for line in data.decode().split("\r\n"):
        if line.startswith("STAT "):
            _, name, value = line.split(" ", 2)
            stats[name] = value
    return stats
