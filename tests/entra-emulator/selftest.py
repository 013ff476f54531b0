#!/usr/bin/python3
# selftest.py - self-test of the Entra emulator. Starts emulator.py on temp
# state directories and drives every Entra endpoint and every control call
# through urllib / http.client over TLS that trusts only the generated ca.pem
# (certificate and host-name checks stay on). Prints one line per failure and
# a final "N passed, M failed"; exits 0 only when nothing failed. The
# enterprise sign-in sections (authorize, code and client_credentials
# grants, certificate and federated client assertions) are in
# selftest_signin.py.

import base64
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

import selftest_signin  # beside this file

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "emulator.py")
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
STORAGE = "https://storage.azure.com"
DBX = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
STAMP_RE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ"

PASSED, FAILED = 0, 0


def check(name, cond, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
    else:
        FAILED += 1
        print("FAIL: %s %s" % (name, detail), flush=True)
    return bool(cond)


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


class Emulator:
    """One emulator process on its own temp state directory."""

    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="entra-emu-")
        self.proc = subprocess.Popen([sys.executable, EMULATOR, "--state-dir", self.dir,
                                      "--port", "0"] + list(extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.ready_line = self._read_line(30)
        m = re.fullmatch(r"READY (\d+)\n", self.ready_line)
        if not m:
            self.proc.kill()
            raise RuntimeError("no READY line, got %r, stderr %r"
                               % (self.ready_line, self.proc.stderr.read()))
        self.port = int(m.group(1))
        self.authority = "https://127.0.0.1:%d" % self.port
        self.ca = os.path.join(self.dir, "ca.pem")
        self.ctx = ssl.create_default_context(cafile=self.ca)  # trusts ca.pem only
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.ctx))
        self.seen = set()

    def _read_line(self, timeout):
        fd, buf, end = self.proc.stdout.fileno(), b"", time.time() + timeout
        while not buf.endswith(b"\n") and time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                chunk = os.read(fd, 1)
                if not chunk:
                    break
                buf += chunk
        return buf.decode()

    def call(self, method, path, form=None, js=None, headers=None, host="127.0.0.1",
             timeout=30):
        data = None
        hdrs = dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif js is not None:
            data = json.dumps(js).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request("https://%s:%d%s" % (host, self.port, path), data=data,
                                     method=method, headers=hdrs)
        try:
            with self.opener.open(req, timeout=timeout) as r:
                return Resp(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Resp(e.code, e.headers, e.read())

    def control(self, name, body=None, method=None):
        r = self.call(method or ("GET" if body is None else "POST"), "/_control/" + name, js=body)
        return r.status, r.json()

    def ok(self, name, body=None):
        status, reply = self.control(name, body if body is not None else {})
        check("control %s" % name, status == 200 and reply.get("ok") is True, reply)
        return reply

    def token(self, form, tenant=TENANT, headers=None):
        f = {"client_id": CLIENT}
        f.update(form)
        f = {k: v for k, v in f.items() if v is not None}
        r = self.call("POST", "/%s/oauth2/v2.0/token" % tenant, form=f, headers=headers)
        if r.status == 200:
            try:
                body = r.json()
                for k in ("access_token", "refresh_token", "id_token"):
                    if k in body:
                        self.seen.add(body[k])
            except ValueError:
                pass
        return r

    def devicecode(self, scope, client_id=CLIENT, tenant=TENANT):
        r = self.call("POST", "/%s/oauth2/v2.0/devicecode" % tenant,
                      form={"client_id": client_id, "scope": scope})
        if r.status == 200:
            self.seen.add(r.json()["device_code"])
        return r

    def refresh(self, rt, scope, **extra):
        form = {"grant_type": "refresh_token", "refresh_token": rt, "scope": scope}
        form.update(extra)
        return self.token(form)

    def poll(self, device_code, **extra):
        form = {"grant_type": DEVICE_GRANT, "device_code": device_code}
        form.update(extra)
        return self.token(form)

    def login(self, oid, username, scope="openid profile offline_access %s/.default" % STORAGE,
              **extra):
        """A complete device flow; returns the token response body."""
        dc = self.devicecode(scope).json()
        self.ok("approve", {"user_code": dc["user_code"], "oid": oid,
                            "preferred_username": username})
        r = self.poll(dc["device_code"], **extra)
        check("login %s" % username, r.status == 200, r.body[:300])
        return r.json()

    def stop(self):
        """SIGTERM; returns (exit code, stdout, stderr)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode, (self.ready_line.encode() + out).decode(), err.decode()


# ---------------------------------------------------------------- shared checks

def expect_error(name, r, status, error, code, suberror=None, correlation=None):
    """Checks an Entra error reply in full: status, fields, types and formats."""
    if not check("%s: status %d" % (name, status), r.status == status,
                 "got %d %r" % (r.status, r.body[:300])):
        return None
    try:
        b = r.json()
    except ValueError:
        check("%s: JSON body" % name, False, r.body[:200])
        return None
    check("%s: content-type" % name,
          r.headers.get("Content-Type") == "application/json; charset=utf-8")
    check("%s: error" % name, b.get("error") == error, b.get("error"))
    check("%s: error_codes" % name, b.get("error_codes") == [code], b.get("error_codes"))
    check("%s: suberror" % name, b.get("suberror") == suberror, b.get("suberror"))
    check("%s: timestamp" % name, re.fullmatch(STAMP_RE, b.get("timestamp", "")))
    check("%s: trace_id" % name, re.fullmatch(GUID_RE, b.get("trace_id", "")))
    check("%s: correlation_id" % name,
          b.get("correlation_id") == correlation if correlation
          else re.fullmatch(r"[0-9A-Za-z-]+", b.get("correlation_id", "")))
    check("%s: error_uri" % name,
          b.get("error_uri") == "https://login.microsoftonline.com/error?code=%d" % code)
    desc = b.get("error_description", "")
    m = re.fullmatch(r"AADSTS(\d+): (.+)\r\nTrace ID: (\S+)\r\nCorrelation ID: (\S+)\r\n"
                     r"Timestamp: (.+)", desc, re.S)
    check("%s: error_description shape" % name,
          m and m.group(1) == str(code) and m.group(3) == b["trace_id"]
          and m.group(4) == b["correlation_id"] and m.group(5) == b["timestamp"], repr(desc))
    return b


class Verifier:
    """Verifies RS256 JWTs against the emulator's JWKS."""

    def __init__(self, jwks):
        key = jwks["keys"][0]
        n = int.from_bytes(b64url_decode(key["n"]), "big")
        e = int.from_bytes(b64url_decode(key["e"]), "big")
        self.kid = key["kid"]
        self.pub = rsa.RSAPublicNumbers(e, n).public_key()

    def claims(self, name, token):
        parts = token.split(".")
        if not check("%s: three JWT parts" % name, len(parts) == 3):
            return {}
        header = json.loads(b64url_decode(parts[0]))
        check("%s: header" % name, header.get("alg") == "RS256" and header.get("kid") == self.kid,
              header)
        try:
            self.pub.verify(b64url_decode(parts[2]), (parts[0] + "." + parts[1]).encode(),
                            padding.PKCS1v15(), hashes.SHA256())
            check("%s: signature" % name, True)
        except Exception as e:  # InvalidSignature
            check("%s: signature" % name, False, repr(e))
        claims = json.loads(b64url_decode(parts[1]))
        check("%s: marker in base64 text" % name, "CanArY" in token)
        check("%s: marker claim" % name, "CANARY" in claims.get("xcanary", ""))
        return claims


def check_token_response(name, r, v, emu, resource, oid, username, scope_has=(),
                         rt=True, idt=True, upn=None, tid=TENANT):
    if not check("%s: status 200" % name, r.status == 200, "%d %r" % (r.status, r.body[:300])):
        return {}
    b = r.json()
    check("%s: cache-control" % name, "no-store" in r.headers.get("Cache-Control", ""))
    check("%s: content-type" % name,
          r.headers.get("Content-Type") == "application/json; charset=utf-8")
    check("%s: content-length" % name, int(r.headers.get("Content-Length", -1)) == len(r.body))
    check("%s: token_type" % name, b.get("token_type") == "Bearer")
    check("%s: expires_in number" % name, isinstance(b.get("expires_in"), int))
    check("%s: ext_expires_in" % name, isinstance(b.get("ext_expires_in"), int))
    granted = b.get("scope", "").split(" ")
    for s in scope_has:
        check("%s: scope has %s" % (name, s), s in granted, b.get("scope"))
    check("%s: refresh_token %s" % (name, rt), ("refresh_token" in b) == rt)
    check("%s: id_token %s" % (name, idt), ("id_token" in b) == idt)
    if rt:
        check("%s: RT marker" % name, "CANARY" in b["refresh_token"])
        check("%s: RT opaque" % name, b["refresh_token"].count(".") <= 1)
    now = time.time()
    c = v.claims(name + " AT", b["access_token"])
    iss = "%s/%s/v2.0" % (emu.authority, tid)
    check("%s: aud" % name, c.get("aud") == resource, c.get("aud"))
    check("%s: iss" % name, c.get("iss") == iss, c.get("iss"))
    check("%s: tid/oid" % name, c.get("tid") == tid and c.get("oid") == oid)
    check("%s: preferred_username" % name, c.get("preferred_username") == username)
    check("%s: name" % name, isinstance(c.get("name"), str) and c["name"])
    check("%s: azp/ver" % name, c.get("azp") and c.get("ver") == "2.0")
    check("%s: scp" % name, isinstance(c.get("scp"), str) and c["scp"])
    check("%s: times" % name, abs(c.get("iat", 0) - now) < 60 and c.get("nbf") == c.get("iat")
          and c.get("exp") - c.get("iat") == b.get("expires_in"))
    check("%s: uti" % name, isinstance(c.get("uti"), str) and len(c["uti"]) >= 16)
    check("%s: upn" % name, c.get("upn") == upn, c.get("upn"))
    if idt:
        ic = v.claims(name + " id_token", b["id_token"])
        check("%s: id_token aud" % name, ic.get("aud") == c.get("azp"))
        check("%s: id_token claims" % name,
              ic.get("iss") == iss and ic.get("tid") == tid and ic.get("oid") == oid
              and ic.get("preferred_username") == username and ic.get("name")
              and isinstance(ic.get("iat"), int) and isinstance(ic.get("nbf"), int)
              and ic.get("exp") > now)
    return b


# ---------------------------------------------------------------- sections

def t_startup(emu):
    check("READY line", emu.ready_line == "READY %d\n" % emu.port)
    with open(os.path.join(emu.dir, "port")) as f:
        check("port file", f.read().strip() == str(emu.port))
    with open(os.path.join(emu.dir, "emulator.pid")) as f:
        check("pid file", f.read().strip() == str(emu.proc.pid))
    check("server.key 0600", os.stat(os.path.join(emu.dir, "server.key")).st_mode & 0o777 == 0o600)
    with open(emu.ca, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(emu.dir, "server.pem"), "rb") as f:
        srv = x509.load_pem_x509_certificate(f.read())
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    check("CA:TRUE keyCertSign", bc.ca and ku.key_cert_sign)
    san = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    check("server SAN", [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
          and san.get_values_for_type(x509.DNSName) == ["localhost", "emulator.credd.test"])
    eku = srv.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    check("server EKU", ExtendedKeyUsageOID.SERVER_AUTH in eku)
    ca.public_key().verify(srv.signature, srv.tbs_certificate_bytes,
                           ec.ECDSA(srv.signature_hash_algorithm))
    check("server cert signed by CA", srv.issuer == ca.subject)
    return ca


def t_tls(emu):
    # The system trust store does not know the test CA: verification must fail.
    system = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl.create_default_context()))
    try:
        system.open("https://127.0.0.1:%d/_control/counters" % emu.port, timeout=10)
        check("untrusted CA rejected", False, "request succeeded")
    except urllib.error.URLError as e:
        check("untrusted CA rejected", isinstance(e.reason, ssl.SSLCertVerificationError), e)
    for host in ("127.0.0.1", "localhost"):
        r = emu.call("GET", "/_control/counters", host=host)
        check("TLS via %s" % host, r.status == 200)
    # HTTP/1.1 keep-alive: two requests on one connection.
    conn = http.client.HTTPSConnection("127.0.0.1", emu.port, context=emu.ctx, timeout=10)
    statuses = []
    for _ in range(2):
        conn.request("GET", "/%s/discovery/v2.0/keys" % TENANT)
        resp = conn.getresponse()
        resp.read()
        statuses.append((resp.status, resp.version))
    sock = conn.sock
    conn.request("GET", "/_control/counters")
    conn.getresponse().read()
    check("keep-alive", statuses == [(200, 11), (200, 11)] and conn.sock is sock)
    conn.close()


def t_discovery(emu, ca):
    r = emu.call("GET", "/%s/v2.0/.well-known/openid-configuration" % TENANT)
    d = r.json() if r.status == 200 else {}
    base = "%s/%s" % (emu.authority, TENANT)
    check("discovery", r.status == 200 and d.get("issuer") == base + "/v2.0"
          and d.get("token_endpoint") == base + "/oauth2/v2.0/token"
          and d.get("device_authorization_endpoint") == base + "/oauth2/v2.0/devicecode"
          and d.get("jwks_uri") == base + "/discovery/v2.0/keys"
          and d.get("id_token_signing_alg_values_supported") == ["RS256"], d)
    r = emu.call("GET", "/%s/v2.0/.well-known/openid-configuration" % str(uuid.uuid4()))
    expect_error("unknown tenant", r, 400, "invalid_request", 90002)
    path = "/%s/v2.0/.well-known/openid-configuration" % TENANT
    r = emu.call("GET", path)
    check("discovery: max-age 86400", r.headers.get("Cache-Control") == "max-age=86400, private",
          r.headers.get("Cache-Control"))
    r = emu.call("GET", "/organizations/v2.0/.well-known/openid-configuration")
    check("discovery: {tenantid} for organizations",
          r.json().get("issuer") == emu.authority + "/{tenantid}/v2.0", r.json().get("issuer"))
    # The knobs credd's discovery tests turn (emu_discovery.py).
    emu.ok("discovery", {"mode": "503"})
    r = emu.call("GET", path)
    check("discovery: down", r.status == 503, r.status)
    emu.ok("discovery", {"mode": "foreign_token", "foreign": "https://127.0.0.1:9",
                                 "max_age": 5})
    r = emu.call("GET", path)
    check("discovery: foreign token endpoint",
          r.json().get("token_endpoint") == "https://127.0.0.1:9/%s/oauth2/v2.0/token" % TENANT
          and r.headers.get("Cache-Control") == "max-age=5, private", r.json())
    emu.ok("discovery", {"mode": "wrong_issuer", "max_age": None})
    r = emu.call("GET", path)
    check("discovery: wrong issuer, no max-age",
          r.json().get("issuer", "").startswith("https://sts.example.net/")
          and r.headers.get("Cache-Control") is None, r.json().get("issuer"))
    status, _ = emu.control("discovery", {"mode": "nonsense"})
    check("discovery: unknown mode refused", status == 400, status)
    emu.ok("clear", {})
    r = emu.call("GET", path)
    check("discovery: clear resets the knobs", r.status == 200
          and r.json().get("issuer") == "%s/%s/v2.0" % (emu.authority, TENANT))

    r = emu.call("GET", "/%s/discovery/v2.0/keys" % TENANT)
    jwks = r.json()
    k = jwks["keys"][0]
    check("jwks fields", k.get("kty") == "RSA" and k.get("use") == "sig" and k.get("e") == "AQAB"
          and k.get("kid") == k.get("x5t") and len(b64url_decode(k["n"])) == 256)
    der = base64.b64decode(k["x5c"][0])
    check("kid is x5t thumbprint",
          base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode() == k["kid"])
    cert = x509.load_der_x509_certificate(der)
    check("x5c matches n", cert.public_key().public_numbers().n
          == int.from_bytes(b64url_decode(k["n"]), "big"))
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                           ec.ECDSA(cert.signature_hash_algorithm))
    check("x5c signed by CA", True)

    r = emu.call("GET", "/nope/such/path")
    check("404 JSON", r.status == 404 and r.json().get("error") == "not_found")
    r = emu.call("GET", "/%s/oauth2/v2.0/token" % TENANT)
    expect_error("GET token", r, 400, "invalid_request", 900561)
    return Verifier(jwks)


def t_device_flow(emu, v):
    emu.ok("lifetimes", {"interval": 1, "device_code": 60})
    scope = "openid profile offline_access %s/.default" % STORAGE
    r = emu.devicecode(scope)
    check("devicecode 200", r.status == 200, r.body[:300])
    dc = r.json()
    check("user_code", re.fullmatch(r"[A-Z0-9]{8}", dc["user_code"]), dc["user_code"])
    check("device_code", "CANARY" in dc["device_code"] and len(dc["device_code"]) > 100)
    check("verification_uri", dc["verification_uri"] == "https://microsoft.com/devicelogin")
    check("expires_in/interval", dc["expires_in"] == 60 and dc["interval"] == 1)
    check("message", dc["message"] == "To sign in, use a web browser to open the page "
          "https://microsoft.com/devicelogin and enter the code %s to authenticate."
          % dc["user_code"])
    check("no verification_uri_complete", "verification_uri_complete" not in dc)

    corr = str(uuid.uuid4())
    r = emu.token(
        {"grant_type": DEVICE_GRANT, "device_code": dc["device_code"]},
        headers={"client-request-id": corr})
    expect_error("pending", r, 400, "authorization_pending", 70016, correlation=corr)
    check("pending: no-store", "no-store" in r.headers.get("Cache-Control", ""))

    _, flows = emu.control("flows")
    mine = [f for f in flows["flows"] if f["user_code"] == dc["user_code"]]
    check("flows lists it", len(mine) == 1 and mine[0]["scope"] == scope
          and mine[0]["status"] == "pending" and 0 < mine[0]["expires_in"] <= 60, flows)

    emu.ok("approve", {"user_code": dc["user_code"], "oid": OID_A, "preferred_username": USER_A})
    _, flows = emu.control("flows")
    check("approved flow not pending", all(f["user_code"] != dc["user_code"]
                                           for f in flows["flows"]))
    r = emu.poll(dc["device_code"], client_info="1")
    b = check_token_response("device flow", r, v, emu, STORAGE, OID_A, USER_A,
                             scope_has=("%s/.default" % STORAGE, "openid", "offline_access"))
    check("no refresh_in by default", "refresh_in" not in b)
    info = json.loads(b64url_decode(b.get("client_info", "")) or b"{}")
    check("client_info", info == {"uid": OID_A, "utid": TENANT}, info)
    r = emu.poll(dc["device_code"])
    expect_error("redeemed code", r, 400, "invalid_grant", 54005)

    # Scopes: no offline_access -> no RT; no openid -> no id_token; Graph for bare scopes.
    b2 = emu.login(OID_A, USER_A, scope="User.Read openid profile")
    check("graph device flow", "refresh_token" not in b2 and "id_token" in b2
          and v.claims("graph AT", b2["access_token"]).get("aud") == "https://graph.microsoft.com"
          and "User.Read" in b2.get("scope", "").split(" "))
    b3 = emu.login(OID_A, USER_A, scope="offline_access %s/.default" % DBX)
    check("GUID device flow", "refresh_token" in b3 and "id_token" not in b3
          and v.claims("GUID AT", b3["access_token"]).get("aud") == DBX)

    r = emu.devicecode("openid %s/.default https://vault.azure.net/.default" % STORAGE)
    expect_error("devicecode two resources", r, 400, "invalid_scope", 28000)
    r = emu.devicecode("openid")
    check("devicecode OIDC-only scope", r.status == 200)
    r = emu.devicecode("", client_id=CLIENT)
    expect_error("devicecode no scope", r, 400, "invalid_request", 900144)
    r = emu.devicecode("openid", client_id=str(uuid.uuid4()))
    expect_error("devicecode unknown client", r, 400, "unauthorized_client", 700016)
    r = emu.devicecode("openid", tenant="contoso.example")
    expect_error("devicecode unknown tenant", r, 400, "invalid_request", 90002)
    return b["refresh_token"]


def t_device_errors(emu):
    scope = "openid offline_access %s/.default" % STORAGE
    # slow_down: interval 3, two polls 0 s apart.
    emu.ok("lifetimes", {"interval": 3})
    dc = emu.devicecode(scope).json()
    emu.ok("lifetimes", {"interval": 1})
    expect_error("first poll", emu.poll(dc["device_code"]), 400, "authorization_pending", 70016)
    r = emu.poll(dc["device_code"])
    expect_error("slow_down", r, 400, "slow_down", 70016)
    r = emu.poll(dc["device_code"])
    check("slow_down again", r.status == 400 and r.json()["error"] == "slow_down")
    # decline
    emu.ok("decline", {"user_code": dc["user_code"]})
    expect_error("declined", emu.poll(dc["device_code"]), 400, "authorization_declined", 70000)
    status, reply = emu.control("approve", {"user_code": dc["user_code"], "oid": OID_A,
                                            "preferred_username": USER_A})
    check("approve declined flow -> 409", status == 409 and reply.get("ok") is False, reply)
    # expiry
    emu.ok("lifetimes", {"device_code": 1})
    dc = emu.devicecode(scope).json()
    emu.ok("lifetimes", {"device_code": 60})
    check("short expires_in", dc["expires_in"] == 1)
    time.sleep(1.2)
    expect_error("expired", emu.poll(dc["device_code"]), 400, "expired_token", 70019)
    status, reply = emu.control("approve", {"user_code": dc["user_code"], "oid": OID_A,
                                            "preferred_username": USER_A})
    check("approve expired flow -> 409", status == 409, reply)
    # unknown code, missing code, unsupported grant, missing grant
    expect_error("bad code", emu.poll("nonsense-CODE"), 400, "bad_verification_code", 70018)
    expect_error("no device_code", emu.token({"grant_type": DEVICE_GRANT}), 400,
                 "invalid_request", 900144)
    expect_error("unsupported grant", emu.token({"grant_type": "password"}), 400,
                 "unsupported_grant_type", 70003)
    expect_error("no grant", emu.token({}), 400, "invalid_request", 900144)
    expect_error("no client_id", emu.token({"client_id": None, "grant_type": DEVICE_GRANT,
                                            "device_code": "x"}), 400, "invalid_request", 900144)
    expect_error("public client with secret", emu.token({"client_secret": "x",
                                                         "grant_type": DEVICE_GRANT,
                                                         "device_code": "x"}),
                 401, "invalid_client", 700025)


def t_refresh(emu, v, rt):
    scope = "openid profile offline_access"
    r = emu.refresh(rt, "https://management.azure.com//.default offline_access")
    b = check_token_response("refresh ARM", r, v, emu, "https://management.azure.com/", OID_A,
                             USER_A, idt=False,
                             scope_has=("https://management.azure.com//.default",))
    rt2 = b.get("refresh_token")
    check("RT rotated", rt2 and rt2 != rt)
    r = emu.refresh(rt, "%s/.default %s" % (DBX, scope))
    check_token_response("refresh GUID with old RT", r, v, emu, DBX, OID_A, USER_A)
    r = emu.refresh(rt2, "%s/user_impersonation openid" % STORAGE)
    b = check_token_response("refresh without offline_access", r, v, emu, STORAGE, OID_A, USER_A,
                             rt=False, scope_has=("%s/user_impersonation" % STORAGE,))
    r = emu.refresh(rt2, "User.Read offline_access")
    check_token_response("refresh Graph", r, v, emu, "https://graph.microsoft.com", OID_A, USER_A,
                         idt=False)
    r = emu.token({"grant_type": "refresh_token", "refresh_token": rt2})
    check_token_response("refresh without scope", r, v, emu, STORAGE, OID_A, USER_A)

    expect_error("two resources", emu.refresh(rt2, "%s/.default https://vault.azure.net/.default"
                                              % STORAGE), 400, "invalid_scope", 28000)
    expect_error(".default mixed", emu.refresh(rt2, "%s/.default %s/user_impersonation"
                                               % (STORAGE, STORAGE)), 400, "invalid_scope", 70011)
    expect_error("unknown RT", emu.refresh("1.AQnotatoken", scope), 400, "invalid_grant", 9002313)
    expect_error("no RT", emu.token({"grant_type": "refresh_token"}), 400, "invalid_request",
                 900144)
    expect_error("wrong client", emu.refresh(rt2, scope, client_id=str(uuid.uuid4())), 400,
                 "unauthorized_client", 700016)

    # Lifetimes and refresh_in.
    reply = emu.ok("lifetimes", {"access_token": 120, "refresh_in": 30})
    check("lifetimes reply", reply.get("lifetimes", {}).get("refresh_in") == 30)
    b = emu.refresh(rt2, "%s/.default offline_access" % STORAGE).json()
    check("short lifetime", b.get("expires_in") == 120 and b.get("ext_expires_in") == 120
          and b.get("refresh_in") == 30, b.get("expires_in"))
    emu.ok("lifetimes", {"access_token": 3600, "refresh_in": None})
    b = emu.refresh(rt2, "%s/.default offline_access" % STORAGE).json()
    check("refresh_in cleared", "refresh_in" not in b and b.get("expires_in") == 3600)
    status, reply = emu.control("lifetimes", {"access_token": -1})
    check("lifetimes rejects bad value", status == 400 and reply.get("ok") is False)

    # Strict rotation through the control API.
    cur = b["refresh_token"]  # not used yet
    emu.ok("rotation", {"strict": True})
    new = emu.refresh(cur, "%s/.default offline_access" % STORAGE).json()["refresh_token"]
    expect_error("strict: reuse", emu.refresh(cur, "%s/.default" % STORAGE), 400, "invalid_grant",
                 70008)
    r = emu.refresh(new, "%s/.default offline_access" % STORAGE)
    check("strict: newest RT works", r.status == 200)
    emu.ok("rotation", {"strict": False})
    r = emu.refresh(cur, "%s/.default offline_access" % STORAGE)
    check("lenient again: old RT works", r.status == 200)
    return r.json()["refresh_token"]


def t_cae(emu, rt):
    """CAE (emu_cae.py): cp1 earns a long token with refresh_in; the resource
    challenges it after a critical event; a refresh with the challenge's
    claims satisfies the resource; ordinary tokens are not challenged."""
    cp1 = json.dumps({"access_token": {"xms_cc": {"values": ["cp1"]}}})
    scope = "%s/.default offline_access" % STORAGE
    b = emu.refresh(rt, scope, claims=cp1).json()
    check("cae: long lifetime and refresh_in", b.get("expires_in") == 86399
          and b.get("refresh_in") == 43200, b.get("expires_in"))
    cae_at, rt = b["access_token"], b["refresh_token"]
    at_claims = json.loads(b64url_decode(cae_at.split(".")[1]))
    check("cae: xms_cc in the token", at_claims.get("xms_cc") == ["cp1"])
    plain = emu.refresh(rt, scope).json()
    check("cae: ordinary without cp1", plain.get("expires_in") == 3600
          and "refresh_in" not in plain)
    rt = plain["refresh_token"]

    def get(tok):
        return emu.call("GET", "/_resource/storage", headers={"Authorization": "Bearer " + tok})

    check("resource: CAE token accepted", get(cae_at).status == 200)
    check("resource: no token 401", emu.call("GET", "/_resource/storage").status == 401)
    check("resource: unknown token 401", get("eyJ.e30.x").status == 401)
    time.sleep(1.1)  # the event's second is after the tokens' nbf
    at = emu.ok("critical_event", {"oid": OID_A})["at"]
    r = get(cae_at)
    www = r.headers.get("WWW-Authenticate", "")
    m = re.search(r'claims="([^"]+)"', www)
    check("resource: challenge after the event", r.status == 401
          and 'error="insufficient_claims"' in www and m is not None, www)
    challenge = json.loads(base64.b64decode(m.group(1))) if m else {}
    check("resource: challenge asks for nbf", challenge == {
        "access_token": {"nbf": {"essential": True, "value": str(at)}}}, challenge)
    check("resource: ordinary token not challenged", get(plain["access_token"]).status == 200)
    merged = dict(challenge)
    merged["access_token"] = dict(challenge.get("access_token", {}),
                                  xms_cc={"values": ["cp1"]})
    b = emu.refresh(rt, scope, claims=json.dumps(merged)).json()
    check("resource: the new token satisfies the challenge", get(b["access_token"]).status == 200)
    rt = b["refresh_token"]
    expect_error("cae: claims not JSON", emu.refresh(rt, scope, claims="{nope"), 400,
                 "invalid_request", 9002313)
    c = emu.control("cae_counters")[1]
    check("cae counters", c.get("challenges") == 1 and c.get("claims_requests") >= 2
          and c.get("cae_tokens") == 2, c)
    status, reply = emu.control("critical_event", {})
    check("critical_event wants oid", status == 400)
    status, reply = emu.control("cae_lifetimes", {"refresh_in": -1})
    check("cae_lifetimes rejects bad value", status == 400)
    check("cae_lifetimes", emu.ok("cae_lifetimes", {"access_token": 7200, "refresh_in": None})
          .get("refresh_in") is None)
    emu.ok("cae_lifetimes", {"access_token": 86399, "refresh_in": 43200})
    # A device-code poll honours claims too (a sign-in carrying a challenge).
    b = emu.login(OID_A, USER_A, claims=json.dumps(merged))
    check("cae: device flow with cp1 claims gives a CAE token",
          b.get("expires_in") == 86399 and get(b["access_token"]).status == 200)
    rt = b["refresh_token"]
    # With revoke_refresh the refresh token dies too (50173).
    emu.ok("critical_event", {"oid": OID_A, "revoke_refresh": True})
    expect_error("cae: revoked session", emu.refresh(rt, scope, claims=json.dumps(merged)), 400,
                 "invalid_grant", 50173)


def t_conditions(emu, rt_a):
    storage, vault, sql = STORAGE + "/.default", "https://vault.azure.net/.default", \
        "https://database.windows.net/.default"
    rt_b = emu.login(OID_B, USER_B)["refresh_token"]

    emu.ok("require_mfa", {"resource": STORAGE, "oid": OID_A})
    expect_error("mfa", emu.refresh(rt_a, storage), 400, "invalid_grant", 50076,
                 suberror="basic_action")
    check("mfa: other resource fine", emu.refresh(rt_a, vault).status == 200)
    check("mfa: other account fine", emu.refresh(rt_b, storage).status == 200)
    emu.login(OID_A, USER_A, scope="openid offline_access " + storage)
    check("mfa: cleared by device flow", emu.refresh(rt_a, storage).status == 200)

    emu.ok("withdraw_consent", {"resource": DBX})
    expect_error("consent A", emu.refresh(rt_a, DBX + "/.default"), 400, "invalid_grant", 65001,
                 suberror="consent_required")
    expect_error("consent B", emu.refresh(rt_b, DBX + "/.default"), 400, "invalid_grant", 65001,
                 suberror="consent_required")
    emu.login(OID_A, USER_A, scope="offline_access %s/.default" % DBX)
    check("consent: A cleared", emu.refresh(rt_a, DBX + "/.default").status == 200)
    check("consent: B still blocked", emu.refresh(rt_b, DBX + "/.default").status == 400)

    emu.ok("block", {"resource": "https://vault.azure.net", "code": 53003})
    emu.ok("block", {"resource": "https://database.windows.net", "code": 50079, "oid": OID_A})
    expect_error("block 53003", emu.refresh(rt_a, vault), 400, "invalid_grant", 53003)
    expect_error("block 50079", emu.refresh(rt_a, sql), 400, "interaction_required", 50079)
    check("block 50079 only for A", emu.refresh(rt_b, sql).status == 200)
    dc = emu.devicecode("openid offline_access " + vault).json()
    emu.ok("approve", {"user_code": dc["user_code"], "oid": OID_A, "preferred_username": USER_A})
    expect_error("block applies to sign-in", emu.poll(dc["device_code"]), 400, "invalid_grant",
                 53003)
    status, reply = emu.control("block", {"resource": "x", "code": 1})
    check("block rejects bad code", status == 400)

    emu.ok("clear")
    check("clear: vault", emu.refresh(rt_a, vault).status == 200)
    check("clear: consent B", emu.refresh(rt_b, DBX + "/.default").status == 200)
    check("clear: sql", emu.refresh(rt_a, sql).status == 200)

    emu.ok("revoke", {"oid": OID_A})
    b = expect_error("revoked", emu.refresh(rt_a, storage), 400, "invalid_grant", 50173)
    check("revoked: no suberror", b is not None and "suberror" not in b)
    check("revoke: other account fine", emu.refresh(rt_b, storage).status == 200)
    fresh = emu.login(OID_A, USER_A)["refresh_token"]
    check("revoke: new sign-in works", emu.refresh(fresh, storage).status == 200)
    check("revoke: old RT still dead", emu.refresh(rt_a, storage).status == 400)
    emu.ok("clear")
    check("revocation survives clear", emu.refresh(rt_a, storage).status == 400)

    emu.ok("expire_refresh", {"oid": OID_B})
    expect_error("expired RT", emu.refresh(rt_b, storage), 400, "invalid_grant", 700082)
    return fresh


def t_faults(emu, rt):
    scope = "%s/.default offline_access" % STORAGE

    def refresh():
        r = emu.refresh(rt, scope)
        return r

    emu.ok("fault", {"kind": "429", "retry_after": 3})
    r = refresh()
    check("429", r.status == 429 and r.headers.get("Retry-After") == "3"
          and r.headers.get("Content-Type", "").startswith("text/plain"))
    try:
        json.loads(r.body)
        check("429 body not JSON", False)
    except ValueError:
        check("429 body not JSON", True)
    check("429 consumed", refresh().status == 200)

    emu.ok("fault", {"kind": "503"})
    r = refresh()
    expect_error("503", r, 503, "temporarily_unavailable", 90033)
    check("503 Retry-After", r.headers.get("Retry-After") == "2")

    emu.ok("fault", {"kind": "500"})
    check("500", refresh().status == 500)

    emu.ok("fault", {"kind": "slow", "delay": 1})
    t0 = time.time()
    r = refresh()
    check("slow", r.status == 200 and time.time() - t0 >= 1.0 and "access_token" in r.json())

    emu.ok("fault", {"kind": "malformed"})
    r = refresh()
    try:
        json.loads(r.body)
        check("malformed", False)
    except ValueError:
        check("malformed", r.status == 200)

    emu.ok("fault", {"kind": "oversized"})
    r = refresh()
    check("oversized", r.status == 200 and len(r.body) == 4 * 1024 * 1024
          and "access_token" not in r.json())

    emu.ok("fault", {"kind": "reset"})
    try:
        refresh()
        check("reset", False, "got a reply")
    except (OSError, http.client.HTTPException) as e:  # URLError is an OSError
        check("reset", True, e)
    check("after reset", refresh().status == 200)

    emu.ok("fault", {"kind": "invalid_client"})
    expect_error("fault invalid_client", refresh(), 401, "invalid_client", 7000215)
    emu.ok("fault", {"kind": "unauthorized"})
    expect_error("fault unauthorized", refresh(), 400, "unauthorized_client", 700016)

    # Filters, counts, order.
    emu.ok("fault", {"kind": "500", "endpoint": "devicecode"})
    check("endpoint filter: token unaffected", refresh().status == 200)
    check("endpoint filter: devicecode hit", emu.devicecode("openid").status == 500)
    dc = emu.devicecode("openid offline_access " + STORAGE + "/.default").json()
    emu.ok("fault", {"kind": "500", "grant": "refresh_token"})
    check("grant filter: poll unaffected", emu.poll(dc["device_code"]).status == 400)
    check("grant filter: refresh hit", refresh().status == 500)
    emu.ok("fault", {"kind": "503", "count": 2})
    check("count 2", [refresh().status for _ in range(3)] == [503, 503, 200])
    emu.ok("fault", {"kind": "429"})
    emu.ok("fault", {"kind": "503"})
    check("faults in order", [refresh().status for _ in range(3)] == [429, 503, 200])
    emu.ok("fault", {"kind": "500"})
    r = emu.call("GET", "/%s/v2.0/.well-known/openid-configuration" % TENANT)
    check("faults skip discovery", r.status == 200)
    check("fault still queued", refresh().status == 500)
    emu.ok("fault", {"kind": "500", "count": -1})
    check("unlimited fault", [refresh().status for _ in range(3)] == [500, 500, 500])
    emu.ok("clear")
    check("clear drops faults", refresh().status == 200)
    status, reply = emu.control("fault", {"kind": "boom"})
    check("fault rejects bad kind", status == 400 and reply.get("ok") is False)


def t_counters(emu, rt):
    emu.ok("reset_counters")
    dc = emu.devicecode("openid offline_access %s/.default" % STORAGE).json()
    emu.poll(dc["device_code"])
    emu.ok("approve", {"user_code": dc["user_code"], "oid": OID_A, "preferred_username": USER_A})
    emu.poll(dc["device_code"])
    emu.refresh(rt, "%s/.default" % DBX)
    emu.refresh(rt, "https://vault.azure.net/.default")
    emu.refresh(rt, "https://vault.azure.net/.default")
    _, c = emu.control("counters")
    check("counters", c.get("devicecode") == 1 and c.get("device_code") == 2
          and c.get("refresh_token") == 3 and c.get("token") == 5, c)
    check("by_resource", c.get("by_resource") == {STORAGE: 2, DBX: 1,
                                                  "https://vault.azure.net": 2},
          c.get("by_resource"))


def t_concurrency(emu, rt):
    emu.ok("reset_counters")
    results, lock = [], threading.Lock()

    def worker():
        for _ in range(3):
            try:
                r = emu.refresh(rt, "%s/.default offline_access" % STORAGE)
                status = r.status
            except Exception as e:  # noqa: BLE001 - reported below
                status = repr(e)
            with lock:
                results.append(status)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("concurrent refreshes", results == [200] * 48, results)
    _, c = emu.control("counters")
    check("concurrent counters", c.get("refresh_token") == 48, c)


def t_control_errors(emu):
    status, reply = emu.control("approve", {"user_code": "ZZZZZZZZ", "oid": OID_A,
                                            "preferred_username": USER_A})
    check("approve unknown user_code", status == 404 and reply.get("ok") is False)
    status, reply = emu.control("approve", {"user_code": "ZZZZZZZZ"})
    check("approve missing fields", status in (400, 404) and reply.get("ok") is False)
    status, reply = emu.control("nope", {})
    check("unknown control call", status == 404 and reply.get("ok") is False)
    r = emu.call("POST", "/_control/clear", form={"x": "1"})
    check("control needs JSON", r.status == 400 and r.json().get("ok") is False)


def t_issued(emu):
    _, reply = emu.control("issued")
    issued = reply.get("secrets", [])
    check("issued covers all seen secrets", emu.seen <= set(issued),
          "%d seen not listed" % len(emu.seen - set(issued)))
    check("issued has nothing unseen", set(issued) <= emu.seen,
          "%d listed not seen" % len(set(issued) - emu.seen))
    check("every secret carries the marker", all("canary" in s.lower() for s in issued))
    check("opaque secrets carry CANARY",
          all("CANARY" in s for s in issued if s.count(".") != 2))
    return issued


def t_confidential():
    """An app with a client secret (--client-secret-file). Entra's rule: the
    device code flow is a public-client flow, so it must carry no secret
    (AADSTS700025); the web code flow, its refreshes and client_credentials
    must (selftest_signin.t_confidential_signin)."""
    tmp = tempfile.mkdtemp(prefix="entra-secret-")
    secret = "s3cr+t/&=% x~"
    path = os.path.join(tmp, "secret")
    with open(path, "w") as f:
        f.write(secret + "\n")
    tenant, client = str(uuid.uuid4()), str(uuid.uuid4())
    emu = Emulator("--client-secret-file", path, "--upn", "--strict-rotation",
                   "--tenant", tenant, "--client-id", client)
    emu.tenant, emu.client = tenant, client
    try:
        v = Verifier(emu.call("GET", "/%s/discovery/v2.0/keys" % tenant).json())
        emu.ok("lifetimes", {"interval": 1})
        r = emu.devicecode("openid offline_access %s/.default" % STORAGE, client_id=client,
                           tenant=tenant)
        check("devicecode without secret", r.status == 200)
        dc = r.json()
        poll = {"grant_type": DEVICE_GRANT, "device_code": dc["device_code"], "client_id": client}
        expect_error("device poll + secret", emu.token(dict(poll, client_secret=secret),
                                                       tenant=tenant),
                     401, "invalid_client", 700025)
        expect_error("device poll + wrong secret", emu.token(dict(poll, client_secret="nope"),
                                                             tenant=tenant),
                     401, "invalid_client", 700025)
        expect_error("pending without secret", emu.token(poll, tenant=tenant),
                     400, "authorization_pending", 70016)
        expect_error("default client unknown", emu.token(dict(poll, client_id=CLIENT),
                                                         tenant=tenant),
                     400, "unauthorized_client", 700016)
        emu.ok("approve", {"user_code": dc["user_code"], "oid": OID_A,
                           "preferred_username": USER_A, "upn": "a.upn@contoso.example"})
        basic = base64.b64encode(("%s:%s" % (urllib.parse.quote_plus(client),
                                             urllib.parse.quote_plus(secret))).encode()).decode()
        del poll["client_id"]
        r = emu.token(dict(poll, client_id=None), tenant=tenant,
                      headers={"Authorization": "Basic " + basic})
        expect_error("device poll + Basic secret", r, 401, "invalid_client", 700025)
        r = emu.token(dict(poll, client_id=client), tenant=tenant)
        b = check_token_response("device flow, secret app", r, v, emu, STORAGE, OID_A, USER_A,
                                 upn="a.upn@contoso.example", tid=tenant)
        check("azpacr 0", v.claims("conf AT", b["access_token"]).get("azpacr") == "0")
        rt = b["refresh_token"]
        form = {"grant_type": "refresh_token", "refresh_token": rt, "client_id": client,
                "scope": "%s/.default offline_access" % STORAGE}
        expect_error("public refresh + secret", emu.token(dict(form, client_secret=secret),
                                                          tenant=tenant),
                     401, "invalid_client", 700025)
        r = emu.token(form, tenant=tenant)
        check("public refresh", r.status == 200)
        expect_error("--strict-rotation", emu.token(form, tenant=tenant), 400, "invalid_grant",
                     70008)
        rt = selftest_signin.t_confidential_signin(sys.modules[__name__], emu, v, secret)
        if rt:
            form = {"grant_type": "refresh_token", "refresh_token": rt, "client_id": client,
                    "scope": "%s/.default offline_access" % STORAGE}
            expect_error("confidential refresh without secret", emu.token(form, tenant=tenant),
                         401, "invalid_client", 7000218)
            r = emu.token(form, tenant=tenant, headers={"Authorization": "Basic " + basic})
            check("confidential refresh, Basic secret", r.status == 200, r.body[:200])
        t_issued(emu)
    finally:
        code, out, err = emu.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    check_logs("confidential", code, out, err, emu)


def check_logs(name, code, out, err, emu):
    check("%s: clean exit on SIGTERM" % name, code == 0, code)
    check("%s: stdout is the READY line" % name, out == "READY %d\n" % emu.port, repr(out[:200]))
    text = out + err
    check("%s: no marker in output" % name, "canary" not in text.lower(), repr(err[:300]))
    check("%s: no secret in output" % name, not any(s[:40] in text for s in emu.seen))


OID_A, USER_A = "00000000-0000-0000-0000-00000000000a", "alice@contoso.example"
OID_B, USER_B = "00000000-0000-0000-0000-00000000000b", "bob@contoso.example"


def t_graph(emu, rt):
    """Offboarding (emu_graph.py): a second app with its own secret and
    roles gets an app token for Graph; revokeSignInSessions wants the
    User.RevokeSessions.All role (403 Authorization_RequestDenied without
    it), a known user (404), and kills the user's refresh tokens (50173)."""
    off = "99999999-8888-7777-6666-555555555555"
    emu.ok("register_app", {"client_id": off, "secret": "off-secret", "roles": []})

    def app_token(secret="off-secret"):
        return emu.token({"client_id": off, "grant_type": "client_credentials",
                          "client_secret": secret, "scope": emu.authority + "/.default"})

    def revoke(tok, who=USER_A):
        return emu.call("POST", "/v1.0/users/%s/revokeSignInSessions" % who, js={},
                        headers={"Authorization": "Bearer " + tok})

    expect_error("graph: second app, wrong secret", app_token("nope"), 401,
                 "invalid_client", 7000215)
    expect_error("graph: second app, refresh grant refused",
                 emu.token({"client_id": off, "grant_type": "refresh_token",
                            "refresh_token": rt, "client_secret": "off-secret"}),
                 400, "unauthorized_client", 700016)
    r = app_token()
    check("graph: app token", r.status == 200, r.status)
    tok = r.json()["access_token"]
    r = revoke(tok)
    check("graph: 403 without the permission", r.status == 403
          and r.json()["error"]["code"] == "Authorization_RequestDenied", r.status)
    check("graph: no token 401", emu.call("POST", "/v1.0/users/%s/revokeSignInSessions"
                                          % USER_A, js={}).status == 401)
    emu.ok("app_permissions", {"client_id": off, "roles": ["User.RevokeSessions.All"]})
    tok = app_token().json()["access_token"]
    r = revoke(tok, "nobody@contoso.example")
    check("graph: 404 unknown user", r.status == 404
          and r.json()["error"]["code"] == "Request_ResourceNotFound", r.status)
    r = revoke(tok)
    check("graph: revoked", r.status == 200 and r.json().get("value") is True, r.status)
    expect_error("graph: refresh after the revoke", emu.refresh(rt, "%s/.default" % STORAGE),
                 400, "invalid_grant", 50173)
    revs = emu.control("graph_revokes")[1]["revokes"]
    check("graph: revokes listed", [x["status"] for x in revs] == [403, 404, 200], revs)
    status, _ = emu.control("register_app", {"client_id": CLIENT, "secret": "x"})
    check("graph: register_app refuses the main app", status == 400)


def main():
    t0 = time.time()
    emu = Emulator()
    try:
        ca = t_startup(emu)
        t_tls(emu)
        v = t_discovery(emu, ca)
        rt = t_device_flow(emu, v)
        t_device_errors(emu)
        rt = t_refresh(emu, v, rt)
        rt = t_conditions(emu, rt)
        t_faults(emu, rt)
        t_counters(emu, rt)
        t_concurrency(emu, rt)
        t_control_errors(emu)
        selftest_signin.run(sys.modules[__name__], emu, v)
        t_issued(emu)
        t_cae(emu, emu.login(OID_A, USER_A)["refresh_token"])
        t_graph(emu, emu.login(OID_A, USER_A)["refresh_token"])
    except Exception:
        traceback.print_exc()
        check("no exception", False)
    finally:
        code, out, err = emu.stop()
    check_logs("main", code, out, err, emu)
    try:
        t_confidential()
    except Exception:
        traceback.print_exc()
        check("no exception (confidential)", False)
    print("selftest took %.1f s" % (time.time() - t0))
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 0 if FAILED == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
