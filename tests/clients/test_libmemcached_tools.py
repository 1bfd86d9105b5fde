"""libmemcached's command-line tools (Debian 12's libmemcached-tools, libmemcached 1.1.4).

Debian names them memc*: memcstat, memccp, memccat, memcflush, memcexist, memctouch, memcrm,
memcdump and memccapable (the protocol conformance checker). Each tool test runs over the text
protocol and, with the `binary` marker, with the tools' --binary flag (memcdump has none).
"""
import os
import socket
import subprocess

import pytest

from memcached_server import text_stats

MODES = [
    pytest.param(False, id="text"),
    pytest.param(True, id="binary", marks=pytest.mark.binary),
]


def tool(name, server, *args, binary=False, check=True, credentials=None):
    cmd = [name, "--servers=%s" % server.address]
    if binary:
        cmd.append("--binary")
    if credentials:
        cmd += ["--username=%s" % credentials[0], "--password=%s" % credentials[1]]
    proc = subprocess.run(cmd + list(args), capture_output=True, timeout=60)
    if check:
        assert proc.returncode == 0, "%s: exit %d\nstdout: %r\nstderr: %r" % (
            cmd + list(args), proc.returncode, proc.stdout, proc.stderr)
    return proc


def text_command(server, request, end=b"\r\n"):
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while not data.endswith(end):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def parse_memcstat(output):
    """memcstat prints "Server: HOST (PORT)" then one "\tname: value" line per stat."""
    servers, current = {}, None
    for line in output.decode().splitlines():
        if line.startswith("Server: "):
            current = servers.setdefault(line[len("Server: "):], {})
        elif line.startswith("\t") and current is not None:
            name, _, value = line[1:].partition(": ")
            current[name] = value
    return servers


@pytest.mark.parametrize("binary", MODES)
def test_memcstat(server, binary):
    text_command(server, b"set a 0 0 1\r\n1\r\nset b 0 0 2\r\n22\r\nget a b c\r\n", b"END\r\n")
    out = tool("memcstat", server, binary=binary).stdout
    stats = parse_memcstat(out)
    assert list(stats) == ["127.0.0.1 (%d)" % server.port]
    s = stats["127.0.0.1 (%d)" % server.port]
    assert s["version"] == "1.6.38"
    assert s["pid"] == str(server.proc.pid)
    assert s["curr_items"] == "2"
    assert s["total_items"] == "2"
    assert s["get_hits"] == "2"
    assert s["get_misses"] == "1"
    assert s["threads"] == "2"
    assert s["limit_maxbytes"] == str(64 * 1024 * 1024)

    # memcstat prints the server versions on stderr.
    proc = tool("memcstat", server, "--server-version", binary=binary)
    assert proc.stderr.decode() == "127.0.0.1:%d 1.6.38\n" % server.port


def test_memcstat_settings_argument(server):
    stats = parse_memcstat(tool("memcstat", server, "settings").stdout)
    s = stats["127.0.0.1 (%d)" % server.port]
    assert s["tcpport"] == str(server.port)
    assert s["maxbytes"] == str(64 * 1024 * 1024)
    assert s["num_threads"] == "2"


@pytest.mark.parametrize("binary", MODES)
def test_memccp_memccat_round_trip(server, binary, tmp_path):
    src = tmp_path / "payload.bin"
    data = os.urandom(300_000) + b"\r\nEND\r\n"
    src.write_bytes(data)
    tool("memccp", server, "--flags=4242", "--expire=600", str(src), binary=binary)
    # The key is the file's basename; the value is the file, byte for byte.
    out = tmp_path / "out.bin"
    tool("memccat", server, "--file=%s" % out, "payload.bin", binary=binary)
    assert out.read_bytes() == data
    header = text_command(server, b"mg payload.bin f s t\r\n")
    assert header.startswith(b"HD f4242 s%d t" % len(data))
    assert tool("memccat", server, "--flags", "payload.bin", binary=binary).stdout.startswith(b"4242\n")

    # memccp --add refuses to overwrite; --replace refuses to create.
    src.write_bytes(b"second version")
    proc = tool("memccp", server, "--add", str(src), binary=binary, check=False)
    assert proc.returncode != 0
    out.unlink()
    tool("memccat", server, "--file=%s" % out, "payload.bin", binary=binary)
    assert out.read_bytes() == data
    tool("memccp", server, "--replace", str(src), binary=binary)
    assert tool("memccat", server, "payload.bin", binary=binary).stdout == b"second version\n"

    proc = tool("memccat", server, "no-such-key", binary=binary, check=False)
    assert proc.returncode != 0
    assert proc.stdout == b""


@pytest.mark.parametrize("binary", MODES)
def test_memcexist_memctouch_memcrm(server, binary, tmp_path):
    src = tmp_path / "k1"
    src.write_bytes(b"v1")
    tool("memccp", server, "--expire=600", str(src), binary=binary)

    assert tool("memcexist", server, "k1", binary=binary, check=False).returncode == 0
    assert tool("memcexist", server, "nope", binary=binary, check=False).returncode == 1

    # Touch to "never expires": mg reports t-1 (no timing involved).
    tool("memctouch", server, "--expire=0", "k1", binary=binary)
    assert text_command(server, b"mg k1 t v\r\n", b"v1\r\n") == b"VA 2 t-1\r\nv1\r\n"
    assert tool("memctouch", server, "--expire=600", "nope", binary=binary, check=False).returncode == 1
    stats = text_stats(server)
    assert (stats["touch_hits"], stats["touch_misses"]) == ("1", "1")

    assert tool("memcrm", server, "k1", binary=binary).returncode == 0
    assert tool("memcexist", server, "k1", binary=binary, check=False).returncode == 1
    assert tool("memcrm", server, "k1", binary=binary, check=False).returncode == 1
    assert text_stats(server)["delete_hits"] == "1"
    assert text_stats(server)["delete_misses"] == "1"


def test_memctouch_negative_expiry_expires(server, tmp_path):
    src = tmp_path / "short"
    src.write_bytes(b"v")
    tool("memccp", server, str(src))
    tool("memctouch", server, "--expire=-1", "short")
    assert tool("memcexist", server, "short", check=False).returncode == 1


@pytest.mark.parametrize("binary", MODES)
def test_memcflush(server, binary, tmp_path):
    names = []
    for i in range(5):
        f = tmp_path / ("f%d" % i)
        f.write_bytes(b"x" * i)
        names.append(str(f))
    tool("memccp", server, *names, binary=binary)
    assert text_stats(server)["curr_items"] == "5"
    tool("memcflush", server, binary=binary)
    for i in range(5):
        assert tool("memcexist", server, "f%d" % i, binary=binary, check=False).returncode == 1
    assert text_stats(server)["cmd_flush"] == "1"


def test_memcdump(flat_lru_server, tmp_path):
    server = flat_lru_server
    keys = {"dump:%d" % i for i in range(40)} | {"other"}
    request = b"".join(b"set %s 0 0 3\r\nabc\r\n" % k.encode() for k in sorted(keys))
    assert text_command(server, request, b"STORED\r\n" * len(keys)) == b"STORED\r\n" * len(keys)
    out = tool("memcdump", server).stdout.decode()
    assert sorted(out.split()) == sorted(keys)
    dump = tmp_path / "dump.txt"
    tool("memcdump", server, "--file=%s" % dump)
    assert sorted(dump.read_text().split()) == sorted(keys)


@pytest.mark.parametrize("flag", ["-a", pytest.param("-b", marks=pytest.mark.binary)])
def test_memccapable(server, flag):
    """libmemcached's protocol conformance checker must report no failure."""
    proc = subprocess.run(
        ["memccapable", "-h", server.host, "-p", str(server.port), "-t", "5", flag],
        capture_output=True, timeout=120,
    )
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0, out
    assert "[FAIL]" not in out, out
    assert out.rstrip().endswith("All tests passed"), out
    results = [line for line in out.splitlines() if line.rstrip().endswith("[pass]")]
    assert len(results) >= 20, out


@pytest.mark.binary
def test_tools_with_sasl(sasl_server, tmp_path):
    creds = (sasl_server.sasl.user, sasl_server.sasl.password)
    src = tmp_path / "secret"
    src.write_bytes(b"authenticated value")
    tool("memccp", sasl_server, str(src), binary=True, credentials=creds)
    assert tool("memccat", sasl_server, "secret", binary=True, credentials=creds).stdout == b"authenticated value\n"
    stats = parse_memcstat(tool("memcstat", sasl_server, binary=True, credentials=creds).stdout)
    assert stats["127.0.0.1 (%d)" % sasl_server.port]["curr_items"] == "1"
    wrong = tool("memccat", sasl_server, "secret", binary=True, credentials=(creds[0], "wrong"), check=False)
    assert wrong.returncode != 0 and wrong.stdout == b""


@pytest.mark.parametrize("workload", ["set", "get", "mget"])
@pytest.mark.parametrize("binary", MODES)
def test_memcslap(server, workload, binary):
    """libmemcached's load generator, two threads, 1000 operations each: every get must hit.

    set stores 1000 keys from both threads (2000 sets); get and mget first load the 1000 keys
    once, then read each of them from both threads (2000 gets)."""
    tool("memcslap", server, "--test=%s" % workload, "--concurrency=2", "--execute-number=1000", binary=binary)
    stats = text_stats(server)
    if workload == "set":
        expected = {"cmd_set": "2000", "cmd_get": "0", "get_hits": "0"}
    else:
        expected = {"cmd_set": "1000", "cmd_get": "2000", "get_hits": "2000"}
    expected.update(get_misses="0", curr_items="1000")
    assert {k: stats[k] for k in expected} == expected
