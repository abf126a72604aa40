"""Callout verification (verify = recipient/callout, verify = sender/callout)
side by side with Debian's Exim 4.96, with the harness of
test_exim_scenarios: a -bs dialogue whose RCPT ACL verifies with a callout
to the scripted peer (its transcript shows what the callout sent), the
reject log and the replies compared.

Run one (--runxfail shows the difference of an xfail):
    POSTERN_BIN=build-cb/postern /usr/bin/python3 -m pytest -q --runxfail \\
        tests/integration/test_callout.py -k random
"""
import os

import pytest

from test_exim_scenarios import BS_MAIN, EXIM, bs, check, remote

pytestmark = pytest.mark.skipif(EXIM is None or os.geteuid() != 0, reason="needs Debian's exim4 and root")


def conf(verify, main="", transport_opts="", stmts=""):
    """remote() with an RCPT ACL that runs `verify` (deny when it fails)."""
    acl = ("begin acl\nrcpt:\n" + stmts +
           f"  deny !verify = {verify}\n"
           "       message = verify said: $acl_verify_message\n"
           "  accept\n")
    c = remote(transport_opts, main=BS_MAIN.replace("acl_smtp_rcpt = accept", "acl_smtp_rcpt = rcpt") + main)
    return c.replace("begin routers\n", acl + "begin routers\n", 1)


def conf_plain(verify, main="", transport_opts=""):
    """The same without a "message": Exim's own texts reach the client."""
    acl = f"begin acl\nrcpt:\n  require verify = {verify}\n  accept\n"
    c = remote(transport_opts, main=BS_MAIN.replace("acl_smtp_rcpt = accept", "acl_smtp_rcpt = rcpt") + main)
    return c.replace("begin routers\n", acl + "begin routers\n", 1)


def rcpt(*rcpts, sender="s@test.example", ehlo="client.example"):
    return bs(f"EHLO {ehlo}", f"MAIL FROM:<{sender}>", *[f"RCPT TO:<{r}>" for r in rcpts], "QUIT")


def test_recipient_callout_accepted(postern_bin):
    check(postern_bin, conf_plain("recipient/callout"), [rcpt("r1@remote.example")], peer={})


REFUSED = {"RCPT": "550 5.1.1 no such user"}


def test_recipient_callout_550(postern_bin):
    check(postern_bin, conf_plain("recipient/callout"), [rcpt("r1@remote.example")], peer={"replies": REFUSED})


def test_recipient_callout_550_with_message(postern_bin):
    """$acl_verify_message is the callout's text for the client."""
    check(postern_bin, conf("recipient/callout"), [rcpt("r1@remote.example")], peer={"replies": REFUSED})


def test_recipient_callout_451(postern_bin):
    check(postern_bin, conf_plain("recipient/callout"), [rcpt("r1@remote.example")],
          peer={"replies": {"RCPT": "451 try later"}})


def test_recipient_callout_451_defer_ok(postern_bin):
    check(postern_bin, conf_plain("recipient/callout=defer_ok"), [rcpt("r1@remote.example")],
          peer={"replies": {"RCPT": "451 try later"}})


def test_recipient_callout_connection_refused(postern_bin):
    check(postern_bin, conf_plain("recipient/callout", transport_opts="").replace("port = %PORT%", "port = %DEADPORT%"),
          [rcpt("r1@remote.example")], peer={})


def test_recipient_callout_connection_refused_defer_ok(postern_bin):
    check(postern_bin, conf_plain("recipient/callout=10s,defer_ok").replace("port = %PORT%", "port = %DEADPORT%"),
          [rcpt("r1@remote.example")], peer={})


def test_recipient_callout_refused_greeting(postern_bin):
    check(postern_bin, conf_plain("recipient/callout"), [rcpt("r1@remote.example")],
          peer={"replies": {"GREETING": "554 go away"}})


def test_sender_callout_550(postern_bin):
    check(postern_bin, conf_plain("sender/callout"), [rcpt("r1@remote.example", sender="x@remote.example")],
          peer={"replies": REFUSED})


def test_sender_callout_550_no_details(postern_bin):
    check(postern_bin, conf_plain("sender/no_details/callout"),
          [rcpt("r1@remote.example", sender="x@remote.example")], peer={"replies": REFUSED})


def test_sender_callout_mail_from_refused(postern_bin):
    check(postern_bin, conf_plain("sender/callout"), [rcpt("r1@remote.example", sender="x@remote.example")],
          peer={"replies": {"MAIL": "550 no bounces here"}})


def test_sender_callout_451(postern_bin):
    check(postern_bin, conf_plain("sender/callout"), [rcpt("r1@remote.example", sender="x@remote.example")],
          peer={"replies": {"RCPT": "451 later"}})


def test_sender_callout_accepted_local_sender_no_callout(postern_bin):
    """A sender in a local domain is routed to the appendfile transport: no callout."""
    check(postern_bin, conf_plain("sender/callout"), [rcpt("r1@remote.example", sender="alice@test.example")],
          peer={})


def test_recipient_local_address_no_callout(postern_bin):
    check(postern_bin, conf_plain("recipient/callout"), [rcpt("bob@test.example")], peer={"replies": REFUSED})


def test_recipient_callout_random_refused_then_real(postern_bin):
    check(postern_bin, conf_plain("recipient/callout=random", main="callout_random_local_part = rnd-part\n"),
          [rcpt("r1@remote.example")],
          peer={"replies": {"RCPT": {"r1@remote.example": "250 ok", "*": "550 unknown user"}}})


def test_recipient_callout_random_accepted(postern_bin):
    """The peer accepts anything: the random address is accepted, the real one is not asked about."""
    check(postern_bin, conf_plain("recipient/callout=random", main="callout_random_local_part = rnd-part\n"),
          [rcpt("r1@remote.example", "r2@remote.example")], peer={})


def test_sender_callout_postmaster_refused(postern_bin):
    check(postern_bin, conf_plain("sender/callout=postmaster"), [rcpt("r1@remote.example", sender="x@remote.example")],
          peer={"replies": {"RCPT": {"postmaster@remote.example": "550 nope", "*": "250 ok"}}})


def test_sender_callout_fullpostmaster(postern_bin):
    check(postern_bin, conf_plain("sender/callout=fullpostmaster"),
          [rcpt("r1@remote.example", sender="x@remote.example")],
          peer={"replies": {"RCPT": {"postmaster@remote.example": "550 nope", "*": "250 ok"}}})


def test_recipient_callout_use_sender(postern_bin):
    check(postern_bin, conf_plain("recipient/callout=use_sender"), [rcpt("r1@remote.example")], peer={})


def test_recipient_callout_use_postmaster(postern_bin):
    check(postern_bin, conf_plain("recipient/callout=use_postmaster"), [rcpt("r1@remote.example")], peer={})


def test_recipient_callout_mailfrom_refused(postern_bin):
    """mailfrom= is for header_sender only: an ACL error."""
    check(postern_bin, conf_plain("recipient/callout=mailfrom=a@b.example"), [rcpt("r1@remote.example")], peer={})


def test_callout_bad_option(postern_bin):
    """An unknown callout sub-option is read as a time: "bad time value"."""
    check(postern_bin, conf_plain("recipient/callout=pipeline"), [rcpt("r1@remote.example")], peer={})


def test_verify_unknown_option(postern_bin):
    check(postern_bin, conf_plain("recipient/bogus"), [rcpt("r1@remote.example")], peer={})


def test_recipient_callout_cached(postern_bin):
    """The second RCPT (and the second session) use the cache: one connection only."""
    check(postern_bin, conf_plain("recipient/callout"),
          [rcpt("r1@remote.example", "r1@remote.example"), rcpt("r1@remote.example")], peer={})


def test_recipient_callout_negative_cached(postern_bin):
    check(postern_bin, conf_plain("recipient/callout"),
          [rcpt("r1@remote.example"), rcpt("r1@remote.example")], peer={"replies": REFUSED})


def test_sender_callout_cached_domain_mail_from_refused(postern_bin):
    """A refused MAIL FROM:<> is cached for the domain: another sender there fails without a callout."""
    check(postern_bin, conf_plain("sender/callout"),
          [rcpt("r1@remote.example", sender="x@remote.example"), rcpt("r1@remote.example", sender="y@remote.example")],
          peer={"replies": {"MAIL": "550 no bounces here"}})


def test_recipient_callout_no_cache(postern_bin):
    check(postern_bin, conf_plain("recipient/callout=no_cache"),
          [rcpt("r1@remote.example", "r1@remote.example")], peer={})


def test_recipient_callout_second_host_after_refusal(postern_bin):
    """The first host refuses the connection; the second (the peer) answers."""
    c = conf_plain("recipient/callout").replace("route_list = * 127.0.0.1", "route_list = * 127.0.0.2:127.0.0.1")
    check(postern_bin, c, [rcpt("r1@remote.example")], peer={"replies": REFUSED})
