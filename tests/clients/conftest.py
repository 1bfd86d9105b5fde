"""Fixtures for the real-client suites: fresh servers on free loopback ports, stopped afterwards.

Tests that need the binary protocol or SASL carry the `binary` marker: `make test-clients` runs
`-m "not binary"`, `make test-clients-binary` runs `-m binary`.
"""
import pytest

from memcached_server import BINARY, SaslConfig, Server, reap_stopped


def pytest_configure(config):
    config.addinivalue_line("markers", "binary: needs the binary protocol or SASL from the server")


def pytest_sessionfinish(session, exitstatus):
    reap_stopped()


def pytest_report_header(config):
    return "memcached server under test: %s" % BINARY


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop(wait=False)


@pytest.fixture
def three_servers():
    servers = []
    try:
        for _ in range(3):
            servers.append(Server())
        yield servers
    finally:
        for s in servers:
            s.stop(wait=False)


@pytest.fixture
def flat_lru_server():
    """A server whose items all sit in one LRU, so `stats cachedump` (and memdump) lists them.

    With the segmented LRU new items start in HOT and cachedump only walks COLD."""
    s = Server("-o", "no_lru_maintainer")
    yield s
    s.stop(wait=False)


@pytest.fixture
def sasl():
    config = SaslConfig()
    yield config
    config.remove()


@pytest.fixture
def sasl_server(sasl):
    s = Server("-S", env=sasl.env())
    s.sasl = sasl
    yield s
    s.stop(wait=False)
