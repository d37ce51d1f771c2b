# cachifyd - plain GNU make build.
#
# Targets: all (default: daemon, client library, examples, cachify-lock),
#          run, test,
#          check-suites (unit, integration, script-tests, fuzz-replay),
#          valgrind, one suite (build/tests/test_NAME.run), install, fuzz,
#          bench-backends (cachifyd against etcd, docs/scaling.md),
#          bench, clean.
# Knobs:   SANITIZE=address,undefined (objects go to build/sanitize/),
#          PREFIX=/usr/local, DESTDIR=, LDCONFIG=ldconfig, CC=cc,
#          TEST_JOBS=6 (suites make test runs at once; 3 x cores),
#          V=1 is not needed (commands echo).
# Dependencies come from pkg-config: libevent (libevent_openssl too, for
# the client), jansson, OpenSSL, check (tests only);
# the etcd:// tests and bench-backends run Debian's etcd-server.

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
PKG_CONFIG ?= pkg-config

ifeq ($(SANITIZE),)
BUILD    ?= build
SAN_FLAGS :=
else
BUILD    ?= build/sanitize
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

EVENT_CFLAGS   := $(shell $(PKG_CONFIG) --cflags libevent 2>/dev/null)
EVENT_LIBS     := $(shell $(PKG_CONFIG) --libs libevent 2>/dev/null)
JANSSON_CFLAGS := $(shell $(PKG_CONFIG) --cflags jansson 2>/dev/null)
JANSSON_LIBS   := $(shell $(PKG_CONFIG) --libs jansson 2>/dev/null)
CHECK_CFLAGS   := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS     := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)
# TLS (tls_port in the daemon, cachifys:// in the client): OpenSSL, and
# for the client libevent's bufferevent over it.  The daemon drives
# OpenSSL from its own events (daemon/conn_tls.c) and links OpenSSL alone.
TLS_CFLAGS     := $(shell $(PKG_CONFIG) --cflags openssl libevent_openssl 2>/dev/null)
TLS_LIBS       := $(shell $(PKG_CONFIG) --libs libevent_openssl openssl 2>/dev/null)
OPENSSL_LIBS   := $(shell $(PKG_CONFIG) --libs openssl 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wvla
CFLAGS   ?= -O2 -g
# -fPIC everywhere: the engine objects also go into libcachify-client.so.
ALL_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) \
              $(CFLAGS) $(SAN_FLAGS) -fPIC -pthread -I. $(EVENT_CFLAGS) \
              $(JANSSON_CFLAGS) $(TLS_CFLAGS) -MMD -MP
ALL_LDFLAGS := $(LDFLAGS) $(SAN_FLAGS) -pthread
EVENT_PTHREADS_LIBS := $(shell $(PKG_CONFIG) --libs libevent_pthreads 2>/dev/null)

# The folders are the layering (docs/architecture.md): proto/ and engine/
# are I/O-free and shared by the daemon and the client library; alloc.c is
# the allocator seam all of them use.
PROTO_SRC  := $(wildcard proto/*.c)
ENGINE_SRC := $(wildcard engine/*.c) alloc.c
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
CORE_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(PROTO_SRC) $(ENGINE_SRC) $(DAEMON_SRC))
CORE_LIB   := $(BUILD)/libcachifyd_core.a

SUPPORT_SRC := $(wildcard tests/support/*.c)
SUPPORT_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(SUPPORT_SRC))
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
ENGINE_TEST_SRC := $(wildcard engine/tests/test_*.c)
UNIT_BIN    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC)) \
               $(patsubst engine/tests/%.c,$(BUILD)/tests/%,$(ENGINE_TEST_SRC))
ITEST_SRC   := $(wildcard tests/integration/test_*.c)
ITEST_BIN   := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRC))

DAEMON := $(BUILD)/cachifyd

# libcachify-client: the client code, the shared codec, and the lock
# engine (for the embedded "mem:" backend).
CLIENT_VERSION := 0.3.0
CLIENT_SOVERSION := 2
CLIENT_SRC := $(wildcard client/*.c)
# The public headers, installed to $(PREFIX)/include; users include
# cachify.h alone, which includes the others.
CLIENT_PUBLIC_HEADERS := client/cachify.h client/cachify_async.h \
    client/cachify_decorate.h client/cachify_async_decorate.h
CLIENT_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(CLIENT_SRC) $(PROTO_SRC) $(ENGINE_SRC))
CLIENT_A   := $(BUILD)/libcachify-client.a
CLIENT_SO  := $(BUILD)/libcachify-client.so.$(CLIENT_VERSION)
CLIENT_LIBS := $(TLS_LIBS) $(EVENT_LIBS) $(EVENT_PTHREADS_LIBS) $(JANSSON_LIBS) -pthread
EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLE_BIN := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRC))
PC_FILE    := $(BUILD)/cachify-client.pc

# cachify-lock: a program on libcachify-client alone (tools/, see
# docs/architecture.md), built from every tools/*.c.
TOOL_SRC   := $(wildcard tools/*.c)
TOOL_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(TOOL_SRC))
LOCK_TOOL  := $(BUILD)/cachify-lock

# Check forks each test; give its per-test timeout room on a loaded machine.
TEST_ENV := CK_DEFAULT_TIMEOUT=120 CACHIFYD_BIN=$(abspath $(DAEMON))

.PHONY: all run test check-suites unit integration script-tests valgrind deps install \
        clean fuzz fuzz-replay bench bench-backends client examples tools

all: $(DAEMON) client examples tools

tools: $(LOCK_TOOL)

client: $(CLIENT_A) $(CLIENT_SO) $(PC_FILE)

examples: $(EXAMPLE_BIN)

# Keep the objects make would take for intermediate (those of the examples,
# suites and replay programs): their .d files name them, so deleting them
# would rebuild those programs in every later make, and make test's passes
# run side by side on one build directory.
.SECONDARY:

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(DAEMON): $(BUILD)/daemon/main.o $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(OPENSSL_LIBS) $(EVENT_LIBS) $(JANSSON_LIBS) -lm

$(CLIENT_A): $(CLIENT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(CLIENT_SO): $(CLIENT_OBJ)
	$(CC) $(ALL_LDFLAGS) -shared -Wl,-soname,libcachify-client.so.$(CLIENT_SOVERSION) \
	    -o $@ $^ $(CLIENT_LIBS)
	ln -sf libcachify-client.so.$(CLIENT_VERSION) $(BUILD)/libcachify-client.so.$(CLIENT_SOVERSION)
	ln -sf libcachify-client.so.$(CLIENT_SOVERSION) $(BUILD)/libcachify-client.so

$(PC_FILE): cachify-client.pc.in Makefile
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(CLIENT_VERSION)|g' $< > $@

# Examples link the static library, so they run from build/ without
# LD_LIBRARY_PATH.
$(BUILD)/examples/%: $(BUILD)/examples/%.o $(CLIENT_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CLIENT_LIBS)

# Like the examples, cachify-lock links the static library: it runs from
# build/ and, installed, needs no libcachify-client.so beside it.
$(LOCK_TOOL): $(TOOL_OBJ) $(CLIENT_A)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CLIENT_LIBS)

# Unit suites link the client library too (client tests); the core library
# comes first so the daemon's objects are taken from it.
$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(SUPPORT_OBJ) $(CORE_LIB) $(CLIENT_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(CLIENT_LIBS) $(JANSSON_LIBS) -lm

# The engine's own suites live beside it and build the same way.
$(BUILD)/tests/test_%: $(BUILD)/engine/tests/test_%.o $(SUPPORT_OBJ) $(CORE_LIB) $(CLIENT_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(CLIENT_LIBS) $(JANSSON_LIBS) -lm

# Integration suites keep their names too: tests/integration/test_server.c
# becomes build/tests/test_server; unit and integration names must differ.
$(BUILD)/tests/test_%: $(BUILD)/tests/integration/test_%.o $(SUPPORT_OBJ) $(CORE_LIB) $(CLIENT_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(CLIENT_LIBS) $(JANSSON_LIBS) -lm

# test_client_async_renew makes renewals that cannot be sent (out of
# memory) by failing calloc on demand: the calls from the objects linked
# into it, the client library's among them, go through its __wrap_calloc.
$(BUILD)/tests/test_client_async_renew: ALL_LDFLAGS += -Wl,--wrap=calloc

deps:
	@sh scripts/install-deps.sh

run: deps
	$(MAKE) all
	$(DAEMON) -c cachifyd.conf

# ---- Running the suites ----
#
# Every suite run is a phony target of its own, the suite's binary (or
# script) plus .run, or .vgrun for an integration suite with the daemon
# under valgrind, so `make -j2 check-suites` runs two at a time.  Each runs
# through scripts/run-suite.sh: its output goes to a log beside the binary
# and is printed whole when it ends, with its wall time; a failure fails
# make.  Integration suites start their own daemons on free loopback ports
# and temporary directories, so they can run side by side, but they have
# real-time bounds: run no more of them at once than there are cores.
#
# ALONE_SUITES measure the daemon's CPU time (busy polling) and fail now
# and then with another suite beside them (test_busy_poll, 1 run in 6
# here, never alone), so they run alone: every run holds SUITE_LOCK,
# shared, and theirs exclusively, across the passes.  They are kept short
# (test_busy_poll is that one test, about 7 s), since nothing else runs
# meanwhile.  A run waiting for the exclusive lock holds its job slot, and
# flock(2) lets new shared holders in ahead of it, so it waits until no
# other suite runs at all: every kind below starts them last, and make test
# leaves them out of its three passes (DEFER_ALONE=1) and runs them after.
ALONE_SUITES := test_busy_poll
SUITE_LOCK   := build/suites.lock
# Each run also appends "SECONDS LABEL" to SUITE_TIMES, for the summary
# make test prints at its end (the slowest runs and the sum).
SUITE_TIMES  := build/suite-times
RUN_SUITE = SUITE_TIMES=$(SUITE_TIMES) sh scripts/run-suite.sh \
    $(if $(filter $(ALONE_SUITES),$(basename $(notdir $@))),--alone,--shared) $(SUITE_LOCK)
SCRIPT_TESTS := $(wildcard tests/scripts/*.sh)

# Suites that start no daemon (only an etcd cluster) have nothing for the
# valgrind pass, which runs the daemon under valgrind: it skips them.
ETCD_ONLY_SUITES := test_client_etcd test_etcd_failover
UNIT_RUNS   := $(UNIT_BIN:=.run)
ITEST_RUNS  := $(ITEST_BIN:=.run)
VG_RUNS     := $(filter-out $(foreach t,$(ETCD_ONLY_SUITES),%/$(t).vgrun),$(ITEST_BIN:=.vgrun))
SCRIPT_RUNS := $(patsubst tests/scripts/%.sh,$(BUILD)/tests/scripts/%.run,$(SCRIPT_TESTS))

.PHONY: $(UNIT_RUNS) $(ITEST_RUNS) $(VG_RUNS) $(SCRIPT_RUNS)

$(UNIT_RUNS): %.run: %
	@$(RUN_SUITE) $* $*.log $(TEST_ENV) $*

$(ITEST_RUNS): %.run: % $(DAEMON) $(EXAMPLE_BIN)
	@$(RUN_SUITE) $* $*.log $(TEST_ENV) $*

$(VG_RUNS): %.vgrun: % $(DAEMON) $(EXAMPLE_BIN)
	@$(RUN_SUITE) "valgrind: $*" $*.valgrind.log $(TEST_ENV) CACHIFYD_VALGRIND=1 $*

# Shell-driven tests (install into a DESTDIR, tools): each script gets the
# build directory and the daemon and must exit non-zero on failure.  The
# label names the build, as the script is the same in both passes.
$(SCRIPT_RUNS): $(BUILD)/tests/scripts/%.run: tests/scripts/%.sh $(DAEMON) client examples tools
	@$(RUN_SUITE) "$< ($(BUILD))" $(BUILD)/tests/scripts/$*.log $(TEST_ENV) BUILD=$(BUILD) \
	    MAKE="$(MAKE)" sh $<

# cachify-lock's script runs it under valgrind too, in the valgrind pass
# (CACHIFY_LOCK_VALGRIND=1: a valgrind error or leak fails the script).
# It is the pass's longest suite (115-125 s on 2 cores with its stalled-daemon
# case: make build/tests/scripts/cachify_lock.vgrun), so it starts first.
SCRIPT_VG_RUNS := $(BUILD)/tests/scripts/cachify_lock.vgrun
.PHONY: $(SCRIPT_VG_RUNS)
$(SCRIPT_VG_RUNS): $(BUILD)/tests/scripts/%.vgrun: tests/scripts/%.sh $(DAEMON) tools
	@$(RUN_SUITE) "valgrind: $<" $(BUILD)/tests/scripts/$*.valgrind.log $(TEST_ENV) \
	    BUILD=$(BUILD) CACHIFY_LOCK_VALGRIND=1 sh $<

# The slowest suites come first, so that the long ones start early
# instead of ending last alone.  Slowest first, in seconds plain /
# sanitizers / valgrind, as make build/tests/NAME.run, .vgrun and
# SANITIZE=address,undefined build/sanitize/tests/NAME.run measured them
# two at a time on the shared 2-core machine (load average 2-3,
# 2026-12-07 21:00-21:13 UTC; the figures in brackets are .ci/run's of
# 20:07-20:17): test_examples 67/74/16, test_tls [16/20]/64,
# test_client_tls [18/22]/57, test_crash 12/12/48, test_restart 4/4/45,
# test_client_etcd [41/42]/-, test_client_async_renew 38/38/30,
# test_bounds [-/-]/39, test_waiting [-/-]/34, test_server 0/1/28,
# test_server_load 4/5/27.  The script cachify_lock.sh ([76/86/182]) goes before
# every other suite of its pass (script-tests first in check-suites, its
# own .run first there): last in the queue it kept one job busy alone for
# the last minute and a half.
SLOW_SUITES := test_examples test_tls test_client_tls test_crash \
               test_restart test_client_etcd test_client_async_renew \
               test_bounds test_waiting test_server test_server_load
RUNS_OF = $(foreach t,$(2),$(filter %/$(t).run %/$(t).vgrun,$(1)))
# The runs of a kind in the order they start: SLOW_SUITES, the others,
# then ALONE_SUITES (left out under DEFER_ALONE=1).
IN_ORDER = $(call RUNS_OF,$(1),$(SLOW_SUITES)) \
           $(filter-out $(foreach t,$(SLOW_SUITES) $(ALONE_SUITES),%/$(t).run %/$(t).vgrun),$(1)) \
           $(if $(DEFER_ALONE),,$(call RUNS_OF,$(1),$(ALONE_SUITES)))

unit: $(UNIT_RUNS)
integration: $(call IN_ORDER,$(ITEST_RUNS))
SLOW_SCRIPT_RUN := $(BUILD)/tests/scripts/cachify_lock.run
script-tests: $(filter $(SLOW_SCRIPT_RUN),$(SCRIPT_RUNS)) \
              $(filter-out $(SLOW_SCRIPT_RUN),$(SCRIPT_RUNS))
valgrind: $(SCRIPT_VG_RUNS) $(call IN_ORDER,$(VG_RUNS))
check-suites: script-tests integration unit fuzz-replay
# The ALONE_SUITES of this build (SANITIZE=...), with the daemon under
# valgrind too when not sanitized.
alone-suites: $(call RUNS_OF,$(ITEST_RUNS) $(if $(SANITIZE),,$(VG_RUNS)),$(ALONE_SUITES))

# Every suite normally, every suite again under ASan+UBSan, and the
# integration suites again with the daemon under valgrind: the three passes,
# TEST_JOBS jobs at a time in all (one jobserver, the builds' included),
# each pass in the order above, then the ALONE_SUITES of the three, one at
# a time, and a summary of the runs' times.  Each pass waits for the build
# it runs, not for both: the plain passes start while the slower
# ASan+UBSan build goes on beside them, on the CPU their suites leave idle
# (make -j2 SANITIZE=address,undefined test-bins took about 3.5 minutes
# here with two suites beside it, and the passes used to wait for it).
# TEST_JOBS is three times the cores, at most 6: the suites mostly wait (on
# sockets, TTLs, the example's sleeps; test_examples: 4 s of CPU in 76 s),
# so at 2 jobs make test kept half a core busy on average (5m11s user +
# 1m28s system in 13m15s wall, .ci/run on a fresh clone, 2026-12-07
# 16:48); the valgrind runs do not (test_tls: 58 s of CPU in 67 s).  At
# 4 jobs, after rm -rf build: 10m06s wall, 10m02s user + 1m54s system,
# 150 runs, 2022 suite-seconds (2026-12-07 21:17, load average 1.7-5.6
# with other builds on the machine); the ASan+UBSan build, one job beside
# three suites, ended 6m16s in, and its pass at 9m38s.
# At 6 jobs (three per core, at most 6), after rm -rf build: 6m21s wall,
# 8m25s user + 1m45s system, 150 runs, 2138 suite-seconds (2026-12-07
# 21:52, load average 1.5-5 with another engineer's suites beside it):
# the CPU was still not full, and two checks that failed at 6 jobs were
# timing bounds too tight for any loaded machine (fixed in the tests).
# TEST_JOBS=1 runs one suite at a time.  Each pass sets SANITIZE itself, so
# a SANITIZE= given to make test changes nothing.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ "$$n" -gt 2 ] && n=2; echo $$((n * 3)))
SANITIZE_TEST := address,undefined

test: deps
	@mkdir -p $(dir $(SUITE_TIMES)) && : >$(SUITE_TIMES)
	+$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target \
	    DEFER_ALONE=1 test-passes
	+$(MAKE) --no-print-directory -j1 test-alone
	@echo "== the slowest suite runs (seconds; all in $(SUITE_TIMES)):"
	@sort -rn $(SUITE_TIMES) | head -n 12
	@awk '{ s += $$1 } END { printf "== %d runs, %d suite-seconds\n", NR, s }' \
	    $(SUITE_TIMES)

.PHONY: test-build test-build-plain test-build-sanitize test-passes \
        test-pass-plain test-pass-sanitize test-pass-valgrind test-bins \
        test-alone alone-suites
test-build: test-build-plain test-build-sanitize
test-build-plain:
	+$(MAKE) SANITIZE= test-bins
test-build-sanitize:
	+$(MAKE) SANITIZE=$(SANITIZE_TEST) test-bins

test-passes: test-pass-valgrind test-pass-plain test-pass-sanitize
test-pass-valgrind test-pass-plain: test-build-plain
test-pass-sanitize: test-build-sanitize
# The plain build first, alone: two passes wait for it, and the CPU it
# takes is all there is.
test-build-sanitize: test-build-plain
test-pass-valgrind:
	+$(MAKE) SANITIZE= valgrind
test-pass-plain:
	+$(MAKE) SANITIZE= check-suites
test-pass-sanitize:
	+$(MAKE) SANITIZE=$(SANITIZE_TEST) check-suites
# ALONE_SUITES, one at a time, after the passes (see SUITE_LOCK).
test-alone:
	+$(MAKE) SANITIZE= alone-suites
	+$(MAKE) SANITIZE=$(SANITIZE_TEST) alone-suites

# The dynamic linker finds libcachify-client.so.2 in /usr/local/lib or
# /usr/lib through its cache, so a real install there (no DESTDIR) runs
# ldconfig when root.  A DESTDIR is a staging copy, and a private PREFIX is
# not searched at all: docs/client.md ("Building against it") shows how to
# link against one.
LDCONFIG ?= ldconfig
LDCONFIG_PREFIXES := /usr/local /usr

install: $(DAEMON) client tools
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/etc \
	    $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(DAEMON) $(DESTDIR)$(PREFIX)/bin/cachifyd
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(LOCK_TOOL) $(DESTDIR)$(PREFIX)/bin/cachify-lock
	install -m 0644 docs/cachify-lock.1 $(DESTDIR)$(PREFIX)/share/man/man1/cachify-lock.1
	install -m 0644 cachifyd.conf $(DESTDIR)$(PREFIX)/etc/cachifyd.conf
	# The man page, and the systemd unit with its /usr/local paths made
	# PREFIX's (contrib/cachifyd.service says how to enable it).
	install -d $(DESTDIR)$(PREFIX)/share/man/man8 \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0644 docs/cachifyd.8 $(DESTDIR)$(PREFIX)/share/man/man8/cachifyd.8
	sed -e 's|/usr/local/|$(PREFIX)/|g' contrib/cachifyd.service \
	    > $(DESTDIR)$(PREFIX)/lib/systemd/system/cachifyd.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/cachifyd.service
	# Every public header: cachify.h includes the other three, side by side.
	install -m 0644 $(CLIENT_PUBLIC_HEADERS) $(DESTDIR)$(PREFIX)/include/
	install -m 0644 $(CLIENT_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(CLIENT_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libcachify-client.so.$(CLIENT_VERSION) \
	    $(DESTDIR)$(PREFIX)/lib/libcachify-client.so.$(CLIENT_SOVERSION)
	ln -sf libcachify-client.so.$(CLIENT_SOVERSION) \
	    $(DESTDIR)$(PREFIX)/lib/libcachify-client.so
	# Written here, not copied from $(PC_FILE): that one keeps the PREFIX
	# of the build that made it, and install may be given another.
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(CLIENT_VERSION)|g' \
	    cachify-client.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/cachify-client.pc
ifeq ($(DESTDIR)$(filter-out $(LDCONFIG_PREFIXES),$(PREFIX)),)
	@if [ "$$(id -u)" -eq 0 ]; then echo $(LDCONFIG); $(LDCONFIG); else \
	  echo "install: not root, so the linker cache is stale: run $(LDCONFIG) as root"; fi
endif

# Fuzzing with libFuzzer (clang).  Each tests/fuzz/fuzz_NAME.c becomes
# build/fuzz/fuzz_NAME, built from the sources directly with clang, and runs
# FUZZ_SECONDS on its corpus tests/fuzz/corpus/NAME/ (new inputs go to
# build/fuzz/corpus/NAME, so the committed seed corpus only changes on
# purpose), with tests/fuzz/config.dict for config and protocol.dict for the
# others; standard input is closed so no input can block on it.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -I. $(EVENT_CFLAGS) $(JANSSON_CFLAGS) $(TLS_CFLAGS)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_LIBSRC  := $(PROTO_SRC) $(ENGINE_SRC) $(DAEMON_SRC)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIBSRC) $(wildcard proto/*.h engine/*.h daemon/*.h alloc.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_LIBSRC) $(OPENSSL_LIBS) $(EVENT_LIBS) $(JANSSON_LIBS) -lm

# Replay of the fuzz corpora without libFuzzer: each target is also built
# with $(CC) (and SANITIZE= when given) as $(BUILD)/fuzz/replay_NAME, a plain
# main() in tests/fuzz/replay.c, and run over tests/fuzz/corpus/NAME/ by
# check-suites, so every seed and every crash ever found is re-run.
REPLAY_BIN   := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/fuzz/replay_%,$(FUZZ_SRC))

$(BUILD)/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(OPENSSL_LIBS) $(EVENT_LIBS) $(JANSSON_LIBS) -lm

REPLAY_RUNS  := $(REPLAY_BIN:=.run)
.PHONY: $(REPLAY_RUNS)
$(REPLAY_RUNS): $(BUILD)/fuzz/replay_%.run: $(BUILD)/fuzz/replay_%
	@$(RUN_SUITE) "$< tests/fuzz/corpus/$*" $<.log $< tests/fuzz/corpus/$*

fuzz-replay: $(REPLAY_RUNS)

# Everything the suites of one pass run (make test builds it first).
test-bins: all $(UNIT_BIN) $(ITEST_BIN) $(REPLAY_BIN)

fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$${f#build/fuzz/fuzz_}; \
	  mkdir -p build/fuzz/corpus/$$n tests/fuzz/corpus/$$n; \
	  case $$n in config) d=config;; *) d=protocol;; esac; \
	  echo "== $$f for $(FUZZ_SECONDS) s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	      -dict=tests/fuzz/$$d.dict \
	      build/fuzz/corpus/$$n tests/fuzz/corpus/$$n </dev/null; done

# Side-by-side benchmark against redis-server (see bench/README or
# docs/performance.md).  Not part of `make test`.
bench: deps $(DAEMON) $(BUILD)/bench/backend_bench
	sh bench/run.sh
	sh bench/backends.sh

# The client library on cachifyd against etcd (docs/scaling.md); also the
# last part of `make bench`.
bench-backends: deps $(DAEMON) $(BUILD)/bench/backend_bench
	sh bench/backends.sh

$(BUILD)/bench/backend_bench: $(BUILD)/bench/backend_bench.o $(CLIENT_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CLIENT_LIBS)

clean:
	rm -rf build

# Dependency files of sources that still exist: one left by a moved or
# deleted source would name it as a prerequisite and stop the build.
DEP_FILES := $(shell find $(BUILD) -name '*.d' 2>/dev/null)
-include $(foreach d,$(DEP_FILES),$(if $(wildcard $(patsubst $(BUILD)/%.d,%.c,$(d))),$(d)))
