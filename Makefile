# sigfoxd: open Sigfox base station.  `make help` lists the targets.
#
# Layout: dsp/*.c, src/*.c and src/<part>/*.c (except src/sigfoxd.c) form libsigfox.a; every
# tools/<name>.c is one program; test/test_<module>.c is one cmocka binary;
# test/*.sh are end-to-end tests; soapy/*.cpp is the SoapySDR iqfile module.
# Everything is built below $(BUILD) (out of tree).

# Cross-compiling (docs/cross.md): make CROSS=aarch64-linux-gnu- SYSROOT=DIR, with DIR from
# scripts/make-sysroot.sh. CC, CXX and AR get the prefix, compiler and linker --sysroot=DIR,
# and the one PKG_CONFIG below reads the sysroot's .pc files and prefixes their paths.
ifdef CROSS
TRIPLET  ?= $(patsubst %-,%,$(CROSS))
BUILD    ?= build-$(TRIPLET)
CC        = $(CROSS)gcc
CXX       = $(CROSS)g++
AR        = $(CROSS)ar
endif
ifdef SYSROOT
override SYSROOT := $(abspath $(SYSROOT))
TRIPLET  ?= $(shell $(CC) -dumpmachine)
SYSROOT_FLAGS = --sysroot=$(SYSROOT)
PKG_CONFIG ?= env PKG_CONFIG_SYSROOT_DIR=$(SYSROOT) \
	PKG_CONFIG_LIBDIR=$(SYSROOT)/usr/lib/$(TRIPLET)/pkgconfig:$(SYSROOT)/usr/share/pkgconfig pkg-config
endif
PKG_CONFIG ?= pkg-config

BUILD   ?= build
CC      ?= cc
CXX     ?= c++

# Installation directories; DESTDIR is prepended to every one of them.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= /etc/systemd/system
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions

PKGS      = fftw3f SoapySDR libconfig libzmq libcrypto json-c \
            sqlite3 libpq libcurl libmosquitto libmicrohttpd libsystemd
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS   = $(shell $(PKG_CONFIG) --libs $(PKGS))
VERSION   := $(shell git describe --always --dirty 2>/dev/null || cat VERSION 2>/dev/null || echo unknown)

WARN     = -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -fPIC -Iinclude $(SYSROOT_FLAGS) $(PKG_CFLAGS) -DSIGFOXD_VERSION='"$(VERSION)"' \
           -DSIGFOXD_SYSCONFDIR='"$(SYSCONFDIR)"' $(EXTRA_CFLAGS)
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 $(WARN) -fPIC -Iinclude $(SYSROOT_FLAGS) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS += $(SYSROOT_FLAGS) $(EXTRA_LDFLAGS)
LDLIBS   = $(PKG_LIBS) -lliquid -lpthread -lm

LIB_SRCS  = $(sort $(wildcard dsp/*.c) $(filter-out src/sigfoxd.c,$(wildcard src/*.c src/*/*.c)))
LIB_OBJS  = $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB       = $(BUILD)/libsigfox.a
TOOL_SRCS = $(sort $(wildcard tools/*.c))
PROGS     = $(TOOL_SRCS:tools/%.c=$(BUILD)/bin/%) $(if $(wildcard src/sigfoxd.c),$(BUILD)/bin/sigfoxd)
TEST_SRCS = $(sort $(wildcard test/test_*.c))
TESTS     = $(TEST_SRCS:test/%.c=$(BUILD)/test/%)
SOAPY_SRCS = $(sort $(wildcard soapy/*.cpp))
SOAPY_MOD = $(if $(SOAPY_SRCS),$(BUILD)/soapy/libsigfoxIQFileSupport.so)

.PHONY: all deps test check asan valgrind fuzz fuzzers install uninstall man deb deb-test clean help showconfig demo
.DEFAULT_GOAL := all
# Keep objects of pattern-built programs and tests (make would delete them as intermediates).
.SECONDARY:

all: showconfig $(LIB) $(PROGS) $(SOAPY_MOD)

help:
	@echo "make            build library, sigfoxd, tools and the SoapySDR iqfile module"
	@echo "make demo       install missing packages, build, decode a synthesized capture live"
	@echo "make test       install missing Debian packages, build, run every test"
	@echo "make asan       the same tests built with AddressSanitizer + UBSan (build-asan/)"
	@echo "make valgrind   the cmocka tests and a short sigfoxd --replay under valgrind memcheck"
	@echo "make fuzz       libFuzzer harnesses (clang, ASan+UBSan), FUZZ_SECONDS=30 each"
	@echo "make install    install programs, SoapySDR module, example config, systemd units, man pages"
	@echo "                (PREFIX=/usr/local SYSCONFDIR=/etc UNITDIR=/etc/systemd/system DESTDIR=)"
	@echo "make uninstall  remove what make install put there (configuration stays)"
	@echo "make deb        build the Debian package sigfoxd_*.deb here (scripts/build-deb.sh)"
	@echo "make deb-test   build it, apt-get install it, check it, run it, purge it (root; CI)"
	@echo "make cross-test aarch64: sysroot, cross build, unit tests and a replay under qemu"
	@echo "                (CROSS_TESTS=all: every unit test, ~30 min; docs/cross.md)"
	@echo "                (CROSS=aarch64-linux-gnu- SYSROOT=dir: cross-compile any target)"
	@echo "make clean      remove build directories"

showconfig:
	@echo "sigfoxd $(VERSION): CC=$(CC) BUILD=$(BUILD) CFLAGS=$(filter-out $(PKG_CFLAGS),$(CFLAGS))"

# A cross build checks nothing on the host: the sysroot holds the target's libraries.
deps:
ifdef CROSS
	@echo "deps: cross build for $(TRIPLET): no host package check"
else
	@scripts/install-deps.sh
endif

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
	  LSAN_OPTIONS="suppressions=$(CURDIR)/scripts/lsan.supp:print_suppressions=0$${LSAN_OPTIONS:+:$$LSAN_OPTIONS}" \
	  $(MAKE) --no-print-directory BUILD=build-asan \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" check

# VALGRIND_TESTS=regex runs only those cmocka binaries, VALGRIND_SKIP=regex leaves those
# out (CI does, see .ci/run).
valgrind: deps
	@$(MAKE) --no-print-directory all $(TESTS)
	@VALGRIND=1 ONLY="$(VALGRIND_TESTS)" SKIP="$(VALGRIND_SKIP)" scripts/run-tests.sh $(BUILD)
	@scripts/valgrind-replay.sh $(BUILD)

# libFuzzer harnesses test/fuzz/fuzz_*.c (one per parser of outside input), built with
# clang, ASan and UBSan in build-fuzz/ and run FUZZ_SECONDS each from the seed corpus
# test/fuzz/corpus/NAME/ (scripts/run-fuzz.sh: a crash fails and names its input). The gcc
# builds enforce -Werror; clang here only warns (it flags unused static inline functions),
# except for an undeclared function, which would truncate a returned pointer to int.
FUZZ_SECONDS ?= 30
FUZZ_WARN = -Wall -Wextra -Werror=implicit-function-declaration -Werror=int-conversion
FUZZ_SRCS = $(sort $(wildcard test/fuzz/fuzz_*.c))
FUZZERS   = $(FUZZ_SRCS:test/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SAN  = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang WARN="$(FUZZ_WARN)" \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN) -include test/fuzz/clang-compat.h" \
	  EXTRA_LDFLAGS="$(FUZZ_SAN)" fuzzers
	@scripts/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

fuzzers: $(LIB) $(FUZZERS)

$(BUILD)/fuzz/%: $(BUILD)/obj/test/fuzz/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -fsanitize=fuzzer $^ $(LDLIBS) -o $@

# Objects that print the version are rebuilt when it changes (a stamp file holds it);
# the same for the compiled-in configuration path (SYSCONFDIR).
VERSION_STAMP  = $(BUILD)/version.txt
VERSIONED_OBJS = $(patsubst %.c,$(BUILD)/obj/%.o,$(shell grep -lE 'SIGFOXD_VERSION|CFG_DEFAULT_FILE' src/*.c src/*/*.c tools/*.c 2>/dev/null))
$(VERSIONED_OBJS): $(VERSION_STAMP)
$(VERSION_STAMP): FORCE
	@mkdir -p $(@D)
	@[ "$$(cat $@ 2>/dev/null)" = "$(VERSION) $(SYSCONFDIR)" ] || echo "$(VERSION) $(SYSCONFDIR)" >$@
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
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) $(shell $(PKG_CONFIG) --libs cmocka) -o $@

$(BUILD)/obj/soapy/%.o: soapy/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(SOAPY_MOD): $(SOAPY_SRCS:soapy/%.cpp=$(BUILD)/obj/soapy/%.o) $(LIB)
	@mkdir -p $(@D)
	$(CXX) -shared $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

# SoapySDR searches PREFIX/lib/<triplet>/SoapySDR/modulesX.Y for every install prefix it
# knows (/usr, /usr/local): the libdir of SoapySDR's .pc file with prefix = PREFIX.
# pkg-config puts a sysroot in front of the path; the sysroot is not where it installs to.
SOAPY_ABI    = $(shell $(PKG_CONFIG) --modversion SoapySDR | cut -d. -f1,2)
SOAPY_MODDIR ?= $(patsubst $(SYSROOT)/%,/%,$(shell $(PKG_CONFIG) --define-variable=prefix=$(PREFIX) \
	--variable=libdir SoapySDR))/SoapySDR/modules$(SOAPY_ABI)

# Man pages: sigfoxd(8) and one (1) per tool, made by help2man from each program's --help
# (the one source of the options; its first sentence is the NAME line), or with
# docs/man/NAME.h2m where that exists (NAME and further sections).
# They run the built programs, so a cross build leaves them out.
PROG_NAMES = $(notdir $(PROGS))
MANS       = $(if $(CROSS),,$(foreach p,$(PROG_NAMES),$(BUILD)/man/$(p).$(if $(filter sigfoxd,$(p)),8,1)))
# Every scripts/*.service is written for the default paths; install rewrites them.
UNITS      = $(wildcard scripts/*.service)
# Example configurations: conf/NAME.conf installs as SYSCONFDIR/NAME/NAME.conf.
CONFS      = $(wildcard conf/*.conf)

MAN_NAME   = --name="$$($< --help 2>&1 | grep -m1 -vE '^(Usage:|[[:space:]]|$$)' | sed 's/ *[.;:(].*//')"

man: $(MANS)

$(BUILD)/man/%.8 $(BUILD)/man/%.1: $(BUILD)/bin/%
	@mkdir -p $(@D)
	help2man --no-info --no-discard-stderr --version-string='$(VERSION)' \
	  --section=$(subst .,,$(suffix $@)) --source='sigfoxd $(VERSION)' \
	  $(if $(wildcard docs/man/$*.h2m),--include=docs/man/$*.h2m,--include=docs/man/tools.h2m $(MAN_NAME)) \
	  --output=$@ $<

install: all man
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 $(PROGS) $(DESTDIR)$(BINDIR)/
	[ -z "$(SOAPY_MOD)" ] || { install -d $(DESTDIR)$(SOAPY_MODDIR) && install -m 644 $(SOAPY_MOD) $(DESTDIR)$(SOAPY_MODDIR)/; }
	for c in $(CONFS); do n=$$(basename $$c .conf); install -d $(DESTDIR)$(SYSCONFDIR)/$$n; \
	  [ -e $(DESTDIR)$(SYSCONFDIR)/$$n/$$n.conf ] || install -m 644 $$c $(DESTDIR)$(SYSCONFDIR)/$$n/$$n.conf; done
	install -d $(DESTDIR)$(UNITDIR)
	for u in $(UNITS); do sed -e 's,/usr/local/bin/,$(BINDIR)/,g' -e 's,/etc/sigfox,$(SYSCONFDIR)/sigfox,g' \
	  $$u >$(DESTDIR)$(UNITDIR)/$$(basename $$u) && chmod 644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	[ -z "$(MANS)" ] || { install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 && \
	  for m in $(MANS); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/; done; }
	install -d $(DESTDIR)$(COMPLETIONDIR)
	install -m 644 scripts/sigfoxd.bash-completion $(DESTDIR)$(COMPLETIONDIR)/sigfoxd
	[ ! -x scripts/post-install.sh ] || [ -n "$(DESTDIR)" ] || scripts/post-install.sh

# Leaves SYSCONFDIR/*/ (configuration and keys the user wrote) and the service user.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(PROG_NAMES))
	rm -f $(DESTDIR)$(SOAPY_MODDIR)/$(notdir $(SOAPY_MOD))
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(UNITS)))
	rm -f $(foreach p,$(PROG_NAMES),$(DESTDIR)$(MANDIR)/man1/$(p).1 $(DESTDIR)$(MANDIR)/man8/$(p).8)
	rm -f $(DESTDIR)$(COMPLETIONDIR)/sigfoxd
	@echo "uninstall: kept $(DESTDIR)$(SYSCONFDIR)/$(notdir $(basename $(CONFS))) and the service users (sigfoxd, sigfox-ns)"

deb:
	@scripts/build-deb.sh .

# Installs onto this machine: run it alone, not next to the test suite.
deb-test: all
	@scripts/deb-test.sh $(BUILD)

# Native programs make the input and the reference of the aarch64 replay.
cross-test: all
	@scripts/cross-test.sh $(BUILD)

clean:
	rm -rf build build-asan build-fuzz build-aarch64-linux-gnu

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
