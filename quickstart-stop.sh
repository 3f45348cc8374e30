#!/usr/bin/env bash
# Stops the cluster started by ./quickstart.sh: SIGTERM to each daemon named in its pid file, SIGKILL after 20 s.
# --purge also deletes the stores.
set -euo pipefail
run=${SHEEPDOG_QUICKSTART_DIR:-/tmp/sheepdog-quickstart}
purge=0
[[ ${1:-} == --purge ]] && purge=1

stopped=0
for pidfile in "$run"/sheep*.pid; do
    [[ -f $pidfile ]] || continue
    pid=$(tr -dc 0-9 < "$pidfile")
    # only a pid that still belongs to a sheep daemon (pids are reused)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && grep -q 'io.sheepdog.sheep.SheepMain' "/proc/$pid/cmdline" 2>/dev/null; then
        kill -TERM "$pid"
        for ((t = 0; t < 200; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "sheep pid $pid did not stop on SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stopped sheep pid $pid ($pidfile)"
        stopped=$((stopped + 1))
    fi
    rm -f "$pidfile"
done
((stopped)) || echo "no quickstart sheep running (no live pid files in $run)"
if ((purge)); then
    rm -rf "$run"
    echo "deleted $run"
fi
