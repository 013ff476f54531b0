#!/usr/bin/python3
"""Integration tests: Entra emulator + credd + credctl, real Unix users.

Run as root (CTest passes CREDD_BIN, CREDCTL_BIN and EMULATOR):
    /usr/bin/python3 tests/integration/test_core.py [--credd BIN] [--credctl BIN]
        [--emulator emulator.py] [--keep] [unittest args, e.g. CoreFlowTests]
Not root: prints a skip message and exits 77 (CTest SKIP_RETURN_CODE).
KEEP_TMP=1 (or --keep) keeps every temp root; failing classes keep theirs.

Each TestCase class gets its own emulator and credd (harness.Stack), so
counters, faults, circuit breakers and pinned accounts of one class do not
leak into another. Every class also runs the canary test
(test_zz_canary_no_secret_in_logs, from harness.StackTestCase).
"""

import json
import os
import re
import sys
import time
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness as H  # noqa: E402 (found next to this file)
from harness import (EXIT_ACT, EXIT_MISCONF, EXIT_OK, EXIT_REFUSED,  # noqa: E402
                     EXIT_UNAVAIL, EXIT_USAGE, RESOURCES, SCOPES)

ALICE, BOB, CAROL, ADMIN = "entra_alice", "entra_bob", "entra_carol", "entra_admin"
HEX8 = re.compile(r"^[0-9a-f]{8}$")
JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def setUpModule():
    H.global_setup()


def tearDownModule():
    H.global_teardown(keep=any(s.failed for s in H.ALL_STACKS))


def tok_req(scope=None, min_valid=None):
    r = {"v": 1, "op": "token"}
    if scope is not None:
        r["scope"] = scope
    if min_valid is not None:
        r["min_valid"] = min_valid
    return r


class Base(H.StackTestCase):
    def assertTokenDoc(self, doc, alias, user):
        for k in ("access_token", "token_type", "expires_on", "scope", "account"):
            self.assertIn(k, doc, "token --json lacks %s: %s" % (k, sorted(doc)))
        self.assertEqual(str(doc["token_type"]).lower(), "bearer")
        self.assertGreater(int(doc["expires_on"]), time.time() - 1, "token already expired")
        claims = H.jwt_claims(doc["access_token"])
        self.assertEqual(claims.get("aud"), RESOURCES[alias],
                         "access token for %s has aud %r" % (alias, claims.get("aud")))
        self.assertEqual(claims.get("oid"), self.stack.oid(user), "token is not %s's" % user)
        acct = str(doc["account"])
        self.assertTrue(acct and (self.stack.upn(user) in acct or self.stack.oid(user) in acct),
                        "account %r names neither %s nor its oid" % (acct, self.stack.upn(user)))

    def status(self, user):
        rc, out, err = self.stack.credctl(user, "status", "--json")
        self.assertExit((rc, err), EXIT_OK, "credctl status --json as " + user)
        try:
            return json.loads(out), out
        except ValueError:
            self.fail("credctl status --json printed no JSON: %r" % out[:300])

    def flow_of(self, code):
        for f in self.stack.flows():
            if f.get("user_code") == code:
                return f
        self.fail("user code %s is not a flow of the emulator: %s" % (code, self.stack.flows()))


# ==================================================================== core

class CoreFlowTests(Base):
    """Consent, second resource, refresh, restart, CLI exit codes, audit."""

    LIFETIME = 12  # short: min_valid is capped at 6 s
    tokens_seen = []

    def test_01_first_request_consent_required_then_served(self):
        st = self.stack
        c0 = st.counters()
        reply = st.request(ALICE, tok_req("storage"))
        err = self.assertErrorCode(reply, "consent_required", "first token request")
        self.assertDeviceFields(err, "consent_required")
        self.assertNotIn("access_token", json.dumps(reply))
        code = err["user_code"]
        flow = self.flow_of(code)
        self.assertIn("offline_access", flow.get("scope", ""))
        self.assertIn("storage.azure.com", flow.get("scope", ""))

        # credctl shows the same flow (one flow per user): exit 3, URL + code on stderr
        rc, out, e = st.credctl(ALICE, "token")
        self.assertExit((rc, e), EXIT_ACT, "credctl token while consent pending")
        self.assertIn(code, e)
        self.assertIn(err["verification_uri"], e)
        self.assertEqual(out.strip(), "")
        doc, _ = self.status(ALICE)
        self.assertEqual(doc.get("state"), "pending", doc)

        st.approve(code, ALICE)
        tok = st.wait_token(ALICE, "storage")
        self.assertTokenDoc(tok, "storage", ALICE)
        self.tokens_seen.append(tok["access_token"])
        self.assertEqual(st.counters()["devicecode"] - c0["devicecode"], 1,
                         "exactly one device flow expected")
        doc, _ = self.status(ALICE)
        self.assertEqual(doc.get("state"), "ready", doc)

    def test_02_output_formats(self):
        st = self.stack
        rc, out, err = st.credctl(ALICE, "token")
        self.assertExit((rc, err), EXIT_OK, "credctl token (default alias)")
        m = JWT.search(out)
        self.assertTrue(m, "no access token on stdout: %r" % out[:200])
        self.assertEqual(H.jwt_claims(m.group(0)).get("aud"), RESOURCES["storage"])
        self.tokens_seen.append(m.group(0))
        rc, out, err = st.credctl(ALICE, "token", "storage", "--header")
        self.assertExit((rc, err), EXIT_OK, "credctl token --header")
        self.assertIn("Bearer", out)
        self.assertTrue(JWT.search(out))
        rc, out, err = st.credctl(ALICE, "token", "storage", "--env")
        self.assertExit((rc, err), EXIT_OK, "credctl token --env")
        self.assertTrue(JWT.search(out))

    def test_03_second_resource_same_consent(self):
        st = self.stack
        c0 = st.counters()
        vault = st.wait_token(ALICE, "vault", deadline=10)
        self.assertTokenDoc(vault, "vault", ALICE)
        dbx = st.wait_token(ALICE, SCOPES["databricks"], deadline=10)  # full scope string
        self.assertTokenDoc(dbx, "databricks", ALICE)
        c1 = st.counters()
        self.assertEqual(c1["devicecode"], c0["devicecode"], "a second resource started a device flow")
        self.assertGreaterEqual(c1["refresh_token"] - c0["refresh_token"], 2,
                                "vault and databricks should come from refresh grants")
        self.assertNotEqual(vault["access_token"], dbx["access_token"])
        self.tokens_seen += [vault["access_token"], dbx["access_token"]]

    def test_04_refresh_when_min_valid_exceeds_remaining(self):
        st = self.stack
        rc, t1, err = st.token(ALICE, "storage")
        self.assertExit((rc, err), EXIT_OK, "token storage")
        self.sleep_until_half_life(t1)
        c0 = st.counters()
        rc, t2, err = st.token(ALICE, "storage", "--min-valid", "3600")
        self.assertExit((rc, err), EXIT_OK, "token storage --min-valid 3600")
        c1 = st.counters()
        self.assertNotEqual(t2["access_token"], t1["access_token"], "token was not refreshed")
        self.assertGreater(int(t2["expires_on"]), int(t1["expires_on"]))
        self.assertGreaterEqual(c1["refresh_token"] - c0["refresh_token"], 1, "no refresh grant")
        self.assertEqual(c1["devicecode"], c0["devicecode"])
        # the fresh token has more than half its lifetime left: min_valid 3600
        # is capped at half the lifetime, so it is served from the cache
        rc, t3, err = st.token(ALICE, "storage", "--min-valid", "3600")
        self.assertExit((rc, err), EXIT_OK, "token storage --min-valid 3600 (cached)")
        self.assertEqual(t3["access_token"], t2["access_token"], "min_valid not capped at lifetime/2")
        self.tokens_seen += [t1["access_token"], t2["access_token"]]

    def test_05_restart_serves_without_new_consent(self):
        st = self.stack
        c0 = st.counters()
        rc = st.restart_credd()
        self.assertEqual(rc, 0, "credd did not exit 0 on SIGTERM")
        tok = st.wait_token(ALICE, "storage", deadline=10)
        self.assertTokenDoc(tok, "storage", ALICE)
        vault = st.wait_token(ALICE, "vault", deadline=10)
        self.assertTokenDoc(vault, "vault", ALICE)
        c1 = st.counters()
        self.assertEqual(c1["devicecode"], c0["devicecode"], "restart required a new consent")
        self.assertGreaterEqual(c1["refresh_token"] - c0["refresh_token"], 1,
                                "access tokens are memory-only: a refresh is expected after restart")
        doc, _ = self.status(ALICE)
        self.assertEqual(doc.get("state"), "ready", doc)
        self.tokens_seen += [tok["access_token"], vault["access_token"]]

    def test_06_credctl_exit_codes(self):
        st = self.stack
        self.assertExit(st.credctl(ALICE, "no-such-command"), EXIT_USAGE, "unknown subcommand")
        self.assertExit(st.credctl(ALICE, "token", "--min-valid", "soon"), EXIT_USAGE,
                        "non-numeric --min-valid")
        self.assertExit(st.credctl(ALICE, "token", "no_such_alias"), EXIT_REFUSED, "unknown scope")
        reply = st.request(ALICE, tok_req("https://example.invalid/.default"))
        self.assertErrorCode(reply, "unknown_scope", "unconfigured scope string")
        missing = os.path.join(st.root, "run", "absent.sock")
        rc, out, err = st.credctl(ALICE, "--socket", missing, "status", socket_opt=False)
        self.assertExit((rc, err), EXIT_UNAVAIL, "credd not running (no socket)")
        rc, out, err = st.credctl(ALICE, "status", socket_opt=False,
                                  env_extra={"CREDD_SOCKET": st.sock})
        self.assertExit((rc, err), EXIT_OK, "socket named by CREDD_SOCKET")
        rc, out, err = st.credctl(ALICE, "token", SCOPES["storage"])
        self.assertExit((rc, err), EXIT_OK, "configured full scope string")

    def test_07_audit_lines(self):
        st = self.stack
        recs = st.audit_records()
        self.assertTrue(recs, "audit file %s is empty" % st.audit_file)
        bad = [r for r in recs if "_unparsed" in r]
        self.assertEqual(bad, [], "audit lines that are not JSON")
        uid = H.uid_of(ALICE)
        mine = [r for r in recs if r.get("user") == ALICE]
        for ev in ("consent_started", "consent_completed", "token_issued", "refresh_ok"):
            rs = [r for r in mine if r.get("event") == ev]
            self.assertTrue(rs, "no %s audit line for %s; events seen: %s"
                            % (ev, ALICE, sorted({r.get("event") for r in recs})))
            for r in rs:
                self.assertEqual(r.get("uid"), uid, r)
                self.assertTrue(isinstance(r.get("outcome"), str) and r["outcome"], r)
                self.assertEqual(r.get("node"), "test-node", r)
        for ev in ("token_issued", "refresh_ok"):
            for r in (r for r in mine if r.get("event") == ev):
                self.assertRegex(str(r.get("fp")), HEX8, "fingerprint of %s: %s" % (ev, r))
        for r in recs:
            if r.get("fp") is not None:
                self.assertRegex(str(r["fp"]), HEX8, r)
        fps = {r.get("fp") for r in mine if r.get("event") in ("token_issued", "refresh_ok")}
        served = {H.fingerprint(t) for t in self.tokens_seen}
        self.assertTrue(fps & served, "no audit fingerprint matches a token credctl received "
                        "(sha256[:8]); audit %s, served %s" % (sorted(fps), sorted(served)))
        if H.SYSLOG and H.SYSLOG.active:
            sl = H.SYSLOG.data()
            self.assertIn(b"token_issued", sl, "audit records not sent to syslog")


# ==================================================================== revocation

class RevocationTests(Base):
    """IdP-side revocation -> reauth_required, purge, new device flow; logout."""

    LIFETIME = 120

    def test_01_revoke_reauth_purge_new_flow(self):
        st = self.stack
        code1 = st.start_consent(BOB)
        st.approve(code1, BOB)
        t1 = st.wait_token(BOB, "storage")
        st.ctl("POST", "revoke", {"oid": st.oid(BOB)})

        # the cached token is still valid and needs no refresh: served
        rc, t, err = st.token(BOB, "storage")
        self.assertExit((rc, err), EXIT_OK, "cached token after IdP revoke")
        self.assertEqual(t["access_token"], t1["access_token"])

        # a resource that needs a refresh: reauth_required
        reply = st.request(BOB, tok_req("vault"))
        self.assertErrorCode(reply, "reauth_required", "refresh after revoke")
        doc, _ = self.status(BOB)
        self.assertEqual(doc.get("state"), "reauth_required", doc)

        # cached tokens purged; the next request starts a new device flow
        rc, out, err = st.credctl(BOB, "token", "storage")
        self.assertExit((rc, err), EXIT_ACT, "token after reauth_required")
        self.assertNotIn(t1["access_token"], out)
        code2 = st.code_from_text(err)
        self.assertNotEqual(code2, code1, "a new device flow must have a new code")
        st.approve(code2, BOB)
        t2 = st.wait_token(BOB, "storage")
        self.assertNotEqual(t2["access_token"], t1["access_token"])
        vault = st.wait_token(BOB, "vault", deadline=10)
        self.assertTokenDoc(vault, "vault", BOB)

    def test_02_reauth_exit_code(self):
        st = self.stack
        for kind in ("revoke", "expire_refresh"):  # AADSTS50173, AADSTS700082
            with self.subTest(kind=kind):
                t = st.wait_token(BOB, "storage", deadline=10)
                st.ctl("POST", kind, {"oid": st.oid(BOB)})
                rc, out, err = st.credctl(BOB, "token", "graph")  # needs a refresh
                self.assertExit((rc, err), EXIT_ACT, "reauth_required after " + kind)
                self.assertEqual(out.strip(), "")
                rc, out, err = st.credctl(BOB, "token", "storage")
                self.assertExit((rc, err), EXIT_ACT, "storage after reauth (purged)")
                self.assertNotIn(t["access_token"], out)
                code = st.code_from_text(err)
                st.approve(code, BOB)
                st.wait_token(BOB, "storage")

    def test_03_logout_forgets(self):
        st = self.stack
        t1 = st.wait_token(BOB, "storage", deadline=10)
        self.assertExit(st.credctl(BOB, "logout"), EXIT_OK, "logout")
        rc, out, err = st.credctl(BOB, "token", "storage")
        self.assertExit((rc, err), EXIT_ACT, "token after logout")
        self.assertNotIn(t1["access_token"], out)
        st.code_from_text(err)
        doc, _ = self.status(BOB)
        self.assertIn(doc.get("state"), ("none", "pending"), doc)


# ==================================================================== policy

class PolicyTests(Base):
    """MFA for one resource (50076), conditional access (53003), invalid_client."""

    LIFETIME = 120

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.storage = cls.stack.consent(CAROL)

    def test_01_mfa_required_for_one_resource(self):
        st = self.stack
        st.ctl("POST", "require_mfa", {"resource": RESOURCES["vault"], "oid": st.oid(CAROL)})
        reply = st.request(CAROL, tok_req("vault"))
        err = self.assertErrorCode(reply, "consent_required", "vault needs MFA")
        self.assertDeviceFields(err)
        flow = self.flow_of(err["user_code"])
        self.assertIn("vault.azure.net", flow.get("scope", ""), "the device flow must ask for vault")

        # other resources keep working meanwhile
        rc, s, e = st.token(CAROL, "storage")
        self.assertExit((rc, e), EXIT_OK, "storage while vault needs MFA")
        self.assertEqual(s["access_token"], self.storage["access_token"])
        rc, out, e = st.credctl(CAROL, "token", "vault")
        self.assertExit((rc, out, e), EXIT_ACT, "vault while its consent is pending")
        self.assertIn(err["user_code"], e)
        doc, _ = self.status(CAROL)
        self.assertNotEqual(doc.get("state"), "reauth_required", "MFA must not drop the refresh token")

        st.approve(err["user_code"], CAROL)
        vault = st.wait_token(CAROL, "vault")
        self.assertTokenDoc(vault, "vault", CAROL)
        rc, s, e = st.token(CAROL, "storage")
        self.assertExit((rc, e), EXIT_OK, "storage after MFA consent")
        # credd's own poll of the approved flow completes it within seconds
        end = time.monotonic() + 15
        while True:
            doc, _ = self.status(CAROL)
            if doc.get("state") == "ready" or time.monotonic() > end:
                break
            time.sleep(0.5)
        self.assertEqual(doc.get("state"), "ready", "approved MFA flow never completed: %s" % doc)

    def test_02_conditional_access_block(self):
        st = self.stack
        st.ctl("POST", "block", {"resource": RESOURCES["databricks"], "code": 53003,
                                 "oid": st.oid(CAROL)})
        reply = st.request(CAROL, tok_req("databricks"))
        self.assertErrorCode(reply, "policy_blocked", "53003")
        self.assertNotIn("user_code", reply["error"], "no sign-in can fix a policy block")
        rc, out, e = st.credctl(CAROL, "token", "databricks")
        self.assertExit((rc, out, e), EXIT_REFUSED, "policy_blocked")
        self.assertEqual(out.strip(), "")
        rc, s, e = st.token(CAROL, "storage")
        self.assertExit((rc, e), EXIT_OK, "storage while databricks is blocked")
        doc, _ = self.status(CAROL)
        self.assertEqual(doc.get("state"), "ready", "the refresh token must be kept: %s" % doc)
        st.clear()
        end = time.monotonic() + 15
        while True:  # refresh token kept: the resource works once the block is gone
            rc, d, e = st.token(CAROL, "databricks")
            if rc == EXIT_OK or time.monotonic() > end:
                break
            time.sleep(0.5)
        self.assertExit((rc, e), EXIT_OK, "databricks after the block was lifted")
        self.assertTokenDoc(d, "databricks", CAROL)

    def test_03_invalid_client_is_misconfigured(self):
        st = self.stack
        st.fault("invalid_client", count=3, endpoint="token", grant="refresh_token")
        rc, out, e = st.credctl(CAROL, "token", "graph")
        self.assertExit((rc, out, e), EXIT_MISCONF, "invalid_client")
        st.clear()
        rc, s, e = st.token(CAROL, "storage")
        self.assertExit((rc, e), EXIT_OK, "cached storage token unaffected")


# ==================================================================== backoff

class BackoffTests(Base):
    """429/503 on refresh: old, still-valid token keeps being served."""

    LIFETIME = 12

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stack.consent(BOB)

    def _case(self, kind, alias):
        st = self.stack
        old = st.wait_token(BOB, alias, deadline=30)  # retries through a previous backoff
        self.sleep_until_half_life(old)
        self.assertGreater(int(old["expires_on"]) - time.time(), 2, "test too slow: token expired")
        c0 = st.counters()
        st.fault(kind, count=5, endpoint="token", grant="refresh_token", retry_after=1)
        rc, t, err = st.token(BOB, alias, "--min-valid", "3600")
        self.assertExit((rc, err), EXIT_OK, "%s during refresh, old token still valid" % kind)
        self.assertEqual(t["access_token"], old["access_token"], "old token expected during backoff")
        c1 = st.counters()
        self.assertGreaterEqual(c1["token"] - c0["token"], 1, "no refresh was attempted")
        # again during the backoff: still the old token, quickly
        rc, t, err = st.token(BOB, alias, "--min-valid", "3600")
        self.assertExit((rc, err), EXIT_OK, "second request during backoff")
        self.assertEqual(t["access_token"], old["access_token"])
        st.clear()
        # after Retry-After (1 s) and the backoff, a refresh succeeds
        end = time.monotonic() + 30
        while True:
            rc, t, err = st.token(BOB, alias, "--min-valid", "3600")
            if rc == EXIT_OK and t["access_token"] != old["access_token"]:
                break
            self.assertIn(rc, (EXIT_OK, EXIT_UNAVAIL), "unexpected exit %d: %s" % (rc, err))
            self.assertLess(time.monotonic(), end, "no new token after the %s backoff" % kind)
            time.sleep(0.5)
        self.assertTokenDoc(t, alias, BOB)

    def test_01_503_keeps_serving_old_token(self):
        self._case("503", "storage")

    def test_02_429_keeps_serving_old_token(self):
        self._case("429", "vault")


# ==================================================================== single flight

class SingleFlightTests(Base):
    """1000 concurrent waiters on an expired token: one refresh."""

    LIFETIME = 8
    N = 1000

    def test_01_thousand_waiters_one_refresh(self):
        st = self.stack
        # Consent, but wait for it through status, not token: a token that was
        # used recently would be refreshed proactively at its expiry (tokens
        # shorter than 30 s), and the waiters would find a fresh one.
        code = st.start_consent(CAROL, "storage")
        st.approve(code, CAROL)
        end = time.monotonic() + 25
        while True:
            doc, _ = self.status(CAROL)
            if doc.get("state") == "ready":
                break
            self.assertLess(time.monotonic(), end, "consent not completed: %s" % doc)
            time.sleep(0.5)
        t_ready = time.time()
        time.sleep(self.LIFETIME + 2)  # any token issued with the consent is now expired
        st.reset_counters()
        # a slow refresh keeps all waiters waiting on the same flight
        st.fault("slow", count=1, delay=2, endpoint="token", grant="refresh_token")
        line = json.dumps({"v": 1, "op": "token", "scope": "storage", "min_valid": 5}) + "\n"
        res = H.run_as(CAROL, H.flood, st.sock, self.N, line, 90.0, timeout=180)
        c = st.counters()
        summary = json.dumps(res)[:1500]
        self.assertEqual(res["connected"], self.N, summary)
        self.assertEqual(res["unanswered"], 0, summary)
        self.assertEqual(res["errors"], {}, summary)
        self.assertEqual(sum(res["tokens"].values()), self.N, summary)
        self.assertEqual(len(res["tokens"]), 1, "waiters got different tokens: " + summary)
        self.assertEqual(c["refresh_token"], 1, "refresh grants for %d waiters: %s" % (self.N, c))
        self.assertEqual(c["devicecode"], 0)
        fp = next(iter(res["tokens"]))
        rc, t, err = st.token(CAROL, "storage", "--min-valid", "1")
        self.assertExit((rc, err), EXIT_OK, "token after the flood")
        self.assertEqual(H.fingerprint(t["access_token"]), fp, "flood token is not the cached one")
        iat = H.jwt_claims(t["access_token"]).get("iat")
        self.assertIsNotNone(iat)
        self.assertGreater(iat, t_ready + self.LIFETIME, "the waiters got the expired token")


# ==================================================================== isolation, admin

class IsolationAdminTests(Base):
    """Users cannot see each other's tokens, consent or status; admin ops."""

    LIFETIME = 300

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice = cls.stack.consent(ALICE)

    def test_01_other_user_gets_own_consent_not_alices_token(self):
        st = self.stack
        reply = st.request(BOB, tok_req("storage"))
        err = self.assertErrorCode(reply, "consent_required", "bob before consent")
        self.assertNotIn(self.alice["access_token"], json.dumps(reply))
        rc, out, e = st.credctl(BOB, "token", "storage")
        self.assertExit((rc, e), EXIT_ACT, "bob before consent")
        self.assertNotIn(self.alice["access_token"], out + e)
        self.assertIn(err["user_code"], e)
        st.approve(err["user_code"], BOB)
        bob = st.wait_token(BOB, "storage")
        self.assertTokenDoc(bob, "storage", BOB)
        self.assertNotEqual(bob["access_token"], self.alice["access_token"])
        rc, a, e = st.token(ALICE, "storage")
        self.assertExit((rc, e), EXIT_OK)
        self.assertTokenDoc(a, "storage", ALICE)

    def test_02_status_shows_only_own(self):
        st = self.stack
        st.wait_token(BOB, "storage", deadline=10)
        for me, other in ((ALICE, BOB), (BOB, ALICE)):
            doc, text = self.status(me)
            self.assertEqual(doc.get("state"), "ready", doc)
            self.assertTrue(st.upn(me) in text or st.oid(me) in text,
                            "status of %s does not name its account: %s" % (me, text[:300]))
            for leak in (other, st.oid(other)):
                self.assertNotIn(leak, text, "status as %s shows %s" % (me, other))
            reply = st.request(me, {"v": 1, "op": "status"})
            self.assertIs(reply.get("ok"), True, reply)
            self.assertNotIn(other, json.dumps(reply))

    def test_03_admin_ops_forbidden_to_users(self):
        st = self.stack
        ops = [
            {"v": 1, "op": "session_open", "user": BOB, "service": "sshd", "tty": "pts/0",
             "workload": "workspace", "interactive": False},
            {"v": 1, "op": "session_open", "user": ALICE, "service": "sshd", "tty": "pts/0",
             "workload": "workspace", "interactive": False},
            {"v": 1, "op": "session_close", "user": BOB, "session": "x"},
            {"v": 1, "op": "admin_list"},
            {"v": 1, "op": "admin_revoke", "user": BOB},
            {"v": 1, "op": "stats"},
        ]
        for req in ops:
            with self.subTest(op=req["op"]):
                self.assertErrorCode(st.request(ALICE, req), "forbidden", req["op"] + " as alice")
        for args in (("admin", "list"), ("admin", "stats"), ("admin", "revoke", BOB)):
            self.assertExit(st.credctl(ALICE, *args), EXIT_REFUSED, "credctl %s as alice" % " ".join(args))
        # bob was not revoked
        rc, b, e = st.token(BOB, "storage")
        self.assertExit((rc, e), EXIT_OK, "bob after alice's refused revoke")
        # no one, root included, names another user's token
        reply = st.request("root", {"v": 1, "op": "token", "scope": "storage", "user": ALICE})
        self.assertIs(reply.get("ok"), False, "token request naming a user must be refused")
        self.assertNotIn("access_token", json.dumps(reply))

    def test_04_admin_ops_allowed_to_root_and_admin_group(self):
        st = self.stack
        for who in ("root", ADMIN):
            rc, out, e = st.credctl(who, "admin", "list")
            self.assertExit((rc, e), EXIT_OK, "admin list as " + who)
            self.assertIn(ALICE, out)
            self.assertNotIn(self.alice["access_token"], out)
            self.assertExit(st.credctl(who, "admin", "stats"), EXIT_OK, "admin stats as " + who)
            for op in ({"v": 1, "op": "stats"}, {"v": 1, "op": "admin_list"}):
                reply = st.request(who, op)
                self.assertIs(reply.get("ok"), True, "%s as %s: %s" % (op["op"], who, reply))
                self.assertNotIn(self.alice["access_token"], json.dumps(reply))

    def test_05_admin_revoke_by_group_member(self):
        st = self.stack
        b = st.wait_token(BOB, "storage", deadline=10)
        self.assertExit(st.credctl(ADMIN, "admin", "revoke", BOB), EXIT_OK, "admin revoke as admin")
        rc, out, e = st.credctl(BOB, "token", "storage")
        self.assertExit((rc, e), EXIT_ACT, "bob after admin revoke")
        self.assertNotIn(b["access_token"], out)
        st.code_from_text(e)
        rc, a, e = st.token(ALICE, "storage")
        self.assertExit((rc, e), EXIT_OK, "alice unaffected by bob's revoke")

    def test_06_admin_revoke_by_root(self):
        st = self.stack
        a = st.wait_token(ALICE, "storage", deadline=10)
        self.assertExit(st.credctl("root", "admin", "revoke", ALICE), EXIT_OK, "admin revoke as root")
        rc, out, e = st.credctl(ALICE, "token", "storage")
        self.assertExit((rc, e), EXIT_ACT, "alice after root's revoke")
        self.assertNotIn(a["access_token"], out)
        revokes = [r for r in st.audit_records() if r.get("event") == "revoke"]
        self.assertTrue(any(ALICE in json.dumps(r) for r in revokes), "no revoke audit line for alice")
        self.assertTrue(any(BOB in json.dumps(r) for r in revokes), "no revoke audit line for bob")
        for r in revokes:
            self.assertIn("uid", r)
            self.assertTrue(r.get("outcome"), r)


# ==================================================================== account pinning

class AccountMatchTests(Base):
    """account_match and the oid pin."""

    LIFETIME = 120
    ACCOUNT_MATCH = "%u@contoso.com"

    def test_01_consent_by_other_account_rejected(self):
        st = self.stack
        code = st.start_consent(ALICE)
        st.approve(code, oid=str(uuid.uuid4()), username=st.upn(BOB))  # phished code
        rc, doc, err = st.wait_result(ALICE)
        self.assertExit((rc, err), EXIT_REFUSED, "consent by %s for alice" % st.upn(BOB))
        doc, _ = self.status(ALICE)
        self.assertNotEqual(doc.get("state"), "ready", "a mismatched account was accepted: %s" % doc)

    def test_02_pinned_oid_until_admin_revoke(self):
        st = self.stack
        # the right account consents: pinned to oid A
        code = st.start_consent(ALICE, settle=10)
        st.approve(code, ALICE)
        t1 = st.wait_token(ALICE, "storage")
        self.assertTokenDoc(t1, "storage", ALICE)

        # the refresh token dies; a re-consent by another oid (same name) is refused
        st.ctl("POST", "revoke", {"oid": st.oid(ALICE)})
        self.assertErrorCode(st.request(ALICE, tok_req("vault")), "reauth_required", "after IdP revoke")
        code2 = st.start_consent(ALICE, settle=10)
        other = str(uuid.uuid4())
        st.approve(code2, oid=other, username=st.upn(ALICE))
        end = time.monotonic() + 25
        while True:
            reply = st.request(ALICE, tok_req("storage"))
            code_ = (reply.get("error") or {}).get("code")
            if code_ != "consent_pending" or time.monotonic() > end:
                break
            time.sleep(0.5)
        self.assertErrorCode(reply, "account_mismatch", "re-consent by another oid")
        doc, _ = self.status(ALICE)
        self.assertNotEqual(doc.get("state"), "ready", doc)

        # credctl exit code for account_mismatch (another attempt)
        code3 = st.start_consent(ALICE, settle=10)
        st.approve(code3, oid=other, username=st.upn(ALICE))
        rc, d, err = st.wait_result(ALICE)
        self.assertExit((rc, err), EXIT_REFUSED, "account_mismatch via credctl")

        # an admin revokes the user: the new account may consent
        self.assertExit(st.credctl(ADMIN, "admin", "revoke", ALICE), EXIT_OK, "admin revoke")
        code4 = st.start_consent(ALICE, settle=10)
        st.approve(code4, oid=other, username=st.upn(ALICE))
        t2 = st.wait_token(ALICE, "storage")
        claims = H.jwt_claims(t2["access_token"])
        self.assertEqual(claims.get("oid"), other)
        self.assertTrue(any(r.get("event") == "revoke" and ALICE in json.dumps(r)
                            for r in st.audit_records()), "no revoke audit line")


# ==================================================================== malformed

class MalformedTests(Base):
    """Protocol errors are clear, and credd keeps serving."""

    LIFETIME = None

    def assertStillServing(self):
        reply = self.stack.request(ALICE, {"v": 1, "op": "status"})
        self.assertIs(reply.get("ok"), True, "status after a bad request: %s" % reply)
        self.assertTrue(self.stack.credd_alive())

    def one(self, payload, **kw):
        res = self.stack.raw(ALICE, payload, **kw)
        self.assertTrue(res["replies"], "no reply (eof=%s, rest=%r)" % (res["eof"], res["rest"]))
        return res, res["replies"][0]

    def test_01_not_json(self):
        _, r = self.one(b"this is not json\n")
        self.assertErrorCode(r, "bad_request", "not JSON")
        _, r = self.one(b"[1,2,3]\n")
        self.assertErrorCode(r, "bad_request", "JSON array")
        self.assertStillServing()

    def test_02_oversized_line(self):
        big = b'{"v":1,"op":"token","scope":"' + b"a" * (70 * 1024) + b'"}\n'
        res, r = self.one(big, expect_eof=True)
        self.assertErrorCode(r, "too_large", ">64 KiB line")
        self.assertTrue(res["eof"], "connection not closed after too_large")
        no_nl = b"b" * (66 * 1024)  # no newline at all
        res, r = self.one(no_nl, expect_eof=True)
        self.assertErrorCode(r, "too_large", ">64 KiB without newline")
        self.assertTrue(res["eof"])
        self.assertStillServing()

    def test_03_unsupported_version(self):
        _, r = self.one(b'{"v":2,"op":"token","scope":"storage"}\n')
        err = self.assertErrorCode(r, "unsupported_version", "v 2")
        lists = [v for v in err.values() if isinstance(v, list)]
        self.assertTrue(any(1 in v for v in lists), "supported versions not listed: %s" % err)
        self.assertStillServing()

    def test_04_unknown_op(self):
        _, r = self.one(b'{"v":1,"op":"frobnicate"}\n')
        self.assertErrorCode(r, "bad_request", "unknown op")
        _, r = self.one(b'{"v":1}\n')
        self.assertErrorCode(r, "bad_request", "missing op")
        self.assertStillServing()

    def test_05_unknown_field(self):
        _, r = self.one(b'{"v":1,"op":"status","bogus":1}\n')
        self.assertErrorCode(r, "bad_request", "unknown field")
        _, r = self.one(b'{"v":1,"op":"token","scope":"storage","min_valid":"soon"}\n')
        self.assertErrorCode(r, "bad_request", "wrong type")
        self.assertStillServing()

    def test_06_several_requests_per_connection(self):
        res = self.stack.raw(ALICE, b'{"v":1,"op":"status"}\n{"v":1,"op":"status"}\n', nreplies=2)
        self.assertEqual(len(res["replies"]), 2, res)
        for r in res["replies"]:
            self.assertIs(r.get("ok"), True, r)
        self.assertStillServing()


class ReloadLimitsTests(Base):
    """SIGHUP reloads scopes and limits without dropping connections; the
    per-uid connection cap, the rate limit and the idle timeout hold."""

    LIFETIME = None
    SQL = "https://database.windows.net/.default"

    def root_conn(self):
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(self.stack.sock)
        return s

    @staticmethod
    def call(s, obj):
        s.sendall((json.dumps(obj) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
        return json.loads(buf)

    def reload_with(self, extra_limits, extra=""):
        conf = open(self.stack.conf).read()
        conf = conf.replace("[limits]\n", "[limits]\n" + extra_limits)
        conf = conf.replace("[scopes]\n", "[scopes]\n" + extra)
        with open(self.stack.conf, "w") as f:
            f.write(conf)
        os.kill(self.stack.credd.pid, 1)  # SIGHUP
        time.sleep(1.0)

    def test_01_sighup_adds_scope_keeps_connection(self):
        s = self.root_conn()
        try:
            r = self.call(s, tok_req("sql"))
            self.assertErrorCode(r, "unknown_scope", "before reload")
            self.reload_with("", "sql = %s\n" % self.SQL)
            r = self.call(s, tok_req("sql"))
            self.assertIsNotNone(r, "connection dropped by SIGHUP")
            self.assertIn(r["error"]["code"], ("consent_required", "consent_pending"),
                          "sql alias unknown after reload: %s" % r)
            self.assertEqual(self.call(s, {"v": 1, "op": "status"}).get("ok"), True)
        finally:
            s.close()
        self.assertTrue(self.stack.credd_alive())

    def test_02_conn_cap_rate_limit_idle(self):
        conf0 = open(self.stack.conf).read()
        try:
            self.reload_with("", "")
            conf = open(self.stack.conf).read()
            conf = conf.replace("max_conns_per_uid = 4096", "max_conns_per_uid = 8")
            conf = conf.replace("idle_timeout = 60", "idle_timeout = 2")
            conf = conf.replace("requests_per_sec = 100000", "requests_per_sec = 5")
            conf = conf.replace("request_burst = 100000", "request_burst = 5")
            with open(self.stack.conf, "w") as f:
                f.write(conf)
            os.kill(self.stack.credd.pid, 1)
            time.sleep(1.0)
            conns = [self.root_conn() for _ in range(10)]
            replies = []
            for c in conns:
                try:
                    r = self.call(c, {"v": 1, "op": "status"})
                except OSError:
                    r = None
                if r is not None:
                    replies.append(r)
            self.assertEqual(len(replies), 8, "max_conns_per_uid = 8, yet %d of 10 "
                             "connections answered" % len(replies))
            limited = [r for r in replies if not r.get("ok")]
            self.assertTrue(limited and all(r["error"]["code"] == "rate_limited"
                                            for r in limited), replies)
            for c in conns:
                c.close()
            # rate limit: a burst of 5, then rate_limited
            time.sleep(1.5)
            s = self.root_conn()
            codes = []
            for _ in range(12):
                r = self.call(s, {"v": 1, "op": "status"})
                codes.append("ok" if r.get("ok") else r["error"]["code"])
            s.close()
            self.assertIn("rate_limited", codes, codes)
            self.assertIn("ok", codes, codes)
            # idle timeout: an idle connection is closed after about 2 s
            s = self.root_conn()
            t0 = time.monotonic()
            s.settimeout(20)
            self.assertEqual(s.recv(1), b"", "idle connection not closed")
            waited = time.monotonic() - t0
            s.close()
            self.assertGreaterEqual(waited, 1.5, "closed too early: %.1f s" % waited)
        finally:
            with open(self.stack.conf, "w") as f:
                f.write(conf0)
            os.kill(self.stack.credd.pid, 1)
            time.sleep(1.0)


class SessionTests(Base):
    """session_open/session_close as root: a session opens even when the
    sign-in cannot start, and is closed by its id."""

    LIFETIME = None

    def test_01_session_survives_idp_failure(self):
        st = self.stack
        st.fault("503", count=1, endpoint="devicecode")
        r = st.request("root", {"v": 1, "op": "session_open", "user": CAROL,
                                "service": "sshd", "tty": "pts/1", "workload": "workspace",
                                "interactive": True})
        self.assertIs(r.get("ok"), True, "session_open failed outright: %s" % r)
        self.assertTrue(r.get("session"), r)
        self.assertEqual(r.get("state"), "none", r)
        self.assertIn("warning", r)
        st.clear()
        c = st.request("root", {"v": 1, "op": "session_close", "user": CAROL,
                                "session": r["session"]})
        self.assertIs(c.get("ok"), True, c)
        c = st.request("root", {"v": 1, "op": "session_close", "user": CAROL,
                                "session": r["session"]})
        self.assertErrorCode(c, "bad_request", "closing twice")

    def test_03_login_qr(self):
        rc, out, err = self.stack.credctl(CAROL, "login", "--no-wait", "--qr")
        self.assertEqual(rc, EXIT_ACT, err)
        self.assertIn("https://", err)
        self.assertIn("\u2588", err, "no QR code drawn (libqrencode not loaded?)")

    def test_02_interactive_session_starts_flow_silent_does_not(self):
        st = self.stack
        st.clear()
        before = st.counters().get("devicecode", 0)
        r = st.request("root", {"v": 1, "op": "session_open", "user": BOB, "service": "cron",
                                "workload": "scheduled", "interactive": False})
        self.assertIs(r.get("ok"), True, r)
        self.assertNotIn("user_code", r)
        self.assertEqual(st.counters().get("devicecode", 0), before, "silent session started a flow")
        r = st.request("root", {"v": 1, "op": "session_open", "user": BOB, "service": "sshd",
                                "workload": "workspace", "interactive": True})
        self.assertEqual(r.get("state"), "pending", r)
        self.assertDeviceFields(r, "interactive session_open")


class EvictionTests(Base):
    """[store] records_in_memory = 0: a record leaves memory once written and
    idle (the 100k-user path); cache hits go on without it, and each
    refresh, status or logout reads it back from the store."""

    LIFETIME = 12
    RECORDS_IN_MEMORY = 0

    def stats(self):
        return self.stack.request("root", {"v": 1, "op": "stats"})

    def wait_evicted(self, deadline=10.0):
        end = time.monotonic() + deadline
        while True:
            s = self.stats()
            if s.get("records_in_memory") == 0 or time.monotonic() > end:
                return s
            time.sleep(0.05)

    def record_file(self, user):
        return os.path.join(self.stack.state_dir, "u-%s.rec" % user)

    def test_01_hits_served_without_the_record(self):
        st = self.stack
        st.consent(ALICE, "storage")
        rc, t1, err = st.token(ALICE, "storage")
        self.assertExit((rc, err), EXIT_OK, "token after consent")
        self.assertTokenDoc(t1, "storage", ALICE)
        s = self.wait_evicted()
        self.assertEqual(s.get("records_in_memory"), 0, "record still in memory: %s" % s)
        self.assertGreaterEqual(s.get("records_evicted", 0), 1, s)
        c0 = st.counters()
        rc, t2, err = st.token(ALICE, "storage")
        self.assertExit((rc, err), EXIT_OK, "cached token, record evicted")
        self.assertEqual(t2["access_token"], t1["access_token"], "not served from the cache")
        self.assertEqual(t2["account"], t1["account"], "account lost with the record")
        self.assertEqual(st.counters()["refresh_token"], c0["refresh_token"])
        # the reply was kept pre-serialized (issue 16) and stats shows it
        s = self.stats()
        self.assertGreaterEqual(s.get("reply_lines", 0), 1, s)
        self.assertGreater(s.get("reply_line_bytes", 0), len(t2["access_token"]), s)
        doc, _ = self.status(ALICE)        # reads the record back
        self.assertEqual(doc.get("state"), "ready", doc)
        self.assertEqual(doc.get("account"), t1["account"], doc)
        # a refresh reads the record from the store, then it leaves again
        self.sleep_until_half_life(t2)
        rc, t3, err = st.token(ALICE, "storage", "--min-valid", "3600")
        self.assertExit((rc, err), EXIT_OK, "refresh of an evicted record")
        self.assertNotEqual(t3["access_token"], t1["access_token"], "no refresh")
        self.assertEqual(st.counters()["devicecode"], c0["devicecode"], "refresh asked for consent")
        self.assertEqual(self.wait_evicted().get("records_in_memory"), 0)
        rc, t4, err = st.token(ALICE, "vault")   # a second resource, same consent
        self.assertExit((rc, err), EXIT_OK, "second resource from an evicted record")
        self.assertTokenDoc(t4, "vault", ALICE)

    def test_02_unreadable_store_keeps_the_valid_token(self):
        st = self.stack
        st.consent(BOB, "storage")
        rc, t1, err = st.token(BOB, "storage")
        self.assertExit((rc, err), EXIT_OK, "token")
        self.wait_evicted()
        path = self.record_file(BOB)
        self.assertTrue(os.path.isfile(path), path)
        os.chmod(path, 0)               # credd (not root) can no longer read it
        try:
            self.sleep_until_half_life(t1)
            rc, t2, err = st.token(BOB, "storage", "--min-valid", "3600")
            self.assertExit((rc, err), EXIT_OK, "still-valid token while the store fails")
            self.assertEqual(t2["access_token"], t1["access_token"])
        finally:
            os.chmod(path, 0o600)
        rc, t3, err = st.token(BOB, "storage", "--min-valid", "3600")
        self.assertExit((rc, err), EXIT_OK, "refresh once the record reads again")
        self.assertNotEqual(t3["access_token"], t1["access_token"])

    def test_03_logout_and_revoke_of_evicted_records(self):
        st = self.stack
        st.consent(CAROL, "storage")
        rc, _, err = st.token(CAROL, "storage")
        self.assertExit((rc, err), EXIT_OK, "token")
        self.wait_evicted()
        self.assertExit(st.credctl(CAROL, "logout"), EXIT_OK, "logout")
        rc, _, err = st.token(CAROL, "storage")
        self.assertExit((rc, err), EXIT_ACT, "token after logout must ask for a sign-in")
        rc, _, err = st.token(ALICE, "storage")
        self.assertExit((rc, err), EXIT_OK, "alice")
        self.wait_evicted()
        self.assertExit(st.credctl("root", "admin", "revoke", ALICE), EXIT_OK, "admin revoke")
        self.assertFalse(os.path.exists(self.record_file(ALICE)), "record not deleted")
        rc, _, err = st.token(ALICE, "storage")
        self.assertExit((rc, err), EXIT_ACT, "token after revoke must ask for a sign-in")


# ==================================================================== main

def main():
    return H.run_suite(__name__, __doc__,
                       "integration tests need root (they create Unix users and start credd "
                       "as root, which drops to the credd user). Run as root.")


if __name__ == "__main__":
    sys.exit(main())
