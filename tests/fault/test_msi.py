#!/usr/bin/python3
"""The SDK endpoint ([msi]) against hostile local users (issue 11, items 1,
3 and the endpoint's half of 6). Label fault; root (users, credd dropping
privileges, SIGSTOP); not root: exit 77.

- CloseEarlyTests (item 1): an unprivileged user completes an IMDS request
  and closes at once: 20 times after credd has read all but the last CRLF
  (so credd parses it with the client's socket in time-wait: the base
  commit read uid 0 and started root's device flow), 20 times while credd
  is stopped (SIGSTOP: closed before the accept) and 300 times while it
  runs. credd must never act as uid 0: no record for root, no device flow
  but the attacker's own; every request on a connection closed before the
  accept is refused (403) and audited with the real reason; an honest IMDS
  request still gets 200.
- SquatTests (item 3): another user holds the SDK port before credd starts.
  credd serves its Unix socket, `status` and `stats` report the endpoint
  down with the reason (logged once), and credd takes the port on a retry
  once the squatter goes.
- ActivationTests (item 3): systemd-socket-activate holds the port and
  passes it (LISTEN_FDS, --fdname=credd-msi): credd serves the endpoint on
  the passed socket and never binds; a passed socket on another port is
  refused and credd binds [msi] listen itself.
- FloodTests (item 6): a flood of refused requests from one uid gives a
  bounded number of audit records whose counts add up to the true number;
  one uid over the per-uid connection cap or rate limit ([server]
  max_conns_per_uid, [limits] requests_per_sec) does not stop another.
- EmfileTests: out of fds, the endpoint pauses its accepts (no busy loop,
  one log line) and serves again once fds are free.
"""

import http.client
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
from urllib.parse import quote

import faultlib as F
from faultlib import H

ACTIVATE = "/usr/bin/systemd-socket-activate"
STORAGE = H.RESOURCES["storage"]
IMDS_PATH = ("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s"
             % quote(STORAGE, safe=""))
APP_PATH = "/msi/token?api-version=2019-08-01&resource=%s" % quote(STORAGE, safe="")
ALICE, CAROL = "entra_alice", "entra_carol"
ATTACKER = "entra_flt4"
UNPROVEN = ("caller socket closed before accept", "caller socket held by no process",
            "caller socket not found", "caller uid unknown")


setUpModule = F.setup_module          # users, /dev/log capture
tearDownModule = F.teardown_module


# ---------------------------------------------------------------- children

def close_early(port, n, path):
    """(child) n times: connect, send a complete IMDS request, close at once
    without reading. Returns how many were sent."""
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nMetadata: true\r\n\r\n"
           % (path, port)).encode()
    sent = 0
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(req)
        s.close()
        sent += 1
    return sent


def close_after_last_byte(port, n, path):
    """(child) n connections each send an IMDS request but its last CRLF;
    once credd has accepted them and read that much, each sends the CRLF
    and closes at once. credd parses the request only after the client's
    socket is gone (time-wait): the review's race, made reliable."""
    head = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nMetadata: true\r\n"
            % (path, port)).encode()
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(head)
        socks.append(s)
    time.sleep(0.5)
    for s in socks:
        s.sendall(b"\r\n")
        s.close()
    return len(socks)


def flood(port, n, threads, path, headers):
    """(child) n requests over `threads` keep-alive connections, as fast as
    answers come. Returns {status: count} ("io" for a dropped connection)."""
    counts = {}
    lock = threading.Lock()
    hdrs = {"Host": "127.0.0.1:%d" % port}
    hdrs.update(headers)

    def one(k):
        c = None
        for _ in range(k):
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                c.request("GET", path, headers=hdrs)
                r = c.getresponse()
                r.read()
                st = str(r.status)
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = None
            except (OSError, http.client.HTTPException):
                st = "io"
                if c is not None:
                    c.close()
                c = None
            with lock:
                counts[st] = counts.get(st, 0) + 1
        if c is not None:
            c.close()
    ts = [threading.Thread(target=one, args=(n // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return counts


def hold(port, n, path, headers, marker, release, deadline=120):
    """(child) open n connections, send one request on each, read what comes
    back; write marker, then hold the connections until release exists."""
    socks, refused = [], 0
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        except OSError:
            refused += 1
    time.sleep(1.0)  # credd accepts all, closes the ones over the cap
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n"
           % (path, port, "".join("%s: %s\r\n" % kv for kv in headers.items()))).encode()
    served = closed = 0
    for s in socks:
        try:
            s.sendall(req)
        except OSError:
            pass
    for s in socks:
        try:
            d = s.recv(4096)
            if d.startswith(b"HTTP/1."):
                served += 1
            else:
                closed += 1
        except OSError:
            closed += 1
    with open(marker, "w") as f:
        f.write("x")
    end = time.monotonic() + deadline
    while not os.path.exists(release) and time.monotonic() < end:
        time.sleep(0.05)
    for s in socks:
        s.close()
    return {"connected": len(socks), "refused": refused, "served": served, "closed": closed}


def hold_quiet(port, n, marker, release, deadline=120):
    """(child) open n connections (sending nothing) and hold them."""
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        except OSError:
            pass
    with open(marker, "w") as f:
        f.write("x")
    end = time.monotonic() + deadline
    while not os.path.exists(release) and time.monotonic() < end:
        time.sleep(0.05)
    for s in socks:
        s.close()
    return len(socks)


def squat(port, ready, release, deadline=300):
    """(child) listen on the SDK port until release exists."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    with open(ready, "w") as f:
        f.write("x")
    end = time.monotonic() + deadline
    while not os.path.exists(release) and time.monotonic() < end:
        time.sleep(0.05)
    s.close()
    return True


# ---------------------------------------------------------------- stack

class MsiStack(F.FaultStack):
    """A FaultStack with [msi]; activate = (listen, fdname) starts credd under
    systemd-socket-activate, which holds that address and passes it."""

    def __init__(self, name, msi_extra="", activate=None, nofile=None, **kw):
        super().__init__(name, **kw)
        self.msi_port = H.free_port()
        self.msi_extra = msi_extra
        self.activate = activate
        self.nofile = nofile  # credd's RLIMIT_NOFILE (it is not dumpable: no prlimit later)
        self.sync = os.path.join(self.root, "sync")
        os.makedirs(self.sync, exist_ok=True)
        os.chmod(self.sync, 0o1777)

    def write_conf(self, extra=""):
        super().write_conf("\n[msi]\nlisten = 127.0.0.1:%d\n%s" % (self.msi_port, self.msi_extra)
                           + extra)

    def start_credd(self, timeout=30):
        if self.nofile:
            old = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, old[1]))
            try:
                return super().start_credd(timeout)
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, old)
        if not self.activate:
            return super().start_credd(timeout)
        listen, fdname = self.activate
        self.credd_starts += 1
        cmd = [ACTIVATE, "-l", listen, "--fdname=" + fdname]
        for v in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if v in os.environ:
                cmd += ["-E", v]
        cmd += [H.BIN["credd"], "-c", self.conf, "-f", "-d"]
        with open(self.credd_log, "ab") as logf:
            logf.write(b"===== test: credd start #%d under systemd-socket-activate =====\n"
                       % self.credd_starts)
            logf.flush()
            self.credd = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        host, port = listen.rsplit(":", 1)
        end = time.monotonic() + timeout
        # systemd-socket-activate execs credd on the first connection.
        while True:
            if self.credd.poll() is not None:
                raise RuntimeError("systemd-socket-activate exited:\n%s" % H.tail(self.credd_log))
            try:
                socket.create_connection((host, int(port)), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > end:
                    raise RuntimeError("nothing listens on %s:\n%s" % (listen,
                                                                      H.tail(self.credd_log)))
                time.sleep(0.05)
        self.wait_credd(end, timeout)
        F.snapshot_proc("credd", self.credd.pid)

    def stats(self):
        r = self.request("root", {"v": 1, "op": "stats"})
        if r.get("ok") is not True:
            raise AssertionError("stats: %s" % r)
        return r

    def endpoint(self):
        return self.stats().get("sdk_endpoint")

    def get(self, user, path, headers):
        return H.run_as(user, F.http_get, self.msi_port, path, headers)

    def refusals(self, uid=None):
        """request_refused records of the endpoint (op msi, msi_imds)."""
        out = []
        for r in self.audit_records():
            if r.get("event") != "request_refused" or r.get("op") not in ("msi", "msi_imds"):
                continue
            if uid is not None and r.get("uid") != uid:
                continue
            out.append(r)
        return out

    def log_count(self, needle):
        return H.read_bytes(self.credd_log).count(needle.encode())


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(what, fn, deadline=30.0, step=0.2):
    end = time.monotonic() + deadline
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(step)


class MsiCase(F.FaultTestCase):
    LIFETIME = 3600
    MSI_EXTRA = "imds = yes\n"
    CONF_SET = {}
    ACTIVATE = None
    NOFILE = None

    @classmethod
    def make_stack(cls):
        return MsiStack(cls.__name__, msi_extra=cls.MSI_EXTRA, activate=cls.ACTIVATE,
                        nofile=cls.NOFILE, lifetime=cls.LIFETIME, conf_set=cls.CONF_SET)

    def setUp(self):
        self.assertTrue(self.stack.credd_alive(), "credd is not running (crashed earlier?)")

    def consent_once(self, user):
        done = self.stack.__dict__.setdefault("consented", set())
        if user not in done:
            self.stack.consent(user)
            done.add(user)


# ==================================================================== item 1

class CloseEarlyTests(MsiCase):

    def test_01_close_early_never_root(self):
        st = self.stack
        before = st.stats()
        flows0 = len(st.flows())
        # The review's race: the request completes and the client closes
        # before credd parses it (the base commit read uid 0 and started
        # root's device flow). The uid is now proven at accept, while the
        # client still held its socket: it is the attacker's own.
        n_late = H.run_as(ATTACKER, close_after_last_byte, st.msi_port, 20, IMDS_PATH)
        time.sleep(2)
        # Deterministic: credd stopped, so every client socket is in
        # time-wait (uid 0, inode 0 in sock_diag) before credd accepts.
        st.credd.send_signal(signal.SIGSTOP)
        try:
            n_stopped = H.run_as(ATTACKER, close_early, st.msi_port, 20, IMDS_PATH)
        finally:
            st.credd.send_signal(signal.SIGCONT)
        time.sleep(2)
        # The race as the review ran it: credd running. A connection credd
        # accepts before the close is proven as the attacker's own uid.
        n_running = H.run_as(ATTACKER, close_early, st.msi_port, 300, IMDS_PATH, timeout=300)
        F.figure("close_early_sent", {"late": n_late, "stopped": n_stopped,
                                      "running": n_running})
        time.sleep(2)
        # credd never acted as root: no audit record names uid 0 or root;
        # a device flow, if any, is the attacker's own (one at a time).
        recs = st.audit_records()
        as_root = [r for r in recs if r.get("uid") == 0 or r.get("user") == "root"]
        self.assertEqual(as_root, [], as_root[:5])
        flows = [r for r in recs if r.get("event") == "consent_started"]
        self.assertEqual([r for r in flows if r.get("user") != ATTACKER], [], flows)
        after = st.stats()
        self.assertLessEqual(after["device_flows_started"] - before["device_flows_started"], 1)
        self.assertLessEqual(len(st.flows()) - flows0, 1)
        self.assertGreaterEqual(after["sdk_endpoint"]["connections_unproven"], n_stopped)

        # Every refusal is audited, with the reason; windows end after 10 s.
        def refused_total():
            return sum(r.get("count", 1) for r in st.refusals()
                       if r.get("reason") in UNPROVEN)
        wait_for("the unproven requests' audit", lambda: refused_total() >= n_stopped,
                 deadline=40)
        time.sleep(11)  # let the last window close
        F.figure("close_early_refused_audited", refused_total())
        self.assertGreaterEqual(refused_total(), n_stopped)
        # The refusals say why, per uid-less key, in few records.
        reasons = sorted({r.get("reason") for r in st.refusals() if r.get("reason") in UNPROVEN})
        F.figure("close_early_reasons", reasons)
        self.assertIn("caller socket closed before accept", reasons)
        self.assertLessEqual(len([r for r in st.refusals() if r.get("reason") in UNPROVEN]),
                             4 * 2 * 6)

    def test_02_honest_imds_still_served(self):
        st = self.stack
        self.consent_once(ALICE)
        r = st.get(ALICE, IMDS_PATH, {"Metadata": "true"})
        self.assertEqual(r["status"], 200, r)
        self.assertEqual(H.jwt_claims(r["doc"]["access_token"]).get("oid"), st.oid(ALICE))


# ==================================================================== item 3

class SquatTests(MsiCase):
    """The port is taken before credd starts."""

    @classmethod
    def prepare_stack(cls):
        st = cls.stack
        cls.ready = os.path.join(st.sync, "squat.ready")
        cls.release = os.path.join(st.sync, "squat.release")
        cls.squatter = threading.Thread(target=H.run_as, args=(
            ATTACKER, squat, st.msi_port, cls.ready, cls.release), kwargs={"timeout": 400})
        cls.squatter.start()
        cls.addClassCleanup(cls.squatter.join)
        cls.addClassCleanup(lambda: open(cls.release, "w").close())
        wait_for("the squatter", lambda: os.path.exists(cls.ready))

    def test_01_socket_served_endpoint_down(self):
        st = self.stack
        self.assertTrue(st.credd_alive())
        # The Unix socket answers: a consent and a token work.
        self.consent_once(ALICE)
        ep = st.endpoint()
        self.assertEqual(ep["state"], "down", ep)
        self.assertIn("in use", ep["error"], ep)
        self.assertEqual(ep["listen"], "127.0.0.1:%d" % st.msi_port)
        self.assertGreaterEqual(ep["bind_failures"], 1, ep)
        stat = st.request(ALICE, {"v": 1, "op": "status"})
        self.assertIs(stat.get("ok"), True, stat)
        self.assertEqual(stat["sdk_endpoint"]["state"], "down", stat)
        # Several retries later, the reason is still logged once.
        time.sleep(4)
        self.assertGreaterEqual(st.endpoint()["bind_failures"], 2)
        self.assertEqual(st.log_count("Address already in use"), 1)
        F.figure("squat_endpoint_down", st.endpoint())

    def test_02_port_taken_back_on_retry(self):
        st = self.stack
        open(self.release, "w").close()
        self.squatter.join(30)
        t0 = time.monotonic()
        ep = wait_for("the endpoint up", lambda: (lambda e: e if e["state"] == "up" else None)(
            st.endpoint()), deadline=40)
        F.figure("squat_retake_s", round(time.monotonic() - t0, 1))
        self.assertEqual(ep["socket"], "bound", ep)
        self.consent_once(ALICE)
        r = st.get(ALICE, IMDS_PATH, {"Metadata": "true"})
        self.assertEqual(r["status"], 200, r)
        stat = st.request(ALICE, {"v": 1, "op": "status"})
        self.assertEqual(stat["sdk_endpoint"]["state"], "up", stat)


class ActivationTests(MsiCase):
    """systemd-socket-activate holds the port from before credd starts."""

    @classmethod
    def make_stack(cls):
        st = super().make_stack()
        st.activate = ("127.0.0.1:%d" % st.msi_port, "credd-msi")
        return st

    @classmethod
    def setUpClass(cls):
        if not os.access(ACTIVATE, os.X_OK):
            raise unittest.SkipTest("%s not installed (package systemd)" % ACTIVATE)
        super().setUpClass()

    def test_01_serves_the_passed_socket(self):
        st = self.stack
        ep = st.endpoint()
        self.assertEqual((ep["state"], ep["socket"]), ("up", "activated"), ep)
        self.assertEqual(st.log_count("socket passed in by the service manager"), 1)
        self.consent_once(ALICE)
        r = st.get(ALICE, IMDS_PATH, {"Metadata": "true"})
        self.assertEqual(r["status"], 200, r)
        self.assertEqual(H.jwt_claims(r["doc"]["access_token"]).get("oid"), st.oid(ALICE))

    def test_02_wrong_socket_refused(self):
        # A socket passed as credd-msi on another port: refused (closed),
        # and credd binds [msi] listen itself.
        st = self.stack
        st.stop_credd()
        other = H.free_port()
        st.activate = ("127.0.0.1:%d" % other, "credd-msi")
        st.start_credd()
        ep = st.endpoint()
        self.assertEqual((ep["state"], ep["socket"]), ("up", "bound"), ep)
        self.assertGreaterEqual(st.log_count("not [msi] listen"), 1)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", other), timeout=5).close()
        r = st.get(ALICE, APP_PATH, {"X-IDENTITY-HEADER": "0" * 64})
        self.assertEqual(r["status"], 401, r)


# ==================================================================== item 6

class FloodTests(MsiCase):
    CAP = 20
    CONF_SET = {"max_conns_per_uid": CAP, "requests_per_sec": 100, "request_burst": 100}
    MSI_EXTRA = "imds = yes\nconnection_timeout = 60\n"

    def test_01_refusal_flood_is_coalesced(self):
        st = self.stack
        uid = H.uid_of("entra_flt1")
        n = 3000
        t0 = time.monotonic()
        counts = H.run_as("entra_flt1", flood, st.msi_port, n, 4, APP_PATH,
                          {"X-IDENTITY-HEADER": "0" * 64}, timeout=300)
        took = time.monotonic() - t0
        refused = counts.get("401", 0) + counts.get("429", 0)
        F.figure("flood_responses", counts)
        F.figure("flood_seconds", round(took, 2))
        self.assertEqual(sum(counts.values()), n, counts)
        self.assertGreater(counts.get("429", 0), 0, counts)   # the rate limit holds
        self.assertGreater(counts.get("401", 0), 0, counts)

        def total():
            return sum(r.get("count", 1) for r in st.refusals(uid))
        wait_for("the coalesced counts (%d)" % refused, lambda: total() >= refused, deadline=40)
        time.sleep(1)
        recs = st.refusals(uid)
        F.figure("flood_audit_records", len(recs))
        F.figure("flood_audit_reasons", sorted({r.get("reason") for r in recs}))
        # The true count, in a bounded number of records: per reason, one
        # record when a 10 s window opens and one when it ends.
        self.assertEqual(total(), refused)
        windows = math.ceil(took / 10.0) + 1
        self.assertLessEqual(len(recs), 2 * 2 * windows, [r.get("count") for r in recs])

    def test_02_connection_cap_per_uid(self):
        st = self.stack
        self.consent_once(CAROL)
        holder = "entra_flt2"
        uid = H.uid_of(holder)
        marker = os.path.join(st.sync, "cap.ready")
        release = os.path.join(st.sync, "cap.release")
        out = {}

        def run():
            out["hold"] = H.run_as(holder, hold, st.msi_port, 2 * self.CAP, APP_PATH,
                                   {"X-IDENTITY-HEADER": "0" * 64}, marker, release, timeout=300)
        t = threading.Thread(target=run)
        t.start()
        try:
            wait_for("the holder", lambda: os.path.exists(marker), deadline=120)
            ep = st.endpoint()
            # Another uid is served while the holder sits at its cap.
            r = st.get(CAROL, IMDS_PATH, {"Metadata": "true"})
            self.assertEqual(r["status"], 200, r)
        finally:
            open(release, "w").close()
            t.join(120)
        h = out["hold"]
        F.figure("cap_holder", h)
        F.figure("cap_endpoint", ep)
        self.assertEqual(h["served"], self.CAP, h)
        self.assertEqual(h["closed"], self.CAP, h)
        self.assertGreaterEqual(ep["connections_refused"], self.CAP)
        def capped():
            return sum(r.get("count", 1) for r in st.refusals(uid)
                       if r.get("reason") == "over max_conns_per_uid")
        wait_for("the cap refusals' audit", lambda: capped() >= self.CAP, deadline=40)
        self.assertEqual(capped(), self.CAP)

    def test_03_rate_limit_per_uid(self):
        st = self.stack
        self.consent_once(CAROL)
        out = {}

        def run():
            out["flood"] = H.run_as("entra_flt3", flood, st.msi_port, 1000, 2, IMDS_PATH,
                                    {"Metadata": "true"}, timeout=300)
        t = threading.Thread(target=run)
        t.start()
        carol = []
        try:
            for _ in range(10):
                carol.append(st.get(CAROL, IMDS_PATH, {"Metadata": "true"})["status"])
        finally:
            t.join(300)
        F.figure("rate_flood", out.get("flood"))
        F.figure("rate_carol", carol)
        self.assertGreater(out["flood"].get("429", 0), 0, out)
        self.assertEqual(carol, [200] * 10)
        self.assertGreater(st.endpoint()["rate_limited"], 0)


# ==================================================================== EMFILE

class EmfileTests(MsiCase):
    """credd started with 64 fds: 120 held connections run it out."""
    MSI_EXTRA = "imds = yes\nconnection_timeout = 60\n"
    NOFILE = 64

    def test_01_pause_not_spin(self):
        st = self.stack
        pid = st.credd.pid
        marker = os.path.join(st.sync, "emfile.ready")
        release = os.path.join(st.sync, "emfile.release")
        out = {}

        def run():
            out["held"] = H.run_as("entra_flt5", hold_quiet, st.msi_port, 120, marker,
                                   release, timeout=300)
        t = threading.Thread(target=run)
        t.start()
        try:
            wait_for("the holder", lambda: os.path.exists(marker), deadline=60)
            time.sleep(0.5)
            c0 = cpu_s(pid)
            time.sleep(3)
            spent = cpu_s(pid) - c0
        finally:
            open(release, "w").close()
            t.join(120)
        F.figure("emfile_held", out.get("held"))
        F.figure("emfile_cpu_s_in_3s", round(spent, 3))
        self.assertLess(spent, 1.0, "credd spun on EMFILE")
        self.assertEqual(st.log_count("pauses its accepts"), 1)
        # The holder is gone: fds come back, accepts resume.
        ep = wait_for("accepts again", lambda: (lambda e: e if e["connections_open"] == 0
                                                else None)(st.endpoint()), deadline=60)
        F.figure("emfile_endpoint", ep)
        self.assertGreaterEqual(ep["accept_pauses"], 1)
        r = st.get(ALICE, APP_PATH, {"X-IDENTITY-HEADER": "0" * 64})
        self.assertEqual(r["status"], 401, r)


del MsiCase  # a base, not a test class


if __name__ == "__main__":
    sys.exit(F.main(__name__, __doc__))
