# emu_cae.py - Continuous Access Evaluation in the emulator (tests only):
# the claims parameter of a token request (xms_cc cp1 earns a long-lived
# CAE token with refresh_in), a tiny protected resource (GET /_resource/NAME
# with "Authorization: Bearer <token>") that validates tokens the emulator
# minted and, after a "critical event" for a user, answers a CAE token
# issued before the event with 401 and
#   WWW-Authenticate: Bearer realm="", authorization_uri="...",
#                     error="insufficient_claims", claims="<base64 JSON>"
# (the JSON asks for {"access_token":{"nbf":{"essential":true,"value":"T"}}}:
# a token minted at or after the event satisfies it), and the control calls
# POST /_control/critical_event and /_control/cae_lifetimes.
# Never prints a token, the claims of a token, or an Authorization header.

import base64
import json
import time

from emu_errors import ControlError, EntraError, c_str

REALM_AUTHORIZE = "https://login.microsoftonline.com/common/oauth2/authorize"


def new_state():
    # Entra: CAE tokens live 20-28 h (observed expires_in 86399).
    return {"access_token": 86399, "refresh_in": 43200, "events": {},
            "challenges": 0, "claims_requests": 0, "cae_tokens": 0,
            "accepted": 0, "last_claims": None}


def parse_claims(st, text):
    """The token request's claims parameter as a dict (None when absent).
    Entra refuses claims that are not a JSON object."""
    if text is None:
        return None
    try:
        claims = json.loads(text)
    except ValueError:
        claims = None
    if not isinstance(claims, dict):
        raise EntraError(400, "invalid_request", 9002313,
                         "Invalid request. Request is malformed or invalid. "
                         "(claims is not a JSON object)")
    st.cae["claims_requests"] += 1
    st.cae["last_claims"] = claims
    return claims


def wants_cae(claims):
    """The client declared cp1 (xms_cc values, case-insensitive)."""
    try:
        values = claims["access_token"]["xms_cc"]["values"]
    except (KeyError, TypeError):
        return False
    return isinstance(values, list) and any(
        isinstance(v, str) and v.lower() == "cp1" for v in values)


def lifetime(st, claims, default_life, default_refresh_in):
    """(access token lifetime, refresh_in or None) for a token minted with claims."""
    if claims is not None and wants_cae(claims):
        st.cae["cae_tokens"] += 1
        return int(st.cae["access_token"]), st.cae["refresh_in"]
    return default_life, default_refresh_in


def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token_claims(st, token):
    """The claims of a token this emulator minted, or None (unknown, malformed)."""
    if token not in st.issued:
        return None
    try:
        return json.loads(_b64url_decode(token.split(".")[1]))
    except (ValueError, IndexError):
        return None


def _challenge(st, event_time):
    claims = {"access_token": {"nbf": {"essential": True, "value": str(int(event_time))}}}
    b64 = base64.b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode()
    st.cae["challenges"] += 1
    return ('Bearer realm="", authorization_uri="%s", error="insufficient_claims", '
            'claims="%s"' % (REALM_AUTHORIZE, b64))


def resource(handler, method):
    """GET /_resource/NAME: 200 for a valid token, 401 otherwise (a claims
    challenge for a CAE token issued before the user's critical event)."""
    st = handler.st
    handler.read_body()
    if method not in ("GET", "POST"):
        return handler.send(405, {"error": "method_not_allowed"})
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return handler.send(401, {"error": "invalid_token"},
                            headers={"WWW-Authenticate": 'Bearer realm=""'})
    with st.lock:
        claims = _token_claims(st, auth[7:].strip())
        now = time.time()
        if claims is None or claims.get("exp", 0) <= now:
            return handler.send(401, {"error": "invalid_token"},
                                headers={"WWW-Authenticate":
                                         'Bearer realm="", error="invalid_token"'})
        event = st.cae["events"].get(claims.get("oid"))
        is_cae = "cp1" in [str(v).lower() for v in claims.get("xms_cc", [])]
        if event is not None and is_cae and claims.get("nbf", 0) < int(event):
            # Only CAE tokens are evaluated continuously: an ordinary one
            # lives out its (short) life, as with Entra.
            return handler.send(401, {"error": "insufficient_claims"},
                                headers={"WWW-Authenticate": _challenge(st, event)})
        st.cae["accepted"] += 1
    handler.send(200, {"ok": True, "oid": claims.get("oid"), "aud": claims.get("aud"),
                       "cae": is_cae})


def c_critical_event(st, body):
    """A critical event for oid (session revoked, user disabled, password
    reset): the resource challenges its CAE tokens issued before now.
    revoke_refresh (default false) also revokes its refresh tokens
    (AADSTS50173 on the next refresh), as an admin's session revocation does."""
    oid = c_str(body, "oid")
    # Whole seconds: a token minted later in the same second has nbf >= it.
    now = int(time.time())
    st.cae["events"][oid] = now
    revoke = body.get("revoke_refresh", False)
    if not isinstance(revoke, bool):
        raise ControlError("'revoke_refresh' must be true or false")
    if revoke:
        st.revoked[oid] = (st.seq, time.time())
    return {"at": now}


def c_cae_lifetimes(st, body):
    for key in ("access_token",):
        if key in body:
            v = body[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ControlError("'%s' must be an integer >= 1" % key)
            st.cae[key] = v
    if "refresh_in" in body:
        v = body["refresh_in"]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ControlError("'refresh_in' must be null or an integer >= 1")
        st.cae["refresh_in"] = v
    return {"access_token": st.cae["access_token"], "refresh_in": st.cae["refresh_in"]}


def c_cae_counters(st, body):
    return {"challenges": st.cae["challenges"], "claims_requests": st.cae["claims_requests"],
            "cae_tokens": st.cae["cae_tokens"], "accepted": st.cae["accepted"],
            "last_claims": st.cae["last_claims"]}


CONTROL = {
    ("POST", "critical_event"): c_critical_event,
    ("POST", "cae_lifetimes"): c_cae_lifetimes,
    ("GET", "cae_counters"): c_cae_counters,
}
