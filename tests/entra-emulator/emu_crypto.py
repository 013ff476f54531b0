# emu_crypto.py - key material and JWTs for the Entra emulator (tests only).
#
# Per run: a test CA (EC P-256, CA:TRUE, keyCertSign), a TLS server
# certificate for 127.0.0.1 / localhost / emulator.credd.test signed by it,
# and an RSA-2048 token
# signing key with a CA-signed certificate (kid = x5t = base64url SHA-1 of
# the DER certificate, as Entra publishes it). JWTs are RS256.
#
# The leak marker: every JWT carries the claim "xcanary" whose value contains
# "CANARY" and whose bytes are placed so that the base64url text of the
# payload contains "CanArY". The upper-case word itself cannot appear in the
# base64url of any JSON text: every alignment of "CANARY" decodes to a
# control byte (0x00, 0x01, 0x04 or 0x08), which JSON forbids. So leak checks
# grep case-insensitively for "canary".

import base64
import datetime
import hashlib
import json
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The bytes "Bjp+`", with "B" at a payload offset of 2 mod 3, encode to
# "...CanArY..." in base64url.
_MARK_BYTES = "Bjp+`"
JWT_MARKER = "CanArY"
TEST_DNS_NAME = "emulator.credd.test"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "credd tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class KeyMaterial:
    """Generates and holds the CA, the TLS server identity and the JWT signing key."""

    def __init__(self, cert_mode="good"):
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)

        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("credd test CA %s" % os.urandom(4).hex())
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key())
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ca_ski, critical=False)
            .sign(self.ca_key, hashes.SHA256()))
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)

        def leaf(key, cn, san, eku, start=start, end=end):
            b = (x509.CertificateBuilder()
                 .subject_name(_name(cn)).issuer_name(ca_name)
                 .public_key(key.public_key())
                 .serial_number(x509.random_serial_number())
                 .not_valid_before(start).not_valid_after(end)
                 .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                 .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                              key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                                              data_encipherment=False, key_agreement=False,
                                              key_cert_sign=False, crl_sign=False,
                                              encipher_only=False, decipher_only=False),
                                critical=True)
                 .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                critical=False)
                 .add_extension(aki, critical=False))
            if eku:
                b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            if san:
                b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
            return b.sign(self.ca_key, hashes.SHA256())

        import ipaddress
        self.server_key = ec.generate_private_key(ec.SECP256R1())
        # cert_mode (TLS failure tests): "expired" ended a day ago;
        # "wronghost" names only wrong.example.invalid.
        # emulator.credd.test: a name only a test's own DNS server answers
        # (tests/fault/test_dns.py); ".test" is reserved (RFC 2606).
        san = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
               x509.DNSName(TEST_DNS_NAME)]
        s_start, s_end = start, end
        if cert_mode == "expired":
            s_start, s_end = now - datetime.timedelta(days=3), now - datetime.timedelta(days=1)
        elif cert_mode == "wronghost":
            san = [x509.DNSName("wrong.example.invalid")]
        self.server_cert = leaf(self.server_key,
                                "wrong.example.invalid" if cert_mode == "wronghost" else "localhost",
                                san, [ExtendedKeyUsageOID.SERVER_AUTH], s_start, s_end)

        self.sign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sign_cert = leaf(self.sign_key, "credd test token signing", None, None)
        der = self.sign_cert.public_bytes(serialization.Encoding.DER)
        self.kid = b64url(hashlib.sha1(der).digest())
        self.sign_cert_der = der

    def write(self, state_dir):
        """Writes ca.pem, server.pem and server.key (0600) into state_dir."""
        def put(name, data, mode=0o644):
            path = os.path.join(state_dir, name)
            tmp = path + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
            return path
        self.ca_path = put("ca.pem", _pem(self.ca_cert))
        self.cert_path = put("server.pem", _pem(self.server_cert))
        self.key_path = put("server.key", self.server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), 0o600)

    def jwks(self, issuer):
        pub = self.sign_key.public_key().public_numbers()
        n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
        e = pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big")
        return {"keys": [{
            "kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
            "n": b64url(n), "e": b64url(e),
            "x5c": [base64.b64encode(self.sign_cert_der).decode("ascii")],
            "issuer": issuer}]}

    def sign_jwt(self, claims):
        """RS256 JWT over claims plus the "xcanary" marker claim (see header comment)."""
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = dict(claims)
        claims.pop("xcanary", None)
        head = "CANARY-" + os.urandom(4).hex() + "-"
        for pad in range(3):
            claims["xcanary"] = head + "x" * pad + _MARK_BYTES
            raw = json.dumps(claims, separators=(",", ":")).encode("ascii")
            if (raw.rindex(_MARK_BYTES.encode()) % 3) == 2:
                break
        signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(raw)
        assert JWT_MARKER in signing_input
        sig = self.sign_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(sig)
