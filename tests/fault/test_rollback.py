#!/usr/bin/python3
"""Rollback by a store writer (issue 11, finding 8), end to end through
credd: a writer without the key (root on the file store, a PostgreSQL
role) puts back an older sealed blob of a user, with a version number of
its choosing, and credd must not use it.

The emulator runs in strict rotation mode: a refresh token that was
already redeemed is refused (AADSTS70008, REAUTH). So a credd that adopted
an older record and sent its refresh token would lose the user's consent,
which the tests would see; the emulator's refresh-token chain shows what
was issued. Extra scopes (r1..r12, one resource each) force one refresh,
and one rotation, per new scope.

RollbackTests (one credd, records kept in memory):
- test_01: the writer restores alice's first blob while credd holds her
  newer record: the next refresh uses the newer refresh token, the newer
  record is written over the old row, `record_rollback` is audited.
- test_02: the same with a restart in between (credd has only the store):
  the row is refused (`internal`, exit 1, a message that says why), no
  refresh token of it is sent, no device flow starts, one audit line
  however often alice asks; status, stats and admin list say so. An admin
  revoke clears it, a new consent works, and survives a restart.
- test_03: bob is revoked; the writer restores his row; credd restarts:
  not resurrected (refused, audited as of a deleted epoch, no token); an
  admin revoke and a new consent work.
NodesTests (two credd on one store, [store] records_in_memory = 0, each
with its own marks):
- test_01: rows written by the other node are newer: adopted, no audit.
- test_02: an older row put back is refused on the evicted path (a new
  scope answers `unavailable`, exit 4) while the cached token is still
  served; audited.

ROLLBACK_BACKEND=postgres (CTest fault.rollback_pg, the cluster_pg
fixture) runs the same on the postgres store: the writer is SQL with the
credd role, rows of the test tenant are deleted before each class.
"""

import json
import os
import pwd
import re
import struct
import subprocess
import sys
import time

import faultlib as F
from faultlib import H

ALICE, BOB = "entra_alice", "entra_bob"
BACKEND = os.environ.get("ROLLBACK_BACKEND") or "file"
PG = BACKEND == "postgres"
EXTRA_SCOPES = ["r%d = https://r%d.rollback.example/.default" % (i, i) for i in range(1, 13)]

class RollbackStack(F.PgFaultStack):
    """A FaultStack with the store writer's tools, on either backend."""

    PG = PG

    def rec_path(self, user):
        return os.path.join(self.state_dir, "u-%s.rec" % user)

    # -- the store writer: no key, only the store
    def save_row(self, user):
        """The sealed bytes of user's row as they are now (a backup)."""
        if PG:
            rows = F.psql("SELECT encode(blob, 'hex') FROM credd_records WHERE tenant = %s"
                          " AND username = %s;\n" % (F.sql_str(H.TENANT), F.sql_str(user)))
            if len(rows) != 1:
                raise AssertionError("no row for %s: %s" % (user, rows))
            return rows[0]
        with open(self.rec_path(user), "rb") as f:
            return f.read()

    def stored_version(self, user):
        if PG:
            rows = F.psql("SELECT version FROM credd_records WHERE tenant = %s AND username = %s;\n"
                          % (F.sql_str(H.TENANT), F.sql_str(user)))
            return int(rows[0]) if rows else 0
        try:
            with open(self.rec_path(user), "rb") as f:
                return struct.unpack(">Q", f.read(12)[4:12])[0]
        except FileNotFoundError:
            return 0

    def restore_row(self, user, saved):
        """Put saved back, under a version above the current one (the
        version is not sealed: a writer sets what it likes)."""
        v = self.stored_version(user) + 1
        if PG:
            F.psql("INSERT INTO credd_records (tenant, username, version, blob, updated_by)"
                   " VALUES (%s, %s, %d, decode(%s, 'hex'), 'restore')"
                   " ON CONFLICT (tenant, username) DO UPDATE SET blob = EXCLUDED.blob,"
                   " version = EXCLUDED.version, updated_by = 'restore';\n"
                   % (F.sql_str(H.TENANT), F.sql_str(user), v, F.sql_str(saved)))
            return v
        data = saved[:4] + struct.pack(">Q", v) + saved[12:]
        tmp = os.path.join(self.root, "restore.tmp")   # same file system
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        cu = pwd.getpwnam(H.CREDD_USER)
        os.chown(tmp, cu.pw_uid, cu.pw_gid)
        os.chmod(tmp, 0o600)
        os.rename(tmp, self.rec_path(user))
        return v

    def marks_dir(self):
        return self.state_dir.rstrip("/") + "-marks"

    def marks_sources(self):
        out = {}
        for d in (self.marks_dir(), os.path.join(self.root, "marks2")):
            if os.path.isdir(d):
                for fn in sorted(os.listdir(d)):
                    out["marks file %s/%s" % (os.path.basename(d), fn)] = \
                        H.read_bytes(os.path.join(d, fn))
        return out


class Node2:
    """A second credd on the same store: own socket, node name, audit
    file and marks directory (the other node of a cluster)."""

    def __init__(self, st):
        self.st = st
        self.sock = os.path.join(st.run_dir, "credd2.sock")
        self.conf = os.path.join(st.etc_dir, "credd2.conf")
        self.audit_file = os.path.join(st.log_dir, "audit2.jsonl")
        self.log = os.path.join(st.root, "credd2.stderr.log")
        self.marks = os.path.join(st.root, "marks2")
        self.proc = None

    def start(self):
        with open(self.st.conf) as f:
            lines = f.read().split("\n")
        out = []
        for ln in lines:
            k = ln.split("=", 1)[0].strip() if "=" in ln else None
            if k == "socket":
                ln = "socket = " + self.sock
            elif k == "node":
                ln = "node = test-node2"
            elif k == "file":
                ln = "file = " + self.audit_file
            out.append(ln)
            if ln.strip() == "[store]":
                out.append("marks = " + self.marks)
        with open(self.conf, "w") as f:
            f.write("\n".join(out))
        st_conf = os.stat(self.st.conf)
        os.chown(self.conf, st_conf.st_uid, st_conf.st_gid)
        os.chmod(self.conf, st_conf.st_mode & 0o777)
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([H.BIN["credd"], "-c", self.conf, "-f", "-d"], stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        logf.close()
        F.snapshot_proc("credd node2", self.proc.pid)
        end = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("node2 did not start:\n%s" % H.tail(self.log))
            time.sleep(0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def token(self, user, scope):
        rc, out, err = self.st.credctl(user, "--socket", self.sock, "token", scope, "--json",
                                       socket_opt=False)
        return rc, (json.loads(out) if rc == 0 else None), err

    def audit_records(self):
        recs = []
        for ln in H.read_bytes(self.audit_file).decode("utf-8", "replace").splitlines():
            if ln.strip():
                recs.append(json.loads(ln))
        return recs


setUpModule = F.setup_module          # users, /dev/log capture
tearDownModule = F.teardown_module


class Base:
    """Shared by the test classes (a mixin before F.FaultTestCase: not
    collected by itself)."""
    LIFETIME = 3600
    RECORDS_IN_MEMORY = None
    STACK = RollbackStack
    CONF_SET = {"device_flows_per_hour": 1000}
    CONF_ADD = {"scopes": EXTRA_SCOPES}

    @classmethod
    def prepare_stack(cls):
        if PG:
            cls.stack.wipe_tenant()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stack.ctl("POST", "rotation", {"strict": True})
        cls.next_scope = 1

    def new_scope(self):
        """A scope no token was cached for: the next request refreshes."""
        s = "r%d" % type(self).next_scope
        type(self).next_scope += 1
        return s

    def rotate(self, user, node=None):
        """One refresh (and rotation) for user on credd or node; returns
        the token document."""
        scope = self.new_scope()
        rc, doc, err = (node.token(user, scope) if node else self.stack.token(user, scope))
        self.assertEqual(rc, 0, "refresh of %s (%s): exit %d: %s" % (user, scope, rc, err[:400]))
        return doc

    def chain_len(self, user):
        return len(self.stack.chain().get(self.stack.oid(user), []))

    def stored_rt_is_newest(self, user):
        rows, rc = self.stack.peek()
        self.assertEqual(rc, 0, "a record does not open: %s" % rows)
        chain = self.stack.chain()[self.stack.oid(user)]
        return rows[user]["rt"] == chain[-1]["fp"]

    def rollback_audits(self, user, records=None):
        recs = records if records is not None else self.stack.audit_records()
        return [r for r in recs if r.get("event") == "record_rollback" and r.get("user") == user]

    def device_flows(self):
        return self.stack.counters().get("devicecode", 0)

    def stats(self):
        rc, out, err = self.stack.credctl("root", "admin", "stats", "--json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def leak_sweep_extra(self):
        extra = self.stack.marks_sources()
        node2 = getattr(type(self), "node2", None)
        if node2 is not None:
            extra["node2 stderr"] = H.read_bytes(node2.log)
            extra["node2 audit"] = H.read_bytes(node2.audit_file)
        return extra

    def test_zz_leak_sweep(self):
        super().test_zz_leak_sweep()
        # The marks hold hashes and numbers only: no user name either.
        for name, data in self.stack.marks_sources().items():
            self.assertNotIn(b"entra_", data, "%s holds a user name" % name)


class RollbackTests(Base, F.FaultTestCase):

    def test_01_resident_node_writes_over_an_older_row(self):
        st = self.stack
        st.consent(ALICE)
        first = st.save_row(ALICE)
        self.rotate(ALICE)
        self.rotate(ALICE)
        before = len(self.rollback_audits(ALICE))
        n0 = self.chain_len(ALICE)
        st.restore_row(ALICE, first)
        # credd holds the newer record: it refreshes with that refresh
        # token (strict rotation refuses the restored one: 70008).
        t0 = time.monotonic()
        self.rotate(ALICE)
        F.figure("rollback_refresh_over_restored_row_s", round(time.monotonic() - t0, 3))
        self.assertEqual(self.chain_len(ALICE), n0 + 1)
        self.assertTrue(self.stored_rt_is_newest(ALICE),
                        "the store does not hold alice's newest refresh token")
        # Audited: on postgres also when the cluster lock read it.
        recs = self.rollback_audits(ALICE)[before:]
        self.assertIn(len(recs), (1, 2) if PG else (1,), "record_rollback lines: %s" % recs)
        r = recs[-1]
        self.assertEqual(r.get("outcome"), "refused")
        m = re.match(r"stored epoch (\d+) gen (\d+) is older than this node's mark, "
                     r"epoch (\d+) gen (\d+); overwritten", r.get("reason", ""))
        self.assertIsNotNone(m, r)
        self.assertEqual(m.group(1), m.group(3), r)
        self.assertLess(int(m.group(2)), int(m.group(4)), r)
        s = json.loads(st.credctl(ALICE, "status", "--json")[1])
        self.assertEqual(s.get("store"), "ok", s)
        self.assertGreaterEqual(self.stats().get("store_rollbacks", 0), 1)

    def test_02_restarted_node_refuses_an_older_row(self):
        st = self.stack
        st.wait_token(ALICE, "storage")
        older = st.save_row(ALICE)
        self.rotate(ALICE)
        st.restore_row(ALICE, older)
        st.restart_credd()          # nothing of alice in memory now
        n0, f0 = self.chain_len(ALICE), self.device_flows()
        before = len(self.rollback_audits(ALICE))
        for _ in range(3):
            rc, doc, err = st.token(ALICE, "storage")
            self.assertEqual(rc, H.EXIT_OTHER, "the restored row was used: exit %d %s"
                             % (rc, err[:300]))
            self.assertIn("older copy", err)
        self.assertEqual(self.chain_len(ALICE), n0, "a refresh token was sent for alice")
        self.assertEqual(self.device_flows(), f0, "a device flow was started over it")
        recs = self.rollback_audits(ALICE)
        self.assertEqual(len(recs), before + 1, "want one record_rollback line: %s" % recs)
        self.assertIn("refused", recs[-1].get("reason", ""))
        self.assertNotIn("deleted", recs[-1].get("reason", ""))
        rc, _, err = st.credctl(ALICE, "status", "--json")
        self.assertEqual(rc, H.EXIT_OTHER, "status: %s" % err)
        self.assertIn("older copy", err)
        stats = self.stats()
        self.assertGreaterEqual(stats.get("store_rollbacks", 0), 3)
        self.assertEqual(stats.get("store_rollback_users"), 1, stats)
        rc, out, err = st.credctl("root", "admin", "list", "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        users = doc.get("users", []) if isinstance(doc, dict) else doc
        states = {u["user"]: u.get("state") for u in users}
        self.assertEqual(states.get(ALICE), "rolled_back", states)
        # An admin revoke clears it; a new consent works, after a restart too.
        rc, _, err = st.credctl("root", "admin", "revoke", ALICE)
        self.assertEqual(rc, 0, err)
        st.consent(ALICE)
        st.restart_credd()
        rc, _, err = st.token(ALICE, "storage")
        self.assertEqual(rc, 0, "new consent after the revoke: %s" % err)
        self.assertEqual(len(self.rollback_audits(ALICE)), before + 1)
        self.assertEqual(self.stats().get("store_rollback_users"), 0)

    def test_03_revoked_user_is_not_resurrected(self):
        st = self.stack
        st.consent(BOB)
        revoked = st.save_row(BOB)
        rc, _, err = st.credctl("root", "admin", "revoke", BOB)
        self.assertEqual(rc, 0, err)
        st.restore_row(BOB, revoked)
        st.restart_credd()
        n0 = self.chain_len(BOB)
        before = len(self.rollback_audits(BOB))
        rc, doc, err = st.token(BOB, "storage")
        self.assertEqual(rc, H.EXIT_OTHER, "bob's revoked consent came back: exit %d %s"
                         % (rc, err[:300]))
        self.assertEqual(self.chain_len(BOB), n0, "bob's revoked refresh token was sent")
        recs = self.rollback_audits(BOB)
        self.assertEqual(len(recs), before + 1, recs)
        self.assertIn("deleted", recs[-1].get("reason", ""))
        # The admin revokes again (the row goes); bob consents anew.
        rc, _, err = st.credctl("root", "admin", "revoke", BOB)
        self.assertEqual(rc, 0, err)
        st.consent(BOB)
        st.restart_credd()
        rc, _, err = st.token(BOB, "storage")
        self.assertEqual(rc, 0, "new consent after the revoke: %s" % err)
        # The old row still cannot come back over the new consent.
        st.restore_row(BOB, revoked)
        st.restart_credd()
        rc, _, err = st.token(BOB, "storage")
        self.assertEqual(rc, H.EXIT_OTHER, "old row over the new consent: %s" % err)


class NodesTests(Base, F.FaultTestCase):
    RECORDS_IN_MEMORY = 0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.node2 = Node2(cls.stack)
        cls.addClassCleanup(cls.node2.stop)
        cls.node2.start()

    def test_01_newer_rows_from_another_node_are_adopted(self):
        st, n2 = self.stack, self.node2
        st.consent(ALICE)
        for _ in range(3):
            # node2 rotates (strict: it must read the newest row), then
            # this node does, from node2's newer row.
            self.rotate(ALICE, node=n2)
            self.rotate(ALICE)
        self.assertTrue(self.stored_rt_is_newest(ALICE))
        self.assertEqual(self.rollback_audits(ALICE), [])
        self.assertEqual(self.rollback_audits(ALICE, n2.audit_records()), [])
        self.assertEqual(self.stats().get("store_rollbacks"), 0)

    def test_02_evicted_record_older_row_refused_cached_token_served(self):
        st = self.stack
        cached = st.consent(BOB)
        older = st.save_row(BOB)
        self.rotate(BOB)
        self.rotate(BOB)
        st.restore_row(BOB, older)
        n0 = self.chain_len(BOB)
        # A new scope needs the refresh token: the record is read again.
        rc, _, err = st.token(BOB, self.new_scope())
        self.assertEqual(rc, H.EXIT_UNAVAIL, "refresh over an older row: exit %d %s"
                         % (rc, err[:300]))
        self.assertEqual(self.chain_len(BOB), n0, "the restored refresh token was sent")
        # What is valid is still served.
        rc, doc, err = st.token(BOB, "storage")
        self.assertEqual(rc, 0, err)
        self.assertEqual(doc["access_token"], cached["access_token"])
        recs = self.rollback_audits(BOB)
        self.assertEqual(len(recs), 1, recs)
        self.assertIn("refused", recs[0].get("reason", ""))


if __name__ == "__main__":
    sys.exit(F.main(__name__, __doc__))
