# memcached-rs — build, run and test.
#
#   make run     build and start the daemon on 127.0.0.1:11211 with memcached's defaults
#   make test    install what the tests need, then run every test
#   make test-clients         real client libraries against the server (text protocol)
#   make test-clients-binary  the same clients over the binary protocol and SASL, and memjs
#   MEMCACHED_BIN=/usr/bin/memcached make test-clients   the same tests against memcached

CARGO   ?= cargo
BIN     := target/release/memcached-rs
VENV    := target/test-venv
PYTHON  := $(VENV)/bin/python
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# memcached refuses to run as root without -u; so do we. `make run` as root runs as nobody.
RUN_AS  := $(shell [ "$$(id -u)" = 0 ] && echo "-u nobody")
# The server the client suites run against (memcached-rs unless told otherwise).
MEMCACHED_BIN ?= $(BIN)
# Which tests/clients tests `make test-clients` runs, as a pytest -m expression.
CLIENT_TESTS  ?= not binary
NODE_DIR := tests/clients/node
CLIENTS_ENV := MEMCACHED_BIN=$(abspath $(MEMCACHED_BIN))

.PHONY: build run test test-deps test-rust test-python test-clients test-clients-binary \
	test-clients-node lint clean bench-memory

build:
	$(CARGO) build --release --locked

run: build
	./$(BIN) -l 127.0.0.1 -p 11211 $(RUN_AS) $(ARGS)

# Debian's memcached is the oracle of the differential tests (sasl2-bin's saslpasswd2 makes
# the user database its SASL reads); netcat drives the transcript test; systemd brings
# systemd-analyze and systemd-socket-activate for the unit and activation tests; the Python clients run
# from a virtualenv so the system Python stays untouched.
test-deps:
	@if ! command -v memcached >/dev/null || ! command -v nc >/dev/null \
	    || ! command -v saslpasswd2 >/dev/null \
	    || ! command -v systemd-socket-activate >/dev/null \
	    || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    memcached netcat-openbsd sasl2-bin systemd python3 python3-venv python3-pip >/dev/null; \
	fi
	@# Debian starts the packaged memcached on 11211; the tests use their own ports, so stop it.
	@-$(SUDO) systemctl stop memcached >/dev/null 2>&1 || true
	@[ -x $(PYTHON) ] || python3 -m venv $(VENV)
	@# The real-client suites: libmemcached's tools and PHP's Memcached extension from Debian,
	@# Cyrus SASL's PLAIN plugin for the clients' SASL, Node.js for memjs (if none is installed).
	@if ! command -v memcstat >/dev/null || ! command -v php >/dev/null \
	    || ! php -m 2>/dev/null | grep -qx memcached \
	    || ! ls /usr/lib/*/sasl2/libplain.so >/dev/null 2>&1 || ! command -v npm >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    libmemcached-tools php-cli php-memcached libsasl2-modules \
	    $$(command -v npm >/dev/null || echo nodejs npm) >/dev/null; \
	fi
	@$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt \
	  -r tests/clients/requirements.txt
	@# npm ci only when package-lock.json changed since the last install.
	@[ $(NODE_DIR)/node_modules/.package-lock.json -nt $(NODE_DIR)/package-lock.json ] \
	  || (cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error)

test-rust: build
	$(CARGO) test --release --locked

test-python: build test-deps
	$(PYTHON) -m pytest -q tests/python

# Real clients (tests/clients): pymemcache, pylibmc, PHP's Memcached, libmemcached's tools.
test-clients: build test-deps
	$(CLIENTS_ENV) $(PYTHON) -m pytest -q -m "$(CLIENT_TESTS)" tests/clients

# The binary-protocol and SASL tests of the same clients, then memjs (binary only).
test-clients-binary: build test-deps test-clients-node
	$(CLIENTS_ENV) $(PYTHON) -m pytest -q -m binary tests/clients

test-clients-node: build test-deps
	cd $(NODE_DIR) && $(CLIENTS_ENV) node --test --test-reporter=spec memjs.test.mjs

test: test-deps test-rust test-python test-clients test-clients-binary

# Memory efficiency next to Debian's memcached (a report, not a test): see benches/README.md.
bench-memory: build
	$(CARGO) bench --locked --bench memory

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets --locked -- -D warnings

clean:
	$(CARGO) clean
