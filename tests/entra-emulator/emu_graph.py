# emu_graph.py - the Microsoft Graph part of the emulator: a second app
# registration (the offboarding admin app: client_credentials only, with
# its own secret or certificate and its own application permissions), and
# POST /v1.0/users/{id|upn}/revokeSignInSessions with Graph's checks: a
# bearer app token this emulator minted for the Graph resource, carrying
# the User.RevokeSessions.All role (else 403 Authorization_RequestDenied),
# a known user (else 404 Request_ResourceNotFound). Its effect is Entra's:
# the user's refresh tokens die (AADSTS50173 at the next refresh) and live
# CAE tokens are challenged (the critical event of emu_cae.py).
#
# Control: POST /_control/register_app {client_id, secret?, certificate?
# (PEM), roles?}, POST /_control/app_permissions {client_id, roles},
# GET /_control/graph_revokes.

import hashlib
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from emu_crypto import b64url
import emu_cae
import emu_clientauth
from emu_errors import ControlError, c_str

PERMISSION = "User.RevokeSessions.All"


def new_state():
    return {"apps": {}, "roles": {}, "revokes": []}


def app_creds(st, client_id):
    """The credentials of a registered second app, or None."""
    return st.graph["apps"].get(client_id)


def app_roles(st, client_id):
    return list(st.graph["roles"].get(client_id, []))


def _error(handler, status, code, message):
    handler.send(status, {"error": {"code": code, "message": message,
                                    "innerError": {"request-id": str(uuid.uuid4()),
                                                   "date": time.strftime("%Y-%m-%dT%H:%M:%S")}}})


def _find_oid(st, ident):
    """The oid of a user the emulator knows (from its refresh tokens),
    named by oid or UPN / preferred_username (case-insensitive)."""
    low = ident.lower()
    for rec in st.rts.values():
        a = rec.get("account") or {}
        names = [a.get("oid"), a.get("preferred_username"), a.get("upn")]
        if any(n is not None and n.lower() == low for n in names):
            return a.get("oid")
    return None


def revoke_sessions(handler, method, parts):
    """POST /v1.0/users/{id}/revokeSignInSessions; parts: users, id, action."""
    st = handler.st
    handler.read_body()
    if method != "POST":
        return _error(handler, 405, "Request_BadRequest", "Only POST is supported.")
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return _error(handler, 401, "InvalidAuthenticationToken", "Access token is empty.")
    ident = parts[1]
    with st.lock:
        claims = emu_cae._token_claims(st, auth[7:].strip())
        now = time.time()
        if claims is None or claims.get("exp", 0) <= now or claims.get("aud") != st.authority:
            st.graph["revokes"].append({"id": ident, "status": 401})
            return _error(handler, 401, "InvalidAuthenticationToken",
                          "Access token validation failure. Invalid audience.")
        if claims.get("idtyp") != "app" or PERMISSION not in claims.get("roles", []):
            st.graph["revokes"].append({"id": ident, "status": 403})
            return _error(handler, 403, "Authorization_RequestDenied",
                          "Insufficient privileges to complete the operation.")
        oid = _find_oid(st, ident)
        if oid is None:
            st.graph["revokes"].append({"id": ident, "status": 404})
            return _error(handler, 404, "Request_ResourceNotFound",
                          "Resource '%s' does not exist or one of its queried reference-property "
                          "objects are not present." % ident[:100])
        # Entra's effect: refresh tokens issued so far die (50173), and
        # the resource challenges CAE tokens issued before now.
        st.revoked[oid] = (st.seq, now)
        st.cae["events"][oid] = int(now)
        st.graph["revokes"].append({"id": ident, "oid": oid, "status": 200,
                                    "azp": claims.get("azp")})
    handler.send(200, {"@odata.context":
                       "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
                       "value": True})


# ---------------------------------------------------------------- control API

def _roles(body):
    roles = body.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise ControlError("'roles' must be a list of strings")
    return list(roles)


def c_register_app(st, body):
    client_id = c_str(body, "client_id")
    if client_id == st.client_id:
        raise ControlError("the second app needs a client_id of its own")
    creds = emu_clientauth.AppCredentials(c_str(body, "secret", False))
    pem = c_str(body, "certificate", False)
    if pem is not None:
        try:
            cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
        except ValueError:
            raise ControlError("'certificate' must be a PEM certificate")
        der = cert.public_bytes(serialization.Encoding.DER)
        creds.certs[b64url(hashlib.sha256(der).digest())] = cert
        creds.certs_sha1[b64url(hashlib.sha1(der).digest())] = cert
    if not creds.has_any():
        raise ControlError("a second app needs 'secret' or 'certificate'")
    st.graph["apps"][client_id] = creds
    st.graph["roles"][client_id] = _roles(body)
    return {"client_id": client_id}


def c_app_permissions(st, body):
    client_id = c_str(body, "client_id")
    if client_id not in st.graph["apps"]:
        raise ControlError("no such app registered", 404)
    st.graph["roles"][client_id] = _roles(body)
    return {"roles": st.graph["roles"][client_id]}


def c_graph_revokes(st, body):
    return {"revokes": [dict(r) for r in st.graph["revokes"]]}


CONTROL = {
    ("POST", "register_app"): c_register_app,
    ("POST", "app_permissions"): c_app_permissions,
    ("GET", "graph_revokes"): c_graph_revokes,
}
