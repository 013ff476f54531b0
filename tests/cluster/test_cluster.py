#!/usr/bin/python3
"""Cluster tests (issue 4, label `cluster`): three credd nodes sharing one
Entra emulator, one key ring and one PostgreSQL (the CTest fixture
cluster_pg, tests/cluster/pg-fixture.sh).

Run as root (CTest passes CREDD_BIN, CREDCTL_BIN, EMULATOR and the
fixture's CREDD_PG_DSN_FILE / CREDD_PG_DIR_FILE / CREDD_PG_PORT_FILE /
CREDD_SCRIPTS):
    PYTHONPATH=tests/integration /usr/bin/python3 tests/cluster/test_cluster.py \
        [--keep] [unittest args]
By hand: sh tests/cluster/pg-fixture.sh start /tmp/pgstate, then point the
CREDD_PG_*_FILE variables at /tmp/pgstate/pg.{dsn,dir,port}.
Not root: exits 77 (skipped).

Every cluster class gets its own emulator and three credd nodes (node1,
node2, node3: own socket, config, state/log dirs; one key ring copied to
each; [store] backend = postgres on the fixture's database). The rows of
the test tenant are deleted before each class. Figures the issue asks
for are printed as lines starting with "MEASURED".

Load generators run as the test users in child processes
(`python3 -c WORKER`), one per (node, user), talking to the nodes'
sockets directly, so that a storm is not limited by process start-up.
"""

import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness as H  # noqa: E402 (PYTHONPATH=tests/integration)
from harness import EXIT_ACT, EXIT_OK, EXIT_UNAVAIL, SCOPES  # noqa: E402

ALICE, BOB, CAROL, ADMIN = "entra_alice", "entra_bob", "entra_carol", "entra_admin"
NOT_SERVING = ("consent_required", "consent_pending", "reauth_required")

PG = {"dsn": None, "dir": None, "port": None, "scripts": None}


def measured(msg):
    line = "MEASURED " + msg
    print(line)
    sys.stdout.flush()


# ---------------------------------------------------------------- PostgreSQL

def pg_load():
    """The fixture's DSN, data dir and port (from the CREDD_PG_*_FILE files)."""
    def rd(env):
        p = os.environ.get(env)
        if not p:
            raise RuntimeError("%s is not set (run through CTest: the cluster_pg fixture)" % env)
        with open(p) as f:
            return f.read().strip()
    PG["dsn"] = rd("CREDD_PG_DSN_FILE")
    PG["dir"] = rd("CREDD_PG_DIR_FILE")
    PG["port"] = rd("CREDD_PG_PORT_FILE")
    PG["scripts"] = os.environ.get("CREDD_SCRIPTS") or os.path.join(H.PROJECT, "scripts")


def psql(sql, variables=None, timeout=30):
    """Run sql through psql with the fixture's DSN (the credd role);
    returns the rows as lists of strings. variables: psql -v NAME=VALUE,
    used in the SQL as :'NAME' (quoted by psql, never formatted here)."""
    cmd = ["psql", PG["dsn"], "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1"]
    for k, v in (variables or {}).items():
        cmd += ["-v", "%s=%s" % (k, v)]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C", "PGCONNECT_TIMEOUT": "10"}
    r = subprocess.run(cmd, input=sql, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, env=env)
    if r.returncode != 0:
        raise RuntimeError("psql failed (rc %d): %s" % (r.returncode, r.stderr.strip()[:500]))
    return [ln.split("\x1f") for ln in r.stdout.splitlines() if ln.strip()]


def pg_rows():
    """{username: (version, blob bytes, updated_by)} of the test tenant."""
    rows = psql("SELECT username, version, encode(blob, 'hex'), updated_by FROM credd_records"
                " WHERE tenant = :'t' ORDER BY username;\n", {"t": H.TENANT})
    return {r[0]: (int(r[1]), bytes.fromhex(r[2]), r[3]) for r in rows}


def pg_version(user):
    rows = psql("SELECT version FROM credd_records WHERE tenant = :'t' AND username = :'u';\n",
                {"t": H.TENANT, "u": user})
    return int(rows[0][0]) if rows else 0


def pg_wipe_tenant():
    """Forget the test tenant's rows (each class starts clean). The table
    may not exist yet on a fresh fixture: credd creates it on start."""
    psql("DO $$ BEGIN IF to_regclass('credd_records') IS NOT NULL THEN"
         " DELETE FROM credd_records WHERE tenant = '%s'; END IF; END $$;\n" % H.TENANT)


def pg_stop():
    subprocess.run([os.path.join(PG["scripts"], "pg-stop"), PG["dir"]], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)


def pg_start():
    r = subprocess.run([os.path.join(PG["scripts"], "pg-start"), PG["dir"], PG["port"]],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=180)
    if r.returncode != 0:
        raise RuntimeError("pg-start failed: %s" % r.stderr[-800:])
    if r.stdout.strip() != PG["dsn"]:
        raise RuntimeError("pg-start printed another DSN after the restart")


# ---------------------------------------------------------------- workers

# Runs as a test user in a child process: python3 -c WORKER 'JSON'.
# Modes:
#   loop: until `duration` s passed or `stop_file` exists, send token
#     requests (round robin over socks x scopes) with min_valid; one
#     persistent connection per socket, re-made after an error. Records
#     counts, error codes, distinct token fingerprints per socket, and
#     time-stamped transitions between ok and error per socket.
#   until_fail: announce "READY" after one successful round, then poll
#     every socket every `interval` s until each has answered with an
#     error (or `duration` s); reports the wall time of each socket's
#     first error and its code.
WORKER = r'''
import hashlib, json, os, socket, sys, time
a = json.loads(sys.argv[1])
socks = a["socks"]; scopes = a.get("scopes") or [None]
conns = {}
def req(path, scope, min_valid):
    o = {"v": 1, "op": "token"}
    if scope: o["scope"] = scope
    if min_valid is not None: o["min_valid"] = min_valid
    for attempt in (0, 1):
        s = conns.get(path)
        try:
            if s is None:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(a.get("timeout", 30))
                s.connect(path)
                conns[path] = [s, b""]
                s = conns[path]
            s[0].sendall((json.dumps(o) + "\n").encode())
            while b"\n" not in s[1]:
                d = s[0].recv(65536)
                if not d:
                    raise ConnectionError("eof")
                s[1] += d
            line, s[1] = s[1].split(b"\n", 1)
            return json.loads(line)
        except (OSError, ValueError, ConnectionError) as e:
            try:
                conns.pop(path)[0].close()
            except Exception:
                pass
            if attempt == 1:
                return {"ok": False, "error": {"code": "io:" + type(e).__name__}}
def code_of(r):
    if r.get("ok") and "access_token" in r:
        return None
    e = r.get("error")
    return e.get("code", "?") if isinstance(e, dict) else "?"
t0 = time.time()
if a["mode"] == "loop":
    n = 0; errors = {}; fps = {p: [] for p in socks}; trans = {p: [] for p in socks}
    state = {p: "ok" for p in socks}; lat_max = 0.0; seen = {p: set() for p in socks}
    while time.time() - t0 < a["duration"] and not (a.get("stop_file") and os.path.exists(a["stop_file"])):
        for p in socks:
            for sc in scopes:
                t1 = time.time()
                r = req(p, sc, a.get("min_valid"))
                lat_max = max(lat_max, time.time() - t1)
                n += 1
                c = code_of(r)
                if c is None:
                    fp = hashlib.sha256(r["access_token"].encode()).hexdigest()[:12]
                    if fp not in seen[p]:
                        seen[p].add(fp); fps[p].append(fp)
                    now = "ok"
                else:
                    errors[c] = errors.get(c, 0) + 1
                    now = c
                if now != state[p]:
                    trans[p].append([round(time.time(), 3), now]); state[p] = now
        if a.get("pause"):
            time.sleep(a["pause"])
    print(json.dumps({"n": n, "errors": errors, "fps": fps, "transitions": trans,
                      "lat_max": round(lat_max, 3), "seconds": round(time.time() - t0, 2)}))
elif a["mode"] == "until_fail":
    first = {}
    for p in socks:
        r = req(p, scopes[0], a.get("min_valid"))
        if code_of(r) is not None:
            print(json.dumps({"error": "not serving before the start", "code": code_of(r), "sock": p}))
            sys.exit(0)
    sys.stderr.write("READY\n"); sys.stderr.flush()
    polls = 0
    while len(first) < len(socks) and time.time() - t0 < a["duration"]:
        for p in socks:
            if p in first:
                continue
            r = req(p, scopes[0], a.get("min_valid"))
            polls += 1
            c = code_of(r)
            if c is not None:
                first[p] = [time.time(), c]
        time.sleep(a.get("interval", 0.01))
    print(json.dumps({"first_error": first, "polls": polls}))
'''


class Worker:
    """A WORKER child running as user."""

    def __init__(self, user, args):
        self.user = user
        self.args = args
        gid, groups = H.groups_of(user)
        self.p = subprocess.Popen(["/usr/bin/python3", "-c", WORKER, json.dumps(args)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  user=H.uid_of(user), group=gid, extra_groups=groups,
                                  cwd="/", env={"PATH": "/usr/bin:/bin", "LANG": "C"})

    def wait_ready(self, timeout=60):
        """until_fail: wait for READY on stderr (False if it ended instead)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.p.stderr.readline()
            if not line:
                return False
            if line.strip() == "READY":
                return True
        return False

    def result(self, timeout=300):
        out, err = self.p.communicate(timeout=timeout)
        try:
            return json.loads(out)
        except ValueError:
            raise AssertionError("worker as %s printed no JSON (rc %s): %r / %r"
                                 % (self.user, self.p.returncode, out[-300:], err[-800:]))

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.communicate()


# ---------------------------------------------------------------- nodes

class Node(H.Stack):
    """One credd of the cluster. The first node owns the emulator and the
    key ring; the others share them (the key file is copied, as an
    operator copies the key ring to every node)."""

    extra = ""  # appended to credd.conf (a class's own sections)

    def __init__(self, cname, node, primary=None, backend="postgres", lifetime=None, **kw):
        super().__init__("%s-%s" % (cname, node), lifetime=lifetime, **kw)
        self.node = node
        self.primary = primary
        self.backend = backend
        if primary is not None:
            self.oids = primary.oids  # one Entra: one oid per user

    def start(self):
        if self.primary is None:
            return super().start()
        cu = H.pwd.getpwnam(H.CREDD_USER)
        for d, mode, owner in ((self.run_dir, 0o755, 0), (self.etc_dir, 0o755, 0),
                               (self.log_dir, 0o755, cu.pw_uid),
                               (self.state_dir, 0o700, cu.pw_uid)):
            os.makedirs(d, exist_ok=True)
            os.chown(d, owner, cu.pw_gid if owner else 0)
            os.chmod(d, mode)
        p = self.primary
        self.port, self.sslctx, self.emu_dir = p.port, p.sslctx, p.emu_dir
        self.write_conf()
        self.keygen()
        self.check_config()
        self.start_credd()

    def keygen(self):
        if self.primary is None:
            return super().keygen()
        shutil.copy2(self.primary.key_file, self.key_file)

    def conf_text(self, backend=None, path=None):
        with open(self.conf) as f:
            txt = f.read()
        txt = txt.replace("node = test-node", "node = " + self.node)
        if path is not None:
            txt = txt.replace("path = " + self.state_dir + "\n", "path = " + path + "\n")
        if (backend or self.backend) == "postgres" and "backend = postgres" not in txt:
            txt = txt.replace("backend = file\n", "backend = postgres\ndsn = %s\n" % PG["dsn"])
        if (backend or self.backend) == "file":
            txt = txt.replace("backend = postgres\n", "backend = file\n")
            txt = "\n".join(ln for ln in txt.split("\n") if not ln.startswith("dsn = ")) + "\n"
        return txt

    def write_conf(self, extra=""):
        super().write_conf(extra + self.extra)
        txt = self.conf_text()
        with open(self.conf, "w") as f:
            f.write(txt)
        # The DSN carries the role's password: readable by credd only.
        os.chown(self.conf, 0, H.pwd.getpwnam(H.CREDD_USER).pw_gid)
        os.chmod(self.conf, 0o640)

    def kill9(self):
        """SIGKILL credd and reap it."""
        p = self.credd
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()

    def status(self, user):
        rc, out, err = self.credctl(user, "status", "--json")
        if rc != 0:
            raise AssertionError("credctl status on %s as %s: exit %d: %s" % (self.node, user, rc, err))
        return json.loads(out)

    def stats(self):
        r = self.request(ADMIN, {"v": 1, "op": "stats"})
        if not r.get("ok"):
            raise AssertionError("stats on %s: %s" % (self.node, r))
        return r.get("stats", r)

    def forced_token(self, user, scope="storage", min_valid=86400):
        """credctl token with a min_valid larger than any lifetime: a
        refresh unless the cached token is in its first half-life."""
        return self.token(user, scope, "--min-valid", str(min_valid))


class ClusterResult(H.DebugResult):
    def _dump(self, test):
        nodes = getattr(test, "nodes", None)
        if not nodes:
            return super()._dump(test)
        for n in nodes:
            n.failed = True
            n.debug_dump(self.stream)


class ClusterCase(unittest.TestCase):
    """Three nodes per class. LIFETIME: access-token lifetime (s)."""

    LIFETIME = 120
    NODES = 3
    nodes = []

    @classmethod
    def setUpClass(cls):
        pg_wipe_tenant()
        cname = cls.__name__[:10].lower()
        n1 = Node(cname, "node1", lifetime=cls.LIFETIME)
        cls.nodes = [n1]
        cls.addClassCleanup(cls._stop_all)
        n1.start()
        for i in range(2, cls.NODES + 1):
            n = Node(cname, "node%d" % i, primary=n1)
            cls.nodes.append(n)
            n.start()
        cls.stack = n1

    @classmethod
    def _stop_all(cls):
        for n in reversed(cls.nodes):
            try:
                n.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                H.log("stopping %s: %r" % (n.name, e))

    def setUp(self):
        for n in self.nodes:
            self.assertTrue(n.credd_alive(), "credd %s is not running (crashed earlier?)" % n.node)
        n1 = self.nodes[0]
        n1.clear()
        n1.ctl("POST", "rotation", {"strict": False})
        n1.lifetimes(access_token=self.LIFETIME)

    @property
    def n1(self):
        return self.nodes[0]

    def assertExit(self, got, want, what=""):
        rc, err = got[0], got[-1]
        self.assertEqual(rc, want, "%s: exit %s, want %s; stderr: %s" % (what, rc, want, str(err)[:600]))

    def assertTokenOf(self, doc, user, what=""):
        self.assertIsNotNone(doc, what)
        claims = H.jwt_claims(doc["access_token"])
        self.assertEqual(claims.get("oid"), self.n1.oid(user), "%s: token is not %s's" % (what, user))

    def consent_all(self, users, node=None):
        node = node or self.n1
        for u in users:
            doc = node.consent(u)
            self.assertTokenOf(doc, u, "consent of %s on %s" % (u, node.node))

    def reconsent(self, user, node=None, deadline=30):
        """A re-consent through node (exit 3 with a code, approve, token)."""
        node = node or self.n1
        code = node.start_consent(user, settle=5)
        node.approve(code, user)
        return node.wait_token(user, deadline=deadline)

    def wait_serving(self, node, user, deadline=60, forced=False):
        """Retry while exit 4 (store or IdP unavailable): seconds until a
        token came, or fail."""
        t0 = time.monotonic()
        while True:
            rc, doc, err = node.forced_token(user) if forced else node.token(user)
            if rc == EXIT_OK:
                self.assertTokenOf(doc, user)
                return time.monotonic() - t0
            if rc not in (EXIT_UNAVAIL, H.EXIT_OTHER) or time.monotonic() - t0 > deadline:
                self.fail("%s as %s: exit %d after %.1f s: %s"
                          % (node.node, user, rc, time.monotonic() - t0, err[:400]))
            time.sleep(0.5)

    BOUND = 10.0  # s: stop_delay's bound for a node to stop serving

    def stop_delay(self, user, action):
        n1, n2, n3 = self.nodes
        for node in (n1, n3):
            self.assertExit(node.token(user), EXIT_OK, "%s serves %s before" % (node.node, user))
        w = Worker(user, {"mode": "until_fail", "socks": [n1.sock, n3.sock], "scopes": [None],
                          "duration": 60, "interval": 0.01})
        try:
            self.assertTrue(w.wait_ready(), "the poller did not start")
            t0 = time.time()
            rc, out, err = action()
            t1 = time.time()
            self.assertEqual(rc, EXIT_OK, "%s: %s" % (action.__doc__, err))
            res = w.result(timeout=120)
        finally:
            w.kill()
        first = res.get("first_error", {})
        delays = {}
        for node in (n1, n3):
            self.assertIn(node.sock, first, "%s still served %s %s s after %s (polls %s)"
                          % (node.node, user, 60, action.__doc__, res))
            t, code = first[node.sock]
            self.assertIn(code, NOT_SERVING, "%s answered %s after %s" % (node.node, code, action.__doc__))
            delays[node.node] = (t - t1, t - t0, code)
        for name, (d_ack, d_start, code) in sorted(delays.items()):
            measured("%s on node2 -> %s stops serving %.3f s after the command returned "
                     "(%.3f s after it started; command took %.3f s), then answers %s"
                     % (action.__doc__, name, d_ack, d_start, t1 - t0, code))
            self.assertLessEqual(d_start, self.BOUND, "%s kept serving too long" % name)
        for node in (n1, n3):
            rc, doc, err = node.token(user)
            self.assertEqual(rc, EXIT_ACT, "%s served %s after %s: %s" % (node.node, user,
                                                                          action.__doc__, err))
        return delays

    # every class: no secret in any log, the audit, or the database
    def test_zz_canary_no_secret_in_logs(self):
        secrets = self.n1.issued_secrets()
        sources = {}
        for n in self.nodes:
            for k, v in n.leak_sources().items():
                sources["%s %s" % (n.node, k)] = v
        sources["database rows"] = b"".join(b for _, b, _ in pg_rows().values())
        leaks = H.find_leaks(sources, secrets)
        self.assertEqual(leaks, [], "secret material leaked:\n" + "\n".join(leaks[:20]))


# ==================================================================== tests

class T0SharedDeviceFlow(ClusterCase):
    """One device flow per user across the cluster: every node shows the
    same URL and code, only one node asks Entra for it, and the consent
    given for it serves every node."""

    def codes_on_all(self, user):
        codes = {}
        for n in self.nodes:
            rc, out, err = n.credctl(user, "token")
            self.assertEqual(rc, H.EXIT_ACT, "%s: exit %d: %s" % (n.node, rc, err[:300]))
            codes[n.node] = n.code_from_text(err)
        return codes

    def test_1_same_code_on_every_node(self):
        n1, n2, n3 = self.nodes
        c0 = n1.counters()["devicecode"]
        first = n2.start_consent(CAROL)
        codes = self.codes_on_all(CAROL)
        self.assertEqual(set(codes.values()), {first}, "codes differ: %s" % codes)
        self.assertEqual(n1.counters()["devicecode"] - c0, 1, "more than one device flow")
        n1.approve(first, CAROL)
        for n in self.nodes:
            self.assertTokenOf(n.wait_token(CAROL, deadline=40), CAROL, n.node)

    def test_2_simultaneous_starts_agree(self):
        import threading
        results = {}

        def ask(n):
            results[n.node] = n.credctl(ADMIN, "token")

        threads = [threading.Thread(target=ask, args=(n,)) for n in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for node, (rc, _, err) in results.items():
            self.assertEqual(rc, H.EXIT_ACT, "%s: %s" % (node, err[:300]))
        # Whatever each node asked Entra for, one claim won: from now on
        # every node shows that code.
        time.sleep(1.0)
        codes = self.codes_on_all(ADMIN)
        self.assertEqual(len(set(codes.values())), 1, "codes differ: %s" % codes)
        code = list(codes.values())[0]
        self.n1.approve(code, ADMIN)
        for n in self.nodes:
            self.assertTokenOf(n.wait_token(ADMIN, deadline=40), ADMIN, n.node)


class T1ConsentAndStorm(ClusterCase):
    """Consent once on node 1, tokens on every node; refresh storms."""

    STORM_SECONDS = float(os.environ.get("CLUSTER_STORM_SECONDS", "20"))
    STORM_LIFETIME = 4
    LIFETIME = STORM_LIFETIME  # no long-lived token cached before a storm
    USERS = (ALICE, BOB, CAROL)

    def test_1_consent_on_node1_serves_node2_node3(self):
        n1, n2, n3 = self.nodes
        c0 = n1.counters()
        self.consent_all(self.USERS, n1)
        dc = n1.counters()["devicecode"]
        self.assertEqual(dc - c0["devicecode"], len(self.USERS), "one device flow per user")
        rows = pg_rows()
        for u in self.USERS:
            self.assertIn(u, rows, "no row for %s after its consent" % u)
            self.assertEqual(rows[u][2], "node1", "updated_by of %s" % u)
        for node in (n2, n3):
            for u in self.USERS:
                t0 = time.monotonic()
                got = node.token(u)
                dt = time.monotonic() - t0
                self.assertExit(got, EXIT_OK, "token as %s on %s after consent on node1" % (u, node.node))
                self.assertTokenOf(got[1], u, node.node)
                st = node.status(u)
                self.assertEqual(st.get("state"), "ready", st)
                measured("first token of %s on %s (load from postgres + refresh): %.3f s"
                         % (u, node.node, dt))
        self.assertEqual(n1.counters()["devicecode"], dc, "a new device flow was started on node 2/3")

    def storm(self, strict):
        nodes = self.nodes
        n1 = self.n1
        n1.ctl("POST", "rotation", {"strict": strict})
        n1.lifetimes(access_token=self.STORM_LIFETIME)
        mode = "strict" if strict else "entra-like"
        # Every user must have a consent (test_1 ran first, same class).
        for u in self.USERS:
            self.wait_serving(n1, u, deadline=30)
        stats0 = [node.stats() for node in nodes]
        c0 = n1.counters()
        workers = []
        scopes = ["storage", "vault"]
        for node in nodes:
            for u in self.USERS:
                workers.append((node, u, Worker(u, {
                    "mode": "loop", "socks": [node.sock], "scopes": scopes,
                    "min_valid": 86400, "duration": self.STORM_SECONDS, "pause": 0.02})))
        try:
            results = [(node, u, w.result(timeout=self.STORM_SECONDS + 240)) for node, u, w in workers]
        finally:
            for _, _, w in workers:
                w.kill()
        c1 = n1.counters()
        stats1 = [node.stats() for node in nodes]
        grants = c1["refresh_token"] - c0["refresh_token"]
        reqs = sum(r["n"] for _, _, r in results)
        tokens = sum(len(fps) for _, _, r in results for fps in r["fps"].values())
        errors = {}
        for node, u, r in results:
            for c, k in r["errors"].items():
                errors["%s/%s/%s" % (node.node, u, c)] = k
        credd_refreshes = sum(s1.get("refreshes", 0) - s0.get("refreshes", 0)
                              for s0, s1 in zip(stats0, stats1))
        conflicts = sum(s1.get("store_conflicts", 0) - s0.get("store_conflicts", 0)
                        for s0, s1 in zip(stats0, stats1))
        lat = max(r["lat_max"] for _, _, r in results)
        measured("storm %s: %d nodes x %d users x %d scopes, %.0f s, token lifetime %d s: "
                 "%d requests (min_valid > lifetime), %d new access tokens served (= refreshes "
                 "needed), %d Entra refresh_token grants, credd refreshes %d, store conflicts %d, "
                 "Entra calls per needed refresh %.3f, slowest request %.2f s, errors %s"
                 % (mode, len(nodes), len(self.USERS), len(scopes), self.STORM_SECONDS,
                    self.STORM_LIFETIME, reqs, tokens, grants, credd_refreshes, conflicts,
                    grants / max(tokens, 1), lat, errors or "none"))
        bad = {k: v for k, v in errors.items() if k.rsplit("/", 1)[1] in NOT_SERVING}
        self.assertEqual(bad, {}, "%s storm: a request failed because a consent was lost "
                         "(a superseded refresh token used?)" % mode)
        self.assertEqual(errors, {}, "%s storm: requests failed" % mode)
        self.assertGreater(tokens, len(nodes) * len(self.USERS) * len(scopes),
                           "the storm forced too few refreshes to mean anything")
        # Every grant produced a token someone was served, or the
        # proactive refresh of a used token: at most a few spare calls.
        self.assertGreaterEqual(grants, tokens - len(workers) * len(scopes),
                                "fewer Entra calls than tokens served?")
        self.assertLessEqual(grants, tokens + len(workers) * len(scopes) + 5,
                             "more Entra calls than refreshes needed")
        # Every consent survived: each node refreshes each user once more.
        for node in nodes:
            for u in self.USERS:
                got = node.forced_token(u, "graph")
                self.assertExit(got, EXIT_OK, "%s after the %s storm, %s" % (u, mode, node.node))
        n1.ctl("POST", "rotation", {"strict": False})

    def test_2_refresh_storm_entra_like(self):
        self.storm(strict=False)

    def test_3_refresh_storm_strict(self):
        self.storm(strict=True)


class T2LogoutRevoke(ClusterCase):
    """Logout / admin revoke on node 2 stop nodes 1 and 3 from serving."""

    def test_1_logout_on_node2(self):
        n1, n2, n3 = self.nodes
        self.consent_all([ALICE], n1)
        dc0 = n1.counters()["devicecode"]

        def logout():
            """credctl logout"""
            return n2.credctl(ALICE, "logout")
        self.stop_delay(ALICE, logout)
        self.assertEqual(n2.status(ALICE).get("state"), "none")
        self.assertGreaterEqual(n1.counters()["devicecode"], dc0)

    def test_2_admin_revoke_on_node2(self):
        n1, n2, n3 = self.nodes
        self.reconsent(BOB, n1)
        for node in (n2, n3):
            self.assertExit(node.token(BOB), EXIT_OK, "bob on %s" % node.node)

        def revoke():
            """credctl admin revoke"""
            return n2.credctl(ADMIN, "admin", "revoke", BOB)
        v0 = pg_version(BOB)
        self.stop_delay(BOB, revoke)
        # The revoke deleted the row. The pollers' next requests started a
        # new sign-in, which is shared through a new row (version 1) that
        # holds only the pending flow: no consent came back.
        rows = pg_rows()
        if BOB in rows:
            self.assertEqual(rows[BOB][0], 1, "bob's old row survived the revoke "
                             "(was version %s)" % v0)
        for node in self.nodes:
            self.assertNotEqual(node.status(BOB).get("state"), "ready",
                                "%s still holds bob's consent" % node.node)


OFF_ID = "99999999-8888-7777-6666-555555555555"
OFF_SECRET = "CANARY-cluster-offboard-secret-2b7c"


class T7OffboardEntra(ClusterCase):
    """admin revoke --entra on node 2 (issue 17 part 3): Graph revokes the
    user's sessions as the offboarding app, and nodes 1 and 3 stop serving
    the user; measures the time until no node serves them."""

    @classmethod
    def setUpClass(cls):
        plain = Node.write_conf

        def write_conf(self, extra=""):
            path = os.path.join(self.etc_dir, "offboard-secret")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(OFF_SECRET + "\n")
            plain(self, extra + "\n[offboarding]\nclient_id = %s\nclient_secret_file = %s\n"
                  "graph_url = https://127.0.0.1:%d\n" % (OFF_ID, path, self.port))
        Node.write_conf = write_conf
        try:
            super().setUpClass()
        finally:
            Node.write_conf = plain
        cls.nodes[0].ctl("POST", "register_app", {"client_id": OFF_ID, "secret": OFF_SECRET,
                                                  "roles": ["User.RevokeSessions.All"]})

    def test_1_revoke_entra_on_node2(self):
        n1, n2, n3 = self.nodes
        self.consent_all([CAROL], n1)

        def revoke():
            """credctl admin revoke --entra"""
            return n2.credctl(ADMIN, "admin", "revoke", CAROL, "--entra")
        delays = self.stop_delay(CAROL, revoke)
        measured("admin revoke --entra on node2 -> no node serves the user: %.3f s after "
                 "the command started (the slowest node's first refusal; the Graph call "
                 "included)" % max(d[1] for d in delays.values()))
        revs = n1.ctl("GET", "graph_revokes")["revokes"]
        self.assertTrue(revs and revs[-1]["status"] == 200 and revs[-1]["azp"] == OFF_ID
                        and revs[-1]["oid"] == n1.oid(CAROL), revs)
        # Entra's side too: the refresh tokens it issued to carol are dead.
        recs = [r for r in n2.audit_records() if r.get("event") == "offboard"]
        self.assertTrue(recs and recs[-1].get("outcome") == "ok", recs)

    def test_zz_canary_no_secret_in_logs(self):
        secrets = self.n1.issued_secrets() + [OFF_SECRET]
        sources = {}
        for n in self.nodes:
            for k, v in n.leak_sources().items():
                sources["%s %s" % (n.node, k)] = v
        sources["database rows"] = b"".join(b for _, b, _ in pg_rows().values())
        leaks = H.find_leaks(sources, secrets)
        self.assertEqual(leaks, [], "secret material leaked:\n" + "\n".join(leaks[:20]))


class T3PostgresRestart(ClusterCase):
    """PostgreSQL restarted in the middle of a run."""

    LIFETIME = 4  # short-lived tokens: the run keeps refreshing

    def test_1_restart_mid_run(self):
        nodes = self.nodes
        n1 = self.n1
        users = (ALICE, BOB)
        self.consent_all(users, n1)
        for node in nodes:
            for u in users:
                self.assertExit(node.token(u), EXIT_OK, "%s on %s" % (u, node.node))
        rows0 = pg_rows()
        dc0 = n1.counters()["devicecode"]
        duration = 40.0
        workers = [(node, u, Worker(u, {"mode": "loop", "socks": [node.sock], "scopes": ["storage"],
                                        "min_valid": 86400, "duration": duration, "pause": 0.05,
                                        "timeout": 30}))
                   for node in nodes for u in users]
        try:
            time.sleep(8)
            t_stop = time.time()
            pg_stop()
            t_stopped = time.time()
            time.sleep(5)
            t_start = time.time()
            pg_start()
            t_started = time.time()
            results = [(node, u, w.result(timeout=duration + 240)) for node, u, w in workers]
        finally:
            for _, _, w in workers:
                w.kill()
        measured("postgres stop took %.2f s, down for %.2f s, start took %.2f s"
                 % (t_stopped - t_stop, t_start - t_stopped, t_started - t_start))
        for node, u, r in results:
            trans = r["transitions"][node.sock]
            errs_during = r["errors"]
            # The last transition must be back to ok (service resumed on its own).
            last_state = trans[-1][1] if trans else "ok"
            resumed = [t for t, s in trans if s == "ok" and t >= t_stop]
            resume_after = (resumed[-1] - t_started) if (resumed and errs_during) else 0.0
            measured("pg restart: %s %s: %d requests, %d tokens, errors %s, resumed %.2f s after "
                     "pg-start returned" % (node.node, u, r["n"], len(r["fps"][node.sock]),
                                            errs_during or "none", resume_after))
            self.assertEqual(last_state, "ok", "%s as %s did not resume: %s" % (node.node, u, trans))
            bad = {c: k for c, k in errs_during.items() if c in NOT_SERVING}
            self.assertEqual(bad, {}, "%s as %s: a consent was lost across the restart" % (node.node, u))
        # No record lost: rows still there, every node still refreshes.
        for node in nodes:
            for u in users:
                self.wait_serving(node, u, deadline=60, forced=True)
        rows1 = pg_rows()
        for u in users:
            self.assertIn(u, rows1, "row of %s lost" % u)
            self.assertGreater(rows1[u][0], rows0[u][0], "no rotation of %s written" % u)
        self.assertEqual(n1.counters()["devicecode"], dc0, "a re-consent was needed")
        deadline = time.monotonic() + 60
        for node in nodes:
            while True:
                s = node.stats()
                if s.get("store_unwritten_users", 0) == 0 or time.monotonic() > deadline:
                    break
                time.sleep(1)
            self.assertEqual(s.get("store_unwritten_users", 0), 0, "%s: %s" % (node.node, s))

    def test_2_unwritten_token_pinned_and_written_later(self):
        # Strict rotation: only the newest refresh token works, so a
        # refresh on node 2 afterwards proves node 1 wrote the newest.
        n1, n2, n3 = self.nodes
        n1.lifetimes(access_token=120)  # the token handed out stays cached
        self.wait_serving(n1, ALICE, deadline=30)
        n1.ctl("POST", "rotation", {"strict": True})
        v0 = pg_version(ALICE)
        # A refresh on node 1 whose Entra reply comes after the database went away.
        n1.fault("slow", grant="refresh_token", delay=4, count=1)
        p = subprocess.Popen([H.BIN["credctl"], "--socket", n1.sock, "token", "graph", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             user=H.uid_of(ALICE), group=H.groups_of(ALICE)[0],
                             extra_groups=H.groups_of(ALICE)[1], env={"PATH": "/usr/bin:/bin"})
        try:
            time.sleep(1.5)
            pg_stop()
            out, err = p.communicate(timeout=60)
        except BaseException:
            p.kill()
            pg_start()
            raise
        try:
            self.assertEqual(p.returncode, 0, "the token was not handed out while the database "
                             "was down: %s" % err)
            st = n1.status(ALICE)
            measured("status while postgres is down: store=%r" % st.get("store"))
            self.assertEqual(st.get("store"), "refresh token not yet written", st)
            s = n1.stats()
            self.assertGreaterEqual(s.get("store_unwritten_users", 0), 1, s)
            # Cached tokens keep being served while the database is down.
            t0 = time.monotonic()
            for _ in range(20):
                self.assertExit(n1.token(ALICE, "graph"), EXIT_OK, "cached token, database down")
            measured("20 cached-token requests with postgres down: %.2f s (credctl processes)"
                     % (time.monotonic() - t0))
        finally:
            t_start = time.monotonic()
            pg_start()
        deadline = time.monotonic() + 90
        while n1.status(ALICE).get("store") != "ok":
            self.assertLess(time.monotonic(), deadline, "the pinned refresh token was never written")
            time.sleep(0.5)
        measured("pinned refresh token written %.2f s after postgres was back"
                 % (time.monotonic() - t_start))
        self.assertGreater(pg_version(ALICE), v0, "no new version written")
        # Node 2 refreshes with what is stored: must be the newest token.
        got = n2.forced_token(ALICE, "vault")
        self.assertExit(got, EXIT_OK, "node2 refresh under strict rotation after the outage")
        n1.ctl("POST", "rotation", {"strict": False})


class T4SwappedRows(ClusterCase):
    """Blobs swapped between two users' rows: nothing opens, audited."""

    def test_swapped_rows(self):
        n1, n2, n3 = self.nodes
        self.consent_all([ALICE, BOB], n1)
        rows = pg_rows()
        psql("UPDATE credd_records a SET blob = b.blob FROM credd_records b"
             " WHERE a.tenant = :'t' AND b.tenant = a.tenant AND"
             " ((a.username = :'u1' AND b.username = :'u2') OR"
             "  (a.username = :'u2' AND b.username = :'u1'));\n",
             {"t": H.TENANT, "u1": ALICE, "u2": BOB})
        after = pg_rows()
        self.assertEqual(after[ALICE][1], rows[BOB][1])
        self.assertEqual(after[BOB][1], rows[ALICE][1])
        dc0 = n1.counters()["devicecode"]
        n3.restart_credd()
        for u in (ALICE, BOB):
            rc, doc, err = n3.token(u)
            self.assertNotEqual(rc, EXIT_OK, "node3 served %s from a swapped row" % u)
            self.assertIsNone(doc)
            measured("swapped row: token as %s on restarted node3 -> exit %d (%s)"
                     % (u, rc, err.strip()[:120]))
        audited = {r.get("user") for r in n3.audit_records() if r.get("event") == "record_unreadable"}
        self.assertIn(ALICE, audited, "no record_unreadable audit event for alice")
        self.assertIn(BOB, audited, "no record_unreadable audit event for bob")
        # No device flow was started over the unreadable record, and
        # the rows were not overwritten.
        self.assertEqual(n1.counters()["devicecode"], dc0)
        self.assertEqual(pg_rows()[ALICE][1], rows[BOB][1])
        # Swap back: both open again on a fresh node.
        psql("UPDATE credd_records a SET blob = b.blob FROM credd_records b"
             " WHERE a.tenant = :'t' AND b.tenant = a.tenant AND"
             " ((a.username = :'u1' AND b.username = :'u2') OR"
             "  (a.username = :'u2' AND b.username = :'u1'));\n",
             {"t": H.TENANT, "u1": ALICE, "u2": BOB})
        n3.restart_credd()
        for u in (ALICE, BOB):
            self.assertExit(n3.token(u), EXIT_OK, "%s after the rows were swapped back" % u)


class T5KillDuringRotation(ClusterCase):
    """kill -9 of node 1 at a random moment of a refresh."""

    ITER = int(os.environ.get("CLUSTER_KILL_ITER", "40"))

    def chain_len(self, user):
        ch = self.n1.ctl("GET", "refresh_chain").get("accounts", {})
        return len(ch.get(self.n1.oid(user), []))

    def kill_loop(self, strict):
        n1, n2, n3 = self.nodes
        mode = "strict" if strict else "entra-like"
        rnd = random.Random(int(os.environ.get("CLUSTER_SEED", str(int(time.time())))))
        n1.ctl("POST", "rotation", {"strict": strict})
        # Measure how long a refresh on a freshly started node takes.
        durs = []
        for _ in range(3):  # credctl start-up included, as in the loop
            n1.restart_credd()
            t0 = time.monotonic()
            self.assertExit(n1.token(ALICE), EXIT_OK, "alice on a fresh node1")
            durs.append(time.monotonic() - t0)
        # Kill uniformly over [0, 1.1 x the median request time], so most
        # kills land inside the request (lock, Entra, write, reply).
        span = sorted(durs)[1] * 1.1
        stop_file = os.path.join(n2.root, "stop-%s" % mode)
        bg = [Worker(BOB, {"mode": "loop", "socks": [n2.sock, n3.sock], "scopes": ["storage"],
                           "duration": 3600, "stop_file": stop_file, "pause": 0.05})]
        table = []  # (kill_at, rotated, written, lost)
        dc0 = n1.counters()["devicecode"]
        try:
            for i in range(self.ITER):
                n1.restart_credd()
                c0, v0 = self.chain_len(ALICE), pg_version(ALICE)
                p = subprocess.Popen([H.BIN["credctl"], "--socket", n1.sock, "token", "--json"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     user=H.uid_of(ALICE), group=H.groups_of(ALICE)[0],
                                     extra_groups=H.groups_of(ALICE)[1],
                                     env={"PATH": "/usr/bin:/bin"})
                kill_at = rnd.uniform(0, span)
                time.sleep(kill_at)
                n1.kill9()
                p.wait(60)
                time.sleep(0.5)  # let Entra finish a request that was in flight
                n1.start_credd()
                # Read after the restart: a request that reached Entra
                # before the kill has surely been answered by now.
                c1, v1 = self.chain_len(ALICE), pg_version(ALICE)
                rotated, written = c1 > c0, v1 > v0
                rc, doc, err = n1.token(ALICE)
                lost = rc != EXIT_OK
                if lost:
                    self.assertEqual(rc, EXIT_ACT, "iteration %d: exit %d: %s" % (i, rc, err))
                    self.reconsent(ALICE, n1)
                table.append((kill_at, rotated, written, lost, p.returncode))
        finally:
            with open(stop_file, "w"):
                pass
            bgres = [w.result(timeout=120) for w in bg]
            n1.ctl("POST", "rotation", {"strict": False})
        window = [t for t in table if t[1] and not t[2]]
        before = [t for t in table if not t[1]]
        after = [t for t in table if t[1] and t[2]]
        lost = [t for t in table if t[3]]
        measured("kill -9 %s: %d kills at 0..%.2f s into a refresh on a fresh node (refresh took "
                 "%s s): %d before Entra rotated, %d between Entra's rotation and the write, "
                 "%d after the write; request answered before the kill in %d; re-consents needed %d "
                 "(devicecode calls %d)"
                 % (mode, len(table), span, ", ".join("%.2f" % d for d in durs), len(before),
                    len(window), len(after), sum(1 for t in table if t[4] == 0), len(lost),
                    n1.counters()["devicecode"] - dc0))
        for r in bgres:
            measured("kill -9 %s: bob on node2+node3 meanwhile: %d requests, errors %s"
                     % (mode, r["n"], r["errors"] or "none"))
            self.assertEqual(r["errors"], {}, "node 2/3 stopped serving while node 1 was killed")
        if not strict:
            self.assertEqual(lost, [], "entra-like rotation: a kill cost a consent")
        else:
            out_of_window = [t for t in lost if not (t[1] and not t[2])]
            self.assertEqual(out_of_window, [], "strict: a re-consent from a kill outside the "
                             "reply-to-write window (kill_at, rotated, written, lost, rc)")
            unexplained = [t for t in window if not t[3]]
            self.assertEqual(unexplained, [], "strict: Entra rotated, nothing was written, yet the "
                             "stored refresh token still worked?")

    def test_1_kill9_entra_like(self):
        self.consent_all([ALICE, BOB], self.n1)
        self.kill_loop(strict=False)

    def test_2_kill9_strict(self):
        self.wait_serving(self.n1, ALICE, deadline=30)
        self.kill_loop(strict=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


REDIRECT = "https://platform.test/entra/callback"
LINK_PREFIX = "https://platform.test/entra/login/"


def signin_module():
    """tests/integration/test_signin.py: its credential fixtures."""
    sys.path.insert(0, os.path.join(H.PROJECT, "tests", "integration"))
    import test_signin
    return test_signin


class SigninCluster(ClusterCase):
    """Three nodes with `signin = auth_code` and EXTRA(cls, i, port)
    appended to node i's credd.conf (port: a free one for [callback])."""

    @classmethod
    def extra(cls, i, port):
        return "\n[entra]\nsignin = auth_code\n"

    @classmethod
    def setUpClass(cls):
        S = signin_module()
        pg_wipe_tenant()
        cname = cls.__name__[:10].lower()
        cls.nodes, cls.cports, cls.codes = [], [], []
        cls.addClassCleanup(cls._stop_all)
        for i in range(1, 4):
            port = H.free_port()
            n = Node(cname, "node%d" % i, primary=cls.nodes[0] if cls.nodes else None,
                     lifetime=cls.LIFETIME if i == 1 else None,
                     account_match=S.DOMAIN_MATCH)
            n.extra = cls.extra(i, port)
            cls.nodes.append(n)
            cls.cports.append(port)
            n.start()
        cls.stack = cls.nodes[0]

    def follow(self, url):
        """The browser at Entra: the authorize URL's redirect back."""
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.n1.sslctx), _NoRedirect())
        try:
            opener.open(url, timeout=15)
        except urllib.error.HTTPError as e:
            if e.code == 302:
                return e.headers["Location"]
            raise AssertionError("authorize answered %d" % e.code)
        raise AssertionError("authorize did not redirect")

    def signin_next(self, user):
        self.n1.ctl("POST", "signin_next", {"oid": self.n1.oid(user),
                                            "preferred_username": self.n1.upn(user),
                                            "outcome": "approve"})

    def first_token(self, node, user, t0, deadline=30):
        """credctl token on node until it serves: seconds since t0."""
        while True:
            rc, doc, err = node.token(user)
            if rc == EXIT_OK:
                self.assertTokenOf(doc, user, node.node)
                return time.monotonic() - t0
            self.assertLess(time.monotonic() - t0, deadline, "%s: %s" % (node.node, err[:300]))
            time.sleep(0.02)


class T8CallbackAcrossNodes(SigninCluster):
    """Issue 13: the platform-callback code flow in a cluster. The flow
    (PKCE verifier, state, link) lives in the user's sealed record, and
    its state and link id carry the user sealed (credd/flowref.h): a
    user starts on node1, the browser follows the short link on node3,
    and the callback lands on node2, which redeems the code with the
    app credential (CLIENT_AUTH); every node serves; replays are refused
    on every node; node2 refreshes (confidential, rotated) after node1
    stops and after its own restart."""

    CLIENT_AUTH = "certificate"

    @classmethod
    def extra(cls, i, port):
        return ("\n[entra]\nsignin = auth_code\n%s\n[callback]\nlisten = 127.0.0.1:%d\n"
                "redirect_uri = %s\n" % (cls.auth, port, REDIRECT))

    @classmethod
    def setUpClass(cls):
        S = signin_module()
        cls.cred_dir = tempfile.mkdtemp(prefix="credd-cl-cred-", dir="/tmp")
        os.chmod(cls.cred_dir, 0o755)
        cls.addClassCleanup(shutil.rmtree, cls.cred_dir, True)
        key = S._rsa_key()
        path = os.path.join(cls.cred_dir, "client." + cls.CLIENT_AUTH)
        if cls.CLIENT_AUTH == "certificate":
            cls.cert_pem, data = S._cert_pem(key)
            cls.credential = data.decode().split("PRIVATE KEY-----\n")[1].splitlines()[3]
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o600)
            cls.auth = "client_auth = certificate\nclient_certificate_file = %s" % path
        else:
            cls.credential = S._fed_token(key)
            with open(path, "w") as f:
                f.write(cls.credential)
            cu = H.pwd.getpwnam(H.CREDD_USER)
            os.chown(path, cu.pw_uid, cu.pw_gid)  # read afresh after privilege drop
            os.chmod(path, 0o400)
            cls.auth = "client_auth = federated\nclient_assertion_file = %s" % path
        super().setUpClass()
        n1 = cls.nodes[0]
        n1.ctl("POST", "register_redirect", {"uri": REDIRECT, "kind": "web"})
        if cls.CLIENT_AUTH == "certificate":
            n1.ctl("POST", "register_certificate", {"pem": cls.cert_pem})
        else:
            n1.ctl("POST", "register_federated", {
                "issuer": S.FIC_ISSUER, "subject": S.FIC_SUBJECT,
                "jwks": {"keys": [S._jwk(key, "k1")]}})

    def listener(self, i, path_query):
        """GET on node i's callback listener (the proxy's hop)."""
        opener = urllib.request.build_opener(_NoRedirect())
        url = "http://127.0.0.1:%d%s" % (self.cports[i], path_query)
        try:
            with opener.open(url, timeout=60) as r:
                return r.status, r.headers.get("Location"), r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Location"), e.read().decode("utf-8", "replace")

    def chain(self, user):
        return self.n1.ctl("GET", "refresh_chain").get("accounts", {}).get(self.n1.oid(user), [])

    def start_signin(self, user, node):
        """The first credctl token on node: exit 3 and the short link on
        stderr; the link's id."""
        self.signin_next(user)
        rc, _, err = node.credctl(user, "token")
        self.assertEqual(rc, H.EXIT_ACT, err)
        m = re.search(re.escape(LINK_PREFIX) + r"([A-Za-z0-9_-]+)", err)
        self.assertIsNotNone(m, err)
        link_id = m.group(1)
        self.assertRegex(link_id, r"^[A-Za-z0-9_-]{86,200}$")
        self.assertNotIn(user, link_id)
        r = node.request(user, {"v": 1, "op": "token"})
        err = r.get("error", {})
        self.assertEqual(err.get("code"), "consent_pending", r)
        self.assertEqual(err.get("method"), "auth_code", r)
        self.assertEqual(err.get("signin_url"), LINK_PREFIX + link_id, r)
        return link_id

    def refused_on(self, node):
        return [r for r in node.audit_records() if r.get("event") == "request_refused"
                and "signin_callback" in json.dumps(r)]

    def test_1_link_on_node3_callback_on_node2(self):
        n1, n2, n3 = self.nodes
        t0 = time.monotonic()
        link_id = self.start_signin(ALICE, n1)
        # Every node shows the same link (the flow is in the record).
        for n in (n2, n3):
            r = n.request(ALICE, {"v": 1, "op": "token"})
            self.assertEqual(r.get("error", {}).get("signin_url"), LINK_PREFIX + link_id, r)
        status, authorize, page = self.listener(2, "/entra/login/" + link_id)
        self.assertEqual(status, 302, page)
        back = self.follow(authorize)
        self.assertTrue(back.startswith(REDIRECT + "?"), back)
        u = urllib.parse.urlsplit(back)
        q = urllib.parse.parse_qs(u.query)
        self.codes.append(q["code"][0])
        self.assertNotIn(ALICE, q["state"][0])
        status, _, page = self.listener(1, u.path + "?" + u.query)
        self.assertEqual(status, 200, page)
        self.assertIn("Signed in as %s." % ALICE, page)
        took = self.first_token(n2, ALICE, t0)
        measured("platform callback (%s) across nodes (credctl token on node1, link on node3, "
                 "callback on node2): first credctl token -> first token served on node2 %.2f s"
                 % (self.CLIENT_AUTH, took))
        rc, doc, err = n2.token(ALICE)
        self.assertEqual(H.jwt_claims(doc["access_token"]).get("azpacr"), "2")
        for n in (n1, n3):
            self.assertTokenOf(n.wait_token(ALICE, deadline=30), ALICE, n.node)
        # Replays of the state and the link on the other nodes.
        for i in (0, 2):
            status, _, page = self.listener(i, u.path + "?" + u.query)
            self.assertEqual(status, 400, "node%d: %s" % (i + 1, page))
            self.assertIn("not valid any more: it was already used", page)
        for i in (0, 1, 2):
            status, _, _ = self.listener(i, "/entra/login/" + link_id)
            self.assertEqual(status, 404, "node%d" % (i + 1))
        for n in (n1, n3):
            deadline = time.monotonic() + 10
            while not self.refused_on(n) and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertTrue(self.refused_on(n), "%s: no audit of the replay" % n.node)

    def test_2_racing_callbacks_redeem_once(self):
        n1, n2, n3 = self.nodes
        link_id = self.start_signin(BOB, n3)
        status, authorize, page = self.listener(0, "/entra/login/" + link_id)
        self.assertEqual(status, 302, page)
        back = self.follow(authorize)
        u = urllib.parse.urlsplit(back)
        self.codes.append(urllib.parse.parse_qs(u.query)["code"][0])
        c0 = n1.counters().get("authorization_code", 0)
        out = {}

        def hit(i):
            out[i] = self.listener(i, u.path + "?" + u.query)
        ts = [threading.Thread(target=hit, args=(i,)) for i in (0, 1)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(90)
        statuses = sorted(out[i][0] for i in (0, 1))
        self.assertEqual(statuses, [200, 400], out)
        loser = [out[i][2] for i in (0, 1) if out[i][0] == 400][0]
        self.assertIn("already used", loser)
        self.assertEqual(n1.counters().get("authorization_code", 0) - c0, 1,
                         "the code was redeemed more than once")
        for n in self.nodes:
            self.assertTokenOf(n.wait_token(BOB, deadline=30), BOB, n.node)

    def test_3_handover_refresh_after_node1_stops_and_restart(self):
        """A consent obtained through the callback on node1 (started on
        node3, link on node2) is refreshed on node2 with the app
        credential (the emulator refuses a confidential refresh without
        it; azpacr 2), rotating the refresh token, after node1 stopped
        and after node2 restarted."""
        n1, n2, n3 = self.nodes
        self.assertExit(n3.credctl(ALICE, "logout"), EXIT_OK, "logout")
        link_id = self.start_signin(ALICE, n3)
        status, authorize, page = self.listener(1, "/entra/login/" + link_id)
        self.assertEqual(status, 302, page)
        u = urllib.parse.urlsplit(self.follow(authorize))
        self.codes.append(urllib.parse.parse_qs(u.query)["code"][0])
        status, _, page = self.listener(0, u.path + "?" + u.query)
        self.assertEqual(status, 200, page)
        rc, _, err = n2.token(ALICE)
        self.assertEqual(rc, EXIT_OK, err)
        n1.stop_credd()
        try:
            before = len(self.chain(ALICE))
            rc, doc, err = n2.forced_token(ALICE, "vault")
            self.assertEqual(rc, EXIT_OK, err)
            self.assertEqual(H.jwt_claims(doc["access_token"]).get("azpacr"), "2")
            chain = self.chain(ALICE)
            self.assertGreater(len(chain), before, "no rotation on node2")
            n2.restart_credd()
            before = len(self.chain(ALICE))
            rc, doc, err = n2.forced_token(ALICE, "graph")
            self.assertEqual(rc, EXIT_OK, err)
            self.assertEqual(H.jwt_claims(doc["access_token"]).get("azpacr"), "2")
            self.assertGreater(len(self.chain(ALICE)), before, "no rotation after the restart")
        finally:
            n1.start_credd()

    def test_4_simultaneous_starts_show_one_link(self):
        """Three nodes start at once: one claim wins, and each node's
        first answer already shows the winner's link (a start waits for
        its claim)."""
        self.signin_next(ADMIN)
        results = {}

        def ask(n):
            results[n.node] = n.credctl(ADMIN, "token")
        threads = [threading.Thread(target=ask, args=(n,)) for n in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        links = {}
        for node, (rc, _, err) in results.items():
            self.assertEqual(rc, H.EXIT_ACT, "%s: %s" % (node, err[:300]))
            m = re.search(re.escape(LINK_PREFIX) + r"([A-Za-z0-9_-]+)", err)
            self.assertIsNotNone(m, err)
            links[node] = m.group(1)
        self.assertEqual(len(set(links.values())), 1, "links differ: %s" % links)
        link_id = links["node1"]
        status, authorize, page = self.listener(1, "/entra/login/" + link_id)
        self.assertEqual(status, 302, page)
        u = urllib.parse.urlsplit(self.follow(authorize))
        self.codes.append(urllib.parse.parse_qs(u.query)["code"][0])
        status, _, page = self.listener(0, u.path + "?" + u.query)
        self.assertEqual(status, 200, page)
        for n in self.nodes:
            self.assertTokenOf(n.wait_token(ADMIN, deadline=30), ADMIN, n.node)

    def test_5_flow_survives_a_restart_of_its_node(self):
        """The flow lives in the record: node1 restarts between the start
        and the callback, and the callback on node1 still signs in."""
        n1 = self.n1
        link_id = self.start_signin(CAROL, n1)
        n1.restart_credd()
        status, authorize, page = self.listener(0, "/entra/login/" + link_id)
        self.assertEqual(status, 302, page)
        u = urllib.parse.urlsplit(self.follow(authorize))
        self.codes.append(urllib.parse.parse_qs(u.query)["code"][0])
        status, _, page = self.listener(0, u.path + "?" + u.query)
        self.assertEqual(status, 200, page)
        for n in self.nodes:
            self.assertTokenOf(n.wait_token(CAROL, deadline=30), CAROL, n.node)

    def test_zz_canary_no_secret_in_logs(self):
        secrets = self.n1.issued_secrets() + self.codes + [self.credential]
        sources = {}
        for n in self.nodes:
            for k, v in n.leak_sources().items():
                sources["%s %s" % (n.node, k)] = v
        sources["database rows"] = b"".join(b for _, b, _ in pg_rows().values())
        leaks = H.find_leaks(sources, secrets)
        self.assertEqual(leaks, [], "secret material leaked:\n" + "\n".join(leaks[:20]))


class T9CallbackAcrossNodesFederated(T8CallbackAcrossNodes):
    """T8 with `client_auth = federated` (a workload identity token file,
    re-read for every grant, on every node)."""

    CLIENT_AUTH = "federated"


class T10PasteAcrossNodes(SigninCluster):
    """The paste-back code flow (public client) in a cluster, with
    `signin = device_code,auth_code`: a device flow that Conditional
    Access blocks falls back to the code flow (test_1 at the start,
    test_2 at the poll, where the node showing the device code switches to
    the code flow that replaced it). Started by credctl token on node1,
    the address pasted into credctl login on another node (the flow is
    found through the user's record, its state used up there with the
    CAS); every node serves; the same address pasted again, on any node,
    is refused and redeems nothing."""

    @classmethod
    def extra(cls, i, port):
        return "\n[entra]\nsignin = device_code,auth_code\n"

    def test_1_paste_on_another_node(self):
        n1, n2, n3 = self.nodes
        n1.ctl("POST", "block_device_flow", {"at": "start"})  # setUp clears it
        self.signin_next(CAROL)
        t0 = time.monotonic()
        rc, _, err = n1.credctl(CAROL, "token")
        self.assertEqual(rc, H.EXIT_ACT, err)
        self.assertIn("credctl login", err)
        # credctl token says to run credctl login, which shows the link.
        r = n1.request(CAROL, {"v": 1, "op": "login", "wait": 0})
        url = r.get("signin_url", "")
        self.assertIn("/oauth2/v2.0/authorize?", url)
        for n in (n2, n3):  # credctl login's first step on those nodes
            r = n.request(CAROL, {"v": 1, "op": "login", "wait": 0})
            self.assertEqual(r.get("signin_url"), url, r)
            self.assertIs(r.get("paste_back"), True, r)
        back = self.follow(url)
        self.codes.append(urllib.parse.parse_qs(urllib.parse.urlsplit(back).query)["code"][0])
        c0 = n1.counters().get("authorization_code", 0)
        r = n2.request(CAROL, {"v": 1, "op": "login_code", "url": back}, timeout=30)
        self.assertTrue(r.get("ok"), r)
        self.assertEqual(r.get("state"), "ready", r)
        took = self.first_token(n2, CAROL, t0)
        measured("paste-back across nodes (credctl token on node1, address pasted on node2): "
                 "first credctl token -> first token served on node2 %.2f s" % took)
        for n in (n1, n3):
            self.assertTokenOf(n.wait_token(CAROL, deadline=30), CAROL, n.node)
        for n in (n3, n2):
            r = n.request(CAROL, {"v": 1, "op": "login_code", "url": back}, timeout=30)
            self.assertFalse(r.get("ok"), "%s took the address again: %s" % (n.node, r))
            self.assertNotIn("code=", json.dumps(r))
        self.assertEqual(n1.counters().get("authorization_code", 0) - c0, 1)

    def test_2_fallback_at_the_poll_shown_on_every_node(self):
        n1, n2, n3 = self.nodes
        n1.ctl("POST", "block_device_flow", {"at": "poll", "oid": n1.oid(BOB)})
        code = n1.start_consent(BOB)
        self.assertEqual(n3.start_consent(BOB), code)  # node3 shows node1's
        # A login waiting on node3 through the switch: not ended by it.
        got = {}

        def wait_login():
            got["rep"] = n3.request(BOB, {"v": 1, "op": "login", "wait": 6}, timeout=30)
        t = threading.Thread(target=wait_login)
        t.start()
        time.sleep(0.5)
        self.signin_next(BOB)
        n1.approve(code, BOB)
        url = {}
        deadline = time.monotonic() + 30
        for n in (n1, n3):
            while True:
                err = n.request(BOB, {"v": 1, "op": "token"}).get("error", {})
                if err.get("method") == "auth_code" or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(err.get("method"), "auth_code", "%s: %s" % (n.node, err))
            self.assertNotIn("user_code", err)
            url[n.node] = err.get("signin_url")
        self.assertEqual(url["node1"], url["node3"])
        t.join(30)
        rep = got.get("rep", {})
        self.assertEqual((rep.get("state"), rep.get("method")), ("pending", "auth_code"), rep)
        self.assertEqual(rep.get("signin_url"), url["node3"])
        back = self.follow(url["node3"])
        self.codes.append(urllib.parse.parse_qs(urllib.parse.urlsplit(back).query)["code"][0])
        r = n3.request(BOB, {"v": 1, "op": "login_code", "url": back}, timeout=30)
        self.assertEqual(r.get("state"), "ready", r)
        for n in self.nodes:
            self.assertTokenOf(n.wait_token(BOB, deadline=30), BOB, n.node)

    def test_zz_canary_no_secret_in_logs(self):
        secrets = self.n1.issued_secrets() + self.codes
        sources = {}
        for n in self.nodes:
            for k, v in n.leak_sources().items():
                sources["%s %s" % (n.node, k)] = v
        leaks = H.find_leaks(sources, secrets)
        self.assertEqual(leaks, [], "secret material leaked:\n" + "\n".join(leaks[:20]))


def parse_file_record(path):
    """(tenant, version, blob) of a file-store record (store_file.c)."""
    with open(path, "rb") as f:
        d = f.read()
    if d[:4] != b"CRF1":
        raise AssertionError("%s: not a record file" % path)
    version, tlen, blen = struct.unpack(">QHI", d[4:18])
    tenant = d[18:18 + tlen].decode()
    return tenant, version, d[18 + tlen:18 + tlen + blen]


def file_blobs(d):
    out = {}
    for fn in sorted(os.listdir(d)):
        if fn.startswith("u-") and fn.endswith(".rec"):
            tenant, _, blob = parse_file_record(os.path.join(d, fn))
            if tenant == H.TENANT:
                out[fn[2:-4]] = blob
    return out


class T6Migration(ClusterCase):
    """file -> postgres -> file: every record, still serving."""

    NODES = 1

    @classmethod
    def setUpClass(cls):
        pg_wipe_tenant()
        n = Node("t6migratio", "node1", backend="file", lifetime=cls.LIFETIME)
        cls.nodes = [n]
        cls.addClassCleanup(cls._stop_all)
        n.start()
        cls.stack = n

    def migrate(self, conf, frm, to):
        gid = H.pwd.getpwnam(H.CREDD_USER).pw_gid
        r = subprocess.run([H.BIN["credd"], "migrate", "-c", conf, "--from", frm, "--to", to],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                           user=H.uid_of(H.CREDD_USER), group=gid, cwd="/",
                           env={"PATH": "/usr/bin:/bin"})
        self.assertEqual(r.returncode, 0, "credd migrate --from %s --to %s: %s%s"
                         % (frm, to, r.stdout, r.stderr))
        measured("credd migrate --from %s --to %s: %s" % (frm, to, r.stdout.strip()))
        return r.stdout

    def write(self, name, txt):
        p = os.path.join(self.n1.etc_dir, name)
        with open(p, "w") as f:
            f.write(txt)
        os.chown(p, 0, H.pwd.getpwnam(H.CREDD_USER).pw_gid)
        os.chmod(p, 0o640)
        return p

    def new_dir(self, name):
        cu = H.pwd.getpwnam(H.CREDD_USER)
        d = os.path.join(self.n1.root, name)
        os.makedirs(d)
        os.chown(d, cu.pw_uid, cu.pw_gid)
        os.chmod(d, 0o700)
        return d

    def serve_all(self, users, what):
        n = self.n1
        dc0 = n.counters()["devicecode"]
        t0 = time.monotonic()
        for u in users:
            got = n.forced_token(u)
            self.assertExit(got, EXIT_OK, "%s served from the %s" % (u, what))
            self.assertTokenOf(got[1], u, what)
        t1 = time.monotonic()
        # Cached tokens: the store is not involved (same for both backends).
        w = Worker(users[0], {"mode": "loop", "socks": [n.sock], "scopes": ["storage"],
                              "duration": 3})
        r = w.result(timeout=60)
        self.assertEqual(r["errors"], {})
        measured("%s: first token per user (credctl, record load + refresh + write) %.3f s "
                 "on average; cached tokens %.0f requests/s on one connection"
                 % (what, (t1 - t0) / len(users), r["n"] / max(r["seconds"], 0.1)))
        self.assertEqual(n.counters()["devicecode"], dc0, "a consent was needed after " + what)

    def test_file_postgres_file(self):
        n = self.n1
        users = (ALICE, BOB, CAROL)
        self.consent_all(users, n)
        n.stop_credd()
        orig = file_blobs(n.state_dir)
        self.assertEqual(sorted(orig), sorted(users))
        conf_file = n.conf
        conf_pg = self.write("credd-pg.conf", n.conf_text(backend="postgres"))
        # file -> postgres
        self.migrate(conf_pg, "file", "postgres")
        rows = pg_rows()
        self.assertEqual(sorted(rows), sorted(users), "rows after file -> postgres")
        for u in users:
            self.assertEqual(rows[u][1], orig[u], "blob of %s changed on the way to postgres" % u)
        # postgres -> a new file store: the same bytes again.
        back = self.new_dir("state-back")
        conf_back = self.write("credd-back.conf", n.conf_text(backend="postgres", path=back))
        self.migrate(conf_back, "postgres", "file")
        self.assertEqual(file_blobs(back), orig, "file -> postgres -> file changed a record")
        # A re-run is harmless (same bytes are skipped).
        self.migrate(conf_back, "postgres", "file")
        # credd serves from postgres...
        n.conf = conf_pg
        n.start_credd()
        self.serve_all(users, "postgres store after migration")
        n.stop_credd()
        # ... and from the file store migrated back (after those rotations).
        back2 = self.new_dir("state-back2")
        conf_back2 = self.write("credd-back2.conf", n.conf_text(backend="postgres", path=back2))
        self.migrate(conf_back2, "postgres", "file")
        rows2 = pg_rows()
        self.assertEqual({u: rows2[u][1] for u in users}, file_blobs(back2))
        n.conf = self.write("credd-file2.conf", n.conf_text(backend="file", path=back2))
        n.start_credd()
        self.serve_all(users, "file store migrated back from postgres")
        n.conf = conf_file


# ==================================================================== main

def setUpModule():
    H.global_setup()


def tearDownModule():
    H.global_teardown(keep=any(s.failed for s in H.ALL_STACKS))


def main():
    def check(args):
        try:
            pg_load()
        except (RuntimeError, OSError) as e:
            return [str(e)]
        return []

    return H.run_suite(__name__, __doc__,
                       "cluster tests need root (users, credd as root, PostgreSQL as postgres)",
                       check=check, banner=lambda: "postgres port %s" % PG["port"],
                       result_class=ClusterResult)


if __name__ == "__main__":
    sys.exit(main())
