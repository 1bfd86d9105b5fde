# TAP-like reporting for the shell tests (tests/e2e/run.sh, tests/image/run.sh): source it,
# then `ok`, `not_ok` and `expect`; $n counts checks and $failed the failed ones.
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
# not_ok DESCRIPTION [DETAILS]: the details are printed as comment lines.
not_ok() {
    n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
    [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/#   /'
    return 0
}
# expect DESCRIPTION WANT GOT
expect() {
    if [ "$3" = "$2" ]; then ok "$1"; else not_ok "$1" "want: $2"$'\n'"got:  $3"; fi
}
