#!/usr/bin/python3
"""NSS lookups never stall credd's loop (issue 11, finding 7).

The test re-runs itself under scripts/isolate, in a mount namespace of
its own where /etc/nsswitch.conf says "passwd: credd_slow files" and
/etc/group is a copy whose admin group has 2000 extra members (and
/etc/passwd a copy the test edits in place). The test
NSS module (tests/fault/nss_slow.c, found through credd's
LD_LIBRARY_PATH) sleeps on the lookups its control file names, then lets
the files module answer. No LD_PRELOAD: it works under ASan.

- a 2000-member admin_group still grants admin (getgrnam_r grows its
  buffer on ERANGE instead of reading the group as missing);
- while one user's uid -> name lookup takes 2 s (a new connection of
  that user), another user's cached token keeps answering: p50/p99/max
  are reported, and a generous bound catches a stalled loop;
- a session_open whose user name lookup takes 2 s does not stall it
  either;
- a uid reused by a new account after the old one was deleted is never
  served under the old name once credd asks afresh (login).
"""

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import faultlib as F
from faultlib import H

BIG = 2000
SLOW_MS = 2000
GOOD, SLOW = "entra_bob", "entra_alice"
SLOW_CONF = os.environ.get("NSS_SLOW_CONF", "")
SLOW_DIR = os.environ.get("NSS_SLOW_DIR", "")


def setUpModule():
    F.setup_module()
    # credd (and only what the test starts) finds the slow module here.
    os.environ["LD_LIBRARY_PATH"] = SLOW_DIR


def tearDownModule():
    set_slow([])
    F.teardown_module()


def set_slow(entries):
    """entries: [(kind, key, ms)]; written atomically for the module."""
    tmp = SLOW_CONF + ".tmp"
    with open(tmp, "w") as f:
        for kind, key, ms in entries:
            f.write("%s %s %d\n" % (kind, key, ms))
    os.chmod(tmp, 0o644)
    os.rename(tmp, SLOW_CONF)


def timed_tokens(path, secs):
    """(child) a token request on a new connection every 20 ms for secs;
    the latency of each, in ms."""
    lat, errors = [], 0
    end = time.monotonic() + secs
    line = b'{"v":1,"op":"token"}\n'
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(path)
            s.sendall(line)
            d = F.recv_line(s)
            s.close()
            if not json.loads(d).get("ok"):
                errors += 1
        except (OSError, ValueError):
            errors += 1
        lat.append((time.monotonic() - t0) * 1000.0)
        time.sleep(0.02)
    return {"lat": lat, "errors": errors}


def free_uid():
    uid = 61000
    while True:
        try:
            pwd.getpwuid(uid)
            uid += 1
        except KeyError:
            return uid


def passwd_line(name, uid):
    """Give uid the passwd line of name (None: no line). The bound copy of
    /etc/passwd is rewritten in place: a rename cannot replace a mount."""
    with open("/etc/passwd") as f:
        lines = [ln for ln in f.read().rstrip("\n").split("\n")
                 if ln.split(":")[2:3] != [str(uid)]]
    if name is not None:
        lines.append("%s:x:%d:100::/nonexistent:/bin/sh" % (name, uid))
    with open("/etc/passwd", "w") as f:
        f.write("\n".join(lines) + "\n")


def pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * p / 100.0))] if s else -1


class NssTests(F.FaultTestCase):
    LIFETIME = 3600

    @classmethod
    def prepare_stack(cls):
        set_slow([])

    def test_01_large_admin_group(self):
        st = self.stack
        members = len([m for m in open("/etc/group").read().split("\n")
                       if m.startswith(H.ADMIN_GROUP + ":")][0].split(":")[3].split(","))
        self.assertGreater(members, BIG, "the bound /etc/group copy is not in place")
        rc, out, err = st.credctl(H.ADMIN_USER, "admin", "stats")
        self.assertExit((rc, out, err), H.EXIT_OK, "admin stats as a member of a %d-member "
                        "admin_group" % members)
        rc, out, err = st.credctl(GOOD, "admin", "stats")
        self.assertExit((rc, out, err), H.EXIT_REFUSED, "admin stats as a non-member")
        F.figure("nss_admin_group_members", members)

    def measure_during(self, what, action):
        """Run action() (which makes one slow lookup happen) while GOOD asks
        for its cached token; return the latency figures."""
        st = self.stack
        res = {}
        t = threading.Thread(target=lambda: res.update(
            H.run_as(GOOD, timed_tokens, st.sock, 4.0, timeout=120)))
        t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        action()
        took = time.monotonic() - t0
        t.join()
        lat = res["lat"]
        fig = {"n": len(lat), "p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2),
               "max_ms": round(max(lat), 2), "errors": res["errors"],
               "slow_action_s": round(took, 2)}
        F.figure(what, fig)
        self.assertEqual(res["errors"], 0, fig)
        self.assertGreater(len(lat), 20, fig)
        return fig

    def test_02_slow_uid_lookup_does_not_stall(self):
        st = self.stack
        st.consent(GOOD)
        slow_uid = H.uid_of(SLOW)
        set_slow([("uid", str(slow_uid), SLOW_MS)])
        try:
            fig = self.measure_during(
                "nss_slow_uid_other_user_latency",
                lambda: st.credctl(SLOW, "status"))
        finally:
            set_slow([])
        # The slow user's own request waited for its lookup...
        self.assertGreaterEqual(fig["slow_action_s"], SLOW_MS / 1000.0 * 0.9, fig)
        # ...the other user's never did (a stalled loop costs >= 2 s).
        self.assertLess(fig["max_ms"], SLOW_MS * 0.5, fig)

    def test_03_slow_session_open_does_not_stall(self):
        st = self.stack
        st.consent(GOOD) if st.token(GOOD)[0] != 0 else None
        set_slow([("name", SLOW, SLOW_MS)])
        try:
            replies = []
            fig = self.measure_during(
                "nss_slow_session_open_other_user_latency",
                lambda: replies.append(st.request("root", {
                    "v": 1, "op": "session_open", "user": SLOW, "service": "sshd",
                    "tty": "pts/1", "workload": "job", "interactive": False}, timeout=30)))
        finally:
            set_slow([])
        self.assertIs(replies[0].get("ok"), True, replies)
        self.assertLess(fig["max_ms"], SLOW_MS * 0.5, fig)

    def test_04_reused_uid_is_looked_up_afresh(self):
        """entra_nssold is cached by a connection, then its passwd line
        becomes entra_nssnew (same uid: a deleted account's uid reused).
        A login on a connection still named from the cache is refused
        (the sign-in looks the uid up afresh), and the next one starts a
        consent for the new name. No consent ever starts for the old."""
        st = self.stack
        uid = free_uid()
        try:
            passwd_line("entra_nssold", uid)
            st.credctl("entra_nssold", "status")  # caches uid -> entra_nssold
            passwd_line("entra_nssnew", uid)
            rc, out, err = st.credctl("entra_nssnew", "login", "--no-wait")
            self.assertEqual(rc, H.EXIT_REFUSED, err)
            self.assertIn("names another user", err)
            rc, out, err = st.credctl("entra_nssnew", "login", "--no-wait")
            self.assertIn(rc, (H.EXIT_OK, H.EXIT_ACT), err)
            recs = [r for r in st.audit_records() if r.get("uid") == uid]
            users = {r.get("user") for r in recs if r.get("event") == "consent_started"}
            self.assertEqual(users, {"entra_nssnew"}, recs)
        finally:
            passwd_line(None, uid)


def outer():
    """Make the namespace's files and run this file again inside it."""
    if os.geteuid() != 0:
        print("SKIP: needs root (users, a mount namespace).")
        return 77
    if not SLOW_CONF or not os.path.isfile(os.path.join(SLOW_DIR, "libnss_credd_slow.so.2")):
        print("ERROR: NSS_SLOW_CONF/NSS_SLOW_DIR not set or the module is not built")
        return 1
    H.ensure_users()
    F.ensure_extra_users()
    tmp = tempfile.mkdtemp(prefix="credd-nss-")
    try:
        os.chmod(tmp, 0o755)
        group = os.path.join(tmp, "group")
        with open("/etc/group") as f:
            lines = f.read().rstrip("\n").split("\n")
        out = []
        bulk = ",".join("bulkmember%04d" % i for i in range(BIG))
        for ln in lines:
            parts = ln.split(":")
            if len(parts) == 4 and parts[0] == H.ADMIN_GROUP:
                parts[3] = ",".join(x for x in (parts[3], bulk) if x)
                ln = ":".join(parts)
            out.append(ln)
        with open(group, "w") as f:
            f.write("\n".join(out) + "\n")
        os.chmod(group, 0o644)
        passwd = os.path.join(tmp, "passwd")
        shutil.copyfile("/etc/passwd", passwd)
        os.chmod(passwd, 0o644)
        nss = os.path.join(tmp, "nsswitch.conf")
        with open("/etc/nsswitch.conf") as f:
            conf = f.read().split("\n")
        conf = [ln for ln in conf if not ln.startswith(("passwd:", "group:"))]
        conf += ["passwd: credd_slow files", "group: credd_slow files"]
        with open(nss, "w") as f:
            f.write("\n".join(conf) + "\n")
        os.chmod(nss, 0o644)
        set_slow([])
        cmd = [os.path.join(H.PROJECT, "scripts", "isolate"),
               "--bind", group, "/etc/group", "--bind", passwd, "/etc/passwd",
               "--bind", nss, "/etc/nsswitch.conf", "--",
               sys.executable, os.path.abspath(__file__), "--inner"] + sys.argv[1:]
        return subprocess.call(cmd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if "--inner" in sys.argv:
        sys.argv.remove("--inner")
        sys.exit(F.main(__name__, __doc__))
    sys.exit(outer())
