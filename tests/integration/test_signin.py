#!/usr/bin/python3
"""test_signin.py - authorization code + PKCE sign-ins end to end (issue 13):
the Entra emulator, credd and credctl, real users (root).

- Paste-back through `credctl login` under a real pty (the address typed
  into the terminal, echo off), and with `--paste` from stdin.
- A replayed state (the same address again) and a replayed code (an old
  code under a new flow's state) are refused; another account is
  account_mismatch.
- signin = device_code,auth_code: a device flow that Conditional Access
  blocks (53003 at the poll, or at the start) falls back to the code
  flow, says so, and the user signs in with it.
- The canary of every class: no code, token or pasted address in credd's
  log, the audit file, syslog or credctl's stderr.

The platform callback (confidential client) has no listener yet; its
broker entry points are unit-tested (tests/unit/test_flow_code.c).
"""

import json
import os
import threading
import pty
import re
import select
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import harness
from harness import BIN, EXIT_ACT, EXIT_OK, Stack, groups_of, run_suite, uid_of

USER = "entra_alice"
OTHER = "entra_bob"
DOMAIN_MATCH = "%u@contoso.com"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class SigninCase:
    """Mixed into a StackTestCase: a stack whose credd.conf has EXTRA
    appended (a mixin, so that unittest does not run it alone)."""

    ACCOUNT_MATCH = DOMAIN_MATCH
    EXTRA = "\n[entra]\nsignin = auth_code\n"

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(cls.__name__, lifetime=cls.LIFETIME, account_match=cls.ACCOUNT_MATCH,
                          records_in_memory=cls.RECORDS_IN_MEMORY)
        cls.addClassCleanup(cls.stack.stop)
        write = cls.stack.write_conf
        cls.stack.write_conf = lambda extra="": write(extra + cls.EXTRA)
        cls.stack.start()

    def setUp(self):
        super().setUp()
        self.stack.credctl(USER, "logout")
        self.stack.credctl(OTHER, "logout")

    # ---- helpers
    def signin_next(self, user, username=None, outcome="approve"):
        st = self.stack
        st.ctl("POST", "signin_next", {"oid": st.oid(user),
                                       "preferred_username": username or st.upn(user),
                                       "outcome": outcome})

    def follow(self, url):
        """The browser: GET the authorize URL, return where it redirects."""
        st = self.stack
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=st.sslctx),
                                             _NoRedirect())
        try:
            opener.open(url, timeout=15)
        except urllib.error.HTTPError as e:
            if e.code == 302:
                return e.headers["Location"]
            raise AssertionError("authorize answered %d: %s" % (e.code, e.read()[:300]))
        raise AssertionError("authorize did not redirect")

    def login_request(self, user):
        """A login op (no wait) on the socket; its reply."""
        return self.stack.request(user, {"v": 1, "op": "login", "wait": 0})

    def paste(self, user, url):
        return self.stack.request(user, {"v": 1, "op": "login_code", "url": url}, timeout=30)

    def credctl_pty(self, user, *args, answer=None, timeout=60):
        """credctl as user under a pty. answer(text) is called with the
        output so far until it returns a line to type; returns (rc, out)."""
        st = self.stack
        gid, groups = groups_of(user)
        uid = uid_of(user)
        argv = [BIN["credctl"], "--socket", st.sock] + list(args)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C", "HOME": "/", "TERM": "dumb"}
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.setgroups(groups)
                os.setgid(gid)
                os.setuid(uid)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        out, typed = b"", False
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                r, _, _ = select.select([fd], [], [], 0.5)
                if r:
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    out += chunk
                if answer is not None and not typed:
                    line = answer(out.decode("utf-8", "replace"))
                    if line is not None:
                        os.write(fd, line.encode() + b"\r")
                        typed = True
        finally:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        text = out.decode("utf-8", "replace")
        st.credctl_records.append((user, list(args), os.waitstatus_to_exitcode(status), text))
        return os.waitstatus_to_exitcode(status), text

    @staticmethod
    def authorize_url(text):
        m = re.search(r"https://\S+/oauth2/v2\.0/authorize\?\S+", text)
        return m.group(0) if m else None


class PasteBackTests(SigninCase, harness.StackTestCase):
    def test_paste_under_a_pty(self):
        st = self.stack
        self.signin_next(USER)
        seen = {}

        def answer(text):
            if "paste it here" not in text:
                return None
            url = self.authorize_url(text)
            self.assertIsNotNone(url, text)
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            self.assertEqual(q["code_challenge_method"], ["S256"])
            self.assertEqual(q["login_hint"], [st.upn(USER)])
            self.assertTrue(q["redirect_uri"][0].endswith("/common/oauth2/nativeclient"), q)
            seen["loc"] = self.follow(url)
            return seen["loc"]

        t0 = time.monotonic()
        rc, text = self.credctl_pty(USER, "login", answer=answer)
        took = time.monotonic() - t0
        self.assertEqual(rc, EXIT_OK, text)
        self.assertIn("Signed in as " + st.upn(USER), text)
        # Echo was off: the pasted address (with its code) never showed.
        self.assertNotIn("code=", text.split("paste it here")[-1])
        self.assertEqual(st.token(USER)[0], EXIT_OK)
        FIGURES["paste_back_signin_s"] = round(took, 2)
        # The same address again: its state is used up.
        err = self.assertErrorCode(self.paste(USER, seen["loc"]), "consent_required")
        self.assertNotIn("code=", json.dumps(err))

    def test_paste_from_stdin(self):
        st = self.stack
        self.signin_next(USER)
        p = subprocess.Popen([BIN["credctl"], "--socket", st.sock, "login", "--paste"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, user=uid_of(USER),
                             group=groups_of(USER)[0], extra_groups=groups_of(USER)[1],
                             env={"PATH": "/usr/bin:/bin", "LANG": "C", "HOME": "/"}, cwd="/")
        err, end = b"", time.monotonic() + 30
        while b"paste it here" not in err and time.monotonic() < end:
            r, _, _ = select.select([p.stderr], [], [], 0.5)
            if r:
                chunk = os.read(p.stderr.fileno(), 4096)
                if not chunk:
                    break
                err += chunk
        url = self.authorize_url(err.decode())
        self.assertIsNotNone(url, err)
        out, rest = p.communicate(self.follow(url).encode() + b"\n", timeout=30)
        st.credctl_records.append((USER, ["login", "--paste"], p.returncode,
                                   (err + rest).decode("utf-8", "replace")))
        self.assertEqual(p.returncode, EXIT_OK, (err + rest).decode())
        self.assertIn(b"Signed in as", out)

    def test_code_replay_and_wrong_state(self):
        st = self.stack
        self.signin_next(USER)
        rep = self.login_request(USER)
        self.assertEqual(rep.get("method"), "auth_code", rep)
        self.assertIs(rep.get("paste_back"), True, rep)
        first = self.follow(rep["signin_url"])
        self.assertEqual(self.paste(USER, first).get("state"), "ready")
        # A new flow: its address with the old, used code under the new
        # state is refused by Entra (54005) and ends the flow.
        st.credctl(USER, "logout")
        self.signin_next(USER)
        rep = self.login_request(USER)
        second = self.follow(rep["signin_url"])
        old = urllib.parse.parse_qs(urllib.parse.urlsplit(first).query)["code"][0]
        new_state = urllib.parse.parse_qs(urllib.parse.urlsplit(second).query)["state"][0]
        base = second.split("?")[0]
        # The old flow's state is refused before anything reaches Entra.
        err = self.assertErrorCode(self.paste(USER, first), "bad_request")
        self.assertIn("another sign-in", err["message"])
        forged = base + "?" + urllib.parse.urlencode({"code": old, "state": new_state})
        self.assertErrorCode(self.paste(USER, forged), "consent_required")
        self.assertNotEqual(st.token(USER)[0], EXIT_OK)

    def test_wrong_account_refused(self):
        st = self.stack
        self.signin_next(USER, username=st.upn(OTHER))
        rep = self.login_request(USER)
        loc = self.follow(rep["signin_url"])
        self.assertErrorCode(self.paste(USER, loc), "account_mismatch")
        # Another user cannot finish alice's flow with her address.
        self.signin_next(USER)
        rep = self.login_request(USER)
        loc = self.follow(rep["signin_url"])
        self.assertErrorCode(self.paste(OTHER, loc), "consent_required")
        self.assertEqual(self.paste(USER, loc).get("state"), "ready")


class FallbackTests(SigninCase, harness.StackTestCase):
    EXTRA = "\n[entra]\nsignin = device_code,auth_code\n"

    def test_blocked_at_the_poll_falls_back(self):
        st = self.stack
        st.ctl("POST", "block_device_flow", {"at": "poll", "oid": st.oid(USER)})
        code = st.start_consent(USER)
        st.approve(code, USER)
        deadline = time.monotonic() + 20
        while True:
            rep = st.request(USER, {"v": 1, "op": "token"})
            err = rep.get("error", {})
            if err.get("method") == "auth_code" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(err.get("method"), "auth_code", rep)
        self.assertIn("blocks", err.get("message", ""))
        self.assertNotIn("user_code", err)
        # credctl says so too, and the user signs in with the link.
        rc, _, text = st.credctl(USER, "token")
        self.assertEqual(rc, EXIT_ACT, text)
        self.signin_next(USER)
        loc = self.follow(err["signin_url"])
        self.assertEqual(self.paste(USER, loc).get("state"), "ready")
        self.assertEqual(st.token(USER)[0], EXIT_OK)
        recs = [r for r in st.audit_records() if r.get("event") == "consent_fallback"]
        self.assertTrue(recs, "no consent_fallback audit record")

    def test_blocked_at_the_start_falls_back(self):
        st = self.stack
        st.ctl("POST", "block_device_flow", {"at": "start"})
        rep = self.login_request(USER)
        self.assertEqual(rep.get("method"), "auth_code", rep)
        self.signin_next(USER)
        loc = self.follow(rep["signin_url"])
        self.assertEqual(self.paste(USER, loc).get("state"), "ready")


class DeviceOnlyTests(SigninCase, harness.StackTestCase):
    EXTRA = ""

    def test_blocked_device_flow_stays_policy_blocked(self):
        st = self.stack
        st.ctl("POST", "block_device_flow", {"at": "poll", "oid": st.oid(USER)})
        code = st.start_consent(USER)
        got = {}

        def wait_login():
            got["rep"] = st.request(USER, {"v": 1, "op": "login", "wait": 30}, timeout=45)

        t = threading.Thread(target=wait_login)
        t.start()
        time.sleep(1.0)  # the login is parked on the flow
        st.approve(code, USER)
        t.join(60)
        err = self.assertErrorCode(got.get("rep", {}), "policy_blocked")
        self.assertNotIn("signin_url", err)


FIGURES = {}


if __name__ == "__main__":
    sys.exit(run_suite(__name__, __doc__, "the sign-in suite needs root (real users, credd)",
                       figures=FIGURES))
