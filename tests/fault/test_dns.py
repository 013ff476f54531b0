#!/usr/bin/python3
"""A slow DNS server must never freeze credd's loop (issue 11, finding 2).

credd reaches the emulator by a name, idp.credd.test (in the emulator's
certificate; TLS checks stay on), that only this test's DNS server
(tests/fault/dnsstub.py, on 127.53.x.y:53) resolves, after a delay the
test sets. The test re-runs itself under scripts/isolate with that
server's resolv.conf and an nsswitch.conf of `hosts: files dns` bound over
/etc inside a private mount namespace, so nothing else on the machine sees
them (and this also works under ASan, where LD_PRELOAD shims do not).

libcurl's threaded resolver used to be joined on the loop whenever a
transfer ended during its lookup. Scenarios, each with another user
timing requests on the socket the whole time:
 1. a sign-in's device-code request is in a 6 s lookup when the user logs
    out (http_cancel); another user's cached `token` is timed;
 2. a lookup (8 s) outlasts credd's request timeout (3 s);
 3. SIGTERM while a lookup is in progress (http_free at shutdown);
 4. 27 sign-ins cancelled mid-lookup in quick succession: the resolver
    threads left behind end by themselves (thread and fd counts return to
    where they were).
Latency bounds are generous (1 s, against freezes of seconds); the figures
(p50/p99/max) are printed.
"""

import json
import math
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import dnsstub as D
import faultlib as F
from faultlib import H

HOST = "idp.credd.test"     # emu_crypto.TEST_HOST
DELAY = 6.0                 # seconds per lookup (the finding's figure)
OTHER = "entra_bob"         # a bystander whose requests are timed
SIGNER = "entra_alice"      # whose sign-in is cancelled mid-lookup
CANCELLERS = ("entra_alice", "entra_carol", "entra_admin", "entra_flt1", "entra_flt2",
              "entra_flt3", "entra_flt4", "entra_flt5", "entra_flt6")
BOUND_MS = 1000.0           # catches a freeze; the figures say how fast it really is
CURL_DNS_CACHE_S = 60       # libcurl's default DNS cache lifetime
EMU_IDLE_S = 60             # the emulator closes idle keep-alive connections
STUB = {}

TOKEN = json.dumps({"v": 1, "op": "token", "scope": "storage"}) + "\n"
STATUS = json.dumps({"v": 1, "op": "status"}) + "\n"
LOGIN = json.dumps({"v": 1, "op": "login", "wait": 0}) + "\n"
LOGOUT = {"v": 1, "op": "logout"}


# ---------------------------------------------------------------- namespace

def outer(argv):
    """Bind the DNS server's socket (port 53 needs root), write its
    resolv.conf and nsswitch.conf, and run this file again under
    scripts/isolate with both bound over /etc; the socket is inherited."""
    if os.geteuid() != 0:
        print("SKIP: the DNS fault test needs root (port 53, a mount namespace).")
        return 77
    for f in ("/etc/resolv.conf", "/etc/nsswitch.conf"):
        if not os.path.exists(f):
            print("SKIP: %s does not exist (nothing to bind over)" % f)
            return 77
    sock = D.bind_socket()
    tmp = tempfile.mkdtemp(prefix="credd-dns-", dir="/tmp")
    try:
        os.chmod(tmp, 0o755)
        rc_path = os.path.join(tmp, "resolv.conf")
        ns_path = os.path.join(tmp, "nsswitch.conf")
        with open(rc_path, "w") as f:
            f.write(D.resolv_conf(sock.getsockname()[0]))
        with open(ns_path, "w") as f:
            f.write(D.NSSWITCH_HOSTS)
        os.chmod(rc_path, 0o644)
        os.chmod(ns_path, 0o644)
        env = dict(os.environ, DNS_TEST_INNER="1", DNS_STUB_FD=str(sock.fileno()))
        cmd = [os.path.join(H.PROJECT, "scripts", "isolate"),
               "--bind", rc_path, "/etc/resolv.conf",
               "--bind", ns_path, "/etc/nsswitch.conf", "--",
               sys.executable, os.path.abspath(__file__)] + argv
        return subprocess.run(cmd, env=env, pass_fds=(sock.fileno(),)).returncode
    finally:
        sock.close()
        shutil.rmtree(tmp, ignore_errors=True)


def setUpModule():
    F.setup_module()
    with open("/etc/resolv.conf") as f:
        rc = f.read()
    sock = socket.socket(fileno=int(os.environ["DNS_STUB_FD"]))
    if sock.getsockname()[0] not in rc:
        raise RuntimeError("/etc/resolv.conf is not the test's (not under isolate?): %r" % rc)
    STUB["dns"] = D.DnsStub({HOST: "127.0.0.1"}, delay=DELAY, sock=sock)
    H.log("DNS stub on %s:53, %s -> 127.0.0.1" % (STUB["dns"].addr, HOST))


def tearDownModule():
    if STUB.get("dns"):
        STUB["dns"].close()
    F.teardown_module()


# ---------------------------------------------------------------- probes

def probe(path, line, secs, gap):
    """(runs in a child as the bystander) Open loop: a new connection and
    request every gap seconds for secs seconds, whether or not earlier ones
    were answered, so that a frozen loop delays every request due during
    the freeze (a closed loop would see one slow request per freeze).
    Returns [[due, ms, ok, fp], ...]; due is on CLOCK_MONOTONIC (the
    parent's clock too) and ms counts from due to the reply."""
    sel = selectors.DefaultSelector()
    out = []
    t0 = time.monotonic()
    end = t0 + secs
    due = t0
    while True:
        now = time.monotonic()
        while due <= now and due < end:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            s.settimeout(30)
            try:
                s.connect(path)
                s.sendall(line.encode())
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, [due, b""])
            except OSError:
                s.close()
                out.append([due, (time.monotonic() - due) * 1000.0, False, None])
            due += gap
        if due >= end and not sel.get_map():
            break
        if now > end + 60:
            for key in list(sel.get_map().values()):
                out.append([key.data[0], (now - key.data[0]) * 1000.0, False, None])
                sel.unregister(key.fileobj)
                key.fileobj.close()
            break
        for key, _ in sel.select(timeout=max(0.0, min(due - time.monotonic(), 0.05))
                                 if due < end else 0.05):
            s, st = key.fileobj, key.data
            try:
                d = s.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            st[1] += d
            if d and b"\n" not in st[1]:
                continue
            ms = (time.monotonic() - st[0]) * 1000.0
            ok, fp = False, None
            if b"\n" in st[1]:
                try:
                    reply = json.loads(st[1].split(b"\n", 1)[0])
                    ok = reply.get("ok") is True
                    if "access_token" in reply:
                        fp = H.fingerprint(reply["access_token"])
                except ValueError:
                    pass
            out.append([st[0], ms, ok, fp])
            sel.unregister(s)
            s.close()
    out.sort()
    return out


class Prober(threading.Thread):
    """The bystander's requests, in a child process, from a thread."""

    def __init__(self, stack, user, line, secs, gap=0.02):
        super().__init__(daemon=True)
        self.args = (stack, user, line, secs, gap)
        self.samples = None
        self.error = None

    def run(self):
        st, user, line, secs, gap = self.args
        try:
            self.samples = H.run_as(user, probe, st.sock, line, secs, gap, timeout=secs + 90)
        except Exception as e:  # reported by the test
            self.error = repr(e)

    def result(self):
        self.join(240)
        if self.error or self.samples is None:
            raise AssertionError("bystander probe failed: %s" % self.error)
        return self.samples


class Async(threading.Thread):
    """One request as a user on its own connection, answered later."""

    def __init__(self, stack, user, line, timeout=60.0):
        super().__init__(daemon=True)
        self.args = (stack, user, line, timeout)
        self.reply = None
        self.seconds = None

    def run(self):
        st, user, line, timeout = self.args
        t0 = time.monotonic()
        try:
            res = st.raw(user, line, 1, timeout)
            self.reply = res["replies"][0] if res["replies"] else {"_eof": res["eof"]}
        except Exception as e:
            self.reply = {"_exception": repr(e)}
        self.seconds = time.monotonic() - t0


def pct(values, p):
    v = sorted(values)
    return v[max(0, math.ceil(p / 100.0 * len(v)) - 1)] if v else float("nan")


def summary(samples):
    ms = [s[1] for s in samples]
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 2), "p99_ms": round(pct(ms, 99), 2),
            "max_ms": round(max(ms), 1) if ms else None,
            "failed": sum(1 for s in samples if not s[2])}


def threads_of(pid):
    return int(F.proc_status(pid)["Threads"])


def fds_of(pid):
    """{fd: what it points to} of pid; sockets with their family."""
    kinds = {}
    for fam in ("unix", "udp", "udp6", "tcp", "tcp6", "netlink"):
        try:
            with open("/proc/%d/net/%s" % (pid, fam)) as f:
                next(f)
                for line in f:
                    col = line.split()
                    if fam == "unix":
                        kinds[col[6]] = "unix %s" % (col[7] if len(col) > 7 else "")
                    elif fam == "netlink":
                        kinds[col[-1]] = "netlink"
                    else:
                        kinds[col[9]] = "%s %s -> %s" % (fam, col[1], col[2])
        except (OSError, IndexError, StopIteration):
            pass
    out = {}
    d = "/proc/%d/fd" % pid
    for n in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, n))
        except OSError:
            continue
        if t.startswith("socket:["):
            t += " " + kinds.get(t[8:-1], "?")
        out[int(n)] = t
    return out


# ---------------------------------------------------------------- tests

class DnsStack(F.FaultStack):
    """The authority by name; the port is known only once the emulator runs."""

    def write_conf(self, extra=""):
        self.conf_set["authority"] = "https://%s:%d" % (HOST, self.port)
        super().write_conf(extra)


class SlowDnsTests(H.StackTestCase):
    LIFETIME = 3600

    @classmethod
    def setUpClass(cls):
        cls.stack = DnsStack(cls.__name__, lifetime=cls.LIFETIME, conf_set={"timeout": "20"})
        cls.addClassCleanup(cls.stack.stop)
        cls.stack.start()

    def dns(self):
        return STUB["dns"]

    def set_timeout(self, secs):
        st = self.stack
        st.conf_set["timeout"] = str(secs)
        st.write_conf()
        st.restart_credd()

    def start_signin(self, user, what):
        """user's `login`, answered later; returns once its device-code
        request is known to be waiting on the DNS server."""
        dns = self.dns()
        n0 = dns.counts()["lookups"]
        a = Async(self.stack, user, LOGIN)
        a.start()
        self.assertTrue(dns.wait_lookups(n0 + 1, 20),
                        "%s: %s's sign-in never asked the DNS server (a cached name or "
                        "connection? the test needs a fresh lookup)" % (what, user))
        return a

    def assert_bystander(self, samples, what, t_from, fp=None):
        s = summary(samples)
        slow = [x for x in samples if x[1] >= BOUND_MS]
        during = [x for x in samples if x[0] >= t_from]
        H.log("%s: bystander %s" % (what, s))
        self.assertEqual(s["failed"], 0, "%s: bystander requests failed: %s" % (what, s))
        if fp is not None:
            self.assertEqual({x[3] for x in samples}, {fp},
                             "%s: the bystander was not served its cached token" % what)
        if slow:
            self.fail("%s: the loop froze: %d of %d bystander requests took >= %d ms, due "
                      "%+.1f s to %+.1f s from the fault's start (max %.0f ms); %s"
                      % (what, len(slow), s["n"], BOUND_MS, slow[0][0] - t_from,
                         slow[-1][0] - t_from, s["max_ms"], s))
        self.assertGreaterEqual(len(during), 20, "%s: too few bystander requests while the "
                                "lookup was pending (%d): the probe did not overlap" %
                                (what, len(during)))
        return s

    def test_01_logout_mid_lookup(self):
        # The finding: a sign-in's device-code request is in its DNS lookup
        # when the user logs out; http_cancel removed the transfer and
        # libcurl joined its resolver thread on the loop.
        st, dns = self.stack, self.dns()
        dns.delay = DELAY
        t0 = time.monotonic()
        doc = st.consent(OTHER)
        F.figure("dns_consent_with_slow_dns_s", round(time.monotonic() - t0, 1))
        fp = H.fingerprint(doc["access_token"])
        # credd must look the name up again for the sign-in below: wait
        # until libcurl's DNS cache entry and the idle connection are gone.
        wait = max(CURL_DNS_CACHE_S, EMU_IDLE_S) + 3
        H.log("waiting %d s for libcurl's DNS cache and the idle connection to expire" % wait)
        time.sleep(wait)
        prober = Prober(st, OTHER, TOKEN, secs=DELAY + 6)
        prober.start()
        time.sleep(1.0)
        login = self.start_signin(SIGNER, "logout")
        time.sleep(0.5)
        pending = dns.pending
        t_lo = time.monotonic()
        reply = st.request(SIGNER, LOGOUT, timeout=30)
        logout_ms = (time.monotonic() - t_lo) * 1000.0
        pending_after = dns.pending
        samples = prober.result()
        login.join(60)
        H.log("logout %.1f ms (%s); lookups pending before %d, after %d; login -> %s"
              % (logout_ms, reply.get("ok"), pending, pending_after, str(login.reply)[:200]))
        F.figure("dns_logout_ms", round(logout_ms, 1))
        self.assertGreaterEqual(pending, 1, "no lookup was pending when the user logged out")
        self.assertIs(reply.get("ok"), True, "logout failed: %s" % reply)
        self.assertIsNotNone(login.reply, "the cancelled sign-in was never answered")
        s = self.assert_bystander(samples, "logout mid-lookup", t_lo, fp)
        F.figure("dns_cancel_token_p50_ms", s["p50_ms"])
        F.figure("dns_cancel_token_p99_ms", s["p99_ms"])
        F.figure("dns_cancel_token_max_ms", s["max_ms"])
        F.figure("dns_cancel_token_n", s["n"])
        self.assertLess(logout_ms, BOUND_MS, "the logout waited for the lookup")
        self.assertGreaterEqual(pending_after, 1, "the lookup ended before the logout did")
        self.assertTrue(dns.wait_idle(DELAY + 5), "the DNS server still owes answers")

    def test_02_timeout_mid_lookup(self):
        # A lookup that outlasts credd's request timeout: libcurl ends the
        # transfer (CURLE_OPERATION_TIMEDOUT) and used to join the resolver.
        st, dns = self.stack, self.dns()
        self.set_timeout(3)
        dns.delay = 8.0
        try:
            prober = Prober(st, OTHER, STATUS, secs=10)
            prober.start()
            time.sleep(1.0)
            t_from = time.monotonic()
            login = self.start_signin(SIGNER, "timeout")
            login.join(60)
            samples = prober.result()
            H.log("login with an 8 s lookup and a 3 s timeout: %.1f s -> %s"
                  % (login.seconds, str(login.reply)[:200]))
            F.figure("dns_timeout_login_s", round(login.seconds, 2))
            self.assertEqual(F.error_code(login.reply), "idp_unavailable",
                             "a timed-out lookup: %s" % login.reply)
            s = self.assert_bystander(samples, "timeout mid-lookup", t_from)
            F.figure("dns_timeout_status_p99_ms", s["p99_ms"])
            F.figure("dns_timeout_status_max_ms", s["max_ms"])
            self.assertTrue(dns.wait_idle(15), "the DNS server still owes answers")
        finally:
            dns.delay = DELAY
            self.set_timeout(20)

    def test_03_shutdown_mid_lookup(self):
        # SIGTERM while a lookup runs: http_free removes the transfer.
        st, dns = self.stack, self.dns()
        dns.delay = DELAY
        login = self.start_signin(SIGNER, "shutdown")
        time.sleep(0.5)
        log0 = len(H.read_bytes(st.credd_log))
        t0 = time.monotonic()
        rc = st.stop_credd(timeout=30)
        stop_s = time.monotonic() - t0
        login.join(30)
        tail = H.read_bytes(st.credd_log)[log0:].decode("utf-8", "replace")
        H.log("credd stopped in %.2f s (rc %s) with a lookup pending (%d)"
              % (stop_s, rc, dns.pending))
        F.figure("dns_shutdown_s", round(stop_s, 2))
        try:
            self.assertEqual(rc, 0, "credd's exit status after SIGTERM mid-lookup")
            self.assertNotIn("Sanitizer", tail, "a sanitizer report at exit:\n%s" % tail[-3000:])
            self.assertLess(stop_s, 3.0, "shutdown waited for the lookup")
        finally:
            self.assertTrue(dns.wait_idle(DELAY + 5), "the DNS server still owes answers")
            st.start_credd()

    def test_04_many_cancellations(self):
        # Each sign-in cancelled mid-lookup leaves its resolver thread
        # detached until getaddrinfo returns. They must end by themselves.
        st, dns = self.stack, self.dns()
        dns.delay = DELAY
        pid = st.credd.pid
        # Warm up: the users' (empty) records are loaded, and a logout's
        # audit line opens credd's syslog socket, before the baseline.
        for u in CANCELLERS:
            st.request(u, LOGOUT)
        th0, fds0, rss0 = threads_of(pid), fds_of(pid), F.rss_kb(pid)
        fd0 = len(fds0)
        prober = Prober(st, OTHER, STATUS, secs=3 * 4 + DELAY + 2)
        prober.start()
        time.sleep(1.0)
        t_from = time.monotonic()
        peak_th = peak_fd = peak_rss = 0
        logout_ms = []
        for rnd in range(3):
            n0 = dns.counts()["lookups"]
            logins = [Async(st, u, LOGIN) for u in CANCELLERS]
            for a in logins:
                a.start()
            self.assertTrue(dns.wait_lookups(n0 + len(CANCELLERS), 30),
                            "round %d: not every sign-in reached the DNS server" % rnd)
            for u in CANCELLERS:
                t0 = time.monotonic()
                r = st.request(u, LOGOUT, timeout=30)
                logout_ms.append((time.monotonic() - t0) * 1000.0)
                self.assertIs(r.get("ok"), True, "logout: %s" % r)
                self.assertLess(logout_ms[-1], BOUND_MS * 2,
                                "round %d: %s's logout waited for the lookup" % (rnd, u))
            for a in logins:
                a.join(60)
            peak_th = max(peak_th, threads_of(pid))
            peak_fd = max(peak_fd, len(fds_of(pid)))
            peak_rss = max(peak_rss, F.rss_kb(pid))
        samples = prober.result()
        self.assertTrue(dns.wait_idle(DELAY + 10), "the DNS server still owes answers")
        end = time.monotonic() + 10
        while time.monotonic() < end and (threads_of(pid) > th0 or len(fds_of(pid)) > fd0):
            time.sleep(0.2)
        th1, fds1, rss1 = threads_of(pid), fds_of(pid), F.rss_kb(pid)
        fd1 = len(fds1)
        res = {"cancelled": 3 * len(CANCELLERS), "threads": [th0, peak_th, th1],
               "fds": [fd0, peak_fd, fd1], "rss_kb": [rss0, peak_rss, rss1],
               "logout_p99_ms": round(pct(logout_ms, 99), 1)}
        H.log("many cancellations: %s" % res)
        F.figure("dns_many_cancel", res)
        s = self.assert_bystander(samples, "27 cancellations", t_from)
        F.figure("dns_many_cancel_status_p99_ms", s["p99_ms"])
        self.assertLessEqual(th1, th0, "resolver threads outlived their lookups")
        self.assertLessEqual(fd1, fd0, "file descriptors outlived the lookups: before %s, "
                             "after %s" % (sorted(fds0.items()), sorted(fds1.items())))

    def test_zz_leak_sweep(self):
        leaks, cores = F.leak_sweep([self.stack])
        self.assertEqual(cores, [], "core files found")
        self.assertEqual(leaks, [], "\n".join(leaks[:20]))


if __name__ == "__main__":
    if os.environ.get("DNS_TEST_INNER") != "1":
        sys.exit(outer(sys.argv[1:]))
    sys.exit(F.main(__name__, __doc__))
