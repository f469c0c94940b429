#!/bin/sh
# udhcpc calls this with $1 = deconfig | bound | renew | nak and the lease in variables.
case "$1" in
deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}"
    if [ -n "$router" ]; then
        ip route del default 2>/dev/null
        for gw in $router; do
            ip route add default via "$gw" dev "$interface" && break
        done
    fi
    echo "$ip" > /run/eucalite-ip
    echo "@MARKER@ lease ip=$ip subnet=$subnet router=$router dns=$dns"
    ;;
esac
exit 0
