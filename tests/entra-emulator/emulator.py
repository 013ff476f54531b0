#!/usr/bin/python3
# emulator.py - a loopback HTTPS server that behaves like Microsoft Entra ID's
# v2.0 device-code, authorize, token, discovery and keys endpoints, with a
# /_control/ API that lets tests approve sign-ins, revoke grants and inject
# faults. Client authentication lives in emu_clientauth.py, the
# authorization code flow and client_credentials in emu_authcode.py, CAE (the
# claims parameter, the protected resource, critical events) in emu_cae.py.
# Tests and demos only; the contract is README.md beside this file.
# Never prints or logs a token (tests grep the logs for leaks).

import argparse
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Beside this file (run as a script):
from emu_crypto import KeyMaterial, b64url
import emu_authcode
import emu_cae
import emu_clientauth
import emu_discovery
import emu_graph
from emu_errors import ControlError, EntraError, c_str, missing

DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
DEFAULT_CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
GRAPH = "https://graph.microsoft.com"
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
GRANT_DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_REFRESH = "refresh_token"
GRANT_CODE = "authorization_code"
GRANT_CLIENT = "client_credentials"
VERIFICATION_URI = "https://microsoft.com/devicelogin"
USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
FAULT_KINDS = ("429", "503", "500", "slow", "malformed", "oversized", "reset",
               "invalid_client", "unauthorized", "oversized_chunked", "huge", "truncated",
               "garbage", "html", "stall")
MAX_BODY = 1 << 20
OVERSIZED = 4 * 1024 * 1024

VERBOSE = False


def vlog(msg):
    """Diagnostics to stderr with --verbose only; callers never pass secrets."""
    if VERBOSE:
        sys.stderr.write("entra-emulator: %s\n" % msg)
        sys.stderr.flush()


def utc_stamp(t=None):
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t if t is not None else time.time()))


def iso_stamp(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime(t))


# ---------------------------------------------------------------- scopes

def parse_scope(scope):
    """Splits a scope string into (resource, resource scopes, OIDC scopes).
    Raises EntraError for several resources (28000) or a bad scope (70011)."""
    items = [s for s in scope.split(" ") if s]
    oidc = [s for s in items if s.lower() in OIDC_SCOPES]
    res_scopes = [s for s in items if s.lower() not in OIDC_SCOPES]
    resources, perms = [], []
    for s in res_scopes:
        if "://" in s:
            rest = s.split("://", 1)[1]
            if "/" not in rest:
                raise invalid_scope(scope)
            resource, perm = s.rsplit("/", 1)
        elif "/" in s:
            resource, perm = s.rsplit("/", 1)
        else:
            resource, perm = GRAPH, s
        if not resource or not perm:
            raise invalid_scope(scope)
        if resource not in resources:
            resources.append(resource)
        perms.append(perm)
    if len(resources) > 1:
        raise EntraError(400, "invalid_scope", 28000,
                         "Provided value for the input parameter scope is not valid because it "
                         "contains more than one resource. Scope %s is not valid." % scope)
    if ".default" in perms and len(perms) > 1:
        raise invalid_scope(scope)
    if not resources:  # only OIDC scopes: Entra answers with a Graph token
        return GRAPH, ["User.Read"], ["User.Read"], oidc
    return resources[0], res_scopes, perms, oidc


def invalid_scope(scope):
    return EntraError(400, "invalid_scope", 70011,
                      "The provided value for the input parameter 'scope' is not valid. "
                      "The scope '%s' is not valid." % scope)


# ---------------------------------------------------------------- state

class State:
    """Everything the emulator remembers; all access under self.lock."""

    def __init__(self, args, keys):
        self.lock = threading.RLock()
        self.tenant, self.client_id = args.tenant, args.client_id
        self.client_secret = None
        if args.client_secret_file:
            with open(args.client_secret_file, "r", encoding="utf-8") as f:
                self.client_secret = f.read().rstrip("\r\n")
        self.creds = emu_clientauth.AppCredentials(self.client_secret)
        self.upn = args.upn
        self.strict = args.strict_rotation
        self.keys = keys
        self.authority = None  # set once the port is known
        self.lifetimes = {"access_token": 3600, "refresh_in": None, "device_code": 900,
                          "interval": 5, "auth_code": 600}
        self.flows = {}        # device_code -> flow dict
        self.by_user_code = {}  # user_code -> flow dict
        self.rts = {}          # refresh token -> record
        self.seq = 0           # issue sequence number for refresh tokens
        self.revoked = {}      # oid -> (seq, time): RTs with seq <= are revoked (50173)
        self.expired = {}      # oid -> (seq, time): RTs with seq <= are expired (700082)
        self.conditions = []   # MFA / consent / block conditions
        self.faults = []
        self.issued = []
        self.client_secrets = []  # credd's own secrets seen (PKCE verifiers)
        self.date_offset = getattr(args, "date_offset", 0)  # s added to the Date header
        self.codes = {}           # authorization code -> record (emu_authcode.py)
        self.signins = []         # queued sign-ins for the authorize endpoint
        self.authorizations = []  # the last authorize requests, for tests
        self.redirects = {"public": set(), "web": set()}  # filled once authority is known
        self.device_blocks = []   # Conditional Access on the device code flow
        self.app_roles = {}       # resource -> roles in client_credentials tokens
        self.cae = emu_cae.new_state()  # CAE lifetimes, critical events (emu_cae.py)
        self.graph = emu_graph.new_state()  # the offboarding app, Graph revokes
        self.disco = emu_discovery.new_state()  # discovery knobs (emu_discovery.py)
        self.reset_counters()

    def reset_counters(self):
        self.counters = {"devicecode": 0, "device_code": 0, "refresh_token": 0, "token": 0,
                         "discovery": 0, "keys": 0, "authorize": 0, "authorization_code": 0,
                         "client_credentials": 0, "by_resource": {}}

    def count_resource(self, resource):
        if resource:
            br = self.counters["by_resource"]
            br[resource] = br.get(resource, 0) + 1

    def take_fault(self, endpoint, grant):
        """Consumes and returns the first fault matching this request, or None."""
        with self.lock:
            for f in self.faults:
                if f["endpoint"] not in ("any", endpoint):
                    continue
                if f["grant"] and (endpoint != "token" or f["grant"] != grant):
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                    if f["count"] == 0:
                        self.faults.remove(f)
                return dict(f)
        return None

    def condition_for(self, oid, resource, kinds=("mfa", "consent", "block")):
        for c in self.conditions:
            if (c["kind"] in kinds and c["resource"] == resource
                    and c["oid"] in (None, oid) and oid not in c["exempt"]):
                return c
        return None

    def satisfy_conditions(self, oid, resource):
        """An approved device flow for resource clears MFA/consent conditions for that account."""
        keep = []
        for c in self.conditions:
            if c["kind"] in ("mfa", "consent") and c["resource"] == resource:
                if c["oid"] == oid:
                    continue
                if c["oid"] is None:
                    c["exempt"].add(oid)
            keep.append(c)
        self.conditions = keep


# ---------------------------------------------------------------- token minting

def new_guid():
    return str(uuid.uuid4())


def mint_tokens(st, account, resource, res_scopes, perms, oidc, with_client_info, acr="0",
                confidential=False, claims=None):
    """Builds a token response body; records every secret. Call with st.lock held.
    acr: how the client authenticated ("0" none, "1" secret, "2" assertion);
    confidential: the refresh token belongs to a confidential flow (its
    refreshes must carry a credential); claims: the request's claims
    parameter (a dict; xms_cc cp1 earns a CAE token, emu_cae.py)."""
    now = int(time.time())
    lt = st.lifetimes
    at_life, refresh_in = emu_cae.lifetime(st, claims, int(lt["access_token"]),
                                           lt["refresh_in"])
    iss = "%s/%s/v2.0" % (st.authority, account["tid"])
    sub = b64url(hashlib.sha256((account["oid"] + st.client_id).encode()).digest())[:43]
    scp = "user_impersonation" if perms == [".default"] else " ".join(perms)
    at_claims = {
        "aud": resource, "iss": iss, "iat": now, "nbf": now, "exp": now + at_life,
        "azp": st.client_id, "azpacr": acr,
        "name": account["name"], "oid": account["oid"],
        "preferred_username": account["preferred_username"],
        "scp": scp, "sub": sub, "tid": account["tid"],
        "uti": b64url(os.urandom(16)), "ver": "2.0"}
    if claims is not None and emu_cae.wants_cae(claims):
        at_claims["xms_cc"] = ["cp1"]
    if st.upn:
        at_claims["upn"] = account.get("upn") or account["preferred_username"]
    access_token = st.keys.sign_jwt(at_claims)
    st.issued.append(access_token)

    if perms == [".default"]:
        granted = ["%s/user_impersonation" % resource] + res_scopes
    else:
        granted = list(res_scopes) if res_scopes else list(perms)
    granted += [s.lower() for s in oidc]
    body = {"token_type": "Bearer", "scope": " ".join(granted),
            "expires_in": at_life, "ext_expires_in": at_life}
    if refresh_in is not None:
        body["refresh_in"] = int(refresh_in)
    body["access_token"] = access_token

    oidc_l = [s.lower() for s in oidc]
    if "offline_access" in oidc_l:
        st.seq += 1
        rt = "1.AQ" + b64url(os.urandom(24)) + "CANARY" + b64url(os.urandom(96))
        st.rts[rt] = {"account": dict(account), "client_id": st.client_id, "seq": st.seq,
                      "issued": time.time(), "used": False, "confidential": confidential}
        st.issued.append(rt)
        body["refresh_token"] = rt
    if "openid" in oidc_l:
        id_claims = {
            "aud": st.client_id, "iss": st.disco["id_token_iss"] or iss, "iat": now, "nbf": now, "exp": now + 3600,
            "name": account["name"], "oid": account["oid"],
            "preferred_username": account["preferred_username"],
            "sub": sub, "tid": account["tid"], "uti": b64url(os.urandom(16)), "ver": "2.0"}
        if st.upn:
            id_claims["upn"] = account.get("upn") or account["preferred_username"]
        id_token = st.keys.sign_jwt(id_claims)
        st.issued.append(id_token)
        body["id_token"] = id_token
    if with_client_info:
        body["client_info"] = b64url(json.dumps({"uid": account["oid"],
                                                 "utid": account["tid"]}).encode())
    return body


def condition_error(c):
    r = c["resource"]
    if c["kind"] == "mfa":
        return EntraError(400, "invalid_grant", 50076,
                          "Due to a configuration change made by your administrator, or because you "
                          "moved to a new location, you must use multi-factor authentication to "
                          "access '%s'." % r, suberror="basic_action")
    if c["kind"] == "consent":
        return EntraError(400, "invalid_grant", 65001,
                          "The user or administrator has not consented to use the application with "
                          "ID '%s'. Send an interactive authorization request for this user and "
                          "resource." % c["client_id"], suberror="consent_required")
    if c["code"] == 50079:
        return EntraError(400, "interaction_required", 50079,
                          "Due to a configuration change made by your administrator, or because you "
                          "moved to a new location, you must enroll in multi-factor authentication "
                          "to access '%s'." % r)
    return EntraError(400, "invalid_grant", 53003,
                      "Access has been blocked by Conditional Access policies. The access policy "
                      "does not allow token issuance.")


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "entra-emulator"
    sys_version = ""
    timeout = 60  # idle keep-alive connections
    trace_id = corr_id = "00000000-0000-0000-0000-000000000000"
    aborted = False

    # -- plumbing

    def log_message(self, fmt, *args):
        # Paths are logged without query strings; bodies never.
        if VERBOSE:
            vlog("%s %s" % (self.command, self.path.split("?", 1)[0]))

    def log_request(self, code="-", size="-"):
        if VERBOSE:
            vlog("%s %s -> %s" % (self.command, self.path.split("?", 1)[0], code))

    def log_error(self, fmt, *args):
        vlog("request error")

    def version_string(self):
        return self.server_version

    def date_time_string(self, timestamp=None):
        # The Date header of every reply, off by --date-offset / the
        # date_offset control call: a clock-skewed IdP (credd doctor).
        if timestamp is None:
            timestamp = time.time() + self.server.state.date_offset
        return super().date_time_string(timestamp)

    @property
    def st(self):
        return self.server.state

    def correlation(self):
        cid = self.headers.get("client-request-id", "")
        return cid if re.fullmatch(r"[0-9A-Za-z-]{1,64}", cid) else new_guid()

    def send(self, status, body, ctype="application/json; charset=utf-8", headers=None,
             no_store=True):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if no_store:
            self.send_header("Cache-Control", "no-store, no-cache")
            self.send_header("Pragma", "no-cache")
        self.send_header("x-ms-request-id", self.trace_id)
        self.send_header("client-request-id", self.corr_id)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_json(self, e):
        ts = utc_stamp()
        body = {"error": e.error,
                "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\n"
                                     "Timestamp: %s" % (e.code, e.text, self.trace_id,
                                                        self.corr_id, ts),
                "error_codes": [e.code], "timestamp": ts, "trace_id": self.trace_id,
                "correlation_id": self.corr_id,
                "error_uri": "https://login.microsoftonline.com/error?code=%d" % e.code}
        if e.suberror:
            body["suberror"] = e.suberror
        self.send(e.status, body, headers=e.headers)

    def read_body(self):
        n = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise EntraError(400, "invalid_request", 900144, "Chunked bodies are not supported.")
        try:
            n = int(n or 0)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            raise EntraError(400, "invalid_request", 90014, "The request body is too large.")
        return self.rfile.read(n) if n else b""

    def send_stream(self, size, chunked):
        """200 with a JSON-looking body of size bytes, in 64 KiB writes:
        chunked (no length known in advance: the client must cap it
        itself) or with a Content-Length. Stops when the client hangs up."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.send_header("Connection", "close")
        self.end_headers()
        piece = b'{"pad":"' + b"A" * (65536 - 8)
        sent = 0
        try:
            while sent < size:
                d = piece[:min(len(piece), size - sent)]
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(d), d))
                else:
                    self.wfile.write(d)
                sent += len(d)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass  # the client gave up: what a capped client should do

    def send_truncated(self):
        """A token reply cut off mid-body: Content-Length promises more."""
        self.close_connection = True
        body = b'{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0eXAiOiJKV1Qi'
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body) + 500))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_stall(self, delay):
        """Headers at once, then nothing for delay seconds (a read timeout,
        where "slow" is a wait for the first byte)."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b'{"token_type":')
        self.wfile.flush()
        time.sleep(delay)

    def reset_connection(self):
        """Closes the TCP connection with RST and without any reply."""
        self.close_connection = True
        self.aborted = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()
        finally:
            self.connection.close()

    # -- dispatch

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def dispatch(self, method):
        self.trace_id, self.corr_id, self.aborted = new_guid(), self.correlation(), False
        path = urllib.parse.urlsplit(self.path).path
        parts = [p for p in path.split("/") if p]
        try:
            if parts[:1] == ["_control"]:
                return self.control(method, "/".join(parts[1:]))
            if parts[:1] == ["_resource"]:
                return emu_cae.resource(self, method)
            if len(parts) == 4 and parts[:2] == ["v1.0", "users"] and \
                    parts[3] == "revokeSignInSessions":
                return emu_graph.revoke_sessions(self, method, parts[1:])
            if len(parts) == 4 and parts[1:3] == ["oauth2", "v2.0"] and parts[3] in ("token", "devicecode"):
                if method != "POST":
                    self.read_body()
                    raise EntraError(400, "invalid_request", 900561,
                                     "The endpoint only accepts POST requests. Received a %s "
                                     "request." % method)
                return self.oauth(parts[0], parts[3])
            if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "authorize"]:
                self.read_body()
                if method != "GET":
                    raise EntraError(400, "invalid_request", 900561,
                                     "The endpoint only accepts GET requests. Received a %s "
                                     "request." % method)
                return emu_authcode.authorize(self, parts[0])
            if method == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                return self.discovery(parts[0])
            if method == "GET" and parts[1:] == ["discovery", "v2.0", "keys"]:
                return self.jwks(parts[0])
            self.read_body()
            self.send(404, {"error": "not_found", "error_description": "No such endpoint."})
        except EntraError as e:
            self.send_error_json(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # a bug here; answer 500 rather than hang the client
            vlog("internal error: %s" % type(e).__name__)
            if VERBOSE:
                traceback.print_exc()
            self.close_connection = True
            if not self.aborted:
                try:
                    self.send_error_json(EntraError(500, "server_error", 50000,
                                                    "Internal emulator error."))
                except OSError:
                    pass

    def check_tenant(self, tenant):
        if tenant not in (self.st.tenant, "common", "organizations"):
            raise EntraError(400, "invalid_request", 90002,
                             "Tenant '%s' not found. Check to make sure you have the correct tenant "
                             "ID and are signing into the correct cloud." % tenant)

    # -- discovery and keys

    def discovery(self, tenant):
        return emu_discovery.serve(self, tenant)

    def jwks(self, tenant):
        with self.st.lock:
            self.st.counters["keys"] += 1
        self.check_tenant(tenant)
        issuer = "%s/%s/v2.0" % (self.st.authority, self.st.tenant)
        self.send(200, self.st.keys.jwks(issuer), no_store=False,
                  headers={"Cache-Control": "max-age=86400, private"})

    # -- OAuth endpoints

    def oauth(self, tenant, endpoint):
        st = self.st
        raw = self.read_body()
        form = {k: v[0] for k, v in urllib.parse.parse_qs(
            raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        grant = form.get("grant_type") if endpoint == "token" else None

        with st.lock:
            c = st.counters
            c[endpoint] += 1
            resource = None
            if grant == GRANT_DEVICE:
                c["device_code"] += 1
                flow = st.flows.get(form.get("device_code", ""))
                resource = flow["resource"] if flow else None
            elif grant == GRANT_REFRESH:
                c["refresh_token"] += 1
            elif grant in (GRANT_CODE, GRANT_CLIENT):
                c[grant] += 1
            if grant == GRANT_REFRESH or endpoint == "devicecode":
                try:
                    resource = parse_scope(form.get("scope", ""))[0] if form.get("scope") else None
                except EntraError:
                    resource = None
                if resource is None and grant == GRANT_REFRESH:
                    rec = st.rts.get(form.get("refresh_token", ""))
                    if rec and rec.get("scope"):
                        resource = rec["resource"]
            if endpoint == "token":
                st.count_resource(resource)

        fault = st.take_fault(endpoint, grant)
        if fault and self.apply_fault(fault):
            return

        self.check_tenant(tenant)
        client_id, acr = self.authenticate_client(form, endpoint, grant, tenant)
        if endpoint == "devicecode":
            return self.devicecode(form)
        if not grant:
            raise missing("grant_type")
        if grant == GRANT_DEVICE:
            return self.poll(form)
        if grant == GRANT_REFRESH:
            return self.refresh(form, acr)
        if grant == GRANT_CODE:
            return emu_authcode.redeem(self, form, client_id, acr)
        if grant == GRANT_CLIENT:
            return emu_authcode.client_credentials(self, form, acr, client_id)
        raise EntraError(400, "unsupported_grant_type", 70003,
                         "The app requested an unsupported grant type '%s'." % grant)

    def apply_fault(self, f):
        """Acts out an injected fault. Returns True when the request is finished."""
        kind, ra = f["kind"], str(int(f["retry_after"]))
        vlog("fault %s" % kind)
        if kind == "slow":
            time.sleep(f["delay"])
            return False
        if kind == "429":
            self.send(429, "Too Many Requests", ctype="text/plain; charset=utf-8",
                      headers={"Retry-After": ra})
        elif kind == "503":
            self.send_error_json(EntraError(503, "temporarily_unavailable", 90033,
                                            "A transient error has occurred. Please try again.",
                                            headers={"Retry-After": ra}))
        elif kind == "500":
            self.send_error_json(EntraError(500, "server_error", 50000,
                                            "There was an error issuing a token or an issue with "
                                            "our sign-in service."))
        elif kind == "malformed":
            self.send(200, b'{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"acc')
        elif kind == "oversized":
            head, tail = b'{"token_type":"Bearer","padding":"', b'"}'
            self.send(200, head + b"A" * (OVERSIZED - len(head) - len(tail)) + tail)
        elif kind == "reset":
            self.reset_connection()
        elif kind == "oversized_chunked":
            self.send_stream(f["size"], chunked=True)
        elif kind == "huge":
            self.send_stream(f["size"], chunked=False)
        elif kind == "truncated":
            self.send_truncated()
        elif kind == "garbage":
            self.send(200, os.urandom(4096))
        elif kind == "html":
            self.send(200, "<html><head><title>Proxy</title></head><body>Sign in to the "
                      "network</body></html>\n", ctype="text/html; charset=utf-8")
        elif kind == "stall":
            self.send_stall(f["delay"])
        elif kind == "invalid_client":
            self.send_error_json(self.bad_secret())
        elif kind == "unauthorized":
            self.send_error_json(self.unknown_client(self.st.client_id))
        return True

    def bad_secret(self):
        return emu_clientauth.bad_secret(self.st.client_id)

    def unknown_client(self, client_id):
        return EntraError(400, "unauthorized_client", 700016,
                          "Application with identifier '%s' was not found in the directory '%s'. "
                          "This can happen if the application has not been installed by the "
                          "administrator of the tenant or consented to by any user in the tenant. "
                          "You may have sent your authentication request to the wrong tenant."
                          % (client_id, self.st.tenant))

    def flow_kind(self, endpoint, grant, form):
        """Entra's rule: "public" flows must not carry a client credential,
        "confidential" ones must; None when the grant's record is unknown
        (a credential is then checked if present). Call with st.lock held."""
        st = self.st
        if endpoint == "devicecode" or grant == GRANT_DEVICE:
            return "public"
        if grant == GRANT_CLIENT:
            return "confidential"
        if grant == GRANT_CODE:
            return emu_authcode.code_kind(st, form)
        if grant == GRANT_REFRESH:
            rec = st.rts.get(form.get("refresh_token", ""))
            if rec is not None:
                return "confidential" if rec.get("confidential") else "public"
        return None

    def authenticate_client(self, form, endpoint, grant, tenant):
        """client_id from the form or HTTP Basic, then the credential the
        flow needs (emu_clientauth.py). Returns (client_id, azpacr)."""
        st = self.st
        client_id, secret, assertion = emu_clientauth.presented(form, self.headers)
        if not client_id:
            raise missing("client_id")
        urls = {"%s/%s/oauth2/v2.0/token" % (st.authority, t) for t in (tenant, st.tenant)}
        with st.lock:
            second = emu_graph.app_creds(st, client_id)
        if second is not None:
            # The offboarding app: a daemon app, client_credentials only.
            if grant != GRANT_CLIENT:
                raise EntraError(400, "unauthorized_client", 700016,
                                 "The app '%s' may only use client_credentials." % client_id)
            acr = emu_clientauth.authenticate(second, client_id, "confidential", secret,
                                              assertion, urls)
            return client_id, acr
        if client_id != st.client_id:
            raise self.unknown_client(client_id)
        with st.lock:
            kind = self.flow_kind(endpoint, grant, form)
        creds = st.creds
        acr = emu_clientauth.authenticate(creds, client_id, kind, secret, assertion, urls)
        return client_id, acr

    def devicecode(self, form):
        st = self.st
        scope = form.get("scope", "")
        if not scope.strip():
            raise missing("scope")
        resource, res_scopes, perms, oidc = parse_scope(scope)
        with st.lock:
            if emu_authcode.device_flow_blocked(st, None, "start"):
                raise emu_authcode.ca_block()
            while True:
                user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
                if user_code not in st.by_user_code:
                    break
            device_code = ("DAQABIQEAAAD--DLA3VO7QrddgJg7WevrAgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                           + b64url(os.urandom(48)) + "CANARY" + b64url(os.urandom(96)))
            life, interval = int(st.lifetimes["device_code"]), int(st.lifetimes["interval"])
            now = time.time()
            flow = {"device_code": device_code, "user_code": user_code, "scope": scope,
                    "resource": resource, "res_scopes": res_scopes, "perms": perms, "oidc": oidc,
                    "created": now, "expires_at": now + life, "interval": interval,
                    "last_poll": None, "status": "pending", "account": None}
            st.flows[device_code] = flow
            st.by_user_code[user_code] = flow
            st.issued.append(device_code)
        self.send(200, {
            "user_code": user_code, "device_code": device_code,
            "verification_uri": VERIFICATION_URI, "expires_in": life, "interval": interval,
            "message": "To sign in, use a web browser to open the page %s and enter the code %s "
                       "to authenticate." % (VERIFICATION_URI, user_code)})

    def poll(self, form):
        st = self.st
        code = form.get("device_code")
        if not code:
            raise missing("device_code")
        with st.lock:
            flow = st.flows.get(code)
            if flow is None:
                raise EntraError(400, "bad_verification_code", 70018,
                                 "The provided value for the input parameter 'device_code' is not "
                                 "valid.")
            now = time.time()
            last, flow["last_poll"] = flow["last_poll"], now
            status = flow["status"]
            if status == "redeemed":
                raise EntraError(400, "invalid_grant", 54005,
                                 "OAuth2 Authorization code was already redeemed, please retry with "
                                 "a new valid code or use an existing refresh token.")
            if now >= flow["expires_at"]:
                flow["status"] = "expired"
                raise EntraError(400, "expired_token", 70019, "Verification code expired.")
            if status == "declined":
                raise EntraError(400, "authorization_declined", 70000,
                                 "The user declined to sign in or to authorize the application.")
            if status == "pending":
                if last is not None and now - last < flow["interval"] - 1:
                    flow["interval"] += 5  # RFC 8628 3.5: the client must add 5 s
                    raise EntraError(400, "slow_down", 70016,
                                     "OAuth 2.0 device flow error. Polling too frequently; "
                                     "increase the polling interval by 5 seconds.")
                raise EntraError(400, "authorization_pending", 70016,
                                 "OAuth 2.0 device flow error. Authorization is pending. "
                                 "Continue polling.")
            account = flow["account"]
            if emu_authcode.device_flow_blocked(st, account["oid"], "poll"):
                raise emu_authcode.ca_block()
            c = st.condition_for(account["oid"], flow["resource"], ("block",))
            if c is not None:
                raise condition_error(c)
            claims = emu_cae.parse_claims(st, form.get("claims"))
            flow["status"] = "redeemed"
            body = mint_tokens(st, account, flow["resource"], flow["res_scopes"], flow["perms"],
                               flow["oidc"], form.get("client_info") == "1", claims=claims)
            if "refresh_token" in body:
                rec = st.rts[body["refresh_token"]]
                rec["scope"], rec["resource"] = flow["scope"], flow["resource"]
        self.send(200, body)

    def refresh(self, form, acr="0"):
        st = self.st
        rt = form.get("refresh_token")
        if not rt:
            raise missing("refresh_token")
        with st.lock:
            rec = st.rts.get(rt)
            if rec is None:
                raise EntraError(400, "invalid_grant", 9002313,
                                 "Invalid request. Request is malformed or invalid.")
            if rec["client_id"] != st.client_id:
                raise EntraError(400, "invalid_grant", 70000,
                                 "Provided grant is invalid or malformed.")
            account = rec["account"]
            oid = account["oid"]
            if oid in st.revoked and rec["seq"] <= st.revoked[oid][0]:
                raise EntraError(400, "invalid_grant", 50173,
                                 "The provided grant has expired due to it being revoked, a fresh "
                                 "auth token is needed. The user might have changed or reset their "
                                 "password. The grant was issued on '%s' and the TokensValidFrom "
                                 "date (before which tokens are not valid) for this user is '%s'."
                                 % (iso_stamp(rec["issued"]), iso_stamp(st.revoked[oid][1])))
            if oid in st.expired and rec["seq"] <= st.expired[oid][0]:
                raise EntraError(400, "invalid_grant", 700082,
                                 "The refresh token has expired due to inactivity. The token was "
                                 "issued on %s and was inactive for 90.00:00:00."
                                 % iso_stamp(rec["issued"]))
            if rec["used"] and st.strict:
                raise EntraError(400, "invalid_grant", 70008,
                                 "The provided authorization code or refresh token has expired due "
                                 "to inactivity. Send a new interactive authorization request for "
                                 "this user and resource.")
            scope = form.get("scope") or rec.get("scope") or "openid profile offline_access"
            resource, res_scopes, perms, oidc = parse_scope(scope)
            claims = emu_cae.parse_claims(st, form.get("claims"))
            c = st.condition_for(oid, resource)
            if c is not None:
                raise condition_error(c)
            rec["used"] = True
            body = mint_tokens(st, account, resource, res_scopes, perms, oidc,
                               form.get("client_info") == "1", acr=acr,
                               confidential=rec.get("confidential", False), claims=claims)
            if "refresh_token" in body:
                new = st.rts[body["refresh_token"]]
                new["scope"], new["resource"] = rec.get("scope"), rec.get("resource")
        self.send(200, body)

    # -- control API

    def control(self, method, name):
        st = self.st
        raw = self.read_body()
        body = {}
        if method == "POST":
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise ValueError
            except ValueError:
                return self.send(400, {"ok": False, "error": "body must be a JSON object"})
        try:
            handler = CONTROL.get((method, name))
            if handler is None:
                return self.send(404, {"ok": False, "error": "unknown control call %s %s"
                                       % (method, name)})
            with st.lock:
                result = handler(st, body)
            reply = {"ok": True}
            reply.update(result or {})
            self.send(200, reply)
        except ControlError as e:
            self.send(e.status, {"ok": False, "error": str(e)})


_str = c_str


def _num(body, key, default, minimum=0):
    v = body.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < minimum:
        raise ControlError("'%s' must be a number >= %s" % (key, minimum))
    return v


def _flow_by_user_code(st, body):
    flow = st.by_user_code.get(_str(body, "user_code"))
    if flow is None:
        raise ControlError("unknown user_code", 404)
    if flow["status"] != "pending" or time.time() >= flow["expires_at"]:
        raise ControlError("flow is not pending (status %s)" % flow["status"], 409)
    return flow


def c_flows(st, body):
    now = time.time()
    return {"flows": [{"user_code": f["user_code"], "scope": f["scope"], "resource": f["resource"],
                       "expires_in": max(0, int(f["expires_at"] - now)), "status": f["status"]}
                      for f in st.flows.values()
                      if f["status"] == "pending" and now < f["expires_at"]]}


def c_approve(st, body):
    flow = _flow_by_user_code(st, body)
    username = _str(body, "preferred_username")
    flow["account"] = {"oid": _str(body, "oid"), "preferred_username": username,
                       "tid": _str(body, "tid", False) or st.tenant,
                       "upn": _str(body, "upn", False),
                       "name": _str(body, "name", False) or username.split("@")[0]}
    flow["status"] = "approved"
    st.satisfy_conditions(flow["account"]["oid"], flow["resource"])


def c_decline(st, body):
    _flow_by_user_code(st, body)["status"] = "declined"


def c_revoke(st, body):
    st.revoked[_str(body, "oid")] = (st.seq, time.time())


def c_expire_refresh(st, body):
    st.expired[_str(body, "oid")] = (st.seq, time.time())


def _condition(kind):
    def add(st, body):
        c = {"kind": kind, "resource": _str(body, "resource"), "oid": _str(body, "oid", False),
             "exempt": set(), "client_id": st.client_id, "code": None}
        if kind == "block":
            c["code"] = body.get("code", 53003)
            if c["code"] not in (53003, 50079):
                raise ControlError("'code' must be 53003 or 50079")
        st.conditions.append(c)
    return add


def c_lifetimes(st, body):
    for key in ("access_token", "device_code", "interval", "auth_code"):
        if key in body:
            st.lifetimes[key] = int(_num(body, key, None, 1))
    if "refresh_in" in body:
        st.lifetimes["refresh_in"] = (None if body["refresh_in"] is None
                                      else int(_num(body, "refresh_in", None, 1)))
    return {"lifetimes": dict(st.lifetimes)}


def c_rotation(st, body):
    if not isinstance(body.get("strict"), bool):
        raise ControlError("'strict' must be true or false")
    st.strict = body["strict"]


def c_fault(st, body):
    kind = str(body.get("kind", ""))
    if kind not in FAULT_KINDS:
        raise ControlError("'kind' must be one of %s" % ", ".join(FAULT_KINDS))
    endpoint = body.get("endpoint", "any")
    if endpoint not in ("any", "token", "devicecode"):
        raise ControlError("'endpoint' must be token, devicecode or any")
    grant = body.get("grant")
    if grant is not None:
        grant = {"device_code": GRANT_DEVICE, GRANT_DEVICE: GRANT_DEVICE,
                 "refresh_token": GRANT_REFRESH}.get(grant)
        if grant is None:
            raise ControlError("'grant' must be refresh_token or device_code")
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count == 0:
        raise ControlError("'count' must be a non-zero integer (negative: until clear)")
    st.faults.append({"kind": kind, "endpoint": endpoint, "grant": grant, "count": count,
                      "retry_after": _num(body, "retry_after", 2),
                      "delay": _num(body, "delay", 5),
                      "size": int(_num(body, "size", 100 * 1024 * 1024))})


def c_clear(st, body):
    st.faults, st.conditions = [], []
    st.device_blocks, st.signins = [], []
    emu_discovery.reset(st)


def c_counters(st, body):
    c = dict(st.counters)
    c["by_resource"] = dict(c["by_resource"])
    return c


def c_date_offset(st, body):
    v = body.get("seconds")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or abs(v) > 10 * 365 * 86400:
        raise ControlError("'seconds' must be a number of seconds (either sign)")
    st.date_offset = v
    return {"seconds": v}


def c_reset_counters(st, body):
    st.reset_counters()


def c_issued(st, body):
    """secrets: what the emulator issued (each carries the canary);
    client_secrets: credd's own secrets it was shown (PKCE verifiers),
    which leak checks look for too."""
    return {"secrets": list(st.issued), "client_secrets": list(st.client_secrets)}


def c_refresh_chain(st, body):
    """Every refresh token issued, by account oid, in issue order, as
    fingerprints (first 8 hex of SHA-256, as credd logs them) with their
    used flag: the oracle for crash-consistency tests."""
    chains = {}
    with st.lock:
        recs = sorted(st.rts.items(), key=lambda kv: kv[1]["seq"])
        for rt, rec in recs:
            chains.setdefault(rec["account"]["oid"], []).append(
                {"fp": hashlib.sha256(rt.encode()).hexdigest()[:8], "seq": rec["seq"],
                 "used": rec["used"]})
    return {"accounts": chains}


CONTROL = {
    ("GET", "flows"): c_flows,
    ("POST", "approve"): c_approve,
    ("POST", "decline"): c_decline,
    ("POST", "revoke"): c_revoke,
    ("POST", "expire_refresh"): c_expire_refresh,
    ("POST", "require_mfa"): _condition("mfa"),
    ("POST", "withdraw_consent"): _condition("consent"),
    ("POST", "block"): _condition("block"),
    ("POST", "lifetimes"): c_lifetimes,
    ("POST", "rotation"): c_rotation,
    ("POST", "fault"): c_fault,
    ("POST", "clear"): c_clear,
    ("GET", "counters"): c_counters,
    ("POST", "reset_counters"): c_reset_counters,
    ("POST", "date_offset"): c_date_offset,
    ("GET", "issued"): c_issued,
    ("GET", "refresh_chain"): c_refresh_chain,
}
CONTROL.update(emu_clientauth.CONTROL)
CONTROL.update(emu_cae.CONTROL)
CONTROL.update(emu_authcode.CONTROL)
CONTROL.update(emu_graph.CONTROL)
CONTROL.update(emu_discovery.CONTROL)
emu_authcode.OPS = argparse.Namespace(parse_scope=parse_scope, mint_tokens=mint_tokens,
                                      condition_error=condition_error)


# ---------------------------------------------------------------- server

class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, addr, state, tls):
        self.state, self.tls = state, tls
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the per-connection thread, so a slow or
        # silent client never blocks accept().
        request.settimeout(15)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        if VERBOSE:
            traceback.print_exc()


def write_atomic(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description="Entra ID emulator for tests")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tenant", default=DEFAULT_TENANT)
    ap.add_argument("--client-id", default=DEFAULT_CLIENT)
    ap.add_argument("--client-secret-file")
    ap.add_argument("--upn", action="store_true")
    ap.add_argument("--strict-rotation", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="log requests (never bodies) to stderr")
    ap.add_argument("--cert-mode", choices=("good", "expired", "wronghost"), default="good",
                    help="serve a valid, an expired or a wrong-host certificate (TLS tests)")
    ap.add_argument("--date-offset", type=float, default=0,
                    help="seconds added to every reply's Date header (a skewed clock)")
    args = ap.parse_args()
    VERBOSE = args.verbose

    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
    keys = KeyMaterial(cert_mode=args.cert_mode)
    keys.write(args.state_dir)
    state = State(args, keys)

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(keys.cert_path, keys.key_path)

    server = Server(("127.0.0.1", args.port), state, tls)
    port = server.server_address[1]
    state.authority = "https://127.0.0.1:%d" % port
    state.redirects["public"] |= emu_authcode.default_public_redirects(state.authority)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    thread.start()

    pid_path = os.path.join(args.state_dir, "emulator.pid")
    write_atomic(pid_path, "%d\n" % os.getpid())
    write_atomic(os.path.join(args.state_dir, "port"), "%d\n" % port)
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()

    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    try:
        os.unlink(pid_path)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
