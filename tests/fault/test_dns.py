#!/usr/bin/python3
"""A slow DNS server must cost the IdP requests that need the name, never
the event loop (issue 11, finding 2).

credd's authority is https://emulator.credd.test:PORT, a name that only a
stub DNS server of this test answers (UDP, on a random 127.x.y.z:53, after
a delay it sets at run time). The test re-runs itself under
scripts/isolate with its own /etc/resolv.conf (that server, timeout 30 s)
and /etc/nsswitch.conf (hosts: files dns) bound in a private mount
namespace, so nothing outside the test sees either; the emulator's
certificate names emulator.credd.test, and TLS checks stay on. With the
DNS 6 s slow:

1. bob has a cached token; alice starts a device flow, whose request for
   the name needs a lookup (libcurl's DNS cache and the idle connection
   are left to expire first); while the stub holds that lookup, alice
   logs out, which cancels the flow's transfer. bob's `token` requests,
   one every 20 ms the whole time, must each be answered in < 1 s
   (p50/p99/max reported). Before the fix, libcurl joined its resolver
   thread on the loop: every request waited ~5 s.
2. credd restarted (nothing cached): four users start flows at once and
   log out while the lookup hangs; bob's `status` must stay < 1 s, each
   logout too, and credd may have started at most RESOLVE_WORKERS (2)
   threads more for the lookups (before the fix: one per transfer).
3. SIGTERM while a flow's lookup hangs: credd exits within 3 s (it joined
   the lookup before).
"""

import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import faultlib as F
from faultlib import H

NAME = "emulator.credd.test"   # also in the emulator's certificate (emu_crypto.py)
SLOW = 6.0                     # seconds the stub holds an answer
BOUND = 1.0                    # a request slower than this is the freeze
RESOLVE_WORKERS = 2            # credd/resolve.h
BOB, ALICE = "entra_bob", "entra_alice"
FLOW_USERS = (ALICE, "entra_flt1", "entra_flt2", "entra_flt3")
TOKEN = b'{"v":1,"op":"token","scope":"storage"}\n'
STATUS = b'{"v":1,"op":"status"}\n'


# ---------------------------------------------------------------- the stub

class DnsStub:
    """Answers A for NAME with 127.0.0.1 (AAAA: no data) after `delay`
    seconds, each query on its own thread, and NXDOMAIN at once for
    every other name. Keeps (time, name, type) of every query."""

    def __init__(self, sock):
        self.sock = sock
        self.delay = 0.0
        self.queries = []
        self.lock = threading.Lock()
        threading.Thread(target=self.loop, name="dns-stub", daemon=True).start()

    def loop(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            threading.Thread(target=self.answer, args=(data, peer), daemon=True).start()

    def answer(self, data, peer):
        try:
            qid, _flags, qdcount = struct.unpack(">HHH", data[:6])
            i, labels = 12, []
            while data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace"))
                i += 1 + data[i]
            qtype, _qclass = struct.unpack(">HH", data[i + 1:i + 5])
            question = data[12:i + 5]
        except (IndexError, struct.error):
            return
        name = ".".join(labels).lower()
        with self.lock:
            self.queries.append((time.monotonic(), name, qtype))
            delay = self.delay
        if name != NAME:
            self.send(struct.pack(">HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question, peer)
            return
        time.sleep(delay)
        if qtype == 1:  # A, 5 s TTL (getaddrinfo does not pass it on)
            ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + socket.inet_aton("127.0.0.1")
            self.send(struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + ans, peer)
        else:
            self.send(struct.pack(">HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question, peer)

    def send(self, msg, peer):
        try:
            self.sock.sendto(msg, peer)
        except OSError:
            pass

    def count(self, since=0.0):
        with self.lock:
            return sum(1 for t, n, _ in self.queries if n == NAME and t >= since)

    def wait_query(self, since, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.count(since):
                return True
            time.sleep(0.02)
        return False


STUB = None


# ---------------------------------------------------------------- clients

def percentiles(lat, prefix=""):
    lat = sorted(lat)
    n = len(lat)
    return {prefix + "p50_ms": round(lat[n // 2] * 1000, 2),
            prefix + "p99_ms": round(lat[min(n - 1, int(n * 0.99))] * 1000, 2),
            prefix + "max_ms": round(lat[-1] * 1000, 2)}


def timed_client(path, line, secs, every=0.02):
    """(child) one request every 20 ms on one connection for secs:
    latencies and errors. A request waits for the one before, so a 5 s
    freeze is one slow sample among hundreds and hides from the p99;
    the co_ figures add the requests an every-20-ms caller would have
    sent meanwhile (latency minus 20 ms, minus 40 ms, ...: HdrHistogram's
    correction for coordinated omission)."""
    lat, co, errors, other = [], [], 0, []
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    s.settimeout(30)
    s.connect(path)
    end = time.monotonic() + secs
    buf = b""
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            s.sendall(line)
            buf = F.recv_line(s, buf, eof_ok=False)
        except OSError as e:
            errors += 1
            other.append(repr(e)[:100])
            break
        reply, buf = buf.split(b"\n", 1)
        dt = time.monotonic() - t0
        lat.append(dt)
        co.append(dt)
        k = 1
        while dt - k * every > 0:
            co.append(dt - k * every)
            k += 1
        if b'"ok":true' not in reply:
            errors += 1
            if len(other) < 3:
                other.append(reply[:200].decode("utf-8", "replace"))
        time.sleep(every)
    s.close()
    res = {"n": len(lat), "errors": errors, "other": other}
    if lat:
        res.update(percentiles(lat))
        res.update(percentiles(co, "co_"))
    return res


def in_background(fn, *args, **kw):
    """Run fn in a thread; returns (thread, box) with box["result"] or
    box["error"] once it ends."""
    box = {}

    def run():
        try:
            box["result"] = fn(*args, **kw)
        except BaseException as e:  # noqa: B902 - reported by the caller
            box["error"] = repr(e)[:500]
    t = threading.Thread(target=run)
    t.start()
    return t, box


def threads_of(pid):
    return int(F.proc_status(pid)["Threads"])


# ---------------------------------------------------------------- tests

setUpModule = F.setup_module          # users, /dev/log capture
tearDownModule = F.teardown_module


class DnsStack(F.FaultStack):
    """The authority by name; a timeout above the stub's delay, so every
    transfer is still in its lookup when the test cancels it."""

    def write_conf(self, extra=""):
        self.conf_set["authority"] = "https://%s:%d" % (NAME, self.port)
        # The discovery document names the host credd reaches it by.
        self.ctl("POST", "authority", {"authority": self.conf_set["authority"]})
        self.conf_set["timeout"] = "20"
        super().write_conf(extra)


class SlowDnsTests(F.FaultTestCase):
    LIFETIME = 3600
    STACK = DnsStack

    @classmethod
    def prepare_stack(cls):
        STUB.delay = 0.0

    def measure(self, user, line, secs):
        return in_background(H.run_as, user, timed_client, self.stack.sock, line, secs,
                             timeout=secs + 120)

    def login_bg(self, user):
        return in_background(self.stack.request, user, {"v": 1, "op": "login", "wait": 0},
                             timeout=60.0)

    def logout(self, user):
        t0 = time.monotonic()
        r = self.stack.request(user, {"v": 1, "op": "logout"}, timeout=60.0)
        return r, time.monotonic() - t0

    def client_result(self, name, t, box):
        t.join(300)
        self.assertNotIn("error", box, "%s: %s" % (name, box.get("error")))
        F.figure(name, box["result"])
        return box["result"]

    def assert_no_freeze(self, name, res, bound=BOUND):
        self.assertGreater(res["n"], 50, "%s: too few requests: %s" % (name, res))
        self.assertEqual(res["errors"], 0, "%s: %s" % (name, res))
        self.assertLess(res["max_ms"], bound * 1000,
                        "%s: a request took %.0f ms while a DNS lookup hung (the loop "
                        "froze): %s" % (name, res["max_ms"], res))

    def test_1_cached_token_while_a_lookup_is_cancelled(self):
        st = self.stack
        st.consent(BOB)
        last_idp = time.monotonic()
        # Any time: credd may have looked the name up for its discovery
        # document at start, before this consent.
        self.assertGreater(STUB.count(), 0, "credd never asked the stub for %s" % NAME)
        # Let libcurl's DNS cache (60 s) and the emulator's idle
        # connection (60 s) expire, so that alice's flow makes libcurl
        # look the name up (before the fix); credd's resolver (after it)
        # serves its stale answer and looks the name up behind it.
        STUB.delay = SLOW
        wait = last_idp + 62 - time.monotonic()
        H.log("waiting %.0f s for cached DNS answers and idle connections to expire" % wait)
        if wait > 0:
            time.sleep(wait)
        rc, doc, err = st.token(BOB, "storage")
        self.assertEqual(rc, 0, "bob's cached token: %s" % err)
        secs = SLOW + 6
        bob_t, bob_box = self.measure(BOB, TOKEN, secs)
        time.sleep(1.0)
        q1 = time.monotonic()
        login_t, login_box = self.login_bg(ALICE)
        self.assertTrue(STUB.wait_query(q1), "alice's flow asked the DNS nothing")
        time.sleep(0.5)  # the lookup now hangs for another ~5.5 s
        reply, dt = self.logout(ALICE)
        self.assertIs(reply.get("ok"), True, reply)
        F.figure("dns_logout_mid_lookup_s", round(dt, 3))
        login_t.join(120)
        self.assertNotIn("error", login_box, login_box.get("error"))
        name = "dns_cached_token_while_lookup_cancelled"
        self.assert_no_freeze(name, self.client_result(name, bob_t, bob_box))
        self.assertLess(dt, BOUND, "logout took %.1f s" % dt)
        self.assertTrue(st.credd_alive())

    def test_2_cold_lookups_cancelled(self):
        st = self.stack
        # q1 before the restart: credd looks the name up for its
        # discovery document as it starts, and the flows wait for that
        # one lookup (single flight) rather than starting their own.
        q1 = time.monotonic()
        st.restart_credd()  # nothing cached: every flow waits for the name
        pid = st.credd.pid
        time.sleep(0.5)
        threads0 = threads_of(pid)
        bob_t, bob_box = self.measure(BOB, STATUS, SLOW + 6)
        time.sleep(1.0)
        logins = [self.login_bg(u) for u in FLOW_USERS]
        self.assertTrue(STUB.wait_query(q1), "the flows asked the DNS nothing")
        time.sleep(0.5)
        threads1 = threads_of(pid)
        times = {}
        for u in FLOW_USERS:
            reply, dt = self.logout(u)
            self.assertIs(reply.get("ok"), True, reply)
            times[u] = round(dt, 3)
        for t, box in logins:
            t.join(120)
            self.assertNotIn("error", box, box.get("error"))
        name = "dns_status_while_cold_lookups_cancelled"
        res = self.client_result(name, bob_t, bob_box)
        time.sleep(max(0.0, q1 + SLOW + 1 - time.monotonic()))
        F.figure("dns_logouts_s", times)
        F.figure("dns_threads", {"idle": threads0, "during_lookups": threads1,
                                 "after": threads_of(pid)})
        F.figure("dns_queries_for_%d_flows" % len(FLOW_USERS), STUB.count(q1))
        self.assert_no_freeze(name, res)
        for u, dt in times.items():
            self.assertLess(dt, BOUND, "logout of %s took %.1f s" % (u, dt))
        self.assertLessEqual(threads1 - threads0, RESOLVE_WORKERS,
                             "credd started %d threads for %d flows' lookups of one name"
                             % (threads1 - threads0, len(FLOW_USERS)))

    def test_3_shutdown_during_a_lookup(self):
        st = self.stack
        q1 = time.monotonic()  # before: the discovery lookup at start counts
        st.restart_credd()
        login_t, _ = self.login_bg(ALICE)
        self.assertTrue(STUB.wait_query(q1), "alice's flow asked the DNS nothing")
        time.sleep(0.5)
        p = st.credd
        t0 = time.monotonic()
        p.send_signal(15)
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            rc = None
        dt = time.monotonic() - t0
        login_t.join(60)
        F.figure("dns_shutdown_mid_lookup_s", round(dt, 3))
        st.start_credd()
        self.assertEqual(rc, 0, "credd exit status %s" % rc)
        self.assertLess(dt, 3.0, "credd took %.1f s to stop while a lookup hung" % dt)


# ---------------------------------------------------------------- namespace

def bind_stub_socket():
    """A UDP socket on port 53 of a random loopback address (another run
    may hold one), inheritable by the isolated child."""
    last = None
    for _ in range(50):
        addr = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 255),
                                 random.randint(1, 254))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((addr, 53))
        except OSError as e:
            last = e
            s.close()
            continue
        s.set_inheritable(True)
        return s, addr
    raise RuntimeError("no free 127.x.y.z:53 for the stub DNS server: %s" % last)


def isolated(argv):
    """Re-run this file under scripts/isolate with the stub's resolv.conf
    and a files-then-dns nsswitch.conf bound over /etc's."""
    if os.geteuid() != 0:
        print("SKIP: fault tests need root (users, mount namespace, port 53).")
        return 77
    if not os.path.exists("/etc/resolv.conf"):
        print("SKIP: no /etc/resolv.conf to bind the stub's over.")
        return 77
    sock, addr = bind_stub_socket()
    tmp = tempfile.mkdtemp(prefix="credd-dns-")
    os.chmod(tmp, 0o755)
    binds = []
    rc_path = os.path.join(tmp, "resolv.conf")
    with open(rc_path, "w") as f:
        f.write("nameserver %s\noptions timeout:30 attempts:1\n" % addr)
    binds += ["--bind", rc_path, "/etc/resolv.conf"]
    if os.path.exists("/etc/nsswitch.conf"):
        ns_path = os.path.join(tmp, "nsswitch.conf")
        with open("/etc/nsswitch.conf") as f:
            lines = [ln for ln in f.read().splitlines() if not ln.startswith("hosts:")]
        with open(ns_path, "w") as f:
            f.write("\n".join(lines + ["hosts: files dns"]) + "\n")
        binds += ["--bind", ns_path, "/etc/nsswitch.conf"]
    for fn in os.listdir(tmp):
        os.chmod(os.path.join(tmp, fn), 0o644)  # credd reads them as its own user
    env = dict(os.environ, DNS_TEST_FD=str(sock.fileno()), DNS_TEST_ADDR=addr)
    try:
        r = subprocess.run([os.path.join(H.PROJECT, "scripts", "isolate")] + binds +
                           ["--", sys.executable, os.path.abspath(__file__)] + argv,
                           env=env, pass_fds=[sock.fileno()])
        return r.returncode
    finally:
        sock.close()
        for fn in os.listdir(tmp):
            os.unlink(os.path.join(tmp, fn))
        os.rmdir(tmp)


def check_resolver():
    """The namespace really sends NAME to the stub, and its delay holds."""
    t0 = time.monotonic()
    try:
        ai = socket.getaddrinfo(NAME, 443, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return "getaddrinfo(%s) failed under the test's resolv.conf: %s" % (NAME, e)
    if ai[0][4][0] != "127.0.0.1" or not STUB.count(t0):
        return "%s did not resolve through the stub (nscd or another NSS module?)" % NAME
    STUB.delay = 1.0
    t0 = time.monotonic()
    socket.getaddrinfo(NAME, 443, type=socket.SOCK_STREAM)
    dt = time.monotonic() - t0
    STUB.delay = 0.0
    if dt < 0.9:
        return "the stub's delay did not reach getaddrinfo (%.2f s)" % dt
    return None


def main():
    global STUB
    if "DNS_TEST_FD" not in os.environ:
        return isolated(sys.argv[1:])
    sock = socket.socket(fileno=int(os.environ.pop("DNS_TEST_FD")))
    STUB = DnsStub(sock)
    H.log("stub DNS server on %s:53 answers %s" % (os.environ.get("DNS_TEST_ADDR"), NAME))
    err = check_resolver()
    if err:
        print("ERROR: " + err)
        return 1
    return F.main(__name__, __doc__)


if __name__ == "__main__":
    sys.exit(main())
