#!/usr/bin/env bash
# Boot the virtstack guest image under libvirt (TCG, no KVM) and prove that
# cloud-init ran, the network works and qemu-guest-agent answers.
#
#   images/guest/smoke.sh
#
# Everything it creates is named vs-guest-smoke-<id> and removed on exit
# (success, failure or Ctrl-C): the domain, a NAT network with its own bridge,
# a dir storage pool with the uploaded image, kernel, initrd, seed ISO and a
# qcow2 overlay, the phone_home listener and the temporary directory.
#
# Environment:
#   LIBVIRT_DEFAULT_URI  default qemu:///system
#   SMOKE_TIMEOUT        seconds to wait for cloud-init (default 900)
#   SMOKE_MEMORY_MIB     guest memory (default 1024)
#   SMOKE_VCPUS          guest vCPUs (default 1)
#   SMOKE_CPU_XML        optional <cpu> element (default: libvirt's, qemu64 under TCG)
#   SMOKE_KEEP_LOGS=DIR  copy the serial log and results to DIR before cleanup
#   VIRTSTACK_CACHE      image cache (see build.sh)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LIBVIRT_DEFAULT_URI=${LIBVIRT_DEFAULT_URI:-qemu:///system}
TIMEOUT=${SMOKE_TIMEOUT:-900}
MEMORY_MIB=${SMOKE_MEMORY_MIB:-1024}
VCPUS=${SMOKE_VCPUS:-1}
CPU_XML=${SMOKE_CPU_XML:-}            # e.g. "<cpu mode='maximum'/>"; default qemu64
POOL_PARENT=/var/lib/libvirt/images   # readable by the qemu user (unlike $HOME)

log() { printf '[smoke.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

for tool in virsh genisoimage ssh ssh-keygen python3 ip; do
  command -v "$tool" >/dev/null || die "missing $tool"
done

# ---- the image (built or cached) ---------------------------------------------
IMAGE_DIR=$("$HERE/build.sh" | tail -n 1)
[[ -s $IMAGE_DIR/manifest.json ]] || die "build.sh gave no image dir"
CMDLINE=$(sed -n 's/^ *"kernel_cmdline": "\(.*\)",$/\1/p' "$IMAGE_DIR/manifest.json")
[[ -n $CMDLINE ]] || die "no kernel_cmdline in manifest"
log "image: $IMAGE_DIR"

# ---- names ----------------------------------------------------------------
SUFFIX=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
NAME=vs-guest-smoke-$SUFFIX        # domain, pool, network, instance-id
BRIDGE=vsgs$SUFFIX                 # <= 15 characters
POOL_DIR=$POOL_PARENT/$NAME
WORK=$(mktemp -d "/tmp/$NAME.XXXX")
SERIAL_LOG=$WORK/serial.log
created_pool='' created_net='' created_dom='' listener_pid=''

cleanup() {
  local rc=$?
  set +e
  log "cleanup ($NAME)"
  if [[ -n ${SMOKE_KEEP_LOGS:-} ]]; then
    mkdir -p "$SMOKE_KEEP_LOGS" && cp -a "$WORK"/*.log "$WORK"/*.txt "$SMOKE_KEEP_LOGS"/ 2>/dev/null
  fi
  [[ -n $listener_pid ]] && kill "$listener_pid" 2>/dev/null && wait "$listener_pid" 2>/dev/null
  if [[ -n $created_dom ]]; then
    virsh destroy "$NAME" >/dev/null 2>&1   # fails harmlessly when not running
    virsh undefine "$NAME" >/dev/null
  fi
  if [[ -n $created_pool ]]; then
    for vol in $(virsh vol-list "$NAME" 2>/dev/null | awk 'NR > 2 && $1 { print $1 }'); do
      virsh vol-delete --pool "$NAME" "$vol" >/dev/null
    done
    virsh pool-destroy "$NAME" >/dev/null
    virsh pool-undefine "$NAME" >/dev/null
    rm -rf "$POOL_DIR"
  fi
  if [[ -n $created_net ]]; then
    virsh net-destroy "$NAME" >/dev/null
    virsh net-undefine "$NAME" >/dev/null
  fi
  rm -rf "$WORK"
  # Report anything of ours that survived (no pipes: pipefail + grep -q).
  grep -qx "$NAME" <<<"$(virsh list --all --name)" && log "LEAK: domain $NAME"
  grep -qx "$NAME" <<<"$(virsh net-list --all --name)" && log "LEAK: network $NAME"
  grep -qx "$NAME" <<<"$(virsh pool-list --all --name)" && log "LEAK: pool $NAME"
  [[ -e $POOL_DIR ]] && log "LEAK: $POOL_DIR"
  if [[ $rc -eq 0 ]]; then log "PASS"; else log "FAILED (rc=$rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- network: NAT, own bridge, first free 192.168.N.0/24 from 250 -------------
used_nets=$( (ip -4 -o addr; ip -4 route; for n in $(virsh net-list --all --name); do
  virsh net-dumpxml "$n"; done) 2>/dev/null)
SUBNET=
for n in 250 251 252 253 249 248 247; do
  grep -q "192\.168\.$n\." <<<"$used_nets" || { SUBNET=192.168.$n; break; }
done
[[ -n $SUBNET ]] || die "no free 192.168.x.0/24 subnet"
HOST_IP=$SUBNET.1
cat >"$WORK/net.xml" <<EOF
<network>
  <name>$NAME</name>
  <forward mode='nat'/>
  <bridge name='$BRIDGE' stp='off' delay='0'/>
  <ip address='$HOST_IP' netmask='255.255.255.0'>
    <dhcp><range start='$SUBNET.10' end='$SUBNET.99'/></dhcp>
  </ip>
</network>
EOF
virsh net-define "$WORK/net.xml" >/dev/null && created_net=1
virsh net-start "$NAME" >/dev/null
log "network $NAME: bridge $BRIDGE, $SUBNET.0/24"

# ---- phone_home listener on the bridge address -------------------------------
PORT=$((20000 + RANDOM % 20000))
cat >"$WORK/listener.py" <<'EOF'
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[3], "ab") as f:
            f.write(self.path.encode() + b" " + body + b"\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
EOF
python3 "$WORK/listener.py" "$HOST_IP" "$PORT" "$WORK/phone_home.txt" &
listener_pid=$!

# ---- seed ISO (NoCloud) ----------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C "$NAME" -f "$WORK/id_ed25519"
mkdir "$WORK/seed"
cat >"$WORK/seed/meta-data" <<EOF
instance-id: $NAME
local-hostname: $NAME
EOF
cat >"$WORK/seed/user-data" <<EOF
#cloud-config
ssh_authorized_keys:
  - $(cat "$WORK/id_ed25519.pub")
runcmd:
  - [ sh, -c, 'echo "VIRTSTACK-CLOUD-INIT-DONE $NAME uptime=\$(cut -d" " -f1 /proc/uptime)" > /dev/ttyS0' ]
phone_home:
  url: http://$HOST_IP:$PORT/\$INSTANCE_ID
  post: [ instance_id, hostname ]
  tries: 3
final_message: "VIRTSTACK-CLOUD-INIT-FINAL $NAME up \$uptime s"
EOF
genisoimage -quiet -output "$WORK/seed.iso" -volid cidata -joliet -rock \
  "$WORK/seed/user-data" "$WORK/seed/meta-data"

# ---- pool and volumes (uploaded like Pulumi's libvirt Volume does) -------------
virsh pool-define-as "$NAME" dir --target "$POOL_DIR" >/dev/null && created_pool=1
virsh pool-build "$NAME" >/dev/null
virsh pool-start "$NAME" >/dev/null
upload() { # volume-name file format
  local size
  size=$(stat -c %s "$2")
  virsh vol-create-as "$NAME" "$1" "$size" --format "$3" >/dev/null
  virsh vol-upload --pool "$NAME" "$1" "$2" >/dev/null
}
upload base.qcow2 "$IMAGE_DIR/disk.qcow2" qcow2
upload vmlinuz "$IMAGE_DIR/vmlinuz" raw
upload initrd.img "$IMAGE_DIR/initrd.img" raw
upload seed.iso "$WORK/seed.iso" raw
virsh pool-refresh "$NAME" >/dev/null
# Per-VM overlay, larger than the image: cloud-init grows the ext4 to fill it.
virsh vol-create-as "$NAME" root.qcow2 4G --format qcow2 \
  --backing-vol base.qcow2 --backing-vol-format qcow2 >/dev/null
vol() { virsh vol-path --pool "$NAME" "$1"; }

# ---- domain ----------------------------------------------------------------
cat >"$WORK/domain.xml" <<EOF
<domain type='qemu'>
  <name>$NAME</name>
  <memory unit='MiB'>$MEMORY_MIB</memory>
  <vcpu>$VCPUS</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$(vol vmlinuz)</kernel>
    <initrd>$(vol initrd.img)</initrd>
    <cmdline>$CMDLINE</cmdline>
  </os>
  <features><acpi/><apic/></features>
  $CPU_XML
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='$NAME' volume='root.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='volume' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source pool='$NAME' volume='seed.iso'/>
      <target dev='hdd' bus='ide'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <source network='$NAME'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <log file='$SERIAL_LOG' append='off'/>
      <target port='0'/>
    </serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
virsh define "$WORK/domain.xml" >/dev/null && created_dom=1

# ---- boot and wait ---------------------------------------------------------
log "starting $NAME (TCG, $VCPUS vCPU, $MEMORY_MIB MiB); waiting up to ${TIMEOUT}s for cloud-init"
t0=$(date +%s.%N)
virsh start "$NAME" >/dev/null
since() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
t_agent='' t_login='' t_done=''
while :; do
  [[ $(virsh domstate "$NAME") == running ]] || die "domain stopped: $(virsh domstate "$NAME")"
  if [[ -z $t_agent ]] && virsh qemu-agent-command "$NAME" '{"execute":"guest-ping"}' >/dev/null 2>&1; then
    t_agent=$(since); log "guest agent answers after ${t_agent}s"
  fi
  if [[ -z $t_login ]] && grep -qa 'login:' "$SERIAL_LOG" 2>/dev/null; then
    t_login=$(since); log "login prompt after ${t_login}s"
  fi
  if grep -qa "VIRTSTACK-CLOUD-INIT-DONE $NAME" "$SERIAL_LOG" 2>/dev/null; then
    t_done=$(since); break
  fi
  [[ $(awk -v a="$t0" -v b="$(date +%s)" 'BEGIN { print (b - a > '"$TIMEOUT"') }') == 1 ]] &&
    { tail -n 60 "$SERIAL_LOG" >&2; die "no cloud-init marker after ${TIMEOUT}s"; }
  sleep 1
done
log "cloud-init runcmd marker after ${t_done}s: $(grep -a 'VIRTSTACK-CLOUD-INIT-DONE' "$SERIAL_LOG" | tr -d '\r' | tail -n 1)"
# The final message follows the marker (phone_home runs in between).
for _ in $(seq 60); do
  grep -qa 'VIRTSTACK-CLOUD-INIT-FINAL' "$SERIAL_LOG" && break
  sleep 1
done
t_final=$(since)
log "cloud-init final message after ${t_final}s: $(grep -a 'VIRTSTACK-CLOUD-INIT-FINAL' "$SERIAL_LOG" | tr -d '\r' | tail -n 1)"

# ---- checks from outside -----------------------------------------------------
if [[ -z $t_agent ]]; then
  for _ in $(seq 60); do
    virsh qemu-agent-command "$NAME" '{"execute":"guest-ping"}' >/dev/null 2>&1 && break
    sleep 1
  done
fi
virsh qemu-agent-command "$NAME" '{"execute":"guest-ping"}' || die "guest-ping failed"
virsh qemu-agent-command "$NAME" '{"execute":"guest-get-osinfo"}' ||
  die "guest-get-osinfo failed"
virsh domifaddr "$NAME" --source agent | tee "$WORK/domifaddr.txt"
GUEST_IP=$(awk '$1 != "lo" && $3 == "ipv4" { sub("/.*", "", $4); print $4; exit }' "$WORK/domifaddr.txt")
[[ $GUEST_IP == "$SUBNET".* ]] || die "no guest address from the agent"
virsh domifaddr "$NAME" --source lease

grep -q "^/$NAME " "$WORK/phone_home.txt" 2>/dev/null ||
  die "no phone_home POST from the guest"
log "phone_home received: $(cut -c1-120 "$WORK/phone_home.txt")"

SSH=(ssh -i "$WORK/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o ConnectTimeout=20 -o LogLevel=ERROR "debian@$GUEST_IP")
"${SSH[@]}" 'set -x; cloud-init status --long; systemd-analyze; systemd-analyze blame | head -n 15;
  df -h /; ip -brief addr; resolvectl status | head -n 8; systemctl is-system-running;
  systemd-analyze critical-chain cloud-final.service; cloud-init analyze blame | head -n 25;
  systemctl --failed --no-legend; cat /run/cloud-init/result.json; uptime' 2>&1 | tee "$WORK/guest-report.txt"
"${SSH[@]}" 'cat /var/log/cloud-init.log' >"$WORK/cloud-init.log" 2>&1 || true
grep -q '^status: done' "$WORK/guest-report.txt" || die "cloud-init status is not done"
grep -q '"errors": \[\]' "$WORK/guest-report.txt" || die "cloud-init reported errors"

cat >"$WORK/timings.txt" <<EOF
image=$IMAGE_DIR
guest_agent_ping_s=${t_agent:-}
login_prompt_s=${t_login:-}
cloud_init_runcmd_marker_s=$t_done
cloud_init_final_s=$t_final
EOF
cat "$WORK/timings.txt"
echo "serial log (last 25 lines):"
tail -n 25 "$SERIAL_LOG" | tr -d '\r'
