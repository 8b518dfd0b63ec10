#!/bin/bash
# install_e2e: `make install` into a DESTDIR honours PREFIX, UNITDIR and DESTDIR everywhere:
# every program of tools/ and sigfoxd in PREFIX/bin, the SoapySDR module where SoapySDR
# looks for PREFIX (and it loads from there), man pages, bash completion, the example
# configuration, every scripts/*.service with ExecStart= in PREFIX/bin; systemd-analyze
# verify accepts the installed units and refuses one whose binary is missing; `make
# uninstall` removes everything but the configuration. Licence: MIT.
# Run from the repo root with BUILD=<abs build dir>.
set -u
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
: "${BUILD:?set BUILD}"
command -v systemd-analyze >/dev/null ||
    { echo "FAIL: systemd-analyze is missing (scripts/install-deps.sh installs systemd)"; exit 1; }

triplet=$(gcc -dumpmachine)
progs=$(for f in tools/*.c; do basename "$f" .c; done; echo sigfoxd)
units=$(for f in scripts/*.service; do basename "$f"; done)

# A root for systemd-analyze: the installed files plus this machine's systemd units
# (targets the service refers to) and kill (ExecReload=).
make_root() { # destdir
    mkdir -p "$1/usr/lib/systemd" "$1/bin"
    cp -a /lib/systemd/system "$1/usr/lib/systemd/"
    cp "$(command -v kill)" "$1/bin/kill"
}

install_into() { # destdir prefix unitdir
    make --no-print-directory BUILD="$BUILD" DESTDIR="$1" PREFIX="$2" UNITDIR="$3" install \
        >"$tmp/make.log" 2>&1 || { err "make install PREFIX=$2 failed: $(tail -5 "$tmp/make.log")"; return 1; }
}

check_install() { # destdir prefix unitdir
    local d=$1 prefix=$2 unitdir=$3 p u moddir
    for p in $progs; do
        [ -x "$d$prefix/bin/$p" ] || err "PREFIX=$prefix: $prefix/bin/$p missing"
    done
    [ -f "$d$prefix/share/man/man8/sigfoxd.8" ] || err "PREFIX=$prefix: sigfoxd(8) missing"
    for p in $progs; do
        [ "$p" = sigfoxd ] || [ -f "$d$prefix/share/man/man1/$p.1" ] || err "PREFIX=$prefix: $p(1) missing"
    done
    man -l "$d$prefix/share/man/man8/sigfoxd.8" 2>/dev/null | grep -q -- '--replay' ||
        err "PREFIX=$prefix: sigfoxd(8) does not document --replay"
    [ -f "$d$prefix/share/bash-completion/completions/sigfoxd" ] || err "PREFIX=$prefix: bash completion missing"
    for c in conf/*.conf; do
        n=$(basename "$c" .conf)
        [ -f "$d/etc/$n/$n.conf" ] || err "PREFIX=$prefix: /etc/$n/$n.conf missing"
    done
    moddir=$prefix/lib/$triplet/SoapySDR/modules$(pkg-config --modversion SoapySDR | cut -d. -f1,2)
    if [ -f "$d$moddir/libsigfoxIQFileSupport.so" ]; then
        SOAPY_SDR_PLUGIN_PATH="$d$moddir" SoapySDRUtil --info 2>&1 | grep -q 'factories.*iqfile' ||
            err "PREFIX=$prefix: the installed SoapySDR module does not load"
    else
        err "PREFIX=$prefix: SoapySDR module not in $moddir"
    fi
    for u in $units; do
        [ -f "$d$unitdir/$u" ] || { err "PREFIX=$prefix: $unitdir/$u missing"; continue; }
        local exe
        exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$d$unitdir/$u")
        case "$exe" in
            "$prefix"/bin/*) [ -x "$d$exe" ] || err "$u: ExecStart=$exe is not installed" ;;
            *) err "$u: ExecStart=$exe is not in $prefix/bin" ;;
        esac
        systemd-analyze verify --man=no --root="$d" "$unitdir/$u" >"$tmp/verify" 2>&1 ||
            err "PREFIX=$prefix: systemd-analyze verify $u: $(cat "$tmp/verify")"
    done
}

# The Debian layout and a local one.
d1=$tmp/root-usr
install_into "$d1" /usr /lib/systemd/system && make_root "$d1" && check_install "$d1" /usr /lib/systemd/system
d2=$tmp/root-opt
install_into "$d2" /opt/sigfox /etc/systemd/system && make_root "$d2" &&
    check_install "$d2" /opt/sigfox /etc/systemd/system

# The check has teeth: without its binary the unit is refused.
rm -f "$d2/opt/sigfox/bin/sigfoxd"
systemd-analyze verify --man=no --root="$d2" /etc/systemd/system/sigfoxd.service >/dev/null 2>&1 &&
    err "systemd-analyze verify accepted sigfoxd.service without /opt/sigfox/bin/sigfoxd"

# Uninstall leaves the configuration only.
make --no-print-directory BUILD="$BUILD" DESTDIR="$d1" PREFIX=/usr UNITDIR=/lib/systemd/system uninstall \
    >"$tmp/make.log" 2>&1 || err "make uninstall failed: $(tail -5 "$tmp/make.log")"
left=$(cd "$d1" && find . -type f -not -path './usr/lib/systemd/system/*' -not -path ./bin/kill | sort)
want=$(for c in conf/*.conf; do n=$(basename "$c" .conf); echo "./etc/$n/$n.conf"; done | sort)
[ "$left" = "$want" ] || err "after make uninstall left: $left (expected the configuration: $want)"
finish install_e2e
