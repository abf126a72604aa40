# shellcheck shell=bash
# bench/lib.sh: shell functions shared by bench/run.sh (receiving) and
# bench/deliver.sh (delivery).  Sourced, not run; bash only.
#
# The caller sets, before sourcing:  repo (the repository root, the current
# directory), SERVERS, POSTERN, PF_ROOT, WORK; after sourcing it fills
# PORT[...] and defines stop_<server> for each server it starts.  Provided:
#   say, die                    messages on stderr; die exits 2
#   build_tools                 make -C bench (smtpload, smtpsink, subreaper)
#   build_postern               the release build to measure: sets POSTERN
#                               and POSTERN_DESC (see POSTERN_REV in run.sh)
#   tree_ticks root             CPU ticks of a process tree (from /proc)
#   tree_pids root              the pids of a process tree, root first
#   tree_hwm_kb root            the largest VmHWM (peak RSS) in a live tree
#   alive s, wait_port, port_free
#   stop_one s, stop_all        stop a server (stop_<s>, then SIGKILL after
#                               10 s) and wait for its subreaper
#   pf cmd args...              run a tool of the unpacked postfix .deb
#   setup_postfix_root          unpack the postfix .deb into PF_ROOT, and
#                               create the postfix user and postdrop group
#   postfix_main_paths d        the main.cf lines that point a private
#                               Postfix instance (config in d/etc, queue in
#                               d/queue) at PF_ROOT
#   postfix_master_base         master.cf lines of the internal services

HZ=$(getconf CLK_TCK)
SUB=$repo/bench/subreaper

say() { printf '%s\n' "$*" >&2; }
die() { say "${0##*/}: $*"; exit 2; }

# ---------------------------------------------------------------- builds
build_tools() {
	make -s -C "$repo/bench" smtpload smtpsink subreaper || die "cannot build the tools in bench/ (make -C bench)"
}

# POSTERN_REV=<commit>: a clean git archive of that commit, built once in
# /var/tmp/postern-bench-src/<commit>; otherwise build-bench/ from the
# working tree, unless POSTERN names another binary.
build_postern() {
	POSTERN_DESC="$(git -C "$repo" describe --always --dirty 2>/dev/null) (working tree)"
	if [[ " $SERVERS " == *" postern "* ]] && [ -n "${POSTERN_REV:-}" ]; then
		local rev src
		rev=$(git -C "$repo" rev-parse --short "$POSTERN_REV") || die "unknown commit $POSTERN_REV"
		src=/var/tmp/postern-bench-src/$rev
		if [ ! -x "$src/build/postern" ]; then
			say "building postern $rev (release) in $src"
			rm -rf "$src" && mkdir -p "$src" && git -C "$repo" archive "$rev" | tar -x -C "$src" &&
				meson setup "$src/build" "$src" --buildtype=release >/dev/null &&
				ninja -C "$src/build" postern >/dev/null || say "${0##*/}: postern $rev build failed"
		fi
		POSTERN=$src/build/postern
		POSTERN_DESC="$rev (committed tree)"
	elif [[ " $SERVERS " == *" postern "* ]] && [ "$POSTERN" = "$repo/build-bench/postern" ]; then
		# always bring the release build up to date with the tree being measured
		{ [ -f build-bench/build.ninja ] || meson setup build-bench --buildtype=release >/dev/null; } &&
			ninja -C build-bench postern >/dev/null || say "${0##*/}: postern build failed"
	elif [ "$POSTERN" != "$repo/build-bench/postern" ]; then
		POSTERN_DESC=$POSTERN
	fi
}

# ------------------------------------------------------ process bookkeeping
# ROOT: the subreaper each server runs under (root of its process tree);
# PID: the daemon itself (postern -bdf, the Exim daemon, Postfix's master)
declare -A ROOT PID PORT STATUS

# CPU ticks (user+sys, including reaped children) of a process tree: the sum
# over the live processes under root of utime+stime+cutime+cstime.  A child
# that exits is reaped by its parent in the tree (or by the subreaper at the
# root), so its time moves into that parent's cutime/cstime and still counts.
tree_ticks() {
	local root=$1
	# cat, not awk's own file list: a process may exit while we read, and
	# mawk gives up at the first file it cannot open
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$root" '
	{
		pid = $1
		line = $0
		sub(/^.*\) /, "", line)             # drop "pid (comm) ", comm may hold spaces
		split(line, f, " ")
		ppid[pid] = f[2]
		t[pid] = f[12] + f[13] + f[14] + f[15]
	}
	END {
		in_tree[root] = 1; changed = 1
		while (changed) {
			changed = 0
			for (p in ppid) if (!(p in in_tree) && (ppid[p] in in_tree)) { in_tree[p] = 1; changed = 1 }
		}
		s = 0; for (p in in_tree) if (p in t) s += t[p]
		print s
	}'
}

tree_pids() { # root -> pids of the tree, root first
	ps -e -o pid= -o ppid= | awk -v r="$1" '
		{ pp[$1] = $2 } END { print r; t[r] = 1; c = 1
		while (c) { c = 0; for (p in pp) if (!(p in t) && (pp[p] in t)) { t[p] = 1; print p; c = 1 } } }'
}

# The largest peak resident set (VmHWM, kB) among the live processes of a
# tree: exited processes are not seen (the subreaper's ru_maxrss covers them)
tree_hwm_kb() {
	local p m=0 v
	for p in $(tree_pids "$1"); do
		v=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status" 2>/dev/null)
		[ -n "$v" ] && [ "$v" -gt "$m" ] && m=$v
	done
	echo "$m"
}

alive() { [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null; }

wait_port() { # port seconds
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

port_free() { ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

stop_one() {
	local s=$1 root=${ROOT[$1]:-}
	[ -n "$root" ] || return 0
	"stop_$s" 2>/dev/null
	local end=$((SECONDS + 10))
	while kill -0 "$root" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
	if kill -0 "$root" 2>/dev/null; then
		say "   $s did not stop within 10 s: SIGKILL to its process tree"
		kill -KILL $(tree_pids "$root" | tac) 2>/dev/null
	fi
	wait "$root" 2>/dev/null
	ROOT[$s]= PID[$s]=
}
stop_all() { for s in postern exim postfix; do stop_one "$s"; done; }

# ---------------------------------------------------------------- Postfix
# Debian's postfix conflicts with exim4 as a package, so it runs from the
# unpacked .deb with a private configuration directory.
pf() { LD_LIBRARY_PATH=$PF_ROOT/usr/lib/postfix "$PF_ROOT/usr/sbin/$1" "${@:2}"; }
setup_postfix_root() {
	local R=$PF_ROOT
	if [ ! -x "$R/usr/lib/postfix/sbin/master" ]; then
		say "postfix: unpacking Debian's postfix .deb into $R"
		local tmp
		tmp=$(mktemp -d) || return 1
		(cd "$tmp" && apt-get download postfix >/dev/null 2>&1) ||
			{ apt-get update -qq >/dev/null 2>&1; (cd "$tmp" && apt-get download postfix >/dev/null 2>&1); } ||
			{ say "postfix: apt-get download postfix failed"; rm -rf "$tmp"; return 1; }
		mkdir -p "$R" && dpkg -x "$tmp"/postfix_*.deb "$R" || { rm -rf "$tmp"; return 1; }
		rm -rf "$tmp"
	fi
	getent group postdrop >/dev/null || groupadd --system postdrop || return 1
	id postfix >/dev/null 2>&1 || useradd --system --user-group --no-create-home \
		--home-dir /nonexistent --shell /usr/sbin/nologin postfix || return 1
	chgrp postdrop "$R/usr/sbin/postqueue" "$R/usr/sbin/postdrop" && chmod 2755 "$R/usr/sbin/postqueue" "$R/usr/sbin/postdrop"
}
# The main section both benchmarks give Exim (and deliver.sh postern too):
# queue what arrives (queue_only), accept every recipient from loopback.
exim_main_common() { # dir
	local d=$1
	cat <<-EOF
	primary_hostname = bench.example
	spool_directory = $d/spool
	log_file_path = $d/spool/log/%slog
	exim_user = Debian-exim
	exim_group = Debian-exim
	queue_only
	smtp_accept_max = 0
	smtp_connect_backlog = 128
	rfc1413_query_timeout = 0s
	acl_smtp_rcpt = acl_rcpt
	EOF
}

# main.cf lines both benchmarks use: a Postfix on 127.0.0.1 that accepts
# from loopback and holds what arrives (check_client_access static:HOLD)
postfix_main_common() { # dir
	local d=$1
	cat <<-EOF
	compatibility_level = 3.6
	myhostname = bench.example
	mydomain = bench.example
	myorigin = bench.example
	mydestination =
	inet_interfaces = 127.0.0.1
	inet_protocols = ipv4
	mynetworks = 127.0.0.0/8
	$(postfix_main_paths "$d")
	alias_maps =
	alias_database =
	biff = no
	append_dot_mydomain = no
	smtpd_peername_lookup = no
	smtpd_relay_restrictions = permit_mynetworks, reject
	smtpd_recipient_restrictions = check_client_access static:HOLD, permit_mynetworks, reject
	smtpd_client_connection_count_limit = 0
	smtpd_client_connection_rate_limit = 0
	default_process_limit = 200
	EOF
}

postfix_main_paths() {
	local d=$1 R=$PF_ROOT
	cat <<-EOF
	queue_directory = $d/queue
	data_directory = $d/data
	command_directory = $R/usr/sbin
	daemon_directory = $R/usr/lib/postfix/sbin
	meta_directory = $R/etc/postfix
	shlib_directory = $R/usr/lib/postfix
	sendmail_path = $R/usr/sbin/sendmail
	newaliases_path = $R/usr/bin/newaliases
	mailq_path = $R/usr/bin/mailq
	manpage_directory = $R/usr/share/man
	html_directory = no
	readme_directory = no
	mail_owner = postfix
	setgid_group = postdrop
	import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH=$R/usr/lib/postfix
	maillog_file_prefixes = $d
	maillog_file = $d/maillog
	EOF
}
# no chroot (column 5 = n)
postfix_master_base() {
	cat <<-EOF
	cleanup   unix n - n -    0 cleanup
	qmgr      unix n - n 300  1 qmgr
	pickup    unix n - n 60   1 pickup
	rewrite   unix - - n -    - trivial-rewrite
	bounce    unix - - n -    0 bounce
	defer     unix - - n -    0 bounce
	trace     unix - - n -    0 bounce
	showq     unix n - n -    - showq
	error     unix - - n -    - error
	retry     unix - - n -    - error
	discard   unix - - n -    - discard
	anvil     unix - - n -    1 anvil
	scache    unix - - n -    1 scache
	flush     unix n - n 1000? 0 flush
	proxymap  unix - - n -    - proxymap
	postlog   unix-dgram n - n - 1 postlogd
	EOF
}
