#!/usr/bin/env bash
# Builds the test guest (vm/README.md): Debian's cloud kernel plus an initramfs holding busybox, the virtio
# network modules and the files under vm/guest/. Nothing is installed on the host: the packages are fetched
# with `apt-get download` and unpacked with `dpkg-deb -x`.
#
# Output: ${COLO_GUEST_DIR:-/var/cache/colo-proxy/guest}/<key>/{vmlinuz,initrd.gz,manifest.json}, where <key>
# hashes this script, vm/guest/ and the package versions. A current cache makes the run a quick no-op.
# Progress goes to stderr; the last line on stdout is the output directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
guest_src=$here/guest
cache=${COLO_GUEST_DIR:-/var/cache/colo-proxy/guest}
meta_package=linux-image-cloud-amd64
busybox_package=busybox-static
# The modules virtio-net-pci needs; their dependencies are read from each .ko and loaded first.
wanted_modules=(virtio_pci virtio_net)

log() { echo "build-guest: $*" >&2; }
die() {
  echo "build-guest: $*" >&2
  exit 1
}

for tool in apt-cache apt-get dpkg-deb cpio gzip gcc sha256sum; do
  command -v "$tool" >/dev/null || die "needs '$tool' on PATH (cpio: apt-get install cpio; gcc: build-essential)"
done

kernel_package() {
  apt-cache depends "$meta_package" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ && !found { print $2; found = 1 }'
}

# Prints "PACKAGE VERSION" for each package apt-cache knows (one call: each apt-cache run costs ~0.4 s).
candidate_versions() {
  apt-cache policy "$@" 2>/dev/null | awk '/^[^ ]/ { name = $1; sub(/:$/, "", name) } $1 == "Candidate:" { print name, $2 }'
}

# Sets kpkg, kver and bver from apt's lists; fails when any is unknown.
resolve_packages() {
  local versions
  kpkg=$(kernel_package || true)
  [ -n "$kpkg" ] || return 1
  versions=$(candidate_versions "$kpkg" "$busybox_package" || true)
  kver=$(awk -v p="$kpkg" '$1 == p && $2 != "(none)" { print $2 }' <<<"$versions")
  bver=$(awk -v p="$busybox_package" '$1 == p && $2 != "(none)" { print $2 }' <<<"$versions")
  [ -n "$kver" ] && [ -n "$bver" ]
}

if ! resolve_packages; then
  log "apt-cache knows no candidate for $meta_package or $busybox_package: running apt-get update"
  apt-get update -qq >&2 || die "apt-get update failed (it needs root)"
  resolve_packages || die "expected apt-cache to know $meta_package's linux-image-* dependency and" \
    "$busybox_package; found kernel '${kpkg:-}' version '${kver:-}', busybox version '${bver:-}'"
fi

key=$(
  {
    echo "kernel $kpkg $kver"
    echo "busybox $busybox_package $bver"
    sha256sum <"${BASH_SOURCE[0]}"
    cd "$here"
    find guest -type f | LC_ALL=C sort | while read -r file; do
      if [ -x "$file" ]; then echo "$file executable"; else echo "$file"; fi
      sha256sum <"$file"
    done
  } | sha256sum | cut -c1-16
)
out=$cache/$key
if [ -f "$out/manifest.json" ]; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache/debs"
work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Fetches PACKAGE=VERSION into the shared .deb cache once; a rename makes concurrent fetches harmless.
fetch_deb() {
  local package=$1 version=$2
  local deb=$cache/debs/${package}_${version//:/%3a}_amd64.deb
  if [ ! -f "$deb" ]; then
    log "downloading $package $version"
    local dl
    dl=$(mktemp -d "$cache/debs/.dl.XXXXXX")
    if ! (cd "$dl" && apt-get download -qq "$package=$version" >"$dl.log" 2>&1); then
      cat "$dl.log" >&2
      rm -rf "$dl" "$dl.log"
      die "apt-get download $package=$version failed"
    fi
    mv "$dl"/*.deb "$deb"
    rm -rf "$dl" "$dl.log"
  fi
  echo "$deb"
}

kernel_deb=$(fetch_deb "$kpkg" "$kver")
busybox_deb=$(fetch_deb "$busybox_package" "$bver")
dpkg-deb -x "$kernel_deb" "$work/kernel"
dpkg-deb -x "$busybox_deb" "$work/busybox"

vmlinuz=$(find "$work/kernel/boot" -name 'vmlinuz-*' | head -n 1)
[ -n "$vmlinuz" ] || die "expected boot/vmlinuz-* in $kpkg; found none"
release=${vmlinuz##*/vmlinuz-}
moddir=$work/kernel/lib/modules/$release

root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,lib/modules,proc,sys,dev,run,tmp,www}

# What `busybox --install -s` does at boot, done here so the guest starts with its links in place.
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list-full); do
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done

# Modules in dependency order (each one's depends= before it), decompressed if Debian compressed them.
declare -A placed=()
order=()
module_file() {
  local found
  found=$(find "$moddir/kernel" \( -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" \) | head -n 1)
  [ -n "$found" ] || die "expected module $1 under $moddir; found none"
  echo "$found"
}
place_module() {
  local name=$1 file deps dep
  [ -z "${placed[$name]:-}" ] || return 0
  placed[$name]=1
  file=$(module_file "$name")
  case "$file" in
    *.ko.xz) xz -dc "$file" >"$root/lib/modules/$name.ko" ;;
    *.ko.zst) zstd -qdc "$file" >"$root/lib/modules/$name.ko" ;;
    *) cp "$file" "$root/lib/modules/$name.ko" ;;
  esac
  deps=$(tr '\0' '\n' <"$root/lib/modules/$name.ko" | sed -n 's/^depends=//p' | head -n 1)
  for dep in ${deps//,/ }; do
    place_module "$dep"
  done
  order+=("$name")
}
for module in "${wanted_modules[@]}"; do
  place_module "$module"
done
printf '%s\n' "${order[@]}" >"$root/etc/modules"

cp "$guest_src/init" "$root/init"
cp "$guest_src/etc/inittab" "$root/etc/inittab"
cp "$guest_src/etc/httpd.conf" "$root/etc/httpd.conf"
cp "$guest_src/bin/serve-file" "$root/bin/serve-file"
cp -R "$guest_src/www/." "$root/www/"
chmod 0755 "$root/init" "$root/bin/serve-file" "$root"/www/cgi-bin/*

# big.bin is generated at boot (16 MiB of incompressible bytes would make the initramfs 14 times larger);
# the same static binary runs here to record its SHA-256.
gcc -Os -s -static -nostdlib -ffreestanding -fno-stack-protector -fno-builtin -fno-pie -no-pie \
  -o "$root/sbin/big-bin" "$guest_src/tools/big-bin.c"
big_sha=$("$root/sbin/big-bin" | sha256sum | cut -d' ' -f1)
big_bytes=$("$root/sbin/big-bin" | wc -c)

mkdir "$work/out"
cp "$vmlinuz" "$work/out/vmlinuz"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9 >"$work/out/initrd.gz"

file_json() {
  printf '{ "bytes": %s, "sha256": "%s" }' "$(wc -c <"$1")" "$(sha256sum <"$1" | cut -d' ' -f1)"
}
modules_json=$(printf '"%s", ' "${order[@]}")
cat >"$work/out/manifest.json" <<EOF
{
  "key": "$key",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "kernel": { "package": "$kpkg", "version": "$kver", "release": "$release" },
  "busybox": { "package": "$busybox_package", "version": "$bver" },
  "modules": [${modules_json%, }],
  "bigBinSha256": "$big_sha",
  "files": {
    "vmlinuz": $(file_json "$work/out/vmlinuz"),
    "initrd.gz": $(file_json "$work/out/initrd.gz")
  },
  "www": {
    "/index.html": $(file_json "$root/www/index.html"),
    "/big.bin": { "bytes": $big_bytes, "sha256": "$big_sha" },
    "/cgi-bin/random": "32 hex digits from /dev/urandom: differs on every request",
    "/cgi-bin/counter": "increments a counter in guest memory and returns it: 1, 2, 3 after boot"
  }
}
EOF

# A concurrent run may have finished first: its result is as good as ours.
if ! mv -T "$work/out" "$out" 2>/dev/null; then
  [ -f "$out/manifest.json" ] || die "could not move the build into $out"
fi
log "built $out ($(wc -c <"$out/initrd.gz") byte initramfs, kernel $release)"
echo "$out"
