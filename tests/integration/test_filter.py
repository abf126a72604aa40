"""Exim filter files.  Part one: -bf/-bF differential runs, the same filter
and message through Debian's Exim 4.96 and postern, standard output and
exit codes compared (a corpus covering every command and condition, the
error messages, forward files and the test envelope).  Part two: a user's
.forward filter through the real daemon (save, deliver, vacation, pipe,
logwrite, significant deliveries)."""
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from mta import Daemon
from test_autoreply import mbox_messages
from test_deliver import EXIM, mail, send, wait_for  # noqa: F401  (mail is a fixture)

CONF = "primary_hostname = test.example\n"

MSG = ("From: Alice <alice@example.org>\n"
       "To: root@test.example, Bob <bob@example.com>\n"
       "Cc: carol@example.net\n"
       "Subject: Hello World\n"
       "Message-ID: <m1@example.org>\n"
       "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
       "Precedence: first-class\n"
       "\n"
       "body line one\n"
       "line two $ money\n")


def msg(*extra, body="hi\n", base=MSG):
    """MSG with extra header lines added before Subject:, or another body."""
    head, _ = base.split("\n\n", 1)
    lines = head.split("\n")
    return "\n".join(lines[:3] + list(extra) + lines[3:]) + "\n\n" + body


CONDITIONS = r"""# Exim filter
if personal then testprint personal else testprint notpersonal endif
if personal alias alice@example.org then testprint p2 else testprint np2 endif
if personal alias root@elsewhere.example then testprint p3 else testprint np3 endif
if $h_subject: contains "hello" then testprint c1 endif
if $h_subject: CONTAINS "hello" then testprint c2 else testprint c3 endif
if $h_subject: contain "LO W" then testprint c4 endif
if $h_subject: begins "hello" and $h_subject: ends WORLD then testprint be endif
if $h_subject: BEGINS "hello" or $h_subject: ENDS WORLD then testprint be2 else testprint nbe2 endif
if $h_subject: begin "Hell" and $h_subject: END "rld" then testprint be3 endif
if $h_subject: does not begin x and $h_subject: does not end y then testprint dnb endif
if $h_subject: does not BEGIN hello then testprint dnB endif
if $h_subject: is "hello world" then testprint is1 endif
if $h_subject: IS "hello world" then testprint is2 else testprint nis2 endif
if $h_subject: is not "x" then testprint isnot endif
if $h_subject: IS not "Hello World" then testprint ISnot else testprint nISnot endif
if $h_subject: does not contain "x" then testprint dnc endif
if $h_subject: does not CONTAIN "hello" then testprint dnC endif
if $h_subject: matches "\\N^(\\w+) (\\w+)$\\N" then testprint "m: $1 / $2 / $0" endif
testprint "still: $1"
if $h_subject: MATCHES "^hello" then testprint M1 else testprint nM1 endif
if $h_subject: match "(?i)^HELLO" then testprint m2 endif
if $h_subject: does not match "^x" then testprint dnm endif
if $h_subject: does not MATCH "^hello" then testprint dnM endif
if $message_size is above 10 then testprint above endif
if 2k is below 1M then testprint below endif
if 0x10 is above 15 and 010 is below 9 then testprint cnum endif
if "1k " is above 1023 then testprint ksp endif
if $message_size is not below 1 then testprint notbelow endif
if $message_size is not above 1 then testprint notabove else testprint isabove endif
if error_message then testprint err else testprint noerr endif
if not error_message then testprint noerr2 endif
if first_delivery then testprint first endif
if manually_thawed then testprint thawed else testprint notthawed endif
if delivered then testprint d1 endif
unseen deliver x@y.z
if delivered then testprint d2 else testprint nd2 endif
if not delivered then testprint nd3 endif
if foranyaddress $h_to: ($thisaddress matches "^bob@") then testprint "any: $thisaddress" endif
testprint "after: [$thisaddress]"
if foranyaddress "$h_to:,$h_cc:" ( $thisaddress ends ".net" ) then testprint "cc: $thisaddress" endif
if foranyaddress "grp: a@b.c, d@e.f;, g@h.i" ($thisaddress is d@e.f) then testprint "group: $thisaddress" endif
if not (foranyaddress $h_to: ($thisaddress is nobody@x)) then testprint nobody endif
if foranyaddress "" ($thisaddress is "") then testprint empty else testprint noempty endif
if ($h_subject: contains x or $h_subject: contains hello) and not $h_from: contains mallory then testprint paren endif
if not ($h_subject: contains x or $h_subject: contains y) then testprint notparen endif
if a is b or c is c and d is d then testprint prec1 endif
if a is a or c is d and e is f then testprint prec2 endif
if a is b and c is c or d is d then testprint prec3 endif
if (a is b or c is c) and (d is e or f is f) and not (g is h) then testprint prec4 endif
if a is a and b is b and c is c and d is e or x is x and y is z or q is q then testprint prec5 endif
if $h_precedence: contains junk then testprint junk elif $h_precedence: contains first then testprint elif1 else testprint else1 endif
if 1 is 2 then testprint no elif 2 is 3 then testprint no2 elif 3 is 3 then testprint elif2 endif
if 1 is 2 then testprint no else if 2 is 2 then testprint nested endif endif
if(1 is 1)then testprint brackets endif
if 1 is 2 then testprint x elif(2 is 2) then testprint elifbracket endif
if $h_x-missing: is "" then testprint missing endif
if is is is then testprint isis endif
if "a b" is "a b" then testprint quoted endif
"""

COMMANDS = r"""# Exim filter
deliver bob@example.com
deliver "Dr Livingstone <David@somewhere.africa.example>"
deliver carol
unseen deliver dave@example.com
noerror deliver erin@example.com
deliver root@test.example errors_to root@test.example
save /tmp/folder
save relative/folder
save /tmp/folder 640
save /tmp/folder 0600
unseen save /tmp/unseen
noerror save /tmp/noerror
save /tmp/dir/
pipe "/usr/bin/vacation \"$local_part\""
unseen pipe /bin/true
noerror pipe "/bin/cat -"
testprint "tab:\t nl:\n cr:\r bs:\\ q:\" oct:\101\60 hex:\x41\x4a bell:\007 esc:\033"
testprint "continued \
      line"
testprint unquoted-$local_part
logfile /tmp/filter.log
logfile /tmp/filter.log 0644
logwrite "$local_part does not appear"
logwrite "line with newline\n"
seen logwrite "seen log"
add 3 to n1
add 0x10 to n1
add -2 to n9
add $n1 to n2
add -$n9 to n3
testprint "n: $n0 $n1 $n2 $n3 $n9 sn: $sn0 $sn9"
headers charset "UTF-8"
testprint "subject: $h_subject:"
if $h_subject: contains hello then
  seen finish
endif
testprint "not reached"
"""

MAIL = r"""# Exim filter
mail to "Julius Caesar <jc@rome.example>, <ma@rome.example> (Mark A.)"
     cc "cc1@example.com" bcc bcc@example.com from "me@test.example" reply_to "r@example.com"
     subject "Re: $h_subject:" extra_headers "X-One: 1\nX-Two: two\n continued"
     text "Hello $h_from:,\nI am away.\n" expand file /tmp/vacation.msg
     log /tmp/vacation.log once /tmp/vacation.db once_repeat 5d4h
     return message
mail text "just text"
seen mail subject "seen one" text t
noerror mail to a@b.c text x
vacation
vacation to "x@y.z" subject "Away" file /tmp/away.msg log /tmp/away.log once /tmp/away.db once_repeat 1w
if delivered then testprint delivered endif
"""


def exim_only(name):
    return pytest.param(name, marks=pytest.mark.skipif(not EXIM, reason="no exim4"))


CASES = {
    # name: (filter text, message, extra arguments)
    "conditions": (CONDITIONS, MSG, ["-f", "sender@x.y"]),
    "conditions_bounce": (CONDITIONS, MSG, ["-f", "<>"]),
    "commands": (COMMANDS, MSG, ["-f", "sender@x.y"]),
    "mail": (MAIL, MSG, ["-f", "sender@x.y"]),
    "mail_to_bounce": (MAIL, MSG, ["-f", "<>"]),
    "vars": (r"""# Exim filter
testprint "lp=$local_part dom=$domain pre=[$local_part_prefix] suf=[$local_part_suffix]"
testprint "olp=$original_local_part odom=$original_domain home=$home"
testprint "sender=$sender_address rp=$return_path reply=$reply_address"
testprint "size=$message_size bsize=$message_body_size lines=$body_linecount zeros=$body_zerocount"
testprint "body=[$message_body] end=[$message_body_end]"
testprint "headers=[$message_headers]"
testprint "raw=[$message_headers_raw]"
testprint "to=[$h_to:] rto=[$rh_to:] cc=[$header_cc:] missing=[$h_nothing:]"
testprint "recipients=$recipients_count"
""", MSG, ["-f", "sender@x.y", "-bfl", "lp", "-bfd", "dom.example", "-bfp", "pre-", "-bfs", "-suf"]),
    "reply_to": ("# Exim filter\ntestprint $reply_address\nmail text x\n",
                 msg("Reply-To: <replies@example.org>"), ["-f", "s@x.y"]),
    "long_body": ("# Exim filter\ntestprint \"[$message_body]\"\ntestprint \"[$message_body_end]\"\n"
                  "testprint \"$message_body_size $body_linecount $body_zerocount\"\n",
                  msg(body="".join(f"line {i:04d} of the body\n" for i in range(100)) + "x\0y\n"),
                  ["-f", "s@x.y"]),
    "crlf_no_final_newline": ("# Exim filter\ntestprint \"$message_size $message_body_size $body_linecount\"\n"
                              "testprint \"[$message_body]\"\n",
                              MSG.replace("\n", "\r\n").rstrip("\r\n") + "\r\nlast", ["-f", "s@x.y"]),
    "dot_ends": ("# Exim filter\ntestprint \"[$message_body] $message_size $body_linecount\"\n",
                 msg(body="a\n..\nb\n.\nafter\n"), ["-f", "s@x.y"]),
    "dot_i": ("# Exim filter\ntestprint \"[$message_body] $message_size $body_linecount\"\n",
              msg(body="a\n.\nafter\n"), ["-f", "s@x.y", "-i"]),
    "from_line": ("# Exim filter\ntestprint \"$sender_address $return_path\"\n",
                  "From someone@example.org Mon Jan  1 00:00:00 2024\n" + MSG, []),
    "from_line_and_f": ("# Exim filter\ntestprint \"$sender_address $message_size\"\n",
                        "From someone@example.org Mon Jan  1 00:00:00 2024\n" + MSG, ["-f", "given@x.y"]),
    "return_path_header": ("# Exim filter\ntestprint \"$return_path / $sender_address / [$h_return-path:]\"\n"
                           "mail text x\n", msg("Return-Path: <rp@example.net>"), ["-f", "s@x.y"]),
    "empty_return_path": ("# Exim filter\nvacation\n", msg("Return-path: <>"), ["-f", "s@x.y"]),
    "no_headers": ("# Exim filter\ntestprint \"[$message_body] $message_size\"\n", "\nbody only\n",
                   ["-f", "s@x.y"]),
    "not_a_header": ("# Exim filter\ntestprint \"[$message_body] $message_size $body_linecount\"\n",
                     "Subject: x\nFrom: a@b.c\nMessage-ID: <x@y>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
                     "this is no header\nbody\n", ["-f", "s@x.y"]),
    "personal_list": ("# Exim filter\nif personal then testprint yes else testprint no endif\n",
                      msg("List-Id: <list.example.org>"), ["-f", "s@x.y"]),
    "personal_list_other": ("# Exim filter\nif personal then testprint yes else testprint no endif\n",
                            msg("List-Whatever: x"), ["-f", "s@x.y"]),
    "personal_autosubmitted": ("# Exim filter\nif personal then testprint yes else testprint no endif\n",
                               msg("Auto-Submitted: auto-replied"), ["-f", "s@x.y"]),
    "personal_autosubmitted_no": ("# Exim filter\nif personal then testprint yes else testprint no endif\n",
                                  msg("Auto-Submitted:  no "), ["-f", "s@x.y"]),
    "personal_bulk": ("# Exim filter\nif personal then testprint yes else testprint no endif\n",
                      msg("Precedence: bulk"), ["-f", "s@x.y"]),
    "personal_daemon": ("# Exim filter\nif personal then testprint yes else testprint no endif\n",
                        MSG.replace("From: Alice <alice@example.org>", "From: MAILER-DAEMON@example.org"),
                        ["-f", "s@x.y"]),
    "personal_request": ("# Exim filter\nif personal then testprint yes else testprint no endif\n",
                         MSG.replace("alice@example.org", "list-request@example.org"), ["-f", "s@x.y"]),
    "personal_from_me": ("# Exim filter\nif personal then testprint yes else testprint no endif\n",
                         MSG.replace("alice@example.org", "root@test.example"), ["-f", "s@x.y"]),
    "personal_not_to_me": ("# Exim filter\nif personal then testprint yes else testprint no endif\n"
                           "if personal alias bob@example.com then testprint alias else testprint noalias endif\n",
                           MSG, ["-f", "s@x.y", "-bfl", "someone"]),
    "personal_suffix": ("# Exim filter\nif personal then testprint yes else testprint no endif\n",
                        MSG.replace("root@test.example", "root-x@test.example"), ["-f", "s@x.y", "-bfs", "-x"]),
    "personal_regex_alias": ("# Exim filter\nif personal alias ^bob@ then testprint yes else testprint no endif\n",
                             MSG, ["-f", "s@x.y", "-bfl", "nobody"]),
    "finish": ("# Exim filter\ntestprint a\nfinish\ntestprint b\n", MSG, []),
    "seen_finish": ("# Exim filter\nseen finish\n", MSG, []),
    "unseen_finish_after_deliver": ("# Exim filter\ndeliver a@b.c\nunseen finish\n", MSG, []),
    "seen_testprint": ("# Exim filter\nseen testprint x\nunseen logfile /tmp/x\n", MSG, []),
    "comments_only": ("# Exim filter\n# nothing else\n   # at all\n", MSG, []),
    "empty_filter": ("# Exim filter", MSG, []),
    "header_spacing": ("  \n\t#exim   FILTER  extra words\ntestprint ok\n", MSG, []),
    "header_case": ("# EXIM filter\ntestprint ok # a comment\ntestprint#not a comment\n", MSG, []),
    "user_fail": ("# Exim filter\nfail text \"go away\"\n", MSG, []),
    "user_freeze": ("# Exim filter\nfreeze\n", MSG, []),
    "user_defer": ("# Exim filter\ndefer \"later\"\n", MSG, []),
    "user_headers_add": ("# Exim filter\nheaders add \"X-A: b\"\n", MSG, []),
    "user_headers_bad": ("# Exim filter\nheaders frobnicate x\n", MSG, []),
    # errors
    "err_unknown": ("# Exim filter\n\nfoo bar\n", MSG, []),
    "err_endif_missing": ("# Exim filter\nif a is a then\n  testprint x\n", MSG, []),
    "err_endif_missing_else": ("# Exim filter\nif a is a then testprint x else testprint y else endif\n", MSG, []),
    "err_unexpected_else": ("# Exim filter\ntestprint x\nelse\n", MSG, []),
    "err_unexpected_endif": ("# Exim filter\nendif\n", MSG, []),
    "err_then_missing": ("# Exim filter\nif a is a\n", MSG, []),
    "err_then_first": ("# Exim filter\nif then endif\n", MSG, []),
    "err_and_or": ("# Exim filter\nif a is a xor b is b then endif\n", MSG, []),
    "err_close_missing": ("# Exim filter\nif (a is a then endif\n", MSG, []),
    "err_close_extra": ("# Exim filter\nif a is a) then endif\n", MSG, []),
    "err_open_after": ("# Exim filter\nif a is a (b is b) then endif\n", MSG, []),
    "err_cond_word": ("# Exim filter\nif a frobs b then endif\n", MSG, []),
    "err_forany": ("# Exim filter\nif foranyaddress $h_to: $thisaddress is x then endif\n", MSG, []),
    "err_forany_close": ("# Exim filter\nif foranyaddress $h_to: ($thisaddress is x then endif\n", MSG, []),
    "err_seen_if": ("# Exim filter\nseen if a is a then endif\n", MSG, []),
    "err_seen_add": ("# Exim filter\nunseen add 1 to n1\n", MSG, []),
    "err_seen_repeated": ("# Exim filter\nseen unseen deliver a@b\n", MSG, []),
    "err_seen_else": ("# Exim filter\nif a is a then seen else endif\n", MSG, []),
    "err_seen_end": ("# Exim filter\nseen", MSG, []),
    "err_noerror_end": ("# Exim filter\nnoerror   \n", MSG, []),
    "err_no_argument": ("# Exim filter\ndeliver\n", MSG, []),
    "err_empty_argument": ("# Exim filter\nsave \"\"\n", MSG, []),
    "err_quote": ("# Exim filter\ntestprint \"abc\ntestprint x\n", MSG, []),
    "err_return": ("# Exim filter\nmail text x return to\n", MSG, []),
    "err_expand_file": ("# Exim filter\nmail text x expand log y\n", MSG, []),
    "err_add_to": ("# Exim filter\nadd 1 into n1\n", MSG, []),
    "err_add_value": ("# Exim filter\nadd 1 to\n", MSG, []),
    "err_add_var": ("# Exim filter\nadd 1 to x1\n", MSG, []),
    "err_add_var2": ("# Exim filter\nadd 1 to n10\n", MSG, []),
    "err_add_number": ("# Exim filter\nadd 1x to n1\n", MSG, []),
    "err_expand": ("# Exim filter\ntestprint \"${if eq{1}{2}{x}fail}\"\n", MSG, []),
    "err_expand_var": ("# Exim filter\nsave $nosuchvar\n", MSG, []),
    "err_expand_cond": ("# Exim filter\nif $nosuch is x then endif\n", MSG, []),
    "err_regex": ("# Exim filter\nif $h_subject: matches \"(\" then endif\n", MSG, []),
    "err_number": ("# Exim filter\nif $h_subject: is above 3 then endif\n", MSG, []),
    "err_address": ("# Exim filter\ndeliver \"a@\"\n", MSG, []),
    "err_errors_to": ("# Exim filter\ndeliver a@b.c errors_to someone@else.example\n", MSG, []),
    "err_mail_header_nl": ("# Exim filter\nmail subject \"a\nb\" text x\n", MSG, ["-f", "s@x.y"]),
    "err_mail_extra_headers": ("# Exim filter\nmail extra_headers \"X-A: 1\nnot a header\" text x\n",
                               MSG, ["-f", "s@x.y"]),
    "err_mail_file": ("# Exim filter\nmail text x file \"/tmp/a\tb\"\n", MSG, ["-f", "s@x.y"]),
    "err_runtime_after_output": ("# Exim filter\ndeliver a@b.c\ntestprint x\nsave $bad\n", MSG, []),
    "err_word_too_long": ("# Exim filter\ntestprint " + "x" * 1100 + "\n", MSG, []),
    "err_string_too_long": ("# Exim filter\ntestprint \"" + "y" * 1100 + "\"\n", MSG, []),
    # forward files
    "forward": ("a@b.c, bob\n\"|/bin/x y\", /tmp/f\n# comment\nc@d.e\n", MSG, []),
    "forward_blackhole": ("a@b.c\n:blackhole:\n", MSG, []),
    "forward_fail": ("a@b.c, :fail: no\n", MSG, []),
    "forward_empty": ("# just a comment\n", MSG, []),
}


def run_bf(binary, tmp_path, name, filt, message, args, system=None):
    d = tmp_path / binary.replace("/", "_")
    d.mkdir(exist_ok=True)
    conf = d / "conf"
    conf.write_text(CONF)
    f = d / name                      # the file name is in the output
    f.write_text(filt)
    cmd = [binary, "-C", str(conf)]
    if system is not None:
        s = d / (name + ".system")
        s.write_text(system)
        cmd += ["-bF", str(s)]
    cmd += ["-bf", str(f)] + args
    p = subprocess.run(cmd, input=message.encode(), capture_output=True, cwd=str(d))
    return p.returncode, p.stdout.decode(errors="replace").replace(str(d), "DIR")


@pytest.mark.skipif(not EXIM, reason="no exim4")
@pytest.mark.parametrize("name", sorted(CASES))
def test_bf_same_as_exim(postern_bin, tmp_path, name):
    filt, message, args = CASES[name]
    want = run_bf(EXIM, tmp_path, name, filt, message, args)
    got = run_bf(postern_bin, tmp_path, name, filt, message, args)
    assert got == want


SYSTEM = r"""# Exim filter
if $h_subject: contains "hello" then
  headers add "X-Spam-Flag: maybe"
  headers add "X-Second: two\n"
  headers remove "precedence:cc"
  add 7 to n3
endif
testprint "[$h_x-spam-flag:] [$h_x-second:] [$h_precedence:] [$h_cc:]"
if personal then testprint personal else testprint notpersonal endif
"""

USER_AFTER_SYSTEM = "# Exim filter\ntestprint \"[$h_x-spam-flag:] [$h_cc:] sn3=$sn3 n3=$n3\"\n"

SYSTEM_CASES = {
    "system_headers": (SYSTEM, USER_AFTER_SYSTEM),
    "system_fail": ("# Exim filter\nif $h_subject: contains hello then fail text \"Rejected: $h_subject:\" endif\n"
                    "testprint x\n", USER_AFTER_SYSTEM),
    "system_fail_plain": ("fail\n", USER_AFTER_SYSTEM),
    "system_freeze": ("freeze \"held\"\n", USER_AFTER_SYSTEM),
    "system_defer": ("deliver a@b.c\ndefer text \"later\\nplease\"\n", USER_AFTER_SYSTEM),
    "system_errors_to": ("deliver a@b.c errors_to x@y.z\n", USER_AFTER_SYSTEM),
    "system_error": ("headers add\n", USER_AFTER_SYSTEM),
}


@pytest.mark.skipif(not EXIM, reason="no exim4")
@pytest.mark.parametrize("name", sorted(SYSTEM_CASES))
def test_bF_same_as_exim(postern_bin, tmp_path, name):
    system, user = SYSTEM_CASES[name]
    want = run_bf(EXIM, tmp_path, name, user, MSG, ["-f", "s@x.y"], system=system)
    got = run_bf(postern_bin, tmp_path, name, user, MSG, ["-f", "s@x.y"], system=system)
    assert got == want


def test_bf_sieve_is_refused(postern_bin, tmp_path):
    """Sieve filters are not implemented: -bf says so (Exim would run it)."""
    rc, out = run_bf(postern_bin, tmp_path, "sieve", "# Sieve filter\nkeep;\n", MSG, [])
    assert rc == 1 and 'Testing Sieve filter file "DIR/sieve"\n\nexim: Sieve filtering not available\n' in out


def test_bf_missing_file(postern_bin, tmp_path):
    (tmp_path / "conf").write_text(CONF)
    p = subprocess.run([postern_bin, "-C", str(tmp_path / "conf"), "-bf", str(tmp_path / "nosuch")],
                       input=b"", capture_output=True)
    assert p.returncode == 1 and b"failed to open" in p.stderr and p.stdout == b""


def test_bf_does_nothing(postern_bin, tmp_path):
    """Testing writes no log file, runs no pipe and makes no spool."""
    log = tmp_path / "filter.log"
    (tmp_path / "conf").write_text(CONF + f"spool_directory = {tmp_path}/spool\n")
    (tmp_path / "f").write_text(f"# Exim filter\nlogfile {log}\nlogwrite hello\npipe \"/bin/touch {tmp_path}/x\"\n"
                                f"save {tmp_path}/saved\n")
    p = subprocess.run([postern_bin, "-C", str(tmp_path / "conf"), "-bf", str(tmp_path / "f")],
                       input=MSG.encode(), capture_output=True)
    assert p.returncode == 0
    assert f"Logwrite \"hello\\n\"\nPipe message to: /bin/touch {tmp_path}/x\n".encode() in p.stdout
    assert not log.exists() and not (tmp_path / "x").exists() and not (tmp_path / "saved").exists()
    assert not (tmp_path / "spool").exists()


# ---- part two: a user's .forward filter through the real daemon -----------

FORWARD_FILTER = """\
# Exim filter
logfile {work}/filter.log 0640
logwrite "$local_part got \\"$h_subject:\\" from $sender_address"
if $h_subject: contains "discard" then seen finish endif
if error_message then finish endif
if $h_subject: contains "archive" then
  save {mail}/archive 0640
endif
if $h_subject: contains "forward" then
  deliver bob@a.example
endif
if $h_subject: contains "pipe" then
  pipe "/bin/sh -c 'cat > {mail}/piped'"
endif
if $local_part_data matches "^(no)(.)" and $h_subject: contains "pipe" then
  unseen pipe "/bin/sh -c 'echo \\"$local_part_data $1 $2\\" > {mail}/piped.args'"
endif
if $h_subject: contains "tainted" then
  pipe "/bin/echo $h_subject:"
endif
if personal alias nobody@a.example then
  vacation to $reply_address subject "Away: $h_subject:" text "I am away.\\n"
           file {work}/vacation.msg once {work}/vacation.db log {work}/vacation.log
endif
"""


def forward_config(mail, work, allow_filter=True, extra=""):
    router = ("userforward:\n  driver = redirect\n  domains = +local_domains\n  check_local_user\n"
              "  local_parts = nobody : daemon\n"
              f"  file = {work}/$local_part_data.forward\n" + ("  allow_filter\n" if allow_filter else "") +
              "  pipe_transport = address_pipe\n  file_transport = address_file\n"
              "  reply_transport = address_reply\n  no_verify\n"
              # nobody's home (/nonexistent) is missing: Exim would defer
              # deliveries run there, so they run in / instead
              "  transport_current_directory = /\n" + extra +
              "nobodybox:\n  driver = accept\n  local_parts = nobody : daemon\n  transport = mbox\n")
    transports = ("address_file:\n  driver = appendfile\n  envelope_to_add\n  return_path_add\n"
                  "address_pipe:\n  driver = pipe\n  return_output\n"
                  "address_reply:\n  driver = autoreply\n")
    from test_deliver import local_config
    return local_config(mail, None, extra_routers=router, extra_transports=transports)


@pytest.fixture
def work():
    d = pathlib.Path(tempfile.mkdtemp(prefix="postern-filter-"))
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write_forward(work, user, text):
    """A user's .forward: owned by the user, as check_local_user wants (Exim
    defers 'bad owner' for one that root owns)."""
    (work / f"{user}.forward").write_text(text)
    shutil.chown(work / f"{user}.forward", user)


def note(subject, sender="sender@a.example", to="nobody@a.example"):
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{abs(hash(subject))}@a.example>\r\n"
            f"\r\nThe body.\r\n")


def completed(d, n):
    return lambda: d.mainlog().count(" Completed") >= n


def test_forward_filter_end_to_end(postern_bin, tmp_path, mail, work):
    write_forward(work, "nobody", FORWARD_FILTER.format(work=work, mail=mail))
    (work / "vacation.msg").write_text("Back on Monday.\n")
    with Daemon(postern_bin, tmp_path, forward_config(mail, work), queue_only=False) as d:
        # 1: saved, forwarded and answered; significant, so no normal delivery
        send(d.port, "sender@a.example", ["nobody@a.example"], note("archive and forward"))
        assert wait_for(lambda: completed(d, 2)() and (mail / "sender").exists())
        log = d.mainlog()
        assert f"=> {mail}/archive <nobody@a.example> R=userforward T=address_file" in log
        assert "=> bob <nobody@a.example> R=local T=mbox" in log
        assert "=> >sender@a.example <nobody@a.example> R=userforward T=address_reply" in log
        assert " <= <> R=" in log
        archive = (mail / "archive").read_text()
        assert "Subject: archive and forward" in archive and "Envelope-to: nobody@a.example" in archive
        st = (mail / "archive").stat()
        assert st.st_uid == 65534 and (st.st_mode & 0o777) == 0o640      # as the user, save's mode
        [fwd] = mbox_messages(mail / "bob")
        assert fwd["Subject"] == "archive and forward"
        [reply] = mbox_messages(mail / "sender")
        assert reply["Subject"] == "Away: archive and forward"
        assert reply["To"] == "sender@a.example"
        assert reply["In-Reply-To"] and reply["Auto-Submitted"] == "auto-replied"
        assert reply.get_payload() == "I am away.\nBack on Monday.\n"
        assert not (mail / "nobody").exists()
        assert "To: sender@a.example\n  Subject: Away: archive and forward" in (work / "vacation.log").read_text()
        flog = work / "filter.log"
        assert flog.read_text() == 'nobody got "archive and forward" from sender@a.example\n'
        assert flog.stat().st_uid == 65534 and (flog.stat().st_mode & 0o777) == 0o640

        # 2: only a vacation reply, which is not significant: normal delivery
        # too (the same sender is not answered twice: once)
        send(d.port, "sender@a.example", ["nobody@a.example"], note("just a note"))
        assert wait_for(lambda: completed(d, 3)() and (mail / "nobody").exists())
        assert len(mbox_messages(mail / "sender")) == 1
        [normal] = mbox_messages(mail / "nobody")
        assert normal["Subject"] == "just a note"
        assert "=> nobody <nobody@a.example> R=nobodybox T=mbox" in d.mainlog()
        assert "previously sent to sender@a.example" in (work / "vacation.log").read_text()

        # 3: a bounce gets no reply ("finish" before it), and is delivered
        send(d.port, "", ["nobody@a.example"], note("bounce back", sender="MAILER-DAEMON@a.example"))
        assert wait_for(lambda: completed(d, 4)() and len(mbox_messages(mail / "nobody")) == 2)
        assert d.mainlog().count(" <= <> R=") == 1

        # 4: seen finish throws the message away
        send(d.port, "carol@a.example", ["nobody@a.example"], note("discard me", sender="carol@a.example"))
        assert wait_for(completed(d, 5))
        assert len(mbox_messages(mail / "nobody")) == 2
        assert not (mail / "carol").exists()

        # 5: a pipe with arguments expanded by the filter ($1 from its match)
        send(d.port, "carol@a.example", ["nobody@a.example"], note("pipe please", sender="carol@a.example"))
        # (the two pipes run one after the other: wait for both to finish)
        piped = mail / "piped"
        assert wait_for(lambda: completed(d, 6)() and (mail / "piped.args").exists() and piped.exists()
                        and "pipe please" in piped.read_text())
        assert (mail / "piped.args").read_text() == "nobody no b\n"
        assert "Subject: pipe please" in (mail / "piped").read_text()
        log = d.mainlog()
        assert "R=userforward T=address_pipe" in log

        # 6: message data may not become a command argument (Exim refuses
        # it in the transport; here the filter stops with the error)
        send(d.port, "carol@a.example", ["nobody@a.example"], note("tainted", sender="carol@a.example"))
        assert wait_for(lambda: "== nobody@a.example" in d.mainlog())
        assert ("== nobody@a.example R=userforward defer (-17): error in filter file: "
                "Tainted arg 2 for pipe command: 'tainted'") in d.mainlog()
    lines = flog.read_text().splitlines()
    assert lines[-2:] == ['nobody got "pipe please" from carol@a.example', 'nobody got "tainted" from carol@a.example']
    assert len(lines) == 6


def test_forward_filter_errors(postern_bin, tmp_path, mail, work):
    """A filter with a syntax error defers the address (error in filter
    file, as Exim says it); without allow_filter a filter is not obeyed."""
    write_forward(work, "nobody", "# Exim filter\nif $h_subject: contains x then\n")
    write_forward(work, "daemon", "# Exim filter\ndeliver bob@a.example\nfail text \"no\"\n")
    with Daemon(postern_bin, tmp_path, forward_config(mail, work), queue_only=False) as d:
        send(d.port, "sender@a.example", ["nobody@a.example", "daemon@a.example"], note("x marks"))
        assert wait_for(lambda: "daemon@a.example" in d.mainlog() and "nobody@a.example" in d.mainlog()
                        and "==" in d.mainlog())
        log = d.mainlog()
        assert ("== nobody@a.example R=userforward defer (-17): error in filter file: "
                "\"endif\" missing at end of filter file") in log
        # fail is not permitted without allow_fail
        assert ("== daemon@a.example R=userforward defer (-17): error in filter file: "
                "filtering command \"fail\" is disabled: near line 3 of filter file") in log
    cfg = forward_config(mail, work, allow_filter=False)
    (tmp_path / "b").mkdir()
    with Daemon(postern_bin, tmp_path / "b", cfg, queue_only=False) as d:
        send(d.port, "sender@a.example", ["daemon@a.example"], note("x again"))
        assert wait_for(lambda: "== daemon@a.example" in d.mainlog())
        assert "error in filter file: filtering not enabled" in d.mainlog()


def test_forward_filter_fail_and_forbid(postern_bin, tmp_path, mail, work):
    write_forward(work, "daemon", "# Exim filter\nif $h_subject: contains bad then fail text \"550 go away\" "
                                         "endif\nsave /tmp/never-written\n")
    cfg = forward_config(mail, work, extra="  allow_fail\n  forbid_file\n")
    with Daemon(postern_bin, tmp_path, cfg, queue_only=False) as d:
        send(d.port, "sender@a.example", ["daemon@a.example"], note("bad thing"))
        assert wait_for(lambda: "** daemon@a.example" in d.mainlog())
        [line] = [x for x in d.mainlog().splitlines() if "** daemon@a.example" in x]
        assert "R=userforward" in line and line.endswith(": 550 go away")
        send(d.port, "sender@a.example", ["daemon@a.example"], note("good thing"))
        assert wait_for(lambda: d.mainlog().count("** daemon@a.example") == 2)
        line = [x for x in d.mainlog().splitlines() if "** daemon@a.example" in x][1]
        assert "R=userforward" in line and line.endswith(": delivery to file forbidden")
    assert not pathlib.Path("/tmp/never-written").exists()



def bt(postern_bin, tmp_path, cfg, *addrs):
    (tmp_path / "conf").write_text(CONF + f"spool_directory = {tmp_path}/spool\n" + cfg)
    return subprocess.run([postern_bin, "-C", str(tmp_path / "conf"), "-bt", *addrs], capture_output=True, text=True)


def bt_config(work, options=""):
    return ("begin routers\nuserforward:\n  driver = redirect\n  check_local_user\n  local_parts = nobody\n"
            f"  file = {work}/$local_part_data.forward\n  allow_filter\n" + options +
            "local:\n  driver = accept\n  transport = t\nbegin transports\nt:\n  driver = pipe\n  command = /bin/true\n")


def test_filter_runs_as_the_user(postern_bin, tmp_path, work):
    """The filter (and so ${run}) runs with the user's uid; -bt shows what
    it generated."""
    write_forward(work, "nobody", '# Exim filter\ndeliver "u${run{/usr/bin/id -u}}@a.example"\n')
    r = bt(postern_bin, tmp_path, bt_config(work), "nobody@a.example")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "u65534@a.example\n    <-- nobody@a.example\n  router = local, transport = t\n" in r.stdout


@pytest.mark.parametrize("option,text,error", [
    ("forbid_filter_run", "${run{/bin/true}}", "running a command is not permitted"),
    ("forbid_filter_readfile", "${readfile{/etc/hostname}}", "file insertions are not permitted"),
    ("forbid_filter_lookup", "${lookup{x}lsearch{/etc/hostname}}", "lookup expansions are not permitted"),
    ("forbid_filter_existstest", "${if exists{/etc}{y}{n}}", "File existence tests are not permitted"),
    ("forbid_filter_readsocket", "${readsocket{/nonexistent}{x}}", "socket insertions are not permitted"),
])
def test_forbid_filter_options(postern_bin, tmp_path, work, option, text, error):
    write_forward(work, "nobody", f'# Exim filter\ndeliver "x{text}@a.example"\n')
    r = bt(postern_bin, tmp_path, bt_config(work, f"  {option}\n"), "nobody@a.example")
    assert r.returncode == 1
    assert r.stdout.startswith("nobody@a.example cannot be resolved at this time: error in filter file: "
                               f"failed to expand \"x{text}@a.example\" in deliver command: ")
    assert error in r.stdout.split("deliver command: ", 1)[1]
    # without the option the same filter expands
    r = bt(postern_bin, tmp_path, bt_config(work), "nobody@a.example")
    assert "not permitted" not in r.stdout


def test_forbid_filter_logwrite(postern_bin, tmp_path, mail, work):
    write_forward(work, "nobody", f"# Exim filter\nlogfile {work}/log\nlogwrite x\n")
    with Daemon(postern_bin, tmp_path, forward_config(mail, work, extra="  forbid_filter_logwrite\n"),
                queue_only=False) as d:
        send(d.port, "sender@a.example", ["nobody@a.example"], note("log"))
        assert wait_for(lambda: "== nobody@a.example" in d.mainlog())
        assert "error in filter file: logwrite command forbidden" in d.mainlog()
    assert not (work / "log").exists()
