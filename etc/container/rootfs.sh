#!/bin/sh
# Assembles the image's root file system in OUT from the binaries in BIN_DIR (`make image`):
# memcached-rs and memcached-rs-tool without their debug information, the shared libraries
# they load (from the build machine's Debian packages), the memcache user and group (uid and
# gid 11211, as the official memcached image has them) and a /tmp.
#
#   etc/container/rootfs.sh OUT BIN_DIR
set -eu
OUT=${1:?usage: $0 OUT BIN_DIR}
BIN_DIR=${2:?usage: $0 OUT BIN_DIR}
rm -rf "$OUT"
mkdir -p "$OUT/usr/bin" "$OUT/etc" "$OUT/tmp"
chmod 1777 "$OUT/tmp"
for bin in memcached-rs memcached-rs-tool; do
    objcopy --strip-debug "$BIN_DIR/$bin" "$OUT/usr/bin/$bin"
    # Every library the loader maps, at the path it maps it from.
    for lib in $(ldd "$BIN_DIR/$bin" | grep -o '/[^ ]*'); do
        mkdir -p "$OUT$(dirname "$lib")"
        cp -L "$lib" "$OUT$lib"
    done
done
echo 'memcache:x:11211:11211:memcached:/nonexistent:/usr/sbin/nologin' >"$OUT/etc/passwd"
echo 'memcache:x:11211:' >"$OUT/etc/group"
