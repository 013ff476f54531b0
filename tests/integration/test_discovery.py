"""Integration tests for OpenID discovery (issue 17 part 2): the Entra
emulator serves the discovery document with knobs
(tests/entra-emulator/emu_discovery.py) + credd + credctl, real Unix users.

Run as root (CTest passes CREDD_BIN, CREDCTL_BIN and EMULATOR):
    /usr/bin/python3 tests/integration/test_discovery.py [--keep] [unittest args]
Not root: prints a skip message and exits 77.

What it proves: requests made while the first document is on its way wait
for that one fetch and succeed (one fetch, however many requests); with
the document down at start they fail clearly (idp_unavailable, naming the
discovery document) and recover on their own once it is up; a failed
refetch keeps the last good document in force, logged once for the whole
outage, and "(recovered)" afterwards; a lying document (token or device
endpoint on a foreign host, an http:// endpoint, a foreign issuer) is
refused with the field named and the foreign host is never contacted (the
test listens there), at start and at a refetch; an id_token whose iss is
not the discovered issuer refuses the consent, with an audit record; no
secret reaches a log. FIGURES: the time requests waited for the first
document.
"""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness as H  # noqa: E402 (found next to this file)
from harness import EXIT_MISCONF, EXIT_OK, EXIT_UNAVAIL  # noqa: E402

ALICE, BOB, CAROL = "entra_alice", "entra_bob", "entra_carol"
FIGURES = {}
MIN_TTL = 2  # [entra] discovery_min_ttl: refetches every ~2 s when asked


def setUpModule():
    H.global_setup()


def tearDownModule():
    H.global_teardown(keep=any(s.failed for s in H.ALL_STACKS))


class Listener:
    """A TCP listener on the foreign host of a lying document: counts every
    connection (credd must never make one) and closes it."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(64)
        self.s.settimeout(0.2)
        self.port = self.s.getsockname()[1]
        self.accepted = 0
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.s.accept()
            except OSError:
                continue
            self.accepted += 1
            c.close()

    def close(self):
        self.stop = True
        self.t.join(2)
        self.s.close()


class DiscoveryTests(H.StackTestCase):
    LIFETIME = None  # the emulator's 3600 s: refreshes only when a test asks

    @classmethod
    def setUpClass(cls):
        cls.stack = H.Stack(cls.__name__, lifetime=cls.LIFETIME)
        cls.addClassCleanup(cls.stack.stop)
        write_conf = cls.stack.write_conf
        cls.stack.write_conf = lambda extra="": write_conf(
            extra + "\n[entra]\ndiscovery_min_ttl = %d\n" % MIN_TTL)
        cls.stack.start()
        cls.foreign = Listener()
        cls.addClassCleanup(cls.foreign.close)
        for u in (ALICE, BOB):
            cls.stack.consent(u)

    # helpers
    def disco(self, **kw):
        return self.stack.ctl("POST", "discovery", kw)["discovery"]

    def served(self):
        return self.stack.ctl("GET", "discovery")["discovery"]["served"]

    def log_mark(self):
        return len(H.read_bytes(self.stack.credd_log))

    def log_since(self, mark):
        return H.read_bytes(self.stack.credd_log)[mark:].decode("utf-8", "replace")

    def restart(self):
        """credd afresh: no document, no cached token (records stay)."""
        self.stack.restart_credd()

    def wait_log(self, mark, text, deadline=30.0):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if text in self.log_since(mark):
                return
            time.sleep(0.2)
        self.fail("credd never logged %r; log since:\n%s" % (text, self.log_since(mark)[-3000:]))

    # tests
    def test_01_requests_wait_for_the_first_document(self):
        st = self.stack
        self.disco(mode="slow", delay=3)
        n0 = self.served()
        self.restart()
        results = {}

        def one(user, scope):
            t0 = time.monotonic()
            rc, doc, err = st.token(user, scope)
            results[(user, scope)] = (rc, err, time.monotonic() - t0)

        ts = [threading.Thread(target=one, args=a) for a in
              ((ALICE, "storage"), (BOB, "storage"), (ALICE, "vault"), (BOB, "graph"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        for k, (rc, err, _) in results.items():
            self.assertEqual(rc, EXIT_OK, "%s waited and failed: %s" % (k, err[:300]))
        self.assertEqual(len(results), 4)
        # One fetch for every request (credd's own at start).
        self.assertEqual(self.served() - n0, 1, "more than one discovery fetch")
        FIGURES["first_document_wait_s_max"] = round(max(r[2] for r in results.values()), 2)

    def test_02_down_at_start_fails_clearly_then_recovers(self):
        st = self.stack
        self.disco(mode="503")
        self.restart()
        rc, _, err = st.token(ALICE, "storage")
        self.assertEqual(rc, EXIT_UNAVAIL, err)
        self.assertIn("discovery document unavailable", err)
        self.assertIn("HTTP 503", err)
        self.disco(mode="ok")
        t0 = time.monotonic()
        doc = st.wait_token(ALICE, "storage", deadline=30)
        self.assertTrue(doc["access_token"])
        FIGURES["recovery_after_discovery_up_s"] = round(time.monotonic() - t0, 2)
        # A connection failure (reset) is said as plainly.
        self.disco(mode="reset")
        self.restart()
        rc, _, err = st.token(ALICE, "storage")
        self.assertEqual(rc, EXIT_UNAVAIL, err)
        self.assertIn("discovery document unavailable", err)

    def test_03_stale_while_error_logged_once(self):
        st = self.stack
        self.disco(mode="ok", max_age=1)  # clamped up to discovery_min_ttl
        self.restart()
        self.assertEqual(st.token(ALICE, "storage")[0], EXIT_OK)
        mark = self.log_mark()
        n0 = self.served()
        self.disco(mode="503")
        time.sleep(4 * MIN_TTL + 1)  # refetches at ~1.8 s, then backoff 2 s, 4 s
        for scope in ("vault", "graph"):  # new grants: the stale endpoints
            rc, _, err = st.token(ALICE, scope)
            self.assertEqual(rc, EXIT_OK, "stale document not served: %s" % err[:300])
        failed = self.served() - n0
        self.assertGreaterEqual(failed, 2, "credd did not retry the refetch")
        log = self.log_since(mark)
        self.assertEqual(log.count("stays in force"), 1,
                         "the outage was not logged exactly once:\n%s" % log[-3000:])
        self.disco(mode="ok")
        self.wait_log(mark, "(recovered)")
        FIGURES["stale_refetches_failed"] = failed

    def test_04_lying_refetch_keeps_the_good_document(self):
        st = self.stack
        self.disco(mode="ok", max_age=1)
        self.restart()
        self.assertEqual(st.token(BOB, "storage")[0], EXIT_OK)
        mark = self.log_mark()
        self.disco(mode="foreign_token", max_age=1,
                   foreign="https://127.0.0.1:%d" % self.foreign.port)
        self.wait_log(mark, "token_endpoint is on host '127.0.0.1:%d'" % self.foreign.port)
        for scope in ("vault", "graph", "databricks"):
            rc, _, err = st.token(BOB, scope)
            self.assertEqual(rc, EXIT_OK, "good document not kept: %s" % err[:300])
        self.assertEqual(self.foreign.accepted, 0, "credd contacted the foreign host")

    def test_05_lying_document_refused_at_start(self):
        st = self.stack
        foreign = "https://127.0.0.1:%d" % self.foreign.port
        cases = [("foreign_token", ALICE, "token_endpoint is on host"),
                 ("http_token", ALICE, "token_endpoint"),
                 ("wrong_issuer", ALICE, "issuer is not the authority"),
                 ("foreign_device", CAROL, "device_authorization_endpoint is on host")]
        for mode, user, why in cases:
            self.disco(mode=mode, foreign=foreign)
            mark = self.log_mark()
            self.restart()
            rc, _, err = st.token(user, "storage")
            self.assertEqual(rc, EXIT_MISCONF, "%s: %s" % (mode, err[:300]))
            self.assertIn("discovery document refused", err, mode)
            # At once again (within a second: answered without a fetch),
            # still an admin's problem, never "unavailable".
            rc, _, err = st.token(user, "vault")
            self.assertEqual(rc, EXIT_MISCONF, "%s again: %s" % (mode, err[:300]))
            self.wait_log(mark, why)
            self.assertIn("discovery document refused", self.log_since(mark))
        self.assertEqual(self.foreign.accepted, 0, "credd contacted the foreign host")
        self.disco(mode="ok")
        self.restart()
        self.assertEqual(st.token(ALICE, "storage")[0], EXIT_OK)

    def test_06_wrong_issuer_in_id_token(self):
        st = self.stack
        self.restart()
        bad = "https://127.0.0.1:%d/00000000-0000-0000-0000-000000000000/v2.0" % st.port
        st.ctl("POST", "id_token_issuer", {"issuer": bad})
        mark = self.log_mark()
        code = st.start_consent(CAROL)
        st.approve(code, CAROL)
        rc, _, err = st.wait_result(CAROL)
        self.assertEqual(rc, EXIT_MISCONF, err[:300])
        self.wait_log(mark, "is not the discovered issuer")
        recs = [r for r in st.audit_records()
                if r.get("event") == "consent_rejected" and r.get("user") == CAROL]
        self.assertTrue(recs, "no consent_rejected audit record")
        self.assertIn("issuer", str(recs[-1]))
        # The honest IdP again: the consent goes through.
        st.ctl("POST", "id_token_issuer", {"issuer": None})
        doc = st.consent(CAROL)
        self.assertTrue(doc["access_token"])


def main():
    return H.run_suite(__name__, __doc__,
                       "integration tests need root (they create Unix users and start credd "
                       "as root, which drops to the credd user). Run as root.",
                       figures=FIGURES)


if __name__ == "__main__":
    sys.exit(main())
