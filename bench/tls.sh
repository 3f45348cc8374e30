#!/usr/bin/env bash
# bench/tls.sh: what NBD over TLS costs (README "Securing a cluster", issue #18).
#
#   bench/tls.sh [--rounds N]
#
# One sheep (copies=1) serving NBD with --nbd-tls DIR --nbd-tls-plain, so the same server takes plain and TLS
# clients; certificates made here with openssl. nbdcopy runs, alternately in plain text and over TLS, 4 KiB writes
# at 16 in flight (64 MiB) and 1 MiB reads at 4 in flight (the whole 1 GiB VDI), and the sheep's CPU time
# (utime+stime from /proc) is divided by the operations done. Everything lives in one mktemp -d directory, removed
# at the end; the sheep is stopped by its pid however the script exits.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3
while (($#)); do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "bench/tls.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
for t in nbdcopy openssl; do command -v $t >/dev/null || { echo "bench/tls.sh: $t is not installed" >&2; exit 1; }; done
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
# nbdcopy (libnbd, the client that takes a certificate directory in its URI): 4 KiB writes at 16 requests in flight
# (a random 64 MiB file copied in, request by request) and 1 MiB reads at 4 in flight (the VDI copied out to null:)
head -c $((64 << 20)) /dev/urandom > "$DIR/src.raw"
# allocate first: every measured write then overwrites, whichever protocol goes first
nbdcopy "$DIR/src.raw" "nbd://127.0.0.1:$NBD/v"
printf '%-22s %-6s %12s %12s %14s\n' case proto "IOPS" "MiB/s" "sheep CPU/op"
for round in $(seq "$ROUNDS"); do
    for spec in "write 4096 16" "read 1048576 4"; do
        set -- $spec
        for proto in nbd nbds; do
            uri="nbd://127.0.0.1:$NBD/v"
            [[ $proto == nbds ]] && uri="nbds://127.0.0.1:$NBD/v?tls-certificates=$DIR/client"
            if [[ $1 == write ]]; then args=("$DIR/src.raw" "$uri"); bytes=$((64 << 20)); else args=("$uri" null:); bytes=$((1 << 30)); fi
            c0=$(cpu); t0=$(date +%s.%N)
            nbdcopy --request-size="$2" --requests="$3" --connections=1 "${args[@]}" 2>"$DIR/copy.err" \
                || { echo "bench/tls.sh: nbdcopy failed over $proto: $(cat "$DIR/copy.err")" >&2; tail -3 "$DIR/store/sheep.log" >&2; exit 1; }
            t1=$(date +%s.%N); c1=$(cpu)
            python3 - "$1 $(($2 / 1024))k QD$3 r$round" "$proto" "$bytes" "$2" "$t0" "$t1" "$c0" "$c1" "$TCK" <<'PY'
import sys
name, proto = sys.argv[1], sys.argv[2]
nbytes, size, t0, t1, c0, c1, tck = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
n = nbytes // size
secs = t1 - t0
print(f"{name:<22} {proto:<6} {n / secs:12.0f} {nbytes / secs / 2**20:12.1f} {(c1 - c0) / tck * 1e6 / n:11.1f} us")
PY
        done
    done
done
