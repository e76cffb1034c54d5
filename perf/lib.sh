# shellcheck shell=bash disable=SC2034
# Shared helpers of the perf/ scripts (bash). Source it after `cd` to the
# repository root:
#
#     PERF_NAME=bench            # prefix of the messages
#     . perf/lib.sh
#     perf_workdir ringgate-bench   # WORK=/tmp/ringgate-bench.XXXXXX, trap on EXIT
#
# Processes are started with `start NAME CMD...` (the PID in LAST_PID and in
# PIDS, never through $(...), where a subshell would lose it), and stopped by
# PID at exit: SIGTERM, then SIGKILL after a few seconds, children included
# (nginx's workers). Nothing here kills by name.
#
# Measures from /proc: cpu_ticks (utime+stime of a process tree, in clock
# ticks: HZ per second), rss_kb / hwm_kb (VmRSS / VmHWM of a tree, KiB),
# hwm_reset (VmHWM back to VmRSS, root only), cpu_stat (busy and total jiffies
# of each CPU from /proc/stat).
#
# Configuration writers: nginx_conf, haproxy_conf and ringgate_conf write the
# common head of a configuration (one place for worker count, logs off, pid
# and temporary files in WORK) and append what they read on stdin.

PERF_NAME=${PERF_NAME:-perf}
PIDS=()
WORK=
HZ=$(getconf CLK_TCK)

die() {
    echo "$PERF_NAME: $*" >&2
    exit 1
}

warn() {
    echo "$PERF_NAME: WARNING: $*" >&2
}

need_tools() { # tool...: fails naming every missing one
    local t missing=()
    for t in "$@"; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]} (scripts/install-deps.sh bench installs them)"
}

# Makes WORK (world-readable: nginx workers may run as www-data) and installs
# the cleanup on EXIT. KEEP_WORK=1 keeps the directory for a post-mortem.
perf_workdir() { # prefix
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$WORK"
    trap perf_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# pid and every descendant, one a line (nginx master -> workers).
tree_pids() { # pid
    local p c
    for p in "$@"; do
        [ -d "/proc/$p" ] || continue
        echo "$p"
        for c in $(pgrep -P "$p" 2>/dev/null || true); do
            tree_pids "$c"
        done
    done
}

alive() { # pid: true while it runs (a zombie counts as gone)
    [ -r "/proc/$1/stat" ] || return 1
    [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# Stops processes by PID: SIGTERM to each, up to `grace` seconds for them and
# their children to go, then SIGKILL to what is left. Children are looked up
# before the signal (an nginx worker outlives its master by a moment).
stop_pids() { # grace pid...
    local grace=$1 p i all=()
    shift
    for p in "$@"; do
        while read -r i; do all+=("$i"); done < <(tree_pids "$p")
    done
    [ ${#all[@]} -gt 0 ] || return 0
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for _ in $(seq $((grace * 20))); do
        local left=0
        for p in "${all[@]}"; do alive "$p" && left=1; done
        [ $left = 0 ] && break
        sleep 0.05
    done
    for p in "${all[@]}"; do
        if alive "$p"; then
            warn "PID $p did not stop on SIGTERM within ${grace}s: SIGKILL"
            kill -9 "$p" 2>/dev/null || true
        fi
    done
}

# Stops one process started with `start` and forgets it.
stop() { # pid
    local p keep=()
    stop_pids 5 "$1"
    wait "$1" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

perf_cleanup() {
    local rc=$? p left=()
    trap - EXIT
    if [ ${#PIDS[@]} -gt 0 ]; then
        stop_pids 5 "${PIDS[@]}"
    fi
    wait 2>/dev/null || true
    # Anything still holding a file of WORK on its command line is ours.
    if [ -n "$WORK" ]; then
        for p in $(pgrep -f -- "$WORK/" 2>/dev/null || true); do
            [ "$p" != $$ ] && left+=("$p")
        done
        if [ ${#left[@]} -gt 0 ]; then
            warn "left over after cleanup: ${left[*]}: SIGKILL"
            kill -9 "${left[@]}" 2>/dev/null || true
        elif [ "${PERF_SAY_CLEAN:-0}" = 1 ]; then
            echo "$PERF_NAME: every process it started is stopped (none left)" >&2
        fi
        [ "${KEEP_WORK:-0}" = 1 ] && echo "$PERF_NAME: kept $WORK" >&2 || rm -rf "$WORK"
    fi
    exit "$rc"
}

# Starts a process in the background, output to WORK/NAME.out; its PID in
# LAST_PID (and the legacy STARTED) and in PIDS.
start() { # name, command...
    local name=$1
    shift
    "$@" > "$WORK/$name.out" 2>&1 &
    LAST_PID=$!
    STARTED=$LAST_PID
    PIDS+=("$LAST_PID")
}

wait_port() { # port [pid: fail at once if it died]
    for _ in $(seq 200); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        if [ -n "${2:-}" ] && ! alive "$2"; then
            break
        fi
        sleep 0.05
    done
    die "nothing listens on 127.0.0.1:$1"
}

# Fails when something already listens on a port of the range: a leftover
# proxy sharing a SO_REUSEPORT port would take half the connections.
ports_free() { # low high
    local busy
    busy=$(ss -Htln 2>/dev/null | awk -v lo="$1" -v hi="$2" '{n = split($4, a, ":"); p = a[n] + 0; if (p >= lo && p <= hi) print $4}')
    [ -z "$busy" ] || die "ports in $1-$2 already in use: $(echo "$busy" | tr '\n' ' ')(a leftover process?)"
}

# nginx forks a worker: the first child of its master (or the PID itself).
child_of() {
    for _ in $(seq 50); do
        local c
        c=$(pgrep -P "$1" | head -1 || true)
        [ -n "$c" ] && { echo "$c"; return; }
        sleep 0.05
    done
    echo "$1"
}

# utime+stime, in clock ticks, of the process tree rooted at each PID given
# (a process's own figure includes all its threads).
cpu_ticks() { # pid...
    local files=() p
    while read -r p; do files+=("/proc/$p/stat"); done < <(tree_pids "$@")
    [ ${#files[@]} -gt 0 ] || { echo 0; return; }
    # The command name (field 2) may hold spaces: count from its ')'.
    awk '{sub(/^.*\) /, ""); s += $12 + $13} END {print s + 0}' "${files[@]}" 2>/dev/null || echo 0
}

status_kb() { # field pid...: sum of a /proc/PID/status field over the trees
    local field=$1 files=() p
    shift
    while read -r p; do files+=("/proc/$p/status"); done < <(tree_pids "$@")
    [ ${#files[@]} -gt 0 ] || { echo 0; return; }
    awk -v f="$field:" '$1 == f {s += $2} END {print s + 0}' "${files[@]}" 2>/dev/null || echo 0
}

rss_kb() { status_kb VmRSS "$@"; }
hwm_kb() { status_kb VmHWM "$@"; }

# Resets VmHWM (peak RSS) to the current RSS: "5" in clear_refs (root, Linux
# >= 4.0). Without it, VmHWM is the peak since the process started.
hwm_reset() { # pid...
    local p
    while read -r p; do
        echo 5 2>/dev/null > "/proc/$p/clear_refs" || true
    done < <(tree_pids "$@")
}

# "cpuN busy total" for every CPU and "cpu busy total" for all: jiffies
# since boot (busy: all but idle and iowait).
cpu_stat() {
    awk '/^cpu/ {t = 0; for (i = 2; i <= NF; i++) t += $i; print $1, t - $5 - $6, t}' /proc/stat
}

# Raises the soft descriptor limit of this shell (inherited by what it
# starts) to at least N, raising the hard limit too when allowed (root, up to
# fs.nr_open). Returns 1 when it cannot.
raise_nofile() { # n
    local n=$1 soft hard
    soft=$(ulimit -Sn)
    hard=$(ulimit -Hn)
    [ "$soft" = unlimited ] && return 0
    [ "$soft" -ge "$n" ] && return 0
    if [ "$hard" != unlimited ] && [ "$hard" -lt "$n" ]; then
        ulimit -Hn "$n" 2>/dev/null || return 1
    fi
    ulimit -Sn "$n" 2>/dev/null || return 1
}

# nginx_conf FILE NAME WORKERS CONNECTIONS [RLIMIT_NOFILE] [EVENTS] < http-block-body
# A configuration in the foreground (daemon off), pid and error log in WORK,
# access log off, temporary files in WORK/tmp-NAME; EVENTS: more directives
# for the events block.
nginx_conf() {
    local file=$1 name=$2 workers=$3 conns=$4 rlimit=${5:-} events=${6:-}
    {
        echo "worker_processes $workers;"
        [ -n "$rlimit" ] && echo "worker_rlimit_nofile $rlimit;"
        cat <<NGX
daemon off;
pid $WORK/$name.pid;
error_log $WORK/$name.err warn;
events { worker_connections $conns; $events }
http {
    access_log off;
    client_body_temp_path $WORK/tmp-$name-body;
    proxy_temp_path $WORK/tmp-$name-proxy;
    fastcgi_temp_path $WORK/tmp-$name-fcgi;
    uwsgi_temp_path $WORK/tmp-$name-uwsgi;
    scgi_temp_path $WORK/tmp-$name-scgi;
NGX
        cat
        echo "}"
    } > "$file"
}

# haproxy_conf FILE THREADS MAXCONN < frontends-and-backends
# One process (no master-worker), THREADS threads, no log, HTTP mode with
# server connections reused (http-reuse always).
haproxy_conf() {
    local file=$1 threads=$2 maxconn=$3
    {
        cat <<HAP
global
    nbthread $threads
    maxconn $maxconn
defaults
    mode http
    option http-keep-alive
    timeout connect 1s
    timeout client 60s
    timeout server 30s
    timeout http-keep-alive 60s
    http-reuse always
HAP
        cat
    } > "$file"
}

# ringgate_conf FILE WORKERS [ADMIN_PORT] < listeners-upstreams-routes...
ringgate_conf() {
    local file=$1 workers=$2 admin=${3:-}
    {
        echo "workers: $workers"
        [ "$(id -u)" = 0 ] && echo "user: root" # refused as root otherwise
        echo 'access_log: "off"'
        [ -n "$admin" ] && printf 'admin:\n  listen: 127.0.0.1:%s\n' "$admin"
        cat
    } > "$file"
}

# ringgate_metric ADMIN_PORT NAME{labels}: the metric from ringgate's admin
# endpoint, summed over the lines that start with it.
ringgate_metric() {
    curl -s --max-time 5 "http://127.0.0.1:$1/metrics" |
        awk -v m="$2" 'index($0, m) == 1 {s += $NF} END {print s + 0}'
}
