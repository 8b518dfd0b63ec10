# sigfoxd: open Sigfox base station.  `make help` lists the targets.
#
# Layout: dsp/*.c and src/*.c (except src/sigfoxd.c) form libsigfox.a; every
# tools/<name>.c is one program; test/test_<module>.c is one cmocka binary;
# test/*.sh are end-to-end tests; soapy/*.cpp is the SoapySDR iqfile module.
# Everything is built below $(BUILD) (out of tree).

BUILD   ?= build
PREFIX  ?= /usr/local
SYSCONFDIR ?= /etc
CC      ?= cc
CXX     ?= c++

PKGS      = fftw3f SoapySDR libconfig libzmq libcrypto json-c
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
VERSION   := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

WARN     = -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -fPIC -Iinclude $(PKG_CFLAGS) -DSIGFOXD_VERSION='"$(VERSION)"' $(EXTRA_CFLAGS)
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 $(WARN) -fPIC -Iinclude $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS += $(EXTRA_LDFLAGS)
LDLIBS   = $(PKG_LIBS) -lliquid -lpthread -lm

LIB_SRCS  = $(sort $(wildcard dsp/*.c) $(filter-out src/sigfoxd.c,$(wildcard src/*.c)))
LIB_OBJS  = $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB       = $(BUILD)/libsigfox.a
TOOL_SRCS = $(sort $(wildcard tools/*.c))
PROGS     = $(TOOL_SRCS:tools/%.c=$(BUILD)/bin/%) $(if $(wildcard src/sigfoxd.c),$(BUILD)/bin/sigfoxd)
TEST_SRCS = $(sort $(wildcard test/test_*.c))
TESTS     = $(TEST_SRCS:test/%.c=$(BUILD)/test/%)
SOAPY_SRCS = $(sort $(wildcard soapy/*.cpp))
SOAPY_MOD = $(if $(SOAPY_SRCS),$(BUILD)/soapy/libsigfoxIQFileSupport.so)

.PHONY: all deps test check asan valgrind install clean help showconfig demo
.DEFAULT_GOAL := all
# Keep objects of pattern-built programs and tests (make would delete them as intermediates).
.SECONDARY:

all: showconfig $(LIB) $(PROGS) $(SOAPY_MOD)

help:
	@echo "make            build library, sigfoxd, tools and the SoapySDR iqfile module"
	@echo "make demo       install missing packages, build, decode a synthesized capture live"
	@echo "make test       install missing Debian packages, build, run every test"
	@echo "make asan       the same tests built with AddressSanitizer + UBSan (build-asan/)"
	@echo "make valgrind   the cmocka tests under valgrind memcheck (errors fail)"
	@echo "make install    install programs, SoapySDR module, example config, systemd unit"
	@echo "make clean      remove build directories"

showconfig:
	@echo "sigfoxd $(VERSION): CC=$(CC) BUILD=$(BUILD) CFLAGS=$(filter-out $(PKG_CFLAGS),$(CFLAGS))"

deps:
	@scripts/install-deps.sh

# The test target first installs what is missing so that `make test` works on a fresh
# machine; pkg-config is evaluated in the sub-make, after the packages are present.
test: deps
	@$(MAKE) --no-print-directory check

# The README's first command: a live decode of a synthesized multi-device capture.
demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(BUILD)

check: all $(TESTS)
	@scripts/run-tests.sh $(BUILD)

# SANITIZER_PRELOAD lets end-to-end tests load the instrumented SoapySDR module into
# uninstrumented host programs (SoapySDRUtil).
asan: deps
	@SANITIZER_PRELOAD=$$($(CC) -print-file-name=libasan.so) \
	  $(MAKE) --no-print-directory BUILD=build-asan \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" check

valgrind: deps
	@$(MAKE) --no-print-directory all $(TESTS)
	@VALGRIND=1 scripts/run-tests.sh $(BUILD)

# Objects that print the version are rebuilt when it changes (a stamp file holds it).
VERSION_STAMP  = $(BUILD)/version.txt
VERSIONED_OBJS = $(patsubst %.c,$(BUILD)/obj/%.o,$(shell grep -l SIGFOXD_VERSION src/*.c tools/*.c 2>/dev/null))
$(VERSIONED_OBJS): $(VERSION_STAMP)
$(VERSION_STAMP): FORCE
	@mkdir -p $(@D)
	@[ "$$(cat $@ 2>/dev/null)" = "$(VERSION)" ] || echo "$(VERSION)" >$@
.PHONY: FORCE

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/bin/sigfoxd: $(BUILD)/obj/src/sigfoxd.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/test/%: $(BUILD)/obj/test/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) $(shell pkg-config --libs cmocka) -o $@

$(BUILD)/obj/soapy/%.o: soapy/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(SOAPY_MOD): $(SOAPY_SRCS:soapy/%.cpp=$(BUILD)/obj/soapy/%.o) $(LIB)
	@mkdir -p $(@D)
	$(CXX) -shared $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

SOAPY_MODDIR = $(shell pkg-config --variable=libdir SoapySDR)/SoapySDR/modules$(shell pkg-config --modversion SoapySDR | cut -d. -f1,2)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR)/sigfoxd
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	[ -z "$(SOAPY_MOD)" ] || { install -d $(DESTDIR)$(SOAPY_MODDIR) && install -m 644 $(SOAPY_MOD) $(DESTDIR)$(SOAPY_MODDIR)/; }
	[ -e $(DESTDIR)$(SYSCONFDIR)/sigfoxd/sigfoxd.conf ] || [ ! -f conf/sigfoxd.conf ] || install -m 644 conf/sigfoxd.conf $(DESTDIR)$(SYSCONFDIR)/sigfoxd/sigfoxd.conf
	[ ! -f scripts/sigfoxd.service ] || { install -d $(DESTDIR)/etc/systemd/system && install -m 644 scripts/sigfoxd.service $(DESTDIR)/etc/systemd/system/; }
	[ ! -x scripts/post-install.sh ] || [ -n "$(DESTDIR)" ] || scripts/post-install.sh

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
