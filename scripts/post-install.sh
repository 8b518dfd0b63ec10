#!/bin/sh
# post-install: creates the system users of sigfoxd (the station) and sigfox-ns (the network
# core) and their directories after `make install`.
# Idempotent: run it again and it only checks. Needs root; as another user it says what it
# would do and exits 0 (the Makefile calls it from every `make install`).
# Usage: scripts/post-install.sh      env: SYSCONFDIR (default /etc), STATEDIR (default
#                                       /var/lib/sigfoxd), NS_STATEDIR (/var/lib/sigfox-ns)
set -eu

user=sigfoxd
sysconfdir=${SYSCONFDIR:-/etc}
statedir=${STATEDIR:-/var/lib/sigfoxd}
ns_statedir=${NS_STATEDIR:-/var/lib/sigfox-ns}

if [ "$(id -u)" -ne 0 ]; then
    echo "post-install: not root, skipped: create the system user '$user' (groups $user," \
        "plugdev), $statedir (0750) and make $sysconfdir/sigfoxd readable by group $user;" \
        "the same for 'sigfox-ns' ($ns_statedir, $sysconfdir/sigfox-ns)" >&2
    exit 0
fi

# plugdev is the group Debian's udev rules give USB radios; create it where it is missing.
if ! getent group plugdev >/dev/null; then
    groupadd --system plugdev
    echo "post-install: created group plugdev" >&2
fi
# service_user NAME STATEDIR COMMENT: the system user, its state directory, and its
# configuration directory SYSCONFDIR/NAME readable by the service only (it may hold device
# keys, the core's secret key, tokens): root writes it, the service reads it.
service_user() {
    if ! getent passwd "$1" >/dev/null; then
        useradd --system --user-group --home-dir "$2" --no-create-home \
            --shell /usr/sbin/nologin --comment "$3" "$1"
        echo "post-install: created system user $1" >&2
    fi
    # systemd's StateDirectory= also creates it, but a manual run as the user needs it too
    install -d -o "$1" -g "$1" -m 0750 "$2"
    if [ -d "$sysconfdir/$1" ]; then
        chgrp "$1" "$sysconfdir/$1"
        chmod 0750 "$sysconfdir/$1"
        for f in "$sysconfdir/$1"/*; do
            [ -f "$f" ] || continue
            chgrp "$1" "$f"
            chmod o-rwx "$f"
        done
    fi
}

service_user "$user" "$statedir" "sigfoxd Sigfox base station"
if ! id -nG "$user" | tr ' ' '\n' | grep -qx plugdev; then
    usermod -a -G plugdev "$user"
    echo "post-install: added $user to plugdev (USB radio access)" >&2
fi
# The network core: its SQLite database and callback queue live in its state directory.
service_user sigfox-ns "$ns_statedir" "sigfox-ns Sigfox network core"

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    echo "post-install: enable with: systemctl enable --now sigfoxd (station)" \
        "/ sigfox-ns (network core, docs/ns.md)" >&2
fi
