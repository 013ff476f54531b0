#!/usr/bin/python3
"""test_oidc.py - credd's authorization code + PKCE sign-in against a
third-party OpenID provider (issue 13): the oidc-provider npm package
(pinned in tests/oidc/package-lock.json, installed with `npm ci`), not the
Entra emulator, so that the code flow is not only right against our own
emulator.

- The provider (tests/oidc/idp.mjs) serves TLS on loopback with a CA this
  test makes, its authorize and token routes mounted at Entra's v2.0 paths
  under the tenant, PKCE (S256) required, and the Entra claims credd reads
  (tid, oid, preferred_username) in its id_tokens.
- Paste-back (public client, token_endpoint_auth_method none): `credctl
  login --paste` from stdin; the test plays the browser through the
  provider's interaction (select_account/login, consent) as the user and
  pastes the final address; then `credctl token` returns a token the
  provider issued, and a refresh (--min-valid past half the token's life)
  uses and rotates the refresh token.
- Confidential client (private_key_jwt, `[entra] client_auth =
  certificate`): the platform-callback sign-in through credd's
  `[callback]` listener; the code and then the refresh are redeemed with
  a client assertion signed by the test's RSA key, which the provider
  checks against the client's registered JWKS.
- The canary: no code or token the provider issued appears in credd's log,
  the audit file, syslog, credctl's stderr or the sealed store.

No node: exit 77 (skipped), with the reason; npm ci failing is an error.
"""

import base64
import datetime
import http.cookiejar
import ipaddress
import json
import os
import re
import secrets
import select
import shutil
import ssl
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import harness
from harness import BIN, EXIT_OK, Stack, find_leaks, groups_of, run_suite, uid_of

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(os.path.dirname(HERE), "oidc")
USER = "entra_alice"
OTHER = "entra_bob"
CONF_CLIENT = "5d7c1f0e-6a1b-4c8e-9e0f-0c3c1b2a4d55"
AT_TTL = 30
FIGURES = {}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _b64u_uint(n):
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert(subject_key, cn, issuer_key=None, issuer_name=None, ca=False, san_ip=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer_name or name).public_key(subject_key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san_ip:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(san_ip))]), critical=False)
    return b.sign(issuer_key or subject_key, hashes.SHA256())


def _pem_key(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


class OidcStack(Stack):
    """A Stack whose IdP is oidc-provider (node tests/oidc/idp.mjs) instead
    of the emulator: the same credd.conf, the authority pointing at it."""

    def __init__(self, name, confidential=False, native=False, **kw):
        super().__init__(name, interval=0, **kw)
        self.native = native  # the provider as itself (provider = oidc)
        # [entra] client_id is the confidential client's, or the public one's.
        self.public_id = CONF_CLIENT if confidential else harness.CLIENT_ID
        self.conf_id = harness.CLIENT_ID if confidential else CONF_CLIENT
        self.issued_file = None
        self.callback_port = None
        self.proxy_port = None

    def start_emulator(self):
        os.chmod(self.emu_dir, 0o755)
        ca_key, srv_key = _rsa_key(), _rsa_key()
        ca = _cert(ca_key, "credd test CA", ca=True)
        srv = _cert(srv_key, "127.0.0.1", ca_key, ca.subject, san_ip="127.0.0.1")
        ca_file = os.path.join(self.emu_dir, "ca.pem")
        with open(ca_file, "wb") as f:
            f.write(ca.public_bytes(serialization.Encoding.PEM))
        os.chmod(ca_file, 0o644)
        with open(os.path.join(self.emu_dir, "srv.pem"), "wb") as f:
            f.write(srv.public_bytes(serialization.Encoding.PEM))
        with open(os.path.join(self.emu_dir, "srv.key"), "wb") as f:
            f.write(_pem_key(srv_key))
        # The confidential client's credential: a key and self-signed
        # certificate (credd's client_certificate_file, owner-only), its
        # public key registered with the provider as the client's JWKS.
        self.client_key = _rsa_key()
        ccert = _cert(self.client_key, "credd oidc test client")
        self.client_cert_file = os.path.join(self.etc_dir, "client.pem")
        with open(self.client_cert_file, "wb") as f:
            f.write(ccert.public_bytes(serialization.Encoding.PEM) + _pem_key(self.client_key))
        os.chmod(self.client_cert_file, 0o600)
        pub = self.client_key.public_key().public_numbers()
        client_jwk = {"kty": "RSA", "n": _b64u_uint(pub.n), "e": _b64u_uint(pub.e),
                      "use": "sig", "kid": "credd-test"}
        sign_key = _rsa_key()
        sn = sign_key.private_numbers()
        signing_jwk = {"kty": "RSA", "kid": "idp", "use": "sig",
                       "n": _b64u_uint(sn.public_numbers.n), "e": _b64u_uint(sn.public_numbers.e),
                       "d": _b64u_uint(sn.d), "p": _b64u_uint(sn.p), "q": _b64u_uint(sn.q),
                       "dp": _b64u_uint(sn.dmp1), "dq": _b64u_uint(sn.dmq1),
                       "qi": _b64u_uint(sn.iqmp)}
        self.port = harness.free_port()
        self.callback_port = harness.free_port()
        self.proxy_port = harness.free_port()
        authority = "https://127.0.0.1:%d" % self.port
        self.issued_file = os.path.join(self.emu_dir, "issued.jsonl")
        conf = {
            "port": self.port,
            "port_file": os.path.join(self.emu_dir, "port"),
            "issued_file": self.issued_file,
            "cert_file": os.path.join(self.emu_dir, "srv.pem"),
            "key_file": os.path.join(self.emu_dir, "srv.key"),
            "tenant": harness.TENANT,
            "cookie_key": secrets.token_hex(16),
            "access_token_ttl": AT_TTL,
            "callback_port": self.callback_port,
            "proxy_port": self.proxy_port,
            "scopes": sorted(set(harness.SCOPES.values())),
            "jwks": {"keys": [signing_jwk]},
            "native": self.native,
            "accounts": {self.upn(u): {"oid": self.oid(u)} for u in (USER, OTHER)},
            "clients": [
                {"client_id": self.public_id, "token_endpoint_auth_method": "none",
                 "application_type": "native",
                 "grant_types": ["urn:ietf:params:oauth:grant-type:device_code",
                                 "refresh_token"],
                 "response_types": [], "redirect_uris": []},
            ] if self.native else [
                {"client_id": self.public_id, "token_endpoint_auth_method": "none",
                 "application_type": "web",
                 "grant_types": ["authorization_code", "refresh_token"],
                 "response_types": ["code"],
                 "redirect_uris": [authority + "/common/oauth2/nativeclient"]},
                {"client_id": self.conf_id, "token_endpoint_auth_method": "private_key_jwt",
                 "token_endpoint_auth_signing_alg": "PS256",
                 "grant_types": ["authorization_code", "refresh_token"],
                 "response_types": ["code"],
                 "redirect_uris": [self.callback_uri()],
                 "jwks": {"keys": [client_jwk]}},
            ],
        }
        conf_file = os.path.join(self.emu_dir, "idp.json")
        with open(conf_file, "w") as f:
            json.dump(conf, f)
        os.chmod(conf_file, 0o600)
        logf = open(self.emu_log, "ab")
        self.emu = subprocess.Popen(["node", os.path.join(NODE_DIR, "idp.mjs"), conf_file],
                                    stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=NODE_DIR,
                                    start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 60
        while not os.path.exists(conf["port_file"]):
            if self.emu.poll() is not None:
                raise RuntimeError("oidc-provider exited (rc %s):\n%s"
                                   % (self.emu.returncode, harness.tail(self.emu_log)))
            if time.monotonic() > deadline:
                raise RuntimeError("oidc-provider not ready after 60 s:\n%s"
                                   % harness.tail(self.emu_log))
            time.sleep(0.1)
        self.sslctx = ssl.create_default_context(cafile=ca_file)

    def callback_uri(self):
        return "https://127.0.0.1:%d/entra/callback" % self.proxy_port

    def ctl(self, method, path, body=None):
        raise AssertionError("no emulator control API against oidc-provider (%s)" % path)

    def clear(self):
        pass

    def issued(self):
        out = []
        try:
            with open(self.issued_file) as f:
                for line in f:
                    out.append(json.loads(line))
        except FileNotFoundError:
            pass
        return out

    def issued_secrets(self):
        return [r["value"] for r in self.issued()
                if isinstance(r.get("value"), str) and len(r["value"]) >= 16]

    def grants(self, mark=0):
        """The grants since the mark-th issued record."""
        return [r for r in self.issued()[mark:] if r["kind"] == "grant"]


class OidcCase:
    EXTRA = "\n[entra]\nsignin = auth_code\n"
    LIFETIME = None
    ACCOUNT_MATCH = "%u@contoso.com"
    CONFIDENTIAL = False

    @classmethod
    def setUpClass(cls):
        cls.stack = OidcStack(cls.__name__, confidential=cls.CONFIDENTIAL,
                              account_match=cls.ACCOUNT_MATCH,
                              native=getattr(cls, "NATIVE", False))
        cls.addClassCleanup(cls.stack.stop)
        write = cls.stack.write_conf
        st = cls.stack
        cls.stack.write_conf = lambda extra="": write(extra + cls.extra(st))
        cls.stack.start()

    @classmethod
    def extra(cls, st):
        return cls.EXTRA

    def browser(self, url, account=USER):
        """Follow the authorize URL through the provider's interaction as
        USER (as a browser would, with its cookies); return the address the
        provider finally redirects to (the redirect URI with code and state)."""
        st = self.stack
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=st.sslctx),
                                             urllib.request.HTTPCookieProcessor(jar),
                                             _NoRedirect())
        prompts = []
        data = None
        for _ in range(12):
            try:
                with opener.open(urllib.request.Request(url, data=data), timeout=15) as r:
                    body = r.read()
                if not url.split("?")[0].rstrip("/").split("/")[-2] == "interaction":
                    raise AssertionError("provider answered %s with a page: %r" % (url, body[:300]))
                prompts.append(json.loads(body)["prompt"])
                data = urllib.parse.urlencode({"login": st.upn(account)}).encode()
                continue
            except urllib.error.HTTPError as e:
                if e.code not in (302, 303):
                    raise AssertionError("%s answered %d: %s" % (url, e.code, e.read()[:300]))
                loc = urllib.parse.urljoin(url, e.headers["Location"])
            data = None
            if "/interaction/" not in loc and "/oauth2/v2.0/authorize" not in loc:
                return loc, prompts
            url = loc
        raise AssertionError("no redirect to the client after %s" % prompts)


class GenericProviderTests(OidcCase, harness.StackTestCase):
    """[entra] provider = oidc against oidc-provider as itself: its issuer
    at the root, its own routes and discovery document, the device flow,
    refresh tokens that rotate (a reused one revokes the grant)."""

    NATIVE = True
    EXTRA = "\n[entra]\nprovider = oidc\nsignin = device_code\n"

    def device_browser(self, uri, user_code, account=USER):
        """The browser: open the verification URI, enter the code, confirm,
        then log in and consent through the interaction; the prompts seen."""
        st = self.stack
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=st.sslctx),
                                             urllib.request.HTTPCookieProcessor(jar),
                                             _NoRedirect())

        def xsrf_of(body):
            m = re.search(rb'name="xsrf" value="([0-9a-f]+)"', body)
            self.assertIsNotNone(m, "no xsrf in the device page: %r" % body[:300])
            return m.group(1).decode()

        with opener.open(uri, timeout=15) as r:
            xsrf = xsrf_of(r.read())
        form = {"xsrf": xsrf, "user_code": user_code}
        with opener.open(urllib.request.Request(uri, data=urllib.parse.urlencode(form).encode()),
                         timeout=15) as r:
            xsrf = xsrf_of(r.read())  # the confirmation page
        form = {"xsrf": xsrf, "user_code": user_code, "confirm": "yes"}
        url, data, prompts = uri, urllib.parse.urlencode(form).encode(), []
        for _ in range(12):
            try:
                with opener.open(urllib.request.Request(url, data=data), timeout=15) as r:
                    body = r.read()
                if "/interaction/" not in url:
                    return prompts, body  # the success page
                prompts.append(json.loads(body)["prompt"])
                data = urllib.parse.urlencode({"login": st.upn(account)}).encode()
                continue
            except urllib.error.HTTPError as e:
                if e.code not in (302, 303):
                    raise AssertionError("%s answered %d: %s" % (url, e.code, e.read()[:300]))
                url = urllib.parse.urljoin(url, e.headers["Location"])
            data = None
        raise AssertionError("the device sign-in never ended: %s" % prompts)

    def test_device_code_and_rotating_refresh(self):
        st = self.stack
        mark = len(st.issued())
        rc, _, err = st.credctl(USER, "token")
        self.assertEqual(rc, harness.EXIT_ACT, err)
        m = re.search(r"(https://\S+/device)\S* and enter (?:the )?code (\S+?)[,.]?\s", err + " ")
        self.assertIsNotNone(m, "no verification URI and code: %r" % err)
        uri, code = m.group(1), m.group(2)
        self.assertTrue(uri.startswith("https://127.0.0.1:%d/" % st.port), uri)
        prompts, body = self.device_browser(uri, code)
        self.assertIn("login", prompts)
        t1 = st.wait_token(USER, "storage")
        self.assertTrue(t1["access_token"])
        # The endpoints came from the provider's own document.
        log = harness.read_bytes(st.credd_log).decode("utf-8", "replace")
        self.assertIn("discovery: https://127.0.0.1:%d/.well-known/openid-configuration: "
                      "issuer https://127.0.0.1:%d," % (st.port, st.port), log)
        self.assertEqual(t1.get("account"), st.upn(USER), t1)
        ats = [r["value"] for r in st.issued()[mark:] if r["kind"] == "access_token"]
        self.assertIn(t1["access_token"], ats, "the token is not one oidc-provider issued")
        # A refresh: past half the token's life, --min-valid beyond what is
        # left (a generic provider's refresh token carries the scopes of its
        # grant only, so the same resource).
        left = float(t1["expires_on"]) - time.time()
        time.sleep(max(0.0, left - AT_TTL / 2.0 + 1.5))
        rc, t2, err = st.token(USER, None, "--min-valid", str(AT_TTL // 2))
        self.assertEqual(rc, EXIT_OK, err)
        self.assertNotEqual(t2["access_token"], t1["access_token"])
        # Then from the store after a restart: the rotated refresh token
        # (oidc-provider revokes the whole grant if the first is used again).
        st.restart_credd()
        rc, t3, err = st.token(USER)
        self.assertEqual(rc, EXIT_OK, err)
        self.assertNotEqual(t3["access_token"], t2["access_token"])
        grants = [g["grant_type"] for g in st.grants(mark)]
        self.assertEqual(grants, ["urn:ietf:params:oauth:grant-type:device_code",
                                  "refresh_token", "refresh_token"])
        rts = [r for r in st.issued()[mark:] if r["kind"] == "refresh_token"]
        self.assertEqual(len(rts), 3, "the refresh token was not rotated")
        FIGURES["oidc_generic_device_refreshes"] = grants.count("refresh_token")


class PasteBackTests(OidcCase, harness.StackTestCase):
    def setUp(self):
        super().setUp()
        self.stack.credctl(USER, "logout")

    def login_paste(self, account=USER):
        st = self.stack
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
        m = re.search(r"https://\S+/oauth2/v2\.0/authorize\?\S+", err.decode())
        if m is None:
            p.kill()
            p.communicate()
            raise AssertionError("no authorize URL from credctl login --paste: %r" % err)
        url = m.group(0)
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        self.assertEqual(q["code_challenge_method"], ["S256"])
        self.assertTrue(url.startswith("https://127.0.0.1:%d/%s/oauth2/v2.0/authorize?"
                                       % (st.port, harness.TENANT)), url)
        loc, prompts = self.browser(url, account)
        self.assertTrue(loc.startswith("https://127.0.0.1:%d/common/oauth2/nativeclient?"
                                       % st.port), loc)
        self.assertIn("code", urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query), loc)
        out, rest = p.communicate(loc.encode() + b"\n", timeout=60)
        st.credctl_records.append((USER, ["login", "--paste"], p.returncode,
                                   (err + rest).decode("utf-8", "replace")))
        if account == USER:
            self.assertEqual(p.returncode, EXIT_OK, (err + rest).decode())
        return p.returncode, out, rest, prompts

    def test_signin_token_refresh(self):
        st = self.stack
        mark = len(st.issued())
        t0 = time.monotonic()
        _, out, _, prompts = self.login_paste()
        FIGURES["oidc_paste_back_signin_s"] = round(time.monotonic() - t0, 2)
        self.assertIn("select_account", prompts)
        self.assertIn(b"Signed in as " + st.upn(USER).encode(), out)
        codes = [r for r in st.issued()[mark:] if r["kind"] == "code"]
        self.assertEqual(len(codes), 1, st.issued()[mark:])
        self.assertEqual([g["grant_type"] for g in st.grants(mark)], ["authorization_code"])
        rc, doc, err = st.token(USER)
        self.assertEqual(rc, EXIT_OK, err)
        ats = [r["value"] for r in st.issued()[mark:] if r["kind"] == "access_token"]
        self.assertIn(doc["access_token"], ats, "the token is not one oidc-provider issued")
        rts = [r["value"] for r in st.issued()[mark:] if r["kind"] == "refresh_token"]
        self.assertEqual(len(rts), 1, st.issued()[mark:])
        # Past half the token's life, --min-valid beyond what is left makes
        # credd refresh with the provider's refresh token (public client:
        # oidc-provider rotates it).
        left = float(doc["expires_on"]) - time.time()
        time.sleep(max(0.0, left - AT_TTL / 2.0 + 1.5))
        rc, doc2, err = st.token(USER, None, "--min-valid", str(AT_TTL // 2))
        self.assertEqual(rc, EXIT_OK, err)
        self.assertNotEqual(doc2["access_token"], doc["access_token"])
        self.assertEqual([g["grant_type"] for g in st.grants(mark)],
                         ["authorization_code", "refresh_token"])
        ats = [r["value"] for r in st.issued()[mark:] if r["kind"] == "access_token"]
        self.assertIn(doc2["access_token"], ats)
        self.assertEqual(len([r for r in st.issued()[mark:] if r["kind"] == "refresh_token"]), 2,
                         "the refresh token was not rotated")

    def test_other_account_refused(self):
        # The provider signs in bob for alice's flow: his id_token's
        # preferred_username fails account_match (%u@contoso.com), so credd
        # keeps no consent for alice.
        st = self.stack
        rc, out, rest, _ = self.login_paste(OTHER)
        self.assertNotEqual(rc, EXIT_OK, out)
        self.assertIn(b"account", rest.lower())
        self.assertNotEqual(st.token(USER)[0], EXIT_OK)

    def test_zz_canary_no_secret_in_logs(self):
        st = self.stack
        secrets_ = st.issued_secrets()
        self.assertTrue(secrets_, "the provider issued nothing")
        leaks = find_leaks(st.leak_sources(), secrets_, canary=False)
        self.assertEqual(leaks, [], "secret material leaked:\n" + "\n".join(leaks[:20]))


class ConfidentialTests(OidcCase, harness.StackTestCase):
    """client_auth = certificate: private_key_jwt on the code redemption
    and on the refresh, the platform-callback sign-in through credd's
    [callback] listener behind the provider's TLS proxy."""

    CONFIDENTIAL = True

    @classmethod
    def extra(cls, st):
        return ("\n[entra]\nsignin = auth_code\nclient_auth = certificate\n"
                "client_certificate_file = %s\n\n[callback]\nlisten = 127.0.0.1:%d\n"
                "redirect_uri = %s\n" % (st.client_cert_file, st.callback_port,
                                         st.callback_uri()))

    def test_callback_signin_and_refresh(self):
        st = self.stack
        t0 = time.monotonic()
        rep = st.request(USER, {"v": 1, "op": "login", "wait": 0})
        link = rep.get("signin_url") or ""
        self.assertTrue(link.startswith("https://127.0.0.1:%d/entra/login/" % st.proxy_port), rep)
        loc, prompts = self.browser(link)
        self.assertTrue(loc.startswith(st.callback_uri() + "?"), loc)
        ctx = urllib.request.HTTPSHandler(context=st.sslctx)
        with urllib.request.build_opener(ctx).open(loc, timeout=90) as r:
            page = r.read().decode("utf-8", "replace")
        FIGURES["oidc_callback_signin_s"] = round(time.monotonic() - t0, 2)
        self.assertIn("Signed in as %s." % USER, page)
        grants = st.grants()
        self.assertEqual([(g["grant_type"], g["client"], g["auth"]) for g in grants],
                         [("authorization_code", harness.CLIENT_ID, "private_key_jwt")])
        rc, doc, err = st.token(USER)
        self.assertEqual(rc, EXIT_OK, err)
        ats = [r["value"] for r in st.issued() if r["kind"] == "access_token"]
        self.assertIn(doc["access_token"], ats)
        left = float(doc["expires_on"]) - time.time()
        time.sleep(max(0.0, left - AT_TTL / 2.0 + 1.5))
        rc, doc2, err = st.token(USER, None, "--min-valid", str(AT_TTL // 2))
        self.assertEqual(rc, EXIT_OK, err)
        self.assertNotEqual(doc2["access_token"], doc["access_token"])
        self.assertEqual([(g["grant_type"], g["auth"]) for g in st.grants()],
                         [("authorization_code", "private_key_jwt"),
                          ("refresh_token", "private_key_jwt")])

    test_zz_canary_no_secret_in_logs = PasteBackTests.test_zz_canary_no_secret_in_logs


def main():
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("SKIP: node/npm not installed (scripts/install-deps installs them)")
        return 77
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "oidc-provider")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=600)
        if r.returncode != 0:
            print("ERROR: npm ci in %s failed:\n%s" % (NODE_DIR, r.stdout[-2000:]))
            return 1
    return run_suite(__name__, __doc__, "test_oidc.py must run as root (real users, credd)",
                     figures=FIGURES)


if __name__ == "__main__":
    sys.exit(main())
