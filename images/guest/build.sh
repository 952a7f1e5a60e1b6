#!/usr/bin/env bash
# Build the virtstack Debian bookworm guest image from Debian packages only.
#
#   images/guest/build.sh            # build (or reuse) the image, print its dir
#
# Output (see README.md):
#   ${VIRTSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtstack}/guest/<IMAGE_VERSION>/
#     disk.qcow2  vmlinuz  initrd.img  manifest.json  packages.txt  build.log
#
# The image boots with direct kernel boot (kernel + initrd outside the disk,
# the disk is a bare ext4 filesystem without partition table), runs systemd,
# cloud-init (NoCloud only), qemu-guest-agent and openssh-server, and gets its
# network from cloud-init rendered for systemd-networkd.
#
# Progress goes to stderr; the last line of stdout is the output directory.
# Needs root (debootstrap, chroot, a private mount namespace for /proc etc.).
set -euo pipefail

# Bump whenever anything below changes what ends up in the image.
# The version lives in images/guest/VERSION, which virtstack reads to find the image.
IMAGE_VERSION=$(tr -d '[:space:]' < "$(dirname "${BASH_SOURCE[0]}")/VERSION")

SUITE=bookworm
ARCH=amd64
DISK_SIZE=2G           # virtual size of disk.qcow2; grow it per VM (cloud-init resizes ext4)
FS_LABEL=virtstack-root
KERNEL_CMDLINE="root=/dev/vda rw console=ttyS0,115200n8 net.ifnames=0 mitigations=off quiet"

# Packages on top of debootstrap's minbase.
PACKAGES=(
  systemd-sysv udev kmod dbus libpam-systemd systemd-resolved
  linux-image-cloud-amd64 initramfs-tools zstd
  cloud-init qemu-guest-agent openssh-server sudo
  iproute2 netbase e2fsprogs procps ca-certificates
  # What virtstack's roles run, so no VM needs a mirror: tier replicas (busybox httpd),
  # load balancers (haproxy), container hosts (docker.io), registries (docker-registry).
  busybox haproxy docker.io docker-registry
  # The kernel enables AppArmor, so Docker confines every container with its docker-default
  # profile, which it loads with apparmor_parser: without this package no container starts.
  apparmor
)
# Kernel modules the initrd needs to find and mount the root filesystem.
INITRD_MODULES=(virtio_pci virtio_blk virtio_scsi sd_mod ext4)

CACHE_ROOT="${VIRTSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtstack}"
GUEST_CACHE="$CACHE_ROOT/guest"
OUT="$GUEST_CACHE/$IMAGE_VERSION"
OUTPUTS=(disk.qcow2 vmlinuz initrd.img manifest.json)

log() { printf '[build.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

have_outputs() {
  local f
  for f in "${OUTPUTS[@]}"; do [[ -s "$1/$f" ]] || return 1; done
}

RECIPE_SHA256=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)

# ---- fast path: already built --------------------------------------------
if have_outputs "$OUT"; then
  log "cached: $OUT"
  grep -q "\"recipe_sha256\": \"$RECIPE_SHA256\"" "$OUT/manifest.json" ||
    log "WARNING: $OUT was built by another version of build.sh; bump IMAGE_VERSION if the recipe changed"
  echo "$OUT"
  exit 0
fi

# ---- preconditions --------------------------------------------------------
[[ $EUID -eq 0 ]] || die "must run as root (debootstrap/chroot)"
for tool in debootstrap mke2fs qemu-img unshare chroot flock sha256sum; do
  command -v "$tool" >/dev/null ||
    die "missing $tool (apt-get install -y debootstrap e2fsprogs qemu-utils util-linux)"
done

mkdir -p "$GUEST_CACHE"
exec 9>"$GUEST_CACHE/.lock-$IMAGE_VERSION"
flock 9
# Someone else may have finished the build while we waited for the lock.
if have_outputs "$OUT"; then
  log "cached (built concurrently): $OUT"
  echo "$OUT"
  exit 0
fi

# ---- mirrors: the ones apt on this machine uses -------------------------------
# Prints the first URI of an enabled "deb" source for suite $1, from one-line
# sources.list files and deb822 .sources files.
apt_mirror_for() {
  local suite=$1 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    awk -v s="$suite" '$1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == s) { print $i; found = 1; exit }
      } END { exit !found }' "$f" && return 0
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    awk -v s="$suite" 'BEGIN { RS = "" }
      {
        types = ""; uris = ""; suites = ""; enabled = "yes"
        n = split($0, L, "\n")
        for (i = 1; i <= n; i++) {
          l = L[i]
          if (l ~ /^#/) continue
          key = tolower(l); sub(/:.*/, "", key)
          val = l; sub(/^[^:]*:[ \t]*/, "", val)
          if (key == "types") types = val
          else if (key == "uris") uris = val
          else if (key == "suites") suites = val
          else if (key == "enabled") enabled = tolower(val)
        }
        if (enabled != "no" && (" " types " ") ~ / deb / && (" " suites " ") ~ (" " s " ")) {
          split(uris, U, " "); print U[1]; found = 1; exit
        }
      } END { exit !found }' "$f" && return 0
  done
  return 1
}

MIRROR="${VIRTSTACK_DEBIAN_MIRROR:-$(apt_mirror_for "$SUITE" || echo http://deb.debian.org/debian)}"
SECURITY_MIRROR="${VIRTSTACK_DEBIAN_SECURITY_MIRROR:-$(apt_mirror_for "$SUITE-security" || echo http://deb.debian.org/debian-security)}"
MIRROR=${MIRROR%/}
SECURITY_MIRROR=${SECURITY_MIRROR%/}

# ---- workspace ------------------------------------------------------------
START=$(date +%s)
WORK=$(mktemp -d "$GUEST_CACHE/.build-$IMAGE_VERSION.XXXXXX")
ROOT="$WORK/rootfs"
STAGE="$WORK/out"
BUILD_LOG="$WORK/build.log"
DEBS="$GUEST_CACHE/debs"   # downloaded .debs, shared by versions; safe to delete
mkdir -p "$STAGE" "$DEBS/partial"
cleanup() {
  local rc=$?
  # Mounts live only in the private namespaces of the chroot steps, so
  # nothing is mounted under $WORK once those processes have exited.
  rm -rf --one-file-system "$WORK"
  [[ $rc -eq 0 ]] || log "build failed (rc=$rc)"
}
trap cleanup EXIT

log "building guest image $IMAGE_VERSION into $OUT"
log "mirror $MIRROR, security $SECURITY_MIRROR; log: $BUILD_LOG"

# Runs "$@" in the rootfs, in a private mount namespace that has /proc, /sys,
# /dev and the shared .deb cache mounted; all mounts vanish with the process.
# in_root logs the output, in_root_out passes stdout through.
in_root_out() {
  # shellcheck disable=SC2016  # expanded by the inner sh
  unshare --mount --propagation private -- /bin/sh -euc '
    root=$1; debs=$2; shift 2
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/run"
    mount -t tmpfs tmpfs "$root/tmp"
    mount --bind "$debs" "$root/var/cache/apt/archives"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
  ' in_root "$ROOT" "$DEBS" "$@" 2>>"$BUILD_LOG"
}
in_root() {
  in_root_out "$@" >>"$BUILD_LOG" 2>&1 ||
    { tail -n 40 "$BUILD_LOG" >&2; die "failed in rootfs: $*"; }
}

# ---- 1. minimal base system -----------------------------------------------
log "debootstrap --variant=minbase $SUITE"
debootstrap --variant=minbase --arch="$ARCH" --components=main \
  --cache-dir="$DEBS" "$SUITE" "$ROOT" "$MIRROR" >>"$BUILD_LOG" 2>&1 ||
  { tail -n 40 "$BUILD_LOG" >&2; die "debootstrap failed"; }

# ---- 2. configuration that must exist before the packages are installed ----
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
cat >"$ROOT/etc/apt/apt.conf.d/90virtstack" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
# Build-time only (removed at the end): the bind-mounted .deb cache is root's.
echo 'APT::Sandbox::User "root";' >"$ROOT/etc/apt/apt.conf.d/99virtstack-build"
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/90virtstack-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF
# No daemon may start inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
# Small initrd: only what finding and mounting the root disk needs.
mkdir -p "$ROOT/etc/initramfs-tools/conf.d"
cat >"$ROOT/etc/initramfs-tools/conf.d/virtstack.conf" <<'EOF'
MODULES=list
COMPRESS=zstd
EOF
printf '%s\n' "${INITRD_MODULES[@]}" >>"$ROOT/etc/initramfs-tools/modules"
cat >"$ROOT/etc/kernel-img.conf" <<'EOF'
do_symlinks = no
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

# ---- 3. packages (with bookworm-updates and -security applied) --------------
log "apt-get install ${PACKAGES[*]}"
in_root apt-get update
in_root apt-get -y -o Dpkg::Options::=--force-confold dist-upgrade
in_root apt-get -y -o Dpkg::Options::=--force-confold install "${PACKAGES[@]}"

KVER=$(cd "$ROOT/lib/modules" && ls)
[[ $(wc -w <<<"$KVER") -eq 1 ]] || die "expected one kernel, found: $KVER"
# The kernel boots from outside the disk: keep its modules in step with it.
in_root apt-mark hold linux-image-cloud-amd64 "linux-image-$KVER"

# ---- 4. system configuration ----------------------------------------------
log "configuring rootfs (kernel $KVER)"
cat >"$ROOT/etc/fstab" <<EOF
# <file system>        <mount point> <type> <options>                   <dump> <pass>
LABEL=$FS_LABEL        /             ext4   rw,noatime,errors=remount-ro 0      1
EOF
echo virtstack-guest >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	virtstack-guest
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF

# cloud-init: NoCloud only (seed ISO labelled cidata, or ds=nocloud on the
# kernel cmdline), network rendered for systemd-networkd.
cat >"$ROOT/etc/cloud/cloud.cfg.d/90_virtstack.cfg" <<'EOF'
# virtstack guest image defaults
datasource_list: [ NoCloud ]
system_info:
  network:
    renderers: [ networkd ]
# RSA host key generation is slow under TCG emulation; user-data may override.
ssh_genkeytypes: [ ed25519, ecdsa ]
# C.UTF-8 needs no locale-gen (Debian's locale-gen ignores cloud-init's
# argument, so other locales must also be enabled in /etc/locale.gen).
locale: C.UTF-8
# No grub in this image (direct kernel boot): skip its debconf step (~1 s).
grub_dpkg:
  enabled: false
EOF
echo LANG=C.UTF-8 >"$ROOT/etc/default/locale"

# Wait for one configured link, not all of them, before network-online.target.
mkdir -p "$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat >"$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d/virtstack.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=60
EOF

# Units that only cost boot time or I/O on a short-lived VM.
# The role services start only where cloud-init enables them (a load balancer, a container
# host, a registry): everywhere else they would only slow the boot.
for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
  e2scrub_all.timer e2scrub_reap.service fstrim.timer \
  haproxy.service docker.service docker.socket containerd.service docker-registry.service; do
  if [[ -e "$ROOT/lib/systemd/system/$unit" ]]; then in_root systemctl disable "$unit"; fi
done
in_root systemctl enable systemd-networkd.service systemd-resolved.service
# Locked root password: log in with what cloud-init user-data provides.
in_root passwd -l root

# ---- 5. kernel and initrd out, trim, filesystem image --------------------------
[[ -f "$ROOT/boot/vmlinuz-$KVER" && -f "$ROOT/boot/initrd.img-$KVER" ]] ||
  die "kernel or initrd missing in /boot"
in_root_out lsinitramfs "/boot/initrd.img-$KVER" >"$WORK/initrd.list" ||
  die "lsinitramfs failed"
for m in "${INITRD_MODULES[@]}"; do
  grep -Eq "/${m//_/[_-]}\.ko(\.[a-z]+)?$" "$WORK/initrd.list" ||
    grep -Eq "/${m//_/[_-]}\.ko$" "$ROOT/lib/modules/$KVER/modules.builtin" ||
    die "initrd has no $m (neither module nor built in)"
done
cp "$ROOT/boot/vmlinuz-$KVER" "$STAGE/vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$STAGE/initrd.img"
# shellcheck disable=SC2016  # dpkg-query format, not shell
in_root_out dpkg-query -W -f '${Package}\t${Version}\n' >"$STAGE/packages.txt"

rm -f "$ROOT/usr/sbin/policy-rc.d" "$ROOT/etc/apt/apt.conf.d/99virtstack-build"
rm -f "$ROOT"/etc/ssh/ssh_host_*          # cloud-init generates per-instance keys
: >"$ROOT/etc/machine-id"                 # systemd generates it on first boot
rm -f "$ROOT/var/lib/dbus/machine-id"
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$ROOT/etc/resolv.conf"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin \
  "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old \
  "$ROOT"/var/lib/cloud/* "$ROOT"/tmp/* "$ROOT"/var/tmp/*
find "$ROOT/var/log" -type f -delete
# Files dpkg installed before the nodoc rules existed (debootstrap's base).
find "$ROOT/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/*
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

log "mke2fs -t ext4 -d rootfs ($DISK_SIZE), qemu-img convert -O qcow2 -c"
truncate -s "$DISK_SIZE" "$WORK/disk.raw"
mke2fs -q -F -t ext4 -L "$FS_LABEL" -m 1 -d "$ROOT" "$WORK/disk.raw" >>"$BUILD_LOG" 2>&1 ||
  die "mke2fs failed"
qemu-img convert -f raw -O qcow2 -c "$WORK/disk.raw" "$STAGE/disk.qcow2"
rm -f "$WORK/disk.raw"

# ---- 6. manifest, then publish atomically ----------------------------------
file_json() {
  local f=$1
  printf '"%s": {"size": %s, "sha256": "%s"}' "$f" \
    "$(stat -c %s "$STAGE/$f")" "$(sha256sum "$STAGE/$f" | cut -d' ' -f1)"
}
json_str() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
# The cmdline as one map in the shape of pulumi_libvirt Domain "cmdlines"
# entries: key=value pairs, and flags joined under the key "_".
cmdline_map() {
  local arg out="" flags=""
  for arg in $1; do
    if [[ $arg == *=* ]]; then
      out+="${out:+, }$(json_str "${arg%%=*}"): $(json_str "${arg#*=}")"
    else
      flags+="${flags:+ }$arg"
    fi
  done
  [[ -z $flags ]] || out+="${out:+, }\"_\": $(json_str "$flags")"
  printf '{%s}' "$out"
}
ELAPSED=$(($(date +%s) - START))
{
  printf '{\n'
  printf '  "name": "virtstack-guest",\n'
  printf '  "version": %s,\n' "$(json_str "$IMAGE_VERSION")"
  printf '  "distribution": "debian %s %s",\n' "$SUITE" "$ARCH"
  printf '  "recipe_sha256": "%s",\n' "$RECIPE_SHA256"
  printf '  "built_at": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf '  "build_seconds": %s,\n' "$ELAPSED"
  printf '  "kernel_version": %s,\n' "$(json_str "$KVER")"
  printf '  "kernel_cmdline": %s,\n' "$(json_str "$KERNEL_CMDLINE")"
  printf '  "kernel_cmdline_map": %s,\n' "$(cmdline_map "$KERNEL_CMDLINE")"
  printf '  "root_fs_label": %s,\n' "$(json_str "$FS_LABEL")"
  printf '  "disk_format": "qcow2",\n'
  printf '  "disk_virtual_size": %s,\n' "$(qemu-img info --output=json "$STAGE/disk.qcow2" | sed -n 's/.*"virtual-size": *\([0-9]*\).*/\1/p' | head -n1)"
  printf '  "cloud_init": %s,\n' "$(json_str "$(awk '$1=="cloud-init"{print $2}' "$STAGE/packages.txt")")"
  printf '  "files": {\n    %s,\n    %s,\n    %s\n  }\n' \
    "$(file_json disk.qcow2)" "$(file_json vmlinuz)" "$(file_json initrd.img)"
  printf '}\n'
} >"$STAGE/manifest.json.tmp"
cp "$BUILD_LOG" "$STAGE/build.log"
mv "$STAGE/manifest.json.tmp" "$STAGE/manifest.json"

rm -rf "$OUT"          # an incomplete leftover without manifest, if any
mv "$STAGE" "$OUT"
log "done in ${ELAPSED}s: $(du -sh "$OUT/disk.qcow2" | cut -f1) disk.qcow2"
echo "$OUT"
