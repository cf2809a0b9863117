#!/usr/bin/python3
"""The lab's second SMTP implementation: aiosmtpd playing real servers' limits, one listener per mode.

Postfix is not the only server people send through, and its rules are not everybody's. This process runs
one aiosmtpd listener per mode on 127.0.0.1 (never any other address), each on its own port:

  accept           an ordinary server; lock-step (aiosmtpd does not offer PIPELINING)
  strict-dot       Haraka's SMTP-smuggling defence: offers PIPELINING, but every command that arrived behind
                   a final dot before the dot's reply was sent is answered `503 5.5.0 Bad sequence of
                   commands - pipelined after end of DATA` (the message itself is accepted)
  session-cap      at most --session-cap sessions at once; the next one is greeted `421 4.7.0 Too many
                   concurrent connections` and closed
  per-session-cap  after --messages-per-session messages, the next MAIL FROM gets `421 4.7.0 Too many
                   messages in this session` and the session is closed
  size-at-mail     offers SIZE without a number (RFC 1870: no fixed limit), then refuses a MAIL FROM whose
                   SIZE= exceeds --size-limit with `552 5.3.4`
  greeting-554     greets `554 5.7.1 No SMTP service here`, answers everything but QUIT with 503 (RFC 5321 §3.1)
  flaky-setup      AUTH required (plaintext allowed: set allow_plaintext_auth); connection setups fail
                   transiently in a cycle of five, counted per EHLO name so each client sees it from the start:
                   1 ok, 2 `451 4.3.2` to EHLO, 3 reset (RST, no reply) when AUTH arrives, 4 ok, 5 `454 4.7.0` to AUTH
  chunking         offers CHUNKING (RFC 3030: BDAT) with PIPELINING, and the limit per session of
                   per-session-cap (a provider's: Gmail offers CHUNKING and caps messages per session); BDAT
                   chunks are read by their size (a line starting with a dot is data, nothing is unstuffed), a
                   transaction may mix them with nothing else, and `BDAT n LAST` stores the message
  oauth2           AUTH required (plaintext allowed: set allow_plaintext_auth), offering only `AUTH XOAUTH2
                   OAUTHBEARER`, for --user with bearer tokens issued by scripts/lab-token (see "Tokens" below)

oauth2's mechanisms, as Google documents XOAUTH2 and RFC 7628 defines OAUTHBEARER (initial response on the AUTH
line, or after an empty `334 ` when the client sends none):
  XOAUTH2      base64("user=" USER ^A "auth=Bearer " TOKEN ^A ^A). Accepted: `235 2.7.0 Accepted`. Refused:
               `334 ` + base64 of {"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}; the
               client must answer with an empty line, then gets Google's two-line `535-5.7.8 Username and
               Password not accepted. …` / `535 5.7.8 https://support.google.com/mail/?p=BadCredentials`.
  OAUTHBEARER  base64("n,a=" USER "," ^A "host=" HOST ^A "port=" PORT ^A "auth=Bearer " TOKEN ^A ^A) (a= may be
               left out; host and port are logged). Accepted: `235 2.7.0 Accepted`. Refused: `334 ` + base64 of
               {"status":"invalid_token","scope":"https://mail.google.com/","openid-configuration":
               "https://accounts.google.com/.well-known/openid-configuration"}; the client must answer with a
               single ^A (`AQ==`), then gets `535 5.7.8 Username and Password not accepted`.
  A client that answers the error challenge with anything else gets `501 5.5.2 …`; `*` aborts (`501 5.7.0`).
  A malformed initial response gets `501 5.5.2` at once (no challenge). The JSON is the same whether the
  token was expired, forged or for another user, as at Google: a client cannot tell them apart.

Tokens: `labtok-<issued unix ms>-<hex HMAC-SHA256(key, "<issued unix ms>:<user>")>` with the key read from
--token-key-file (scripts/lab-token prints them). A token is refused when its HMAC is wrong, when it was issued
more than --token-lifetime seconds ago (default 3), or a second or more in the future. The check is made at
AUTH only: a session authenticated with a token stays authenticated when the token expires, as at Google.
Every AUTH attempt is appended to `STORE/oauth2/auth.jsonl` as a line of JSON: time (unix ms), session, ehlo,
mechanism, user, outcome (accepted, expired, forged, wrong-user, future, malformed), token_issued_ms, and for
OAUTHBEARER host and port; never the token.

All modes offer SMTPUTF8 and 8BITMIME, all but accept and greeting-554 PIPELINING. Each stores every accepted
message before its 250 as one file `STORE/MODE/<unix seconds>.<ns>-<session>-<n>.msg`: a line of JSON (the
envelope: mail_from, rcpt_tos, mail_options; the session's number, the message's number in it, `pipelined`,
and `auth`: the session's AUTH mechanism and user, or null), a newline, then the message as received. aiosmtpd
removes the transparency dots (RFC 5321 §4.5.2) before any hook sees the data; nothing else is changed (CRLF
as sent). The file appears whole (written aside, then renamed). `pipelined` counts the session's commands and
final dots, up to this message's, that had more of the client's input already waiting behind them: always 0
from a lock-step client.

Run with Debian's python3 (python3-aiosmtpd): scripts/smtp-lab starts and stops it.
"""

import argparse
import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import socket
import struct
import sys
import time
from pathlib import Path

from aiosmtpd.smtp import MISSING, SMTP, AuthResult

HOST = "127.0.0.1"
MODES = ("accept", "strict-dot", "session-cap", "per-session-cap", "size-at-mail", "greeting-554", "flaky-setup",
         "oauth2", "chunking")
LINGER = 5.0  # seconds close_with waits for the client to close after its last reply

PIPELINED_AFTER_DOT = "503 5.5.0 Bad sequence of commands - pipelined after end of DATA"
# flaky-setup's cycle, by connection number (1-based) modulo its length: (verb it hits, what happens).
FLAKY_CYCLE = [None, ("EHLO", "451 4.3.2 Try again later"), ("AUTH", "reset"), None,
               ("AUTH", "454 4.7.0 Temporary authentication failure")]
OAUTH_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
# oauth2: the errors Google sends in the 334 challenge of a refused token (the same for every reason), and the
# final replies after the client's answer to it.
XOAUTH2_ERROR = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
OAUTHBEARER_ERROR = {"status": "invalid_token", "scope": "https://mail.google.com/",
                     "openid-configuration": "https://accounts.google.com/.well-known/openid-configuration"}
OAUTH_REFUSED = {
    "XOAUTH2": "535-5.7.8 Username and Password not accepted. Learn more at\r\n"
               "535 5.7.8 https://support.google.com/mail/?p=BadCredentials",
    "OAUTHBEARER": "535 5.7.8 Username and Password not accepted",
}
OAUTH_ACCEPTED = "235 2.7.0 Accepted"
TOKEN = re.compile(r"labtok-(\d{1,16})-([0-9a-f]{64})")

log = logging.getLogger("lab-smtpd")


class Listener:
    """One mode's port and the state its sessions share."""

    def __init__(self, mode, args):
        self.mode = mode
        self.args = args
        self.store = Path(args.store) / mode
        self.store.mkdir(parents=True, exist_ok=True)
        self.sessions = 0  # greeted so far
        self.open = 0  # greeted and not yet closed
        self.per_ehlo_name = {}  # flaky-setup: connections counted per EHLO name
        self.auth_log = self.store / "auth.jsonl"  # oauth2: every AUTH attempt

    def token_outcome(self, token, user):
        """oauth2: "accepted", or why `token` is refused for `user`; and the time it says it was issued."""
        args = self.args
        match = TOKEN.fullmatch(token)
        if not match:
            return "forged", None
        issued = int(match[1])
        if user != args.user:
            return "wrong-user", issued
        mac = hmac.new(args.token_key, f"{issued}:{user}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, match[2]):
            return "forged", issued
        age_ms = time.time_ns() // 10**6 - issued
        if age_ms > args.token_lifetime * 1000:
            return "expired", issued
        if age_ms < -1000:
            return "future", issued
        return "accepted", issued

    def log_auth(self, server, **fields):
        """oauth2: one line per AUTH attempt (never the token)."""
        line = {"time_ms": time.time_ns() // 10**6, "session": server.number, "ehlo": server.session.host_name}
        line.update(fields)
        with open(self.auth_log, "a") as f:
            f.write(json.dumps(line) + "\n")
        log.info("oauth2: session %d (%s): %s", server.number, server.session.host_name,
                 " ".join(f"{k}={v}" for k, v in fields.items()))

    def save(self, server, envelope):
        """Stores one message; returns its id. Written aside and renamed, so a reader never sees half a file."""
        server.messages += 1
        now = time.time_ns()
        name = f"{now // 10**9}.{now % 10**9:09d}-{server.number}-{server.messages}"
        head = {
            "mode": self.mode,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "session": server.number,
            "ehlo": server.session.host_name,
            "message_in_session": server.messages,
            "pipelined": server.pipelined,
            "auth": server.authenticated_as,
        }
        tmp = self.store / f".{name}.tmp"
        tmp.write_bytes(json.dumps(head).encode() + b"\n" + envelope.original_content)
        os.replace(tmp, self.store / f"{name}.msg")
        return name


class Handler:
    """aiosmtpd's hooks: what every mode offers in EHLO, SIZE at MAIL, storing at the final dot."""

    def __init__(self, listener):
        self.listener = listener

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # The 5-argument hook replaces aiosmtpd's own bookkeeping: it must remember the name itself.
        session.host_name = hostname
        extra = []
        if self.listener.mode != "accept":
            extra.append("250-PIPELINING")
        if self.listener.mode == "chunking":
            extra.append("250-CHUNKING")
        if self.listener.mode == "size-at-mail":
            extra.append("250-SIZE")
        return responses[:1] + extra + responses[1:]

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.listener.mode == "size-at-mail":
            size = next((int(o[5:]) for o in options if o.startswith("SIZE=") and o[5:].isdigit()), 0)
            if size > self.listener.args.size_limit:
                return "552 5.3.4 Message size exceeds fixed maximum message size"
        # A hook that answers must record the sender itself (aiosmtpd only does so when no hook answers).
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.listener.mode == "strict-dot":
            await server.refuse_what_follows_the_dot()
        server.count_pipelined()
        name = self.listener.save(server, envelope)
        return f"250 2.0.0 OK queued as {name}"


class LabSMTP(SMTP):
    """aiosmtpd's SMTP with the modes' faults, decided before each command runs (see `_guarded`)."""

    def __init__(self, listener):
        self.listener = listener
        self.number = 0  # this session's number at its listener (per EHLO name for flaky-setup)
        self.messages = 0
        self.pipelined_after_dot = 0  # strict-dot: commands still to refuse
        self.pipelined = 0  # commands and final dots that had more input behind them before their reply
        self.closing = False
        self.chunks = None  # chunking: the message's BDAT chunks so far (None: no BDAT yet in this transaction)
        self.counted = False  # flaky-setup: numbered at the first EHLO
        # The mechanism and user of a successful AUTH. (Not `auth_…`: aiosmtpd offers every member so named.)
        self.authenticated_as = None
        mode = listener.mode
        super().__init__(
            Handler(listener),
            hostname=f"{mode}.lab.example.test",
            ident=f"ESMTP aiosmtpd (mailshot lab: {mode})",
            enable_SMTPUTF8=True,
            # size-at-mail decides at MAIL itself; aiosmtpd would advertise and check a fixed number.
            data_size_limit=None if mode == "size-at-mail" else 2**25,
            # AUTH only where it is checked; elsewhere aiosmtpd would offer it over plaintext and refuse every login.
            auth_require_tls=mode not in ("flaky-setup", "oauth2"),
            auth_required=mode == "oauth2",
            # oauth2 offers only the token mechanisms; the others only aiosmtpd's own (PLAIN, LOGIN).
            auth_exclude_mechanism=("PLAIN", "LOGIN") if mode == "oauth2" else OAUTH_MECHANISMS,
            authenticator=self.authenticate if mode == "flaky-setup" else None,
        )
        self._smtp_methods = {verb: self._guarded(verb, m) for verb, m in self._smtp_methods.items()}

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        args = self.listener.args
        given = (auth_data.login.decode(errors="replace"), auth_data.password.decode(errors="replace"))
        ok = given == (args.user, args.password)
        if ok:
            self.authenticated_as = {"mechanism": mechanism, "user": given[0]}
        return AuthResult(success=ok, handled=False)

    # oauth2's mechanisms: aiosmtpd finds `auth_<NAME>` methods and calls them with the server and the AUTH
    # line's words (the mechanism, and the initial response if any).
    async def auth_XOAUTH2(self, _, args):
        return await self.oauth("XOAUTH2", args)

    async def auth_OAUTHBEARER(self, _, args):
        return await self.oauth("OAUTHBEARER", args)

    async def oauth(self, mechanism, args):
        """One XOAUTH2 or OAUTHBEARER exchange, with the JSON error challenge when the token is refused."""
        listener = self.listener
        if len(args) == 1:
            # No initial response: an empty challenge asks for it (RFC 4954 §4).
            blob = await self.challenge_auth("")
            if blob is MISSING:
                listener.log_auth(self, mechanism=mechanism, outcome="malformed", why="aborted or not base64")
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                listener.log_auth(self, mechanism=mechanism, outcome="malformed", why="not base64")
                await self.push("501 5.5.2 Cannot decode base64")
                return AuthResult(success=False, handled=True)
        parsed = parse_xoauth2(blob) if mechanism == "XOAUTH2" else parse_oauthbearer(blob, listener.args.user)
        if isinstance(parsed, str):
            listener.log_auth(self, mechanism=mechanism, outcome="malformed", why=parsed)
            await self.push(f"501 5.5.2 Malformed {mechanism} initial response: {parsed}")
            return AuthResult(success=False, handled=True)
        user, token, extra = parsed
        outcome, issued = listener.token_outcome(token, user)
        listener.log_auth(self, mechanism=mechanism, user=user, outcome=outcome, token_issued_ms=issued, **extra)
        if outcome == "accepted":
            self.authenticated_as = {"mechanism": mechanism, "user": user}
            return AuthResult(success=True, message=OAUTH_ACCEPTED)
        error = XOAUTH2_ERROR if mechanism == "XOAUTH2" else OAUTHBEARER_ERROR
        answer = await self.challenge_auth(json.dumps(error, separators=(",", ":")))
        if answer is MISSING:  # `*` (501 5.7.0) or not base64 (501 5.5.2): aiosmtpd has answered
            return AuthResult(success=False, handled=True)
        expected = b"" if mechanism == "XOAUTH2" else b"\x01"
        if answer != expected:
            log.info("oauth2: session %d: %s error challenge answered with %r", self.number, mechanism, answer[:40])
            what = "an empty line" if mechanism == "XOAUTH2" else "a single %x01 (AQ==)"
            await self.push(f"501 5.5.2 The error challenge must be answered with {what}")
            return AuthResult(success=False, handled=True)
        await self.push(OAUTH_REFUSED[mechanism])
        return AuthResult(success=False, handled=True)

    async def _handle_client(self):
        listener = self.listener
        if listener.mode == "greeting-554":
            return await self.no_service()
        if listener.mode == "session-cap" and listener.open >= listener.args.session_cap:
            log.info("session-cap: refused a session, %d open", listener.open)
            return await self.close_with("421 4.7.0 Too many concurrent connections")
        listener.sessions += 1
        listener.open += 1
        self.number = listener.sessions
        try:
            await super()._handle_client()
        finally:
            listener.open -= 1

    def _guarded(self, verb, method):
        """Wraps one command: a closing session ignores it, strict-dot refuses it, the modes' faults hit it."""

        async def run(arg):
            if self.closing:
                return
            self.count_pipelined()
            if self.pipelined_after_dot > 0:
                self.pipelined_after_dot -= 1
                return await self.push(PIPELINED_AFTER_DOT)
            fault = self.fault(verb, arg)
            if fault == "reset":
                return self.reset()
            if fault and fault.startswith("421"):
                return await self.close_with(fault)
            if fault:
                return await self.push(fault)
            await method(arg)

        return run

    def fault(self, verb, arg):
        """The reply (or "reset") this mode gives to `verb` now instead of running it, if any."""
        listener, args = self.listener, self.listener.args
        capped = listener.mode in ("per-session-cap", "chunking")
        if capped and verb == "MAIL" and self.messages >= args.messages_per_session:
            log.info("per-session-cap: session %d closed after %d messages", self.number, self.messages)
            return "421 4.7.0 Too many messages in this session"
        if listener.mode != "flaky-setup":
            return None
        if verb in ("EHLO", "HELO"):
            verb = "EHLO"
            if not self.counted:
                # Numbered per EHLO name, so that each client (each test) meets the cycle from its start.
                name = (arg or "").lower()
                self.number = listener.per_ehlo_name[name] = listener.per_ehlo_name.get(name, 0) + 1
                self.counted = True
        if verb == "MAIL" and not self.session.authenticated:
            return "530 5.7.0 Authentication required"
        fault = FLAKY_CYCLE[(self.number - 1) % len(FLAKY_CYCLE)] if self.counted else None
        if fault and fault[0] == verb:
            log.info("flaky-setup: %s session %d: %s", self.session.host_name or arg, self.number, fault[1])
            return fault[1]
        return None

    async def smtp_BDAT(self, arg):
        """chunking: `BDAT size [LAST]` (RFC 3030 §2). The chunk's bytes are read whatever happens to the
        command, as the RFC asks of a server that refuses it (they must not be taken for commands)."""
        words = (arg or "").split()
        size = int(words[0]) if words and words[0].isdigit() else None
        last = len(words) == 2 and words[1].upper() == "LAST"
        if self.listener.mode != "chunking":
            return await self.push('500 Error: command "BDAT" not recognized')
        if size is None or len(words) > 2 or (len(words) == 2 and not last):
            # Without a size the data cannot be skipped: the session cannot go on.
            return await self.close_with("501 5.5.4 Syntax: BDAT size [LAST]")
        chunk = await self._reader.readexactly(size)
        self.count_pipelined()
        if self.envelope.mail_from is None or not self.envelope.rcpt_tos:
            self.chunks = None
            return await self.push("503 5.5.1 Bad sequence of commands: need MAIL and RCPT" if
                                   self.envelope.mail_from is None else "554 5.5.1 No valid recipients")
        self.chunks = (self.chunks or []) + [chunk]
        if not last:
            return await self.push(f"250 2.0.0 {size} octets received")
        self.envelope.original_content = b"".join(self.chunks)
        self.envelope.content = self.envelope.original_content
        self.chunks = None
        name = self.listener.save(self, self.envelope)
        self._set_post_data_state()
        await self.push(f"250 2.0.0 OK {size} octets, queued as {name}")

    async def smtp_DATA(self, arg):
        if self.chunks is not None:
            # RFC 3030 §2: DATA may not follow BDAT in one transaction.
            return await self.push("503 5.5.1 Bad sequence of commands: BDAT in progress")
        await super().smtp_DATA(arg)

    def _set_rset_state(self):
        self.chunks = None
        super()._set_rset_state()

    def count_pipelined(self):
        """Called as a command (or a final dot) is taken: input already behind it was sent before its reply.

        A lock-step client never has anything waiting here, so a non-zero count on a server that does not offer
        PIPELINING is a client breaking RFC 2920 §3; where it is offered, it shows the client used it.
        """
        if self._reader._buffer:
            self.pipelined += 1

    async def refuse_what_follows_the_dot(self):
        """strict-dot: counts the commands that arrived behind the final dot before its reply.

        aiosmtpd reads the dot line from its StreamReader; whatever a pipelining client wrote after it is then
        in the reader's buffer, or still in the socket when the buffer had paused reading: one short pause lets
        the loop read that too. Each of those lines will be answered with the 503 instead of being run (counted
        by line: a line aiosmtpd answers itself, such as an unknown verb, would shift the count by one).
        """
        await asyncio.sleep(0.001)
        waiting = bytes(self._reader._buffer)
        lines = waiting.count(b"\n") + (1 if waiting and not waiting.endswith(b"\n") else 0)
        if lines:
            log.info("strict-dot: session %d, %d command(s) pipelined after the dot: %r", self.number, lines,
                     waiting[:80])
        self.pipelined_after_dot = lines

    async def close_with(self, reply):
        """Sends a last reply and closes; anything the client pipelined behind it is not answered.

        The close is graceful, as Haraka's (Node's socket.end()) and a careful MTA's: FIN after the reply, then
        input is read and dropped until the client closes (or LINGER seconds). Closing a socket with unread
        input makes the kernel reset the connection at once and drop whatever it had not yet put on the wire:
        under load that was the reply to a message it had stored, so the client rightly called that message
        uncertain, and a lab test flaked on it (the client's handling of such a reset is covered by
        tests/it/smtp_window_faults.rs and the scripted fault tests).
        """
        self.closing = True
        await self.push(reply)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        deadline = time.monotonic() + LINGER
        try:
            while (left := deadline - time.monotonic()) > 0 and await asyncio.wait_for(self._reader.read(65536), left):
                pass
        except (asyncio.TimeoutError, ConnectionError):
            pass
        self.transport.close()

    def reset(self):
        """Closes with a TCP reset (SO_LINGER 0), no reply: what a crashed or overloaded server does."""
        self.closing = True
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    async def no_service(self):
        """greeting-554: RFC 5321 §3.1, wait for QUIT and answer everything else 503."""
        await self.push("554 5.7.1 No SMTP service here")
        while self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                break
            if line.strip().upper() == b"QUIT":
                return await self.close_with("221 2.0.0 Bye")
            await self.push("503 5.5.1 Bad sequence of commands: no SMTP service here")
        self.transport.close()


def kvpairs(fields):
    """The key=value pairs of a SASL message's ^A-separated fields, or None when one is not key=value."""
    pairs = {}
    for field in fields:
        key, eq, value = field.partition("=")
        if not eq or not key:
            return None
        pairs[key] = value
    return pairs


def bearer(pairs):
    """(token, None) from an `auth=Bearer <token>` pair (scheme without case, RFC 6750 §2.1), or (None, why)."""
    auth = pairs.get("auth")
    if auth is None:
        return None, "no auth="
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None, "auth= is not `Bearer <token>`"
    return token, None


def parse_xoauth2(blob):
    """(user, token, {}) from `user=U^Aauth=Bearer T^A^A`, or why it is malformed."""
    try:
        text = blob.decode()
    except UnicodeDecodeError:
        return "not UTF-8"
    if not text.endswith("\x01\x01"):
        return "does not end with ^A^A"
    pairs = kvpairs(text[:-2].split("\x01"))
    if pairs is None or set(pairs) != {"user", "auth"} or not text.startswith("user="):
        return "want user=...^Aauth=Bearer ...^A^A"
    token, why = bearer(pairs)
    return why or (pairs["user"], token, {})


def parse_oauthbearer(blob, default_user):
    """(user, token, {host, port}) from RFC 7628's `n,a=U,^Ahost=H^Aport=P^Aauth=Bearer T^A^A`, or why not."""
    try:
        text = blob.decode()
    except UnicodeDecodeError:
        return "not UTF-8"
    if not text.endswith("\x01\x01"):
        return "does not end with ^A^A"
    gs2, sep, rest = text[:-2].partition("\x01")
    if not sep:
        return "no ^A after the GS2 header"
    parts = gs2.split(",")
    if len(parts) != 3 or parts[0] not in ("n", "y") or parts[2] != "":
        return "GS2 header is not `n,a=USER,` (channel binding is not supported)"
    user = default_user
    if parts[1]:
        if not parts[1].startswith("a="):
            return "GS2 header's authzid is not a=USER"
        # RFC 5801 §4: ',' and '=' in the authzid are written =2C and =3D.
        user = parts[1][2:].replace("=2C", ",").replace("=3D", "=")
    pairs = kvpairs(rest.split("\x01"))
    if pairs is None:
        return "a field is not key=value"
    token, why = bearer(pairs)
    if why:
        return why
    port = pairs.get("port")
    if port is not None and not port.isdigit():
        return "port= is not a number"
    return user, token, {"host": pairs.get("host"), "port": int(port) if port else None}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", action="append", default=[], metavar="MODE=PORT",
                   help="a listener on 127.0.0.1:PORT in MODE (repeat); modes: " + ", ".join(MODES))
    p.add_argument("--store", required=True, help="folder for the stored messages (a subfolder per mode)")
    p.add_argument("--session-cap", type=int, default=2, help="session-cap: sessions at once (default 2)")
    p.add_argument("--messages-per-session", type=int, default=7,
                   help="per-session-cap: messages per session before the 421 (default 7)")
    p.add_argument("--size-limit", type=int, default=20000,
                   help="size-at-mail: the largest SIZE= accepted, in bytes (default 20000)")
    p.add_argument("--user", default="merge@example.test", help="flaky-setup and oauth2: the AUTH user")
    p.add_argument("--password-file", help="flaky-setup: file holding the AUTH password")
    p.add_argument("--token-key-file", help="oauth2: file holding the HMAC key of the tokens (scripts/lab-token)")
    p.add_argument("--token-lifetime", type=float, default=3,
                   help="oauth2: seconds a token is accepted after it was issued (default 3)")
    args = p.parse_args()
    args.password = Path(args.password_file).read_text().strip() if args.password_file else None
    args.token_key = Path(args.token_key_file).read_text().strip().encode() if args.token_key_file else None
    listeners = []
    for item in args.listen:
        mode, _, port = item.partition("=")
        if mode not in MODES or not port.isdigit():
            p.error(f"--listen {item}: want MODE=PORT with MODE one of {', '.join(MODES)}")
        if mode == "flaky-setup" and not args.password:
            p.error("flaky-setup needs --password-file")
        if mode == "oauth2" and not args.token_key:
            p.error("oauth2 needs --token-key-file")
        listeners.append((mode, int(port)))
    return args, listeners


async def serve(args, listeners):
    loop = asyncio.get_running_loop()
    servers = []
    for mode, port in listeners:
        listener = Listener(mode, args)
        servers.append(await loop.create_server(lambda listener=listener: LabSMTP(listener), HOST, port))
        log.info("%s listening on %s:%d", mode, HOST, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
    log.info("stopped")


def main():
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s", level=logging.INFO, stream=sys.stderr)
    # aiosmtpd's own log: a line per command at INFO, and a deprecation warning at every successful AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    args, listeners = parse_args()
    try:
        asyncio.run(serve(args, listeners))
    except OSError as e:
        sys.exit(f"lab-smtpd: {e}")


if __name__ == "__main__":
    main()
