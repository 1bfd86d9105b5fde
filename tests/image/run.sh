#!/usr/bin/env bash
# The container image (`make test-image`, root): what the official memcached image promises.
#
#   tests/image/run.sh IMAGE
#
# The image's configuration (entrypoint, user, port, healthcheck, size); then the image runs
# with `podman run -d -p …` and arguments passed through. Where podman cannot run containers
# (this project's CI sandbox refuses the runtime's setrlimit), the run is said so, with
# podman's error, and the image's own file system is run instead: exported from the image,
# entered with chroot as the image's user with /proc and /dev mounted, as a container
# runtime would; the checks are the same. Output is TAP-like; the exit status is the number
# of failed checks.
set -u
IMAGE=${1:?usage: $0 IMAGE}
MAX_BYTES=$((30 * 1024 * 1024))
. "$(dirname "$0")/../tap.sh"
inspect() { podman image inspect --format "$1" "$IMAGE" 2>&1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ask() { timeout 10 sh -c "printf '$2' | nc -q1 127.0.0.1 $1" 2>&1 | tr -d '\r'; }

# ---- The image -------------------------------------------------------------------------------
size=$(inspect '{{.Size}}')
if [ "$size" -le "$MAX_BYTES" ] 2>/dev/null; then ok "the image is $((size / 1024)) KB (at most 30 MB)"; else not_ok "the image is at most 30 MB" "$size"; fi
expect "the entrypoint is the daemon" '[/usr/bin/memcached-rs]' "$(inspect '{{.Config.Entrypoint}}')"
expect "it runs as memcache (uid 11211)" 11211:11211 "$(inspect '{{.Config.User}}')"
expect "it exposes 11211" 'map[11211/tcp:{}]' "$(inspect '{{.Config.ExposedPorts}}')"
expect "it has a healthcheck" '[CMD /usr/bin/memcached-rs-tool 127.0.0.1:11211 settings]' \
    "$(inspect '{{.Config.Healthcheck.Test}}')"

# ---- Running it ------------------------------------------------------------------------------
port=$(free_port)
work=$(mktemp -d /tmp/memcached-rs-image.XXXXXX)
pid=""
name=memcached-rs-image-test-$$
cleanup() {
    podman rm -f "$name" >/dev/null 2>&1
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    umount -l "$work/root/proc" "$work/root/dev" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
# The official image's way: `docker run -d -p 11211:11211 memcached -m 1024 -t 8`.
if out=$(podman run -d --name "$name" -p "127.0.0.1:$port:11211" "$IMAGE" -m 1024 -t 8 -v 2>&1); then
    mode=podman
    stop() { podman stop -t 10 "$name" >/dev/null 2>&1; status=$(podman inspect --format '{{.State.ExitCode}}' "$name"); }
    health() { podman healthcheck run "$name" >/dev/null 2>&1; }
    logs() { podman logs "$name" 2>&1; }
else
    mode=chroot
    echo "# podman cannot run the image here: $out"
    echo "# running the image's file system instead (chroot as uid 11211, /proc and /dev mounted)"
    mkdir -p "$work/root"
    cid=$(podman create --no-healthcheck "$IMAGE") && podman export "$cid" | tar -x -C "$work/root" && podman rm "$cid" >/dev/null
    mkdir -p "$work/root/proc" "$work/root/dev"
    mount -t proc proc "$work/root/proc" && mount --rbind /dev "$work/root/dev"
    # The entrypoint with the same arguments, listening where -p would have forwarded.
    entry=$(inspect '{{index .Config.Entrypoint 0}}')
    chroot --userspec=11211:11211 "$work/root" "$entry" -m 1024 -t 8 -v -p "$port" -l 127.0.0.1 \
        >"$work/stdout" 2>"$work/stderr" </dev/null &
    pid=$!
    stop() {
        kill -TERM "$pid"
        wait "$pid"
        status=$?
        pid=""
    }
    health() { chroot --userspec=11211:11211 "$work/root" /usr/bin/memcached-rs-tool "127.0.0.1:$port" settings >/dev/null 2>&1; }
    logs() { cat "$work/stdout" "$work/stderr"; }
fi
for _ in $(seq 1 100); do ask "$port" 'version\r\n' | grep -q VERSION && break; sleep 0.1; done

stats=$(ask "$port" 'stats\r\n')
case $stats in *"STAT curr_connections"*) ok "echo stats | nc answers ($mode)" ;; *) not_ok "echo stats | nc answers ($mode)" "$stats$(logs)" ;; esac
settings=$(ask "$port" 'stats settings\r\n')
case $settings in *"STAT maxbytes 1073741824"*"STAT num_threads 8"*) ok "-m 1024 -t 8 -v passed through (stats settings)" ;; *) not_ok "-m 1024 -t 8 -v passed through" "$settings" ;; esac
expect "the README's transcript: set and get" $'STORED\nVALUE user_name 0 4\njohn\nEND' \
    "$(ask "$port" 'set user_name 0 3600 4\r\njohn\r\nget user_name\r\n')"
expect "the README's transcript: incr and decr" $'STORED\n5\n3' \
    "$(ask "$port" 'set counter 0 0 1\r\n0\r\nincr counter 5\r\ndecr counter 2\r\n')"
user=$(awk '/^Uid:/ { print $2 }' "/proc/$(if [ "$mode" = podman ]; then podman inspect --format '{{.State.Pid}}' "$name"; else echo "$pid"; fi)/status" 2>&1)
expect "the daemon runs as uid 11211" 11211 "$user"
if health; then ok "the healthcheck passes"; else not_ok "the healthcheck passes" "$(logs)"; fi
t0=$(date +%s%N)
status=""
stop
ms=$((($(date +%s%N) - t0) / 1000000))
expect "SIGTERM stops it with exit 0" 0 "$status"
# Not a speed test: a daemon that outlived a runtime's stop timeout (10 s) would be killed.
if [ "$ms" -lt 10000 ]; then ok "it stopped before a runtime's 10 s stop timeout ($ms ms)"; else not_ok "it stops before a runtime's 10 s stop timeout" "$ms ms"; fi
case $(logs) in *"listening on"*) ok "-v logs go to stdout/stderr" ;; *) not_ok "-v logs go to stdout/stderr" "$(logs)" ;; esac
if health; then not_ok "the healthcheck fails once the daemon is gone"; else ok "the healthcheck fails once the daemon is gone"; fi

echo "# $failed of $n checks failed ($mode)"
exit $((failed > 100 ? 100 : failed))
