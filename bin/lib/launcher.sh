# Shared by bin/sheep and bin/dog (sourced, not executed): finds a JDK >= 25 and the packaged jars of a module.
# dog runs this on every invocation and starting a process costs several milliseconds here, so everything below
# uses bash built-ins only (no $(...), no sed) on the usual path.

SD_MIN_JAVA=25

# Sets SD_ROOT to the repository root, given the path of a script in <root>/bin (symlinks to it are followed).
sd_set_root() {
    local self=$1 dir
    [[ -L $self ]] && self=$(readlink -f "$self")
    dir=${self%/*}
    [[ $dir == "$self" ]] && dir=.
    dir=$dir/..
    # canonical form without a subshell: cd there and back (cd is a built-in)
    local here=$PWD
    if builtin cd -P "$dir" 2>/dev/null; then
        SD_ROOT=$PWD
        builtin cd "$here" 2>/dev/null || true
    else
        SD_ROOT=$dir
    fi
}

# Sets SD_MAJOR to the major version of the JDK at home $1 (empty if unknown). Reads the JDK's 'release' file;
# only a JDK without one costs a `java -version`.
sd_java_major() {
    local home=$1 line v=
    SD_MAJOR=
    [[ -x $home/bin/java ]] || return 1
    if [[ -r $home/release ]]; then
        while IFS= read -r line; do
            if [[ $line =~ ^JAVA_VERSION=\"([^\"]*)\" ]]; then v=${BASH_REMATCH[1]}; break; fi
        done < "$home/release"
    fi
    if [[ -z $v ]]; then
        # e.g. 'openjdk version "25.0.3" 2026-04-21 LTS'
        line=$("$home/bin/java" -version 2>&1)
        [[ $line =~ \"([^\"]*)\" ]] && v=${BASH_REMATCH[1]}
    fi
    v=${v%%[.+-]*}
    [[ $v =~ ^[0-9]+$ ]] && SD_MAJOR=$v
    [[ -n $SD_MAJOR ]]
}

# Is the JDK at home $1 new enough?
sd_java_ok() {
    sd_java_major "$1" && (( SD_MAJOR >= SD_MIN_JAVA ))
}

# Sets SD_JAVA to a java binary >= 25, trying in order: $JAVA_HOME, /usr/lib/jvm/temurin-25*, any /usr/lib/jvm/*,
# `java` on PATH. Prints one error line and returns 1 when there is none.
sd_find_java() {
    local cand home
    if [[ -n ${JAVA_HOME:-} ]] && sd_java_ok "$JAVA_HOME"; then
        SD_JAVA=$JAVA_HOME/bin/java
        return 0
    fi
    for cand in /usr/lib/jvm/temurin-25* /usr/lib/jvm/*; do
        if [[ -d $cand ]] && sd_java_ok "$cand"; then
            SD_JAVA=$cand/bin/java
            return 0
        fi
    done
    if cand=$(command -v java 2>/dev/null) && [[ -n $cand ]]; then
        cand=$(readlink -f "$cand")
        home=${cand%/bin/java}
        if [[ $home != "$cand" ]] && sd_java_ok "$home"; then
            SD_JAVA=$home/bin/java
            return 0
        fi
    fi
    echo "${0##*/}: no JDK ${SD_MIN_JAVA} or newer found (looked at \$JAVA_HOME, /usr/lib/jvm/*, java on PATH): install one or set JAVA_HOME" >&2
    return 1
}

# Sets SD_CP (and the array SD_JARS) to <module>/target/sheepdog-<module>-*.jar followed by every jar in
# <module>/target/lib, in sorted order so a CDS/AOT archive made from it stays valid between runs.
sd_classpath() {
    local module=$1 jar main=
    SD_JARS=()
    for jar in "$SD_ROOT/$module"/target/sheepdog-"$module"-*.jar; do
        case $jar in *-sources.jar|*-javadoc.jar|*-tests.jar) continue ;; esac
        [[ -f $jar ]] && main=$jar
    done
    if [[ -z $main || ! -d $SD_ROOT/$module/target/lib ]]; then
        echo "${0##*/}: $module is not built ($module/target/sheepdog-$module-*.jar is missing): run 'mvn -q package -DskipTests' first (in $SD_ROOT)" >&2
        return 1
    fi
    SD_JARS=("$main")
    for jar in "$SD_ROOT/$module"/target/lib/*.jar; do
        [[ -f $jar ]] && SD_JARS+=("$jar")
    done
    local IFS=:
    SD_CP="${SD_JARS[*]}"
}
