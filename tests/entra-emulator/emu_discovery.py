# emu_discovery.py - the OpenID discovery document in the emulator (tests
# only): GET /<tenant>/v2.0/.well-known/openid-configuration as Entra
# serves it (tenant-specific issuer, or the literal {tenantid} for common
# and organizations; every endpoint; Cache-Control: max-age=86400,
# private), and the knobs credd's discovery tests turn:
#   POST /_control/discovery {"mode": M, "max_age": N, "delay": S,
#                             "foreign": "https://host:port"}
#     mode ok (default) | 500 | 503 | slow (delay seconds, then ok) |
#          reset (the connection dropped) | foreign_token (token_endpoint on
#          the foreign host) | foreign_device | wrong_issuer | http_token
#          (token_endpoint over http://) | garbage | no_device
#     max_age: the Cache-Control max-age sent (default 86400; null: none)
#   POST /_control/id_token_issuer {"issuer": "https://..." | null}: every
#     id_token minted from now on carries this iss (a lying IdP).
#   GET /_control/discovery: the knobs and how many documents were served.
# Never prints a token.

import time

import emu_authcode

from emu_errors import ControlError, EntraError

MODES = ("ok", "500", "503", "slow", "reset", "foreign_token", "foreign_device",
         "wrong_issuer", "http_token", "garbage", "no_device")


def new_state():
    return {"mode": "ok", "max_age": 86400, "delay": 5, "foreign": "https://127.0.0.1:9",
            "id_token_iss": None, "served": 0}


def document(st, tenant):
    a, t = st.authority, tenant
    tid = st.tenant if tenant == st.tenant else "{tenantid}"
    return {
        "token_endpoint": "%s/%s/oauth2/v2.0/token" % (a, t),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                  "client_secret_basic"],
        "jwks_uri": "%s/%s/discovery/v2.0/keys" % (a, t),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": "%s/%s/v2.0" % (a, tid),
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": "%s/%s/oauth2/v2.0/authorize" % (a, t),
        "device_authorization_endpoint": "%s/%s/oauth2/v2.0/devicecode" % (a, t),
        "http_logout_supported": True, "frontchannel_logout_supported": True,
        "end_session_endpoint": "%s/%s/oauth2/v2.0/logout" % (a, t),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "tid",
                             "preferred_username", "upn", "ver"],
        "tenant_region_scope": "WW", "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net", "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"}


def serve(h, tenant):
    """The document for tenant, as the knobs say."""
    st = h.st
    with st.lock:
        st.counters["discovery"] += 1
        d = dict(st.disco)
        st.disco["served"] += 1
    if d["mode"] == "slow":
        time.sleep(d["delay"])
    elif d["mode"] in ("500", "503"):
        raise EntraError(int(d["mode"]), "temporarily_unavailable", 90033,
                         "A transient error has occurred. Please try again.")
    elif d["mode"] == "reset":
        return h.reset_connection()
    elif d["mode"] == "garbage":
        return h.send(200, "<html><body>Sign in to the network</body></html>\n",
                      ctype="text/html; charset=utf-8")
    h.check_tenant(tenant)
    doc = document(st, tenant)
    t = "%s/oauth2/v2.0/token" % tenant
    if d["mode"] == "foreign_token":
        doc["token_endpoint"] = "%s/%s" % (d["foreign"], t)
    elif d["mode"] == "foreign_device":
        doc["device_authorization_endpoint"] = "%s/%s/oauth2/v2.0/devicecode" % (
            d["foreign"], tenant)
    elif d["mode"] == "wrong_issuer":
        doc["issuer"] = "https://sts.example.net/%s/v2.0" % st.tenant
    elif d["mode"] == "http_token":
        doc["token_endpoint"] = doc["token_endpoint"].replace("https://", "http://", 1)
    elif d["mode"] == "no_device":
        del doc["device_authorization_endpoint"]
    headers = {}
    if d["max_age"] is not None:
        headers["Cache-Control"] = "max-age=%d, private" % d["max_age"]
    h.send(200, doc, no_store=False, headers=headers)


def c_discovery(st, body):
    d = st.disco
    if "mode" in body:
        if body["mode"] not in MODES:
            raise ControlError("'mode' must be one of %s" % ", ".join(MODES))
        d["mode"] = body["mode"]
    if "max_age" in body:
        v = body["max_age"]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ControlError("'max_age' must be a number of seconds or null")
        d["max_age"] = v
    if "delay" in body:
        v = body["delay"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ControlError("'delay' must be a number of seconds")
        d["delay"] = v
    if "foreign" in body:
        v = body["foreign"]
        if not isinstance(v, str) or not v.startswith("https://"):
            raise ControlError("'foreign' must be an https:// URL")
        d["foreign"] = v.rstrip("/")
    return {"discovery": {k: v for k, v in d.items() if k != "id_token_iss"}}


def c_discovery_get(st, body):
    return {"discovery": {k: v for k, v in st.disco.items() if k != "id_token_iss"}}


def c_id_token_issuer(st, body):
    v = body.get("issuer")
    if v is not None and not isinstance(v, str):
        raise ControlError("'issuer' must be a string or null")
    st.disco["id_token_iss"] = v


def c_authority(st, body):
    """The name the emulator calls itself in documents, issuers and
    audiences (default https://127.0.0.1:PORT): a test that reaches it by
    another name (fault.dns) sets that name, as Entra's documents name
    the host clients reach it by."""
    v = body.get("authority")
    if not isinstance(v, str) or not v.startswith("https://") or "/" in v[len("https://"):]:
        raise ControlError("'authority' must be https://host[:port] with no path")
    st.authority = v
    st.redirects["public"] |= emu_authcode.default_public_redirects(v)
    return {"authority": v}


def reset(st):
    served = st.disco["served"]
    st.disco = new_state()
    st.disco["served"] = served


CONTROL = {
    ("POST", "discovery"): c_discovery,
    ("GET", "discovery"): c_discovery_get,
    ("POST", "id_token_issuer"): c_id_token_issuer,
    ("POST", "authority"): c_authority,
}
