#!/bin/bash
# bash_completion: scripts/sigfoxd.bash-completion offers sigfoxd's options (read from its
# --help), the values of enumerated options, files for FILE arguments, directories for DIR
# ones and nothing for numbers. Licence: MIT. Run from the repo root with BUILD=<abs build dir>.
set -u
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
[ -r /usr/share/bash-completion/bash_completion ] ||
    { echo "FAIL: bash-completion is missing (scripts/install-deps.sh installs it)"; exit 1; }
. /usr/share/bash-completion/bash_completion
. scripts/sigfoxd.bash-completion
PATH="${BUILD:?set BUILD}/bin:$PATH"

# complete WORDS...: what completing the last word offers, sorted, on one line
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _sigfoxd sigfoxd "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}" 2>/dev/null
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
expect() { # want words...
    local want=$1 got
    shift
    got=$(complete_words "$@")
    [ "$got" = "$want" ] || err "completing '$*': got '$got', want '$want'"
}

mkdir -p "$tmp/d/sub" && touch "$tmp/d/keys.txt"
expect "--replay --replay-speed --report-bad-frames" sigfoxd --rep
expect "--state-dir --state-flush-interval" sigfoxd --state-
expect "RC1 RC2 RC3 RC4 RC5 RC6 RC7" sigfoxd --rc ""
expect "warning" sigfoxd --log-level w
expect "driver=airspy driver=hackrf driver=iqfile,path= driver=rtlsdr" sigfoxd -d ""
expect "$tmp/d/keys.txt $tmp/d/sub" sigfoxd --keys "$tmp/d/"
expect "$tmp/d/sub" sigfoxd --state-dir "$tmp/d/"
expect "" sigfoxd --rate 1
# Every option of the help is offered.
n_help=$(sigfoxd --help | grep -oE '^ +(-[a-zA-Z], )?--[a-z-]+' | wc -l)
n_offered=$(complete_words sigfoxd -- | wc -w)
[ "$n_offered" -ge "$n_help" ] || err "only $n_offered of the $n_help options of --help offered"
finish bash_completion
