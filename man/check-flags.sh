#!/bin/sh
# Every flag `memcached-rs -h` lists (short and long forms, and the -o options it names) must be
# described in man/memcached-rs.1. Usage: man/check-flags.sh [path/to/memcached-rs]
set -eu
cd "$(dirname "$0")/.."
bin=${1:-target/release/memcached-rs}
page=man/memcached-rs.1

# The page as a reader sees it, one long line per paragraph.
text=$(MANWIDTH=250 man --warnings -l "$page" 2>&1 | col -b)
if printf '%s\n' "$text" | grep -q '^<standard input>:\|^troff:\|warning:'; then
    printf '%s\n' "$text" | grep '^<standard input>:\|^troff:\|warning:' >&2
    echo "check-flags: $page has groff warnings" >&2
    exit 1
fi

help=$("$bin" -h)
# Flags: "-p, --port=<num>", "-vv", "    --config-file=<file>", "-D <char>".
flags=$(printf '%s\n' "$help" | sed -n \
    -e 's/^\(-[A-Za-z]\{1,3\}\)\(, \(--[a-z-]*\)\)\{0,1\}.*/\1 \3/p' \
    -e 's/^ *\(--[a-z-]*\)=.*/\1/p')
# -o options named in the help: "   - maxconns_fast:  ...".
subopts=$(printf '%s\n' "$help" | sed -n 's/^   - \([a-z_]*\):.*/\1/p')

missing=0
for flag in $flags; do
    # The flag as a word of its own: "-p," "-p " "--port=" "--port," at a word boundary.
    if ! printf '%s\n' "$text" | grep -qE -- "(^|[[:space:],(])$flag([=,[:space:])]|$)"; then
        echo "check-flags: $flag (listed by -h) is not in $page" >&2
        missing=1
    fi
done
for opt in $subopts; do
    name=${opt#no_}
    if ! printf '%s\n' "$text" | grep -qE -- "(^|[[:space:],])(no_)?$name([=,[:space:]]|$)"; then
        echo "check-flags: -o $opt (listed by -h) is not in $page" >&2
        missing=1
    fi
done
[ "$missing" = 0 ] || exit 1
count=$(printf '%s\n' $flags $subopts | wc -l)
echo "check-flags: all $count flags and -o options of $bin -h are in $page"
