"""pymemcache (pure-Python, text protocol): every command of its base Client, and its HashClient."""
import os
import socket

import pytest
from pymemcache import serde
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheClientError, MemcacheIllegalInputError

from memcached_server import Server


def client(server, **kwargs):
    kwargs.setdefault("connect_timeout", 5)
    kwargs.setdefault("timeout", 5)
    return Client((server.host, server.port), **kwargs)


def test_storage_commands(server):
    mc = client(server)
    # noreply=False so that every reply is read and checked, not assumed.
    assert mc.set("k", b"v1", noreply=False) is True
    assert mc.get("k") == b"v1"
    assert mc.get("missing") is None
    assert mc.get("missing", default=b"dflt") == b"dflt"

    assert mc.add("k", b"other", noreply=False) is False
    assert mc.get("k") == b"v1"
    assert mc.add("new", b"added", noreply=False) is True
    assert mc.get("new") == b"added"

    assert mc.replace("k", b"v2", noreply=False) is True
    assert mc.replace("absent", b"x", noreply=False) is False
    assert mc.get("absent") is None
    assert mc.get("k") == b"v2"

    assert mc.append("k", b"-tail", noreply=False) is True
    assert mc.prepend("k", b"head-", noreply=False) is True
    assert mc.get("k") == b"head-v2-tail"
    assert mc.append("absent", b"x", noreply=False) is False
    assert mc.prepend("absent", b"x", noreply=False) is False

    # Default noreply=True: the client does not wait, yet the next read sees the writes in order.
    assert mc.set("quiet", b"1") is True
    assert mc.append("quiet", b"2") is True
    assert mc.get("quiet") == b"12"

    # Client flags come back as they went in.
    assert mc.set("flagged", b"data", flags=0xDEADBEEF, noreply=False)
    assert mc.raw_command("get flagged", b"END\r\n") == b"VALUE flagged 3735928559 4\r\ndata\r\n"


def test_binary_safe_and_large_values(server):
    mc = client(server)
    blob = bytes(range(256)) * 64 + b"\r\nEND\r\nVALUE x 0 1\r\n"
    assert mc.set("blob", blob, noreply=False)
    assert mc.get("blob") == blob
    big = os.urandom(1000 * 1000)  # under the 1 MB item limit with header and key
    assert mc.set("big", big, noreply=False)
    assert mc.get("big") == big
    assert mc.set("empty", b"", noreply=False)
    assert mc.get("empty") == b""
    key = "k" * 250
    assert mc.set(key, b"longest key", noreply=False)
    assert mc.get(key) == b"longest key"
    with pytest.raises(MemcacheIllegalInputError):
        mc.set("k" * 251, b"too long", noreply=False)


def test_serde_flags_round_trip(server):
    mc = client(server, serde=serde.pickle_serde)
    values = {"int": 42, "str": "snowman \u2603", "dict": {"a": [1, 2.5, None]}, "bytes": b"\x00\x01"}
    assert mc.set_many(values, noreply=False) == []
    assert mc.get_many(list(values)) == values
    # The serde tells types apart by the flags it stored: a plain reader sees them.
    raw = client(server)
    assert raw.raw_command("get int", b"END\r\n") == b"VALUE int 2 2\r\n42\r\n"


def test_get_many_set_many_gets_many(server):
    mc = client(server)
    values = {"a": b"1", "b": b"22", "c": b"333"}
    assert mc.set_many(values, noreply=False) == []
    assert mc.get_many(["a", "b", "c", "nope"]) == values
    assert mc.get_multi(["c"]) == {"c": b"333"}
    assert mc.get_many([]) == {}
    assert mc.set_multi({"d": b"4"}, noreply=False) == []

    got = mc.gets_many(["a", "b", "nope"])
    assert set(got) == {"a", "b"}
    assert got["a"][0] == b"1" and got["b"][0] == b"22"
    assert got["a"][1] != got["b"][1]
    value, cas = mc.gets("a")
    assert (value, cas) == got["a"]
    assert mc.gets("nope") == (None, None)


def test_cas(server):
    mc = client(server)
    assert mc.cas("nokey", b"x", b"1") is None  # NOT_FOUND
    assert mc.set("k", b"one", noreply=False)
    value, cas = mc.gets("k")
    assert value == b"one"
    assert mc.cas("k", b"two", cas) is True
    assert mc.get("k") == b"two"
    assert mc.cas("k", b"three", cas) is False  # EXISTS: the value changed since gets
    assert mc.get("k") == b"two"
    value, cas2 = mc.gets("k")
    assert int(cas2) > int(cas)
    # Another client writes in between: the old CAS is stale.
    other = client(server)
    assert other.set("k", b"theirs", noreply=False)
    assert mc.cas("k", b"mine", cas2) is False
    assert mc.get("k") == b"theirs"


def test_delete_and_delete_many(server):
    mc = client(server)
    assert mc.set_many({"x": b"1", "y": b"2", "z": b"3"}, noreply=False) == []
    assert mc.delete("x", noreply=False) is True
    assert mc.delete("x", noreply=False) is False
    assert mc.get("x") is None
    assert mc.delete_many(["y", "z", "never"], noreply=False) is True
    assert mc.get_many(["y", "z"]) == {}
    assert mc.delete_multi([]) is True


def test_incr_decr(server):
    mc = client(server)
    assert mc.incr("counter", 1) is None
    assert mc.decr("counter", 1) is None
    assert mc.set("counter", b"10", noreply=False)
    assert mc.incr("counter", 5) == 15
    assert mc.decr("counter", 20) == 0  # decr stops at zero
    assert mc.incr("counter", 2**64 - 1) == 2**64 - 1
    assert mc.incr("counter", 2) == 1  # 64-bit wrap-around
    # The item keeps its 20-byte length: memcached pads the shorter number with spaces.
    assert mc.get("counter") == b"1" + b" " * 19
    assert mc.set("counter", b"100", noreply=False)
    assert mc.decr("counter", 1) == 99
    # memcached keeps the length when the number shrinks: "99" is padded with a space.
    assert mc.get("counter") == b"99 "
    assert mc.set("text", b"abc", noreply=False)
    with pytest.raises(MemcacheClientError):
        mc.incr("text", 1)
    assert mc.incr("counter", 1, noreply=True) is None
    assert mc.get("counter") == b"100"


def test_touch_and_expiry_arguments(server):
    mc = client(server)
    assert mc.touch("absent", 10, noreply=False) is False
    assert mc.set("t", b"v", expire=100, noreply=False)
    assert mc.touch("t", 1000, noreply=False) is True
    assert mc.get("t") == b"v"
    # A negative expiry means already expired.
    assert mc.touch("t", -1, noreply=False) is True
    assert mc.get("t") is None
    assert mc.set("gone", b"v", expire=-1, noreply=False)
    assert mc.get("gone") is None


def test_stats_version_flush_all(server):
    mc = client(server)
    assert mc.version() == b"1.6.38"
    assert mc.set_many({"s1": b"a", "s2": b"b"}, noreply=False) == []
    assert mc.get_many(["s1", "s2", "s3"]) == {"s1": b"a", "s2": b"b"}
    stats = mc.stats()
    assert stats[b"version"] == b"1.6.38"
    assert stats[b"curr_items"] == 2
    assert stats[b"total_items"] == 2
    assert stats[b"cmd_set"] == 2
    assert stats[b"cmd_get"] == 3
    assert stats[b"get_hits"] == 2
    assert stats[b"get_misses"] == 1
    assert stats[b"pid"] == server.proc.pid
    assert stats[b"limit_maxbytes"] == 64 * 1024 * 1024
    settings = mc.stats("settings")
    assert settings[b"tcpport"] == server.port
    assert settings[b"maxbytes"] == 64 * 1024 * 1024
    assert settings[b"item_size_max"] == 1024 * 1024
    assert settings[b"cas_enabled"] == b"yes"
    items = mc.stats("items")
    assert sum(v for k, v in items.items() if k.endswith(b":number")) == 2

    assert mc.flush_all(noreply=False) is True
    assert mc.get_many(["s1", "s2"]) == {}
    assert mc.stats()[b"cmd_flush"] == 1
    assert mc.flush_all(delay=0) is True  # noreply by default
    assert mc.stats()[b"cmd_flush"] == 2


def test_cache_memlimit(server):
    mc = client(server)
    assert mc.cache_memlimit(128) is True
    assert mc.stats()[b"limit_maxbytes"] == 128 * 1024 * 1024
    assert mc.stats("settings")[b"maxbytes"] == 128 * 1024 * 1024


def test_quit_and_reconnect(server):
    mc = client(server)
    assert mc.set("q", b"before", noreply=False)
    assert mc.stats()[b"curr_connections"] >= 1
    mc.quit()
    assert mc.sock is None
    # The client reconnects on the next command.
    assert mc.get("q") == b"before"
    mc.close()


def test_raw_meta_commands(server):
    # Meta commands through raw_command: ms needs its data block, sent as part of the line.
    mc = client(server)
    assert mc.raw_command(b"ms meta 2 F5\r\nhi", b"\r\n") == b"HD"
    # mn ends the pipeline, so the reply up to its MN is the whole mg answer.
    assert mc.raw_command("mg meta v f\r\nmn", b"MN\r\n") == b"VA 2 f5\r\nhi\r\n"
    assert mc.get("meta") == b"hi"


def test_shutdown():
    s = Server("-A")
    try:
        mc = Client((s.host, s.port), connect_timeout=5, timeout=5)
        assert mc.set("k", b"v", noreply=False)
        mc.shutdown()
        assert s.proc.wait(timeout=10) == 0
        with pytest.raises(OSError):
            socket.create_connection((s.host, s.port), timeout=1).close()
    finally:
        s.stop()


def test_hash_client_spreads_keys_over_three_servers(three_servers):
    hc = HashClient(
        [(s.host, s.port) for s in three_servers],
        connect_timeout=5,
        timeout=5,
        retry_attempts=0,
        ignore_exc=False,
    )
    values = {"key:%04d" % i: ("value %d " % i).encode() * (1 + i % 7) for i in range(1000)}
    for key, value in list(values.items())[:500]:
        assert hc.set(key, value, noreply=False) is True
    assert hc.set_many(dict(list(values.items())[500:]), noreply=False) == []

    for key in list(values)[:100]:
        assert hc.get(key) == values[key]
    assert hc.get_many(list(values)) == values

    counts = []
    for s in three_servers:
        stats = Client((s.host, s.port), timeout=5).stats()
        counts.append(stats[b"curr_items"])
    assert all(c > 0 for c in counts), counts
    assert sum(counts) == 1000

    # Every key lives on exactly the server the hash picks, and on no other.
    owner = {}
    for s in three_servers:
        direct = Client((s.host, s.port), timeout=5)
        owner.update({k: s.port for k in direct.get_many(list(values))})
    assert len(owner) == 1000
    for key in list(values)[:50]:
        assert hc._get_client(key).server == ("127.0.0.1", owner[key])

    assert hc.delete_many(list(values)[:10], noreply=False) is True
    assert hc.get_many(list(values)[:10]) == {}
    assert sum(Client((s.host, s.port), timeout=5).stats()[b"curr_items"] for s in three_servers) == 990
    assert hc.set("n", b"5", noreply=False)
    assert hc.incr("n", 3) == 8
    assert hc.decr("n", 10) == 0
    assert hc.incr("missing-n", 1) is None
