#!/usr/bin/env bash
# bench/run.sh: the benchmark suite of Sheepdog-JVM (see bench/README.md).
#
#   bench/run.sh            full run (about 25 minutes on 2 cores); results in bench/results/results.{md,json}
#   bench/run.sh --smoke    tiny sizes and times (well under a minute): checks that the suite works, figures mean nothing
#
# It starts one sheep (copies=1), a 3-node local cluster (copies=3) and qemu-nbd on a raw file, all on the same disk,
# and measures NBD with fio, dog vdi write/read next to dd, JMH micro benchmarks, 10,000 VDIs, dog's start-up and the
# sheeps' peak RSS. All data lives in one directory made with mktemp -d and removed at the end; every process the
# suite starts is stopped by its pid when it exits, however it exits.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh [--smoke] [--out DIR] [--tmp DIR] [--only SECTIONS] [--rounds N] [--runtime SECONDS]
                    [--warmup SECONDS] [--jfr] [--no-build]
  --smoke          tiny sizes and times, to check the suite itself (used by the tests)
  --out DIR        where results.md, results.json and raw/ go (default: bench/results)
  --tmp DIR        parent of the temporary data directory (default: $TMPDIR or /tmp); it decides the disk measured
  --only LIST      comma-separated subset of: micro,startup,nbd,protocol,scale (default: all)
  --rounds N       fio rounds per case and system, run alternately (default: 2; smoke: 1)
  --runtime S      seconds per fio run (default: 20; smoke: 0.3)
  --warmup S       seconds of 4 KiB random writes, then reads, against each sheep before the NBD cases, not
                   counted, so that the JIT has compiled the I/O path (default: 15; smoke: 0)
  --jfr            record every sheep with Java Flight Recorder (profile settings) into OUT/raw/jfr
  --no-build       do not run 'mvn package' even if the jars are missing
Environment: SHEEP_JAVA_OPTS (extra JVM options of every sheep), BENCH_CP (class path of the bench module; default
bench/target/sheepdog-bench-*.jar and bench/target/lib/*).
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=full
OUT=$ROOT/bench/results
TMP_PARENT=${TMPDIR:-/tmp}
ONLY=micro,startup,nbd,protocol,scale
ROUNDS=
RUNTIME=
WARMUP=
JFR=0
BUILD=1
ORIG_ARGS=("$@")
while (($#)); do
    case $1 in
        --smoke) MODE=smoke ;;
        --out) OUT=${2:?--out needs a directory}; shift ;;
        --tmp) TMP_PARENT=${2:?--tmp needs a directory}; shift ;;
        --only) ONLY=${2:?--only needs a list}; shift ;;
        --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
        --runtime) RUNTIME=${2:?--runtime needs seconds}; shift ;;
        --warmup) WARMUP=${2:?--warmup needs seconds}; shift ;;
        --jfr) JFR=1 ;;
        --no-build) BUILD=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/run.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for s in ${ONLY//,/ }; do
    case $s in micro|startup|nbd|protocol|scale) ;; *) echo "bench/run.sh: unknown section '$s' in --only" >&2; exit 2 ;; esac
done
[[ -z $ROUNDS || $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench/run.sh: --rounds must be a positive integer" >&2; exit 2; }
[[ -z $RUNTIME || $RUNTIME =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench/run.sh: --runtime must be a number of seconds" >&2; exit 2; }
[[ -z $WARMUP || $WARMUP =~ ^[0-9]+$ ]] || { echo "bench/run.sh: --warmup must be a whole number of seconds" >&2; exit 2; }

# ---- sizes and times per mode ----
if [[ $MODE == smoke ]]; then
    : "${ROUNDS:=1}" "${RUNTIME:=0.3}" "${WARMUP:=0}"
    FIO_SIZE_MIB=16            # size of every NBD device (sheep VDIs and the raw file)
    RAMP=0
    PROTO_MIB=8                # bytes of dog vdi write / read and dd
    SCALE_VDIS=20
    STARTUP_RUNS=3
    JMH_ARGS=(-f 0 -wi 0 -i 1 -r 100ms -p vdiSizeGiB=1 -p nodes=3)
else
    : "${ROUNDS:=2}" "${RUNTIME:=20}" "${WARMUP:=15}"
    FIO_SIZE_MIB=1024
    RAMP=2
    PROTO_MIB=1024
    SCALE_VDIS=10000
    STARTUP_RUNS=20
    JMH_ARGS=(-f 1 -wi 3 -w 1s -i 5 -r 1s)
fi
# fio wants an integer number of milliseconds
RUNTIME_MS=$(awk -v s="$RUNTIME" 'BEGIN { printf "%d", s * 1000 }')
((RUNTIME_MS > 0)) || { echo "bench/run.sh: --runtime must be more than 0" >&2; exit 2; }

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
want() { [[ ,$ONLY, == *,$1,* ]]; }

# ---- tools ----
need_tool() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (Debian package: $2)"; }
if want nbd; then need_tool fio fio; need_tool qemu-nbd qemu-utils; need_tool qemu-img qemu-utils; fi
need_tool ss iproute2
need_tool awk gawk
if [[ ! -x /usr/bin/time ]] && want protocol; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing GNU time (apt-get install time)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null 2>&1; } ||
            die "cannot install GNU time: apt-get install time"
    else
        die "/usr/bin/time is missing: apt-get install time"
    fi
fi

# A JDK >= 25, found the way the launchers find it.
find_java() {
    local h
    for h in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25* /usr/lib/jvm/*; do
        [[ -n $h && -x $h/bin/java && -r $h/release ]] || continue
        if grep -Eq '^JAVA_VERSION="(2[5-9]|[3-9][0-9])' "$h/release"; then JAVA=$h/bin/java; return 0; fi
    done
    die "no JDK 25 or newer found (set JAVA_HOME)"
}
find_java

jar_of() { local j; for j in "$ROOT/$1"/target/sheepdog-"$1"-*.jar; do [[ -f $j ]] && { echo "$j"; return 0; }; done; return 1; }
built() { jar_of sheep >/dev/null && jar_of dog >/dev/null && [[ -d $ROOT/sheep/target/lib && -d $ROOT/dog/target/lib ]] &&
    { [[ -n ${BENCH_CP:-} ]] || jar_of bench >/dev/null; }; }
if ! built; then
    ((BUILD)) || die "the jars are not built: run 'mvn -q package -DskipTests' in $ROOT"
    log "building: mvn -q package -DskipTests"
    (cd "$ROOT" && JAVA_HOME=${JAVA%/bin/java} PATH=${JAVA%/java}:$PATH mvn -q package -DskipTests) || die "the build failed"
    built || die "the build did not produce sheep, dog and bench jars"
fi
BENCH_CP=${BENCH_CP:-$(jar_of bench):$ROOT/bench/target/lib/*}

# sheep and dog: the launchers when they are there (dog's launcher keeps a JDK AOT cache), else java directly.
if [[ -x $ROOT/bin/sheep ]]; then
    SHEEP=("$ROOT/bin/sheep")
else
    # shellcheck disable=SC2206  # SHEEP_JAVA_OPTS is a list of words on purpose
    SHEEP=("$JAVA" --enable-native-access=ALL-UNNAMED ${SHEEP_JAVA_OPTS:-} -cp "$(jar_of sheep):$ROOT/sheep/target/lib/*" io.sheepdog.sheep.SheepMain)
fi
if [[ -x $ROOT/bin/dog ]]; then
    DOG=("$ROOT/bin/dog")
else
    DOG=("$JAVA" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData -Xshare:auto -cp "$(jar_of dog):$ROOT/dog/target/lib/*" io.sheepdog.dog.DogMain)
fi

# ---- output and temporary data ----
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RAW=$OUT/raw
rm -rf "$RAW" "$OUT/results.md" "$OUT/results.json"
mkdir -p "$RAW/fio" "$RAW/logs"
MANIFEST=$RAW/manifest.tsv
: > "$MANIFEST"
mkdir -p "$TMP_PARENT"
WORK=$(mktemp -d "$TMP_PARENT/sheepdog-bench.XXXXXX")
PIDS_FILE=$WORK/pids        # "daemon PID" or "child PID", one a line: every process to stop at the end
: > "$PIDS_FILE"
MAIN_PID=$BASHPID
FAILED=()

if ((JFR)); then
    mkdir -p "$RAW/jfr"
    export SHEEP_JAVA_OPTS="${SHEEP_JAVA_OPTS:-} -XX:StartFlightRecording=settings=profile,dumponexit=true,filename=$RAW/jfr/"
    if [[ ! -x $ROOT/bin/sheep ]]; then
        # shellcheck disable=SC2206
        SHEEP=("$JAVA" --enable-native-access=ALL-UNNAMED $SHEEP_JAVA_OPTS -cp "$(jar_of sheep):$ROOT/sheep/target/lib/*" io.sheepdog.sheep.SheepMain)
    fi
fi

# One manifest record (see bench/src/main/java/io/sheepdog/bench/report/Manifest.java).
rec() { local IFS=$'\t'; printf '%s\n' "$*" >> "$MANIFEST"; }
# A command line as it could be pasted into a shell.
cmdline() {
    local a out=
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
    done
    printf '%s' "${out# }"
}
note() { rec note "$*"; log "note: $*"; }
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# Runs a setup command, logging its output to raw/logs/LABEL.log and its command line to the manifest.
run_logged() {
    local label=$1; shift
    rec cmd "$label" "$(cmdline "$@")"
    if ! "$@" > "$RAW/logs/$label.log" 2>&1; then
        log "'$label' failed: $(cmdline "$@")"
        tail -n 20 "$RAW/logs/$label.log" >&2 || true
        return 1
    fi
}

# User+system CPU in microseconds used so far by the processes PID... together (all their threads, live and ended),
# from /proc/PID/stat; prints nothing if one is gone.
CLK_TCK=$(getconf CLK_TCK)
cpu_us() {
    local pid st f total=0
    for pid in "$@"; do
        st=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
        st=${st##*) }  # past the command name, which may hold spaces
        read -ra f <<< "$st"
        # fields 14 and 15 of the line (utime, stime) are the 12th and 13th after the name
        total=$((total + f[11] + f[12]))
    done
    echo $((total * 1000000 / CLK_TCK))
}

# Is PID a live process (not gone, not a zombie)?
alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ ${st%% *} != Z ]]
}

# Stops every process in PIDS_FILE: SIGTERM to all, up to 15 s for them to exit, then SIGKILL.
stop_all() {
    local kind pid pids=()
    [[ -s $PIDS_FILE ]] || return 0
    while read -r kind pid; do
        [[ $pid =~ ^[0-9]+$ ]] || continue
        if alive "$pid"; then kill -TERM "$pid" 2>/dev/null && pids+=("$pid"); fi
    done < "$PIDS_FILE"
    local deadline=$((SECONDS + 15))
    for pid in "${pids[@]}"; do
        while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
        if alive "$pid"; then
            log "pid $pid did not stop on SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    : > "$PIDS_FILE"
}

finish() {
    local rc=$?
    [[ $BASHPID == "$MAIN_PID" ]] || return 0
    trap - EXIT INT TERM
    stop_all || true
    # keep the daemons' logs with the results; the data goes
    local d
    for d in "$WORK"/*/; do
        [[ -d $d ]] || continue
        for f in "$d"sheep.log "$d"sheep.stderr; do
            [[ -f $f ]] && cp "$f" "$RAW/logs/$(basename "$d")-$(basename "$f")" 2>/dev/null
        done
    done
    rm -rf "$WORK"
    if ((rc == 0 && ${#FAILED[@]} == 0)); then rec meta complete 1; else rec meta complete 0; fi
    ((${#FAILED[@]})) && rec meta failed_sections "${FAILED[*]}"
    if "$JAVA" -cp "$BENCH_CP" io.sheepdog.bench.report.ReportMain "$MANIFEST" "$OUT" "$TMP_PARENT" >&2; then
        log "results: $OUT/results.md and $OUT/results.json"
    else
        log "ERROR: writing the report failed"
        rc=1
    fi
    ((${#FAILED[@]})) && { log "failed sections: ${FAILED[*]}"; ((rc)) || rc=1; }
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# Runs a section in a subshell so that a failure is reported and the next section still runs.
section() {
    local name=$1; shift
    want "$name" || return 0
    log "== $name"
    local t0=$SECONDS rc
    # not 'if ( ... )': errexit would be off inside the subshell
    set +e
    (set -euo pipefail; "$@")
    rc=$?
    set -e
    if ((rc == 0)); then
        log "== $name done in $((SECONDS - t0)) s"
    else
        FAILED+=("$name")
        rec note "section '$name' failed: see the log lines above and $RAW/logs"
        log "== $name FAILED after $((SECONDS - t0)) s"
    fi
}

# ---- free ports (picked up front in the main shell, so sections in subshells cannot collide) ----
# Ports come from below the kernel's ephemeral range: a port picked inside it can be taken by any outgoing
# connection (the nodes' own connections to each other, say) before the daemon that was meant to get it binds it.
TAKEN=" "
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
((EPHEMERAL_LOW > 12000)) || EPHEMERAL_LOW=32768
pick_port() {
    local p _
    for _ in {1..500}; do
        p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
        [[ $TAKEN == *" $p "* ]] && continue
        [[ -z $(ss -Htan "sport = :$p" 2>/dev/null) ]] || continue
        TAKEN+="$p "
        PICKED=$p
        return 0
    done
    die "no free TCP port found"
}
wait_listen() { # PORT TIMEOUT_S
    local deadline=$((SECONDS + $2))
    until [[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]]; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}
pick_port; P1=$PICKED; pick_port; N1=$PICKED       # one sheep, copies=1: protocol port, NBD port
P3=(); N3=()
for i in 0 1 2; do pick_port; P3+=("$PICKED"); pick_port; N3+=("$PICKED"); done
pick_port; QPORT=$PICKED                           # qemu-nbd, cache=writethrough (the reference)
pick_port; QDPORT=$PICKED                          # qemu-nbd, cache=directsync (second reference, no targets)

# ---- what the run is ----
rec meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
rec meta mode "$MODE"
rec meta command "bench/run.sh${ORIG_ARGS[*]:+ $(cmdline "${ORIG_ARGS[@]}")}"
rec meta git "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
rec meta java "$("$JAVA" -version 2>&1 | head -n 1)"
want nbd && rec meta fio "$(fio --version)"
want nbd && rec meta qemu-nbd "$(qemu-nbd --version | head -n 1)"
rec meta sheep_java_opts "${SHEEP_JAVA_OPTS:-(none)}"
rec meta sheep_command "$(cmdline "${SHEEP[@]}")"
rec meta dog_command "$(cmdline "${DOG[@]}")"
rec meta fio_runtime_s "$RUNTIME"
rec meta fio_size "$FIO_SIZE_MIB MiB"
rec meta rounds "$ROUNDS"
rec meta warmup_s "$WARMUP"
rec meta protocol_bytes "$PROTO_MIB MiB"
rec meta loadavg_at_start "$(cut -d' ' -f1-3 /proc/loadavg)"
log "mode $MODE; data in $WORK; results in $OUT"

dog() { "${DOG[@]}" "$@"; }

# ---- sheep clusters ----
# start_sheep NAME PORT NBD_PORT ZONE RENDEZVOUS: a durable (no -n) sheep storing under WORK/NAME
start_sheep() {
    local name=$1 port=$2 nbd=$3 zone=$4 rdv=$5
    mkdir -p "$WORK/$name" "$rdv"
    run_logged "start-$name" "${SHEEP[@]}" -p "$port" -z "$zone" -c "local:$rdv" --nbd "$nbd" -P "$WORK/$name.pid" "$WORK/$name" ||
        { [[ -f $WORK/$name/sheep.log ]] && tail -n 20 "$WORK/$name/sheep.log" >&2; return 1; }
    local pid
    pid=$(< "$WORK/$name.pid")
    [[ $pid =~ ^[0-9]+$ ]] || { log "sheep $name wrote no pid"; return 1; }
    echo "daemon $pid" >> "$PIDS_FILE"
    echo "$pid" > "$WORK/$name.pid.ok"
}
sheep_pid() { cat "$WORK/$1.pid.ok"; }
# Waits until the cluster behind PORT lists N nodes.
wait_nodes() { # PORT N
    local deadline=$((SECONDS + 60)) n=0
    while ((SECONDS < deadline)); do
        n=$(dog node list -p "$1" 2>/dev/null | grep -Ec '^[[:space:]]*[0-9]+[[:space:]]' || true)
        ((n >= $2)) && return 0
        sleep 0.5
    done
    log "the cluster on port $1 shows $n nodes, not $2"
    return 1
}

start_clusters() {
    log "starting one sheep (copies=1) on port $P1 (NBD $N1) and a 3-node cluster on ${P3[*]} (NBD ${N3[*]})"
    # all four at once: JVM start-up is most of the cost and the machine has more than one core
    start_sheep c1-node0 "$P1" "$N1" 0 "$WORK/rdv-c1" &
    local i
    for i in 0 1 2; do start_sheep "c3-node$i" "${P3[i]}" "${N3[i]}" "$i" "$WORK/rdv-c3" & done
    local ok=1 j
    for j in $(jobs -p); do wait "$j" || ok=0; done
    ((ok)) || return 1
    run_logged format-c1 "${DOG[@]}" cluster format -c 1 -p "$P1"
    wait_nodes "${P3[0]}" 3
    run_logged format-c3 "${DOG[@]}" cluster format -c 3 -p "${P3[0]}"
    wait_nodes "${P3[0]}" 3
    touch "$WORK/clusters.ok"
}

clusters_up() {
    [[ -f $WORK/clusters.ok ]] || { log "the sheeps are not running (starting them failed)"; return 1; }
}

# ---- micro: JMH ----
section_micro() {
    local cmd=("$JAVA" -cp "$BENCH_CP" org.openjdk.jmh.Main "${JMH_ARGS[@]}" -rf json -rff "$RAW/jmh.json")
    log "JMH: $(cmdline "${JMH_ARGS[@]}")"
    "${cmd[@]}" > "$RAW/logs/jmh.log" 2>&1 || { tail -n 30 "$RAW/logs/jmh.log" >&2; return 1; }
    rec jmh jmh.json "$(cmdline "${cmd[@]}")"
}

# ---- start-up: dog node list ----
section_startup() {
    clusters_up
    if [[ ${DOG[0]} == "$ROOT/bin/dog" && ${DOG_AOT:-1} != 0 ]]; then
        # the launcher trains its AOT cache in the background on first use of a read-only command that reaches a
        # sheep (a "live" cache, see bin/dog): let that finish before timing
        local wait_s=90 aot=$ROOT/dog/target/aot kind=
        [[ $MODE == smoke ]] && wait_s=30
        local deadline=$((SECONDS + wait_s))
        while :; do
            kind=
            [[ -s $aot/dog.aot && -r $aot/dog.aot.key ]] && kind=$(sed -n 2p "$aot/dog.aot.key")
            [[ $kind == live && ! -d $aot/.training ]] && break
            ((SECONDS < deadline)) || { note "dog's AOT cache was not trained on a live command after $wait_s s (it is '${kind:-missing}'): start-up figures are pessimistic"; break; }
            [[ -d $aot/.training ]] || dog node list -p "$P1" > /dev/null 2>&1 || true
            sleep 0.5
        done
        [[ -s $aot/dog.aot ]] && rec meta dog_aot_cache "$aot/dog.aot (${kind:-unknown})"
    else
        note "dog run without its launcher (bin/dog is missing): no AOT cache, start-up figures are pessimistic"
    fi
    local cmd=("${DOG[@]}" node list -p "$P1") times=() t0 t1 i
    "${cmd[@]}" > "$RAW/logs/dog-node-list.out" 2>&1 || { cat "$RAW/logs/dog-node-list.out" >&2; return 1; }
    "${cmd[@]}" > /dev/null 2>&1 # warm the page cache
    for ((i = 0; i < STARTUP_RUNS; i++)); do
        t0=$(now_us)
        "${cmd[@]}" > /dev/null 2>&1 || return 1
        t1=$(now_us)
        times+=("$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1000 }')")
    done
    local IFS=,
    rec series startup dog-node-list ms "${times[*]}" "$(cmdline "${cmd[@]}")"
    log "dog node list: ${times[*]} ms"
}

# ---- where a replicated write's time goes ----
# The write stages of the 3-node cluster's sheeps (dog node stat -v -r): "NODE STAGE COUNT TOTAL_NS" lines.
stages_snapshot() {
    local i
    for i in 0 1 2; do
        dog node stat -v -r -p "${P3[i]}" | awk -v n="$i" 'NF == 4 && $1 ~ /-/ { print n, $1, $2, $4 }'
    done
}
# record_breakdown ROUND FIO_JSON BEFORE AFTER: the mean of each stage over the run (the writes came in through node
# 0, which stored one copy and sent the two others to nodes 1 and 2), and what lies between them.
record_breakdown() {
    local round=$1 json=$2 before=$3 after=$4 fio_mean what us n=0
    fio_mean=$(jq -r '.jobs[0].write.lat_ns.mean / 1000' "$json")
    while IFS='|' read -r what us; do
        rec value breakdown "$what, round $round" "$us" us "dog node stat -v -r -p PORT on each node before and after the fio run"
        n=$((n + 1))
    done < <(awk -v fio="$fio_mean" '
        FNR == NR { c0[$1 " " $2] = $3; t0[$1 " " $2] = $4; next }
        { dc[$1 " " $2] = $3 - c0[$1 " " $2]; dt[$1 " " $2] = $4 - t0[$1 " " $2] }
        function mean(k) { return dc[k] > 0 ? dt[k] / dc[k] / 1000 : -1 }
        END {
            w = mean("0 Client-write"); l = mean("0 local-copy"); r = mean("0 remote-copies")
            pc = dc["1 Peer-write"] + dc["2 Peer-write"]
            p = pc > 0 ? (dt["1 Peer-write"] + dt["2 Peer-write"]) / pc / 1000 : -1
            if (w < 0 || l < 0 || r < 0 || p < 0) exit 1
            printf "fio mean latency|%.1f\n", fio
            printf "client write at the gateway (node 0)|%.1f\n", w
            printf "its local copy (store write and sync)|%.1f\n", l
            printf "its wait for the 2 remote copies|%.1f\n", r
            printf "a remote copy on its node (store write and sync)|%.1f\n", p
            printf "network and hand-offs (remote wait - remote copy)|%.1f\n", r - p
            printf "NBD front end and fio (fio mean - client write)|%.1f\n", fio - w
        }' "$before" "$after")
    ((n > 0)) || log "no breakdown of the replicated QD1 write in round $round: a stage did not run"
}

# disk_alone ROUND: what the data disk itself does with the writes a replicated QD1 write makes: one synced 4 KiB
# write at a time (what one copy needs), then three writers at once (three copies on three local nodes, one disk).
# fio in the data directory, O_DIRECT and fdatasync after each write as the sheeps do; the mean of write plus sync.
disk_alone() {
    local round=$1 jobs dir=$WORK/disk-alone f us
    for jobs in 1 3; do
        mkdir -p "$dir"
        f=$RAW/fio/disk-alone-$jobs-$round.json
        local cmd=(fio --name=disk --directory="$dir" "--numjobs=$jobs" --group_reporting --size=64M --rw=randwrite --bs=4k
            --direct=1 --fdatasync=1 --time_based "--runtime=${RUNTIME_MS}ms" --output-format=json "--output=$f")
        if "${cmd[@]}" > "$RAW/logs/disk-alone-$jobs-$round.log" 2>&1; then
            us=$(jq -r '(.jobs[0].write.lat_ns.mean + .jobs[0].sync.lat_ns.mean) / 1000' "$f")
            rec value breakdown "the disk alone: a synced 4 KiB write, $jobs writer$( ((jobs > 1)) && echo "s at once"), round $round" "$us" us "$(cmdline "${cmd[@]}")"
            log "disk alone, $jobs writer(s), round $round: $us us per synced write"
        else
            log "fio on the data disk failed: no disk-alone figure"
        fi
        rm -rf "$dir"
    done
}

# ---- NBD: fio against sheep c1, the 3-node cluster and qemu-nbd ----
NBD_VDI=nbdbench
NBD_EC_VDI=nbdbench-ec21 # an erasure-coded VDI (2 data + 1 parity strips) on the 3-node cluster
# name rw(fio) direction kind bs iodepth
FIO_CASES=(
    "seqwrite-1m write write bw 1m 4"
    "seqread-1m read read bw 1m 4"
    "randwrite-4k-qd16 randwrite write iops 4k 16"
    "randread-4k-qd16 randread read iops 4k 16"
    "randwrite-4k-qd1 randwrite write lat 4k 1"
    "randread-4k-qd1 randread read lat 4k 1"
)
uri_of() {
    case $1 in
        sheep-c1) echo "nbd://127.0.0.1:$N1/$NBD_VDI" ;;
        sheep-c3) echo "nbd://127.0.0.1:${N3[0]}/$NBD_VDI" ;;
        sheep-c3-ec21) echo "nbd://127.0.0.1:${N3[0]}/$NBD_EC_VDI" ;;
        qemu-nbd) echo "nbd://127.0.0.1:$QPORT/$NBD_VDI" ;;
        qemu-nbd-directsync) echo "nbd://127.0.0.1:$QDPORT/$NBD_VDI" ;;
    esac
}

section_nbd() {
    clusters_up
    local size=${FIO_SIZE_MIB}M
    run_logged vdi-create-nbd-c1 "${DOG[@]}" vdi create "$NBD_VDI" "$size" -p "$P1"
    run_logged vdi-create-nbd-c3 "${DOG[@]}" vdi create "$NBD_VDI" "$size" -p "${P3[0]}"
    run_logged vdi-create-nbd-c3-ec21 "${DOG[@]}" vdi create -c 2:1 "$NBD_EC_VDI" "$size" -p "${P3[0]}"
    # qemu-nbd: a raw file on the same disk. cache=writethrough: a write is acknowledged after fdatasync, reads use
    # the page cache, exactly what a sheep without -n does (fdatasync per object write, buffered reads). This is the
    # reference of the targets. cache=directsync (O_DIRECT and a flush after every write) gives the same guarantee
    # with another I/O model; it is measured too, for information.
    local qpids=() spec name port mode
    # the processes whose CPU each system's figures are divided by (all three sheeps of the 3-node cluster)
    local -A sys_pids=([sheep-c1]="$(sheep_pid c1-node0)"
        [sheep-c3]="$(sheep_pid c3-node0) $(sheep_pid c3-node1) $(sheep_pid c3-node2)")
    sys_pids[sheep-c3-ec21]=${sys_pids[sheep-c3]}
    for spec in "qemu-nbd $QPORT writethrough threads" "qemu-nbd-directsync $QDPORT directsync native"; do
        read -r name port mode aio <<< "$spec"
        run_logged "qemu-img-create-$name" qemu-img create -f raw "$WORK/$name.raw" "$size"
        local q=(qemu-nbd -f raw -x "$NBD_VDI" -b 127.0.0.1 -p "$port" "--cache=$mode" "--aio=$aio" --discard=ignore
            --persistent --shared=8 "$WORK/$name.raw")
        rec cmd "$name" "$(cmdline "${q[@]}")"
        "${q[@]}" > "$RAW/logs/$name.log" 2>&1 &
        qpids+=($!)
        sys_pids[$name]=$!
        echo "child $!" >> "$PIDS_FILE"
        wait_listen "$port" 10 || { log "$name did not listen"; cat "$RAW/logs/$name.log" >&2; return 1; }
    done
    note "qemu-nbd (the reference) runs with --cache=writethrough --aio=threads: it acknowledges a write after fdatasync and reads through the page cache; the sheeps (no -n) fdatasync every object write before acknowledging it and read through the page cache too. Both sides' writes are durable when acknowledged. qemu-nbd-directsync (--cache=directsync --aio=native: O_DIRECT plus a flush after every write, equally durable, reads from the disk) is shown for information; the targets are against qemu-nbd."

    local systems=(sheep-c1 qemu-nbd sheep-c3 sheep-c3-ec21 qemu-nbd-directsync) s
    # Fill each device once, so that every measured write overwrites allocated space (no first-write allocation
    # cost on either side) and every read reads written data.
    for s in "${systems[@]}"; do
        local pf=(fio --name=prefill --ioengine=nbd "--uri=$(uri_of "$s")" --rw=write --bs=1m --iodepth=4 "--size=$size"
            --output-format=json "--output=$RAW/fio/prefill-$s.json")
        log "prefill $s"
        run_logged "prefill-$s" "${pf[@]}"
    done

    # The JIT compiles the sheeps' I/O path in their first seconds under load (the C2 compiler threads then take a
    # good part of the CPU): let that happen before anything is measured, on every system alike.
    if ((WARMUP > 0)); then
        local w
        for s in "${systems[@]}"; do
            for w in randwrite randread; do
                log "warm-up $s: $w for $WARMUP s (not counted)"
                run_logged "warmup-$w-$s" fio --name=warmup --ioengine=nbd "--uri=$(uri_of "$s")" "--rw=$w" --bs=4k --iodepth=16 \
                    "--size=$size" --time_based "--runtime=$WARMUP" --output-format=json "--output=$RAW/fio/warmup-$w-$s.json"
            done
        done
    fi

    local c name rw dir kind bs qd round
    for c in "${FIO_CASES[@]}"; do
        read -r name rw dir kind bs qd <<< "$c"
        for ((round = 1; round <= ROUNDS; round++)); do
            # the disk's own bound on the QD1 ratio, measured in the same rounds as the sheeps
            [[ $name == randwrite-4k-qd1 ]] && disk_alone "$round"
            for s in "${systems[@]}"; do
                local f=fio/$name-$s-$round.json
                local cmd=(fio "--name=$name" --ioengine=nbd "--uri=$(uri_of "$s")" "--rw=$rw" "--bs=$bs" "--iodepth=$qd"
                    "--size=$size" --time_based "--runtime=${RUNTIME_MS}ms" "--ramp_time=$RAMP" --lat_percentiles=1
                    --output-format=json "--output=$RAW/$f")
                # where a replicated QD1 write's time goes: the sheeps' own stage timers around the run
                local breakdown=0
                [[ $name == randwrite-4k-qd1 && $s == sheep-c3 ]] && breakdown=1
                ((breakdown)) && stages_snapshot > "$WORK/stages-before"
                # CPU of the system's processes over the measured part: sampled once fio's ramp is over and again
                # when fio is done (fio's own set-up, a few ms, is counted in the ramp)
                "${cmd[@]}" > "$RAW/logs/fio-$name-$s-$round.log" 2>&1 &
                local fpid=$! cpu0 cpu1 frc=0
                sleep "$RAMP"
                # shellcheck disable=SC2086
                cpu0=$(cpu_us ${sys_pids[$s]})
                wait "$fpid" || frc=$?
                # shellcheck disable=SC2086
                cpu1=$(cpu_us ${sys_pids[$s]})
                if ((frc == 0)); then
                    rec fio "$name" "$dir" "$kind" "$s" "$round" "$f" "$(cmdline "${cmd[@]}")"
                    if ((breakdown)); then
                        stages_snapshot > "$WORK/stages-after"
                        record_breakdown "$round" "$RAW/$f" "$WORK/stages-before" "$WORK/stages-after"
                    fi
                    if [[ -n $cpu0 && -n $cpu1 ]]; then
                        rec cpu "$name" "$s" "$round" "$((cpu1 - cpu0))" "pids ${sys_pids[$s]}"
                    else
                        log "a process of $s is gone: no CPU figure"
                    fi
                    log "fio $name $s round $round: $(jq -r ".jobs[0].$dir | \"\(.iops | floor) IOPS, \(.bw_bytes / 1048576 | floor) MiB/s, p50 \(.lat_ns.percentile[\"50.000000\"] / 1000 | floor) us\"" "$RAW/$f" 2>/dev/null || echo done)"
                else
                    log "fio $name against $s failed"
                    tail -n 5 "$RAW/logs/fio-$name-$s-$round.log" >&2 || true
                    return 1
                fi
            done
        done
    done

    # peak RSS of every sheep under this load (VmHWM: the most the process ever had resident)
    local n pid hwm
    for n in c1-node0 c3-node0 c3-node1 c3-node2; do
        pid=$(sheep_pid "$n")
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [[ -n $hwm ]] || { log "sheep $n (pid $pid) is gone"; return 1; }
        rec rss "$([[ $n == c1-* ]] && echo sheep-c1 || echo sheep-c3)" "$n" "$pid" "$hwm"
        log "peak RSS $n: $((hwm / 1024)) MiB"
    done

    local qpid
    for qpid in "${qpids[@]}"; do
        kill -TERM "$qpid" 2>/dev/null || true
        wait "$qpid" 2>/dev/null || true
    done
}

# ---- Sheepdog protocol: dog vdi write / read next to dd conv=fdatasync ----
mib_per_s() { awk -v b="$1" -v us="$2" 'BEGIN { printf "%.2f", (b / 1048576) / (us / 1e6) }'; }

section_protocol() {
    clusters_up
    local bytes=$((PROTO_MIB << 20)) src=$WORK/proto.src
    rec cmd make-source "head -c $bytes /dev/urandom > SOURCE"
    head -c "$bytes" /dev/urandom > "$src"
    cat "$src" > /dev/null # page cache: every reader below reads it from memory

    local dd=(dd "if=$src" "of=$WORK/dd.out" bs=4M conv=fdatasync)
    local t0 t1
    sync
    t0=$(now_us)
    "${dd[@]}" > "$RAW/logs/dd.log" 2>&1 || { cat "$RAW/logs/dd.log" >&2; return 1; }
    t1=$(now_us)
    rec value protocol dd-fdatasync "$(mib_per_s "$bytes" $((t1 - t0)))" MiB/s "$(cmdline "${dd[@]}")"
    log "dd conv=fdatasync: $(mib_per_s "$bytes" $((t1 - t0))) MiB/s"
    rm -f "$WORK/dd.out"

    local c port
    for c in c1 c3; do
        [[ $c == c1 ]] && port=$P1 || port=${P3[0]}
        run_logged "vdi-create-proto-$c" "${DOG[@]}" vdi create protobench "$PROTO_MIB"M -p "$port"
        local w=("${DOG[@]}" vdi write protobench -p "$port")
        sync
        t0=$(now_us)
        /usr/bin/time -f '%M' -o "$WORK/time.out" "${w[@]}" < "$src" > "$RAW/logs/dog-write-$c.log" 2>&1 ||
            { cat "$RAW/logs/dog-write-$c.log" >&2; return 1; }
        t1=$(now_us)
        rec value protocol "dog-vdi-write-$c" "$(mib_per_s "$bytes" $((t1 - t0)))" MiB/s "$(cmdline "${w[@]}") < SOURCE"
        rec value protocol "dog-vdi-write-$c-dog-peak-rss" "$(awk '{ printf "%.1f", $1 / 1024 }' "$WORK/time.out")" MiB ""
        log "dog vdi write $c: $(mib_per_s "$bytes" $((t1 - t0))) MiB/s"

        local r=("${DOG[@]}" vdi read protobench -p "$port")
        t0=$(now_us)
        "${r[@]}" > /dev/null 2> "$RAW/logs/dog-read-$c.log" || { cat "$RAW/logs/dog-read-$c.log" >&2; return 1; }
        t1=$(now_us)
        rec value protocol "dog-vdi-read-$c" "$(mib_per_s "$bytes" $((t1 - t0)))" MiB/s "$(cmdline "${r[@]}") > /dev/null"
        log "dog vdi read $c: $(mib_per_s "$bytes" $((t1 - t0))) MiB/s"
        # a figure of a store that loses or mangles data is worthless: check the bytes (not timed)
        if ! "${r[@]}" 2>> "$RAW/logs/dog-read-$c.log" | cmp -s - "$src"; then
            log "dog vdi read $c returned other bytes than were written"
            return 1
        fi
    done
    note "dog vdi write/read and dd all read or write the same $PROTO_MIB MiB of random data, cached in memory, on the same disk; dd uses conv=fdatasync (one flush at the end), dog's writes are acknowledged by the sheeps after fdatasync of each object write."
}

# ---- scale: 10,000 VDIs ----
section_scale() {
    clusters_up
    local size=4M
    local mk=("$JAVA" -cp "$BENCH_CP" io.sheepdog.bench.tools.CreateVdis 127.0.0.1 "$P1" "$SCALE_VDIS" scale $((4 << 20)))
    local t0 t1
    t0=$(now_us)
    "${mk[@]}" > "$RAW/logs/create-vdis.log" 2>&1 || { cat "$RAW/logs/create-vdis.log" >&2; return 1; }
    t1=$(now_us)
    rec value scale vdis "$SCALE_VDIS" VDIs "$(cmdline "${mk[@]}")"
    rec value scale create-all "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e6 }')" s "$(cmdline "${mk[@]}")"
    log "created $SCALE_VDIS VDIs in $(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e6 }') s"

    local l=("${DOG[@]}" vdi list -p "$P1") times=() i n
    for i in 1 2 3; do
        t0=$(now_us)
        "${l[@]}" > "$WORK/vdi-list.out" 2> "$RAW/logs/dog-vdi-list.log" || { cat "$RAW/logs/dog-vdi-list.log" >&2; return 1; }
        t1=$(now_us)
        times+=($((t1 - t0)))
    done
    n=$(grep -c ' scale-[0-9]' "$WORK/vdi-list.out" || true)
    ((n >= SCALE_VDIS)) || { log "dog vdi list shows $n of the $SCALE_VDIS VDIs"; head -n 5 "$WORK/vdi-list.out" >&2; return 1; }
    local med
    med=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    rec value scale dog-vdi-list "$(awk -v d="$med" 'BEGIN { printf "%.3f", d / 1e6 }')" s "$(cmdline "${l[@]}") (median of 3)"

    local c=("${DOG[@]}" vdi create scale-extra "$size" -p "$P1")
    t0=$(now_us)
    "${c[@]}" > "$RAW/logs/dog-vdi-create.log" 2>&1 || { cat "$RAW/logs/dog-vdi-create.log" >&2; return 1; }
    t1=$(now_us)
    rec value scale dog-vdi-create "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e6 }')" s "$(cmdline "${c[@]}")"
    log "dog vdi list: $(awk -v d="$med" 'BEGIN { printf "%.3f", d / 1e6 }') s; dog vdi create: $(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e6 }') s"
}

# ---- the run ----
section micro section_micro
if want startup || want nbd || want protocol || want scale; then
    log "== clusters"
    set +e
    (set -euo pipefail; start_clusters)
    rc=$?
    set -e
    if ((rc != 0)); then
        FAILED+=(clusters)
        rec note "starting the sheeps failed: see $RAW/logs"
    fi
fi
section startup section_startup
section nbd section_nbd
section protocol section_protocol
section scale section_scale
