# emu_authcode.py - the Entra emulator's authorization code flow (tests
# only): GET /{tenant}/oauth2/v2.0/authorize with PKCE S256 and redirect-URI
# checks, auto-approved through the control API ("user X signs in next",
# with consent, MFA and Conditional Access outcomes); the authorization_code
# and client_credentials grants; and the switch that blocks the device code
# flow the way a Conditional Access policy does.
#
# emulator.py owns the state, the lock and the HTTP plumbing; it passes
# its token minting and scope parsing in (OPS). Never logs a code, a
# verifier or a token.

import base64
import hashlib
import os
import re
import secrets
import time
import urllib.parse

from emu_errors import ControlError, EntraError, c_str, missing
import emu_graph

PKCE_RE = re.compile(r"[A-Za-z0-9._~-]{43,128}")
OUTCOMES = ("approve", "decline", "consent_required", "mfa_denied", "blocked")
AUTHORIZATIONS_KEPT = 100
CA_BLOCK_TEXT = ("Access has been blocked by Conditional Access policies. The access policy "
                 "does not allow token issuance.")
OPS = None  # set by emulator.py: parse_scope, mint_tokens, condition_error


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def default_public_redirects(authority):
    """The paste-back redirect URIs a public (mobile and desktop) app has."""
    return {"%s/common/oauth2/nativeclient" % authority,
            "https://login.microsoftonline.com/common/oauth2/nativeclient",
            "http://localhost"}


def redirect_kind(st, uri):
    """"web", "public" or None (not registered). A loopback http redirect
    matches a registered http://localhost one on any port (RFC 8252 7.3)."""
    if uri in st.redirects["web"]:
        return "web"
    if uri in st.redirects["public"]:
        return "public"
    u = urllib.parse.urlsplit(uri)
    if u.scheme == "http" and u.hostname in ("localhost", "127.0.0.1") and not u.query:
        base = "http://localhost" + (u.path if u.path not in ("", "/") else "")
        if base in st.redirects["public"]:
            return "public"
    return None


def ca_block():
    return EntraError(400, "invalid_grant", 53003, CA_BLOCK_TEXT)


def device_flow_blocked(st, oid, at):
    """Is a device code flow blocked for oid (None: anyone) at this step?"""
    return any(b["at"] == at and b["oid"] in (None, oid) for b in st.device_blocks)


# ---------------------------------------------------------------- authorize

class Redirect(Exception):
    """An authorize error that goes back to the redirect URI."""

    def __init__(self, error, code, text):
        super().__init__(error)
        self.error, self.code, self.text = error, code, text


def _query(handler):
    raw = urllib.parse.urlsplit(handler.path).query
    pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True)
    q = {}
    for k, v in pairs:
        if k in q:
            raise EntraError(400, "invalid_request", 90015,
                             "Requested query string is too long or has a duplicate parameter "
                             "'%s'." % k[:32])
        q[k] = v
    return q


def _redirect_to(handler, uri, params):
    sep = "&" if "?" in uri else "?"
    loc = uri + sep + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    handler.send(302, b"", ctype="text/html; charset=utf-8", headers={"Location": loc})


def _check_request(st, q):
    if q.get("response_type") != "code":
        raise Redirect("unsupported_response_type", 700054,
                       "response_type '%s' is not enabled for the application."
                       % q.get("response_type", "")[:32])
    if q.get("response_mode", "query") != "query":
        raise Redirect("invalid_request", 900144, "Only response_mode=query is emulated.")
    if not q.get("scope", "").strip():
        raise Redirect("invalid_request", 900144,
                       "The request body must contain the following parameter: 'scope'.")
    challenge, method = q.get("code_challenge"), q.get("code_challenge_method")
    if not challenge:
        raise Redirect("invalid_request", 900144,
                       "The request must contain the following parameter: 'code_challenge' "
                       "(PKCE with S256 is required).")
    if method != "S256":
        raise Redirect("invalid_request", 900144,
                       "code_challenge_method must be S256; '%s' is not accepted."
                       % (method or "plain")[:16])
    if not PKCE_RE.fullmatch(challenge):
        raise Redirect("invalid_request", 900144, "The code_challenge is malformed.")
    try:
        return OPS.parse_scope(q["scope"])
    except EntraError as e:
        raise Redirect(e.error, e.code, e.text)


def _log(st, q, outcome):
    st.authorizations.append({
        "client_id": q.get("client_id"), "redirect_uri": q.get("redirect_uri"),
        "state": q.get("state"), "scope": q.get("scope"), "login_hint": q.get("login_hint"),
        "domain_hint": q.get("domain_hint"), "prompt": q.get("prompt"),
        "code_challenge_method": q.get("code_challenge_method"), "outcome": outcome,
        "time": time.time()})
    del st.authorizations[:-AUTHORIZATIONS_KEPT]


def _outcome_error(signin):
    o = signin["outcome"]
    if o == "decline":
        return Redirect("access_denied", 65004, "User declined to consent to access the app.")
    if o == "consent_required":
        return Redirect("consent_required", 65001,
                        "The user or administrator has not consented to use the application. "
                        "Send an interactive authorization request for this user and resource.")
    if o == "mfa_denied":
        return Redirect("access_denied", 500121,
                        "Authentication failed during strong authentication request.")
    if o == "blocked":
        return Redirect("access_denied", 53003, CA_BLOCK_TEXT)
    return None


def _issue_code(st, q, kind, parsed, account):
    resource, res_scopes, perms, oidc = parsed
    code = "1.AQ" + b64url(os.urandom(32)) + "CANARY" + b64url(os.urandom(64))
    now = time.time()
    st.codes[code] = {
        "client_id": q["client_id"], "redirect_uri": q["redirect_uri"], "kind": kind,
        "challenge": q["code_challenge"], "scope": q["scope"], "resource": resource,
        "res_scopes": res_scopes, "perms": perms, "oidc": oidc, "account": account,
        "expires_at": now + int(st.lifetimes["auth_code"]), "used": False}
    st.issued.append(code)
    return code


def authorize(handler, tenant):
    """GET /{tenant}/oauth2/v2.0/authorize. Errors about the client or the
    redirect URI are answered here (JSON, 400: a browser would show a
    page); every later one is redirected with error, error_description
    and state."""
    st = handler.st
    with st.lock:
        st.counters["authorize"] += 1
    handler.check_tenant(tenant)
    q = _query(handler)
    if not q.get("client_id"):
        raise missing("client_id")
    if q["client_id"] != st.client_id:
        raise handler.unknown_client(q["client_id"])
    uri = q.get("redirect_uri")
    if not uri:
        raise missing("redirect_uri")
    failed = None
    with st.lock:
        kind = redirect_kind(st, uri)
        if kind is None:
            _log(st, q, "bad_redirect_uri")
            raise EntraError(400, "invalid_request", 50011,
                             "The redirect URI '%s' specified in the request does not match the "
                             "redirect URIs configured for the application '%s'."
                             % (uri[:200], st.client_id))
        try:
            parsed = _check_request(st, q)
            if not st.signins:
                _log(st, q, "waiting")
                signin = None
            else:
                signin = st.signins.pop(0)
                err = _outcome_error(signin)
                if err is None and st.condition_for(signin["account"]["oid"], parsed[0],
                                                    ("block",)):
                    err = Redirect("access_denied", 53003, CA_BLOCK_TEXT)
                if err is not None:
                    _log(st, q, signin["outcome"])
                    raise err
                st.satisfy_conditions(signin["account"]["oid"], parsed[0])
                code = _issue_code(st, q, kind, parsed, signin["account"])
                _log(st, q, "approve")
        except Redirect as e:
            failed = e  # answered below, without the lock
    if failed is not None:
        return _redirect_error(handler, uri, q.get("state"), failed)
    if signin is None:
        return handler.send(200, "<html><head><title>Sign in to your account</title></head>"
                                 "<body>Emulated sign-in page: nobody signs in until "
                                 "/_control/signin_next is called.</body></html>\n",
                            ctype="text/html; charset=utf-8")
    _redirect_to(handler, uri, {"code": code, "state": q.get("state"),
                                "session_state": handler.trace_id})


def _redirect_error(handler, uri, state, e):
    desc = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
        e.code, e.text, handler.trace_id, handler.corr_id,
        time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()))
    _redirect_to(handler, uri, {
        "error": e.error, "error_description": desc,
        "error_uri": "https://login.microsoftonline.com/error?code=%d" % e.code,
        "state": state})


# ---------------------------------------------------------------- token grants

def code_kind(st, form):
    """"web" -> confidential, "public", or None for an unknown code."""
    rec = st.codes.get(form.get("code", ""))
    if rec is None:
        return None
    return "confidential" if rec["kind"] == "web" else "public"


def redeem(handler, form, client_id, acr):
    """grant_type=authorization_code (client_id: the authenticated one)."""
    st = handler.st
    code = form.get("code")
    if not code:
        raise missing("code")
    with st.lock:
        rec = st.codes.get(code)
        if rec is None or rec["client_id"] != client_id:
            raise EntraError(400, "invalid_grant", 70000,
                             "Provided grant is invalid or malformed.")
        if rec["used"]:
            raise EntraError(400, "invalid_grant", 54005,
                             "OAuth2 Authorization code was already redeemed, please retry with "
                             "a new valid code or use an existing refresh token.")
        if time.time() >= rec["expires_at"]:
            raise EntraError(400, "invalid_grant", 70008,
                             "The provided authorization code or refresh token has expired due "
                             "to inactivity. Send a new interactive authorization request for "
                             "this user and resource.")
        if form.get("redirect_uri") != rec["redirect_uri"]:
            raise EntraError(400, "invalid_grant", 70000,
                             "Provided grant is invalid or malformed: the redirect_uri does not "
                             "match the one of the authorization request.")
        verifier = form.get("code_verifier")
        if not verifier:
            raise missing("code_verifier")
        want = b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
        if not PKCE_RE.fullmatch(verifier) or not secrets.compare_digest(want, rec["challenge"]):
            raise EntraError(400, "invalid_grant", 501481,
                             "The Code_Verifier does not match the code_challenge supplied in "
                             "the authorization request.")
        rec["used"] = True  # single use from here on, whatever follows
        st.client_secrets.append(verifier)  # credd's: leak checks look for it
        account = rec["account"]
        c = st.condition_for(account["oid"], rec["resource"], ("block",))
        if c is not None:
            raise OPS.condition_error(c)
        body = OPS.mint_tokens(st, account, rec["resource"], rec["res_scopes"], rec["perms"],
                               rec["oidc"], form.get("client_info") == "1", acr=acr,
                               confidential=rec["kind"] == "web")
        if "refresh_token" in body:
            new = st.rts[body["refresh_token"]]
            new["scope"], new["resource"] = rec["scope"], rec["resource"]
    handler.send(200, body)


def client_credentials(handler, form, acr, client_id=None):
    """grant_type=client_credentials: an app token for R/.default, for
    the main app or a second one (emu_graph.py, its own roles)."""
    st = handler.st
    scope = form.get("scope", "")
    if not scope.strip():
        raise missing("scope")
    items = scope.split()
    if len(items) != 1 or not items[0].endswith("/.default"):
        raise EntraError(400, "invalid_scope", 1002012,
                         "The provided value for scope %s is not valid. Client credential flows "
                         "must have a scope value with /.default suffixed to the resource "
                         "identifier (application ID URI)." % scope[:200])
    resource = items[0][:-len("/.default")]
    now = int(time.time())
    with st.lock:
        life = int(st.lifetimes["access_token"])
        client_id = client_id or st.client_id
        sp = str(uuid_from(client_id))
        if client_id != st.client_id:
            roles = emu_graph.app_roles(st, client_id)
        else:
            roles = list(st.app_roles.get(resource, []))
        claims = {"aud": resource, "iss": "%s/%s/v2.0" % (st.authority, st.tenant),
                  "iat": now, "nbf": now, "exp": now + life, "azp": client_id,
                  "azpacr": acr, "idtyp": "app", "oid": sp, "sub": sp, "tid": st.tenant,
                  "roles": roles,
                  "uti": b64url(os.urandom(16)), "ver": "2.0"}
        at = st.keys.sign_jwt(claims)
        st.issued.append(at)
    handler.send(200, {"token_type": "Bearer", "expires_in": life, "ext_expires_in": life,
                       "access_token": at})


def uuid_from(text):
    """A stable GUID for the app's service principal."""
    h = hashlib.sha256(("sp:" + text).encode()).hexdigest()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])


# ---------------------------------------------------------------- control API

def c_signin_next(st, body):
    """Queues who signs in at the next authorize request, and how it ends."""
    outcome = body.get("outcome", "approve")
    if outcome not in OUTCOMES:
        raise ControlError("'outcome' must be one of %s" % ", ".join(OUTCOMES))
    username = c_str(body, "preferred_username")
    account = {"oid": c_str(body, "oid"), "preferred_username": username,
               "tid": c_str(body, "tid", False) or st.tenant, "upn": c_str(body, "upn", False),
               "name": c_str(body, "name", False) or username.split("@")[0]}
    st.signins.append({"account": account, "outcome": outcome})
    return {"queued": len(st.signins)}


def c_authorizations(st, body):
    return {"authorizations": [dict(a) for a in st.authorizations]}


def c_register_redirect(st, body):
    uri, kind = c_str(body, "uri"), body.get("kind", "web")
    if kind not in ("web", "public"):
        raise ControlError("'kind' must be web or public")
    u = urllib.parse.urlsplit(uri)
    if u.scheme not in ("https", "http") or not u.netloc or u.fragment:
        raise ControlError("'uri' must be an absolute http(s) URI without a fragment")
    if u.scheme == "http" and u.hostname not in ("localhost", "127.0.0.1"):
        raise ControlError("http redirect URIs must be loopback (Entra's rule)")
    st.redirects[kind].add(uri)
    return {"redirects": {k: sorted(v) for k, v in st.redirects.items()}}


def c_block_device_flow(st, body):
    """Conditional Access on the device code flow: at "poll" (default) the
    approved flow of oid (or anyone) is refused with 53003 when redeemed;
    at "start" the devicecode endpoint itself refuses."""
    at = body.get("at", "poll")
    if at not in ("poll", "start"):
        raise ControlError("'at' must be poll or start")
    oid = c_str(body, "oid", False)
    if at == "start" and oid is not None:
        raise ControlError("'oid' is unknown when a flow starts: use at=poll")
    st.device_blocks.append({"oid": oid, "at": at})


def c_app_roles(st, body):
    """Application permissions granted to the app for a resource (the
    client_credentials token's "roles")."""
    roles = body.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise ControlError("'roles' must be a list of strings")
    st.app_roles[c_str(body, "resource")] = list(roles)


CONTROL = {
    ("POST", "signin_next"): c_signin_next,
    ("GET", "authorizations"): c_authorizations,
    ("POST", "register_redirect"): c_register_redirect,
    ("POST", "block_device_flow"): c_block_device_flow,
    ("POST", "app_roles"): c_app_roles,
}
