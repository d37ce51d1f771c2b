# cachifyd - plain GNU make build.
#
# Targets: all (default: daemon), run, test, check-suites, install, clean.
# Knobs:   SANITIZE=address,undefined (objects go to build/sanitize/),
#          PREFIX=/usr/local, DESTDIR=, CC=cc, V=1 is not needed (commands echo).
# Dependencies come from pkg-config: libevent, jansson, check (tests only).

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

WARN     := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wvla
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) \
              $(CFLAGS) $(SAN_FLAGS) -I. $(EVENT_CFLAGS) $(JANSSON_CFLAGS) -MMD -MP
ALL_LDFLAGS := $(LDFLAGS) $(SAN_FLAGS)

PROTO_SRC  := $(wildcard proto/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
CORE_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(PROTO_SRC) $(DAEMON_SRC))
CORE_LIB   := $(BUILD)/libcachifyd_core.a

SUPPORT_SRC := $(wildcard tests/support/*.c)
SUPPORT_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(SUPPORT_SRC))
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BIN    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
ITEST_SRC   := $(wildcard tests/integration/test_*.c)
ITEST_BIN   := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRC))

DAEMON := $(BUILD)/cachifyd

# Check forks each test; give its per-test timeout room on a loaded machine.
TEST_ENV := CK_DEFAULT_TIMEOUT=120 CACHIFYD_BIN=$(abspath $(DAEMON))

.PHONY: all run test check-suites unit integration valgrind deps install clean

all: $(DAEMON)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(DAEMON): $(BUILD)/daemon/main.o $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(EVENT_LIBS) $(JANSSON_LIBS) -lm

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(SUPPORT_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(EVENT_LIBS) $(JANSSON_LIBS) -lm

# Integration suites keep their names too: tests/integration/test_server.c
# becomes build/tests/test_server; unit and integration names must differ.
$(BUILD)/tests/test_%: $(BUILD)/tests/integration/test_%.o $(SUPPORT_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(EVENT_LIBS) $(JANSSON_LIBS) -lm

deps:
	@sh scripts/install-deps.sh

run: deps
	$(MAKE) all
	$(DAEMON) -c cachifyd.conf

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $(TEST_ENV) $$t; done

integration: $(DAEMON) $(ITEST_BIN)
	@set -e; for t in $(ITEST_BIN); do echo "== $$t"; $(TEST_ENV) $$t; done

check-suites: unit integration

# Every suite normally, then every suite again under ASan+UBSan, then the
# integration suite with the daemon under valgrind.
test: deps
	$(MAKE) check-suites
	$(MAKE) SANITIZE=address,undefined check-suites
	$(MAKE) valgrind

valgrind: $(DAEMON) $(ITEST_BIN)
	@set -e; for t in $(ITEST_BIN); do echo "== valgrind: $$t"; \
	  $(TEST_ENV) CACHIFYD_VALGRIND=1 $$t; done

install: $(DAEMON)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/etc
	install -m 0755 $(DAEMON) $(DESTDIR)$(PREFIX)/bin/cachifyd
	install -m 0644 cachifyd.conf $(DESTDIR)$(PREFIX)/etc/cachifyd.conf

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
