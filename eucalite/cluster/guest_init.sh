#!/bin/busybox sh
# eucalite tiny guest /init: report boot, network, metadata and disks on the console.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

mark() { echo "@MARKER@ $*"; }

for m in @MODULES@; do
    [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko
done
# Keep kernel messages (e.g. from hot-plug) from splitting our marker lines.
dmesg -n 1
mark boot

# --- the ACPI power button: a clean shutdown, as an OS's acpid makes it ---------------
# A hypervisor's shutdown request (libvirt's, for CreateImage's reboot) presses it: what
# was written and not yet synced reaches the disks before the guest powers off.
for e in /sys/class/input/event*; do
    [ "$(cat $e/device/name 2>/dev/null)" = "Power Button" ] || continue
    ( dd if=/dev/input/${e##*/} bs=24 count=1 >/dev/null 2>&1 && mark power-button && sync &&
      poweroff -f ) &
done

# --- network -----------------------------------------------------------------------
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 20 ]; do sleep 0.5; n=$((n + 1)); done
ip link set lo up
ip link set eth0 up
n=0
while [ $n -lt 5 ]; do
    udhcpc -i eth0 -s /etc/udhcpc.script -n -q -t 10 && break
    n=$((n + 1))
    sleep 1
done
mark "ip=$(cat /run/eucalite-ip 2>/dev/null || echo none)"
# Without a router option the metadata address is still on our link (on the bridge).
ip route | grep -q '^default' || ip route add @METADATA_HOST@ dev eth0

# --- metadata (IMDSv2, falling back to v1) -------------------------------------------
# busybox wget cannot PUT, so the token request is written by hand through nc.
token() {
    resp=$(printf 'PUT /latest/api/token HTTP/1.0\r\nHost: @METADATA_HOST@\r\nX-aws-ec2-metadata-token-ttl-seconds: 300\r\n\r\n' \
           | timeout 10 nc @METADATA_HOST@ 80 | tr -d '\r')
    case "$resp" in
    "HTTP/1."?" 200"*) echo "$resp" | sed '1,/^$/d' ;;
    *) return 1 ;;
    esac
}
# get PATH OUTFILE: fetch @METADATA_URL@/PATH (with the token if we have one).
# busybox wget -T segfaults: bound it with timeout instead.
get() {
    if [ -n "$TOKEN" ]; then
        timeout 10 wget -q -O "$2" --header "X-aws-ec2-metadata-token: $TOKEN" \
            "@METADATA_URL@/$1" 2>/tmp/wget.err
    else
        timeout 10 wget -q -O "$2" "@METADATA_URL@/$1" 2>/tmp/wget.err
    fi
}
TOKEN=
IID=
# A minute for the metadata service to answer; none at all without a network interface (a
# domain given no NIC, as the export tests boot it): there is nothing to wait for.
deadline=0
[ -e /sys/class/net/eth0 ] && deadline=$(($(date +%s) + 60))
while :; do
    TOKEN=$(token)
    if get meta-data/instance-id /tmp/iid; then IID=$(cat /tmp/iid); break; fi
    [ $(date +%s) -ge $deadline ] && break
    sleep 2
done
if [ -n "$TOKEN" ]; then mark token=ok; else mark token=none; fi
mark "instance-id=${IID:-none}"
if get user-data /tmp/user-data; then
    mark user-data-begin
    cat /tmp/user-data
    # end the user-data with a newline so the end marker starts its own line
    [ -n "$(tail -c 1 /tmp/user-data)" ] && echo
    mark user-data-end
elif grep -q 404 /tmp/wget.err; then
    mark user-data=none
else
    mark "user-data=error $(cat /tmp/wget.err)"
fi

mark ready

# --- user data as a script ----------------------------------------------------------
# As cloud-init does: user data starting with "#!" is a program to run. In the background,
# so the disk reports go on; its output goes to the console like ours.
if [ "$(head -c 2 /tmp/user-data 2>/dev/null)" = "#!" ]; then
    mark user-script
    sh /tmp/user-data </dev/null 2>&1 &
fi

# --- disks: report each virtio disk as it appears and disappears --------------------
seen=" "
while :; do
    now=" "
    for d in /sys/block/vd*; do
        [ -e "$d" ] || continue
        name=${d##*/}
        serial=$(cat $d/serial 2>/dev/null)
        key="$name:$serial"
        now="$now$key "
        case "$seen" in *" $key "*) continue ;; esac
        size=$(cat $d/size)
        md5=$(dd if=/dev/$name bs=1048576 count=1 2>/dev/null | md5sum | cut -d' ' -f1)
        mark "disk name=$name serial=$serial size=$size md5=$md5"
    done
    for key in $seen; do
        case "$now" in *" $key "*) ;; *) mark "disk-gone name=${key%%:*}" ;; esac
    done
    seen=$now
    sleep 2
done
# not reached; never let init exit
while :; do sleep 3600; done
