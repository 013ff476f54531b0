# selftest_signin.py - the emulator self-test's sections for enterprise
# sign-in (issue 13): the authorize endpoint (PKCE S256, redirect URIs,
# state, outcomes), the authorization_code grant (single use, verifier,
# redirect_uri), the device code flow blocked by Conditional Access,
# client_credentials, and client authentication by secret, certificate
# (RS256/PS256 assertions) and federated assertion (inline JWKS and a
# fetched jwks_uri), with Entra's public/confidential rule.
#
# selftest.py calls run(t, emu, v) and t_confidential_signin(t); t is the
# selftest module itself (check, expect_error, Emulator, ...), so the
# counters stay in one place.

import base64
import datetime
import hashlib
import http.client
import http.server
import json
import os
import threading
import time
import urllib.parse
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FIC_AUD = "api://AzureADTokenExchange"
K8S_ISSUER = "https://oidc.k8s.example/cluster-1"
K8S_SUB = "system:serviceaccount:ns1:app"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce():
    verifier = b64url(os.urandom(48))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def make_cert(key, cn="credd selftest client"):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))


def sign_jwt(key, header, claims, alg="RS256"):
    header = dict(header, alg=alg, typ="JWT")
    data = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode()))
    if alg == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        pad = padding.PKCS1v15()
    return data + "." + b64url(key.sign(data.encode(), pad, hashes.SHA256()))


def thumbs(cert):
    der = cert.public_bytes(serialization.Encoding.DER)
    return b64url(hashlib.sha256(der).digest()), b64url(hashlib.sha1(der).digest())


def cert_assertion(key, cert, client, aud, alg="PS256", exp_in=300, use_sha1=False, **over):
    s256, s1 = thumbs(cert)
    header = {"x5t": s1} if use_sha1 else {"x5t#S256": s256, "x5t": s1}
    now = int(time.time())
    claims = {"aud": aud, "iss": client, "sub": client, "jti": str(uuid.uuid4()),
              "iat": now, "nbf": now, "exp": now + exp_in}
    claims.update(over)
    return sign_jwt(key, header, claims, alg)


def _with_alg(jwt, alg):
    """The same token with its header's alg replaced (signature kept)."""
    h, rest = jwt.split(".", 1)
    header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    header["alg"] = alg
    return b64url(json.dumps(header).encode()) + "." + rest


def jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64url(pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")),
            "e": b64url(pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big"))}


def fed_token(key, kid="k1", **over):
    now = int(time.time())
    claims = {"iss": K8S_ISSUER, "sub": K8S_SUB, "aud": [FIC_AUD], "iat": now, "nbf": now,
              "exp": now + 3600}
    claims.update(over)
    return sign_jwt(key, {"kid": kid}, claims)


def authorize(emu, params, tenant=None):
    """GET authorize without following redirects: (status, location query dict, body)."""
    tenant = tenant or emu.tenant
    conn = http.client.HTTPSConnection("127.0.0.1", emu.port, context=emu.ctx, timeout=30)
    try:
        conn.request("GET", "/%s/oauth2/v2.0/authorize?%s"
                     % (tenant, urllib.parse.urlencode(params)))
        r = conn.getresponse()
        body = r.read()
        loc = r.getheader("Location") or ""
    finally:
        conn.close()
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
    return r.status, loc, q, body


def auth_params(emu, redirect, challenge, state="st-" + "x" * 40, **extra):
    p = {"client_id": emu.client, "response_type": "code", "redirect_uri": redirect,
         "scope": "openid profile offline_access https://storage.azure.com/.default",
         "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}
    p.update(extra)
    return {k: v for k, v in p.items() if v is not None}


def redeem(emu, code, verifier, redirect, **extra):
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": redirect, "client_id": emu.client}
    form.update(extra)
    return emu.token(form, tenant=emu.tenant)


def sign_in(t, emu, redirect, oid, user, outcome="approve", **extra):
    """One authorize round trip for a queued sign-in: (code, verifier, q)."""
    verifier, challenge = pkce()
    emu.ok("signin_next", {"oid": oid, "preferred_username": user, "outcome": outcome})
    status, loc, q, _ = authorize(emu, auth_params(emu, redirect, challenge, **extra))
    t.check("authorize %s: 302" % outcome, status == 302, (status, loc[:200]))
    t.check("authorize %s: to the redirect URI" % outcome, loc.startswith(redirect), loc[:200])
    if "code" in q:
        emu.seen.add(q["code"])
    return q.get("code"), verifier, q


def check_redirect_error(t, name, q, error, code, state):
    t.check("%s: error" % name, q.get("error") == error, q)
    desc = q.get("error_description", "")
    t.check("%s: description" % name, desc.startswith("AADSTS%d: " % code)
            and "\r\nTrace ID: " in desc, desc[:200])
    t.check("%s: error_uri" % name,
            q.get("error_uri") == "https://login.microsoftonline.com/error?code=%d" % code)
    t.check("%s: state echoed" % name, q.get("state") == state)
    t.check("%s: no code" % name, "code" not in q)


# ---------------------------------------------------------------- public code flow

def t_authorize_public(t, emu, v):
    native = "%s/common/oauth2/nativeclient" % emu.authority
    state = "s-" + b64url(os.urandom(24))
    code, verifier, q = sign_in(t, emu, native, t.OID_A, t.USER_A, state=state,
                                login_hint=t.USER_A, domain_hint="contoso.example")
    t.check("state echoed", q.get("state") == state)
    t.check("code has the marker", code and "CANARY" in code)
    _, reply = emu.control("authorizations")
    last = reply["authorizations"][-1]
    t.check("authorizations log", last["login_hint"] == t.USER_A
            and last["domain_hint"] == "contoso.example" and last["state"] == state
            and last["code_challenge_method"] == "S256" and last["outcome"] == "approve", last)

    t.expect_error("public code + secret", redeem(emu, code, verifier, native,
                                                  client_secret="x"),
                   401, "invalid_client", 700025)
    t.expect_error("wrong verifier", redeem(emu, code, pkce()[0], native), 400, "invalid_grant",
                   501481)
    t.expect_error("no verifier", redeem(emu, code, None, native), 400, "invalid_request",
                   900144)
    t.expect_error("redirect_uri differs", redeem(emu, code, verifier, "http://localhost"),
                   400, "invalid_grant", 70000)
    r = redeem(emu, code, verifier, native, client_info="1")
    b = t.check_token_response("auth code", r, v, emu, t.STORAGE, t.OID_A, t.USER_A,
                               scope_has=("openid", "offline_access"))
    t.check("auth code azpacr 0", v.claims("code AT", b["access_token"]).get("azpacr") == "0")
    t.expect_error("code replay", redeem(emu, code, verifier, native), 400, "invalid_grant",
                   54005)
    t.expect_error("unknown code", redeem(emu, "nope", verifier, native), 400, "invalid_grant",
                   70000)
    rt = b["refresh_token"]
    t.expect_error("public refresh + secret", emu.refresh(rt, "%s/.default" % t.STORAGE,
                                                          client_secret="x"),
                   401, "invalid_client", 700025)
    r = emu.refresh(rt, "%s/.default offline_access" % t.STORAGE)
    t.check("public code refresh", r.status == 200, r.body[:200])

    # http://localhost on any port and path-free; a code expires.
    emu.ok("lifetimes", {"auth_code": 1})
    code, verifier, _ = sign_in(t, emu, "http://localhost:53117", t.OID_B, t.USER_B)
    emu.ok("lifetimes", {"auth_code": 600})
    time.sleep(1.2)
    t.expect_error("expired code", redeem(emu, code, verifier, "http://localhost:53117"),
                   400, "invalid_grant", 70008)
    code, verifier, _ = sign_in(t, emu, "http://127.0.0.1:40001", t.OID_B, t.USER_B)
    t.check("loopback 127.0.0.1", redeem(emu, code, verifier,
                                         "http://127.0.0.1:40001").status == 200)


def t_authorize_errors(t, emu):
    native = "%s/common/oauth2/nativeclient" % emu.authority
    verifier, challenge = pkce()
    # Not redirected: unknown client, unregistered redirect URI, bad tenant.
    status, loc, _, body = authorize(emu, dict(auth_params(emu, native, challenge),
                                               client_id=str(uuid.uuid4())))
    t.check("unknown client: 400, no redirect", status == 400 and not loc
            and json.loads(body)["error_codes"] == [700016])
    status, loc, _, body = authorize(emu, auth_params(emu, "https://evil.example/cb", challenge))
    t.check("unregistered redirect: 400, no redirect", status == 400 and not loc
            and json.loads(body)["error_codes"] == [50011], body[:200])
    status, loc, _, body = authorize(emu, auth_params(emu, "http://example.com", challenge))
    t.check("non-loopback http redirect refused", status == 400 and not loc)
    status, _, _, body = authorize(emu, auth_params(emu, native, challenge), tenant="nope.example")
    t.check("unknown tenant", status == 400 and json.loads(body)["error_codes"] == [90002])
    # Redirected with error and state.
    st = "state-err"
    for name, over, error, code in (
            ("plain PKCE", {"code_challenge_method": "plain"}, "invalid_request", 900144),
            ("no PKCE method", {"code_challenge_method": None}, "invalid_request", 900144),
            ("no challenge", {"code_challenge": None}, "invalid_request", 900144),
            ("short challenge", {"code_challenge": "abc"}, "invalid_request", 900144),
            ("response_type token", {"response_type": "token"}, "unsupported_response_type",
             700054),
            ("two resources", {"scope": "https://storage.azure.com/.default "
                                         "https://vault.azure.net/.default"},
             "invalid_scope", 28000)):
        status, loc, q, _ = authorize(emu, auth_params(emu, native, challenge, state=st, **over))
        t.check("%s: 302" % name, status == 302 and loc.startswith(native), (status, loc[:100]))
        check_redirect_error(t, name, q, error, code, st)
    # Nobody queued: the sign-in page waits (no redirect, no code).
    status, loc, q, body = authorize(emu, auth_params(emu, native, challenge))
    t.check("no sign-in queued: 200 page", status == 200 and not loc and b"Sign in" in body)
    # Outcomes.
    for outcome, error, code in (("decline", "access_denied", 65004),
                                 ("consent_required", "consent_required", 65001),
                                 ("mfa_denied", "access_denied", 500121),
                                 ("blocked", "access_denied", 53003)):
        c, _, q = sign_in(t, emu, native, t.OID_A, t.USER_A, outcome=outcome, state=st)
        check_redirect_error(t, outcome, q, error, code, st)
    # A Conditional Access block on the resource stops the sign-in itself.
    emu.ok("block", {"resource": t.STORAGE, "oid": t.OID_B})
    _, _, q = sign_in(t, emu, native, t.OID_B, t.USER_B, state=st)
    check_redirect_error(t, "CA block at authorize", q, "access_denied", 53003, st)
    emu.ok("clear")
    status, reply = emu.control("signin_next", {"oid": t.OID_A, "preferred_username": t.USER_A,
                                                "outcome": "maybe"})
    t.check("signin_next bad outcome", status == 400 and reply["ok"] is False)
    status, reply = emu.control("register_redirect", {"uri": "http://example.com/cb"})
    t.check("register_redirect non-loopback http", status == 400)
    status, reply = emu.control("block_device_flow", {"at": "start", "oid": t.OID_A})
    t.check("block_device_flow start with oid", status == 400)


def t_device_block(t, emu):
    scope = "openid offline_access %s/.default" % t.STORAGE
    emu.ok("lifetimes", {"interval": 1})
    emu.ok("block_device_flow", {"oid": t.OID_A})
    dc = emu.devicecode(scope).json()
    emu.ok("approve", {"user_code": dc["user_code"], "oid": t.OID_A,
                       "preferred_username": t.USER_A})
    t.expect_error("device flow blocked by CA", emu.poll(dc["device_code"]), 400,
                   "invalid_grant", 53003)
    b = emu.login(t.OID_B, t.USER_B, scope=scope)
    t.check("other user's device flow", "access_token" in b)
    emu.ok("block_device_flow", {"at": "start"})
    t.expect_error("device flow refused at start", emu.devicecode(scope), 400, "invalid_grant",
                   53003)
    emu.ok("clear")
    t.check("clear lifts the block", emu.devicecode(scope).status == 200)


# ---------------------------------------------------------------- app credentials

def t_certificate(t, emu, v):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = make_cert(key)
    reply = emu.ok("register_certificate", {"pem": cert.public_bytes(
        serialization.Encoding.PEM).decode()})
    t.check("register_certificate thumbprints", reply.get("x5t#S256") == thumbs(cert)[0]
            and reply.get("x5t") == thumbs(cert)[1], reply)
    aud = "%s/%s/oauth2/v2.0/token" % (emu.authority, emu.tenant)
    cc = {"grant_type": "client_credentials", "scope": "%s/.default" % t.STORAGE,
          "client_assertion_type": JWT_BEARER}

    def cc_with(assertion, **extra):
        return emu.token(dict(cc, client_assertion=assertion, **extra), tenant=emu.tenant)

    emu.ok("app_roles", {"resource": t.STORAGE, "roles": ["Storage.Read"]})
    a = cert_assertion(key, cert, emu.client, aud, "PS256")
    r = cc_with(a)
    if t.check("client_credentials PS256: 200", r.status == 200, r.body[:300]):
        b = r.json()
        c = v.claims("app token", b["access_token"])
        t.check("app token shape", set(b) == {"token_type", "expires_in", "ext_expires_in",
                                              "access_token"}, sorted(b))
        t.check("app token claims", c.get("aud") == t.STORAGE and c.get("azpacr") == "2"
                and c.get("idtyp") == "app" and c.get("roles") == ["Storage.Read"]
                and c.get("azp") == emu.client and c.get("oid") == c.get("sub"), c)
    t.check("replayed jti accepted (as Entra)", cc_with(a).status == 200)
    t.check("RS256 with x5t only", cc_with(cert_assertion(key, cert, emu.client, aud, "RS256",
                                                          use_sha1=True)).status == 200)
    for name, assertion in (
            ("wrong aud", cert_assertion(key, cert, emu.client, "https://elsewhere/token")),
            ("expired", cert_assertion(key, cert, emu.client, aud, exp_in=-5)),
            ("no exp", cert_assertion(key, cert, emu.client, aud, exp=None)),
            ("future nbf", cert_assertion(key, cert, emu.client, aud, nbf=int(time.time())
                                          + 3600)),
            ("sub not client", cert_assertion(key, cert, emu.client, aud, sub="someone")),
            ("no jti", cert_assertion(key, cert, emu.client, aud, jti=None)),
            ("other key, same thumbprint", cert_assertion(other, cert, emu.client, aud)),
            ("unregistered cert", cert_assertion(other, make_cert(other), emu.client, aud)),
            ("alg none", cert_assertion(key, cert, emu.client, aud).rsplit(".", 1)[0] + "."),
            ("alg HS256", _with_alg(cert_assertion(key, cert, emu.client, aud), "HS256")),
            ("not a JWT", "abc.def")):
        t.expect_error("assertion " + name, cc_with(assertion), 401, "invalid_client", 700027)
    t.expect_error("client_credentials without credential",
                   emu.token({"grant_type": "client_credentials",
                              "scope": "%s/.default" % t.STORAGE}, tenant=emu.tenant),
                   401, "invalid_client", 7000218)
    t.expect_error("assertion of another type",
                   emu.token(dict(cc, client_assertion=a, client_assertion_type="x"),
                             tenant=emu.tenant), 400, "invalid_request", 900144)
    t.expect_error("assertion and secret", cc_with(a, client_secret="x"), 401,
                   "invalid_client", 700027)
    t.expect_error("client_credentials without .default",
                   emu.token(dict(cc, client_assertion=a, scope="%s/user_impersonation"
                                  % t.STORAGE), tenant=emu.tenant),
                   400, "invalid_scope", 1002012)
    # A public flow with an assertion: 700025.
    dc = emu.devicecode("openid %s/.default" % t.STORAGE).json()
    t.expect_error("device poll + assertion",
                   emu.poll(dc["device_code"], client_assertion=a,
                            client_assertion_type=JWT_BEARER), 401, "invalid_client", 700025)
    t.expect_error("devicecode + assertion",
                   emu.call("POST", "/%s/oauth2/v2.0/devicecode" % emu.tenant,
                            form={"client_id": emu.client, "scope": "openid",
                                  "client_assertion": a,
                                  "client_assertion_type": JWT_BEARER}),
                   401, "invalid_client", 700025)
    # The confidential (web) code flow with the certificate, and its refresh.
    web = "https://app.example/entra/callback"
    emu.ok("register_redirect", {"uri": web, "kind": "web"})
    code, verifier, _ = sign_in(t, emu, web, t.OID_A, t.USER_A)
    t.expect_error("web code without credential", redeem(emu, code, verifier, web), 401,
                   "invalid_client", 7000218)
    r = redeem(emu, code, verifier, web, client_assertion_type=JWT_BEARER,
               client_assertion=cert_assertion(key, cert, emu.client, aud))
    b = t.check_token_response("web code + cert", r, v, emu, t.STORAGE, t.OID_A, t.USER_A,
                               tid=emu.tenant)
    if b:
        t.check("web code azpacr 2", v.claims("web AT", b["access_token"]).get("azpacr") == "2")
        rt = b["refresh_token"]
        t.expect_error("confidential refresh without credential",
                       emu.refresh(rt, "%s/.default offline_access" % t.STORAGE), 401,
                       "invalid_client", 7000218)
        r = emu.refresh(rt, "%s/.default offline_access" % t.STORAGE,
                        client_assertion_type=JWT_BEARER,
                        client_assertion=cert_assertion(key, cert, emu.client, aud, "RS256"))
        t.check("confidential refresh with assertion", r.status == 200, r.body[:200])
    emu.ok("clear_credentials")
    t.expect_error("cleared certificate", cc_with(cert_assertion(key, cert, emu.client, aud)),
                   401, "invalid_client", 700027)


class _JwksServer:
    """A plain-HTTP loopback server for one JWKS document."""

    def __init__(self, doc):
        body = json.dumps(doc).encode()

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/openid/v1/jwks" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def t_federated(t, emu, v):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    emu.ok("register_federated", {"issuer": K8S_ISSUER, "subject": K8S_SUB,
                                  "jwks": {"keys": [jwk(key, "k1")]}})
    cc = {"grant_type": "client_credentials", "scope": "%s/.default" % t.STORAGE,
          "client_assertion_type": JWT_BEARER}

    def cc_with(assertion):
        return emu.token(dict(cc, client_assertion=assertion), tenant=emu.tenant)

    r = cc_with(fed_token(key))
    t.check("federated client_credentials", r.status == 200
            and v.claims("fed AT", r.json()["access_token"]).get("azpacr") == "2", r.body[:200])
    t.check("federated aud as a string", cc_with(fed_token(key, aud=FIC_AUD)).status == 200)
    for name, tok in (("wrong sub", fed_token(key, sub="system:serviceaccount:ns1:other")),
                      ("wrong aud", fed_token(key, aud=["api://other"])),
                      ("unknown issuer", fed_token(key, iss="https://elsewhere.example")),
                      ("expired", fed_token(key, exp=int(time.time()) - 5)),
                      ("wrong key", fed_token(other)),
                      ("unknown kid", fed_token(key, kid="k9"))):
        t.expect_error("federated " + name, cc_with(tok), 401, "invalid_client", 700027)
    # The issuer's JWKS fetched from its jwks_uri.
    srv = _JwksServer({"keys": [jwk(other, "k2")]})
    try:
        emu.ok("register_federated", {"issuer": "https://issuer-2.example", "subject": "wl-2",
                                      "jwks_uri": srv.url})
        r = cc_with(fed_token(other, kid="k2", iss="https://issuer-2.example", sub="wl-2"))
        t.check("federated via jwks_uri", r.status == 200, r.body[:200])
    finally:
        srv.close()
    status, _ = emu.control("register_federated", {"issuer": "x", "subject": "y"})
    t.check("register_federated needs keys", status == 400)
    emu.ok("clear_credentials")


def run(t, emu, v):
    emu.tenant, emu.client = t.TENANT, t.CLIENT
    t_authorize_public(t, emu, v)
    t_authorize_errors(t, emu)
    t_device_block(t, emu)
    t_certificate(t, emu, v)
    t_federated(t, emu, v)


# ---------------------------------------------------------------- secret (a second emulator)

def t_confidential_signin(t, emu, v, secret):
    """The secret-holding app: public flows refuse the secret, the web code
    flow, its refreshes and client_credentials need it."""
    web = "https://app.example/entra/callback"
    emu.ok("register_redirect", {"uri": web, "kind": "web"})
    code, verifier, _ = sign_in(t, emu, web, t.OID_A, t.USER_A)
    t.expect_error("web code wrong secret", redeem(emu, code, verifier, web,
                                                   client_secret="nope"),
                   401, "invalid_client", 7000215)
    r = redeem(emu, code, verifier, web, client_secret=secret)
    b = t.check_token_response("web code + secret", r, v, emu, t.STORAGE, t.OID_A, t.USER_A,
                               upn=t.USER_A, tid=emu.tenant)
    if b:
        t.check("secret azpacr 1", v.claims("sec AT", b["access_token"]).get("azpacr") == "1")
    r = emu.token({"grant_type": "client_credentials", "scope": "%s/.default" % t.STORAGE,
                   "client_id": emu.client, "client_secret": secret}, tenant=emu.tenant)
    t.check("client_credentials with secret", r.status == 200, r.body[:200])
    return b.get("refresh_token") if b else None
