"""pylibmc (the C libmemcached bundled in its wheel, 1.0.16): text and binary protocol, ketama.

Every test runs once over the text protocol and once with binary=True; the binary runs carry the
`binary` marker.
"""
import glob
import os

import pytest

# The wheel's own libsasl2 looks for its mechanism plugins where the wheel was built; point it at
# Debian's (package libsasl2-modules). Read once, when pylibmc initialises SASL on import.
for _plugins in glob.glob("/usr/lib/*/sasl2/libplain.so*"):
    os.environ.setdefault("SASL_PATH", os.path.dirname(_plugins))

import pylibmc  # noqa: E402

from memcached_server import text_stats  # noqa: E402

MODES = [
    pytest.param(False, id="text"),
    pytest.param(True, id="binary", marks=pytest.mark.binary),
]


def connect(servers, binary, **behaviors):
    if not isinstance(servers, list):
        servers = [servers]
    b = {"connect_timeout": 5000, "receive_timeout": 5_000_000, "send_timeout": 5_000_000}
    b.update(behaviors)
    return pylibmc.Client([s.address for s in servers], binary=binary, behaviors=b)


def curr_items(server):
    return int(text_stats(server)["curr_items"])


@pytest.mark.parametrize("binary", MODES)
def test_storage_and_retrieval(server, binary):
    mc = connect(server, binary)
    assert mc.set("k", b"v1") is True
    assert mc.get("k") == b"v1"
    assert mc.get("missing") is None
    assert "k" in mc and "missing" not in mc
    assert mc.add("k", b"other") is False
    assert mc.add("new", b"added") is True
    assert mc.get("new") == b"added"
    assert mc.replace("k", b"v2") is True
    if binary:
        # Over the binary protocol, libmemcached reports NOT_FOUND rather than NOT_STORED.
        with pytest.raises(pylibmc.NotFound):
            mc.replace("absent", b"x")
    else:
        assert mc.replace("absent", b"x") is False
    assert mc.get("absent") is None
    assert mc.append("k", b"-tail") is True
    assert mc.prepend("k", b"head-") is True
    assert mc.get("k") == b"head-v2-tail"
    assert mc.delete("k") is True
    assert mc.delete("k") is False
    assert mc.get("k") is None

    # pylibmc keeps the Python type in the item's flags.
    values = {"bytes": b"\x00\r\nEND\r\n", "str": "snowman \u2603", "int": 42,
              "big": 2**70, "list": [1, "two", {"three": 3.0}]}
    for key, value in values.items():
        assert mc.set(key, value) is True
    for key, value in values.items():
        got = mc.get(key)
        assert got == value and type(got) is type(value), key

    blob = bytes(range(256)) * 3000  # ~750 kB, not compressed (min_compress_len is 0)
    assert mc.set("blob", blob) is True
    assert mc.get("blob") == blob


@pytest.mark.parametrize("binary", MODES)
def test_get_multi_set_multi_delete_multi(server, binary):
    mc = connect(server, binary)
    values = {"key%d" % i: ("v%d" % i).encode() * i for i in range(1, 101)}
    assert mc.set_multi(values) == []
    assert mc.get_multi(list(values) + ["nope1", "nope2"]) == values
    assert mc.set_multi({"a": b"1", "b": b"2"}, key_prefix="pre:") == []
    assert mc.get("pre:a") == b"1"
    assert mc.get_multi(["a", "b", "c"], key_prefix="pre:") == {"a": b"1", "b": b"2"}
    assert mc.delete_multi(["key1", "key2", "never"]) is False  # not all existed
    assert mc.delete_multi(["key3", "key4"]) is True
    assert mc.get_multi(["key1", "key2", "key3", "key4", "key5"]) == {"key5": values["key5"]}
    assert curr_items(server) == 96 + 2


@pytest.mark.parametrize("binary", MODES)
def test_incr_decr(server, binary):
    mc = connect(server, binary)
    with pytest.raises(pylibmc.NotFound):
        mc.incr("counter")
    assert mc.set("counter", 10) is True
    assert mc.incr("counter") == 11
    assert mc.incr("counter", 9) == 20
    assert mc.decr("counter", 25) == 0
    assert mc.get("counter") == 0
    # 64-bit wrap-around (pylibmc's delta is a C long, so start near the top instead).
    assert mc.set("wrap", b"18446744073709551614") is True
    assert mc.incr("wrap", 3) == 1
    # The item keeps its 20-byte length: memcached pads the shorter number with spaces.
    assert mc.get("wrap") == b"1" + b" " * 19
    assert mc.incr("wrap", 2**31 - 1) == 2**31  # pylibmc's delta is a C int
    assert mc.set_multi({"c1": 1, "c2": 5}) == []
    assert mc.incr_multi(["c1", "c2"], delta=10) is None
    assert mc.get_multi(["c1", "c2"]) == {"c1": 11, "c2": 15}


@pytest.mark.parametrize("binary", MODES)
def test_gets_and_cas(server, binary):
    mc = connect(server, binary, cas=True)
    assert mc.gets("nokey") == (None, None)
    assert mc.set("k", b"one") is True
    value, cas = mc.gets("k")
    assert value == b"one" and cas > 0
    assert mc.cas("k", b"two", cas) is True
    assert mc.get("k") == b"two"
    assert mc.cas("k", b"three", cas) is False  # stale CAS
    assert mc.get("k") == b"two"
    value, cas2 = mc.gets("k")
    assert value == b"two" and cas2 != cas
    other = connect(server, binary)
    assert other.set("k", b"theirs") is True
    assert mc.cas("k", b"mine", cas2) is False
    assert mc.get("k") == b"theirs"
    value, cas3 = mc.gets("k")
    assert mc.cas("k", b"finally", cas3) is True
    assert mc.get("k") == b"finally"


@pytest.mark.parametrize("binary", MODES)
def test_touch_and_flush_and_stats(server, binary):
    mc = connect(server, binary)
    assert mc.set("t", b"v", time=100) is True
    assert mc.touch("t", 1000) is True
    assert mc.touch("absent", 1000) is False
    assert mc.get("t") == b"v"
    assert mc.set("gone", b"v", time=-1) is True
    if binary:
        # The binary protocol's expiry is unsigned: -1 is 2**32-1, an absolute time far ahead.
        assert mc.get("gone") == b"v"
        assert mc.delete("gone") is True
    else:
        assert mc.get("gone") is None
    (name, stats), = mc.get_stats()
    assert name == b"127.0.0.1:%d (0)" % server.port
    assert stats["version"] == b"1.6.38"
    assert int(stats["curr_items"]) == 1
    assert int(stats["pid"]) == server.proc.pid
    assert int(stats["threads"]) == 2
    assert int(stats["limit_maxbytes"]) == 64 * 1024 * 1024
    stats = text_stats(server)
    assert int(stats["touch_hits"]) == 1 and int(stats["touch_misses"]) == 1
    assert mc.flush_all() is True
    assert mc.get("t") is None
    assert curr_items(server) == 0


@pytest.mark.parametrize("binary", MODES)
def test_ketama_over_three_servers(three_servers, binary):
    mc = connect(three_servers, binary, ketama=True)
    assert mc.get_behaviors()["ketama"]
    values = {"user:%d" % i: ("profile %d" % i).encode() for i in range(600)}
    assert mc.set_multi(values) == []
    assert mc.get_multi(list(values)) == values
    for key in list(values)[:20]:
        assert mc.get(key) == values[key]
    counts = [curr_items(s) for s in three_servers]
    assert all(c > 0 for c in counts), counts
    assert sum(counts) == 600

    # Each key sits on exactly one server.
    where = {}
    for s in three_servers:
        for key in connect(s, binary).get_multi(list(values)):
            assert key not in where
            where[key] = s.port
    assert len(where) == 600

    # Consistent hashing: a client that knows only two of the servers still finds every key
    # the three-server client put on those two.
    a, b, c = three_servers
    two = connect([a, b], binary, ketama=True)
    on_ab = [k for k, port in where.items() if port in (a.port, b.port)]
    assert two.get_multi(on_ab) == {k: values[k] for k in on_ab}

    assert mc.set("n", 1) is True
    assert mc.incr("n", 1) == 2
    assert mc.get("n") == 2


@pytest.mark.binary
def test_sasl_plain(sasl_server):
    sasl = sasl_server.sasl
    mc = pylibmc.Client([sasl_server.address], binary=True, username=sasl.user, password=sasl.password)
    assert mc.set("secret", b"value") is True
    assert mc.get("secret") == b"value"
    assert mc.set("secret-counter", 1) is True
    assert mc.incr("secret-counter") == 2
    assert mc.get("secret-counter") == 2

    wrong = pylibmc.Client([sasl_server.address], binary=True, username=sasl.user, password="wrong")
    with pytest.raises(pylibmc.Error):
        wrong.get("secret")
    # Without credentials the server answers nothing but errors.
    anonymous = pylibmc.Client([sasl_server.address], binary=True)
    with pytest.raises(pylibmc.Error):
        anonymous.set("secret", b"overwritten")
    assert mc.get("secret") == b"value"
