#!/bin/bash
# deb-test: the Debian package on this machine as a user would take it: builds
# sigfoxd_*.deb (scripts/build-deb.sh), `apt-get install ./sigfoxd_*.deb`, then checks
# `sigfoxd --version`, the service user (in plugdev), the installed unit with
# systemd-analyze verify, man pages, the SoapySDR module, and runs the unit's ExecStart as
# the unit's User= with the example configuration switched to a recording (driver=iqfile),
# which must decode the recording's messages; the same for the network core: sigfox-ns.service's
# ExecStart as its User= with a key from `sigfox-ns keygen` checks the example configuration,
# starts (database and REST API up) and stops cleanly on SIGTERM; finally `apt-get purge`
# removes it all.
# Installs onto this machine (root needed): CI runs it after the test suites
# (.ci/run: make deb-test), never in parallel with them.
# Usage: scripts/deb-test.sh [BUILD]   (BUILD: a build dir with bin/sigfox-synth; default build)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd) || exit 2
[ "$(id -u)" -eq 0 ] || { echo "deb-test: needs root (installs the package)" >&2; exit 2; }
if dpkg-query -W -f='${Status}' sigfoxd 2>/dev/null | grep -q "install ok installed"; then
    echo "deb-test: a sigfoxd package is installed already; not touching it" >&2
    exit 2
fi
tmp=$(mktemp -d /tmp/deb-test.XXXXXX)
chmod 755 "$tmp"
fail=0
err() { echo "FAIL: $*"; fail=1; }
cleanup() {
    rm -f /etc/sigfoxd/keys /etc/sigfox-ns/core.key /etc/sigfox-ns/core.pub
    apt-get purge -y -qq sigfoxd >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive

start=$EPOCHREALTIME
"$top/scripts/install-deps.sh" --package || exit 1
deb=$("$top/scripts/build-deb.sh" "$tmp" | grep '/sigfoxd_[^/]*\.deb$') || { echo "FAIL: build-deb"; exit 1; }
echo "deb-test: built $(basename "$deb") in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"

apt-get install -y -qq "$deb" >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log"; echo "FAIL: apt-get install $deb"; exit 1; }
ver=$(sigfoxd --version 2>&1 | head -n 1)
[[ $ver == "sigfoxd "* ]] || err "sigfoxd --version: $ver"
[ "$(command -v sigfoxd)" = /usr/bin/sigfoxd ] || err "sigfoxd is not /usr/bin/sigfoxd"
id -nG sigfoxd 2>/dev/null | tr ' ' '\n' | grep -qx plugdev || err "no service user sigfoxd in group plugdev"
[ -d /var/lib/sigfoxd ] && [ "$(stat -c %U /var/lib/sigfoxd)" = sigfoxd ] || err "/var/lib/sigfoxd not owned by sigfoxd"
[ "$(stat -c %G /etc/sigfoxd/sigfoxd.conf)" = sigfoxd ] || err "/etc/sigfoxd/sigfoxd.conf not group sigfoxd"
for t in "$top"/tools/*.c; do
    p=$(basename "$t" .c)
    [ -x "/usr/bin/$p" ] || err "/usr/bin/$p missing"
    man -w "$p" >/dev/null 2>&1 || err "no man page for $p"
done
man -w 8 sigfoxd >/dev/null 2>&1 || err "no man page sigfoxd(8)"
SoapySDRUtil --info 2>&1 | grep -q 'factories.*iqfile' || err "SoapySDR does not load the installed iqfile module"
for u in "$top"/scripts/*.service; do
    systemd-analyze verify "/lib/systemd/system/$(basename "$u")" >"$tmp/verify" 2>&1 ||
        err "systemd-analyze verify $(basename "$u"): $(cat "$tmp/verify")"
done

# The service's own command line, as its user, on a recording instead of a radio.
"$build/bin/sigfox-synth" -o "$tmp/rec_868.13M_250k.cu8" --rc 1 --rate 250k --duration 8 \
    --devices 3 --seed 5 >/dev/null 2>&1 || err "sigfox-synth failed"
chmod 644 "$tmp"/rec_*
cp "$tmp/rec_868.13M_250k.cu8.keys" /etc/sigfoxd/keys && chgrp sigfoxd /etc/sigfoxd/keys && chmod 640 /etc/sigfoxd/keys
sed -i -e "s|^\( *device = \)\"\";|\1\"driver=iqfile,path=$tmp/rec_868.13M_250k.cu8,throttle=0\";|" \
    -e 's|^\( *keys_file = \)"";|\1"/etc/sigfoxd/keys";|' \
    -e 's|^\( *lossless = \)false;|\1true;|' /etc/sigfoxd/sigfoxd.conf
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/sigfoxd.service)
user=$(sed -n 's/^User=//p' /lib/systemd/system/sigfoxd.service)
install -d -o "$user" -g "$user" -m 750 /run/sigfoxd # RuntimeDirectory=
# shellcheck disable=SC2086 # ExecStart is a command line
timeout 120 runuser -u "$user" -- $exec_start --center-freq 868.13M --rate 250k >"$tmp/run.log" 2>&1
rc=$?
rm -rf /run/sigfoxd
[ $rc -eq 0 ] || err "ExecStart as $user: exit $rc: $(tail -5 "$tmp/run.log")"
got=$(grep -c 'Message received, .*auth: ok' "$tmp/run.log")
want=$(jq -r 'select(.type == "burst") | .message' "$tmp/rec_868.13M_250k.cu8.truth.jsonl" | sort -u | wc -l)
[ "$got" = "$want" ] && [ "$want" -gt 0 ] ||
    err "ExecStart as $user: $got messages with auth ok, the recording has $want: $(tail -5 "$tmp/run.log")"

# The network core as its unit runs it: the example configuration with a fresh key.
ns_unit=/lib/systemd/system/sigfox-ns.service
ns_exec=$(sed -n 's/^ExecStart=//p' $ns_unit)
ns_user=$(sed -n 's/^User=//p' $ns_unit)
[ "$ns_user" = sigfox-ns ] && id sigfox-ns >/dev/null 2>&1 || err "no service user sigfox-ns"
[ "$(stat -c %G /etc/sigfox-ns/sigfox-ns.conf)" = sigfox-ns ] || err "/etc/sigfox-ns/sigfox-ns.conf not group sigfox-ns"
sigfox-ns keygen --out /etc/sigfox-ns/core >/dev/null && chgrp sigfox-ns /etc/sigfox-ns/core.key &&
    chmod 640 /etc/sigfox-ns/core.key ||
    err "sigfox-ns keygen --out /etc/sigfox-ns/core"
# shellcheck disable=SC2086 # ExecStart is a command line
runuser -u "$ns_user" -- $ns_exec --check-config >"$tmp/ns.log" 2>&1 ||
    err "sigfox-ns --check-config as $ns_user: $(cat "$tmp/ns.log")"
install -d -o "$ns_user" -g "$ns_user" -m 750 /run/sigfox-ns # RuntimeDirectory=
# setpriv execs the core itself, so the SIGTERM reaches it as systemd's stop would; runuser
# would stay in between, answer the signal itself and exit 143 whatever the core does.
# --foreground: timeout signals the core alone; otherwise it also signals its own process
# group, the core among it, and a second TERM handled after the first (a loaded machine)
# makes the core exit at once with 1, as a second Ctrl-C should.
# shellcheck disable=SC2086
timeout --foreground --preserve-status -s TERM 5 setpriv --reuid="$ns_user" --regid="$ns_user" --init-groups -- \
    $ns_exec --listen tcp://127.0.0.1:5590 >"$tmp/ns.log" 2>&1
rc=$?
rm -rf /run/sigfox-ns
[ $rc -eq 0 ] && grep -q "Core started" "$tmp/ns.log" && grep -q "Core stopped" "$tmp/ns.log" ||
    err "sigfox-ns ExecStart as $ns_user: exit $rc: $(tail -5 "$tmp/ns.log")"
[ -f /var/lib/sigfox-ns/ns.db ] || err "sigfox-ns: no database in /var/lib/sigfox-ns"

rm -f /etc/sigfoxd/keys /etc/sigfox-ns/core.key /etc/sigfox-ns/core.pub # ours, not the package's
apt-get purge -y -qq sigfoxd >"$tmp/apt.log" 2>&1 || err "apt-get purge: $(tail -3 "$tmp/apt.log")"
[ ! -e /usr/bin/sigfoxd ] || err "/usr/bin/sigfoxd left after purge"
! getent passwd sigfoxd >/dev/null || err "user sigfoxd left after purge"
! getent passwd sigfox-ns >/dev/null || err "user sigfox-ns left after purge"
[ ! -e /var/lib/sigfox-ns ] || err "/var/lib/sigfox-ns left after purge"
[ ! -e /etc/sigfoxd/sigfoxd.conf ] || err "/etc/sigfoxd/sigfoxd.conf left after purge"
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
if [ $fail = 0 ]; then
    echo "deb-test: build, install ($ver), service user run ($got messages), purge: all checks passed in $secs s"
fi
exit $fail
