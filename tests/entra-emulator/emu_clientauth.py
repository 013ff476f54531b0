# emu_clientauth.py - client authentication for the Entra emulator (tests
# only): the app's registered credentials (a client secret, public
# certificates, federated identity credentials) and Entra's rule on which
# flows carry one.
#
# Public-client flows (device code, paste-back code flows with a
# nativeclient or http://localhost redirect, and their refreshes) must carry
# no credential: 401 invalid_client AADSTS700025. Confidential flows (the
# web code flow, its refreshes, client_credentials) must carry one: 401
# AADSTS7000218 when missing, 7000215 for a wrong secret, 700027 for an
# assertion whose signature or claims do not hold. A replayed jti within
# the assertion's lifetime is accepted, as Entra does.
#
# Never logs or echoes a secret or an assertion.

import base64
import hashlib
import json
import secrets
import ssl
import time
import urllib.parse
import urllib.request

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from emu_errors import ControlError, EntraError, c_str

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FIC_AUDIENCE = "api://AzureADTokenExchange"
NBF_LEEWAY = 60  # seconds an nbf/iat may lie in the future (clock skew)
JWKS_TIMEOUT = 5


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AppCredentials:
    """What the app registration accepts; all access under the state lock."""

    def __init__(self, secret=None):
        self.secret = secret
        self.certs = {}      # x5t#S256 -> certificate
        self.certs_sha1 = {}  # x5t -> certificate
        self.federated = []  # {"issuer", "subject", "audience", "jwks"?, "jwks_uri"?}

    def has_any(self):
        return bool(self.secret or self.certs or self.federated)


# ---------------------------------------------------------------- errors

def public_with_credential():
    return EntraError(401, "invalid_client", 700025,
                      "Client is public so neither 'client_assertion' nor 'client_secret' "
                      "should be presented.")


def no_credential():
    return EntraError(401, "invalid_client", 7000218,
                      "The request body must contain the following parameter: "
                      "'client_assertion' or 'client_secret'.")


def bad_secret(client_id):
    return EntraError(401, "invalid_client", 7000215,
                      "Invalid client secret provided. Ensure the secret being sent in the "
                      "request is the client secret value, not the client secret ID, for a "
                      "secret added to app '%s'." % client_id)


def bad_assertion(why):
    return EntraError(401, "invalid_client", 700027,
                      "Client assertion failed signature validation. %s" % why)


# ---------------------------------------------------------------- what was presented

def presented(form, headers):
    """(client_id, secret, assertion) from the form and HTTP Basic. Raises
    EntraError for a malformed Basic header, a client_id that disagrees
    with it, or a client_assertion of another type."""
    client_id, secret = form.get("client_id"), form.get("client_secret")
    auth = headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            user, _, pw = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise EntraError(401, "invalid_client", 7000215, "Malformed Basic authorization.")
        user, pw = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(pw)
        if client_id and client_id != user:
            raise EntraError(400, "invalid_request", 900144,
                             "The client_id in the request body does not match the client "
                             "credentials in the Authorization header.")
        client_id, secret = user, pw if secret is None else secret
    assertion = form.get("client_assertion")
    atype = form.get("client_assertion_type")
    if assertion is not None and atype != JWT_BEARER:
        raise EntraError(400, "invalid_request", 900144,
                         "The request body must contain the following parameter: "
                         "'client_assertion_type' (%s)." % JWT_BEARER)
    if assertion is not None and secret is not None:
        raise EntraError(401, "invalid_client", 700027,
                         "Only one client credential may be presented: both "
                         "'client_assertion' and 'client_secret' were sent.")
    return client_id, secret, assertion


def authenticate(creds, client_id, kind, secret, assertion, token_urls, now=None):
    """Checks the credential against the flow kind ("public",
    "confidential", or None when the flow is not known yet: a credential
    is then checked if present). Returns the azpacr value: "0" none, "1"
    secret, "2" assertion (certificate or federated)."""
    has = secret is not None or assertion is not None
    if kind == "public" and has:
        raise public_with_credential()
    if kind == "confidential" and not has:
        raise no_credential()
    if not has:
        return "0"
    if secret is not None:
        if not creds.secret or not secrets.compare_digest(secret.encode(), creds.secret.encode()):
            raise bad_secret(client_id)
        return "1"
    verify_assertion(creds, client_id, assertion, token_urls, now or time.time())
    return "2"


# ---------------------------------------------------------------- assertions

def _split(jwt):
    parts = jwt.split(".")
    if len(parts) != 3 or not all(parts):
        raise bad_assertion("The assertion is not a JWS in compact serialization.")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except ValueError:
        raise bad_assertion("The assertion could not be decoded.")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise bad_assertion("The assertion could not be decoded.")
    return header, claims, (parts[0] + "." + parts[1]).encode("ascii"), sig


def _verify_sig(pub, alg, data, sig):
    try:
        if alg == "RS256":
            pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256":
            pub.verify(sig, data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                       hashes.SHA256())
        else:
            raise bad_assertion("Unsupported algorithm '%s' (RS256 or PS256)." % str(alg)[:16])
    except InvalidSignature:
        raise bad_assertion("Signature is invalid.")
    except (TypeError, ValueError):
        raise bad_assertion("Signature is invalid.")


def _check_times(claims, now):
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise bad_assertion("The assertion has no numeric 'exp'.")
    if exp <= now:
        raise bad_assertion("The assertion has expired (exp %d, now %d)." % (exp, int(now)))
    if isinstance(nbf, int) and nbf > now + NBF_LEEWAY:
        raise bad_assertion("The assertion is not yet valid (nbf %d)." % nbf)


def _certificate(creds, header):
    cert = None
    if isinstance(header.get("x5t#S256"), str):
        cert = creds.certs.get(header["x5t#S256"])
    if cert is None and isinstance(header.get("x5t"), str):
        cert = creds.certs_sha1.get(header["x5t"])
    if cert is None:
        raise bad_assertion("The key was not found: no registered certificate has the "
                            "thumbprint in 'x5t#S256' or 'x5t'.")
    return cert


def _jwks_keys(fic):
    jwks = fic.get("jwks")
    if jwks is None and fic.get("jwks_uri"):
        ctx = ssl.create_default_context(cafile=fic.get("ca_file"))
        try:
            with urllib.request.urlopen(fic["jwks_uri"], timeout=JWKS_TIMEOUT,
                                        context=ctx) as r:
                jwks = json.loads(r.read(1 << 20))
        except (OSError, ValueError):
            raise bad_assertion("The issuer's keys could not be fetched.")
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    return keys if isinstance(keys, list) else []


def _rsa_from_jwk(k):
    try:
        n = int.from_bytes(b64url_decode(k["n"]), "big")
        e = int.from_bytes(b64url_decode(k["e"]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    except (KeyError, TypeError, ValueError):
        return None


def _verify_federated(creds, claims, header, data, sig, now):
    iss = claims.get("iss")
    fics = [f for f in creds.federated if f["issuer"] == iss]
    if not fics:
        raise bad_assertion("No federated identity credential matches the issuer.")
    sub, aud = claims.get("sub"), claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    fics = [f for f in fics if f["subject"] == sub]
    if not fics:
        raise bad_assertion("No federated identity credential matches the subject.")
    fics = [f for f in fics if f["audience"] in auds]
    if not fics:
        raise bad_assertion("The assertion audience is not the credential's audience "
                            "(%s)." % FIC_AUDIENCE)
    fic = fics[0]
    kid = header.get("kid")
    for k in _jwks_keys(fic):
        if not isinstance(k, dict) or k.get("kty") != "RSA":
            continue
        if kid is not None and k.get("kid") not in (None, kid):
            continue
        pub = _rsa_from_jwk(k)
        if pub is None:
            continue
        _verify_sig(pub, header.get("alg"), data, sig)
        _check_times(claims, now)
        return
    raise bad_assertion("No key of the issuer matches the assertion's 'kid'.")


def verify_assertion(creds, client_id, jwt, token_urls, now):
    """A certificate assertion (iss = client_id) or a federated one (iss =
    a registered issuer). Raises EntraError 700027 on any failure."""
    header, claims, data, sig = _split(jwt)
    if claims.get("iss") == client_id:
        cert = _certificate(creds, header)
        _verify_sig(cert.public_key(), header.get("alg"), data, sig)
        if claims.get("sub") != client_id:
            raise bad_assertion("The assertion 'sub' must be the client id.")
        if claims.get("aud") not in token_urls:
            raise bad_assertion("The assertion 'aud' must be the token endpoint.")
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            raise bad_assertion("The assertion has no 'jti'.")
        _check_times(claims, now)
        return
    _verify_federated(creds, claims, header, data, sig, now)


# ---------------------------------------------------------------- control API

def c_register_certificate(st, body):
    pem = c_str(body, "pem")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        raise ControlError("'pem' must be a PEM certificate")
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise ControlError("the certificate's key must be RSA")
    der = cert.public_bytes(serialization.Encoding.DER)
    s256, s1 = b64url(hashlib.sha256(der).digest()), b64url(hashlib.sha1(der).digest())
    st.creds.certs[s256] = cert
    st.creds.certs_sha1[s1] = cert
    return {"x5t#S256": s256, "x5t": s1}


def c_register_federated(st, body):
    fic = {"issuer": c_str(body, "issuer"), "subject": c_str(body, "subject"),
           "audience": c_str(body, "audience", False) or FIC_AUDIENCE}
    jwks, uri = body.get("jwks"), c_str(body, "jwks_uri", False)
    if (jwks is None) == (uri is None):
        raise ControlError("exactly one of 'jwks' (an object) and 'jwks_uri' is required")
    if jwks is not None:
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ControlError("'jwks' must be {\"keys\": [...]}")
        fic["jwks"] = jwks
    else:
        if not uri.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ControlError("'jwks_uri' must be https:// (or http on loopback)")
        fic["jwks_uri"] = uri
        fic["ca_file"] = c_str(body, "ca_file", False)
    if len(st.creds.federated) >= 20:  # Entra: at most 20 per app
        raise ControlError("at most 20 federated identity credentials", 409)
    st.creds.federated.append(fic)


def c_clear_credentials(st, body):
    """Drops registered certificates and federated credentials (the
    --client-secret-file secret stays)."""
    st.creds.certs, st.creds.certs_sha1, st.creds.federated = {}, {}, []


CONTROL = {
    ("POST", "register_certificate"): c_register_certificate,
    ("POST", "register_federated"): c_register_federated,
    ("POST", "clear_credentials"): c_clear_credentials,
}
