#!/bin/sh
# livery-agent: runs once per boot (livery-agent.service). Reads the kernel command line,
# fetches this machine's metadata from the livery server, applies hostname and DNS, then
# reports the boot with POST /v1/machines/<mac>/booted and the hardware (livery-facts.sh) with
# POST /v1/machines/<mac>/facts. An image with health checks
# (/etc/livery/health) then runs them until they pass or time out, and reports the result with
# POST /v1/machines/<mac>/health.
#
# The metadata is shell-quoted text from the network; it is parsed line by line and never
# sourced or eval'ed: only LIVERY_[A-Z0-9_]+='...' lines are accepted.
#
# LIVERY_AGENT_CMDLINE and LIVERY_AGENT_ROOT exist so tests can run the agent outside an image.
set -u

CMDLINE=${LIVERY_AGENT_CMDLINE:-/proc/cmdline}
ROOT=${LIVERY_AGENT_ROOT:-}
STATE=$ROOT/run/livery
# Word-split on purpose where used: a list of curl options. Up to 4 minutes of tries: a network
# that returns within that (a switch port's spanning-tree delay, a link renegotiated after the
# handover from the initramfs) loses no report. Answers that another try cannot change (4xx) end it.
CURL_RETRY="--retry 12 --retry-delay 5 --retry-max-time 240 --retry-connrefused --connect-timeout 5 --max-time 20"

say() { echo "livery-agent: $*"; }
# Why livery was out of reach is usually in the network state, which is gone once the machine is.
network_state() { echo "addresses: $(ip -4 -o addr show 2>/dev/null | awk '{printf "%s %s, ", $2, $4}')routes: $(ip -4 route 2>/dev/null | tr '\n' ';')"; }

# cmdline_value: installed beside this script (the first occurrence of a parameter is livery's).
. "$(dirname "$0")/cmdline.sh"
server=$(cmdline_value livery.server "$CMDLINE")
image=$(cmdline_value livery.image "$CMDLINE")
bootif=$(cmdline_value BOOTIF "$CMDLINE")
server=${server%/}
if [ -z "$server" ]; then
	say "no livery.server= on the kernel command line: not booted by livery, nothing to do"
	exit 0
fi

# MAC in URL form aa:bb:cc:dd:ee:ff: from BOOTIF=01-aa-bb-..., else the NIC the initramfs used.
mac=
if [ -n "$bootif" ]; then
	mac=$(printf '%s' "${bootif#01-}" | tr 'A-F-' 'a-f:')
elif [ -f "$STATE/net.env" ]; then
	nic=$(sed -n "s/^interface='\([A-Za-z0-9_.-]*\)'\$/\1/p" "$STATE/net.env")
	[ -n "$nic" ] && mac=$(cat "/sys/class/net/$nic/address" 2>/dev/null)
fi
if ! printf '%s' "$mac" | grep -Eq '^([0-9a-f]{2}:){5}[0-9a-f]{2}$'; then
	say "cannot tell this machine's MAC (no BOOTIF= and no boot interface); giving up"
	exit 1
fi

# Undoes shell single-quoting: 'it'\''s' -> it's. Prints nothing and fails for anything else.
unquote() {
	inner=${1#\'}
	inner=${inner%\'}
	[ "$1" = "'$inner'" ] || return 1
	case "$(printf '%s' "$inner" | sed "s/'\\\\''//g")" in
		*"'"*) return 1 ;;
	esac
	printf '%s' "$inner" | sed "s/'\\\\''/'/g"
}

hostname_value=
dns_value=
domain_value=
metadata=$(mktemp)
trap 'rm -f "$metadata" "$metadata.ok"' EXIT
if curl -fsS $CURL_RETRY -o "$metadata" "$server/v1/metadata/$mac?format=env"; then
	: > "$metadata.ok"
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in '' | '#'*) continue ;; esac
		name=${line%%=*}
		if ! printf '%s' "$name" | grep -Eq '^LIVERY_[A-Z0-9_]+$' || ! value=$(unquote "${line#*=}"); then
			say "ignoring a malformed metadata line"
			continue
		fi
		printf '%s\n' "$line" >> "$metadata.ok"
		case "$name" in
			LIVERY_HOSTNAME) hostname_value=$value ;;
			LIVERY_DNS) dns_value=$value ;;
			LIVERY_DOMAIN) domain_value=$value ;;
		esac
	done < "$metadata"
	mkdir -p "$STATE"
	mv "$metadata.ok" "$STATE/metadata.env"
else
	say "could not fetch metadata from $server for $mac; keeping the current hostname"
fi

if [ -n "$hostname_value" ]; then
	if printf '%s' "$hostname_value" | grep -Eq '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$'; then
		hostname "$hostname_value"
		printf '%s\n' "$hostname_value" > "$ROOT/etc/hostname"
		fqdn=$hostname_value
		[ -n "$domain_value" ] && fqdn="$hostname_value.$domain_value"
		printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s %s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$fqdn" "$hostname_value" > "$ROOT/etc/hosts"
	else
		say "ignoring invalid hostname from metadata"
	fi
fi

if [ -n "$dns_value" ]; then
	resolv=$(mktemp)
	if printf '%s' "$domain_value" | grep -Eq '^[A-Za-z0-9.-]+$'; then echo "search $domain_value" >> "$resolv"; fi
	for server_ip in $dns_value; do
		printf '%s' "$server_ip" | grep -Eq '^[0-9a-fA-F.:]+$' && echo "nameserver $server_ip" >> "$resolv"
	done
	cat "$resolv" > "$ROOT/etc/resolv.conf"
	rm -f "$resolv"
fi

json_string() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

read -r uptime _ < /proc/uptime
seconds=${uptime%.*}
hundredths=${uptime#*.}
hundredths=${hundredths#0}
uptime_ms=$((seconds * 1000 + hundredths * 10))
body="{\"imageId\":$(json_string "$image"),\"kernel\":$(json_string "$(uname -r)"),\"uptimeMs\":$uptime_ms}"
if ! curl -fsS $CURL_RETRY -o /dev/null -X POST -H 'Content-Type: application/json' --data "$body" "$server/v1/machines/$mac/booted"; then
	say "could not report the boot to $server ($(network_state))"
	exit 1
fi
say "booted image $image as $(hostname)"

# Hardware facts of this boot (livery-facts, installed beside this script): livery stores them and
# compares them with the previous boot's. A failed report is said and does not stop the agent.
facts=$(mktemp)
if sh "$(dirname "$0")/livery-facts.sh" > "$facts" && printf '{"imageId":%s,"report":' "$(json_string "$image")" | cat - "$facts" > "$facts.body" && printf '}' >> "$facts.body" &&
	curl -fsS $CURL_RETRY -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary "@$facts.body" "$server/v1/machines/$mac/facts"; then
	say "facts reported"
else
	say "could not report facts to $server"
fi
rm -f "$facts" "$facts.body"

# Health: the checks the recipe's `health` lines put into /etc/livery/health, one per line
# (`unit NAME` or `command TEXT`, after a `timeout SECONDS` line). Each round runs them all
# with one systemctl call for every unit plus one shell per command; failing checks are retried
# every 2 s until the timeout, so units still starting get their chance.
HEALTH=$ROOT/etc/livery/health
[ -s "$HEALTH" ] || exit 0

# Hundredths of a second since boot into $now, without a process: whole seconds would end the
# timeout up to a second early.
now_cs() {
	read -r up _ < /proc/uptime
	now=${up%.*}${up#*.}
	now=${now#"${now%%[!0]*}"}
	now=${now:-0}
}

timeout_s=120
units=
while IFS= read -r line || [ -n "$line" ]; do
	case "$line" in
		"timeout "*) timeout_s=${line#timeout } ;;
		"unit "*) units="$units ${line#unit }" ;;
	esac
done < "$HEALTH"
work=$(mktemp -d)
trap 'rm -rf "$work" "$metadata" "$metadata.ok"' EXIT

# One round: sets $failing to the line numbers of the failing checks; $work/<n> holds check n's output.
run_checks() {
	failing=
	n=0
	: > "$work/units"
	# Word-split on purpose: unit names are validated at build time and hold no blanks.
	[ -n "$units" ] && systemctl is-active $units > "$work/units" 2> /dev/null
	exec 3< "$work/units"
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in
			"unit "*)
				n=$((n + 1))
				IFS= read -r state <&3 || state=unknown
				printf '%s\n' "$state" > "$work/$n"
				[ "$state" = active ] || failing="$failing $n"
				;;
			"command "*)
				n=$((n + 1))
				timeout 30 sh -c "${line#command }" > "$work/$n" 2>&1 < /dev/null || failing="$failing $n"
				;;
		esac
	done < "$HEALTH"
	exec 3<&-
}

now_cs
deadline=$((now + timeout_s * 100))
while :; do
	run_checks
	[ -z "$failing" ] && break
	now_cs
	[ "$now" -ge "$deadline" ] && break
	sleep 2
done

# The last lines of a file as one JSON string (control characters dropped, long lines cut).
json_tail() {
	awk -v max=20 '
		{ keep[NR % max] = substr($0, 1, 300) }
		END {
			out = ""
			for (i = (NR > max ? NR - max + 1 : 1); i <= NR; i++) {
				l = keep[i % max]
				gsub(/\\/, "&&", l); gsub(/"/, "\\\"", l); gsub(/\t/, " ", l); gsub(/[\001-\037\177]/, "", l)
				out = out l (i < NR ? "\\n" : "")
			}
			printf "\"%s\"", out
		}' "$1"
}

status=healthy
items=
if [ -n "$failing" ]; then
	status=unhealthy
	n=0
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in "unit "* | "command "*) n=$((n + 1)) ;; *) continue ;; esac
		case " $failing " in *" $n "*) ;; *) continue ;; esac
		# Why a unit is down is in its status and journal: fetched once, for failing units only.
		case "$line" in "unit "*) systemctl status --no-pager --lines 10 "${line#unit }" >> "$work/$n" 2>&1 ;; esac
		items="$items${items:+,}{\"check\":$(json_string "$line"),\"output\":$(json_tail "$work/$n")}"
		say "health check failed: $line"
	done < "$HEALTH"
fi
body="{\"imageId\":$(json_string "$image"),\"status\":\"$status\",\"failing\":[$items]}"
if ! curl -fsS $CURL_RETRY -o /dev/null -X POST -H 'Content-Type: application/json' --data "$body" "$server/v1/machines/$mac/health"; then
	say "could not report health to $server ($(network_state))"
	exit 1
fi
say "health: $status"
