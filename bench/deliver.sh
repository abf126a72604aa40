#!/bin/bash
# bench/deliver.sh: delivery benchmark, postern side by side with Exim 4.96
# and Postfix 3.7: how fast each delivers a backlog that is already queued,
# and with how much CPU and memory.
#
# For every scenario, repetition and server: a fresh spool; N messages are
# queued through the server's own SMTP listener (bench/smtpload) without
# being delivered; the server is stopped; then ONE queue run is timed until
# every message is delivered:
#   postern  postern -C conf -qf      (queue_only in the configuration)
#   Exim     exim4 -C conf -qf        (the same configuration, word for word)
#   Postfix  postsuper -H ALL; postqueue -f   (the messages were held with
#            check_client_access static:HOLD; Postfix restarted first)
# Scenarios:
#   local    to user@bench.example: a maildir (appendfile + maildir_format;
#            Postfix: the virtual(8) agent, virtual_mailbox_maps = maildir)
#   remote   to user@sink.example: manualroute (Postfix: relayhost) to
#            bench/smtpsink on 127.0.0.1, which counts what it accepts
# The count of delivered files (local) or of messages the sink accepted
# (remote) must equal N and the queue must be empty afterwards, or the run
# fails (exit status 1).  Nothing is asserted about speed.
#
# Run as root.  Environment:
#   SERVERS="postern exim postfix"   which servers
#   SCENARIOS="local remote"         which scenarios
#   N=1000                           messages per run
#   SIZE=4096                        body bytes per message
#   REPS=3                           runs per scenario and server, interleaved;
#                                    the median run (by msg/s) is shown
#   INJECT_CONC=10                   connections used to queue the backlog
#   PORT_BASE=26111                  postern, Exim, Postfix listen on
#                                    PORT_BASE+0,1,2 while queueing; the sink
#                                    on PORT_BASE+3
#   QRUN="-qf"                       the queue-run option for postern and Exim
#   EXIM_QRUN=$QRUN                  Exim's alone (e.g. -qqf: two-phase run,
#                                    which lets Exim reuse one connection)
#   TIMEOUT=600                      seconds a queue run may take
#   STALL=30                         Postfix: seconds without a delivery after
#                                    which the run is given up
#   SYSCALLS=1                       first deliver 20 messages per scenario
#                                    and server under strace (not timed) and
#                                    print the sync system calls per message
#   POSTERN, POSTERN_REV, PF_ROOT, WORK, KEEP   as in bench/run.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
repo=$PWD

SERVERS=${SERVERS:-postern exim postfix}
SCENARIOS=${SCENARIOS:-local remote}
N=${N:-1000}
SIZE=${SIZE:-4096}
REPS=${REPS:-3}
INJECT_CONC=${INJECT_CONC:-10}
PORT_BASE=${PORT_BASE:-26111}
QRUN=${QRUN:--qf}
EXIM_QRUN=${EXIM_QRUN:-$QRUN}
TIMEOUT=${TIMEOUT:-600}
STALL=${STALL:-30}
SYSCALLS=${SYSCALLS:-0}
POSTERN=${POSTERN:-$repo/build-bench/postern}
PF_ROOT=${PF_ROOT:-/var/tmp/postern-bench-postfix}
WORK=${WORK:-$(mktemp -d /tmp/postern-deliver.XXXXXX)}
LOAD=$repo/bench/smtpload
SINK=$repo/bench/smtpsink
. "$repo/bench/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (Exim and Postfix start as root and drop privileges)"
mkdir -p "$WORK" && chmod 0755 "$WORK"
RESULTS=$WORK/results.txt
: >"$RESULTS" && : >"$WORK/all-runs.txt"
MUSER=Debian-exim       # the owner of the maildirs, for all three servers
id "$MUSER" >/dev/null 2>&1 || die "user $MUSER missing (exim4 not installed?)"
MUID=$(id -u "$MUSER") MGID=$(id -g "$MUSER")

build_tools
build_postern
i=0
for s in postern exim postfix sink; do PORT[$s]=$((PORT_BASE + i)); i=$((i + 1)); done
SINK_PID=

now() { date +%s.%N; }

# ------------------------------------------------------------------- sink
sink_start() {
	port_free "${PORT[sink]}" || { say "port ${PORT[sink]} (sink) already in use (set PORT_BASE)"; return 1; }
	"$SINK" -p "${PORT[sink]}" >"$WORK/sink.out" 2>"$WORK/sink.err" &
	SINK_PID=$!
	wait_port "${PORT[sink]}" 10
}
sink_stop() {
	[ -n "$SINK_PID" ] || return 0
	kill -TERM "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=
}
sink_cmd() { # XCOUNT or XRESET -> the reply line
	local l=
	exec 5<>"/dev/tcp/127.0.0.1/${PORT[sink]}" || return 1
	read -r -t 5 l <&5 && printf '%s\r\n' "$1" >&5 && read -r -t 5 l <&5
	printf 'QUIT\r\n' >&5
	exec 5<&- 5>&-
	printf '%s\n' "${l%$'\r'}"
}
sink_count() { sink_cmd XCOUNT | sed -n 's/.* messages=\([0-9]*\) .*/\1/p'; }
sink_conns() { sink_cmd XCOUNT | sed -n 's/.* connections=\([0-9]*\) .*/\1/p'; }

# -------------------------------------------------- postern and Exim
# One configuration for both, in Exim's words: queue what arrives, and let
# the queue run deliver it.
exim_style_conf() { # dir
	local d=$1
	cat <<-EOF
	# written by bench/deliver.sh: queue on reception (queue_only); a
	# queue run delivers to maildirs (bench.example) or to the sink
	$(exim_main_common "$d")

	begin acl
	acl_rcpt:
	  accept

	begin routers
	sink:
	  driver = manualroute
	  domains = sink.example
	  route_list = * 127.0.0.1
	  self = send
	  transport = sink_smtp
	local:
	  driver = accept
	  domains = bench.example
	  local_parts = user
	  transport = maildir

	begin transports
	sink_smtp:
	  driver = smtp
	  port = ${PORT[sink]}
	  allow_localhost
	maildir:
	  driver = appendfile
	  directory = $d/mail/\$local_part_data/Maildir
	  maildir_format
	  delivery_date_add
	  envelope_to_add
	  return_path_add
	  user = $MUSER
	  group = $MUSER
	  mode = 0600

	begin retry
	*  *  F,1h,15m
	EOF
}

# start_<s> dir: the daemon that queues, under a subreaper
start_postern() {
	local d=$1
	# created here, owned by the exim_user (see bench/README.md, run.sh)
	touch "$d/spool/log/mainlog" "$d/spool/log/rejectlog" "$d/spool/log/paniclog"
	chmod 0640 "$d/spool/log"/*log
	chown -R Debian-exim:Debian-exim "$d/spool"
	[ -x "$POSTERN" ] || { say "postern: binary $POSTERN missing"; return 1; }
	"$SUB" "$POSTERN" -C "$d/exim.conf" -bdf -odq -oX "127.0.0.1.${PORT[postern]}" \
		>"$d/daemon.out" 2>"$d/daemon.err" &
	ROOT[postern]=$! PID[postern]=$!
	wait_port "${PORT[postern]}" 20 && alive postern
}
stop_postern() { alive postern && kill -TERM "${PID[postern]}"; }
start_exim() {
	local d=$1
	chown -R Debian-exim:Debian-exim "$d/spool"
	"$SUB" exim4 -C "$d/exim.conf" -bd -odq -oX "${PORT[exim]}" -oP "$d/exim.pid" >"$d/daemon.err" 2>&1 &
	ROOT[exim]=$!
	local end=$((SECONDS + 10))
	while [ ! -s "$d/exim.pid" ] && [ $SECONDS -lt $end ]; do sleep 0.1; done
	PID[exim]=$(cat "$d/exim.pid" 2>/dev/null)
	wait_port "${PORT[exim]}" 20 && alive exim
}
stop_exim() { alive exim && kill -TERM "${PID[exim]}"; }
queued_exim_style() { find "$1/spool/input" -name '*-H' 2>/dev/null | wc -l; }

# ---------------------------------------------------------------- Postfix
postfix_conf() { # dir
	local d=$1
	mkdir -p "$d/etc" "$d/queue" "$d/data"
	chown postfix "$d/data"
	cat >"$d/etc/main.cf" <<-EOF
	# written by bench/deliver.sh: what arrives by SMTP is held; released,
	# it goes to maildirs (virtual) or to the sink (relayhost)
	$(postfix_main_common "$d")
	virtual_mailbox_domains = bench.example
	virtual_mailbox_base = $d/mail
	virtual_mailbox_maps = static:user/Maildir/
	virtual_minimum_uid = $MUID
	virtual_uid_maps = static:$MUID
	virtual_gid_maps = static:$MGID
	relayhost = [127.0.0.1]:${PORT[sink]}
	smtp_tls_security_level = none
	EOF
	cat >"$d/etc/master.cf" <<-EOF
	127.0.0.1:${PORT[postfix]} inet n - n - - smtpd
	$(postfix_master_base)
	smtp      unix - - n -    - smtp
	relay     unix - - n -    - smtp
	virtual   unix - n n -    - virtual
	EOF
}
start_postfix() {
	local d=$1
	setup_postfix_root || return 1
	rm -f "$d/queue/pid/master.pid"
	LD_LIBRARY_PATH=$PF_ROOT/usr/lib/postfix SUBREAPER_RUSAGE=1 \
		"$SUB" "$PF_ROOT/usr/sbin/postfix" -c "$d/etc" start >"$d/start.log" 2>&1 &
	ROOT[postfix]=$!
	local end=$((SECONDS + 10))
	while [ ! -s "$d/queue/pid/master.pid" ] && [ $SECONDS -lt $end ]; do sleep 0.1; done
	PID[postfix]=$(tr -dc 0-9 <"$d/queue/pid/master.pid" 2>/dev/null)
	wait_port "${PORT[postfix]}" 20 && alive postfix
}
stop_postfix() {
	pf postfix -c "$PFDIR/etc" stop >/dev/null 2>&1
	sleep 0.5
	alive postfix && kill -TERM "${PID[postfix]}"
}
queued_postfix() { # dir [queues]
	local q=$1/queue
	find "$q/incoming" "$q/active" "$q/deferred" "$q/hold" "$q/maildrop" -type f 2>/dev/null | wc -l
}

trap 'stop_all; sink_stop' EXIT
trap 'exit 130' INT TERM

delivered() { # dir scenario -> messages delivered so far
	if [ "$2" = local ]; then
		local n=0
		[ -d "$1/mail/user/Maildir/new" ] && n=$(ls -f "$1/mail/user/Maildir/new" | grep -vc '^\.\.\?$')
		echo "$n"
	else
		sink_count
	fi
}

# One run: queue N messages, stop the server, time one queue run.
# Prints the key=value result line; returns 1 if something was lost.
one_run() { # server scenario rep
	local s=$1 scen=$2 r=$3
	local d=$WORK/$scen-$r/$s rcpt=user@bench.example
	[ "$scen" = remote ] && rcpt=user@sink.example
	rm -rf "$d" && mkdir -p "$d/mail"
	chown "$MUSER:" "$d/mail"
	if [ "$s" = postfix ]; then
		postfix_conf "$d"
		PFDIR=$d
	else
		mkdir -p "$d/spool/log"
		exim_style_conf "$d" >"$d/exim.conf"
	fi
	local fail=""

	# 1. queue the backlog
	if ! "start_$s" "$d"; then
		say "   $s: the daemon did not start (logs in $d)"
		stop_one "$s"
		echo "label=$s scenario=$scen rep=$r check=FAIL why=start"
		return 1
	fi
	local inj
	inj=$("$LOAD" -p "${PORT[$s]}" -c "$INJECT_CONC" -n "$N" -s "$SIZE" -r "$rcpt" -l "$s" 2>"$d/inject.err")
	stop_one "$s"
	local q0
	if [ "$s" = postfix ]; then q0=$(queued_postfix "$d"); else q0=$(queued_exim_style "$d"); fi
	[ "$q0" = "$N" ] || fail="queued $q0 of $N ($inj)"

	# 2. one queue run
	[ "$scen" = remote ] && sink_cmd XRESET >/dev/null
	local t0 t1 wall cpu rss conns="-" q1 got rc=0
	if [ "$s" = postfix ]; then
		start_postfix "$d" || fail="${fail:+$fail; }postfix did not start for delivery"
		sleep 1                     # qmgr's start-up scans are done
		local spid=
		if [ -n "${CENSUS:-}" ]; then
			local args=() p
			for p in $(tree_pids "${ROOT[postfix]}"); do args+=(-p "$p"); done
			strace -f -qq -e trace="$SYNC_CALLS" "${args[@]}" -o "$d/sync.strace" 2>/dev/null &
			spid=$!
			sleep 1
		fi
		local c0 c1 aux=0 hwm=0 end
		c0=$(tree_ticks "${ROOT[postfix]}")
		t0=$(now)
		SUBREAPER_RUSAGE=1 "$SUB" env LD_LIBRARY_PATH="$PF_ROOT/usr/lib/postfix" \
			"$PF_ROOT/usr/sbin/postsuper" -c "$d/etc" -H ALL 2>"$d/postsuper.err"
		SUBREAPER_RUSAGE=1 "$SUB" env LD_LIBRARY_PATH="$PF_ROOT/usr/lib/postfix" \
			"$WORK/postqueue" -c "$d/etc" -f 2>"$d/postqueue.err"
		# until all are delivered and the queue is empty; give up after
		# TIMEOUT seconds, or STALL seconds without progress
		local prev=-1 moved=$SECONDS
		end=$((SECONDS + TIMEOUT))
		while [ $SECONDS -lt "$end" ] && [ $((SECONDS - moved)) -lt "$STALL" ]; do
			got=$(delivered "$d" "$scen")
			[ "${got:-0}" -ge "$N" ] && [ "$(queued_postfix "$d")" = 0 ] && break
			[ "${got:-0}" != "$prev" ] && prev=${got:-0} moved=$SECONDS
			sleep 0.05
		done
		t1=$(now)
		c1=$(tree_ticks "${ROOT[postfix]}")
		[ -n "$spid" ] && { sleep 0.5; kill -INT "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
		aux=$(cat "$d/postsuper.err" "$d/postqueue.err" | sed -n 's/.* cpu_s=\([0-9.]*\) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
		hwm=$(tree_hwm_kb "${ROOT[postfix]}")
		stop_one postfix
		wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
		cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v x="$aux" 'BEGIN { printf "%.3f", (b - a) / hz + x }')
		# the peak of every process of this Postfix instance (the subreaper
		# saw them all exit), or of the live ones if that is larger
		rss=$(sed -n 's/.* maxrss_kb=\([0-9]*\) .*/\1/p' "$d/start.log")
		[ "${rss:-0}" -ge "$hwm" ] || rss=$hwm
		q1=$(queued_postfix "$d")
	else
		local bin=$POSTERN arg=$QRUN
		[ "$s" = exim ] && bin=exim4 arg=$EXIM_QRUN
		local st=()
		[ -n "${CENSUS:-}" ] && st=(strace -f -qq -e trace="$SYNC_CALLS" -o "$d/sync.strace")
		SUBREAPER_RUSAGE=1 timeout "$TIMEOUT" "${st[@]}" "$SUB" "$bin" -C "$d/exim.conf" $arg \
			>"$d/qrun.out" 2>"$d/qrun.err" || rc=$?
		local ru
		ru=$(grep '^subreaper: user_s=' "$d/qrun.err")
		wall=$(sed -n 's/.* wall_s=\([0-9.]*\).*/\1/p' <<<"$ru")
		cpu=$(sed -n 's/.* cpu_s=\([0-9.]*\) .*/\1/p' <<<"$ru")
		rss=$(sed -n 's/.* maxrss_kb=\([0-9]*\) .*/\1/p' <<<"$ru")
		q1=$(queued_exim_style "$d")
		[ "$rc" = 0 ] || fail="${fail:+$fail; }queue run exit status $rc"
	fi
	got=$(delivered "$d" "$scen")
	[ "$scen" = remote ] && conns=$(sink_conns)
	[ "${got:-0}" = "$N" ] || fail="${fail:+$fail; }delivered ${got:-?} of $N"
	[ "$q1" = 0 ] || fail="${fail:+$fail; }$q1 left on the queue"
	local rate
	rate=$(awk -v n="${got:-0}" -v w="${wall:-0}" 'BEGIN { if (w > 0) printf "%.1f", n / w; else print "nan" }')
	local check=ok
	if [ -n "$fail" ]; then
		check=FAIL
		say "   $s $scen rep $r: FAILED: $fail (see $d)"
	fi
	echo "label=$s scenario=$scen rep=$r messages=$N size=$SIZE delivered=${got:-0} seconds=$wall" \
		"msgs_per_sec=$rate cpu_s=$cpu cpu_ms_per_msg=$(awk -v c="${cpu:-0}" -v n="$N" 'BEGIN { printf "%.3f", c / n * 1000 }')" \
		"peak_rss_kb=${rss:-0} sink_connections=$conns queued_before=$q0 left=$q1 check=$check"
	if [ -n "${CENSUS:-}" ]; then
		# count call starts ("pid name(" ...), not "<... name resumed>" lines
		awk -v s="$s" -v c="$scen" -v n="$N" '$2 ~ /^[a-z_]+\(/ { split($2, a, "("); k[a[1]]++ }
			END { printf "   %-8s %-7s", s, c; for (x in k) printf " %s=%.1f/msg", x, k[x] / n; print "" }' \
			"$d/sync.strace" >&2
	fi
	[ "$check" = ok ]
}

SYNC_CALLS=fsync,fdatasync,sync_file_range,syncfs,sync,msync

# ---------------------------------------------------------------- runs
active=()
for s in $SERVERS; do
	if ! port_free "${PORT[$s]}"; then
		say "== $s: port ${PORT[$s]} already in use; $s NOT benchmarked (set PORT_BASE)"
		STATUS[$s]="not run (port busy)"
		continue
	fi
	case $s in
	postern) [ -x "$POSTERN" ] || { STATUS[$s]="not run (no binary $POSTERN)"; continue; } ;;
	exim) command -v exim4 >/dev/null || { STATUS[$s]="not run (exim4 not installed)"; continue; } ;;
	postfix) setup_postfix_root || { STATUS[$s]="not run (postfix .deb unavailable)"; continue; }
		# a copy without the setgid bit: the dynamic linker ignores
		# LD_LIBRARY_PATH for a setgid program (root needs no setgid)
		install -m 0755 "$PF_ROOT/usr/sbin/postqueue" "$WORK/postqueue" ;;
	esac
	active+=("$s")
done
[ ${#active[@]} -gt 0 ] || die "no server to run"
if [[ " $SCENARIOS " == *" remote "* ]]; then
	sink_start || die "the SMTP sink did not start on port ${PORT[sink]}"
fi

say "== delivery: scenarios [$SCENARIOS], servers [${active[*]}], N=$N, size=$SIZE, $REPS rep(s); work dir $WORK"
if [ "$SYSCALLS" = 1 ] && command -v strace >/dev/null; then
	say "== sync system calls per message (strace of the queue run's whole process tree, 20 messages, not timed)"
	for scen in $SCENARIOS; do
		for s in "${active[@]}"; do
			N=20 CENSUS=1 one_run "$s" "$scen" census >/dev/null || failed=1
		done
	done
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "   load average before: $LOAD_BEFORE"
failed=0
[ ${#active[@]} -eq $(wc -w <<<"$SERVERS") ] || failed=1
for scen in $SCENARIOS; do
	declare -A lines=()
	for ((r = 1; r <= REPS; r++)); do
		for s in "${active[@]}"; do
			# not in a $(...) subshell: the daemons it starts must stay
			# known to this shell, for the EXIT trap
			one_run "$s" "$scen" "$r" >"$WORK/line" || failed=1
			line=$(cat "$WORK/line")
			say "   $line"
			printf '%s\n' "$line" >>"$WORK/all-runs.txt"
			lines[$s]+="$line"$'\n'
		done
	done
	for s in "${active[@]}"; do
		[ -n "${lines[$s]:-}" ] || continue
		# the median run by msg/s (a FAIL run, if any, wins: it must be seen)
		printf '%s' "${lines[$s]}" | awk '
			{ for (i = 1; i <= NF; i++) if ($i ~ /^msgs_per_sec=/) { split($i, a, "="); v[NR] = a[2] } l[NR] = $0; if ($0 ~ /check=FAIL/) bad = NR }
			END { if (bad) { print l[bad]; exit } n = NR
				for (i = 1; i <= n; i++) { r = 0; for (j = 1; j <= n; j++) if (v[j] < v[i] || (v[j] == v[i] && j < i)) r++; rank[r] = i }
				print l[rank[int((n - 1) / 2)]] }' >>"$RESULTS"
	done
	unset lines
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
say "   load average after: $LOAD_AFTER"
sink_stop
stop_all
trap - EXIT

# ---------------------------------------------------------------- report
echo
echo "postern delivery benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r)"
echo "postern $POSTERN_DESC, Exim $(exim4 --version 2>/dev/null | sed -n '1s/Exim version \([^ ]*\).*/\1/p'), Postfix $(pf postconf -c "${PFDIR:-/nonexistent}/etc" -h mail_version 2>/dev/null || echo '?')"
echo "load average (1/5/15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER"
echo "each run: N=$N messages of $SIZE body bytes queued, then one queue run (postern $QRUN, Exim $EXIM_QRUN,"
echo "Postfix postsuper -H ALL + postqueue -f) timed until all are delivered; cpu = the whole process tree;"
echo "rss = the peak resident set of the largest single process; conns = connections the sink saw"
echo "figures: the median run of $REPS by msg/s (lower middle if even); msg/s range = slowest..fastest run"
for s in postern exim postfix; do [ -n "${STATUS[$s]:-}" ] && echo "NOTE: $s ${STATUS[$s]}"; done
echo
awk '
function kv(line, key,   i, n, f, a) { n = split(line, f, " "); for (i = 1; i <= n; i++) { split(f[i], a, "="); if (a[1] == key) return a[2] } return "" }
FILENAME == ARGV[1] {
	k = kv($0, "label") SUBSEP kv($0, "scenario"); v = kv($0, "msgs_per_sec") + 0
	if (!(k in lo) || v < lo[k]) lo[k] = v
	if (!(k in hi) || v > hi[k]) hi[k] = v
	next
}
{
	s = kv($0, "label"); k = kv($0, "scenario")
	if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
	rate[s, k] = kv($0, "msgs_per_sec"); wall[s, k] = kv($0, "seconds"); cpu[s, k] = kv($0, "cpu_s")
	cpm[s, k] = kv($0, "cpu_ms_per_msg"); rss[s, k] = kv($0, "peak_rss_kb"); n[s, k] = kv($0, "messages")
	conns[s, k] = kv($0, "sink_connections"); chk[s, k] = kv($0, "check")
}
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0 || a == "nan" || b == "nan") ? "-" : sprintf("%.2f", a / b) }
function mb(kb) { return kb == "" ? "-" : sprintf("%.1f", kb / 1024) }
END {
	printf "%-8s %-8s %6s %8s %9s %13s %8s %11s %8s %6s  %s\n", "scenario", "server", "N", "wall s", "msg/s", "msg/s range", "cpu s", "cpu ms/msg", "rss MB", "conns", "delivered"
	split("postern exim postfix", srv, " ")
	for (i = 1; i <= nk; i++) {
		k = order[i]
		for (j = 1; j <= 3; j++) { s = srv[j]
			if (!((s, k) in rate)) continue
			printf "%-8s %-8s %6s %8s %9s %13s %8s %11s %8s %6s  %s\n", k, s, n[s, k], wall[s, k], rate[s, k],
				sprintf("%.0f..%.0f", lo[s, k], hi[s, k]), cpu[s, k], cpm[s, k], mb(rss[s, k]), conns[s, k], chk[s, k] }
	}
	print ""
	print "ratios postern/other: msg/s above 1 = postern faster; cpu and rss below 1 = postern better"
	printf "%-8s | %-23s | %-23s\n", "", "postern / Exim", "postern / Postfix"
	printf "%-8s | %7s %7s %7s | %7s %7s %7s\n", "scenario", "msg/s", "cpu", "rss", "msg/s", "cpu", "rss"
	for (i = 1; i <= nk; i++) { k = order[i]
		printf "%-8s | %7s %7s %7s | %7s %7s %7s\n", k,
			ratio(rate["postern", k], rate["exim", k]), ratio(cpu["postern", k], cpu["exim", k]), ratio(rss["postern", k], rss["exim", k]),
			ratio(rate["postern", k], rate["postfix", k]), ratio(cpu["postern", k], cpu["postfix", k]), ratio(rss["postern", k], rss["postfix", k]) }
}' "$WORK/all-runs.txt" "$RESULTS"
echo
echo "raw results: $RESULTS (median runs), $WORK/all-runs.txt (every run)"
[ "${KEEP:-1}" = 1 ] || rm -rf "$WORK"
exit $failed
