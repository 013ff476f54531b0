#!/usr/bin/python3
"""Crash consistency: kill -9 credd at random moments while refreshes rotate
refresh tokens continuously, restart it, and check the store.

Oracle (why it is sound): the emulator knows every refresh token (RT) it
issued, per account, in order, and which ones were used (GET
/_control/refresh_chain, fingerprints only). After each kill, store_peek
opens the store with credd's own code (seal + file backend) and prints the
fingerprint of each user's stored RT. credd stores a rotated RT before it
hands out the access token and runs one refresh per user at a time, so the
stored RT must be the newest the emulator issued for that account
(position 0) or the one before it (position 1: the kill fell after the
emulator minted the new RT and before credd's rename made it durable).
Anything else (older, unknown, unreadable) is a lost update or corruption.
  - Entra-like rotation: an older RT stays valid, so every user must get a
    token after the restart without a new consent.
  - Strict rotation: a used RT is refused (AADSTS70008). A user needs a new
    consent exactly when the peek found position 1 (a used RT); the test
    predicts that set before the restart and checks it equals the set of
    users that needed one.
Files: after each restart the state directory holds only u-*.rec and .lock
(credd's store open removes temp files a kill left), and every record
opens (peek exit 0).

Kills: 100 per mode in CI (200), FAULT_LONG=1: 500 per mode (1000).

Postgres mode (CRASH_BACKEND=postgres, CTest fault.crash_pg on the
cluster_pg fixture, whose DSN file CREDD_PG_DSN_FILE names): the same
test with [store] backend = postgres. store_peek --pg reads the rows with
credd's store_pg. A kill -9 leaves the server to finish or roll back what
the dead credd had sent, so the peek waits until none of credd's database
sessions is left (pg_stat_activity) before it looks. The test tenant's
rows are deleted before each class; the "files" check becomes: exactly one
row per user, each opens. Kills: 60 per mode in CI (120), FAULT_LONG=1:
500 per mode (1000).
"""

import os
import random
import socket
import sys
import threading
import time
import unittest

import faultlib as F
from faultlib import H

USERS = ("entra_alice", "entra_bob", "entra_carol", "entra_flt1", "entra_flt2", "entra_flt3")
SCOPES = ("storage", "vault", "graph", "databricks")
BACKEND = os.environ.get("CRASH_BACKEND") or "file"
PG = BACKEND == "postgres"
KILLS = int(os.environ.get("FAULT_KILLS") or (500 if F.LONG else 60 if PG else 100))

class CrashStack(F.PgFaultStack):
    """FaultStack on the postgres store in postgres mode."""

    PG = PG

    def settle(self, timeout=30.0):
        """Wait until the killed credd's database sessions are gone: what
        it had sent is then committed or rolled back for good."""
        if not PG:
            return
        end = time.monotonic() + timeout
        while True:
            n = int(F.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = current_user"
                           " AND pid <> pg_backend_pid();\n")[0])
            if n == 0:
                return
            if time.monotonic() > end:
                raise AssertionError("%d database sessions left %.0f s after kill -9"
                                     % (n, timeout))
            time.sleep(0.05)


setUpModule = F.setup_module          # users, /dev/log capture
tearDownModule = F.teardown_module


def load_loop(path, scopes, dur):
    """(child, as a user) token requests on one connection, rotating over
    scopes, until dur seconds pass or credd goes away."""
    end = time.monotonic() + dur
    n, codes, i = 0, {}, 0
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.settimeout(10)
        s.connect(path)
        buf = b""
        while time.monotonic() < end:
            line = ('{"v":1,"op":"token","scope":"%s","min_valid":86400}\n'
                    % scopes[i % len(scopes)]).encode()
            i += 1
            s.sendall(line)
            buf = F.recv_line(s, buf, eof_ok=False)
            reply, buf = buf.split(b"\n", 1)
            n += 1
            c = "ok" if b'"ok":true' in reply else "err"
            codes[c] = codes.get(c, 0) + 1
    except (OSError, socket.timeout):
        pass
    return {"n": n, "codes": codes}


class CrashBase(F.FaultTestCase):
    STRICT = False
    LIFETIME = 2  # min_valid is capped at 1 s: a refresh per scope per second
    STACK = CrashStack
    CONF_SET = {"device_flows_per_hour": 1000, "max_conns_per_uid": 4096}

    @classmethod
    def prepare_stack(cls):
        if PG:
            cls.stack.wipe_tenant()  # each class starts with no rows

    def ensure_token(self, user, deadline=90.0):
        """A token for user, approving any device flow credd starts.
        Returns the number of consents it took (0 = served at once)."""
        st = self.stack
        end = time.monotonic() + deadline
        approved = set()
        last = None
        while time.monotonic() < end:
            r = st.req(user, F.token_req("storage", 0))
            if r.get("ok") is True:
                return len(approved)
            code = F.error_code(r)
            last = r
            if code in ("reauth_required", "consent_required", "consent_pending"):
                uc = r["error"].get("user_code")
                if uc and uc not in approved:
                    try:
                        st.approve(uc, user)
                    except H.ControlError:
                        pass  # approved already (a flow outlives a restart? no: new code)
                    approved.add(uc)
            elif code not in (None, "idp_unavailable", "rate_limited", "unavailable"):
                self.fail("token for %s after restart: %s" % (user, H._short(r)))
            time.sleep(0.2)
        self.fail("no token for %s within %.0f s; last %s" % (user, deadline, H._short(last)))

    def ensure_all(self):
        res = {}
        errs = []

        def one(u):
            try:
                res[u] = self.ensure_token(u)
            except BaseException as e:  # noqa: B902
                errs.append(e)
        ts = [threading.Thread(target=one, args=(u,)) for u in USERS]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errs:
            raise errs[0]
        return res

    def place(self, rows, chains):
        """Position of each user's stored RT in its account's chain
        (0 newest); fails on anything but 0 or 1."""
        st = self.stack
        pos = {}
        for u in USERS:
            row = rows.get(u)
            self.assertIsNotNone(row, "no record for %s in the store: %s" % (u, sorted(rows)))
            self.assertNotIn("error", row, "record of %s does not open: %s" % (u, row))
            self.assertIsNotNone(row.get("rt"), "record of %s lost its refresh token" % u)
            chain = chains.get(st.oid(u), [])
            fps = [c["fp"] for c in chain]
            self.assertIn(row["rt"], fps, "stored RT of %s was never issued for its account" % u)
            p = len(fps) - 1 - fps.index(row["rt"])
            self.assertIn(p, (0, 1), "stored RT of %s is %d behind the newest (lost update)"
                          % (u, p))
            pos[u] = (p, chain[-1 - p]["used"])
        return pos

    def test_kill9_during_rotation(self):
        st = self.stack
        if self.STRICT:
            st.ctl("POST", "rotation", {"strict": True})
        for u in USERS:
            st.consent(u)
        rng = random.Random(int(time.time()))
        kills = window = reconsents = requests = 0
        expected = set()
        t0 = time.monotonic()
        for i in range(KILLS):
            # after the restart: exactly the predicted users need a consent
            got = self.ensure_all()
            needed = {u for u, n in got.items() if n > 0}
            reconsents += sum(got.values())
            if not self.STRICT:
                self.assertEqual(needed, set(), "kill %d: Entra-like rotation needed a new "
                                 "consent for %s" % (i, sorted(needed)))
            else:
                self.assertEqual(needed, expected, "kill %d: re-consents %s, predicted %s"
                                 % (i, sorted(needed), sorted(expected)))
            # load, and a kill at a random moment inside it
            dur = rng.uniform(0.2, 0.9)
            results = []
            ts = [threading.Thread(target=lambda u=u: results.append(
                H.run_as(u, load_loop, st.sock, SCOPES, dur, timeout=60))) for u in USERS]
            for t in ts:
                t.start()
            time.sleep(rng.uniform(0.02, dur))
            st.kill9()
            kills += 1
            for t in ts:
                t.join()
            requests += sum(r["n"] for r in results)
            time.sleep(0.15)  # let the emulator finish what the dead credd had sent
            st.settle()
            rows, rc = st.peek()
            self.assertEqual(rc, 0, "kill %d: a record does not open: %s" % (i, rows))
            pos = self.place(rows, st.chain())
            expected = set()
            for u, (p, used) in pos.items():
                if p == 1:
                    window += 1
                    if self.STRICT and used:
                        expected.add(u)
            st.start_credd()
            if PG:
                self.assertEqual(st.peek_lines, len(USERS), "kill %d: %d rows for %d users"
                                 % (i, st.peek_lines, len(USERS)))
                continue
            files = st.store_files()
            odd = [f for f in files if f != ".lock" and not (f.startswith("u-") and
                                                              f.endswith(".rec"))]
            self.assertEqual(odd, [], "kill %d: stray files after restart: %s" % (i, odd))
        got = self.ensure_all()
        reconsents += sum(got.values())
        mode = ("pg_" if PG else "") + ("strict" if self.STRICT else "entra")
        F.figure("crash_%s_kills" % mode, kills)
        F.figure("crash_%s_window_kills" % mode, window)
        F.figure("crash_%s_reconsents" % mode, reconsents)
        F.figure("crash_%s_load_requests" % mode, requests)
        F.figure("crash_%s_refreshes" % mode, st.counters()["refresh_token"])
        F.figure("crash_%s_seconds" % mode, round(time.monotonic() - t0))
        if not self.STRICT:
            self.assertEqual(reconsents, 0)


class CrashEntraLikeTests(CrashBase):
    STRICT = False


class CrashStrictTests(CrashBase):
    STRICT = True


del CrashBase  # a base, not a test class of its own (unittest would run it)


if __name__ == "__main__":
    sys.exit(F.main(__name__, __doc__))
