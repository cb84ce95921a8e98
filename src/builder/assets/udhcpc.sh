#!/bin/sh
# busybox udhcpc hook for the livery initramfs: applies the lease (address, default route,
# DNS) and records it in /run/livery/net.env for /init. Values come from the network, so
# they are reduced to the characters an address or a domain may contain before use.

clean() { printf '%s' "$1" | tr -cd "$2"; }

case "$1" in
	deconfig)
		ip -4 addr flush dev "$interface"
		ip link set "$interface" up
		;;
	bound | renew)
		ip=$(clean "$ip" '0-9.')
		prefix=$(clean "${mask:-24}" '0-9')
		router=$(clean "$router" '0-9. ')
		dns=$(clean "$dns" '0-9a-fA-F.: ')
		domain=$(clean "$domain" 'A-Za-z0-9.-')
		ip -4 addr flush dev "$interface"
		ip addr add "$ip/$prefix" dev "$interface"
		gateway=
		for r in $router; do
			ip route add default via "$r" dev "$interface" && gateway=$r && break
		done
		: > /etc/resolv.conf
		[ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
		for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
		cat > /run/livery/net.env <<EOF
interface='$interface'
ip='$ip'
prefix='$prefix'
router='$gateway'
dns='$dns'
domain='$domain'
EOF
		;;
esac
exit 0
