# memcached-rs — build, run and test.
#
#   make run     build and start the daemon on 127.0.0.1:11211 with memcached's defaults
#   make test    install what the tests need, then run every test

CARGO   ?= cargo
BIN     := target/release/memcached-rs
VENV    := target/test-venv
PYTHON  := $(VENV)/bin/python
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# memcached refuses to run as root without -u; so do we. `make run` as root runs as nobody.
RUN_AS  := $(shell [ "$$(id -u)" = 0 ] && echo "-u nobody")

.PHONY: build run test test-deps test-rust test-python lint clean bench-memory

build:
	$(CARGO) build --release --locked

run: build
	./$(BIN) -l 127.0.0.1 -p 11211 $(RUN_AS) $(ARGS)

# Debian's memcached is the oracle of the differential tests (sasl2-bin's saslpasswd2 makes
# the user database its SASL reads); netcat drives the transcript test; the Python clients run
# from a virtualenv so the system Python stays untouched.
test-deps:
	@if ! command -v memcached >/dev/null || ! command -v nc >/dev/null \
	    || ! command -v saslpasswd2 >/dev/null \
	    || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    memcached netcat-openbsd sasl2-bin python3 python3-venv python3-pip >/dev/null; \
	fi
	@# Debian starts the packaged memcached on 11211; the tests use their own ports, so stop it.
	@-$(SUDO) systemctl stop memcached >/dev/null 2>&1 || true
	@[ -x $(PYTHON) ] || python3 -m venv $(VENV)
	@$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

test-rust: build
	$(CARGO) test --release --locked

test-python: build test-deps
	$(PYTHON) -m pytest -q tests/python

test: test-deps test-rust test-python

# Memory efficiency next to Debian's memcached (a report, not a test): see benches/README.md.
bench-memory: build
	$(CARGO) bench --locked --bench memory

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets --locked -- -D warnings

clean:
	$(CARGO) clean
