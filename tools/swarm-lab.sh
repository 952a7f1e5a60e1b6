#!/usr/bin/env bash
# swarm-lab: a multi-node Docker Swarm on this one machine, for tests and fault injection.
#
#   tools/swarm-lab.sh up [N]        start N (default 3) Docker engines and join them into one
#                                    Swarm; on a running lab it prints the state and succeeds,
#                                    after a partial start it completes what is missing
#   tools/swarm-lab.sh down          stop everything the lab started and remove it all; safe
#                                    to run twice and after a partial `up`
#   tools/swarm-lab.sh status        daemons and `docker node ls` from a manager, or
#                                    "not running" (exit status 1)
#   tools/swarm-lab.sh env           shell lines to eval: VIRTSTACK_SWARM_NODES (node sockets,
#                                    space-separated unix:// URLs), VIRTSTACK_SWARM_MANAGER,
#                                    VIRTSTACK_SWARM_ADDRS, VIRTSTACK_SWARM_MANAGER_ADDR,
#                                    VIRTSTACK_SWARM_HOST_ADDR, VIRTSTACK_SWARM_REGISTRY, ...
#   tools/swarm-lab.sh kill NODE     SIGKILL one node's dockerd (NODE: 3 or vsn3)
#   tools/swarm-lab.sh start NODE    start that dockerd again and wait until it rejoined
#   tools/swarm-lab.sh load IMAGE... copy images from the main engine into every running node
#
# Settings (environment):
#   VIRTSTACK_SWARM_PREFIX    node and namespace name prefix (default vsn: nodes vsn1..vsnN,
#                             the bridge namespace vsn-switch, the host veth vsn-h); letters
#                             and digits, ending in a letter, at most 8 characters
#   VIRTSTACK_SWARM_SUBNET    first three octets of the lab's /24 (default 10.231.0): the
#                             host side of the bridge is .1, node i is .(10+i)
#   VIRTSTACK_SWARM_DIR       all state (default /var/lib/virtstack-swarm/<prefix>)
#   VIRTSTACK_SWARM_MANAGERS  how many nodes are managers, 1 to 3 (default 1: node 1)
#   VIRTSTACK_SWARM_INSECURE  more insecure registries (space or comma separated) besides the
#                             host-side registry address <subnet>.1:5999
#
# Topology: one network namespace per node and one ("switch") holding a bridge; each node's
# eth0 is a veth onto that bridge and the host joins it with one more veth. The bridge is not
# on the host because the main dockerd sets the host's FORWARD policy to DROP. Each node's
# dockerd runs in its namespace with its own hostname (unshare --uts), its own config file,
# data root, exec root, socket and cgroup parent (/<node>), and sees the cgroup hierarchies
# remounted privately (ip netns exec hides them). The main dockerd, its containers and the
# host firewall are never touched; only processes the lab started are stopped, by PID.
# Needs root, iproute2, util-linux and Debian's docker.io (dockerd 20.10).
set -euo pipefail

PREFIX=${VIRTSTACK_SWARM_PREFIX:-vsn}
SUBNET=${VIRTSTACK_SWARM_SUBNET:-10.231.0}
DIR=${VIRTSTACK_SWARM_DIR:-/var/lib/virtstack-swarm/$PREFIX}
MANAGERS=${VIRTSTACK_SWARM_MANAGERS:-1}
INSECURE=${VIRTSTACK_SWARM_INSECURE:-}
REGISTRY_PORT=5999
MAX_NODES=31
SELF=$(readlink -f "$0")

die() { echo "swarm-lab: $*" >&2; exit 1; }
say() { echo "swarm-lab: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[[ $PREFIX =~ ^[a-z]([a-z0-9]{0,6}[a-z])?$ ]] ||
    die "VIRTSTACK_SWARM_PREFIX '$PREFIX': letters and digits, ending in a letter, at most 8"
[[ $SUBNET =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] ||
    die "VIRTSTACK_SWARM_SUBNET '$SUBNET': three octets, like 10.231.0"
[[ $DIR =~ ^/[A-Za-z0-9._/-]+$ ]] || die "VIRTSTACK_SWARM_DIR '$DIR': an absolute plain path"
[[ $MANAGERS =~ ^[1-3]$ ]] || die "VIRTSTACK_SWARM_MANAGERS '$MANAGERS': 1, 2 or 3"

SWITCH=$PREFIX-switch
HOSTVETH=$PREFIX-h
LABENV=$DIR/lab.env
PIDS=$DIR/pids
NODES=0

# --- names and addresses ---------------------------------------------------------------
node() { echo "$PREFIX$1"; }
ndir() { echo "$DIR/$PREFIX$1"; }
sock() { echo "$DIR/$PREFIX$1/docker.sock"; }
addr() { echo "$SUBNET.$((10 + $1))"; }
host_addr() { echo "$SUBNET.1"; }
registry() { echo "$SUBNET.1:$REGISTRY_PORT"; }
dk() { local i=$1; shift; docker -H "unix://$(sock "$i")" "$@"; }

# The recorded settings of an existing lab win over the environment.
load_lab() {
    [ -f "$LABENV" ] || return 1
    # shellcheck source=/dev/null
    . "$LABENV"
    NODES=${LAB_NODES:?} SUBNET=${LAB_SUBNET:?} MANAGERS=${LAB_MANAGERS:?}
    INSECURE=${LAB_INSECURE:-}
}

# node_index NODE: 3 or vsn3 -> 3, within the lab.
node_index() {
    local n=${1#"$PREFIX"}
    if ! [[ $n =~ ^[0-9]+$ ]] || [ "$((10#$n))" -lt 1 ] || [ "$((10#$n))" -gt "$NODES" ]; then
        die "no node '$1' in lab $PREFIX (nodes 1..$NODES)"
    fi
    echo "$((10#$n))"
}

# --- processes ----------------------------------------------------------------------------
cmdline() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true; }

# daemon_pid I: the PID of node I's dockerd if it runs (checked against its command line).
daemon_pid() {
    local i=$1 pid nd
    nd=$(ndir "$i")
    for pid in "$(cat "$nd/docker.pid" 2>/dev/null || true)" \
               "$(awk -v n="$(node "$i")" '$1 == n { print $2 }' "$PIDS" 2>/dev/null || true)"; do
        [[ $pid =~ ^[0-9]+$ ]] || continue
        case " $(cmdline "$pid") " in
            *" --pidfile $nd/docker.pid "*|*" __exec $(node "$i") "*) echo "$pid"; return 0 ;;
        esac
    done
    return 1
}

record_pid() {
    local name=$1 pid=$2
    { grep -v "^$name " "$PIDS" 2>/dev/null || true; echo "$name $pid"; } >"$PIDS.new"
    mv "$PIDS.new" "$PIDS"
}

# wait_gone SECONDS PID...: until none of the PIDs exists; fails if some still do.
wait_gone() {
    local limit=$1 pid alive; shift
    local end=$((SECONDS + limit))
    while :; do
        alive=0
        for pid in "$@"; do [ -d "/proc/$pid" ] && alive=1; done
        [ "$alive" = 0 ] && return 0
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.2
    done
}

# --- cgroups ------------------------------------------------------------------------------
# The host's cgroup layout, to remount inside a node's namespace: "v2", or "v1" plus entries
# kind|path|options for each hierarchy under /sys/fs/cgroup (and the symlinks between them).
cgroup_layout() {
    local fs entries=() name target ctrls
    fs=$(stat -fc %T /sys/fs/cgroup)
    case $fs in
        cgroup2fs) CG_MODE=v2; CG_ENTRIES=""; return ;;
        tmpfs) ;;
        *) die "unknown cgroup layout: /sys/fs/cgroup is $fs" ;;
    esac
    ctrls=$(awk '!/^#/ { print $1 }' /proc/cgroups | paste -sd' ')
    while read -r name kind opts; do
        entries+=("$kind|$name|$opts")
    done < <(awk -v ctrls="$ctrls" '
        BEGIN { n = split(ctrls, c, " "); for (i = 1; i <= n; i++) known[c[i]] = 1 }
        {
            for (i = 7; $i != "-"; i++) ;
            fstype = $(i + 1); split($(i + 3), o, ",")
            if ($5 !~ "^/sys/fs/cgroup/[^/]+$" || (fstype != "cgroup" && fstype != "cgroup2")) next
            keep = ""
            for (k in o) if (o[k] in known || o[k] ~ /^name=/) keep = keep (keep ? "," : "") o[k]
            sub("^/sys/fs/cgroup/", "", $5)
            print $5, fstype, (fstype == "cgroup2" ? "-" : keep)
        }' /proc/self/mountinfo)
    for name in /sys/fs/cgroup/*; do
        [ -L "$name" ] || continue
        target=$(readlink "$name")
        entries+=("link|${name#/sys/fs/cgroup/}|$target")
    done
    [ "${#entries[@]}" -gt 0 ] || die "no cgroup hierarchies under /sys/fs/cgroup"
    CG_MODE=v1
    CG_ENTRIES=${entries[*]}
}

# Inside the node's namespaces (called by ip netns exec + unshare --uts): own hostname, a
# resolv.conf naming the host side of the bridge (the host's resolver is out of reach: without
# this every pull attempt of a local image waits for DNS timeouts; with it lookups fail at once
# unless something serves DNS there), the cgroup hierarchies back on /sys/fs/cgroup (all
# private to this mount namespace), then dockerd.
node_exec() {
    local name=$1 entry kind path opts; shift
    hostname "$name"
    mount --bind "$VSL_RESOLV" /etc/resolv.conf
    if [ "$VSL_CG_MODE" = v2 ]; then
        mount -t cgroup2 cgroup2 /sys/fs/cgroup
    else
        mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
        for entry in $VSL_CG_ENTRIES; do
            IFS='|' read -r kind path opts <<<"$entry"
            case $kind in
                cgroup) mkdir -p "/sys/fs/cgroup/$path"
                        mount -t cgroup -o "$opts" cgroup "/sys/fs/cgroup/$path" ;;
                cgroup2) mkdir -p "/sys/fs/cgroup/$path"
                         mount -t cgroup2 cgroup2 "/sys/fs/cgroup/$path" ;;
                link) ln -s "$opts" "/sys/fs/cgroup/$path" ;;
            esac
        done
    fi
    exec dockerd "$@"
}

# cgroup_dirs NAME: the lab's cgroup directories of node NAME, in every hierarchy.
cgroup_dirs() {
    local d
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        [ -d "/sys/fs/cgroup/$1" ] && echo "/sys/fs/cgroup/$1"
        return 0
    fi
    for d in /sys/fs/cgroup/*/"$1"; do
        [ -d "$d" ] && [ ! -L "${d%/*}" ] && echo "$d"
    done
    return 0
}

# --- network ------------------------------------------------------------------------------
ns_exists() { [ -e "/run/netns/$1" ]; }

subnet_check() {
    local used
    ip link show dev "$HOSTVETH" >/dev/null 2>&1 && return 0
    used=$(ip -4 -o addr show | awk -v s="$SUBNET." 'index($4, s) == 1 { print $2 }')
    [ -z "$used" ] || die "subnet $SUBNET.0/24 already on $used: set VIRTSTACK_SWARM_SUBNET"
    [ -z "$(ip -4 route show "$SUBNET.0/24")" ] ||
        die "subnet $SUBNET.0/24 already routed: set VIRTSTACK_SWARM_SUBNET"
}

ensure_switch() {
    ns_exists "$SWITCH" || ip netns add "$SWITCH"
    ip -n "$SWITCH" link set lo up
    ip -n "$SWITCH" link show br0 >/dev/null 2>&1 || ip -n "$SWITCH" link add br0 type bridge
    ip -n "$SWITCH" link set br0 up
    ip link show dev "$HOSTVETH" >/dev/null 2>&1 ||
        ip link add "$HOSTVETH" type veth peer name host netns "$SWITCH"
    ip -n "$SWITCH" link set host master br0 up
    ip addr replace "$(host_addr)/24" dev "$HOSTVETH"
    ip link set "$HOSTVETH" up
}

ensure_node_net() {
    local i=$1 name
    name=$(node "$i")
    ns_exists "$name" || ip netns add "$name"
    ip -n "$name" link set lo up
    ip -n "$name" link show eth0 >/dev/null 2>&1 ||
        ip -n "$SWITCH" link add "$name" type veth peer name eth0 netns "$name"
    ip -n "$SWITCH" link set "$name" master br0 up
    ip -n "$name" addr replace "$(addr "$i")/24" dev eth0
    ip -n "$name" link set eth0 up
    ip -n "$name" route replace default via "$(host_addr)"
}

# --- daemons ------------------------------------------------------------------------------
write_config() {
    local i=$1 regs=() r list
    regs=("$(registry)")
    for r in ${INSECURE//,/ }; do regs+=("$r"); done
    list=$(printf '"%s", ' "${regs[@]}")
    cat >"$(ndir "$i")/daemon.json" <<EOF
{
  "deprecated-key-path": "$(ndir "$i")/key.json",
  "insecure-registries": [${list%, }],
  "default-address-pools": [{"base": "100.$((64 + i)).0.0/16", "size": 24}]
}
EOF
}

# launch I: start node I's dockerd in the background unless it runs.
launch() {
    local i=$1 nd name pid
    nd=$(ndir "$i") name=$(node "$i")
    daemon_pid "$i" >/dev/null && return 0
    mkdir -p "$nd"
    rm -f "$nd/docker.pid"
    write_config "$i"
    echo "nameserver $(host_addr)" >"$nd/resolv.conf"
    VSL_CG_MODE=$CG_MODE VSL_CG_ENTRIES=$CG_ENTRIES VSL_RESOLV=$nd/resolv.conf \
        setsid ip netns exec "$name" unshare --uts "$SELF" __exec "$name" \
        --config-file "$nd/daemon.json" --data-root "$nd/data" --exec-root "$nd/run" \
        --pidfile "$nd/docker.pid" -H "unix://$nd/docker.sock" --bridge none \
        --cgroup-parent "/$name" </dev/null >>"$nd/dockerd.log" 2>&1 &
    pid=$!
    record_pid "$name" "$pid"
}

# wait_daemon I SECONDS: until node I's API answers.
wait_daemon() {
    local i=$1 end=$((SECONDS + $2))
    until dk "$i" version --format '{{.Server.Version}}' >/dev/null 2>&1; do
        if ! daemon_pid "$i" >/dev/null; then
            tail -n 20 "$(ndir "$i")/dockerd.log" >&2 || true
            die "$(node "$i"): dockerd exited (log: $(ndir "$i")/dockerd.log)"
        fi
        [ "$SECONDS" -lt "$end" ] || die "$(node "$i"): dockerd not answering after $2 s"
        sleep 0.1
    done
}

swarm_state() { dk "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo down; }

ensure_swarm() {
    local i state wtoken mtoken token
    if [ "$(swarm_state 1)" != active ]; then
        dk 1 swarm init --advertise-addr "$(addr 1)" --listen-addr "$(addr 1):2377" \
            --default-addr-pool 100.96.0.0/12 --default-addr-pool-mask-length 24 >/dev/null
    fi
    wtoken=$(dk 1 swarm join-token -q worker)
    mtoken=$(dk 1 swarm join-token -q manager)
    for ((i = 2; i <= NODES; i++)); do
        state=$(swarm_state "$i")
        case $state in
            active|pending) continue ;;
            inactive) ;;
            *) die "$(node "$i"): swarm state '$state'" ;;
        esac
        token=$wtoken
        [ "$i" -le "$MANAGERS" ] && token=$mtoken
        dk "$i" swarm join --token "$token" --advertise-addr "$(addr "$i")" \
            --listen-addr "$(addr "$i"):2377" "$(addr 1):2377" >/dev/null
    done
}

# manager: the index of a manager whose daemon answers, for node ls.
manager() {
    local i
    for ((i = 1; i <= MANAGERS && i <= NODES; i++)); do
        [ "$(dk "$i" info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ] &&
            { echo "$i"; return 0; }
    done
    return 1
}

# wait_ready [NAME] SECONDS: until a manager lists all nodes (or node NAME) Ready.
wait_ready() {
    local want=${2:+$1} limit=${2:-$1} m lines
    local end=$((SECONDS + limit))
    while :; do
        if m=$(manager); then
            lines=$(dk "$m" node ls --format '{{.Hostname}} {{.Status}}' 2>/dev/null || true)
            if [ -n "$want" ]; then
                grep -qx "$want Ready" <<<"$lines" && return 0
            elif [ "$(grep -c ' Ready$' <<<"$lines")" -ge "$NODES" ]; then
                return 0
            fi
        fi
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.25
    done
}

# --- commands -----------------------------------------------------------------------------
cmd_up() {
    local want=${1:-3} i t0
    t0=$(now)
    if ! [[ $want =~ ^[0-9]+$ ]] || [ "$want" -lt 1 ] || [ "$want" -gt "$MAX_NODES" ]; then
        die "up N: N from 1 to $MAX_NODES"
    fi
    if load_lab; then
        [ "$want" = "$NODES" ] ||
            say "lab $PREFIX has $NODES nodes, not $want: kept as it is (down first to resize)"
    else
        [ "$MANAGERS" -le "$want" ] || MANAGERS=$want
        NODES=$want
        subnet_check
        mkdir -p "$DIR"
        printf 'LAB_NODES=%s\nLAB_SUBNET=%s\nLAB_MANAGERS=%s\nLAB_INSECURE=%q\n' \
            "$NODES" "$SUBNET" "$MANAGERS" "$INSECURE" >"$LABENV.new"
        mv "$LABENV.new" "$LABENV"
    fi
    cgroup_layout
    ensure_switch
    for ((i = 1; i <= NODES; i++)); do ensure_node_net "$i"; launch "$i"; done
    for ((i = 1; i <= NODES; i++)); do wait_daemon "$i" 90; done
    ensure_swarm
    wait_ready 60 || die "not all $NODES nodes Ready after 60 s (see: $0 status)"
    say "lab $PREFIX up: $NODES nodes in $(since "$t0") s"
    cmd_status
}

cmd_status() {
    local i pid m running=0
    if ! load_lab; then echo "not running"; return 1; fi
    echo "lab $PREFIX: $NODES nodes, $MANAGERS manager(s), state in $DIR"
    for ((i = 1; i <= NODES; i++)); do
        if pid=$(daemon_pid "$i"); then
            running=1
            printf '%-10s %-15s dockerd pid %s, swarm %s\n' "$(node "$i")" "$(addr "$i")" \
                "$pid" "$(swarm_state "$i")"
        else
            printf '%-10s %-15s dockerd not running\n' "$(node "$i")" "$(addr "$i")"
        fi
    done
    if [ "$running" = 0 ]; then echo "not running"; return 1; fi
    if m=$(manager); then
        dk "$m" node ls
    else
        echo "no manager answers"
    fi
}

cmd_env() {
    local i nodes="" addrs=""
    load_lab || die "not running (run: $0 up)"
    for ((i = 1; i <= NODES; i++)); do
        nodes="$nodes unix://$(sock "$i")"
        addrs="$addrs $(addr "$i")"
    done
    echo "export VIRTSTACK_SWARM_PREFIX='$PREFIX'"
    echo "export VIRTSTACK_SWARM_DIR='$DIR'"
    echo "export VIRTSTACK_SWARM_NODES='${nodes# }'"
    echo "export VIRTSTACK_SWARM_ADDRS='${addrs# }'"
    echo "export VIRTSTACK_SWARM_MANAGER='unix://$(sock 1)'"
    echo "export VIRTSTACK_SWARM_MANAGER_ADDR='$(addr 1)'"
    echo "export VIRTSTACK_SWARM_HOST_ADDR='$(host_addr)'"
    echo "export VIRTSTACK_SWARM_REGISTRY='$(registry)'"
}

cmd_kill() {
    local i pid
    load_lab || die "not running"
    i=$(node_index "$1")
    if ! pid=$(daemon_pid "$i"); then say "$(node "$i"): dockerd not running"; return 0; fi
    kill -KILL "$pid"
    wait_gone 10 "$pid" || die "$(node "$i"): dockerd $pid survived SIGKILL"
    say "$(node "$i"): dockerd $pid killed"
}

cmd_start() {
    local i t0
    load_lab || die "not running (run: $0 up)"
    i=$(node_index "$1")
    t0=$(now)
    cgroup_layout
    ensure_switch
    ensure_node_net "$i"
    launch "$i"
    wait_daemon "$i" 120
    say "$(node "$i"): API answers after $(since "$t0") s"
    wait_ready "$(node "$i")" 60 || die "$(node "$i"): not Ready after 60 s"
    say "$(node "$i"): Ready after $(since "$t0") s"
}

cmd_load() {
    local image i t0
    [ "$#" -gt 0 ] || die "load IMAGE..."
    load_lab || die "not running (run: $0 up)"
    for image in "$@"; do
        docker image inspect "$image" >/dev/null 2>&1 || die "no image '$image' on the main engine"
        for ((i = 1; i <= NODES; i++)); do
            daemon_pid "$i" >/dev/null || { say "$(node "$i"): not running, skipped"; continue; }
            t0=$(now)
            docker save "$image" | dk "$i" load >/dev/null
            say "$(node "$i"): loaded $image in $(since "$t0") s"
        done
    done
}

# lab_nodes: every node name of this lab, recorded or found (namespaces, directories).
lab_nodes() {
    local i d
    {
        for ((i = 1; i <= NODES; i++)); do node "$i"; done
        ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^${PREFIX}[0-9]+$" || true
        for d in "$DIR/$PREFIX"*; do
            [ -d "$d" ] && [[ ${d##*/} =~ ^${PREFIX}[0-9]+$ ]] && echo "${d##*/}"
        done
    } | sort -u
}

# leftovers NAME: PIDs the lab started for node NAME that still run: processes in its
# namespace that belong to its daemons (containerd, shims, docker-proxy) and processes in
# its cgroups (its containers).
leftovers() {
    local name=$1 nd=$DIR/$1 pid d
    {
        if ns_exists "$name"; then
            for pid in $(ip netns pids "$name" 2>/dev/null); do
                case " $(cmdline "$pid")" in
                    *"$nd/"*|*/docker-proxy\ *) echo "$pid" ;;
                esac
            done
        fi
        for d in $(cgroup_dirs "$name"); do
            find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true
        done
    } | sort -un
}

# A shim killed by SIGKILL leaves its socket in /run/containerd/s, named by the sha256 of
# <containerd address>/<namespace>/<id> (and .../debug for its debug socket): remove them.
shim_socket() {
    local args ns="" id="" address="" a prev=""
    read -ra args <<<"$(cmdline "$1")"
    for a in "${args[@]}"; do
        case $prev in
            -namespace) ns=$a ;; -id) id=$a ;; -address) address=$a ;;
        esac
        prev=$a
    done
    [ -n "$ns" ] && [ -n "$id" ] && [ -n "$address" ] || return 0
    for a in "$address/$ns/$id" "$address/$ns/$id/debug"; do
        echo "/run/containerd/s/$(printf '%s' "$a" | sha256sum | cut -d' ' -f1)"
    done
}

cmd_down() {
    local name pid pids=() rest=() sockets=() names=() s d t0 mp
    t0=$(now)
    load_lab || true
    mapfile -t names < <(lab_nodes)
    for name in "${names[@]}"; do
        pid=$(daemon_pid "${name#"$PREFIX"}" 2>/dev/null) || continue
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
    if [ "${#pids[@]}" -gt 0 ] && ! wait_gone 45 "${pids[@]}"; then
        say "dockerd still running after 45 s: SIGKILL"
        kill -KILL "${pids[@]}" 2>/dev/null || true
        wait_gone 10 "${pids[@]}" || true
    fi
    for name in "${names[@]}"; do
        for pid in $(leftovers "$name"); do
            case "$(cmdline "$pid")" in
                *containerd-shim*) mapfile -t -O "${#sockets[@]}" sockets < <(shim_socket "$pid") ;;
            esac
            rest+=("$pid")
        done
    done
    if [ "${#rest[@]}" -gt 0 ]; then
        say "killing ${#rest[@]} leftover process(es) of the lab: ${rest[*]}"
        kill -KILL "${rest[@]}" 2>/dev/null || true
        wait_gone 10 "${rest[@]}" || say "some leftover processes did not exit: ${rest[*]}"
    fi
    for s in "${sockets[@]}"; do [ -S "$s" ] && rm -f "$s"; done
    for name in "${names[@]}"; do
        ns_exists "$name" && ip netns del "$name"
    done
    ns_exists "$SWITCH" && ip netns del "$SWITCH"
    ip link show dev "$HOSTVETH" >/dev/null 2>&1 && ip link del "$HOSTVETH"
    for name in "${names[@]}"; do
        for d in $(cgroup_dirs "$name"); do
            find "$d" -depth -type d -exec rmdir {} + 2>/dev/null ||
                say "cannot remove cgroup $d"
        done
    done
    # Nothing of the lab should be mounted in this mount namespace; if it is, unmount it.
    while read -r mp; do
        umount -l "$mp" 2>/dev/null || true
    done < <(awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    rm -rf "$DIR"
    [ -n "${VIRTSTACK_SWARM_DIR:-}" ] || rmdir /var/lib/virtstack-swarm 2>/dev/null || true
    say "lab $PREFIX down in $(since "$t0") s"
}

need() {
    local c
    for c in dockerd docker ip unshare setsid; do
        command -v "$c" >/dev/null || die "'$c' not found (Debian: docker.io, iproute2, util-linux)"
    done
}

usage() { sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }

main() {
    local cmd=${1:-}
    [ "$#" -gt 0 ] && shift
    case $cmd in
        __exec) node_exec "$@" ;;
        up) [ "$(id -u)" = 0 ] || die "run as root"; need; cmd_up "$@" ;;
        down) [ "$(id -u)" = 0 ] || die "run as root"; cmd_down ;;
        status) cmd_status ;;
        env) cmd_env ;;
        kill) [ "$#" = 1 ] || usage; cmd_kill "$1" ;;
        start) [ "$#" = 1 ] || usage; cmd_start "$1" ;;
        load) cmd_load "$@" ;;
        -h|--help|help) usage 0 ;;
        *) usage ;;
    esac
}

main "$@"
