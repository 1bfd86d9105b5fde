"""Starts memcached-rs for the Python client tests.

The binary is the release build (MEMCACHED_RS_BIN overrides it); each fixture gets a fresh
server on a free loopback port and stops it afterwards.
"""
import os
import socket
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("MEMCACHED_RS_BIN", os.path.join(ROOT, "target", "release", "memcached-rs"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *extra):
        self.port = free_port()
        args = [BINARY, "-p", str(self.port), "-U", "0", "-l", "127.0.0.1", "-t", "2", *extra]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError("memcached-rs did not start: %s" % self.proc.stderr.read())
                time.sleep(0.02)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()
