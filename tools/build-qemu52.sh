#!/usr/bin/env bash
# Builds QEMU 5.2's qemu-img, qemu-io and qemu-nbd with the `sheepdog:` block driver (QEMU removed it in 6.0; Debian
# 12 ships 7.2) from Debian 11's source package, into a cache directory outside the repository. The integration tests
# that drive our sheep with QEMU's own Sheepdog client use these tools (it/.../Qemu52*IT).
#
#   tools/build-qemu52.sh            # builds into $SD_QEMU52_DIR (default ~/.cache/sheepdog-qemu52) unless already there
#   SD_QEMU52_DIR=/opt/q tools/build-qemu52.sh
#
# Prints the directory holding the tools on its last line. Needs root (or sudo) for apt-get the first time.
# The deb-src entry it adds for bullseye uses the mirror of this machine's own Debian sources and is removed again.
set -euo pipefail

version=1:5.2+dfsg-11+deb11u3
dir=${SD_QEMU52_DIR:-$HOME/.cache/sheepdog-qemu52}
bin=$dir/bin

have_tools() {
    [[ -x $bin/qemu-img && -x $bin/qemu-io && -x $bin/qemu-nbd ]] && "$bin/qemu-img" --help 2>/dev/null | grep -qw sheepdog
}
if have_tools; then
    echo "== QEMU 5.2 tools with the sheepdog driver already built" >&2
    echo "$bin"
    exit 0
fi

sudo=()
if [[ $(id -u) != 0 ]]; then sudo=(sudo -n); fi
export DEBIAN_FRONTEND=noninteractive

# ---- build dependencies (only those missing) ----
deps=(meson ninja-build libglib2.0-dev libpixman-1-dev zlib1g-dev pkg-config build-essential python3 dpkg-dev)
missing=()
for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

# ---- a temporary deb-src entry for bullseye on this machine's own mirror ----
src_list=/etc/apt/sources.list.d/sheepdog-qemu52-src.sources
uri=""
for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e $f ]] || continue
    # the first stanza of type deb whose suites are not a security suite
    uri=$(awk 'BEGIN{RS=""; FS="\n"}
        { t=""; u=""; s="";
          for (i=1;i<=NF;i++) { if ($i ~ /^Types:/) t=$i; if ($i ~ /^URIs:/) u=$i; if ($i ~ /^Suites:/) s=$i }
          if (t ~ /deb/ && s !~ /security/ && u != "") { sub(/^URIs:[ \t]*/, "", u); split(u, a, " "); print a[1]; exit } }' "$f")
    [[ -n $uri ]] && break
done
if [[ -z $uri && -e /etc/apt/sources.list ]]; then
    uri=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
fi
if [[ -z $uri ]]; then
    echo "build-qemu52: cannot find this machine's Debian mirror in /etc/apt/sources.list.d/*.sources" >&2
    exit 1
fi

cleanup() {
    if [[ -e $src_list ]]; then "${sudo[@]}" rm -f "$src_list"; "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
printf 'Types: deb-src\nURIs: %s\nSuites: bullseye\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" | "${sudo[@]}" tee "$src_list" >/dev/null
echo "== apt-get update (deb-src bullseye added for the build)" >&2
"${sudo[@]}" apt-get update -qq
if ((${#missing[@]})); then
    echo "== apt-get install ${missing[*]}" >&2
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

work=$dir/src
rm -rf "$work"
mkdir -p "$work"
cd "$work"
echo "== apt-get source qemu=$version" >&2
apt-get source --download-only "qemu=$version" >&2
cleanup
trap - EXIT
dsc=$(ls qemu_*.dsc | head -n 1)
dpkg-source --no-check -x "$dsc" qemu >&2
cd qemu

# The dfsg tarball has no firmware blobs; nothing here needs them.
sed -i "s/^subdir('pc-bios')/# subdir('pc-bios')/" meson.build
mkdir -p build
cd build
echo "== configure" >&2
../configure --meson=/usr/bin/meson --target-list= --enable-tools --enable-sheepdog --disable-blobs --disable-docs \
    --disable-werror --disable-gtk --disable-sdl --disable-vnc --disable-opengl --disable-spice --disable-curses \
    --disable-gnutls --disable-nettle --disable-gcrypt --disable-libssh --disable-curl --disable-rbd --disable-glusterfs \
    --disable-libiscsi --disable-libnfs --disable-xen --disable-capstone --disable-seccomp \
    --disable-guest-agent --disable-linux-aio --disable-linux-io-uring --disable-vhost-user --disable-slirp >&2 || {
        echo "build-qemu52: configure failed" >&2; exit 1; }
echo "== ninja qemu-img qemu-io qemu-nbd" >&2
ninja -j"$(nproc)" qemu-img qemu-io qemu-nbd >&2
mkdir -p "$bin"
cp qemu-img qemu-io qemu-nbd "$bin/"
cd "$dir"
rm -rf "$work"
if ! have_tools; then
    echo "build-qemu52: the built qemu-img has no sheepdog driver" >&2
    exit 1
fi
echo "== QEMU 5.2 tools built in $bin" >&2
echo "$bin"
