#!/usr/bin/env bash
# Runs the whole pipeline in the foreground (what `make run` does after building): the broker,
# then the five services, each program's output prefixed with its name. Ctrl-C (or SIGTERM)
# stops the services, then the broker, and exits 0. A program that dies on its own is restarted
# (every program resumes from its checkpoint or its log, so nothing is lost or done twice);
# one that dies more than OP_MAX_RESTARTS times in a minute stops the rest, and the script exits
# non-zero.
#
#   scripts/run.sh BUILD_DIR
#
# Environment: OP_DATA_DIR (default: <repo>/var), OP_HTTP_PORT (5000), OP_PUBLISH_PORT (5555),
# OP_LIVE_PORT (5556), OP_REPLAY_PORT (5557), OP_LOG_LEVEL (info), OP_START_TIMEOUT (30, s),
# OP_STOP_TIMEOUT (10, s), OP_INITIAL_STOCK (data/inventory.json), OP_MAX_RESTARTS (5 a minute
# per program; 0: stop everything at the first death), OP_INSECURE (1: no CurveZMQ, for local
# experiments; see docs/SECURITY.md), NO_COLOR (set: no colours even on a terminal).
set -euo pipefail

readonly services=(payment inventory fulfilment notification order)

die() {
    echo "run: $*" >&2
    exit 1
}

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
    die "needs bash >= 5.1 (for wait -n -p); this is $BASH_VERSION"
fi

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=$(cd "$1" 2>/dev/null && pwd) || die "no build directory '$1' (run: make build)"
bin_dir=$build_dir/bin
# A relative OP_DATA_DIR is taken from where the script was started.
data_dir=${OP_DATA_DIR:-$repo_root/var}
[[ $data_dir == /* ]] || data_dir=$PWD/$data_dir
cd "$repo_root"

http_port=${OP_HTTP_PORT:-5000}
publish_ep=tcp://127.0.0.1:${OP_PUBLISH_PORT:-5555}
live_ep=tcp://127.0.0.1:${OP_LIVE_PORT:-5556}
replay_ep=tcp://127.0.0.1:${OP_REPLAY_PORT:-5557}
log_level=${OP_LOG_LEVEL:-info}
start_timeout=${OP_START_TIMEOUT:-30}
stop_timeout=${OP_STOP_TIMEOUT:-10}
initial_stock=${OP_INITIAL_STOCK:-data/inventory.json}
max_restarts=${OP_MAX_RESTARTS:-5}

binary_of() {
    if [[ $1 == broker ]]; then echo "$bin_dir/broker"; else echo "$bin_dir/$1-service"; fi
}

for name in broker "${services[@]}"; do
    [[ -x $(binary_of "$name") ]] || die "$(binary_of "$name") is missing (run: make build)"
done
[[ -f $initial_stock ]] || die "$repo_root/$initial_stock is missing"
command -v curl >/dev/null || die "curl is needed to check the order service (run: make deps)"
mkdir -p "$data_dir"

use_colour=
if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
    use_colour=1
fi
declare -A colour_of=(
    [broker]='1;35' [payment]='32' [inventory]='33'
    [fulfilment]='34' [notification]='36' [order]='1;32'
)

say() {
    if [[ -n $use_colour ]]; then
        printf '\e[1m==> %s\e[0m\n' "$*"
    else
        printf '==> %s\n' "$*"
    fi
}

# Runs in the process substitution that prefixes one program's output. It ignores Ctrl-C so
# that the program's last lines (its shutdown) still come through; it ends at EOF. perl (always
# there on Debian) because it passes each line on at once without reading a byte at a time.
prefix_output() {
    trap '' INT TERM HUP
    PREFIX=$1 exec perl -pe 'BEGIN { $| = 1; $prefix = "$ENV{PREFIX} " } $_ = $prefix . $_'
}

declare -A pid_of=()
declare -A restart_times=()
prefixer_pids=()

start_program() {
    local name=$1 prefix
    shift
    if [[ -n $use_colour ]]; then
        printf -v prefix '\e[%sm%-13s|\e[0m' "${colour_of[$name]}" "$name"
    else
        printf -v prefix '%-13s|' "$name"
    fi
    # The prefixer is this shell's child (not the program's), so the script can wait for the
    # last lines to be printed before it exits.
    local out_fd
    exec {out_fd}> >(prefix_output "$prefix")
    prefixer_pids+=("$!")
    # Own session: a Ctrl-C in the terminal reaches only this script, which then stops the
    # programs in order. setsid execs in place, so $! is the program's own pid.
    setsid "$@" </dev/null >&"$out_fd" 2>&1 {out_fd}>&- &
    pid_of[$name]=$!
    exec {out_fd}>&-
}

alive() {
    local pid=${pid_of[$1]:-}
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# Sets dead_name to the first started program that is no longer running ("" if none).
find_dead() {
    local name
    dead_name=
    for name in broker "${services[@]}"; do
        if [[ -n ${pid_of[$name]:-} ]] && ! alive "$name"; then
            dead_name=$name
            return
        fi
    done
}

# Sets exit_status to the exit status of an exited program. Not in a $(...) subshell: only
# this shell can wait for its children.
collect_status() {
    exit_status=0
    wait "${pid_of[$1]}" 2>/dev/null || exit_status=$?
}

# SIGTERM to each named program, a bounded wait for all of them, SIGKILL for stragglers.
stop_programs() {
    local name deadline
    local -a running=() left=()
    for name in "$@"; do
        if alive "$name"; then
            kill -TERM "${pid_of[$name]}" 2>/dev/null || true
            running+=("$name")
        fi
    done
    deadline=$((SECONDS + stop_timeout))
    while :; do
        left=()
        for name in "${running[@]}"; do
            if alive "$name"; then left+=("$name"); fi
        done
        if [[ ${#left[@]} -eq 0 ]]; then
            break
        fi
        if ((SECONDS >= deadline)); then
            echo "run: ${left[*]} still running after ${stop_timeout}s; sending SIGKILL" >&2
            for name in "${left[@]}"; do
                kill -KILL "${pid_of[$name]}" 2>/dev/null || true
            done
            break
        fi
        sleep 0.1
    done
    for name in "${running[@]}"; do
        collect_status "$name"
        if [[ $exit_status != 0 ]]; then
            echo "run: $name exited with status $exit_status on shutdown" >&2
        fi
        unset "pid_of[$name]"
    done
}

stop_all() {
    trap '' INT TERM HUP
    stop_programs "${services[@]}"
    stop_programs broker
    # The programs are gone, so the prefixers see EOF: let them print the last lines.
    if [[ ${#prefixer_pids[@]} -gt 0 ]]; then
        wait "${prefixer_pids[@]}" 2>/dev/null || true
        prefixer_pids=()
    fi
}

stopping=0
trap 'stopping=1' INT TERM HUP
trap stop_all EXIT

common=(--data-dir "$data_dir" --publish "$publish_ep" --live "$live_ep" --replay "$replay_ep"
    --log-level "$log_level")
insecure=${OP_INSECURE:-0}
if [[ $insecure == 1 ]]; then
    common+=(--insecure)
fi

# Waits (bounded, polling) until `probe` succeeds; fails early on Ctrl-C or a dead program.
wait_until() {
    local what=$1 deadline=$((SECONDS + start_timeout))
    shift
    until "$@"; do
        if ((stopping)); then
            return 1
        fi
        find_dead
        if [[ -n $dead_name ]]; then
            collect_status "$dead_name"
            echo "run: $dead_name exited during startup (status $exit_status); stopping the rest" >&2
            return 1
        fi
        if ((SECONDS >= deadline)); then
            echo "run: $what not ready after ${start_timeout}s" >&2
            return 1
        fi
        sleep 0.2
    done
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

healthz_ok() {
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$http_port/healthz" 2>/dev/null
}

# Starts one program with its command line (also used to restart it).
launch() {
    case $1 in
        inventory)
            start_program inventory "$(binary_of inventory)" "${common[@]}" \
                --initial-stock "$initial_stock" ;;
        order)
            start_program order "$(binary_of order)" "${common[@]}" --host 127.0.0.1 \
                --port "$http_port" --initial-stock "$initial_stock" ;;
        *) start_program "$1" "$(binary_of "$1")" "${common[@]}" ;;
    esac
}

say "data dir $data_dir"
if [[ $insecure == 1 ]]; then
    say "security OFF (OP_INSECURE=1): anyone who reaches ports ${publish_ep##*:}-${replay_ep##*:} may publish any event"
else
    # Makes only what is missing (first run, or an identity revoked since): keeps every key.
    "$bin_dir/broker" keys --data-dir "$data_dir" init | sed 's/^/keys: /' ||
        die "could not make the CurveZMQ keys in $data_dir/keys"
    say "CurveZMQ on: keys in $data_dir/keys (OP_INSECURE=1 turns it off)"
fi
launch broker
if ! wait_until "broker (${publish_ep})" port_open "${OP_PUBLISH_PORT:-5555}"; then
    exit "$((stopping ? 0 : 1))"
fi

for name in "${services[@]}"; do launch "$name"; done

if ! wait_until "order service (http://127.0.0.1:$http_port/healthz)" healthz_ok; then
    exit "$((stopping ? 0 : 1))"
fi

say "order pipeline is up: http://127.0.0.1:$http_port"
cat <<EOF
    Place an order (answers with the outcome):
      curl -s -X POST localhost:$http_port/place-order -H 'Content-Type: application/json' -d '{"item":"phone","amount":1000}'
      curl -s -X POST localhost:$http_port/place-order -H 'Content-Type: application/json' -d '{"item":"laptop","amount":6000}'
    Look at it afterwards: curl -s localhost:$http_port/orders/ORDER_ID
    Watch the events: make tap   (or: $bin_dir/tap --keys-dir $data_dir/keys)
    Ctrl-C to stop.
EOF

# Polls rather than `wait -n`: two programs that die together must both be seen, and bash's
# `wait -n` reports a child that died while the script was busy restarting another one late or
# never.
while :; do
    if ((stopping)); then
        say "stopping"
        stop_all
        exit 0
    fi
    find_dead
    if [[ -z $dead_name ]]; then
        sleep 0.2
        continue
    fi
    collect_status "$dead_name"
    status=$exit_status
    unset "pid_of[$dead_name]"
    # Restarts in the last minute, as a list of times; too many means it cannot run.
    recent=()
    for t in ${restart_times[$dead_name]:-}; do
        if ((SECONDS - t < 60)); then recent+=("$t"); fi
    done
    if ((${#recent[@]} >= max_restarts)); then
        if ((max_restarts == 0)); then
            echo "run: $dead_name exited (status $status); restarts are off" \
                "(OP_MAX_RESTARTS=0), stopping the rest" >&2
        else
            echo "run: $dead_name exited (status $status), ${#recent[@]} restarts in the last" \
                "minute already; stopping the rest (see its lines above)" >&2
        fi
        stop_all
        exit 1
    fi
    echo "run: $dead_name exited unexpectedly (status $status); restarting it, it resumes" \
        "where it stopped" >&2
    recent+=("$SECONDS")
    restart_times[$dead_name]="${recent[*]}"
    sleep 0.5  # so a program that fails at once does not spin
    ((stopping)) || launch "$dead_name"
done
