#!/usr/bin/python3
"""Sessions and their SDK endpoint secrets end (issue 11, item 9), through
a real credd with the SDK endpoint on:

- a session_open that ends in an error after it was parked (the user's
  stored record does not open) leaves no session and no secret;
- a session_open whose caller hangs up while it is parked (a slow device
  code endpoint; the PAM module's timeout closes its connection) leaves
  no session and no secret;
- an unused session ends after [server] session_idle; a used one lives;
- a session whose uid has no live process left ends, and its secret no
  longer opens the endpoint; a uid with a live process keeps its session;
- a secret minted for a user whose account was then deleted, and whose
  uid was given to a new account, is refused to that uid (session and
  credctl env secrets alike).

And (item 12) credd --check-config warns loudly without account_match.

Each user whose sessions must not end by liveness keeps a sleep process
running for the class. Checks run every second (session_check = 1).
"""

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

import faultlib as F
from faultlib import H

FAILUSER, GONEUSER, IDLEUSER, LIVEUSER = F.EXTRA_USERS[:4]
# Users of this suite alone: other suites may run processes as the shared
# test users, which would keep a uid alive behind this suite's back.
DEADUSER = "entra_sdead"
REUSE_OLD, REUSE_NEW = "entra_sreuse1", "entra_sreuse2"
STORAGE = H.RESOURCES["storage"]


def users(*cmds, check=True):
    """Run useradd/userdel commands under the harness's user-database lock
    (other suites add users at the same time)."""
    import fcntl
    with open("/tmp/.credd-test-users.lock", "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        for cmd in cmds:
            subprocess.run(cmd, check=check, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


def setUpModule():
    F.setup_module()
    if subprocess.run(["id", DEADUSER], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        users(["useradd", "--no-create-home", "--shell", "/bin/sh", DEADUSER])


def tearDownModule():
    F.teardown_module()


def http_get(port, secret):
    """(child, as some uid) The App Service shape with secret; status and body."""
    path = "/msi/token?api-version=2019-08-01&resource=" + urllib.parse.quote(STORAGE, safe="")
    return F.http_get(port, path, {"X-IDENTITY-HEADER": secret})


def brief(g):
    """A reply for a failure message: never the token itself."""
    doc = dict(g.get("doc") or {})
    if "access_token" in doc:
        doc = {"access_token": "fp " + H.fingerprint(doc["access_token"]),
               "sub_name": H.jwt_claims(g["doc"]["access_token"]).get("name")}
    return {"status": g.get("status"), "doc": doc}


def sleeper(user):
    """A process of user that keeps its uid alive until killed."""
    gid, groups = H.groups_of(user)
    return subprocess.Popen(["sleep", "600"], user=H.uid_of(user), group=gid,
                            extra_groups=groups, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def processes_of(uid):
    """pids running with uid as their real or effective uid."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/status" % pid) as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if uid in (int(line.split()[1]), int(line.split()[2])):
                            found.append(int(pid))
                        break
        except (OSError, ValueError):
            pass
    return found


class SessStack(F.FaultStack):
    """A FaultStack with the SDK endpoint on."""

    def __init__(self, name, **kw):
        super().__init__(name, **kw)
        self.msi_port = H.free_port()

    def write_conf(self, extra=""):
        super().write_conf("\n[msi]\nlisten = 127.0.0.1:%d\n" % self.msi_port + extra)


class Base(F.FaultTestCase):
    SERVER = []
    KEEP_ALIVE = ()

    # Only LivenessTests runs the leak sweep, as before there was a base
    # class for it; LeakTests and IdleTests never had one.
    test_zz_leak_sweep = None

    @classmethod
    def make_stack(cls):
        return SessStack(cls.__name__, conf_add={"server": cls.SERVER}, lifetime=3600)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sleepers = [sleeper(u) for u in cls.KEEP_ALIVE]
        cls.addClassCleanup(cls.stop_sleepers)

    @classmethod
    def stop_sleepers(cls):
        for p in cls.sleepers:
            p.kill()
            p.wait(10)

    def stats(self):
        r = self.stack.request("root", {"v": 1, "op": "stats"})
        self.assertIs(r.get("ok"), True, r)
        return r

    def open(self, user, interactive=False):
        return self.stack.request("root", {"v": 1, "op": "session_open", "user": user,
                                           "service": "sshd", "interactive": interactive})

    def get(self, user, secret):
        return H.run_as(user, http_get, self.stack.msi_port, secret)

    def wait_stats(self, pred, deadline=20.0):
        end = time.monotonic() + deadline
        while True:
            s = self.stats()
            if pred(s) or time.monotonic() > end:
                return s
            time.sleep(0.2)


class LeakTests(Base):
    """session_open that fails or is abandoned while parked; no idle bound,
    so only the fix (not expiry) can clear them."""

    SERVER = ["session_check = 1", "session_idle = 0"]
    KEEP_ALIVE = (FAILUSER, GONEUSER)

    def test_01_failed_open_leaves_nothing(self):
        st = self.stack
        cu = pwd.getpwnam(H.CREDD_USER)
        path = os.path.join(st.state_dir, "u-%s.rec" % FAILUSER)
        # A record that does not open: the session_open is parked on the
        # load, then answered with an error.
        with open(path, "wb") as f:
            f.write(b"not a sealed record" * 8)
        os.chown(path, cu.pw_uid, cu.pw_gid)
        os.chmod(path, 0o600)
        try:
            before = self.stats()
            r = self.open(FAILUSER, interactive=True)
            self.assertIsNot(r.get("ok"), True, "session_open of an unreadable record: %s" % r)
            s = self.stats()
        finally:
            os.unlink(path)
        F.figure("sessions_failed_open", {"reply": F.error_code(r),
                                          "sessions": s.get("sessions"),
                                          "sdk_secrets": s.get("sdk_secrets")})
        self.assertEqual(s["sessions"], before["sessions"], "a failed session_open left "
                         "its session: %s" % s)
        self.assertEqual(s["sdk_secrets"], before["sdk_secrets"], "a failed session_open "
                         "left its endpoint secret: %s" % s)
        self.assertEqual(s.get("sessions_dropped"), before.get("sessions_dropped", 0) + 1, s)

    def test_02_abandoned_open_leaves_nothing(self):
        st = self.stack
        st.fault("slow", count=1, endpoint="devicecode", delay=3)
        before = self.stats()
        line = json.dumps({"v": 1, "op": "session_open", "user": GONEUSER,
                           "service": "sshd", "interactive": True}) + "\n"
        t0 = time.monotonic()
        # The PAM module's way: send, give up after its timeout, close.
        res = H.run_as("root", H.raw_conversation, st.sock, line, 1, 0.5)
        self.assertEqual(res["replies"], [], "answered before the device code came: %s" % res)
        # The device code arrives ~3 s later: the parked reply has nobody to
        # go to. A second, silent session_open then joins the pending flow.
        time.sleep(4.0)
        r2 = self.open(GONEUSER)
        self.assertEqual(r2.get("state"), "pending", r2)
        s = self.stats()
        F.figure("sessions_abandoned_open", {"secs": round(time.monotonic() - t0, 1),
                                             "sessions": s.get("sessions"),
                                             "sdk_secrets": s.get("sdk_secrets")})
        self.assertEqual(s["sessions"], before["sessions"] + 1, "an abandoned session_open "
                         "left its session (want the second one only): %s" % s)
        self.assertEqual(s["sdk_secrets"], before["sdk_secrets"] + 1, "an abandoned "
                         "session_open left its endpoint secret: %s" % s)
        c = st.request("root", {"v": 1, "op": "session_close", "user": GONEUSER,
                                "session": r2["session"]})
        self.assertIs(c.get("ok"), True, c)
        s = self.stats()
        self.assertEqual((s["sessions"], s["sdk_secrets"]),
                         (before["sessions"], before["sdk_secrets"]), s)
        ends = [a for a in st.audit_records() if a.get("event") == "session_end"
                and a.get("user") == GONEUSER]
        self.assertTrue(ends, "no session_end audit record for the abandoned session")
        self.assertIn("went away", ends[-1].get("reason", ""), ends[-1])


class IdleTests(Base):
    """session_idle = 3: a session whose secret is not used ends; one in use lives."""

    SERVER = ["session_check = 1", "session_idle = 3"]
    KEEP_ALIVE = (IDLEUSER,)

    def test_01_idle_session_ends_used_one_lives(self):
        st = self.stack
        st.consent(IDLEUSER)
        used = self.open(IDLEUSER)
        idle = self.open(IDLEUSER)
        self.assertIs(used.get("ok"), True, used)
        self.assertIs(idle.get("ok"), True, idle)
        t0 = time.monotonic()
        # Use one secret every second for 6 s (twice the idle bound).
        while time.monotonic() - t0 < 6.0:
            g = self.get(IDLEUSER, used["secret"])
            self.assertEqual(g["status"], 200, brief(g))
            time.sleep(1.0)
        s = self.stats()
        self.assertEqual(s["sessions"], 1, "want the used session only: %s" % s)
        self.assertGreaterEqual(s.get("sessions_ended_idle", 0), 1, s)
        g = self.get(IDLEUSER, idle["secret"])
        self.assertEqual(g["status"], 401,
                         "the idle session's secret still works: %s" % brief(g))
        # Unused from now on: it ends too.
        s = self.wait_stats(lambda s: s["sessions"] == 0, deadline=15.0)
        F.figure("sessions_idle", {"idle": 3, "ended_idle": s.get("sessions_ended_idle"),
                                   "after_s": round(time.monotonic() - t0, 1)})
        self.assertEqual(s["sessions"], 0, s)
        self.assertEqual(s["sdk_secrets"], 0, s)
        g = self.get(IDLEUSER, used["secret"])
        self.assertEqual(g["status"], 401, brief(g))
        c = st.request("root", {"v": 1, "op": "session_close", "user": IDLEUSER,
                                "session": used["session"]})
        self.assertEqual(F.error_code(c), "bad_request", c)


class LivenessTests(Base):
    """A uid with no live process loses its sessions; a live uid keeps them;
    an account deleted and its uid reused inherits no secret."""

    SERVER = ["session_check = 1"]
    KEEP_ALIVE = (LIVEUSER,)
    test_zz_leak_sweep = F.FaultTestCase.test_zz_leak_sweep

    def test_01_no_live_process_ends_session(self):
        st = self.stack
        st.consent(DEADUSER)
        st.consent(LIVEUSER)
        self.assertEqual(processes_of(H.uid_of(DEADUSER)), [],
                         "%s has processes (a leftover?)" % DEADUSER)
        dead = self.open(DEADUSER)
        live = self.open(LIVEUSER)
        self.assertIs(dead.get("ok"), True, dead)
        g = self.get(DEADUSER, dead["secret"])   # a short-lived process of DEADUSER
        self.assertEqual(g["status"], 200, brief(g))
        t0 = time.monotonic()
        s = self.wait_stats(lambda s: s.get("sessions_ended_no_process", 0) >= 1)
        took = time.monotonic() - t0
        F.figure("sessions_no_process", {"ended_after_s": round(took, 1),
                                         "sessions": s.get("sessions")})
        self.assertGreaterEqual(s.get("sessions_ended_no_process", 0), 1,
                                "the session of a uid with no process did not end: %s" % s)
        g = self.get(DEADUSER, dead["secret"])
        self.assertEqual(g["status"], 401, "its secret still works: %s" % brief(g))
        time.sleep(2.0)   # two more checks: the live uid keeps its session
        g = self.get(LIVEUSER, live["secret"])
        self.assertEqual(g["status"], 200, brief(g))
        self.assertEqual(self.stats()["sessions"], 1)
        ends = [a for a in st.audit_records() if a.get("event") == "session_end"
                and a.get("user") == DEADUSER]
        self.assertTrue(ends and ends[-1].get("reason") == "no_process", ends)

    def test_02_reused_uid_inherits_no_secret(self):
        st = self.stack
        users(["userdel", "-f", REUSE_OLD], ["userdel", "-f", REUSE_NEW], check=False)
        users(["useradd", "--no-create-home", "--shell", "/bin/sh", REUSE_OLD])
        self.addCleanup(users, ["userdel", "-f", REUSE_OLD], ["userdel", "-f", REUSE_NEW],
                        check=False)
        uid = H.uid_of(REUSE_OLD)
        # The uid stays alive throughout: only the account check can end it.
        keep = subprocess.Popen(["sleep", "600"], user=uid, group=uid,
                                stdin=subprocess.DEVNULL)
        self.addCleanup(keep.wait, 10)
        self.addCleanup(keep.kill)
        st.consent(REUSE_OLD)
        sess = self.open(REUSE_OLD)
        self.assertIs(sess.get("ok"), True, sess)
        rc, out, err = st.credctl(REUSE_OLD, "env")
        self.assertEqual(rc, 0, err)
        env_secret = [ln.split("=", 1)[1].strip("'") for ln in out.splitlines()
                      if ln.startswith("export IDENTITY_HEADER=")][0]
        for sec in (sess["secret"], env_secret):
            g = self.get(REUSE_OLD, sec)
            self.assertEqual(g["status"], 200, brief(g))
        before = self.stats()
        # The account goes; a new one gets its uid.
        users(["userdel", "-f", REUSE_OLD],  # "currently used by process": meant
              ["useradd", "--no-create-home", "--shell", "/bin/sh", "-u", str(uid), REUSE_NEW])
        self.assertEqual(H.uid_of(REUSE_NEW), uid)
        t0 = time.monotonic()
        s = self.wait_stats(lambda s: s.get("sessions_ended_account", 0) >
                            before.get("sessions_ended_account", 0) and
                            s.get("sdk_secrets_ended_account", 0) >
                            before.get("sdk_secrets_ended_account", 0))
        took = time.monotonic() - t0
        got = [self.get(REUSE_NEW, sec) for sec in (sess["secret"], env_secret)]
        F.figure("sessions_reused_uid", {"ended_after_s": round(took, 1),
                                         "statuses": [g["status"] for g in got]})
        for g in got:
            self.assertEqual(g["status"], 401, "the new account of uid %d got the old "
                             "account's endpoint: %s" % (uid, brief(g)))
        self.assertEqual(s.get("sessions"), before["sessions"] - 1, s)


class CheckConfigTests(unittest.TestCase):
    """credd --check-config warns loudly (stderr) without account_match and
    still exits 0 (issue 11, item 12); with it, no warning."""

    def check(self, extra):
        d = tempfile.mkdtemp(prefix="credd-cc-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        conf = os.path.join(d, "credd.conf")
        with open(conf, "w") as f:
            f.write("[entra]\ntenant = %s\nclient_id = %s\n%s[scopes]\n"
                    "storage = https://storage.azure.com/.default\ndefault = storage\n"
                    % (H.TENANT, H.CLIENT_ID, extra))
        r = subprocess.run([H.BIN["credd"], "--check-config", "-c", conf],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def test_01_warns_without_account_match(self):
        rc, out, err = self.check("")
        self.assertEqual(rc, 0, err)
        self.assertIn(": ok", out)
        warn = [ln for ln in err.splitlines() if ln.startswith("credd: WARNING:")]
        self.assertGreaterEqual(len(warn), 3, "no loud warning: %r" % err)
        self.assertIn("account_match", warn[0])
        F.figure("check_config_warning_lines", len(warn))

    def test_02_quiet_with_account_match(self):
        rc, out, err = self.check("account_match = %u@contoso.com\n")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("WARNING", err)


del Base  # a mixin of the classes above, not a test class of its own

if __name__ == "__main__":
    sys.exit(F.main(__name__, __doc__))
