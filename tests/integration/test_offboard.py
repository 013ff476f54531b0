#!/usr/bin/python3
"""Integration tests for offboarding that reaches Entra (issue 17 part 3):
Entra emulator (its second app registration and Graph's
revokeSignInSessions, tests/entra-emulator/emu_graph.py) + credd with an
[offboarding] credential + credctl admin revoke --entra, real Unix users.

Run as root (CTest passes CREDD_BIN, CREDCTL_BIN and EMULATOR):
    /usr/bin/python3 tests/integration/test_offboard.py [--keep] [unittest args]
Not root: prints a skip message and exits 77.

What it proves: `credctl admin revoke USER --entra` with a secret and
with a certificate credential asks Graph (as the offboarding app, never
the [entra] one) to revoke the user's sessions, purges locally, and the
user's next token on the node is the sign-in answer, not a cached token;
without [offboarding] it says so and still purges; a Graph 403 is
reported naming User.RevokeSessions.All, the local purge still runs, and
both are audited; --all refuses without a confirmation; no secret (the
offboarding secret, the app token) reaches a log. FIGURES: time from the
command to the user being refused on the node.
"""

import datetime
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness as H  # noqa: E402 (found next to this file)
from harness import EXIT_ACT, EXIT_MISCONF, EXIT_OK, EXIT_USAGE  # noqa: E402

ALICE, BOB, CAROL = "entra_alice", "entra_bob", "entra_carol"
OFF_ID = "99999999-8888-7777-6666-555555555555"
OFF_SECRET = "CANARY-offboard-secret-5d1e"
PERMISSION = "User.RevokeSessions.All"
FIGURES = {}


def setUpModule():
    H.global_setup()


def tearDownModule():
    H.global_teardown(keep=any(s.failed for s in H.ALL_STACKS))


def write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def make_certificate():
    """A self-signed RSA certificate and its key: (cert PEM, cert+key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "credd offboarding")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cpem = cert.public_bytes(serialization.Encoding.PEM)
    kpem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    return cpem.decode(), cpem + kpem


class OffboardBase(H.StackTestCase):
    LIFETIME = None
    ACCOUNT_MATCH = "%u@" + H.DOMAIN
    KIND = "secret"  # secret | certificate | none

    @classmethod
    def setUpClass(cls):
        cls.stack = st = H.Stack(cls.__name__, account_match=cls.ACCOUNT_MATCH)
        cls.addClassCleanup(cls.stack.stop)
        write_conf = st.write_conf
        extra = ""
        if cls.KIND == "secret":
            path = os.path.join(st.etc_dir, "offboard-secret")
            extra = ("\n[offboarding]\nclient_id = %s\nclient_secret_file = %s\n"
                     "graph_url = https://127.0.0.1:%%d\n" % (OFF_ID, path))
        elif cls.KIND == "certificate":
            path = os.path.join(st.etc_dir, "offboard.pem")
            extra = ("\n[offboarding]\nclient_id = %s\nclient_certificate_file = %s\n"
                     "graph_url = https://127.0.0.1:%%d\n" % (OFF_ID, path))

        def conf(more=""):
            if cls.KIND == "secret":
                write_private(os.path.join(st.etc_dir, "offboard-secret"),
                              (OFF_SECRET + "\n").encode())
            elif cls.KIND == "certificate":
                cls.cert_pem, both = make_certificate()
                write_private(os.path.join(st.etc_dir, "offboard.pem"), both)
            write_conf(more + (extra % st.port if extra else ""))
        st.write_conf = conf
        st.start()
        if cls.KIND == "secret":
            st.ctl("POST", "register_app", {"client_id": OFF_ID, "secret": OFF_SECRET,
                                            "roles": [PERMISSION]})
        elif cls.KIND == "certificate":
            st.ctl("POST", "register_app", {"client_id": OFF_ID, "certificate": cls.cert_pem,
                                            "roles": [PERMISSION]})

    def revoke(self, *args):
        return self.stack.credctl("root", "admin", "revoke", *args)

    def graph_revokes(self):
        return self.stack.ctl("GET", "graph_revokes")["revokes"]

    def offboard_audit(self, user):
        return [r for r in self.stack.audit_records()
                if r.get("event") == "offboard" and r.get("user") == user]

    def assert_signed_out(self, user, what):
        rc, doc, err = self.stack.token(user, "storage")
        self.assertEqual(rc, EXIT_ACT, "%s: %s got exit %d (a cached token?) %s"
                         % (what, user, rc, err[:300]))
        self.assertIn("https://", err)

    def test_zz_canary_no_secret_in_logs(self):
        st = self.stack
        secrets = st.issued_secrets() + [OFF_SECRET]
        leaks = H.find_leaks(st.leak_sources(), secrets)
        self.assertEqual(leaks, [], "secret material leaked:\n" + "\n".join(leaks[:20]))


class OffboardSecretTests(OffboardBase):
    KIND = "secret"

    def test_01_revoke_entra(self):
        st = self.stack
        st.consent(ALICE, "storage")
        t0 = time.monotonic()
        rc, out, err = self.revoke(ALICE, "--entra")
        self.assertExit((rc, err), EXIT_OK, "admin revoke --entra")
        self.assertIn("%s: entra: revoked" % ALICE, out)
        self.assertIn("%s: local: revoked" % ALICE, out)
        self.assert_signed_out(ALICE, "after revoke --entra")
        FIGURES["revoke --entra -> node refuses the user (secret)"] = \
            "%.0f ms" % ((time.monotonic() - t0) * 1000)
        revs = self.graph_revokes()
        self.assertEqual(revs[-1]["status"], 200, revs)
        self.assertEqual(revs[-1]["oid"], st.oid(ALICE))
        self.assertEqual(revs[-1]["azp"], OFF_ID, "Graph was called as another app")
        recs = self.offboard_audit(ALICE)
        self.assertTrue(recs and recs[-1].get("outcome") == "ok", recs)

    def test_02_graph_403_still_purges(self):
        st = self.stack
        st.consent(BOB, "storage")
        st.ctl("POST", "app_permissions", {"client_id": OFF_ID, "roles": []})
        try:
            # A fresh app token (the cached one carries the old roles).
            st.restart_credd()
            rc, out, err = self.revoke(BOB, "--entra")
            # credd drops the refused token: once the permission is
            # granted, the next revoke mints one that carries it.
        finally:
            st.ctl("POST", "app_permissions", {"client_id": OFF_ID, "roles": [PERMISSION]})
        self.assertExit((rc, err), EXIT_MISCONF, "revoke --entra with a 403")
        self.assertIn("%s: entra: refused" % BOB, out)
        self.assertIn(PERMISSION, out)
        self.assertIn("Authorization_RequestDenied", out)
        self.assertIn("%s: local: revoked" % BOB, out)
        self.assert_signed_out(BOB, "after a refused Graph call")
        recs = self.offboard_audit(BOB)
        self.assertTrue(recs and recs[-1].get("outcome") == "error"
                        and recs[-1].get("class") == "refused", recs)
        self.assertIn(PERMISSION, recs[-1].get("reason", ""))

    def test_03_all_needs_confirmation(self):
        st = self.stack
        st.consent(CAROL, "storage")
        before = len(self.graph_revokes())
        rc, out, err = self.revoke("--all", "--entra")
        self.assertExit((rc, err), EXIT_USAGE, "revoke --all without --yes")
        self.assertIn("--yes", err)
        self.assertEqual(len(self.graph_revokes()), before, "Graph was called unconfirmed")
        rc, _, err = st.token(CAROL, "storage")
        self.assertExit((rc, err), EXIT_OK, "carol still served before the confirmed --all")
        rc, out, err = self.revoke("--all", "--entra", "--yes")
        self.assertIn("%s: entra: revoked" % CAROL, out)
        self.assertIn("%s: local: revoked" % CAROL, out)
        self.assertRegex(out, r"revoked \d+ users")
        self.assert_signed_out(CAROL, "after revoke --all --entra --yes")

    def test_04_usage(self):
        rc, _, err = self.revoke(ALICE, "--yes")
        self.assertEqual(rc, EXIT_USAGE, err)
        rc, _, err = self.revoke("--all", ALICE, "--yes")
        self.assertEqual(rc, EXIT_USAGE, err)
        rc, _, err = self.stack.credctl(ALICE, "admin", "revoke", BOB, "--entra")
        self.assertNotEqual(rc, EXIT_OK, "a non-admin revoked someone")


class OffboardCertificateTests(OffboardBase):
    KIND = "certificate"

    def test_01_revoke_entra_with_certificate(self):
        st = self.stack
        st.consent(ALICE, "storage")
        t0 = time.monotonic()
        rc, out, err = self.revoke(ALICE, "--entra")
        self.assertExit((rc, err), EXIT_OK, "admin revoke --entra (certificate)")
        self.assertIn("%s: entra: revoked" % ALICE, out)
        self.assert_signed_out(ALICE, "after revoke --entra (certificate)")
        FIGURES["revoke --entra -> node refuses the user (certificate)"] = \
            "%.0f ms" % ((time.monotonic() - t0) * 1000)
        self.assertEqual(self.graph_revokes()[-1]["azp"], OFF_ID)


class OffboardPublicClientTests(OffboardBase):
    KIND = "none"

    def test_01_says_so_and_purges(self):
        st = self.stack
        st.consent(ALICE, "storage")
        rc, out, err = self.revoke(ALICE, "--entra")
        self.assertExit((rc, err), EXIT_MISCONF, "revoke --entra without [offboarding]")
        self.assertIn("%s: entra: not_configured" % ALICE, out)
        self.assertIn("public client", out)
        self.assertIn("%s: local: revoked" % ALICE, out)
        self.assert_signed_out(ALICE, "after revoke --entra on a public client")
        self.assertEqual(self.graph_revokes(), [])
        recs = self.offboard_audit(ALICE)
        self.assertTrue(recs and recs[-1].get("class") == "not_configured", recs)


del OffboardBase  # a base, not a suite of its own


def main():
    return H.run_suite(__name__, __doc__,
                       "integration tests need root (they create Unix users and start credd "
                       "as root, which drops to the credd user). Run as root.",
                       figures=FIGURES)


if __name__ == "__main__":
    sys.exit(main())
