#!/usr/bin/python3
"""Secrets kept out of swap (issue 11, item 10).

credd keeps refresh tokens, device codes, endpoint secrets, the client
secret and the packed access tokens in a locked arena ([server]
locked_memory_kib), and the key ring in locked sodium memory. Checked
against the kernel: VmLck in /proc/PID/status covers what `stats` says is
locked plus the key ring, with users signed in and tokens cached; that
holds after credd forks into the background (a lock does not survive
fork); past the arena's limit, and under a low RLIMIT_MEMLOCK, service
goes on (every token served, a refresh works), the overflow is counted in
`stats` and the warning is logged once; at exit no secret is left
allocated in the arena.
"""

import os
import resource
import socket
import struct
import subprocess
import sys
import time

import faultlib as F
from faultlib import H

USERS = ("entra_alice", "entra_bob", "entra_carol", "entra_flt1", "entra_flt2")
SCOPES = ("storage", "vault", "graph", "databricks")
KEY_PAGE = 4096
FULL_WARNING = "the locked arena (8 KiB) is full"


setUpModule = F.setup_module          # users, /dev/log capture
tearDownModule = F.teardown_module


def vm_locked(pid):
    return int(F.proc_status(pid)["VmLck"].split()[0]) * 1024


def peer_pid(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        pid, _, _ = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                      struct.calcsize("3i")))
        return pid
    finally:
        s.close()


def daemon_pids(conf):
    """credd processes started with -c conf and without -f."""
    want = [H.BIN["credd"].encode(), b"-c", conf.encode(), b"-d"]
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")[:-1]
        except OSError:
            continue
        if argv == want:
            found.append(int(d))
    return found


class MemlockStack(F.FaultStack):
    """FaultStack with an optional RLIMIT_MEMLOCK for credd."""

    def __init__(self, name, **kw):
        super().__init__(name, **kw)
        self.memlock = None

    def start_credd(self, timeout=30):
        if self.memlock is None:
            return super().start_credd(timeout)
        self.credd_starts += 1
        lim = self.memlock
        with open(self.credd_log, "ab") as logf:
            logf.write(b"===== test_memlock: credd start #%d, RLIMIT_MEMLOCK %d =====\n"
                       % (self.credd_starts, lim))
            logf.flush()
            self.credd = subprocess.Popen(
                [H.BIN["credd"], "-c", self.conf, "-f", "-d"], stdout=logf,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_MEMLOCK, (lim, lim)))
        deadline = time.monotonic() + timeout
        while True:
            if self.credd.poll() is not None:
                raise RuntimeError("credd exited (rc %s):\n%s"
                                   % (self.credd.returncode, H.tail(self.credd_log)))
            try:
                peer_pid(self.sock)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("credd not accepting:\n%s" % H.tail(self.credd_log))
                time.sleep(0.05)
        F.snapshot_proc("credd", self.credd.pid)


class MemlockTests(F.FaultTestCase):
    LIFETIME = 3600
    STACK = MemlockStack

    def stats(self):
        r = self.stack.request("root", {"v": 1, "op": "stats"})
        self.assertIs(r.get("ok"), True, r)
        for k in ("locked_memory_limit", "locked_memory", "locked_memory_in_use",
                  "locked_secrets", "unlocked_secret_allocs", "vm_locked"):
            self.assertIn(k, r, "stats lacks %s" % k)
        return r

    def sign_in_all(self, users):
        """Every user consents (once) and gets a token for every scope;
        returns {(user, scope): token}."""
        st = self.stack
        toks = {}
        for u in users:
            rc, doc, err = st.token(u)
            if rc == H.EXIT_ACT:
                doc = st.consent(u)
            else:
                self.assertEqual(rc, 0, err)
            toks[(u, "storage")] = doc["access_token"]
            for sc in SCOPES[1:]:
                rc, doc, err = st.token(u, sc)
                self.assertEqual(rc, 0, "%s %s: %s" % (u, sc, err))
                toks[(u, sc)] = doc["access_token"]
        return toks

    def check_served(self, toks):
        for (u, sc), tok in toks.items():
            rc, doc, err = self.stack.token(u, sc)
            self.assertEqual(rc, 0, "%s %s: %s" % (u, sc, err))
            self.assertEqual(doc["access_token"], tok, "%s %s: a different token" % (u, sc))

    def restart(self, memlock=None, **conf):
        """credd again, with [server] keys from conf and an RLIMIT_MEMLOCK."""
        st = self.stack
        st.stop_credd()
        st.conf_add = {"server": ["%s = %s" % kv for kv in conf.items()]} if conf else {}
        st.write_conf()
        st.memlock = memlock
        st.start_credd()
        return st.credd.pid

    def test_01_secrets_in_locked_memory(self):
        st = self.stack
        toks = self.sign_in_all(USERS[:2])
        vm = vm_locked(st.credd.pid)
        # 2 refresh tokens and 8 access tokens (packed, ~300+ bytes each)
        self.assertGreaterEqual(vm, KEY_PAGE + 8 * 300,
                                "VmLck %d: the secrets are not locked in memory" % vm)
        s = self.stats()
        self.assertEqual(s["unlocked_secret_allocs"], 0, s)
        self.assertEqual(s["locked_memory_limit"], 4096 * 1024, "the default limit")
        self.assertGreater(s["locked_memory"], 0)
        # 2 refresh tokens and 8 packed access tokens at least
        self.assertGreaterEqual(s["locked_secrets"], 10, s)
        self.assertGreaterEqual(s["locked_memory_in_use"], 8 * 300, s)
        self.assertLessEqual(s["locked_memory_in_use"], s["locked_memory"])
        # the kernel agrees: the arena plus the key ring's page(s)
        self.assertGreaterEqual(vm, s["locked_memory"] + KEY_PAGE,
                                "VmLck %d < arena %d + key ring" % (vm, s["locked_memory"]))
        self.assertGreaterEqual(s["vm_locked"], s["locked_memory"] + KEY_PAGE)
        self.check_served(toks)
        F.figure("memlock_default", {"vm_locked": vm, "arena_locked": s["locked_memory"],
                                     "in_use": s["locked_memory_in_use"],
                                     "secrets": s["locked_secrets"], "tokens": len(toks)})

    def test_02_locked_after_going_to_the_background(self):
        st = self.stack
        st.stop_credd()
        st.write_conf()
        with open(st.credd_log, "ab") as logf:
            logf.write(b"===== test_memlock: credd without -f =====\n")
            logf.flush()
            p = subprocess.run([H.BIN["credd"], "-c", st.conf, "-d"], stdout=logf,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=60)
        try:
            self.assertEqual(p.returncode, 0)
            self.check_background(st)
        finally:
            # Every daemon of this stack's config goes, found or not.
            for pid in daemon_pids(st.conf):
                os.kill(pid, 15)
            deadline = time.monotonic() + 20
            while daemon_pids(st.conf) and time.monotonic() < deadline:
                time.sleep(0.1)
            st.start_credd()

    def check_background(self, st):
        # SO_PEERCRED names the process that called listen(): the parent,
        # gone. Find the daemon by its command line (this stack's config).
        pid = None
        deadline = time.monotonic() + 30
        while pid is None:
            pids = daemon_pids(st.conf)
            if len(pids) == 1:
                try:
                    peer_pid(st.sock)
                    pid = pids[0]
                    break
                except OSError:
                    pass
            self.assertLess(time.monotonic(), deadline, "daemon not found: %s" % pids)
            time.sleep(0.1)
        F.snapshot_proc("credd (background)", pid)
        self.check_served({(USERS[0], "storage"): st.token(USERS[0])[1]["access_token"]})
        vm = vm_locked(pid)
        self.assertGreaterEqual(vm, KEY_PAGE, "VmLck %d after the fork" % vm)
        s = self.stats()
        self.assertGreaterEqual(vm - s["locked_memory"], KEY_PAGE,
                                "the key ring lost its lock in the fork (VmLck %d)" % vm)
        self.assertGreater(s["locked_memory"], 0)
        F.figure("memlock_background", {"vm_locked": vm, "arena_locked": s["locked_memory"]})

    def test_03_past_the_limit_service_continues(self):
        st = self.stack
        self.restart(locked_memory_kib=8)
        before = st.counters().get("refresh_token", 0)
        toks = self.sign_in_all(USERS)  # 3 refresh grants a user, as it fills
        self.assertGreaterEqual(st.counters().get("refresh_token", 0) - before,
                                3 * len(USERS))
        s = self.stats()
        self.assertEqual(s["locked_memory_limit"], 8192)
        self.assertLessEqual(s["locked_memory"], 8192)
        self.assertGreater(s["unlocked_secret_allocs"], 0, "the arena never overflowed: %s" % s)
        self.check_served(toks)
        log = H.read_bytes(st.credd_log).decode("utf-8", "replace")
        start = log.rfind("===== ")
        self.assertEqual(log[start:].count(FULL_WARNING), 1, "warned not exactly once")
        F.figure("memlock_overflow", {"tokens": len(toks), "locked": s["locked_memory"],
                                      "in_use": s["locked_memory_in_use"],
                                      "unlocked_allocs": s["unlocked_secret_allocs"]})

    def test_04_low_rlimit_memlock(self):
        st = self.stack
        pid = self.restart(memlock=32 * 1024)
        toks = self.sign_in_all(USERS[:3])
        s = self.stats()
        vm = vm_locked(pid)
        self.assertLessEqual(vm, 32 * 1024)
        self.assertLess(s["locked_memory_limit"], 32 * 1024)
        self.check_served(toks)
        log = H.read_bytes(st.credd_log).decode("utf-8", "replace")
        log = log[log.rfind("===== "):]
        self.assertIn("RLIMIT_MEMLOCK leaves room to lock", log)
        F.figure("memlock_rlimit", {"vm_locked": vm, "limit": s["locked_memory_limit"],
                                    "unlocked_allocs": s["unlocked_secret_allocs"]})

    def test_zy_nothing_left_at_exit(self):
        st = self.stack
        self.restart()
        self.sign_in_all(USERS[:1])
        self.assertEqual(st.stop_credd(), 0)
        log = H.read_bytes(st.credd_log).decode("utf-8", "replace")
        self.assertNotIn("still allocated at exit", log)
        st.start_credd()


if __name__ == "__main__":
    sys.exit(F.main(__name__, __doc__))
