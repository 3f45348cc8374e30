#!/usr/bin/env bash
# Runs the whole test suite: builds every module, packages sheep and dog (bin/ launchers need the jars), runs the
# unit tests (surefire, `test` phase) and then the multi-process integration tests in it/ (failsafe,
# `integration-test` phase, against the packaged jars through bin/sheep and bin/dog).
# Usage: ./test.sh [extra maven arguments], e.g. ./test.sh -DskipITs   or   ./test.sh -pl it -am -Dit.test=SingleNodeIT
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
cd "$root"
# shellcheck source=bin/lib/launcher.sh
. bin/lib/launcher.sh
sd_find_java || exit 1
JAVA_HOME=${SD_JAVA%/bin/java}
export JAVA_HOME PATH="$JAVA_HOME/bin:$PATH"
# Maven 3.8's bundled Guava calls sun.misc.Unsafe, which JDK 24+ warns about on every run.
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"

echo "== JDK: $JAVA_HOME ($("$JAVA_HOME/bin/java" -version 2>&1 | head -n 1))"
# QEMU 5.2's qemu-img/qemu-io/qemu-nbd with the sheepdog: driver (the seed's client, Qemu52DriverIT), built once from
# Debian 11's source package into ~/.cache/sheepdog-qemu52 (a few minutes; skipped when already there).
# SD_SKIP_QEMU52=1 skips the build (the tests that need it then skip, or fail under CI=true).
if [[ ${SD_SKIP_QEMU52:-0} != 1 ]]; then
    if q52=$(tools/build-qemu52.sh 2>/tmp/sheepdog-qemu52-build.log | tail -n 1); then
        echo "== QEMU 5.2 with the sheepdog driver: $q52"
    else
        tail -n 20 /tmp/sheepdog-qemu52-build.log >&2 || true
        echo "test.sh: could not build QEMU 5.2's tools (log: /tmp/sheepdog-qemu52-build.log); Qemu52DriverIT will skip (fail under CI)" >&2
    fi
fi
start=$SECONDS
# reports written by this run only (target/ may hold older ones)
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
rc=0
mvn -B -ntp verify "$@" || rc=$?
elapsed=$((SECONDS - start))

# One summary over every module's surefire (unit) and failsafe (integration) reports.
summary() {
    local kind=$1 dir_glob=$2 f tests=0 failures=0 errors=0 skipped=0 t fa e s line
    for f in $dir_glob; do
        [[ -f $f && $f -nt $stamp ]] || continue
        line=$(grep -m1 -o '<testsuite [^>]*>' "$f" || true)
        [[ -n $line ]] || continue
        t=$(sed -n 's/.* tests="\([0-9]*\)".*/\1/p' <<<"$line"); fa=$(sed -n 's/.* failures="\([0-9]*\)".*/\1/p' <<<"$line")
        e=$(sed -n 's/.* errors="\([0-9]*\)".*/\1/p' <<<"$line"); s=$(sed -n 's/.* skipped="\([0-9]*\)".*/\1/p' <<<"$line")
        tests=$((tests + ${t:-0})); failures=$((failures + ${fa:-0})); errors=$((errors + ${e:-0})); skipped=$((skipped + ${s:-0}))
    done
    printf '%s %s %s %s %s\n' "$kind" "$tests" "$failures" "$errors" "$skipped"
}
read -r _ ut uf ue us < <(summary unit "*/target/surefire-reports/TEST-*.xml")
read -r _ it if_ ie is < <(summary it "*/target/failsafe-reports/TEST-*.xml")
echo
echo "================ test summary ================"
printf 'unit tests:        %4d run, %3d failed, %3d errors, %3d skipped\n' "$ut" "$uf" "$ue" "$us"
printf 'integration tests: %4d run, %3d failed, %3d errors, %3d skipped\n' "$it" "$if_" "$ie" "$is"
printf 'maven exit code:   %d   time: %dm%02ds\n' "$rc" $((elapsed / 60)) $((elapsed % 60))
total=$((ut + it)); failed=$((uf + ue + if_ + ie)); skipped=$((us + is))
echo "tests: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"
if (( rc == 0 && total == 0 && $# == 0 )); then
    echo "test.sh: no test ran" >&2
    exit 1
fi
exit "$rc"
