# memcached-rs — build, run and test.
#
#   make run     build and start the daemon on 127.0.0.1:11211 with memcached's defaults
#   make test    install what the tests need, then run every test
#   make test-clients         real client libraries against the server (text protocol)
#   make test-clients-binary  the same clients over the binary protocol and SASL, and memjs
#   MEMCACHED_BIN=/usr/bin/memcached make test-clients   the same tests against memcached
#   make bench / bench-memory / bench-hitratio / bench-scaling   memcached-rs and memcached side by side
#                (reports, not tests)
#   make fuzz / fuzz-smoke      the cargo-fuzz targets (fuzz/); make soak: a 10-minute soak

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
# Debian 13 (trixie), whose memcached 1.6.38 is the reference (see test-deps).
TRIXIE_ROOT   := target/trixie-root
DEBIAN_MIRROR ?= http://deb.debian.org/debian
CLIENTS_ENV := MEMCACHED_BIN=$(abspath $(MEMCACHED_BIN))

.PHONY: build run test test-deps test-rust test-python test-clients test-clients-binary \
	test-clients-node lint clean bench-memory bench-hitratio bench bench-load bench-callgrind bench-scaling bench-restart \
	bench-deps

build:
	$(CARGO) build --release --locked

run: build
	./$(BIN) -l 127.0.0.1 -p 11211 $(RUN_AS) $(ARGS)

# Debian 13's memcached 1.6.38 is the oracle of the differential tests: it runs from a trixie
# root that debootstrap builds once under target/ (about 45 s and 280 MB; built aside and moved
# into place, so an interrupted build is redone). Debian 12's own memcached 1.6.18 is what the
# benchmarks measure against, as Debian 12's users run it (sasl2-bin's saslpasswd2 makes
# the user database its SASL reads); netcat drives the transcript test; systemd brings
# systemd-analyze and systemd-socket-activate for the unit and activation tests; openssl makes
# the TLS tests' certificates and is their s_client; tmux is the terminal memcached-rs-tool's
# top is tested in, and liburi-perl lets perl run Debian's memcached-tool, the tool's
# reference; the Python clients run from a virtualenv so the system Python stays untouched.
test-deps:
	@if ! command -v memcached >/dev/null || ! command -v nc >/dev/null \
	    || ! command -v saslpasswd2 >/dev/null \
	    || ! command -v systemd-socket-activate >/dev/null \
	    || ! command -v openssl >/dev/null || ! command -v debootstrap >/dev/null \
	    || ! command -v tmux >/dev/null || ! perl -MURI::Escape -e1 2>/dev/null \
	    || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    memcached netcat-openbsd sasl2-bin systemd openssl python3 python3-venv python3-pip \
	    debootstrap tmux liburi-perl >/dev/null; \
	fi
	@[ -x $(TRIXIE_ROOT)/usr/bin/memcached ] || { \
	  echo "building Debian 13's root for the reference memcached in $(TRIXIE_ROOT)"; \
	  mkdir -p $(dir $(TRIXIE_ROOT)) && $(SUDO) rm -rf $(TRIXIE_ROOT).part && \
	  $(SUDO) debootstrap --variant=minbase --include=memcached trixie \
	    $(abspath $(TRIXIE_ROOT)).part \
	    $(DEBIAN_MIRROR) >/dev/null && \
	  $(SUDO) mv $(TRIXIE_ROOT).part $(TRIXIE_ROOT); }
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

test: test-deps test-rust test-python test-clients test-clients-binary test-e2e test-image \
	test-fuzz-smoke

# Memory efficiency next to Debian's memcached (a report, not a test): see benches/README.md.
bench-memory: build
	$(CARGO) bench --locked --bench memory

# Hit ratio of a Zipf cache-aside workload with the cache full, next to memcached (a report).
bench-hitratio: build bench-deps
	$(CARGO) bench --locked --bench hitratio

# Throughput, latency and CPU per operation next to memcached (bench-load), then instructions per
# request under callgrind (bench-callgrind): a report, not a test; see benches/README.md.
# BENCH_SECS sets the length of each measured run, BENCH_WORKLOADS=W1,W3 picks workloads.
bench: bench-load bench-callgrind

bench-load: build bench-deps
	$(CARGO) bench --locked --bench load

bench-callgrind: build bench-deps
	$(CARGO) bench --locked --bench callgrind

# Ops/s and CPU per request at -t 1, 2, 4 … on half the CPUs, the load on the other half
# (benches/scaling.rs, docs/scaling.md).
bench-scaling: build bench-deps
	$(CARGO) bench --locked --bench scaling

# Restart time with a full 1 GB cache (-e in /dev/shm), memcached-rs (SIGTERM) next to
# memcached (SIGUSR1): a report, not a test.
bench-restart: build bench-deps
	$(CARGO) bench --locked --bench restart

# memcached (the reference) and valgrind, when missing; Debian starts the packaged memcached on
# 11211, which the benchmarks do not use, so it is stopped.
bench-deps:
	@if ! command -v memcached >/dev/null || ! command -v valgrind >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached valgrind \
	    >/dev/null && { $(SUDO) systemctl stop memcached >/dev/null 2>&1 || true; }; \
	fi

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets --locked -- -D warnings

clean:
	$(CARGO) clean

# ---------------------------------------------------------------------------------------------
# Install and packages.
#
#   make install [DESTDIR=…] [PREFIX=/usr/local]   binary, units, default config, man page
#   make deb [DEB_SUITE=bookworm|trixie]   target/packages/deb/<suite>/
#                  memcached-rs_<version>+deb<12|13>_<arch>.deb, then that release's lintian
#                  (this machine's release by default; another one's lintian needs root)
#   make rpm       target/packages/rpm/RPMS/<arch>/memcached-rs-<version>-1.<arch>.rpm, then rpmlint
#   make test-e2e  the .deb installed and run under systemd in booted Debian 12 and 13 containers
#   make image     the OCI image memcached-rs:VERSION (podman); make test-image checks it
#                  (root; tests/e2e/README.md)

.PHONY: install uninstall check-man deb rpm test-e2e deb-deps rpm-deps e2e-deps clean-packages \
	image image-deps test-image

VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
UNITS      := memcached-rs.service memcached-rs.socket memcached-rs@.service
PKG_DIR    := target/packages
DEB_SRC    := $(PKG_DIR)/deb/memcached-rs-$(VERSION)
RPM_TOP    := $(abspath $(PKG_DIR)/rpm)
DEB_ARCH   := $(shell dpkg --print-architecture 2>/dev/null)
# One package per Debian release: the same binary (built on the oldest, bookworm, so glibc
# 2.36 suffices), each release's file layout, lintian and version (+deb12 < +deb13, so a
# dist-upgrade replaces one with the other). debian/rules takes the layout from the changelog's
# distribution, which the build copy gets here.
DEB_SUITES := bookworm trixie
HOST_SUITE := $(shell . /etc/os-release 2>/dev/null && echo $$VERSION_CODENAME)
DEB_SUITE  ?= $(or $(filter $(DEB_SUITES),$(HOST_SUITE)),bookworm)
deb_release = $(if $(filter bookworm,$(1)),12,$(if $(filter trixie,$(1)),13,$(error unknown DEB_SUITE $(1): one of $(DEB_SUITES))))
deb_version = $(VERSION)+deb$(call deb_release,$(1))
deb_file    = $(PKG_DIR)/deb/$(1)/memcached-rs_$(call deb_version,$(1))_$(DEB_ARCH).deb
DEB_FILE    = $(call deb_file,$(DEB_SUITE))
# What goes into a package build: the work tree's files that git tracks or does not ignore
# (so uncommitted changes are packaged too), without target/ or node_modules/.
SOURCE_FILES = { git ls-files -z --cached --others --exclude-standard 2>/dev/null \
	  || find . -path ./target -prune -o -path ./.git -prune -o -type f -print0; }

# Not depending on build: `make && sudo make install` must not run cargo as root.
# The units name $(BINDIR) and $(SYSCONFDIR); an existing $(SYSCONFDIR)/memcached.conf is kept.
install:
	@[ -x $(BIN) ] || { echo "$(BIN) is missing: run make build first" >&2; exit 1; }
	install -D -m 755 $(BIN) $(DESTDIR)$(BINDIR)/memcached-rs
	install -D -m 755 $(BIN)-tool $(DESTDIR)$(BINDIR)/memcached-rs-tool
	install -D -m 644 man/memcached-rs.1 $(DESTDIR)$(MANDIR)/man1/memcached-rs.1
	install -D -m 644 man/memcached-rs-tool.1 $(DESTDIR)$(MANDIR)/man1/memcached-rs-tool.1
	install -D -m 644 etc/memcached.conf $(DESTDIR)$(DATADIR)/memcached-rs/memcached.conf.default
	install -d $(DESTDIR)$(UNITDIR)
	for unit in $(UNITS); do \
	  sed -e 's|/usr/bin/memcached-rs|$(BINDIR)/memcached-rs|g' \
	      -e 's|/etc/memcached|$(SYSCONFDIR)/memcached|g' systemd/$$unit \
	    > $(DESTDIR)$(UNITDIR)/$$unit && chmod 644 $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	[ -e $(DESTDIR)$(SYSCONFDIR)/memcached.conf ] \
	  || install -D -m 644 etc/memcached.conf $(DESTDIR)$(SYSCONFDIR)/memcached.conf
	@echo "installed; the units run as user memcache:" \
	  "useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin memcache"

# Leaves $(SYSCONFDIR)/memcached.conf, as a package's remove does.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/memcached-rs $(DESTDIR)$(MANDIR)/man1/memcached-rs.1 \
	  $(DESTDIR)$(BINDIR)/memcached-rs-tool $(DESTDIR)$(MANDIR)/man1/memcached-rs-tool.1 \
	  $(DESTDIR)$(DATADIR)/memcached-rs/memcached.conf.default \
	  $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	-rmdir $(DESTDIR)$(DATADIR)/memcached-rs

# Every flag `memcached-rs -h` lists is in the man page, which groff renders without warnings.
check-man: build
	man/check-flags.sh $(BIN)

deb-deps:
	@if ! command -v dh >/dev/null || ! command -v lintian >/dev/null \
	    || ! command -v man >/dev/null || ! command -v git >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    debhelper dpkg-dev lintian man-db git >/dev/null; \
	fi

# dpkg-buildpackage runs in a copy of the tree under target/packages/deb (its target/ kept
# between runs): the work tree gets no debian/ build files and its target/ is not touched.
# cargo fetch needs the network; the package build is offline.
# Another release's lintian runs in a root of that release (debian/lintian.sh; as root only).
deb: deb-deps $(if $(and $(filter-out $(HOST_SUITE),$(DEB_SUITE)),$(filter 0,$(shell id -u))),e2e-deps)
	@[ "$$(dpkg-parsechangelog -l debian/changelog -S Version)" = "$(VERSION)" ] \
	  || { echo "debian/changelog is not at Cargo.toml's version $(VERSION)" >&2; exit 1; }
	$(CARGO) fetch --locked
	mkdir -p $(DEB_SRC)
	find $(DEB_SRC) -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
	$(SOURCE_FILES) | tar --null --ignore-failed-read -T - -cf - | tar -xf - -C $(DEB_SRC)
	sed -i '1s/^memcached-rs ([^)]*) [^;]*;/memcached-rs ($(call deb_version,$(DEB_SUITE))) $(DEB_SUITE);/' \
	  $(DEB_SRC)/debian/changelog
	rm -rf $(PKG_DIR)/deb/*.*deb $(PKG_DIR)/deb/*.changes $(PKG_DIR)/deb/*.buildinfo $(PKG_DIR)/deb/$(DEB_SUITE)
	cd $(DEB_SRC) && CARGO=$(CARGO) dpkg-buildpackage -b -us -uc
	mkdir -p $(PKG_DIR)/deb/$(DEB_SUITE)
	mv $(PKG_DIR)/deb/*.*deb $(PKG_DIR)/deb/*.changes $(PKG_DIR)/deb/*.buildinfo $(PKG_DIR)/deb/$(DEB_SUITE)/
	LINTIAN_CACHE=$(E2E_CACHE) debian/lintian.sh $(DEB_SUITE) $(PKG_DIR)/deb/$(DEB_SUITE)/memcached-rs_$(call deb_version,$(DEB_SUITE))_$(DEB_ARCH).changes
	@ls -l $(DEB_FILE)

rpm-deps:
	@if ! command -v rpmbuild >/dev/null || ! command -v rpmlint >/dev/null \
	    || ! command -v eu-strip >/dev/null || ! command -v find-debuginfo >/dev/null \
	    || ! command -v man >/dev/null || ! command -v git >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    rpm rpmlint debugedit elfutils man-db git >/dev/null; \
	fi

# Debian's rpm runs brp-compress (written for bash: `read -d`) with dash, so man pages stay
# uncompressed; run it with bash.
RPM_HOST_FIXES := $(if $(wildcard /etc/debian_version),\
	--define "__brp_compress bash /usr/lib/rpm/brp-compress %{?_prefix}")
# rpmbuild from a tarball of the tree. --nodeps: on a Debian host rpm's database is empty, so
# the spec's BuildRequires (cargo, systemd-rpm-macros) cannot be checked; cargo is the machine's.
rpm: rpm-deps
	@[ "$$(sed -n 's/^Version:[[:space:]]*//p' rpm/memcached-rs.spec)" = "$(VERSION)" ] \
	  || { echo "rpm/memcached-rs.spec is not at Cargo.toml's version $(VERSION)" >&2; exit 1; }
	$(CARGO) fetch --locked
	rm -rf $(RPM_TOP)/RPMS $(RPM_TOP)/SOURCES
	mkdir -p $(RPM_TOP)/SOURCES
	$(SOURCE_FILES) | tar --null --ignore-failed-read -T - \
	  --transform 's|^\(\./\)\{0,1\}|memcached-rs-$(VERSION)/|' -czf $(RPM_TOP)/SOURCES/memcached-rs-$(VERSION).tar.gz
	cp rpm/memcached-rs.sysusers $(RPM_TOP)/SOURCES/
	rpmbuild -bb --nodeps --define "_topdir $(RPM_TOP)" \
	  --define "cargo_cmd $(shell command -v $(CARGO))" $(RPM_HOST_FIXES) rpm/memcached-rs.spec
	rpmlint -c rpm/rpmlint.toml rpm/memcached-rs.spec $(RPM_TOP)/RPMS/*/memcached-rs-$(VERSION)-*.rpm
	@ls -l $(RPM_TOP)/RPMS/*/*.rpm

e2e-deps:
	@if ! command -v debootstrap >/dev/null || ! command -v systemd-nspawn >/dev/null \
	    || ! command -v cpio >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    debootstrap systemd-container cpio >/dev/null; \
	fi

# Root only (debootstrap, systemd-nspawn, nsenter). The .deb is installed and run in booted
# Debian 12 (bookworm) and Debian 13 (trixie) containers, whose roots are cached in
# $(E2E_CACHE) between runs; the rpm's unit is run there too (its files unpacked: the
# container has no rpm). The same package, built here on bookworm, serves both releases.
E2E_CACHE ?= /var/cache/memcached-rs-e2e
E2E_SUITES ?= bookworm trixie
RPM_FILE   = $(RPM_TOP)/RPMS/$(shell uname -m)/memcached-rs-$(VERSION)-1.$(shell uname -m).rpm
test-e2e: rpm e2e-deps
	$(foreach suite,$(E2E_SUITES),echo "# e2e in Debian $(suite)" \
	  && $(MAKE) --no-print-directory deb DEB_SUITE=$(suite) \
	  && E2E_SUITE=$(suite) E2E_CACHE=$(E2E_CACHE) tests/e2e/run.sh $(call deb_file,$(suite)) $(RPM_FILE) \
	  &&) true

# The container image memcached-rs:$(VERSION) (etc/container/Containerfile), built offline
# from this build's binaries and the Debian libraries they link: no registry base image.
IMAGE      := memcached-rs:$(VERSION)
IMAGE_DIR  := target/image
image-deps:
	@if ! command -v podman >/dev/null || ! command -v python3 >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman python3 >/dev/null; \
	fi

image: build image-deps
	etc/container/rootfs.sh $(IMAGE_DIR)/rootfs target/release
	podman build --quiet --format docker -t $(IMAGE) -f etc/container/Containerfile $(IMAGE_DIR)
	@podman image inspect --format '$(IMAGE): {{.Size}} bytes' $(IMAGE)

# Root: podman run where podman can run containers, else the image's file system in a chroot
# (tests/image/run.sh says which, and why).
test-image: image
	tests/image/run.sh $(IMAGE)

clean: clean-packages
clean-packages:
	rm -rf $(PKG_DIR) debian/.debhelper debian/memcached-rs debian/files debian/*.substvars \
	  debian/debhelper-build-stamp debian/*.debhelper.log debian/*.debhelper

# ---------------------------------------------------------------------------------------------
# Fuzzing: cargo-fuzz (libFuzzer) targets in fuzz/ (fuzz/README.md).
#
#   make fuzz [FUZZ_SECONDS=300] [FUZZ_TARGETS="text_parser …"]   each target for FUZZ_SECONDS,
#                   one at a time; prints each one's executions and coverage (cov, ft)
#   make fuzz-smoke                                                each target for 20 s
#
# cargo fuzz passes nightly-only flags (-Zsanitizer=address): RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. Built with debug assertions, so an integer overflow is a crash too.
# New inputs go to fuzz/target/fuzz-corpus/<target>; the committed seeds (fuzz/corpus/<target>,
# rebuilt by fuzz/seed.sh) are only read. Crashes land in fuzz/artifacts/<target>/.

.PHONY: fuzz fuzz-smoke fuzz-deps

FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= text_parser meta_parser binary_parser conn_stateful
FUZZ_ENV     := RUSTC_BOOTSTRAP=1
FUZZ_BUILD   := --debug-assertions
# The machine is shared: fuzz at a lower priority.
FUZZ_NICE    ?= nice -n 10

fuzz-deps:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked

fuzz: fuzz-deps
	cd fuzz && $(FUZZ_ENV) $(FUZZ_NICE) $(CARGO) fuzz build $(FUZZ_BUILD)
	@failed=; for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/target/fuzz-corpus/$$t; \
	  echo "== $$t: $(FUZZ_SECONDS) s (log: fuzz/target/fuzz-$$t.log)"; \
	  if (cd fuzz && $(FUZZ_ENV) $(FUZZ_NICE) $(CARGO) fuzz run $(FUZZ_BUILD) $$t \
	        target/fuzz-corpus/$$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -timeout=60 \
	        -print_final_stats=1) >fuzz/target/fuzz-$$t.log 2>&1; then \
	    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::number_of_executed_units' \
	      fuzz/target/fuzz-$$t.log; \
	  else \
	    tail -n 60 fuzz/target/fuzz-$$t.log; failed="$$failed $$t"; \
	  fi; \
	done; \
	[ -z "$$failed" ] || { echo "fuzz: crashes in$$failed (inputs in fuzz/artifacts/)" >&2; exit 1; }

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=20

# What `make test` (and so CI) runs of the fuzzers: each target briefly, so a parser change that
# crashes on the seed corpus or soon after fails the build.
test-fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=10

# ---------------------------------------------------------------------------------------------
# Soak (not in CI): SOAK_SECONDS (default 600) of mixed load with random disconnects, every
# key checked at the end, RSS and descriptors tracked (benches/soak.rs).
.PHONY: soak test-fuzz-smoke
soak:
	$(CARGO) bench --locked --bench soak
