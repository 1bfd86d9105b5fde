"""The seed's python-memcached usage, run against memcached-rs with every value asserted."""
import memcache


def test_seed_snippet(server):
    mc = memcache.Client([server.address], debug=0, cache_cas=True)

    assert mc.set("user_name", "john", time=3600)
    assert mc.get("user_name") == "john"

    assert mc.set_multi({"key1": "value1", "key2": "value2", "n": 5}) == []
    assert mc.get_multi(["key1", "key2", "missing", "n"]) == {"key1": "value1", "key2": "value2", "n": 5}

    assert mc.gets("key1") == "value1"
    assert mc.cas("key1", "changed")
    assert mc.get("key1") == "changed"
    # Another writer changes the value: our cached CAS id is now stale and cas must fail.
    other = memcache.Client([server.address], cache_cas=True)
    assert other.gets("key1") == "changed"
    assert other.cas("key1", "theirs")
    assert mc.gets("key1") == "theirs"
    other.set("key1", "again")
    assert not mc.cas("key1", "mine")
    assert mc.get("key1") == "again"

    assert mc.set("counter", "0")
    assert mc.incr("counter", 5) == 5
    assert mc.decr("counter", 2) == 3
    assert mc.incr("missing-counter") is None

    assert mc.delete("user_name")
    assert mc.get("user_name") is None

    stats = mc.get_stats()
    assert len(stats) == 1
    name, values = stats[0]
    assert name.startswith("127.0.0.1:%d" % server.port)
    assert values["version"] == "1.6.38"
    assert int(values["curr_items"]) == 4  # key1 key2 n counter
    assert int(values["cmd_get"]) == 11
    assert int(values["get_hits"]) == 9
    assert int(values["get_misses"]) == 2
    assert int(values["cas_hits"]) == 2
    assert int(values["cas_badval"]) == 1
    assert int(values["incr_hits"]) == 1
    assert int(values["incr_misses"]) == 1
    assert int(values["decr_hits"]) == 1


def test_binary_safe_values_and_types(server):
    mc = memcache.Client([server.address])
    blob = bytes(range(256)) * 40 + b"\r\nEND\r\n"
    assert mc.set("blob", blob)
    assert mc.get("blob") == blob
    assert mc.set("int", 42) and mc.get("int") == 42
    assert mc.set("list", [1, "two", 3.0]) and mc.get("list") == [1, "two", 3.0]
    assert mc.add("int", 7) == 0
    assert mc.replace("int", 8) and mc.get("int") == 8
    assert mc.append("blob", b"tail") and mc.get("blob") == blob + b"tail"
    assert mc.prepend("blob", b"head") and mc.get("blob") == b"head" + blob + b"tail"
    assert mc.touch("int", 100)
    assert mc.flush_all() is None
    assert mc.get("int") is None


def curr_items(server):
    (_, values), = memcache.Client([server.address]).get_stats()
    return int(values["curr_items"])


def test_one_client_over_three_servers(three_servers):
    """The seed's multi-server usage: python-memcached hashes the keys over its server list."""
    mc = memcache.Client([s.address for s in three_servers])
    for i in range(1000):
        assert mc.set("key:%d" % i, "value-%d" % i)
    for i in range(1000):
        assert mc.get("key:%d" % i) == "value-%d" % i
    counts = [curr_items(s) for s in three_servers]
    assert sum(counts) == 1000
    assert all(c > 0 for c in counts), counts


class Md5Router:
    """The seed's own routing: md5(key) % 3 picks one of three single-server clients."""

    def __init__(self, servers):
        import hashlib

        self._md5 = hashlib.md5
        self.clients = [memcache.Client([s.address]) for s in servers]

    def client_for(self, key):
        return self.clients[int(self._md5(key.encode()).hexdigest(), 16) % len(self.clients)]

    def set(self, key, value):
        return self.client_for(key).set(key, value)

    def get(self, key):
        return self.client_for(key).get(key)


def test_md5_router_over_three_servers(three_servers):
    router = Md5Router(three_servers)
    for i in range(1000):
        assert router.set("user:%d" % i, {"id": i})
    for i in range(1000):
        assert router.get("user:%d" % i) == {"id": i}
    counts = [curr_items(s) for s in three_servers]
    assert sum(counts) == 1000
    assert all(c > 250 for c in counts), counts
    # Each key lives exactly where the router sends it.
    for i in range(0, 1000, 97):
        key = "user:%d" % i
        owner = router.client_for(key)
        for c in router.clients:
            assert (c.get(key) is not None) == (c is owner)
