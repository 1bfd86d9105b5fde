"""Starts memcached-rs for the Python client tests.

The server code is shared with the real-client suites in tests/clients (memcached_server.py):
the binary is the release build unless MEMCACHED_BIN (or the older MEMCACHED_RS_BIN) names
another; each fixture gets a fresh server on a free loopback port and stops it afterwards.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "clients"))

from memcached_server import BINARY, Server  # noqa: E402,F401


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def three_servers():
    servers = [Server() for _ in range(3)]
    yield servers
    for s in servers:
        s.stop()
