#!/usr/bin/env python3
"""Differential survey: memcached 1.6.38 (trixie root) vs memcached-rs vs memcached 1.6.18.

A manual exploration tool, not part of `make test`: 375 cases over every command family, run
against the three servers, listing where 1.6.38 and memcached-rs differ (and whether 1.6.18
sides with either). It mapped the work of issue 15's part 2; the differential suite in
tests/differential/ is what `make test` runs. The trixie root comes from
`debootstrap --variant=minbase --include=memcached trixie target/trixie-root`.

Every case starts three FRESH servers (so CAS counters / stats are comparable),
sends the case's byte sequences on fresh connections, reads each reply until the
socket is quiet, masks volatile values and compares.

usage: survey.py [-k SUBSTR] [--all] [--quiet SECS] [--list]
  -k SUBSTR   run only cases whose name contains SUBSTR
  --all       also print cases that match
env: TRIXIE_ROOT (default /work/main/target/trixie-root), MCRS (default target/release),
     MC18 (default /usr/bin/memcached)
"""
import os, re, socket, subprocess, sys, time, threading, argparse

ROOT = os.environ.get("TRIXIE_ROOT", "/work/main/target/trixie-root")
MCRS = os.environ.get("MCRS", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                           "../../target/release/memcached-rs"))
MC18 = os.environ.get("MC18", "/usr/bin/memcached")
QUIET = 0.35   # seconds of silence that end a read

SERVERS = [  # (label, argv prefix)
    # The root's own loader and libraries, as tests/common runs it: no chroot, no root needed.
    ("1.6.38", [ROOT + "/lib64/ld-linux-x86-64.so.2", "--library-path",
                ROOT + "/usr/lib/x86_64-linux-gnu", ROOT + "/usr/bin/memcached"]),
    ("rs", [MCRS]),
    ("1.6.18", [MC18]),
]


def free_port():
    # below the ephemeral range (32768+) so client sockets never collide with it
    import random
    while True:
        p = random.randint(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()


def listening(port):
    hexport = "%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1].endswith(":" + hexport) and parts[3] == "0A":
                    return True
    except OSError:
        pass
    return False


class Server:
    def __init__(self, label, argv, extra, tries=5):
        for i in range(tries):
            try:
                return self._start(label, argv, extra)
            except RuntimeError:
                if i == tries - 1:
                    raise

    def _start(self, label, argv, extra):
        self.label = label
        self.port = free_port()
        self.argv = argv + ["-p", str(self.port), "-U", "0", "-l", "127.0.0.1", "-u", "root"] + extra
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while not listening(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited: %s" % (self.argv, self.proc.stderr.read()))
            if time.time() > deadline:
                raise RuntimeError("%s did not listen" % self.argv)
            time.sleep(0.01)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()   # kills exactly the pid we started
        self.proc.wait()


def read_quiet(sock, quiet, maxtotal=5.0):
    buf = b""
    start = time.time()
    sock.settimeout(quiet)
    while time.time() - start < maxtotal:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            break
        except OSError as e:
            return buf + b"<ERR %s>" % e.__class__.__name__.encode()
        if not d:
            return buf + b"<EOF>"
        buf += d
    return buf


def run_steps(srv, steps, quiet):
    """inputs may contain {N}: replaced by the server's Nth counter CAS (BASE[label] + N - 1)"""
    conns = {}
    out = []
    try:
        for st in steps:
            if isinstance(st, bytes):
                st = (0, st)
            kind = st[0]
            if kind == "sleep":
                time.sleep(st[1]); continue
            if kind == "read":
                c = st[1]
                out.append(read_quiet(conns[c], quiet)); continue
            c, data = st[0], st[1]
            data = re.sub(rb"\{(\d+)\}", lambda m: str(BASE[srv.label] + int(m.group(1)) - 1).encode(), data)
            q = st[2] if len(st) > 2 else quiet
            if c not in conns:
                conns[c] = socket.create_connection(("127.0.0.1", srv.port))
            try:
                conns[c].sendall(data)
            except OSError as e:
                out.append(b"<SENDERR %s>" % e.__class__.__name__.encode()); continue
            out.append(read_quiet(conns[c], q))
    finally:
        for s in conns.values():
            s.close()
    return out


def mask(label, port, b, opts):
    t = b.decode("latin-1")
    t = t.replace(str(port), "<PORT>")
    t = re.sub(r"STAT (pid|uptime|time|rusage_user|rusage_system|version|libevent|"
               r"total_malloced|malloc_fails) [^\r\n]*", r"STAT \1 <M>", t)
    t = re.sub(r"^VERSION [^\r\n]*", "VERSION <V>", t, flags=re.M)
    t = re.sub(r"ts=\d+\.\d+", "ts=<T>", t)
    t = re.sub(r"\bla=\d{9,}", "la=<T>", t)
    t = re.sub(r"\bexp=\d{9,}", "exp=<T>", t)
    t = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<P>", t)
    t = re.sub(r"\b(cfd|rport)=\d+", r"\1=<N>", t)
    # stats conns: renumber fds by order of appearance
    fds = {}
    t = re.sub(r"(?m)^STAT (\d+):(?=(addr|listen_addr|state|secs_since_last_cmd) )",
               lambda m: "STAT fd%d:" % fds.setdefault(m.group(1), len(fds)), t)
    if opts.get("norm_cas", True):
        base = BASE[label]
        nv = lambda v: str(int(v) - base + 1) if base <= int(v) < 50 else v
        t = re.sub(r"(?m)^((?:HD|VA|EX|NS|NF|EN)\b[^\r\n]*)", lambda m: re.sub(
            r"(?<= )c(\d+)\b", lambda n: "c" + nv(n.group(1)), m.group(1)), t)
        t = re.sub(r"\bcas=(\d+)", lambda m: "cas=" + nv(m.group(1)), t)
        t = re.sub(r"(?m)^(VALUE \S+ \d+ \d+ )(\d+)", lambda m: m.group(1) + nv(m.group(2)), t)
    if opts.get("mask_cas"):
        t = re.sub(r"\bcas=\d+", "cas=<C>", t)
        t = re.sub(r"(^VALUE \S+ \d+ \d+) \d+", r"\1 <C>", t, flags=re.M)
        t = re.sub(r"(?<= )c\d+\b", "c<C>", t)
    if opts.get("sortlines"):
        t = "".join(sorted(t.splitlines(True), key=lambda l: (l.startswith(("END", "EN\r")), l)))
    return t


def parse_stats(t):
    names, vals = [], {}
    for line in t.split("\r\n"):
        if line.startswith("STAT "):
            p = line.split(" ", 2)
            n = p[1]; v = p[2] if len(p) > 2 else ""
            names.append(n); vals[n] = v
    return names, vals


def stats_diff(a, b, lb="rs"):
    """describe differences of b (rs) relative to a (1.6.38)"""
    na, va = parse_stats(a)
    nb, vb = parse_stats(b)
    res = []
    only_a = [n for n in na if n not in vb]
    only_b = [n for n in nb if n not in va]
    if only_a: res.append("missing in %s: " % lb + " ".join(only_a))
    if only_b: res.append("extra in %s: " % lb + " ".join(only_b))
    ca = [n for n in na if n in vb]
    cb = [n for n in nb if n in va]
    if ca != cb:
        # report the first few positions where order diverges
        for i, (x, y) in enumerate(zip(ca, cb)):
            if x != y:
                res.append("order differs from #%d: 1.6.38 %s... %s %s..." % (
                    i, " ".join(ca[i:i + 4]), lb, " ".join(cb[i:i + 4])))
                break
    vd = ["%s: %s / %s" % (n, va[n], vb[n]) for n in ca if va[n] != vb[n]]
    if vd: res.append("values (1.6.38 / %s): " % lb + "; ".join(vd))
    other_a = [l for l in a.split("\r\n") if not l.startswith("STAT ")]
    other_b = [l for l in b.split("\r\n") if not l.startswith("STAT ")]
    if other_a != other_b:
        res.append("non-STAT lines: %r / %r" % (other_a, other_b))
    return res


def show(b):
    return repr(b)[1:-1] if isinstance(b, str) else repr(b)


# --------------------------------------------------------------------------------------------
# cases: (group, name, steps, opts)   steps: bytes | (conn, bytes[, quiet]) | ("sleep", s) | ("read", conn)
CASES = []


def case(group, name, *steps, **opts):
    CASES.append((group, name, list(steps), opts))


SET = b"set foo 5 0 3\r\nbar\r\n"
LONGKEY = b"k" * 251
KEY250 = b"k" * 250

# ---- meta get
for fl in [b"", b"v", b"b", b"c", b"f", b"h", b"k", b"l", b"O123", b"q", b"s", b"t", b"u", b"v E99",
           b"E99 c", b"N30", b"R30", b"T30", b"T30 t", b"s v t f c k O1 h l", b"k v b"]:
    case("mg", b"hit: mg foo " + fl, SET, b"mg foo " + fl + b"\r\n")
    case("mg", b"miss: mg foo " + fl, b"mg foo " + fl + b"\r\n")
case("mg", "mg base64 hit k v b", SET, b"mg Zm9v b k v c f\r\n")
case("mg", "mg base64 binary key set via ms b", b"ms AAEC/w== 2 b\r\nhi\r\n", b"mg AAEC/w== b k v\r\n",
     b"mg AAEC/w== k v\r\n")
case("mg", "mg h twice", SET, b"mg foo h\r\nmg foo h\r\nmg foo h u\r\n")
case("mg", "mg l after sleep", SET, ("sleep", 1.2), b"mg foo l\r\nmg foo l\r\n")
case("mg", "mg t with ttl", b"set foo 0 100 3\r\nbar\r\n", b"mg foo t v\r\n")
case("mg", "mg q miss then mn", b"mg foo v q\r\nmg foo q k\r\nmn\r\n")
case("mg", "mg q hit", SET, b"mg foo v q\r\nmg foo q\r\nmn\r\n")
case("mg", "mg N autovivify twice", b"mg nk N30 s t v c f\r\nmg nk N30 s t v c\r\n")
case("mg", "mg N E autovivify sets cas", b"mg nk N30 E999 c v\r\nmg nk c\r\n")
case("mg", "mg E on hit not modified", SET, b"mg foo E999 c\r\nmg foo c\r\n")
case("mg", "mg E with T (modifies)", SET, b"mg foo E999 T100 c t\r\nmg foo c t\r\n")
case("mg", "mg R recache win then Z", b"set foo 0 10 3\r\nbar\r\n", b"mg foo R30 v c t\r\n", b"mg foo R30 v c t\r\n")
case("mg", "mg R token less than ttl (no win)", b"set foo 0 100 3\r\nbar\r\n", b"mg foo R30 v t\r\n")
case("mg", "mg R no ttl", SET, b"mg foo R30 v t\r\n")
case("mg", "mg N R miss", b"mg nk N30 R30 v t c\r\nmg nk N30 R30 v t\r\n")
case("mg", "mg invalid flag !", SET, b"mg foo !\r\n")
case("mg", "mg invalid flag z", SET, b"mg foo z\r\n")
case("mg", "mg invalid flag uppercase A", SET, b"mg foo A\r\n")
case("mg", "mg O without token", SET, b"mg foo O\r\n")
case("mg", "mg O 33 chars", SET, b"mg foo O" + b"x" * 33 + b"\r\n")
case("mg", "mg O 32 chars", SET, b"mg foo O" + b"x" * 32 + b"\r\n")
case("mg", "mg T without token", SET, b"mg foo T\r\n")
case("mg", "mg T non-numeric", SET, b"mg foo Tabc\r\n")
case("mg", "mg N non-numeric", b"mg foo Nabc\r\n")
case("mg", "mg R non-numeric", SET, b"mg foo Rabc\r\n")
case("mg", "mg E non-numeric", b"mg foo N30 Exyz c\r\n")
case("mg", "mg E empty", b"mg foo N30 E c\r\n")
case("mg", "mg duplicate flags", SET, b"mg foo v v c c\r\n")
case("mg", "mg no key", b"mg\r\n")
case("mg", "mg no key trailing space", b"mg \r\n")
case("mg", "mg too long key", b"mg " + LONGKEY + b" v\r\n")
case("mg", "mg 250 key", b"mg " + KEY250 + b" v\r\n")
case("mg", "mg bad base64", b"mg !!!! b v\r\n")
case("mg", "mg base64 not multiple of 4", b"mg Zm9 b v\r\n")
case("mg", "mg double space", SET, b"mg foo  v\r\n")
case("mg", "mg 25 flags", SET, b"mg foo " + b" ".join([b"v"] * 25) + b"\r\n")
case("mg", "mg flag token joined vs", SET, b"mg foo vc\r\n")

# ---- meta set
case("ms", "ms basic", b"ms foo 3\r\nbar\r\n", b"mg foo v f t c s\r\n")
case("ms", "ms flags T F c k O s", b"ms foo 3 T100 F7 c k O9 s\r\nbar\r\n", b"mg foo v f t\r\n")
case("ms", "ms b k", b"ms Zm9v 3 b k c\r\nbar\r\n", b"get foo\r\n")
case("ms", "ms s size", b"ms foo 3 s\r\nbar\r\n")
case("ms", "ms MA s size after append", SET, b"ms foo 4 MA s\r\nbaz1\r\n", b"mg foo v s\r\n")
case("ms", "ms C ok", SET, b"ms foo 3 C{1} c\r\nbaz\r\n")
case("ms", "ms C wrong", SET, b"ms foo 3 C999 c\r\nbaz\r\n")
case("ms", "ms C miss", b"ms foo 3 C1\r\nbaz\r\n")
case("ms", "ms E sets cas", b"ms foo 3 E12345 c\r\nbar\r\n", b"mg foo c v\r\ngets foo\r\n")
case("ms", "ms C + E", SET, b"ms foo 3 C{1} E500 c\r\nbaz\r\n", b"mg foo c\r\n")
case("ms", "ms I C older (stale)", b"ms foo 3 E100\r\nbar\r\n", b"ms foo 3 I C50 c\r\nnew\r\n", b"mg foo v c\r\n")
case("ms", "ms I C newer", b"ms foo 3 E100\r\nbar\r\n", b"ms foo 3 I C150\r\nnew\r\n", b"mg foo v c\r\n")
case("ms", "ms I C older, no E", SET, SET, b"ms foo 3 I C{1} c\r\nnew\r\n", b"mg foo v c\r\n")
case("ms", "ms I C older, no I (EX)", SET, SET, b"ms foo 3 C{1} c\r\nnew\r\n")
case("ms", "ms I alone", SET, b"ms foo 3 I\r\nnew\r\n", b"mg foo v c\r\n")
case("ms", "ms ME existing", SET, b"ms foo 3 ME\r\nbaz\r\n")
case("ms", "ms ME miss", b"ms foo 3 ME c\r\nbaz\r\n")
case("ms", "ms MA miss", b"ms foo 3 MA\r\nbaz\r\n")
case("ms", "ms MA hit", SET, b"ms foo 3 MA\r\nbaz\r\n", b"mg foo v\r\n")
case("ms", "ms MP hit", SET, b"ms foo 3 MP\r\nbaz\r\n", b"mg foo v\r\n")
case("ms", "ms MR miss", b"ms foo 3 MR\r\nbaz\r\n")
case("ms", "ms MR hit", SET, b"ms foo 3 MR\r\nbaz\r\n", b"mg foo v f\r\n")
case("ms", "ms MS", b"ms foo 3 MS\r\nbaz\r\n")
case("ms", "ms lowercase mode Ma", SET, b"ms foo 3 Ma\r\nbaz\r\n", b"mg foo v\r\n")
case("ms", "ms invalid mode MZ", b"ms foo 3 MZ\r\nbaz\r\n")
case("ms", "ms M no token", b"ms foo 3 M\r\nbaz\r\n")
case("ms", "ms MA N autovivify", b"ms foo 3 MA N100 c\r\nbaz\r\n", b"mg foo v t c\r\n")
case("ms", "ms MP N autovivify", b"ms foo 3 MP N100 T5\r\nbaz\r\n", b"mg foo v t\r\n")
case("ms", "ms MA N0 autovivify", b"ms foo 3 MA N0\r\nbaz\r\n", b"mg foo v t\r\n")
case("ms", "ms MA N hit (N ignored)", b"set foo 0 0 3\r\nbar\r\n", b"ms foo 3 MA N100\r\nbaz\r\n", b"mg foo v t\r\n")
case("ms", "ms MS N (not append)", b"ms foo 3 N100\r\nbaz\r\n", b"mg foo v t\r\n")
case("ms", "ms MA C", SET, b"ms foo 3 MA C{1}\r\nbaz\r\n", b"ms foo 3 MA C{1}\r\nqux\r\n")
case("ms", "ms q ok then mn", b"ms foo 3 q\r\nbar\r\nmn\r\n")
case("ms", "ms q ME fails", SET, b"ms foo 3 q ME\r\nbaz\r\nmn\r\n")
case("ms", "ms T-1", b"ms foo 3 T-1\r\nbar\r\n", b"mg foo v\r\n")
case("ms", "ms F max", b"ms foo 3 F4294967295\r\nbar\r\n", b"mg foo f\r\n")
case("ms", "ms F overflow 2^32", b"ms foo 3 F4294967296\r\nbar\r\n", b"mg foo f\r\n")
case("ms", "ms F -1", b"ms foo 3 F-1\r\nbar\r\n", b"mg foo f\r\n")
case("ms", "ms F 2^64", b"ms foo 3 F18446744073709551616\r\nbar\r\n")
case("ms", "ms S flag (old syntax) ms foo S3", b"ms foo S3\r\nbar\r\n")
case("ms", "ms S flag after len", b"ms foo 3 S3\r\nbar\r\n", b"mg foo v\r\n")
case("ms", "ms bad data chunk", b"ms foo 3\r\nbarx\r\n")
case("ms", "ms missing len", b"ms foo\r\n")
case("ms", "ms non-numeric len", b"ms foo abc\r\nbar\r\n")
case("ms", "ms negative len", b"ms foo -1\r\n")
case("ms", "ms too large", b"ms foo 2000000\r\n" + b"a" * 2000000 + b"\r\nmn\r\n")
case("ms", "ms invalid flag !", b"ms foo 3 !\r\nbar\r\nmn\r\n")
case("ms", "ms invalid flag z", b"ms foo 3 z\r\nbar\r\nmn\r\n")
case("ms", "ms T non-numeric", b"ms foo 3 Tabc\r\nbar\r\nmn\r\n")
case("ms", "ms C non-numeric", b"ms foo 3 Cabc\r\nbar\r\nmn\r\n")
case("ms", "ms E non-numeric", b"ms foo 3 Eabc\r\nbar\r\nmn\r\n")
case("ms", "ms too long key", b"ms " + LONGKEY + b" 3\r\nbar\r\nmn\r\n")
case("ms", "ms no key", b"ms\r\n")
case("ms", "ms zero len", b"ms foo 0\r\n\r\n", b"mg foo v s\r\n")
case("ms", "ms noreply-ish invalid b key", b"ms !!!! 3 b\r\nbar\r\nmn\r\n")

# ---- meta delete
case("md", "md hit", SET, b"md foo\r\nmg foo v\r\n")
case("md", "md miss", b"md foo\r\n")
case("md", "md q hit", SET, b"md foo q\r\nmn\r\n")
case("md", "md q miss", b"md foo q\r\nmn\r\n")
case("md", "md C wrong", SET, b"md foo C999\r\n")
case("md", "md C right", SET, b"md foo C{1}\r\n")
case("md", "md I", SET, b"md foo I\r\nmg foo v c t\r\nmg foo v c\r\n")
case("md", "md I T30", SET, b"md foo I T30\r\nmg foo v c t\r\n")
case("md", "md T without I", SET, b"md foo T30\r\nmg foo v t\r\n")
case("md", "md x", SET, b"md foo x\r\nmg foo v f c t s\r\n")
case("md", "md x with ttl", b"set foo 7 100 3\r\nbar\r\n", b"md foo x\r\nmg foo v f t s\r\n")
case("md", "md x I", SET, b"md foo x I\r\nmg foo v f c\r\n")
case("md", "md x miss", b"md foo x\r\n")
case("md", "md E (plain delete)", SET, b"md foo E500\r\nmg foo c\r\n")
case("md", "md I E", SET, b"md foo I E500\r\nmg foo c v\r\n")
case("md", "md x E", SET, b"md foo x E500\r\nmg foo c v\r\n")
case("md", "md k O b", b"ms Zm9v 3 b\r\nbar\r\n", b"md Zm9v b k O7\r\n")
case("md", "md k O", SET, b"md foo k O7\r\n")
case("md", "md invalid flag", SET, b"md foo !\r\n")
case("md", "md invalid flag v", SET, b"md foo v\r\n")
case("md", "md C non-numeric", SET, b"md foo Cx\r\n")
case("md", "md no key", b"md\r\n")

# ---- meta arithmetic
case("ma", "ma miss", b"ma cnt\r\n")
case("ma", "ma N J autovivify", b"ma cnt N0 J13 v\r\nma cnt v\r\n")
case("ma", "ma N without J", b"ma cnt N0 v t\r\n")
case("ma", "ma J without N", b"ma cnt J13 v\r\n")
case("ma", "ma hit v", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt v\r\n")
case("ma", "ma hit no flags", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt\r\nget cnt\r\n")
case("ma", "ma MD D5", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt MD D5 v\r\n")
case("ma", "ma MI", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt MI v\r\n")
case("ma", "ma M+", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt M+ D3 v\r\n")
case("ma", "ma M-", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt M- D3 v\r\n")
case("ma", "ma Md lowercase", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt Md v\r\n")
case("ma", "ma MX invalid", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt MX v\r\n")
case("ma", "ma decr below 0", b"set cnt 0 0 1\r\n3\r\n", b"ma cnt MD D5 v\r\n")
case("ma", "ma incr wrap", b"set cnt 0 0 20\r\n18446744073709551615\r\n", b"ma cnt v\r\n")
case("ma", "ma incr grow length", b"set cnt 0 0 2\r\n99\r\n", b"ma cnt v s\r\nmg cnt v s\r\n")
case("ma", "ma decr shrink length", b"set cnt 0 0 3\r\n100\r\n", b"ma cnt MD v\r\nmg cnt v s\r\nget cnt\r\n")
case("ma", "ma q hit", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt q\r\nmn\r\n")
case("ma", "ma q miss", b"ma cnt q\r\nmn\r\n")
case("ma", "ma t v with T", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt T100 t v\r\n")
case("ma", "ma t no ttl", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt t\r\n")
case("ma", "ma c v", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt c v\r\n")
case("ma", "ma E c v", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt E77 c v\r\nmg cnt c\r\n")
case("ma", "ma N E", b"ma cnt N0 J5 E88 c v\r\n")
case("ma", "ma C right", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt C{1} v c\r\n")
case("ma", "ma C wrong", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt C9 v c\r\n")
case("ma", "ma O k", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt O5 k v\r\n")
case("ma", "ma O k miss", b"ma cnt O5 k v\r\n")
case("ma", "ma b key", b"set cnt 0 0 2\r\n10\r\n", b"ma Y250 b k v\r\n")
case("ma", "ma non-numeric value", SET, b"ma foo v\r\n")
case("ma", "ma D non-numeric", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt Dabc v\r\n")
case("ma", "ma D 2^64", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt D18446744073709551616 v\r\n")
case("ma", "ma J non-numeric", b"ma cnt N0 Jabc v\r\n")
case("ma", "ma N non-numeric", b"ma cnt Nabc v\r\n")
case("ma", "ma invalid flag", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt !\r\n")
case("ma", "ma invalid flag f", b"set cnt 0 0 2\r\n10\r\n", b"ma cnt f v\r\n")
case("ma", "ma no key", b"ma\r\n")
case("ma", "ma value with flags kept", b"set cnt 9 0 2\r\n10\r\n", b"ma cnt\r\nmg cnt f v\r\n")
case("ma", "ma value 20 digits too long?", b"set cnt 0 0 21\r\n000000000000000000001\r\n", b"ma cnt v\r\n")

# ---- mn / me
case("mn", "mn", b"mn\r\n")
case("mn", "mn with args", b"mn foo\r\n")
case("me", "me hit", b"set foo 5 0 3\r\nbar\r\n", b"me foo\r\n")
case("me", "me hit ttl", b"set foo 5 100 3\r\nbar\r\n", b"mg foo v\r\nme foo\r\n")
case("me", "me miss", b"me foo\r\n")
case("me", "me b", b"ms AAEC/w== 2 b\r\nhi\r\n", b"me AAEC/w== b\r\n")
case("me", "me no key", b"me\r\n")
case("me", "me extra flag", SET, b"me foo v\r\n")

# ---- lru crawler
ITEMS = (b"set foo 5 0 3\r\nbar\r\nset baz 4294967295 0 1\r\nx\r\nset big 0 100 500\r\n" + b"y" * 500 +
         b"\r\nms AAEC/w== 2 b F3\r\nhi\r\n")
for cmd in [b"lru_crawler mgdump all", b"lru_crawler mgdump 1", b"lru_crawler mgdump 1,2", b"lru_crawler mgdump hash",
            b"lru_crawler metadump all", b"lru_crawler metadump 1", b"lru_crawler metadump hash",
            b"lru_crawler mgdump 99", b"lru_crawler metadump 99", b"lru_crawler mgdump", b"lru_crawler metadump",
            b"lru_crawler mgdump 0", b"lru_crawler mgdump foo"]:
    case("lru_crawler", cmd, ITEMS, (0, cmd + b"\r\n", 1.0), sortlines=True)
case("lru_crawler", "metadump all empty cache", (0, b"lru_crawler metadump all\r\n", 1.0))
case("lru_crawler", "mgdump all empty cache", (0, b"lru_crawler mgdump all\r\n", 1.0))
case("lru_crawler", "lru_crawler crawl all", ITEMS, (0, b"lru_crawler crawl all\r\n", 1.0))
case("lru_crawler", "lru_crawler bogus", b"lru_crawler bogus\r\n")
case("lru_crawler", "metadump after md x / md I", ITEMS, b"md foo x\r\nmd baz I\r\n",
     (0, b"lru_crawler metadump all\r\n", 1.0), sortlines=True)

# ---- watch (first lines)
case("watch", "watch deletions", (0, b"watch deletions\r\n"), (1, SET + b"delete foo\r\ndelete nope\r\n"),
     (1, b"ms foo 1\r\nx\r\nmd foo\r\n"), ("read", 0))
case("watch", "watch fetchers mutations evictions", (0, b"watch fetchers mutations evictions\r\n"),
     (1, SET + b"get foo\r\n"), ("read", 0))
case("watch", "watch mutations only", (0, b"watch mutations\r\n"), (1, SET), ("read", 0))
case("watch", "watch fetchers only", (0, b"watch fetchers\r\n"), (1, SET + b"get foo\r\nmg foo v\r\n"), ("read", 0))
case("watch", "watch no args", (0, b"watch\r\n"), (1, SET), ("read", 0))
case("watch", "watch bogus", b"watch bogus\r\n")
case("watch", "watch proxyreqs", b"watch proxyreqs\r\n")
case("watch", "watch connevents", (0, b"watch connevents\r\n"), (1, b"version\r\n"), ("read", 0))

# ---- slabs / stats sizes / detail
for cmd in [b"slabs automove 0", b"slabs automove 1", b"slabs automove 2", b"slabs automove 3", b"slabs automove",
            b"slabs reassign 1 2", b"slabs bogus",
            b"stats sizes", b"stats sizes_enable", b"stats sizes_disable", b"stats detail on", b"stats detail dump",
            b"stats detail off", b"stats detail", b"stats detail bogus", b"stats reset", b"stats bogus",
            b"stats cachedump 1 10", b"stats extstore", b"stats slabs 1"]:
    case("slabs/stats", cmd, ITEMS, cmd + b"\r\n")
case("slabs/stats", "slabs automove 2 then stats settings", b"slabs automove 2\r\n", b"stats settings\r\n", stats=True)
case("slabs/stats", "stats sizes with -o track_sizes", ITEMS, b"stats sizes\r\n", args=["-o", "track_sizes"])
case("slabs/stats", "stats sizes_enable then stats sizes", ITEMS, b"stats sizes_enable\r\nstats sizes\r\n")
case("slabs/stats", "stats detail on/dump/off sequence", b"stats detail on\r\n",
     b"set a:1 0 0 1\r\nx\r\nget a:1 a:2 b:1\r\ndelete a:1\r\nstats detail dump\r\nstats detail off\r\nstats detail dump\r\n")

# ---- stats families
for extra in ([], ["-o", "idle_timeout=3"]):
    sfx = " " + " ".join(extra) if extra else ""
    for cmd in [b"stats", b"stats settings", b"stats slabs", b"stats items", b"stats conns"]:
        case("stats", cmd.decode() + sfx, ITEMS, b"get foo nope\r\n", cmd + b"\r\n", stats=True, args=extra)

case("stats", "idle_timeout=3 closes idle conn (8s)", b"version\r\n", ("sleep", 8), b"version\r\n",
     args=["-o", "idle_timeout=3"])
case("stats", "stats conns two clients", (1, b"version\r\n"), (0, b"stats conns\r\n"))

# ---- flush_all / CAS
case("flush", "raw first CAS after start", SET, b"gets foo\r\n", norm_cas=False)
case("flush", "raw CAS across 3x flush_all", SET, b"gets foo\r\nflush_all\r\nflush_all\r\nflush_all\r\n", ("sleep", 1.1),
     SET, b"gets foo\r\n", norm_cas=False)
case("flush", "flush_all then gets CAS", SET, b"gets foo\r\nflush_all\r\n", ("sleep", 1.1), SET,
     b"gets foo\r\nmg foo c\r\n")
case("flush", "flush_all then ms c", SET, b"flush_all\r\n", ("sleep", 1.1), b"ms foo 1 c\r\nx\r\n")
case("flush", "flush_all immediate visibility", SET, b"flush_all\r\nget foo\r\n")
case("flush", "flush_all then stats curr_items", SET, b"flush_all\r\nmg foo v\r\n")
case("flush", "flush_all 0", SET, b"flush_all 0\r\nget foo\r\n")
case("flush", "flush_all noreply", SET, b"flush_all noreply\r\nget foo\r\n")
case("flush", "flush_all -1", SET, b"flush_all -1\r\nget foo\r\n")
case("flush", "flush_all abc", SET, b"flush_all abc\r\nget foo\r\n")
case("flush", "flush_all 2 delayed", SET, b"flush_all 2\r\nget foo\r\n", ("sleep", 2.5), b"get foo\r\n")
case("flush", "flush_all 0 noreply", SET, b"flush_all 0 noreply\r\nget foo\r\n")
case("flush", "flush_all 10 noreply extra", SET, b"flush_all 10 noreply extra\r\n")
case("flush", "flush_all huge", SET, b"flush_all 18446744073709551616\r\n")

# ---- classic storage
case("text", "set/get flags", SET, b"get foo\r\ngets foo\r\n")
case("text", "set noreply", b"set foo 0 0 3 noreply\r\nbar\r\nget foo\r\n")
case("text", "set negative exptime", b"set foo 0 -1 3\r\nbar\r\nget foo\r\n")
case("text", "set non-numeric exptime", b"set foo 0 abc 3\r\nbar\r\n")
case("text", "set non-numeric flags", b"set foo abc 0 3\r\nbar\r\n")
case("text", "set negative length", b"set foo 0 0 -1\r\n")
case("text", "set negative length then data", b"set foo 0 0 -1\r\nbar\r\n")
case("text", "set non-numeric length", b"set foo 0 0 abc\r\nbar\r\n")
case("text", "set too large", b"set foo 0 0 2000000\r\n" + b"a" * 2000000 + b"\r\nget foo\r\n")
case("text", "set flags 2^32", b"set foo 4294967296 0 3\r\nbar\r\nget foo\r\n")
case("text", "set flags 2^64", b"set foo 18446744073709551616 0 3\r\nbar\r\nget foo\r\n")
case("text", "set flags -1", b"set foo -1 0 3\r\nbar\r\nget foo\r\n")
case("text", "set exptime huge", b"set foo 0 18446744073709551616 3\r\nbar\r\nget foo\r\n")
case("text", "set too long key", b"set " + LONGKEY + b" 0 0 3\r\nbar\r\n")
case("text", "set 250 key", b"set " + KEY250 + b" 0 0 3\r\nbar\r\n")
case("text", "set bad data chunk", b"set foo 0 0 3\r\nbarx\r\nget foo\r\n")
case("text", "set missing length", b"set foo 0 0\r\n")
case("text", "set extra token", b"set foo 0 0 3 noreply extra\r\nbar\r\n")
case("text", "set bad noreply word", b"set foo 0 0 3 norepl\r\nbar\r\n")
case("text", "set data lf only", b"set foo 0 0 3\nbar\n")
case("text", "add existing", SET, b"add foo 0 0 3\r\nbaz\r\n")
case("text", "add miss", b"add foo 0 0 3\r\nbaz\r\n")
case("text", "replace miss", b"replace foo 0 0 3\r\nbaz\r\n")
case("text", "replace hit", SET, b"replace foo 0 0 3\r\nbaz\r\nget foo\r\n")
case("text", "append miss", b"append foo 0 0 3\r\nbaz\r\n")
case("text", "prepend miss", b"prepend foo 0 0 3\r\nbaz\r\n")
case("text", "append hit keeps flags", SET, b"append foo 9 0 3\r\nbaz\r\nprepend foo 9 0 1\r\n_\r\ngets foo\r\n")
case("text", "cas miss", b"cas foo 0 0 3 1\r\nbaz\r\n")
case("text", "cas wrong", SET, b"cas foo 0 0 3 99\r\nbaz\r\n")
case("text", "cas right", SET, b"cas foo 0 0 3 {1}\r\nbaz\r\ngets foo\r\n")
case("text", "cas bad unique", SET, b"cas foo 0 0 3 abc\r\nbaz\r\n")
case("text", "cas missing unique", SET, b"cas foo 0 0 3\r\nbaz\r\n")
case("text", "cas noreply", SET, b"cas foo 0 0 3 99 noreply\r\nbaz\r\nmn\r\n")
case("text", "incr miss", b"incr foo 1\r\n")
case("text", "incr non-numeric value", SET, b"incr foo 1\r\n")
case("text", "incr 2^64", b"set n 0 0 1\r\n1\r\n", b"incr n 18446744073709551616\r\n")
case("text", "incr -1", b"set n 0 0 1\r\n1\r\n", b"incr n -1\r\n")
case("text", "incr abc", b"set n 0 0 1\r\n1\r\n", b"incr n abc\r\n")
case("text", "incr wrap", b"set n 0 0 20\r\n18446744073709551615\r\n", b"incr n 1\r\n")
case("text", "incr grow", b"set n 0 0 2\r\n99\r\n", b"incr n 1\r\nget n\r\n")
case("text", "decr shrink", b"set n 0 0 3\r\n100\r\n", b"decr n 1\r\nget n\r\n")
case("text", "decr below 0", b"set n 0 0 1\r\n3\r\n", b"decr n 5\r\n")
case("text", "incr leading space value", b"set n 0 0 3\r\n  5\r\n", b"incr n 1\r\n")
case("text", "incr trailing space value", b"set n 0 0 3\r\n5  \r\n", b"incr n 1\r\n")
case("text", "incr value 2^64", b"set n 0 0 20\r\n18446744073709551616\r\n", b"incr n 1\r\n")
case("text", "incr missing delta", b"set n 0 0 1\r\n1\r\n", b"incr n\r\n")
case("text", "incr noreply", b"set n 0 0 1\r\n1\r\n", b"incr n 1 noreply\r\nget n\r\n")
case("text", "incr cas bump", b"set n 0 0 1\r\n1\r\n", b"incr n 1\r\ngets n\r\n")
case("text", "touch hit/miss", SET, b"touch foo 100\r\ntouch nope 100\r\nmg foo t\r\n")
case("text", "touch non-numeric", SET, b"touch foo abc\r\n")
case("text", "touch noreply", SET, b"touch foo 100 noreply\r\nmn\r\n")
case("text", "touch missing exptime", SET, b"touch foo\r\n")
case("text", "gat", SET, b"gat 100 foo nope\r\nmg foo t\r\n")
case("text", "gats", SET, b"gats 0 foo\r\n")
case("text", "gat non-numeric", SET, b"gat abc foo\r\n")
case("text", "gat no key", b"gat 100\r\n")
case("text", "gat no args", b"gat\r\n")
case("text", "gat miss", b"gat 100 nope\r\n")
case("text", "delete hit/miss", SET, b"delete foo\r\ndelete foo\r\n")
case("text", "delete foo 0", SET, b"delete foo 0\r\n")
case("text", "delete foo 5", SET, b"delete foo 5\r\n")
case("text", "delete noreply", SET, b"delete foo noreply\r\nget foo\r\n")
case("text", "delete 0 noreply", SET, b"delete foo 0 noreply\r\nget foo\r\n")
case("text", "delete no key", b"delete\r\n")
case("text", "delete too long key", b"delete " + LONGKEY + b"\r\n")
case("text", "get 0 keys", b"get\r\n")
case("text", "get trailing space", b"get \r\n")
case("text", "gets 0 keys", b"gets\r\n")
case("text", "get too long key", b"get " + LONGKEY + b"\r\n")
case("text", "get long key among good", SET, b"get foo " + LONGKEY + b" foo\r\n")
case("text", "get many keys 2KB line", SET, b"get " + b" ".join([b"foo"] * 600) + b"\r\n")
case("text", "2KB line without newline then newline", (0, b"a" * 2048), (0, b"\r\n"), (0, b"version\r\n"))
case("text", "2KB get line no newline then newline", SET, (0, b"get " + b"foo " * 600), (0, b"\r\n"))
case("text", "10KB junk no newline", (0, b"a" * 10240), (0, b"\r\nversion\r\n"))
case("text", "empty line", b"\r\n")
case("text", "bare lf", b"\n")
case("text", "unknown command", b"bogus\r\n")
case("text", "uppercase GET", SET, b"GET foo\r\n")
case("text", "verbosity", b"verbosity 1\r\nverbosity\r\nverbosity abc\r\nverbosity 1 noreply\r\nmn\r\n")
case("text", "verbosity 0 extra", b"verbosity 0 1 2\r\n")
case("text", "version", b"version\r\n")
case("text", "version extra", b"version x\r\n")
case("text", "misbehave", b"misbehave\r\n")
case("text", "debugtime", b"debugtime\r\n")
case("text", "debugtime 10", b"debugtime 10\r\n")
case("text", "shutdown", b"shutdown\r\n")
case("text", "shutdown graceful", b"shutdown graceful\r\n")
case("text", "cache_memlimit 100", b"cache_memlimit 100\r\n", b"stats settings\r\n", stats=True)
case("text", "cache_memlimit 0", b"cache_memlimit 0\r\n")
case("text", "cache_memlimit 1", b"cache_memlimit 1\r\n")
case("text", "cache_memlimit abc", b"cache_memlimit abc\r\n")
case("text", "cache_memlimit noarg", b"cache_memlimit\r\n")
case("text", "cache_memlimit 100 noreply", b"cache_memlimit 100 noreply\r\nmn\r\n")
case("text", "quit", b"quit\r\n")
case("text", "quit extra", b"quit now\r\n")
case("text", "quit pipelined", b"get foo\r\nquit\r\nget foo\r\n")
case("text", "lru mode", b"lru mode flat\r\nlru bogus\r\nlru_crawler enable\r\nlru_crawler disable\r\n")


# --------------------------------------------------------------------------------------------
BASE = {}


def calibrate():
    """first CAS value each server hands out (1.6.38 starts at 2, 1.6.18 at 1)"""
    for label, argv in SERVERS:
        srv = Server(label, argv, [])
        try:
            r = run_steps_raw(srv, [b"ms calib 1 c\r\nx\r\n"])
            BASE[label] = int(re.search(rb"c(\d+)", r[0]).group(1))
        finally:
            srv.stop()


def run_steps_raw(srv, steps):
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(steps[0]); r = read_quiet(s, QUIET); s.close()
    return [r]


def run_case(c, quiet):
    group, name, steps, opts = c
    extra = opts.get("args", [])
    servers = {}
    errs = []

    def start(label, argv):
        try:
            servers[label] = Server(label, argv, extra)
        except Exception as e:
            errs.append(e)
    ths = [threading.Thread(target=start, args=s) for s in SERVERS]
    [t.start() for t in ths]; [t.join() for t in ths]
    results = {}
    try:
        if errs:
            raise errs[0]

        def go(label):
            srv = servers[label]
            raw = run_steps(srv, steps, quiet)
            results[label] = " | ".join(mask(label, srv.port, r, opts) for r in raw)
            if opts.get("sortlines"):
                o2 = dict(opts); o2["sortlines"] = False
                results[label] = " | ".join(mask(label, srv.port, r, o2) for r in raw[:-1]) + " | " + \
                    mask(label, srv.port, raw[-1], opts)
        ths = [threading.Thread(target=go, args=(l,)) for l, _ in SERVERS]
        [t.start() for t in ths]; [t.join() for t in ths]
    finally:
        for s in servers.values():
            s.stop()
    return results


def steps_repr(steps):
    parts = []
    for st in steps:
        if isinstance(st, bytes):
            st = (0, st)
        if st[0] == "sleep":
            parts.append("<sleep %s>" % st[1]); continue
        if st[0] == "read":
            parts.append("<read conn%d>" % st[1]); continue
        b = st[1]
        r = repr(b if len(b) < 300 else b[:60] + b"...<%d bytes>..." % len(b) + b[-20:])[2:-1]
        parts.append(("conn%d:" % st[0] if st[0] else "") + r)
    return " | ".join(parts)


def trunc(s, n=1500):
    return s if len(s) <= n else s[:n] + "...<%d chars>" % len(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", default=None)
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--quiet", type=float, default=QUIET)
    a = ap.parse_args()
    cases = [c for c in CASES if a.k is None or a.k in (c[1] if isinstance(c[1], str) else c[1].decode())]
    if a.list:
        for c in cases: print(c[0], c[1])
        return
    calibrate()
    print("# first CAS value per server (normalised away unless norm_cas=False): %s" % BASE)
    ndiff = 0
    for c in cases:
        group, name, steps, opts = c
        name = name if isinstance(name, str) else name.decode()
        r = run_case(c, a.quiet)
        v38, vrs, v18 = r["1.6.38"], r["rs"], r["1.6.18"]
        if v38 == vrs and not a.all:
            if v18 != v38:
                print("# note: rs already matches 1.6.38 (1.6.18 differs): [%s] %s" % (group, name))
            continue
        if v38 == vrs:
            tag = "SAME"
        elif v18 == v38:
            tag = "SHARED-GAP (1.6.18 == 1.6.38)"
        elif v18 == vrs:
            tag = "NEW-IN-1.6.38 (1.6.18 == rs)"
        else:
            tag = "ALL-DIFFER"
        ndiff += v38 != vrs
        print("### [%s] %s   -- %s" % (group, name, tag))
        print("  in:     " + trunc(steps_repr(steps), 600))
        if opts.get("args"): print("  args:   " + " ".join(opts["args"]))
        if opts.get("stats") and v38 != vrs:
            for line in stats_diff(v38, vrs):
                print("  rs-vs-1.6.38: " + line)
            if v18 != v38:
                for line in stats_diff(v38, v18, "1.6.18"):
                    print("  1.6.18-vs-1.6.38: " + line)
        else:
            print("  1.6.38: " + trunc(show(v38)))
            print("  rs:     " + trunc(show(vrs)))
            print("  1.6.18: " + ("(= 1.6.38)" if v18 == v38 else "(= rs)" if v18 == vrs else trunc(show(v18))))
        sys.stdout.flush()
    print("# %d cases, %d differ between 1.6.38 and rs" % (len(cases), ndiff))


if __name__ == "__main__":
    main()
