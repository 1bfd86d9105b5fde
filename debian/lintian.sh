#!/usr/bin/env bash
# Lints a built package with the lintian of the Debian release it is for.
#
#   debian/lintian.sh SUITE path/to/memcached-rs_VERSION_ARCH.changes
#
# Each release's lintian knows that release's rules (trixie's merged /usr, tags bookworm's
# still has), so a package is judged by its own release's. On that release, this machine's
# lintian; for another, the lintian of a minimal root of that release, made by debootstrap
# once and cached in $LINTIAN_CACHE, run in a throw-away overlay with systemd-nspawn (root
# only: without root, this machine's lintian, with a warning). Fails on errors and warnings;
# overrides come with the package.
set -eu

suite=${1:?usage: $0 SUITE CHANGES}
changes=${2:?usage: $0 SUITE CHANGES}
cache=${LINTIAN_CACHE:-/var/cache/memcached-rs-e2e}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
lint=(lintian --fail-on error,warning --display-info)

host=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
if [ "$suite" = "$host" ]; then
    exec "${lint[@]}" "$changes"
fi

die() { echo "lintian.sh: $*" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
    # Building (not releasing) without root: this machine's lintian is the best there is.
    echo "lintian.sh: $suite's lintian runs in a $suite root, which needs root (debootstrap," \
        "systemd-nspawn); linting with this machine's (${host:-unknown}) instead" >&2
    exec "${lint[@]}" "$changes"
fi
for tool in debootstrap systemd-nspawn; do
    command -v "$tool" >/dev/null || die "$tool is missing (make e2e-deps installs it)"
done

root=$cache/$suite-lintian
key="$suite minbase lintian $mirror"
if [ ! -f "$root.key" ] || [ "$(cat "$root.key")" != "$key" ] || [ ! -x "$root/usr/bin/lintian" ]; then
    echo "# building a $suite root with lintian in $root (debootstrap, cached for later runs)"
    mkdir -p "$cache"
    rm -rf "$root" "$root.tmp" "$root.key"
    # perl-openssl-defaults: lintian's perl modules load it, and minbase lacks it.
    debootstrap --variant=minbase --include=lintian,perl-openssl-defaults "$suite" "$root.tmp" "$mirror" \
        >"$cache/debootstrap-lintian.log" 2>&1 \
        || { tail -20 "$cache/debootstrap-lintian.log" >&2; die "debootstrap failed"; }
    mv "$root.tmp" "$root"
    echo "$key" >"$root.key"
fi

dir=$(dirname "$(realpath "$changes")")
echo "# lintian $(chroot "$root" dpkg-query -W -f '${Version}' lintian) of Debian $suite"
exec systemd-nspawn --quiet --directory="$root" --volatile=overlay --register=no --keep-unit \
    --private-network --bind-ro="$dir:/srv/packages" --chdir=/srv/packages \
    "${lint[@]}" "/srv/packages/$(basename "$changes")"
