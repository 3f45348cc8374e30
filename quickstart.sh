#!/usr/bin/env bash
# Builds Sheepdog for the JVM and brings up a 3-node cluster on this machine:
#   sheep on 127.0.0.1:7000-7002 (zones 0-2, NBD on 10809-10811), local cluster driver, stores under
#   $SHEEPDOG_QUICKSTART_DIR (default /tmp/sheepdog-quickstart), formatted with 3 copies, and a 10G VDI "Alice".
# Stop it with ./quickstart-stop.sh. Running this again restarts the cluster from scratch.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
cd "$root"
run=${SHEEPDOG_QUICKSTART_DIR:-/tmp/sheepdog-quickstart}
nodes=3

# shellcheck source=bin/lib/launcher.sh
. bin/lib/launcher.sh
sd_find_java || exit 1
export JAVA_HOME=${SD_JAVA%/bin/java}
export PATH="$JAVA_HOME/bin:$PATH"
command -v mvn >/dev/null || { echo "quickstart: Maven is missing: apt-get install -y maven" >&2; exit 1; }

echo "== building (mvn package -DskipTests) ..."
MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow" mvn -q -B -ntp package -DskipTests

# a previous quickstart cluster goes first (by its pid files)
if compgen -G "$run/*.pid" >/dev/null; then "$root/quickstart-stop.sh" --purge; fi
rm -rf "$run"
mkdir -p "$run"

for ((i = 0; i < nodes; i++)); do
    port=$((7000 + i))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "quickstart: port $port is already in use by another program; stop it first" >&2
        exit 1
    fi
done

echo "== starting $nodes sheep daemons (stores in $run)"
for ((i = 0; i < nodes; i++)); do
    port=$((7000 + i))
    # without -f sheep daemonizes and returns once it listens; -P records the daemon's pid for quickstart-stop.sh; no -n:
    # every acknowledged write is on disk
    bin/sheep -p "$port" -z "$i" -c "local:$run/cluster" --nbd $((10809 + i)) -P "$run/sheep$i.pid" "$run/n$i"
    echo "   sheep $i: 127.0.0.1:$port, zone $i, NBD port $((10809 + i)), pid $(cat "$run/sheep$i.pid"), log $run/n$i/sheep.log"
done

echo "== waiting for the nodes to see each other"
for ((t = 0; t < 120; t++)); do
    n=$(bin/dog node list -r 2>/dev/null | grep -c . || true)
    [[ $n == "$nodes" ]] && break
    sleep 0.5
done
if [[ $n != "$nodes" ]]; then
    echo "quickstart: only $n of $nodes nodes joined; see $run/n*/sheep.log" >&2
    exit 1
fi
bin/dog node list

echo "== dog cluster format -c 3"
bin/dog cluster format -c 3
echo "== dog vdi create Alice 10G"
bin/dog vdi create Alice 10G
bin/dog vdi list

cat <<EOT

Sheepdog is running: 3 nodes on 127.0.0.1:7000-7002, 3 copies of every object, VDI "Alice" (10 GiB).

Try:
  bin/dog node list                 # the members (any node answers: -p 7001 asks the second one)
  bin/dog node info                 # space per node
  bin/dog cluster info              # status and epochs
  bin/dog vdi list                  # the VDIs
  bin/dog vdi create Bob 1G         # another disk
  echo hello | bin/dog vdi write Alice 0 512 && bin/dog vdi read Alice 0 5
  bin/dog vdi snapshot -s first Alice

A VM uses Alice over NBD (each node serves every VDI: node i on port 10809+i):
  qemu-img info nbd://127.0.0.1:10809/Alice
  qemu-system-x86_64 -m 1G -drive file=nbd://127.0.0.1:10809/Alice,format=raw,if=virtio ...
  nbdinfo nbd://127.0.0.1:10810/Alice

Stop the cluster (kills the daemons by their pid files in $run; --purge also deletes the data):
  ./quickstart-stop.sh
EOT
