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

- The platform callback (confidential client; `[callback] listen` and
  `redirect_uri`), once with `client_auth = certificate` and once with
  `federated`: the test plays browser and reverse proxy. The login op's
  short link is opened on credd's listener (302 to the authorize URL),
  the emulator's redirect to the public callback URL is sent to the
  listener over plain HTTP ("Signed in as USER"), and tokens follow: the
  code redeemed and every refresh made with the app credential (the
  emulator refuses a confidential refresh without one; azpacr 2), the
  refresh token rotated, and after a restart still refreshed from the
  sealed record. A replayed callback is "not valid any more" (audited),
  a replayed short link a 404.
- The sign-in time of each method on one node, from the first
  `credctl token` to the first token served, with the emulator approving
  at once (FIGURES *_first_token_s; the cluster's, across nodes, are
  tests/cluster/test_cluster.py's MEASURED lines).
"""

import base64
import datetime
import json
import os
import pwd
import shutil
import tempfile
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
from harness import BIN, EXIT_ACT, EXIT_OK, Stack, groups_of, jwt_claims, run_suite, uid_of

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

    def first_token(self, user, t0, deadline=60):
        """credctl token until it serves: seconds since t0."""
        while True:
            rc, doc, err = self.stack.token(user)
            if rc == EXIT_OK:
                return time.monotonic() - t0
            self.assertLess(time.monotonic() - t0, deadline, err[:300])
            time.sleep(0.02)

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

    def test_z_paste_back_first_token_time(self):
        st = self.stack
        self.signin_next(USER)
        t0 = time.monotonic()
        rc, _, err = st.credctl(USER, "token")
        self.assertEqual(rc, EXIT_ACT, err)
        loc = self.follow(self.login_request(USER)["signin_url"])
        self.assertTrue(self.paste(USER, loc).get("ok"))
        FIGURES["paste_back_first_token_s"] = round(self.first_token(USER, t0), 2)

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

    def test_rfc9207_iss_checked(self):
        # An answer whose iss is not the discovered issuer (another IdP's
        # answer: a mix-up) is refused before its code goes anywhere; the
        # same answer with the right iss, or none, is redeemed.
        st = self.stack
        self.signin_next(USER)
        rep = self.login_request(USER)
        loc = self.follow(rep["signin_url"])
        n0 = st.counters()["authorization_code"]
        evil = loc + "&" + urllib.parse.urlencode({"iss": "https://idp.example/x/v2.0"})
        err = self.assertErrorCode(self.paste(USER, evil), "bad_request")
        self.assertIn("another identity provider", err["message"])
        self.assertEqual(st.counters()["authorization_code"], n0, "the code was redeemed")
        self.assertTrue(any(r.get("event") == "consent_rejected" and
                            "iss" in str(r.get("reason", "")) for r in st.audit_records()))
        good = loc + "&" + urllib.parse.urlencode(
            {"iss": "https://127.0.0.1:%d/%s/v2.0" % (st.port, harness.TENANT)})
        self.assertEqual(self.paste(USER, good).get("state"), "ready")

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

    def test_z_device_code_first_token_time(self):
        """Bounded by the poll interval: credd polls Entra at the
        interval the device code came with, after the user approved."""
        st = self.stack
        t0 = time.monotonic()
        st.approve(st.start_consent(USER), USER)
        FIGURES["device_code_first_token_s"] = round(self.first_token(USER, t0), 2)

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


# ------------------------------------------------- the platform callback

REDIRECT = "https://platform.test/entra/callback"
FIC_ISSUER = "https://oidc.k8s.test/cluster-1"
FIC_SUBJECT = "system:serviceaccount:ns1:credd"


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert_pem(key):
    """A self-signed certificate for key, and the file credd reads (the
    certificate first, then the unencrypted key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "credd callback test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cpem = cert.public_bytes(serialization.Encoding.PEM)
    kpem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    return cpem.decode(), (cpem + kpem)


def _jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": _b64url(pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")),
            "e": _b64url(pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big"))}


def _fed_token(key, kid="k1"):
    """A workload identity token (RS256) of FIC_ISSUER for FIC_SUBJECT."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    now = int(time.time())
    claims = {"iss": FIC_ISSUER, "sub": FIC_SUBJECT, "aud": ["api://AzureADTokenExchange"],
              "iat": now, "nbf": now, "exp": now + 3600}
    data = (_b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode()) + "."
            + _b64url(json.dumps(claims).encode()))
    sig = key.sign(data.encode(), padding.PKCS1v15(), hashes.SHA256())
    return data + "." + _b64url(sig)


class CallbackCase(SigninCase):
    """The platform-callback sign-in through credd's [callback] listener,
    with the app credential of CLIENT_AUTH (certificate or federated)."""

    CLIENT_AUTH = None

    @classmethod
    def setUpClass(cls):
        cls.cport = harness.free_port()
        cls.key = _rsa_key()
        cls.cred_dir = tempfile.mkdtemp(prefix="credd-it-cred-", dir="/tmp")
        os.chmod(cls.cred_dir, 0o755)
        cls.addClassCleanup(shutil.rmtree, cls.cred_dir, True)
        path = os.path.join(cls.cred_dir, "client." + cls.CLIENT_AUTH)
        if cls.CLIENT_AUTH == "certificate":
            cls.cert_pem, data = _cert_pem(cls.key)
            # A line of the private key's PEM body: what a leak would show.
            cls.credential = data.decode().split("PRIVATE KEY-----\n")[1].splitlines()[3]
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o600)
            auth = "client_auth = certificate\nclient_certificate_file = %s\n" % path
        else:
            cls.credential = _fed_token(cls.key)
            with open(path, "w") as f:
                f.write(cls.credential)
            cu = pwd.getpwnam(harness.CREDD_USER)
            os.chown(path, cu.pw_uid, cu.pw_gid)  # read afresh after privilege drop
            os.chmod(path, 0o400)
            auth = "client_auth = federated\nclient_assertion_file = %s\n" % path
        cls.EXTRA = ("\n[entra]\nsignin = auth_code\n" + auth
                     + "\n[callback]\nlisten = 127.0.0.1:%d\nredirect_uri = %s\n"
                     % (cls.cport, REDIRECT))
        cls.stack = st = Stack(cls.__name__, lifetime=cls.LIFETIME,
                               account_match=cls.ACCOUNT_MATCH,
                               records_in_memory=cls.RECORDS_IN_MEMORY)
        cls.addClassCleanup(st.stop)
        write = st.write_conf
        st.write_conf = lambda extra="": write(extra + cls.EXTRA)
        st.start()
        st.ctl("POST", "register_redirect", {"uri": REDIRECT, "kind": "web"})
        if cls.CLIENT_AUTH == "certificate":
            st.ctl("POST", "register_certificate", {"pem": cls.cert_pem})
        else:
            st.ctl("POST", "register_federated", {"issuer": FIC_ISSUER, "subject": FIC_SUBJECT,
                                                  "jwks": {"keys": [_jwk(cls.key, "k1")]}})

    def listener(self, path_query):
        """GET path_query on credd's listener (the proxy's hop, plain HTTP):
        (status, Location or None, body text)."""
        opener = urllib.request.build_opener(_NoRedirect())
        url = "http://127.0.0.1:%d%s" % (self.cport, path_query)
        try:
            with opener.open(url, timeout=60) as r:
                return r.status, r.headers.get("Location"), r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Location"), e.read().decode("utf-8", "replace")

    def chain(self, user):
        return self.stack.ctl("GET", "refresh_chain").get("accounts", {}).get(
            self.stack.oid(user), [])

    def test_z_callback_first_token_time(self):
        st = self.stack
        self.signin_next(USER)
        t0 = time.monotonic()
        rc, _, err = st.credctl(USER, "token")
        self.assertEqual(rc, EXIT_ACT, err)
        m = re.search(r"https://platform\.test/entra/login/([A-Za-z0-9_-]+)", err)
        self.assertIsNotNone(m, err)
        status, authorize, _ = self.listener("/entra/login/" + m.group(1))
        self.assertEqual(status, 302)
        u = urllib.parse.urlsplit(self.follow(authorize))
        status, _, page = self.listener(u.path + "?" + u.query)
        self.assertEqual(status, 200, page)
        FIGURES["callback_%s_first_token_s" % self.CLIENT_AUTH] = round(
            self.first_token(USER, t0), 2)

    def test_callback_signin_z_iss_checked(self):
        # RFC 9207 at the callback: an answer naming another issuer is
        # refused before its code goes anywhere; the same answer with the
        # discovered issuer is redeemed. (Named to run after end_to_end,
        # which reads the account's whole refresh chain.)
        st = self.stack
        self.signin_next(USER)
        rep = self.login_request(USER)
        link_id = rep.get("signin_url", "").rsplit("/", 1)[-1]
        status, authorize, _ = self.listener("/entra/login/" + link_id)
        self.assertEqual(status, 302)
        back = self.follow(authorize)
        u = urllib.parse.urlsplit(back)
        n0 = st.counters()["authorization_code"]
        evil = "&" + urllib.parse.urlencode({"iss": "https://idp.example/x/v2.0"})
        status, _, page = self.listener(u.path + "?" + u.query + evil)
        self.assertNotEqual(status, 200, page)
        self.assertIn("another identity provider", page)
        self.assertEqual(st.counters()["authorization_code"], n0, "the code was redeemed")
        good = "&" + urllib.parse.urlencode(
            {"iss": "https://127.0.0.1:%d/%s/v2.0" % (st.port, harness.TENANT)})
        status, _, page = self.listener(u.path + "?" + u.query + good)
        self.assertEqual(status, 200, page)
        self.assertIn("Signed in as %s." % USER, page)

    def test_callback_signin_end_to_end(self):
        st = self.stack
        st.reset_counters()
        self.signin_next(USER)
        rep = self.login_request(USER)
        self.assertEqual(rep.get("method"), "auth_code", rep)
        self.assertIsNot(rep.get("paste_back"), True, rep)
        link = rep.get("signin_url", "")
        prefix = "https://platform.test/entra/login/"
        self.assertTrue(link.startswith(prefix), rep)
        link_id = link[len(prefix):]
        self.assertRegex(link_id, r"^[A-Za-z0-9_-]{22}$")

        # The browser opens the short link (through the proxy: the path).
        t0 = time.monotonic()
        status, authorize, _ = self.listener("/entra/login/" + link_id)
        self.assertEqual(status, 302)
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)
        self.assertEqual(q["redirect_uri"], [REDIRECT])
        self.assertEqual(q["code_challenge_method"], ["S256"])
        # Entra's redirect to the public callback URL; the proxy forwards it.
        back = self.follow(authorize)
        self.assertTrue(back.startswith(REDIRECT + "?"), back)
        u = urllib.parse.urlsplit(back)
        code = urllib.parse.parse_qs(u.query)["code"][0]
        status, _, page = self.listener(u.path + "?" + u.query)
        self.assertEqual(status, 200, page)
        self.assertIn("Signed in as %s." % USER, page)
        rc, doc, err = st.token(USER)
        took = time.monotonic() - t0
        self.assertEqual(rc, EXIT_OK, err)
        FIGURES["callback_signin_%s_s" % self.CLIENT_AUTH] = round(took, 2)
        self.assertEqual(jwt_claims(doc["access_token"]).get("azpacr"), "2")
        c = st.counters()
        self.assertEqual(c["authorize"], 1, c)
        self.assertEqual(c["authorization_code"], 1, c)

        # Another resource: a refresh, confidential (the emulator refuses
        # one without the credential: 7000218), the refresh token rotated.
        rc, doc, err = st.token(USER, "vault")
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(jwt_claims(doc["access_token"]).get("azpacr"), "2")
        self.assertGreaterEqual(st.counters()["refresh_token"], 1)
        chain = self.chain(USER)
        self.assertGreaterEqual(len(chain), 2, chain)
        self.assertTrue(chain[0]["used"], chain)

        # Replays: the callback (its state is used up) and the short link.
        status, _, page = self.listener(u.path + "?" + u.query)
        self.assertEqual(status, 400, page)
        self.assertIn("not valid any more", page)
        status, _, _ = self.listener("/entra/login/" + link_id)
        self.assertEqual(status, 404)
        deadline = time.monotonic() + 10
        while True:
            refused = [r for r in st.audit_records() if r.get("event") == "request_refused"
                       and "signin_callback" in json.dumps(r)]
            if refused or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(refused, "no audit record of the replayed callback")

        # A restart: the sealed record refreshes, still confidential.
        st.restart_credd()
        n = len(self.chain(USER))
        rc, doc, err = st.token(USER, "graph")
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(jwt_claims(doc["access_token"]).get("azpacr"), "2")
        self.assertGreater(len(self.chain(USER)), n)

        # Canary: the code, the credential and every refresh token issued.
        leaks = harness.find_leaks(st.leak_sources(),
                                   [code, self.credential] + st.issued_secrets())
        self.assertEqual(leaks, [], "\n".join(leaks))


class CallbackCertificateTests(CallbackCase, harness.StackTestCase):
    CLIENT_AUTH = "certificate"


class CallbackFederatedTests(CallbackCase, harness.StackTestCase):
    CLIENT_AUTH = "federated"

    def test_check_config_reads_the_token_file_as_the_credd_user(self):
        """credd reads the federated token file per request after dropping
        to [server] user, so --check-config (as root) judges it as that user:
        the credd-owned file passes (the stack's own start checked it), a
        root-owned 0600 copy, which credd could not read, is refused."""
        st = self.stack
        path = os.path.join(self.cred_dir, "client.federated")
        root_copy = os.path.join(self.cred_dir, "root-owned.token")
        shutil.copyfile(path, root_copy)
        os.chown(root_copy, 0, 0)
        os.chmod(root_copy, 0o600)
        with open(st.conf) as f:
            conf = f.read()
        alt = os.path.join(self.cred_dir, "alt.conf")
        with open(alt, "w") as f:
            f.write(conf.replace(path, root_copy))
        r = subprocess.run([BIN["credd"], "--check-config", "-c", alt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(root_copy, r.stdout)
        self.assertNotIn(self.credential, r.stdout)
        r = subprocess.run([BIN["credd"], "--check-config", "-c", st.conf],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout)


FIGURES = {}


if __name__ == "__main__":
    sys.exit(run_suite(__name__, __doc__, "the sign-in suite needs root (real users, credd)",
                       figures=FIGURES))
