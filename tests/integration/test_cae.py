#!/usr/bin/python3
"""Integration tests for Continuous Access Evaluation (issue 17 part 1):
Entra emulator (its CAE lifetimes, protected resource and critical
events, tests/entra-emulator/emu_cae.py) + credd with
[entra] client_capabilities = cp1 + credctl, real Unix users.

Run as root (CTest passes CREDD_BIN, CREDCTL_BIN and EMULATOR):
    /usr/bin/python3 tests/integration/test_cae.py [--keep] [unittest args]
Not root: prints a skip message and exits 77.

What it proves: a workload holding a CAE token gets a claims challenge
from the resource after a critical event; `credctl token --cae --claims`
obtains a new token that satisfies it (never the cached, refused one), or
the usual sign-in answer when the session's refresh token was revoked;
ordinary callers (credctl without --cae, the az shim) keep their ordinary
token and are not refreshed; identical challenges share one grant and a
different one inside 30 s is refused with retry_after; no secret reaches a
log. It prints FIGURES with the time from the critical event to the
workload holding a new token.
"""

import base64
import json
import re
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness as H  # noqa: E402 (found next to this file)
from harness import EXIT_ACT, EXIT_OK, EXIT_UNAVAIL  # noqa: E402

ALICE, BOB, CAROL = "entra_alice", "entra_bob", "entra_carol"
FIGURES = {}


def setUpModule():
    H.global_setup()


def tearDownModule():
    H.global_teardown(keep=any(s.failed for s in H.ALL_STACKS))


class CaeBase(H.StackTestCase):
    LIFETIME = None  # ordinary tokens: the emulator's 3600 s

    @classmethod
    def setUpClass(cls):
        cls.stack = H.Stack(cls.__name__, lifetime=cls.LIFETIME)
        cls.addClassCleanup(cls.stack.stop)
        write_conf = cls.stack.write_conf
        cls.stack.write_conf = lambda extra="": write_conf(
            extra + "\n[entra]\nclient_capabilities = cp1\n")
        cls.stack.start()

    # the workload's side: the emulator's protected resource
    def resource(self, token):
        """GET the resource with token: (status, challenge claims b64 or None)."""
        st = self.stack
        req = urllib.request.Request("https://127.0.0.1:%d/_resource/storage" % st.port,
                                     headers={"Authorization": "Bearer " + token})
        try:
            with urllib.request.urlopen(req, context=st.sslctx, timeout=15) as r:
                return r.status, None
        except urllib.error.HTTPError as e:
            www = e.headers.get("WWW-Authenticate", "")
            m = re.search(r'claims="([^"]+)"', www)
            if e.code == 401 and m:
                self.assertIn('error="insufficient_claims"', www)
            return e.code, (m.group(1) if m else None)

    def cae_token(self, user, *extra):
        rc, doc, err = self.stack.token(user, "storage", "--cae", *extra)
        self.assertExit((rc, err), EXIT_OK, "token --cae %s" % " ".join(extra))
        return doc

    def event(self, user, revoke_refresh=False):
        time.sleep(1.1)  # the event's second comes after the tokens' nbf
        return self.stack.ctl("POST", "critical_event",
                              {"oid": self.stack.oid(user), "revoke_refresh": revoke_refresh})

    def ensure_consent(self, user):
        rc, _, _ = self.stack.token(user, "storage")
        if rc != EXIT_OK:
            self.stack.consent(user, "storage")

    def refresh_grants(self):
        return self.stack.counters().get("refresh_token", 0)


class CaeFlowTests(CaeBase):
    def test_01_challenge_gets_a_new_token_ordinary_unaffected(self):
        st = self.stack
        plain = st.consent(ALICE, "storage")
        self.assertNotIn("xms_cc", H.jwt_claims(plain["access_token"]))
        cae = self.cae_token(ALICE)
        claims = H.jwt_claims(cae["access_token"])
        self.assertEqual(claims.get("xms_cc"), ["cp1"], "not a CAE token")
        self.assertGreater(int(cae["expires_on"]) - time.time(), 80000, "not long-lived")
        self.assertEqual(cae["scope"], H.SCOPES["storage"])
        # Cached apart: the ordinary caller still gets its ordinary token.
        rc, again, err = st.token(ALICE, "storage")
        self.assertExit((rc, err), EXIT_OK)
        self.assertEqual(again["access_token"], plain["access_token"])
        self.assertEqual(self.resource(cae["access_token"]), (200, None))

        self.event(ALICE)
        t0 = time.monotonic()
        status, b64 = self.resource(cae["access_token"])  # the workload's call
        self.assertEqual(status, 401)
        self.assertIsNotNone(b64, "no claims challenge")
        grants = self.refresh_grants()
        new = self.cae_token(ALICE, "--claims", b64)
        status, _ = self.resource(new["access_token"])
        elapsed = time.monotonic() - t0
        FIGURES["event_to_new_token_ms"] = round(elapsed * 1000, 1)
        self.assertEqual(status, 200, "the new token does not satisfy the resource")
        self.assertNotEqual(new["access_token"], cae["access_token"], "stale token served")
        self.assertEqual(self.refresh_grants(), grants + 1)
        last = st.ctl("GET", "cae_counters")["last_claims"]
        self.assertEqual(last["access_token"]["xms_cc"], {"values": ["cp1"]},
                         "capability not merged: %s" % last)
        self.assertIn("nbf", last["access_token"], "challenge not merged: %s" % last)
        # Later CAE requests get the new token from the cache.
        self.assertEqual(self.cae_token(ALICE)["access_token"], new["access_token"])
        # Ordinary callers: untouched, and their token is not challenged.
        rc, again, err = st.token(ALICE, "storage")
        self.assertExit((rc, err), EXIT_OK)
        self.assertEqual(again["access_token"], plain["access_token"])
        self.assertEqual(self.resource(plain["access_token"]), (200, None))
        # The status shows both kinds.
        rep = st.request(ALICE, {"v": 1, "op": "status"})
        kinds = sorted(bool(s.get("cae")) for s in rep.get("scopes", []))
        self.assertEqual(kinds, [False, True], rep)

    def test_02_coalesced_then_limited(self):
        st = self.stack
        st.consent(BOB, "storage")
        cae = self.cae_token(BOB)
        self.event(BOB)
        status, b64 = self.resource(cae["access_token"])
        self.assertEqual(status, 401)
        grants = self.refresh_grants()
        results = [None] * 8

        def one(i):
            results[i] = st.token(BOB, "storage", "--cae", "--claims", b64)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        toks = set()
        for rc, doc, err in results:
            self.assertExit((rc, err), EXIT_OK, "concurrent challenge")
            toks.add(doc["access_token"])
        self.assertEqual(len(toks), 1, "identical challenges got different tokens")
        self.assertEqual(self.refresh_grants(), grants + 1, "identical challenges not coalesced")
        new = toks.pop()
        self.assertNotEqual(new, cae["access_token"])
        # The same challenge again: the same new token, no grant.
        self.assertEqual(self.cae_token(BOB, "--claims", b64)["access_token"], new)
        # Another challenge within 30 s: rate_limited with retry_after, no grant.
        other = base64.b64encode(json.dumps(
            {"access_token": {"nbf": {"essential": True, "value": "1"}}}).encode()).decode()
        rep = st.request(BOB, {"v": 1, "op": "token", "scope": "storage", "cae": True,
                               "claims": other})
        err = self.assertErrorCode(rep, "rate_limited")
        retry_after = err.get("retry_after", 0)
        self.assertTrue(0 < retry_after <= 30, err)
        rc, _, err = st.token(BOB, "storage", "--cae", "--claims", other)
        self.assertExit((rc, err), EXIT_UNAVAIL, "different challenge inside the window")
        self.assertEqual(self.refresh_grants(), grants + 1)
        # The ordinary key has its own window; after 30 s the CAE key's opens.
        time.sleep(retry_after + 1.0)
        doc = self.cae_token(BOB, "--claims", other)
        self.assertNotEqual(doc["access_token"], new)
        self.assertEqual(self.refresh_grants(), grants + 2)

    def test_03_revoked_session_gets_the_sign_in(self):
        st = self.stack
        st.consent(CAROL, "storage")
        cae = self.cae_token(CAROL)
        self.event(CAROL, revoke_refresh=True)
        t0 = time.monotonic()
        status, b64 = self.resource(cae["access_token"])
        self.assertEqual(status, 401)
        rc, _, err = st.token(CAROL, "storage", "--cae", "--claims", b64)
        self.assertExit((rc, err), EXIT_ACT, "revoked session: sign in again")
        code = st.start_consent(CAROL, "storage")
        FIGURES["event_to_consent_answer_ms"] = round((time.monotonic() - t0) * 1000, 1)
        st.approve(code, CAROL)
        st.wait_token(CAROL, "storage")
        doc = self.cae_token(CAROL)
        self.assertNotEqual(doc["access_token"], cae["access_token"], "stale token served")
        self.assertEqual(self.resource(doc["access_token"]), (200, None))

    def test_03b_interaction_needed_sign_in_carries_the_claims(self):
        # Entra wants MFA for the resource (50076): the consent answer, and
        # the device flow's polls carry the challenge.
        st = self.stack
        user = "entra_admin"
        st.consent(user, "storage")
        cae = self.cae_token(user)
        self.event(user)
        status, b64 = self.resource(cae["access_token"])
        self.assertEqual(status, 401)
        st.ctl("POST", "require_mfa", {"resource": H.RESOURCES["storage"],
                                       "oid": st.oid(user)})
        rc, _, err = st.token(user, "storage", "--cae", "--claims", b64)
        self.assertExit((rc, err), EXIT_ACT, "MFA needed: the sign-in answer")
        self.assertIn("https://", err)
        code = st.code_from_text(err)
        st.approve(code, user)
        end = time.monotonic() + 25
        while st.request(user, {"v": 1, "op": "status"}).get("state") == "pending":
            self.assertLess(time.monotonic(), end, "the sign-in did not complete")
            time.sleep(0.3)
        sent = st.ctl("GET", "cae_counters")["last_claims"]
        want = json.loads(base64.b64decode(b64))
        self.assertEqual(sent, want, "the sign-in did not carry the challenge")
        doc = self.cae_token(user, "--claims", b64)
        self.assertNotEqual(doc["access_token"], cae["access_token"], "stale token served")
        self.assertEqual(self.resource(doc["access_token"]), (200, None))

    def test_04_bad_claims_are_refused_clearly(self):
        st = self.stack
        self.ensure_consent(ALICE)
        for bad, why in (("!!!!", "neither base64 nor a JSON object"),
                         (base64.b64encode(b"[1]").decode(), "not a JSON object"),
                         ("{\"a\":", "not a JSON object")):
            rep = st.request(ALICE, {"v": 1, "op": "token", "claims": bad})
            err = self.assertErrorCode(rep, "bad_request", bad)
            self.assertIn(why, err["message"])
            self.assertNotIn(bad, err["message"], "peer bytes echoed")
        rep = st.request(ALICE, {"v": 1, "op": "token", "cae": "yes"})
        self.assertErrorCode(rep, "bad_request")
        rc, _, err = st.credctl(ALICE, "token", "--claims", "A" * 20000)
        self.assertEqual(rc, H.EXIT_USAGE, err)

    def test_05_az_shim_ordinary_and_login_claims_challenge(self):
        st = self.stack
        self.ensure_consent(ALICE)
        az = ("az", "account", "get-access-token", "--scope", H.SCOPES["storage"])
        rc, out, err = st.credctl(ALICE, *az)
        self.assertExit((rc, err), EXIT_OK, "az get-access-token")
        first = json.loads(out)["accessToken"]
        self.assertNotIn("xms_cc", H.jwt_claims(first), "the az shim got a CAE token")
        # As the real az: get-access-token takes no claims challenge.
        rc, out, err = st.credctl(ALICE, *(az + ("--claims-challenge", "eyJhIjp7fX0=")))
        self.assertEqual(rc, H.EXIT_USAGE, err)
        self.assertIn("az login --claims-challenge", err)
        # az login --claims-challenge: credd redeems it; the next call has it.
        challenge = base64.b64encode(json.dumps(
            {"access_token": {"nbf": {"essential": True, "value": str(int(time.time()))}}}
        ).encode()).decode()
        time.sleep(1.1)
        rc, out, err = st.credctl(ALICE, "az", "login", "--use-device-code", "--scope",
                                  H.SCOPES["storage"], "--claims-challenge", challenge)
        self.assertExit((rc, err), EXIT_OK, "az login --claims-challenge")
        accounts = json.loads(out)
        self.assertIsInstance(accounts, list)
        self.assertEqual(accounts[0]["user"]["type"], "user")
        rc, out, err = st.credctl(ALICE, *az)
        second = json.loads(out)["accessToken"]
        self.assertNotEqual(second, first, "the shim still serves the refused token")
        self.assertNotIn("xms_cc", H.jwt_claims(second))


del CaeBase  # a base, not a suite of its own (it would start a stack)


def main():
    return H.run_suite(__name__, __doc__,
                       "integration tests need root (they create Unix users and start credd "
                       "as root, which drops to the credd user). Run as root.",
                       figures=FIGURES)


if __name__ == "__main__":
    sys.exit(main())
