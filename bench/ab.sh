#!/usr/bin/env bash
# bench/ab.sh: configurations of a 3-copy cluster against each other, alternating, as in bench/RESULTS.md.
#
#   bench/ab.sh [-r ROUNDS] [-s SECONDS] [-j JOBS] 'NAME|JAVA_OPTS|SHEEP_ARGS[|TREE]' ...
#
#   e.g. bench/ab.sh 'one-buffer||' 'copied|-Dsheepdog.ioPortOneBuffer=false|'
#        bench/ab.sh 'journal||--journal 32M' 'default||'       (what bench/journal-ab.sh runs)
#        bench/ab.sh -j randread:4k:1,randread:4k:16 'now|||' 'before|||/tmp/old'   (another build: its bin/)
#
# JOBS: fio jobs RW:BS:QD, comma-separated (default randwrite:4k:16,randwrite:4k:1,write:1m:4). TREE: a checkout
# whose bin/sheep and bin/dog run that configuration (built with mvn package), this one by default.
#
# Each configuration gets a new 3-node local cluster (3 copies, durable: no -n) in a mktemp -d directory, its sheeps
# started with SHEEP_JAVA_OPTS=JAVA_OPTS and SHEEP_ARGS, a 1 GiB VDI filled with 1 MiB writes, 15 s of 4 KiB random
# writes at QD16 to warm the JIT up (not counted), then the JOBS measured (fio's nbd engine, through node 0), SECONDS
# each (default 2 rounds of 15 s). CPU per request is utime+stime of the three sheeps (/proc/PID/stat) over the
# measured run divided by the requests. Configurations alternate within
# each round. Every sheep is stopped by its pid when the script ends, however it ends.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=2
SECS=15
JOBS=randwrite:4k:16,randwrite:4k:1,write:1m:4
USAGE="usage: bench/ab.sh [-r ROUNDS] [-s SECONDS] [-j RW:BS:QD,...] 'NAME|JAVA_OPTS|SHEEP_ARGS[|TREE]' ..."
while getopts "r:s:j:" o; do
    case $o in
        r) ROUNDS=$OPTARG ;;
        s) SECS=$OPTARG ;;
        j) JOBS=$OPTARG ;;
        *) echo "$USAGE" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
(($# > 0)) || { echo "$USAGE" >&2; exit 2; }
for t in fio jq; do command -v $t >/dev/null || { echo "ab.sh: $t is needed" >&2; exit 2; }; done
[[ -x $ROOT/bin/sheep ]] || { echo "ab.sh: build first (mvn package)" >&2; exit 2; }

W=""
stop() {  # the sheeps of the current cluster, by pid, and its directory
    [[ -n $W ]] || return 0
    local f
    for f in "$W"/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
    sleep 1
    rm -rf "$W"
    W=""
}
trap stop EXIT

run() {   # NAME JAVA_OPTS SHEEP_ARGS TREE
    local name=$1 jopts=$2 tree=${4:-$ROOT}
    local -a args
    read -r -a args <<<"$3"
    [[ -x $tree/bin/sheep ]] || { echo "ab.sh: no $tree/bin/sheep (build that tree first)" >&2; exit 2; }
    W=$(mktemp -d "${TMPDIR:-/tmp}/bench-ab-XXXXXX")
    local w=$W
    local base=$((20000 + RANDOM % 8000))
    for i in 0 1 2; do
        SHEEP_JAVA_OPTS="$jopts" "$tree/bin/sheep" "${args[@]}" -p $((base + i)) -z $i -c "local:$w/rdv" --nbd $((base + 100 + i)) \
            -P "$w/n$i.pid" "$w/n$i" >/dev/null
    done
    for _ in $(seq 120); do
        [[ $("$tree/bin/dog" node list -p $base 2>/dev/null | grep -c 127.0.0.1) == 3 ]] && break
        sleep 0.5
    done
    "$tree/bin/dog" cluster format -c 3 -p $base >/dev/null
    "$tree/bin/dog" vdi create v 1G -p $base
    local uri=nbd://127.0.0.1:$((base + 100))/v
    fio --name=fill --ioengine=nbd "--uri=$uri" --rw=write --bs=1m --iodepth=4 --size=1G >/dev/null
    fio --name=warm --ioengine=nbd "--uri=$uri" --rw=randwrite --bs=4k --iodepth=16 --size=1G --time_based --runtime=15 >/dev/null
    cpu() { local t=0 i; for i in 0 1 2; do t=$((t + $(awk '{print $14 + $15}' "/proc/$(cat "$w/n$i.pid")/stat"))); done; echo $t; }
    local job c0 c1 out rw bs qd
    local -a jobs
    IFS=, read -r -a jobs <<<"$JOBS"
    for job in "${jobs[@]}"; do
        IFS=: read -r rw bs qd <<<"$job"
        local dir=write
        [[ $rw == *read* ]] && dir=read
        c0=$(cpu)
        fio --name=m --ioengine=nbd "--uri=$uri" --rw=$rw --bs=$bs --iodepth=$qd --size=1G --time_based \
            "--runtime=$SECS" --output-format=json "--output=$w/fio.json" >/dev/null
        c1=$(cpu)
        out=$(sed -n '/^{/,$p' "$w/fio.json")
        echo "$name $rw $bs QD$qd: $(jq ".jobs[0].$dir.iops|floor" <<<"$out") IOPS," \
            "$(jq ".jobs[0].$dir.bw_bytes/1048576|floor" <<<"$out") MiB/s," \
            "median $(jq ".jobs[0].$dir.clat_ns.percentile[\"50.000000\"]/1000|floor" <<<"$out") us," \
            "CPU per request $(( (c1 - c0) * 1000000 / $(getconf CLK_TCK) / $(jq ".jobs[0].$dir.total_ios" <<<"$out") )) us (3 sheeps)"
    done
    local hwm=0 i h
    for i in 0 1 2; do
        h=$(awk '/^VmHWM/ {print $2}' "/proc/$(cat "$w/n$i.pid")/status")
        ((h > hwm)) && hwm=$h
    done
    echo "$name: peak RSS of the largest sheep $((hwm / 1024)) MiB"
    stop
}

for r in $(seq "$ROUNDS"); do
    for cfg in "$@"; do
        IFS='|' read -r name jopts sargs tree <<<"$cfg"
        run "round $r $name" "$jopts" "$sargs" "$tree"
    done
done
