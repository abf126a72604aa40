#!/bin/bash
# bench/run.sh: acceptance benchmark, postern side by side with Exim 4.96
# and Postfix 3.7 (DESIGN.md §7, issue 3 part 6).
#
# Starts the three servers on loopback ports, each queueing durably without
# delivering, drives them with bench/smtpload over the matrix
#   body size {4 KB, 100 KB} x concurrency {1, 10, 50}
# (cells interleaved: postern, Exim, Postfix for one cell, then the next),
# checks that each server queued exactly the messages it acknowledged,
# stops them and prints absolute figures and ratios.  Asserts nothing about
# speed: the exit status is 1 only if a server lost or refused messages or
# could not be run (the others are still measured), 2 if nothing could run.
#
# Run as root (Exim and Postfix need it to start).  Environment:
#   SERVERS="postern exim postfix"   which servers
#   SIZES="4096 102400"              body sizes in bytes
#   CONCS="1 10 50"                  concurrent connections
#   N=...                            messages per run, every cell; or per
#   N_1=300 N_10=1500 N_50=3000      concurrency (default as shown)
#   PER_CONN=1                       messages per connection
#   REPS=3                           runs per cell, interleaved across servers;
#                                    the median run (by msg/s) is shown
#   QUIT=shut                        smtpload -q: shut (half-close after QUIT) or wait
#   PORT_BASE=26101                  postern, Exim, Postfix on PORT_BASE+0,1,2
#   POSTERN=build-bench/postern      binary; the default is brought up to date
#                                    from the working tree (release build)
#   POSTERN_REV=<commit>             instead: build that commit (git archive) in
#                                    /var/tmp/postern-bench-src/<commit>, so
#                                    others' uncommitted edits are not measured
#   PF_ROOT=/var/tmp/postern-bench-postfix   unpacked postfix .deb (fetched
#                                    with apt-get download if absent)
#   WORK=$(mktemp -d)                spools, configs, logs, raw results
#   KEEP=1                           keep WORK afterwards (default: keep)
#   SYSCALLS=1                       also strace 10 messages per server and
#                                    print the sync system calls per message
#
# Shared with bench/deliver.sh: bench/lib.sh (builds, process-tree
# accounting, stopping servers, the private Postfix instance).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

SERVERS=${SERVERS:-postern exim postfix}
SIZES=${SIZES:-4096 102400}
CONCS=${CONCS:-1 10 50}
PER_CONN=${PER_CONN:-1}
REPS=${REPS:-3}
QUIT=${QUIT:-shut}
PORT_BASE=${PORT_BASE:-26101}
POSTERN=${POSTERN:-$repo/build-bench/postern}
PF_ROOT=${PF_ROOT:-/var/tmp/postern-bench-postfix}
WORK=${WORK:-$(mktemp -d /tmp/postern-bench.XXXXXX)}
SYSCALLS=${SYSCALLS:-0}
LOAD=$repo/bench/smtpload
. "$repo/bench/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (Exim and Postfix start as root and drop privileges)"
mkdir -p "$WORK" && chmod 0755 "$WORK"   # the servers drop privileges
RESULTS=$WORK/results.txt
: >"$RESULTS"

nmsgs() { # concurrency -> messages per run
	if [ -n "${N:-}" ]; then echo "$N"; return; fi
	local v="N_$1"
	case $1 in 1) echo "${!v:-300}" ;; 10) echo "${!v:-1500}" ;; 50) echo "${!v:-3000}" ;; *) echo "${!v:-1000}" ;; esac
}

# ---------------------------------------------------------------- builds
build_tools
build_postern

i=0
for s in postern exim postfix; do PORT[$s]=$((PORT_BASE + i)); i=$((i + 1)); done

# ---------------------------------------------------------------- postern
start_postern() {
	local d=$WORK/postern
	mkdir -p "$d/spool/log"
	# the log files are created here, owned by the exim_user: a daemon
	# running as root would create them root-owned, and the connection
	# processes (which drop to exim_user) could then not write their <= lines
	touch "$d/spool/log/mainlog" "$d/spool/log/rejectlog" "$d/spool/log/paniclog"
	chmod 0640 "$d/spool/log"/*log
	chown -R Debian-exim:Debian-exim "$d/spool" 2>/dev/null || true
	cat >"$d/postern.conf" <<-EOF
	# written by bench/run.sh: accept and queue (queue_only), never deliver
	primary_hostname = bench.example
	spool_directory = $d/spool
	log_file_path = $d/spool/log/%slog
	exim_user = $(id -u Debian-exim >/dev/null 2>&1 && echo Debian-exim || echo root)
	queue_only
	smtp_accept_max = 0
	smtp_connect_backlog = 128
	rfc1413_query_timeout = 0s
	acl_smtp_rcpt = accept
	EOF
	[ -x "$POSTERN" ] || { say "postern: binary $POSTERN missing"; return 1; }
	"$SUB" "$POSTERN" -C "$d/postern.conf" -bdf -odq -oX "127.0.0.1.${PORT[postern]}" \
		>"$d/stdout" 2>"$d/stderr" &
	ROOT[postern]=$!
	PID[postern]=$!     # SIGTERM to the subreaper is passed on to postern
	wait_port "${PORT[postern]}" 20 && alive postern
}
count_postern() { find "$WORK/postern/spool/input" -name '*-H' 2>/dev/null | wc -l; }
stop_postern() { alive postern && kill -TERM "${PID[postern]}"; }

# ------------------------------------------------------------------- Exim
start_exim() {
	local d=$WORK/exim
	mkdir -p "$d/spool"
	chown Debian-exim:Debian-exim "$d/spool"
	cat >"$d/exim.conf" <<-EOF
	# written by bench/run.sh: accept and queue (queue_only), never deliver
	$(exim_main_common "$d")
	begin acl
	acl_rcpt:
	  accept
	EOF
	command -v exim4 >/dev/null || { say "exim: exim4 not installed"; return 1; }
	"$SUB" exim4 -C "$d/exim.conf" -bd -odq -oX "${PORT[exim]}" -oP "$d/exim.pid" >"$d/stderr" 2>&1 &
	ROOT[exim]=$!
	local end=$((SECONDS + 10))
	while [ ! -s "$d/exim.pid" ] && [ $SECONDS -lt $end ]; do sleep 0.1; done
	PID[exim]=$(cat "$d/exim.pid" 2>/dev/null)
	wait_port "${PORT[exim]}" 20 && alive exim
}
count_exim() { find "$WORK/exim/spool/input" -name '*-H' 2>/dev/null | wc -l; }
stop_exim() { alive exim && kill -TERM "${PID[exim]}"; }

# ---------------------------------------------------------------- Postfix
# Messages are put on hold (check_client_access static:HOLD) so the queue
# manager never sees them.
start_postfix() {
	local d=$WORK/postfix R=$PF_ROOT
	setup_postfix_root || return 1
	mkdir -p "$d/etc" "$d/queue" "$d/data"
	chown postfix "$d/data"
	cat >"$d/etc/main.cf" <<-EOF
	# written by bench/run.sh: accept and hold, never deliver
	$(postfix_main_common "$d")
	EOF
	# no chroot (column 5 = n), the services an smtpd-to-queue path needs
	cat >"$d/etc/master.cf" <<-EOF
	127.0.0.1:${PORT[postfix]} inet n - n - - smtpd
	$(postfix_master_base)
	EOF
	LD_LIBRARY_PATH=$R/usr/lib/postfix "$SUB" "$R/usr/sbin/postfix" -c "$d/etc" start >"$d/start.log" 2>&1 &
	ROOT[postfix]=$!
	local end=$((SECONDS + 10))
	while [ ! -s "$d/queue/pid/master.pid" ] && [ $SECONDS -lt $end ]; do sleep 0.1; done
	PID[postfix]=$(tr -dc 0-9 <"$d/queue/pid/master.pid" 2>/dev/null)
	wait_port "${PORT[postfix]}" 20 && alive postfix
}
count_postfix() {
	local q=$WORK/postfix/queue
	find "$q/incoming" "$q/active" "$q/deferred" "$q/hold" -type f 2>/dev/null | wc -l
}
stop_postfix() {
	[ -d "$WORK/postfix/etc" ] && pf postfix -c "$WORK/postfix/etc" stop >/dev/null 2>&1
	sleep 0.5
	alive postfix && kill -TERM "${PID[postfix]}"
}

trap stop_all EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- start
active=()
for s in $SERVERS; do
	if ! port_free "${PORT[$s]}"; then
		say "== $s: port ${PORT[$s]} already in use; $s NOT benchmarked (set PORT_BASE)"
		STATUS[$s]="not started (port busy)"
		continue
	fi
	if "start_$s"; then
		say "== $s: listening on 127.0.0.1:${PORT[$s]} (pid ${PID[$s]})"
		active+=("$s")
	else
		say "== $s: FAILED TO START; it is left out of the figures. Logs under $WORK/$s:"
		tail -n 5 "$WORK/$s"/*stderr* "$WORK/$s"/*.log "$WORK/$s"/maillog 2>/dev/null | sed 's/^/   /' >&2
		STATUS[$s]="failed to start"
		stop_one "$s"
	fi
done
[ ${#active[@]} -gt 0 ] || die "no server started"

# ---------------------------------------------------------------- optional syscall census
if [ "$SYSCALLS" = 1 ] && command -v strace >/dev/null; then
	say "== sync system calls per message (strace of the whole process tree, 10 messages, 4 KB)"
	for s in "${active[@]}"; do
		args=()
		for p in $(tree_pids "${ROOT[$s]}"); do args+=(-p "$p"); done
		strace -f -qq -e trace=fsync,fdatasync,sync_file_range,syncfs,sync,msync "${args[@]}" -o "$WORK/$s.strace" 2>/dev/null &
		spid=$!
		sleep 1
		"$LOAD" -p "${PORT[$s]}" -n 10 -c 1 -s 4096 -q "$QUIT" >/dev/null
		sleep 1
		kill -INT $spid 2>/dev/null; wait $spid 2>/dev/null
		# count call starts ("pid name(" ...), not "<... name resumed>" lines
		awk -v s="$s" '$2 ~ /^(fsync|fdatasync|sync_file_range|syncfs|msync|sync)\(/ { split($2, a, "("); n[a[1]]++ }
			END { printf "   %-8s", s; for (k in n) printf " %s=%.1f/msg", k, n[k] / 10; print "" }' "$WORK/$s.strace" >&2
	done
fi

# ---------------------------------------------------------------- matrix
say "== matrix: sizes [$SIZES] x concurrency [$CONCS], $PER_CONN msg/connection, $REPS rep(s), QUIT=$QUIT"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "   load average before: $LOAD_BEFORE"
failed=0
[ ${#active[@]} -eq $(wc -w <<<"$SERVERS") ] || failed=1
for size in $SIZES; do
	for conc in $CONCS; do
		n=$(nmsgs "$conc")
		declare -A lines=()
		for ((r = 1; r <= REPS; r++)); do
			for s in "${active[@]}"; do
				if ! alive "$s"; then
					[ -n "${STATUS[$s]:-}" ] || say "   $s died; skipping the rest of its runs"
					STATUS[$s]="died during the run"
					failed=1
					continue
				fi
				q0=$("count_$s"); c0=$(tree_ticks "${ROOT[$s]}")
				out=$("$LOAD" -p "${PORT[$s]}" -c "$conc" -n "$n" -s "$size" -m "$PER_CONN" \
					-q "$QUIT" -l "$s" 2>"$WORK/load-$s-$size-$conc-$r.err")
				sleep 0.5     # let the session processes exit and be reaped
				c1=$(tree_ticks "${ROOT[$s]}"); q1=$("count_$s")
				ok=$(sed -n 's/.* ok=\([0-9]*\) .*/\1/p' <<<"$out")
				queued=$((q1 - q0))
				cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v n="${ok:-0}" 'BEGIN { if (n > 0) printf "%.3f", (b - a) / hz / n * 1000; else print "nan" }')
				check=ok
				if [ -z "$out" ] || [ "${ok:-0}" != "$n" ] || [ "$queued" != "$n" ]; then
					check=FAIL
					failed=1
					say "   $s size=$size conc=$conc: sent $n, acknowledged ${ok:-?}, queued $queued (see $WORK/load-$s-$size-$conc-$r.err)"
					head -3 "$WORK/load-$s-$size-$conc-$r.err" | sed 's/^/     /' >&2
				fi
				line="$out server_cpu_ms_per_msg=$cpu queued=$queued check=$check rep=$r"
				printf '%s\n' "$line" >>"$WORK/all-runs.txt"
				lines[$s]+="$line"$'\n'
			done
		done
		for s in "${active[@]}"; do
			[ -n "${lines[$s]:-}" ] || continue
			# the median run by msg/s (a FAIL run, if any, wins: it must be seen)
			med=$(printf '%s' "${lines[$s]}" | awk '
				{ for (i = 1; i <= NF; i++) if ($i ~ /^msgs_per_sec=/) { split($i, a, "="); v[NR] = a[2] } l[NR] = $0; if ($0 ~ /check=FAIL/) bad = NR }
				END { if (bad) { print l[bad]; exit } n = NR
					for (i = 1; i <= n; i++) { r = 0; for (j = 1; j <= n; j++) if (v[j] < v[i] || (v[j] == v[i] && j < i)) r++; rank[r] = i }
					print l[rank[int((n - 1) / 2)]] }')
			printf '%s\n' "$med" >>"$RESULTS"
			say "   $med"
		done
		unset lines
	done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
say "   load average after: $LOAD_AFTER"

stop_all
trap - EXIT

# ---------------------------------------------------------------- report
echo
echo "postern acceptance benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r)"
echo "postern $POSTERN_DESC, Exim $(exim4 --version 2>/dev/null | sed -n '1s/Exim version \([^ ]*\).*/\1/p'), Postfix $(pf postconf -c "$WORK/postfix/etc" -h mail_version 2>/dev/null || echo '?')"
echo "load average (1/5/15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER"
echo "each cell: N messages, $PER_CONN per connection, QUIT=$QUIT; latency = connect .. 250 after the dot;"
echo "figures: the median run of $REPS by msg/s (lower middle if even); msg/s range = slowest..fastest run"
for s in postern exim postfix; do [ -n "${STATUS[$s]:-}" ] && echo "NOTE: $s ${STATUS[$s]}"; done
echo
awk '
function kv(line, key,   i, n, f, a) { n = split(line, f, " "); for (i = 1; i <= n; i++) { split(f[i], a, "="); if (a[1] == key) return a[2] } return "" }
FILENAME == ARGV[1] {
	k = kv($0, "label") SUBSEP kv($0, "size") SUBSEP kv($0, "conc"); v = kv($0, "msgs_per_sec") + 0
	if (!(k in lo) || v < lo[k]) lo[k] = v
	if (!(k in hi) || v > hi[k]) hi[k] = v
	next
}
{
	s = kv($0, "label"); z = kv($0, "size"); c = kv($0, "conc"); k = z SUBSEP c
	if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
	rate[s, k] = kv($0, "msgs_per_sec"); p50[s, k] = kv($0, "p50_ms"); p99[s, k] = kv($0, "p99_ms")
	cpu[s, k] = kv($0, "server_cpu_ms_per_msg"); n[s, k] = kv($0, "messages"); chk[s, k] = kv($0, "check")
	has[s] = 1
}
function size_name(z) { return z % 1024 == 0 ? (z / 1024) "KB" : z "B" }
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0 || a == "nan" || b == "nan") ? "-" : sprintf("%.2f", a / b) }
END {
	printf "%-6s %4s %-8s %6s %9s %13s %8s %8s %11s  %s\n", "size", "conc", "server", "N", "msg/s", "msg/s range", "p50 ms", "p99 ms", "cpu ms/msg", "queued"
	split("postern exim postfix", srv, " ")
	for (i = 1; i <= nk; i++) {
		split(order[i], zc, SUBSEP)
		for (j = 1; j <= 3; j++) { s = srv[j]; k = order[i]
			if (!((s, k) in rate)) continue
			printf "%-6s %4s %-8s %6s %9s %13s %8s %8s %11s  %s\n", size_name(zc[1]), zc[2], s, n[s, k], rate[s, k],
				sprintf("%.0f..%.0f", lo[s, zc[1], zc[2]], hi[s, zc[1], zc[2]]), p50[s, k], p99[s, k], cpu[s, k], chk[s, k] }
	}
	print ""
	print "ratios postern/other: msg/s above 1 = postern faster; p50, p99, cpu below 1 = postern better"
	printf "%-6s %4s | %-31s | %-31s\n", "", "", "postern / Exim", "postern / Postfix"
	printf "%-6s %4s | %7s %7s %7s %7s | %7s %7s %7s %7s\n", "size", "conc", "msg/s", "p50", "p99", "cpu", "msg/s", "p50", "p99", "cpu"
	for (i = 1; i <= nk; i++) { k = order[i]; split(k, zc, SUBSEP)
		printf "%-6s %4s | %7s %7s %7s %7s | %7s %7s %7s %7s\n", size_name(zc[1]), zc[2],
			ratio(rate["postern", k], rate["exim", k]), ratio(p50["postern", k], p50["exim", k]),
			ratio(p99["postern", k], p99["exim", k]), ratio(cpu["postern", k], cpu["exim", k]),
			ratio(rate["postern", k], rate["postfix", k]), ratio(p50["postern", k], p50["postfix", k]),
			ratio(p99["postern", k], p99["postfix", k]), ratio(cpu["postern", k], cpu["postfix", k]) }
}' "$WORK/all-runs.txt" "$RESULTS"
echo
echo "raw results: $RESULTS (median runs), $WORK/all-runs.txt (every run)"
[ "${KEEP:-1}" = 1 ] || rm -rf "$WORK"
exit $failed
