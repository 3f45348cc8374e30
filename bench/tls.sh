#!/usr/bin/env bash
# bench/tls.sh: what NBD over TLS costs (README "Securing a cluster", issue #18).
#
#   bench/tls.sh [--runtime SECONDS] [--rounds N]
#
# One sheep (copies=1) serving NBD with --nbd-tls DIR --nbd-tls-plain, so the same server takes plain and TLS
# clients; certificates made here with openssl. fio's nbd engine (libnbd) runs, alternately over nbd:// and
# nbds://, 4 KiB random writes at QD16 and 1 MiB sequential reads at QD4 on a 1 GiB VDI, and the sheep's CPU time
# (utime+stime from /proc) is divided by the operations done. Everything lives in one mktemp -d directory, removed
# at the end; the sheep is stopped by its pid however the script exits.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNTIME=15
ROUNDS=2
while (($#)); do
    case $1 in
        --runtime) RUNTIME=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "bench/tls.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
for t in fio openssl; do command -v $t >/dev/null || { echo "bench/tls.sh: $t is not installed" >&2; exit 1; }; done
DIR=$(mktemp -d /tmp/sd-tls-bench.XXXXXX)
PID=
cleanup() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID"; for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$PID" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT

ssl() { openssl "$@" >/dev/null 2>&1; }
mkdir -p "$DIR/ca" "$DIR/server" "$DIR/client"
ssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/ca/ca-key.pem" -out "$DIR/ca/ca-cert.pem" -days 2 -subj /CN=bench-ca
issue() { # role dir cn ext
    ssl req -newkey rsa:2048 -nodes -keyout "$2/$1-key.pem" -out "$2/$1.csr" -subj "/CN=$3"
    printf '%b\n' "$4" > "$2/$1.ext"
    ssl x509 -req -in "$2/$1.csr" -CA "$DIR/ca/ca-cert.pem" -CAkey "$DIR/ca/ca-key.pem" -CAcreateserial \
        -out "$2/$1-cert.pem" -days 2 -extfile "$2/$1.ext"
    cp "$DIR/ca/ca-cert.pem" "$2/ca-cert.pem"
}
issue server "$DIR/server" localhost 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'
issue client "$DIR/client" bench 'extendedKeyUsage=clientAuth'

PORT=$((20000 + RANDOM % 5000)); NBD=$((PORT + 5000))
"$ROOT/bin/sheep" -f -p $PORT -c "local:$DIR/local" --nbd $NBD --nbd-tls "$DIR/server" --nbd-tls-plain "$DIR/store" \
    > "$DIR/sheep.out" 2>&1 &
PID=$!
for _ in $(seq 100); do "$ROOT/bin/dog" node list -p $PORT >/dev/null 2>&1 && break; sleep 0.2; done
"$ROOT/bin/dog" cluster format -p $PORT -c 1 >/dev/null
"$ROOT/bin/dog" vdi create -p $PORT -P v 1G >/dev/null

cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TCK=$(getconf CLK_TCK)
printf '%-24s %-6s %12s %12s %14s\n' case proto "IOPS" "MiB/s" "sheep CPU/op"
for round in $(seq "$ROUNDS"); do
    for spec in "randwrite 4k 16" "read 1m 4"; do
        set -- $spec
        for proto in nbd nbds; do
            uri="nbd://127.0.0.1:$NBD/v"
            [[ $proto == nbds ]] && uri="nbds://127.0.0.1:$NBD/v?tls-certificates=$DIR/client"
            c0=$(cpu)
            fio --name=b --ioengine=nbd --uri="$uri" --rw=$1 --bs=$2 --iodepth=$3 --time_based \
                --runtime="$RUNTIME" --size=1G --output-format=json > "$DIR/fio.json" 2>"$DIR/fio.err"
            c1=$(cpu)
            python3 - "$1 $2 QD$3 r$round" "$proto" "$c0" "$c1" "$TCK" "$DIR/fio.json" <<'PY'
import json, sys
name, proto, c0, c1, tck = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
j = json.load(open(sys.argv[6]))["jobs"][0]
side = j["write"] if j["write"]["io_bytes"] else j["read"]
ops = side["total_ios"]
cpu_us = (c1 - c0) / tck * 1e6 / max(ops, 1)
print(f"{name:<24} {proto:<6} {side['iops']:12.0f} {side['bw_bytes'] / 2**20:12.1f} {cpu_us:11.1f} us")
PY
        done
    done
done
