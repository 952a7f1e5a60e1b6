#!/usr/bin/env bash
# The guest image's bootable variant: the same root filesystem on a partitioned disk that
# boots from its own bootloader (SYSLINUX from BIOS), like a cloud image.
#
#   images/guest/bootable.sh [GUEST_DIR [OUT_DIR]]
#
# GUEST_DIR defaults to the image build.sh builds (or reuses), OUT_DIR to GUEST_DIR-bootable.
# Disk (MBR): partition 1, FAT16 /boot (active) with SYSLINUX, the guest's vmlinuz and
# initrd.img and syslinux.cfg; partition 2, the guest's ext4 root filesystem as it is.
# Made from plain files (no loop devices, no mounts): sfdisk on the image file, mkfs.fat
# and mtools at the partition's offset, `syslinux --offset`, the MBR code dd'ed in.
# Progress goes to stderr; the last line of stdout is OUT_DIR.
set -euo pipefail

# Not a build.sh option: its recipe digest would change and every cached guest warn.
GUEST=${1:-$(bash "$(dirname "${BASH_SOURCE[0]}")/build.sh" | tail -n1)}
OUT=${2:-$GUEST-bootable}
BOOT_MIB=64             # vmlinuz + initrd.img take ~20 MiB
MBR_BIN=/usr/lib/syslinux/mbr/mbr.bin
OUTPUTS=(disk.qcow2 manifest.json)

log() { printf '[bootable.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
RECIPE_SHA256=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
# Built, and by this recipe: a changed recipe rebuilds (it takes seconds, not minutes).
have_outputs() {
  local f
  for f in "${OUTPUTS[@]}"; do [[ -s "$1/$f" ]] || return 1; done
  grep -q "\"recipe_sha256\": \"$RECIPE_SHA256\"" "$1/manifest.json"
}

if have_outputs "$OUT"; then
  log "cached: $OUT"
  echo "$OUT"
  exit 0
fi
for tool in qemu-img sfdisk mkfs.fat mcopy syslinux flock; do
  command -v "$tool" >/dev/null ||
    die "missing $tool (apt-get install -y qemu-utils fdisk dosfstools mtools syslinux syslinux-common)"
done
[[ -r $MBR_BIN ]] || die "missing $MBR_BIN (apt-get install -y syslinux-common)"

mkdir -p "$(dirname "$OUT")"
exec 9>"$(dirname "$OUT")/.lock-$(basename "$OUT")"
flock 9
if have_outputs "$OUT"; then
  log "cached (built concurrently): $OUT"
  echo "$OUT"
  exit 0
fi

WORK=$(mktemp -d "$OUT.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "building $OUT from $GUEST"

LABEL=$(sed -n 's/^ *"root_fs_label": "\(.*\)",$/\1/p' "$GUEST/manifest.json")
GUEST_CMDLINE=$(sed -n 's/^ *"kernel_cmdline": "\(.*\)",$/\1/p' "$GUEST/manifest.json")
[[ -n $LABEL && -n $GUEST_CMDLINE ]] || die "no root_fs_label or kernel_cmdline in $GUEST/manifest.json"
# The root filesystem by its label (the image's fstab names it so too): on this disk
# it is /dev/vda2, and on another bus another name.
CMDLINE=${GUEST_CMDLINE/root=\/dev\/vda/root=LABEL=$LABEL}

MiB=$((1024 * 1024))
qemu-img convert -f qcow2 -O raw "$GUEST/disk.qcow2" "$WORK/root.raw"
ROOT_BYTES=$(stat -c %s "$WORK/root.raw")
BOOT_START=$MiB
ROOT_START=$((BOOT_START + BOOT_MIB * MiB))
truncate -s $((ROOT_START + ROOT_BYTES)) "$WORK/disk.raw"

# type e: FAT16 (LBA); the boot partition is the active one, which mbr.bin boots.
sfdisk -q "$WORK/disk.raw" <<PARTS
label: dos
start=$((BOOT_START / 512)), size=$((BOOT_MIB * MiB / 512)), type=e, bootable
start=$((ROOT_START / 512)), size=$((ROOT_BYTES / 512)), type=83
PARTS
mkfs.fat -F 16 -n VSBOOT --offset $((BOOT_START / 512)) "$WORK/disk.raw" $((BOOT_MIB * 1024)) >&2
cat >"$WORK/syslinux.cfg" <<CFG
SERIAL 0 115200
DEFAULT virtstack
PROMPT 0
TIMEOUT 0
LABEL virtstack
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND $CMDLINE
CFG
mcopy -i "$WORK/disk.raw@@$BOOT_START" "$GUEST/vmlinuz" "$GUEST/initrd.img" "$WORK/syslinux.cfg" ::/
syslinux --install --offset "$BOOT_START" "$WORK/disk.raw"
dd if="$MBR_BIN" of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$WORK/root.raw" of="$WORK/disk.raw" bs=1M seek=$((ROOT_START / MiB)) conv=notrunc,sparse status=none
rm -f "$WORK/root.raw"
log "qemu-img convert -O qcow2 -c"
qemu-img convert -f raw -O qcow2 -c "$WORK/disk.raw" "$WORK/disk.qcow2"
rm -f "$WORK/disk.raw"

json_str() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
{
  printf '{\n'
  printf '  "name": "virtstack-guest-bootable",\n'
  printf '  "base": %s,\n' "$(json_str "$GUEST")"
  printf '  "recipe_sha256": "%s",\n' "$RECIPE_SHA256"
  printf '  "base_disk_sha256": "%s",\n' "$(sed -n 's/.*"disk.qcow2": {[^}]*"sha256": "\([0-9a-f]*\)".*/\1/p' "$GUEST/manifest.json")"
  printf '  "boot": "disk",\n'
  printf '  "bootloader": "syslinux",\n'
  printf '  "kernel_cmdline": %s,\n' "$(json_str "$CMDLINE")"
  printf '  "root_fs_label": %s,\n' "$(json_str "$LABEL")"
  printf '  "disk_format": "qcow2",\n'
  printf '  "built_at": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf '  "files": {"disk.qcow2": {"size": %s, "sha256": "%s"}}\n' \
    "$(stat -c %s "$WORK/disk.qcow2")" "$(sha256sum "$WORK/disk.qcow2" | cut -d' ' -f1)"
  printf '}\n'
} >"$WORK/manifest.json"
rm -rf "$OUT"
mkdir -p "$OUT"
mv "$WORK/disk.qcow2" "$WORK/manifest.json" "$OUT/"
log "done: $OUT"
echo "$OUT"
