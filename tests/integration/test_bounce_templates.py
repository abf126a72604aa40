"""bounce_message_file and warn_message_file (Exim spec, "Customizing
bounce and warning messages"): template items separated by "****" lines,
each expanded ($bounce_recipient, $bounce_return_size_limit,
$warn_message_delay, $warn_message_recipients and the message's own
variables), the built-in text for an empty or missing item or a failed
expansion, and the whole built-in message plus a panic-log line when the
file cannot be used.  Real daemons; the reports are read back from the
sender's mbox with Python's email package."""
import email
import fcntl
import os
import re
import smtplib
import subprocess
import time

import pytest

from mta import Daemon, free_port
from test_deliver import mail, wait_for  # noqa: F401  (mail is a fixture)

DEFAULT_BOUNCE_INTRO = (
    "This message was created automatically by mail delivery software.\n\n"
    "A message that you sent could not be delivered to one or more of its\n"
    "recipients. This is a permanent error. The following address(es) failed:\n\n"
    "  unknown@a.example\n")
WARN_FINAL = (
    "No action is required on your part. Delivery attempts will continue for\n"
    "some time, and this warning may be repeated at intervals if the message\n"
    "remains undelivered. Eventually the mail delivery software will give up,\n"
    "and when that happens, the message will be returned to you.\n")


def config(mail, main="", remote_port=None, retry="F,1h,10m"):
    """Local domain a.example (alice, sender: mbox files); other domains
    go to 127.0.0.1:remote_port (nothing listening: deferred)."""
    return f"""\
domainlist local_domains = a.example
acl_smtp_rcpt = accept
{main}
begin routers
remote:
  driver = manualroute
  domains = ! +local_domains
  route_list = * 127.0.0.1
  self = send
  transport = remote_smtp
local:
  driver = accept
  domains = +local_domains
  local_parts = alice : sender
  transport = mbox

begin transports
remote_smtp:
  driver = smtp
  port = {remote_port or free_port()}
mbox:
  driver = appendfile
  file = {mail}/$local_part_data
  user = nobody
  group = nogroup

begin retry
* * {retry}
"""


def send(port, sender, rcpts, text):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        return s.sendmail(sender, rcpts, text)


def received_id(d):
    m = re.search(r" (\S+) <= sender@a\.example ", d.mainlog())
    assert m, d.mainlog()
    return m.group(1)


def report(mail):
    """The one report in the sender's mbox, as an email.message."""
    text = (mail / "sender").read_text()
    assert text.count("\nFrom ") == 0, "more than one report"
    return email.message_from_string(text.split("\n", 1)[1])


def unlocked(d, msgid):
    """No delivery process holds the message (its -D file lock is free)."""
    try:
        fd = os.open(d.spool / "input" / f"{msgid}-D", os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def assert_no_sanitizer_report(stderr):
    assert "Sanitizer" not in stderr and "runtime error:" not in stderr, stderr


def paniclog(d):
    p = d.spool / "log" / "paniclog"
    return p.read_text() if p.exists() else ""


def bounce_for(postern_bin, tmp, mail, main):
    """Send one message to alice (delivered) and unknown (fails: no
    router); return (daemon, message id, the bounce)."""
    tmp.mkdir()
    d = Daemon(postern_bin, tmp, config(mail, main), queue_only=False)
    with d:
        send(d.port, "sender@a.example", ["alice@a.example", "unknown@a.example"],
             "Subject: hello there\r\nFrom: sender@a.example\r\nMessage-ID: <t1@a.example>\r\n\r\nthe body\r\n")
        assert wait_for(lambda: (mail / "sender").exists() and d.mainlog().count("Completed") >= 2)
        assert wait_for(lambda: d.queued() == [])
        msgid = received_id(d)
        assert f"{msgid} ** unknown@a.example" in d.mainlog()
        assert f"<= <> R={msgid} " in d.mainlog()
    assert_no_sanitizer_report(d.proc.stderr.read().decode(errors="replace"))
    return d, msgid, report(mail)


def test_bounce_message_file_items_are_expanded(postern_bin, tmp_path, mail):
    tmpl = mail.parent / "bounce.tmpl"
    tmpl.write_text(
        "Subject: Undeliverable: $h_subject: [$message_id]\n"
        "X-Bounce-For: $bounce_recipient\n"
        "****\n"
        "Hello $bounce_recipient,\n"
        "your message $message_exim_id from <$sender_address> was not delivered.\n"
        "Only $bounce_return_size_limit bytes of it come back.\n"
        "****\n"
        "PIPE TEXT: not used, there is none\n"
        "****\n"
        "Your message \"${uc:$h_subject:}\" follows.\n"
        "****\n"
        "ITEM FIVE is ignored\n")
    d, msgid, b = bounce_for(postern_bin, tmp_path / "a", mail,
                             f"bounce_message_file = {tmpl}\nbounce_return_size_limit = 50K\n")
    # item 1: the template's headers replace Subject:, ours stay
    assert b["Subject"] == f"Undeliverable: hello there [{msgid}]"
    assert b.get_all("Subject") == [b["Subject"]]
    assert b["X-Bounce-For"] == "sender@a.example"
    assert b["To"] == "sender@a.example"
    assert b["X-Failed-Recipients"] == "unknown@a.example"
    assert b["Auto-Submitted"] == "auto-replied"
    assert b["From"].startswith("Mail Delivery System <Mailer-Daemon@")
    assert b["References"] == "<t1@a.example>"
    assert b.get_content_type() == "multipart/report"
    parts = b.get_payload()
    text = parts[0].get_payload()
    # item 2 replaces the introduction; the failed addresses follow
    assert text.startswith(
        "Hello sender@a.example,\n"
        f"your message {msgid} from <sender@a.example> was not delivered.\n"
        "Only 51200 bytes of it come back.\n\n"
        "  unknown@a.example\n"), text
    assert "This message was created automatically" not in text
    # item 3 (text from pipes) has nothing to introduce; item 4 (the copy's
    # introduction) is read but not used, as in Exim since 4.8x
    assert "PIPE TEXT" not in b.as_string() and "ITEM FIVE" not in b.as_string()
    assert "follows" not in b.as_string()
    assert text.endswith("    Unrouteable address\n"), text
    # the machine-readable part and the returned message are unchanged
    assert parts[1].get_content_type() == "message/delivery-status"
    assert "Final-Recipient: rfc822;unknown@a.example" in parts[1].as_string()
    assert parts[2].get_content_type() == "message/rfc822"
    assert "the body" in parts[2].as_string()
    assert paniclog(d) == ""
    # the good recipient got the message
    assert "Subject: hello there" in (mail / "alice").read_text()


@pytest.mark.parametrize("template, subject, intro", [
    # empty header item: the default Subject:; the intro from the template
    ("****\nIntro for $bounce_recipient\n",
     "Mail delivery failed: returning message to sender", "Intro for sender@a.example\n\n  unknown@a.example\n"),
    # empty intro item (and nothing after it): the default introduction
    ("Subject: Custom $bounce_recipient\n****\n****\n",
     "Custom sender@a.example", DEFAULT_BOUNCE_INTRO),
    # only a header item: the rest is missing, so default
    ("Subject: Only headers\n",
     "Only headers", DEFAULT_BOUNCE_INTRO),
], ids=["empty-header", "empty-intro", "headers-only"])
def test_bounce_message_file_empty_items_use_defaults(postern_bin, tmp_path, mail, template, subject, intro):
    tmpl = mail.parent / "bounce.tmpl"
    tmpl.write_text(template)
    d, msgid, b = bounce_for(postern_bin, tmp_path / "a", mail, f"bounce_message_file = {tmpl}\n")
    assert b["Subject"] == subject
    text = b.get_payload()[0].get_payload()
    assert text.startswith(intro), text
    assert paniclog(d) == ""


def test_bounce_message_file_expansion_failure_uses_default_item(postern_bin, tmp_path, mail):
    tmpl = mail.parent / "bounce.tmpl"
    tmpl.write_text("Subject: ${nosuchoperator:x}\n****\nIntro still used\n")
    d, msgid, b = bounce_for(postern_bin, tmp_path / "a", mail, f"bounce_message_file = {tmpl}\n")
    assert b["Subject"] == "Mail delivery failed: returning message to sender"
    assert b.get_payload()[0].get_payload().startswith("Intro still used\n\n  unknown@a.example\n")
    assert "Failed to expand string from bounce_message_file or warn_message_file (header)" in paniclog(d)


@pytest.mark.parametrize("setting, logged", [
    ("{dir}/no-such-template", "Failed to open {dir}/no-such-template for error message texts"),
    ("{dir}", "Failed to open {dir} for error message texts"),                 # a directory
    ("relative/template", "bounce_message_file is not absolute after expansion: 'relative/template'"),
    ("${if eq{1}{2}{x}fail}", "Failed to expand bounce_message_file"),
], ids=["missing", "directory", "relative", "expansion-fails"])
def test_bounce_message_file_unusable_gives_default_bounce(postern_bin, tmp_path, mail, setting, logged):
    dir = str(mail.parent)
    # the reference: the same failure with no template configured
    _, _, ref = bounce_for(postern_bin, tmp_path / "ref", mail, "")
    (mail / "sender").unlink()
    (mail / "alice").unlink()
    setting, logged = setting.replace("{dir}", dir), logged.replace("{dir}", dir)
    d, msgid, b = bounce_for(postern_bin, tmp_path / "a", mail, f"bounce_message_file = {setting}\n")
    assert b["Subject"] == ref["Subject"] == "Mail delivery failed: returning message to sender"
    text = b.get_payload()[0].get_payload()
    assert text == ref.get_payload()[0].get_payload()
    assert text.startswith(DEFAULT_BOUNCE_INTRO)
    assert logged in paniclog(d)
    # nothing lost: alice has the message, the bounce arrived, the queue is empty
    assert "Subject: hello there" in (mail / "alice").read_text()
    assert d.queued() == []


def warning_for(postern_bin, tmp, mail, main, retry="F,1h,10m", age=None):
    """A message to someone@b.example (the host is down: deferred); then a
    forced queue run once delay_warning has passed.  With age, the
    message's arrival time on the spool is moved that many seconds back.
    Returns (daemon, message id, the warning)."""
    tmp.mkdir()
    d = Daemon(postern_bin, tmp, config(mail, main, retry=retry), queue_only=False)
    with d:
        send(d.port, "sender@a.example", ["someone@b.example"], "Subject: slow one\r\n\r\nbody\r\n")
        assert wait_for(lambda: "== someone@b.example" in d.mainlog() and "Warning message" not in d.mainlog())
        msgid = received_id(d)
        assert wait_for(lambda: unlocked(d, msgid))
        if age:
            h = d.spool / "input" / f"{msgid}-H"
            lines = h.read_text().split("\n")
            t, count = lines[3].split(" ")
            lines[3] = f"{int(t) - age} {count}"
            h.write_text("\n".join(lines))
        else:
            time.sleep(2.5)
        r = subprocess.run([postern_bin, "-C", str(d.config), "-qf"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert_no_sanitizer_report(r.stderr)
        assert wait_for(lambda: (mail / "sender").exists() and f"<= <> R={msgid} " in d.mainlog())
        assert wait_for(lambda: d.queued() == [msgid])     # the message itself stays
    assert_no_sanitizer_report(d.proc.stderr.read().decode(errors="replace"))
    return d, msgid, report(mail)


def test_warn_message_file(postern_bin, tmp_path, mail):
    tmpl = mail.parent / "warn.tmpl"
    tmpl.write_text(
        "Subject: Still trying $message_exim_id for $warn_message_delay\n"
        "X-Warn-To: $warn_message_recipients\n"
        "****\n"
        "Dear $warn_message_recipients,\n"
        "your message \"$h_subject:\" waits since $warn_message_delay.\n"
        "****\n"
        "We keep trying; bounce recipient is [$bounce_recipient].\n")
    d, msgid, w = warning_for(postern_bin, tmp_path / "a", mail,
                              f"delay_warning = 2s\nwarn_message_file = {tmpl}\n")
    m = re.fullmatch(rf"Still trying {msgid} for (\d+) minutes", w["Subject"])
    assert m, w["Subject"]
    delay = f"{m.group(1)} minutes"
    assert w.get_all("Subject") == [w["Subject"]]
    assert w["X-Warn-To"] == "sender@a.example"
    assert w["To"] == "sender@a.example"
    assert w["Auto-Submitted"] == "auto-replied"
    parts = w.get_payload()
    text = parts[0].get_payload()
    assert text.startswith("Dear sender@a.example,\n"
                           f"your message \"slow one\" waits since {delay}.\n\n"
                           "  someone@b.example\n"), text
    assert text.endswith("\n\nWe keep trying; bounce recipient is [].\n"), text
    assert "This message was created automatically" not in text and "No action is required" not in text
    assert "Action: delayed" in parts[1].as_string()
    assert paniclog(d) == ""


def test_warn_message_file_defaults_and_delay_in_hours(postern_bin, tmp_path, mail):
    # only a header item: the default introduction, the address list, then
    # the default final text; the message is three hours old, so the delay
    # is the delay_warning time passed, in hours (as Exim shows it)
    tmpl = mail.parent / "warn.tmpl"
    tmpl.write_text("Subject: Delayed by $warn_message_delay\n")
    d, msgid, w = warning_for(postern_bin, tmp_path / "a", mail,
                              f"delay_warning = 2h\nwarn_message_file = {tmpl}\n",
                              retry="F,5d,10m", age=3 * 3600 + 60)
    assert w["Subject"] == "Delayed by 2 hours"
    text = w.get_payload()[0].get_payload()
    assert text.startswith("This message was created automatically by mail delivery software.\n"
                           "A message that you sent has not yet been delivered to one or more of its\n"
                           "recipients after more than 2 hours on the queue on test.example.\n\n"
                           f"The message identifier is:     {msgid}\n"
                           "The subject of the message is: slow one\n\n"
                           "The address to which the message has not yet been delivered is:\n\n"
                           "  someone@b.example\n"), text
    # a template without a "final" item: no final text (Exim)
    assert WARN_FINAL not in text
    assert paniclog(d) == ""


def test_warn_message_file_missing_gives_default_warning(postern_bin, tmp_path, mail):
    missing = mail.parent / "no-such-warn.tmpl"
    d, msgid, w = warning_for(postern_bin, tmp_path / "a", mail,
                              f"delay_warning = 2s\nwarn_message_file = {missing}\n")
    assert re.fullmatch(rf"Warning: message {msgid} delayed \d+ minutes", w["Subject"]), w["Subject"]
    text = w.get_payload()[0].get_payload()
    assert text.startswith("This message was created automatically by mail delivery software.\n"
                           "A message that you sent has not yet been delivered to one or more of its\n"), text
    assert re.search("\nThe address to which the message has not yet been delivered is:\n\n"
                     "  someone@b\\.example\n(    .*\n)*\n" + re.escape(WARN_FINAL) + "$", text), text
    assert f"Failed to open {missing} for warning message texts" in paniclog(d)


def test_variables_are_empty_outside_reports(postern_bin, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("primary_hostname = test.example\n")
    r = subprocess.run([postern_bin, "-C", str(conf), "-be",
                        "[$bounce_recipient][$warn_message_delay][$warn_message_recipients][$warnmsg_recipient]"
                        "[$bounce_return_size_limit]"],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "[][][][][102400]", r.stdout + r.stderr
