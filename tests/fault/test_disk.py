#!/usr/bin/python3
"""Disk full and read-only state directory (a small tmpfs as the store).

While the store cannot be written: tokens already cached keep being served;
a refresh still hands out its access token, the rotated refresh token is
held in memory and `status` says "refresh token not yet written"; the
files on disk stay intact (store_peek opens every record, and the stored
refresh token is the previous one). When space returns (or the file system
is remounted read-write) credd writes the newest refresh token on its own
(retry with backoff): the stored one becomes the newest the emulator
issued, and status says "ok".
"""

import os
import sys
import time

import faultlib as F

ALICE, BOB = "entra_alice", "entra_bob"


setUpModule = F.setup_module          # users, /dev/log capture
tearDownModule = F.teardown_module


class DiskTests(F.FaultTestCase):
    LIFETIME = 40
    STACK = F.TmpfsStack

    def status(self, user):
        rc, out, err = self.stack.credctl(user, "status", "--json")
        self.assertEqual(rc, 0, err)
        import json
        return json.loads(out)

    def stored_position(self, user):
        st = self.stack
        rows, rc = st.peek(copy=True)
        self.assertEqual(rc, 0, "a record does not open: %s" % rows)
        fps = [c["fp"] for c in st.chain()[st.oid(user)]]
        rt = rows[user]["rt"]
        self.assertIn(rt, fps)
        return len(fps) - 1 - fps.index(rt)

    def wait_store_ok(self, user, deadline=90):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            s = self.status(user)
            if s.get("store") == "ok":
                return s
            time.sleep(0.5)
        self.fail("store never became ok: %s" % s)

    def check_files(self, allow=("filler",)):
        odd = [f for f in self.stack.store_files() if f != ".lock" and f not in allow
               and not (f.startswith("u-") and f.endswith(".rec"))]
        self.assertEqual(odd, [], "stray files in the store: %s" % odd)

    def condition(self, scope, make_bad, make_good, what):
        st = self.stack
        cached = st.wait_token(ALICE, "storage")
        self.assertEqual(self.stored_position(ALICE), 0)
        make_bad()
        # cached tokens keep being served
        for u, tok in ((ALICE, cached),):
            rc, doc, err = st.token(u, "storage")
            self.assertEqual(rc, 0, "%s: cached token not served: %s" % (what, err))
            self.assertEqual(doc["access_token"], tok["access_token"])
        # a refresh: token handed out, rotated RT held in memory
        rc, doc, err = st.token(ALICE, scope)
        self.assertEqual(rc, 0, "%s: refresh with the store unwritable: exit %d %s"
                         % (what, rc, err))
        s = self.status(ALICE)
        self.assertEqual(s.get("store"), "refresh token not yet written", "%s: %s" % (what, s))
        rc, out, err = st.credctl("root", "admin", "stats", "--json")
        self.assertEqual(rc, 0, err)
        self.assertIn("not yet written", out)
        self.assertEqual(self.stored_position(ALICE), 1,
                         "%s: the store should still hold the previous RT" % what)
        self.check_files()
        # still serving while unwritten, and bob's cached token too
        rc, _, err = st.token(BOB, "storage")
        self.assertEqual(rc, 0, err)
        make_good()
        self.wait_store_ok(ALICE)
        self.assertEqual(self.stored_position(ALICE), 0,
                         "%s: the newest RT was not written once possible" % what)
        self.check_files()

    def test_01_disk_full(self):
        st = self.stack
        st.consent(ALICE)
        st.consent(BOB)
        state = {}

        def bad():
            state["filler"] = st.fill()
            F.figure("disk_full_filler_bytes", os.path.getsize(state["filler"]))

        def good():
            os.unlink(state["filler"])
        self.condition("vault", bad, good, "disk full")

    def test_02_read_only(self):
        st = self.stack
        self.condition("graph",
                       lambda: F.sh("mount", "-o", "remount,ro", st.state_dir),
                       lambda: F.sh("mount", "-o", "remount,rw", st.state_dir),
                       "read-only")

    def test_03_restart_after_faults(self):
        st = self.stack
        st.restart_credd()
        self.check_files(allow=("filler",))
        rc, doc, err = st.token(ALICE, "databricks")
        self.assertEqual(rc, 0, "no token after restart (no consent expected): %s" % err)


if __name__ == "__main__":
    sys.exit(F.main(__name__, __doc__))
