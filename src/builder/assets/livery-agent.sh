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
# Starting a process is slow on an emulated or small machine, and the boot is not done before
# the phone-home: the agent tests and rewrites text with shell builtins and one awk program over
# the whole metadata, and starts processes only for the work of other programs (curl, hostname,
# the facts).
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

case "$0" in */*) here=${0%/*} ;; *) here=. ;; esac
# cmdline_value: installed beside this script (the first occurrence of a parameter is livery's).
. "$here/cmdline.sh"
server=$(cmdline_value livery.server "$CMDLINE")
image=$(cmdline_value livery.image "$CMDLINE")
bootif=$(cmdline_value BOOTIF "$CMDLINE")
server=${server%/}
if [ -z "$server" ]; then
	say "no livery.server= on the kernel command line: not booted by livery, nothing to do"
	exit 0
fi

# BOOTIF's 01-AA-bb-... as aa:bb:...: lower case and colons.
url_mac() {
	rest=$1
	mac=
	while [ -n "$rest" ]; do
		c=${rest%"${rest#?}"}
		rest=${rest#?}
		case "$c" in
			A) c=a ;; B) c=b ;; C) c=c ;; D) c=d ;; E) c=e ;; F) c=f ;; -) c=: ;;
		esac
		mac=$mac$c
	done
}

# MAC in URL form aa:bb:cc:dd:ee:ff: from BOOTIF=01-aa-bb-..., else the NIC the initramfs used.
mac=
if [ -n "$bootif" ]; then
	url_mac "${bootif#01-}"
elif [ -f "$STATE/net.env" ]; then
	nic=$(sed -n "s/^interface='\([A-Za-z0-9_.-]*\)'\$/\1/p" "$STATE/net.env")
	[ -n "$nic" ] && mac=$(cat "/sys/class/net/$nic/address" 2>/dev/null)
fi
hex='[0-9a-f][0-9a-f]'
# $hex unquoted on purpose: it is a pattern here.
case "$mac" in
	$hex:$hex:$hex:$hex:$hex:$hex) ;;
	*)
		say "cannot tell this machine's MAC (no BOOTIF= and no boot interface); giving up"
		exit 1
		;;
esac

# Scratch files of this run (the metadata as fetched, the facts report, health check outputs).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One pass over the metadata. A line is kept (into $work/metadata.ok, as it came) when its name
# is LIVERY_[A-Z0-9_]+ and its value is one shell single-quoted word: '...' in which a quote
# appears only as '\''. Every other line, except blank lines and # comments, is reported and
# dropped. The unquoted values of the three keys the agent applies go to $work/applied, one a
# line (the last of a repeated key wins; a value is one line of the document, so it holds no
# newline).
parse_metadata() {
	awk -v ok="$work/metadata.ok" -v applied="$work/applied" '
		function replace_all(s, from, to,   out, i) {
			out = ""
			while ((i = index(s, from)) > 0) {
				out = out substr(s, 1, i - 1) to
				s = substr(s, i + length(from))
			}
			return out s
		}
		BEGIN { q = "\047"; escaped = q "\\" q q; printf "" > ok }
		$0 == "" || substr($0, 1, 1) == "#" { next }
		{
			eq = index($0, "=")
			name = eq ? substr($0, 1, eq - 1) : $0
			quoted = eq ? substr($0, eq + 1) : $0
			inner = substr(quoted, 2, length(quoted) - 2)
			if (name !~ /^LIVERY_[A-Z0-9_]+$/ || length(quoted) < 2 || substr(quoted, 1, 1) != q ||
				substr(quoted, length(quoted)) != q || index(replace_all(inner, escaped, ""), q)) {
				print "livery-agent: ignoring a malformed metadata line"
				next
			}
			print > ok
			value[name] = replace_all(inner, escaped, q)
		}
		END {
			printf "%s\n%s\n%s\n", value["LIVERY_HOSTNAME"], value["LIVERY_DNS"], value["LIVERY_DOMAIN"] > applied
		}' "$work/metadata"
}

hostname_value=
dns_value=
domain_value=
if curl -fsS $CURL_RETRY -o "$work/metadata" "$server/v1/metadata/$mac?format=env"; then
	parse_metadata
	{ IFS= read -r hostname_value; IFS= read -r dns_value; IFS= read -r domain_value; } < "$work/applied"
	[ -d "$STATE" ] || mkdir -p "$STATE"
	mv "$work/metadata.ok" "$STATE/metadata.env"
else
	say "could not fetch metadata from $server for $mac; keeping the current hostname"
fi

# As grep -E '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$': one DNS label.
valid_hostname() {
	case "$1" in '' | *[!A-Za-z0-9-]* | -* | *-) return 1 ;; esac
	[ ${#1} -le 63 ]
}

if [ -n "$hostname_value" ]; then
	if valid_hostname "$hostname_value"; then
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
	resolv=
	case "$domain_value" in '' | *[!A-Za-z0-9.-]*) ;; *) resolv="search $domain_value
" ;; esac
	# Word-split on purpose: the servers are a blank-separated list.
	for server_ip in $dns_value; do
		case "$server_ip" in *[!0-9a-fA-F.:]*) ;; *) resolv="${resolv}nameserver $server_ip
" ;; esac
	done
	printf '%s' "$resolv" > "$ROOT/etc/resolv.conf"
fi

# $1 as a JSON string (backslashes and double quotes escaped) into $json.
json_string() {
	rest=$1
	json=
	while :; do
		case "$rest" in
			*[\\\"]*) ;;
			*) break ;;
		esac
		plain=${rest%%[\\\"]*}
		rest=${rest#"$plain"}
		json=$json$plain\\${rest%"${rest#?}"}
		rest=${rest#?}
	done
	json="\"$json$rest\""
}

read -r uptime _ < /proc/uptime
seconds=${uptime%.*}
hundredths=${uptime#*.}
hundredths=${hundredths#0}
uptime_ms=$((seconds * 1000 + hundredths * 10))
json_string "$image"
image_json=$json
# What uname -r and hostname print, read from the kernel.
read -r kernel < /proc/sys/kernel/osrelease
json_string "$kernel"
body="{\"imageId\":$image_json,\"kernel\":$json,\"uptimeMs\":$uptime_ms}"
if ! curl -fsS $CURL_RETRY -o /dev/null -X POST -H 'Content-Type: application/json' --data "$body" "$server/v1/machines/$mac/booted"; then
	say "could not report the boot to $server ($(network_state))"
	exit 1
fi
read -r current_hostname < /proc/sys/kernel/hostname
say "booted image $image as $current_hostname"

# Hardware facts of this boot (livery-facts, installed beside this script): livery stores them and
# compares them with the previous boot's. A failed report is said and does not stop the agent.
facts=$work/facts.json
if printf '{"imageId":%s,"report":' "$image_json" > "$facts" && sh "$here/livery-facts.sh" >> "$facts" && printf '}' >> "$facts" &&
	curl -fsS $CURL_RETRY -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary "@$facts" "$server/v1/machines/$mac/facts"; then
	say "facts reported"
else
	say "could not report facts to $server"
fi

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
		json_string "$line"
		items="$items${items:+,}{\"check\":$json,\"output\":$(json_tail "$work/$n")}"
		say "health check failed: $line"
	done < "$HEALTH"
fi
body="{\"imageId\":$image_json,\"status\":\"$status\",\"failing\":[$items]}"
if ! curl -fsS $CURL_RETRY -o /dev/null -X POST -H 'Content-Type: application/json' --data "$body" "$server/v1/machines/$mac/health"; then
	say "could not report health to $server ($(network_state))"
	exit 1
fi
say "health: $status"
