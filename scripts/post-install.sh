#!/bin/sh
# post-install: creates the sigfoxd system user and its directories after `make install`.
# Idempotent: run it again and it only checks. Needs root; as another user it says what it
# would do and exits 0 (the Makefile calls it from every `make install`).
# Usage: scripts/post-install.sh      env: SYSCONFDIR (default /etc), STATEDIR (default
#                                       /var/lib/sigfoxd)
set -eu

user=sigfoxd
sysconfdir=${SYSCONFDIR:-/etc}
statedir=${STATEDIR:-/var/lib/sigfoxd}

if [ "$(id -u)" -ne 0 ]; then
    echo "post-install: not root, skipped: create the system user '$user' (groups $user," \
        "plugdev), $statedir (0750) and make $sysconfdir/sigfoxd readable by group $user" >&2
    exit 0
fi

# plugdev is the group Debian's udev rules give USB radios; create it where it is missing.
if ! getent group plugdev >/dev/null; then
    groupadd --system plugdev
    echo "post-install: created group plugdev" >&2
fi
if ! getent passwd "$user" >/dev/null; then
    useradd --system --user-group --home-dir "$statedir" --no-create-home \
        --shell /usr/sbin/nologin --comment "sigfoxd Sigfox base station" "$user"
    echo "post-install: created system user $user" >&2
fi
if ! id -nG "$user" | tr ' ' '\n' | grep -qx plugdev; then
    usermod -a -G plugdev "$user"
    echo "post-install: added $user to plugdev (USB radio access)" >&2
fi

# State (anti-replay counters): systemd's StateDirectory= also creates it, but a manual
# `sigfoxd` run as the user needs it too.
install -d -o "$user" -g "$user" -m 0750 "$statedir"

# The configuration may hold device keys: root writes it, the service reads it.
if [ -d "$sysconfdir/sigfoxd" ]; then
    chgrp "$user" "$sysconfdir/sigfoxd"
    chmod 0750 "$sysconfdir/sigfoxd"
    for f in "$sysconfdir"/sigfoxd/*; do
        [ -f "$f" ] || continue
        chgrp "$user" "$f"
        chmod o-rwx "$f"
    done
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    echo "post-install: enable with: systemctl enable --now sigfoxd" >&2
fi
