"""PHP's Memcached extension (Debian's php-memcached, on libmemcached 1.1.4): a session handler on
get/set/delete, getMulti, increment and cas over three servers added with addServers.

The checks live in php/memcached_client.php; this runs it and requires every one of them.
"""
import os
import re
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "php", "memcached_client.php")


def run_php(mode, servers):
    addresses = ",".join(s.address for s in servers)
    return subprocess.run(
        ["php", "-d", "display_errors=stderr", SCRIPT, mode, addresses],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "mode", ["text", pytest.param("binary", marks=pytest.mark.binary)]
)
def test_php_memcached(three_servers, mode):
    proc = run_php(mode, three_servers)
    report = "exit %d\nstdout:\n%s\nstderr:\n%s" % (proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 0, report
    assert proc.stderr == "", report
    lines = proc.stdout.splitlines()
    assert lines[-1] == "done %s" % mode, report
    assert all(re.fullmatch(r"ok .+", line) for line in lines[:-1]), report
    # The number of checks is fixed for each mode: a silently skipped section fails here.
    assert len(lines) - 1 == (58 if mode == "binary" else 55), report


def test_php_script_reports_failures(server):
    """The script must fail loudly when a server is wrong: here, nothing listens on the port."""
    port = server.port
    server.stop()

    class Gone:
        address = "127.0.0.1:%d" % port

    proc = run_php("text", [Gone()])
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout
