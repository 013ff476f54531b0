#!/usr/bin/python3
"""Operations (issue 15 §2): readiness, metrics and health.

ReadyTests: credd started with NOTIFY_SOCKET (a datagram socket of the
test's own; no systemd runs here) and WATCHDOG_USEC=1 s sends READY=1 with
a STATUS= line once its socket answers (a request made the moment READY=1
arrives is answered), WATCHDOG=1 at about half WATCHDOG_USEC, a new STATUS=
when the number of users changes, and STOPPING=1 on SIGTERM. The other
classes run without NOTIFY_SOCKET: nothing is sent, nothing changes.

MetricsTests: every scrape under load parses with prometheus_client's parser
(python3-prometheus-client) and its counters agree exactly with the load
sent (2,000 cached token requests from two users, 100 for an unknown scope,
50 metrics requests refused to a plain user, all pipelined at once); the [metrics] listen HTTP endpoint serves the
same families; a plain user gets forbidden for metrics (exit 5); no token
and no user name ever appears in the page.

CallbackUpTests: [callback] listen set: credd serves and the sign-in
callback listener is up (stats and status say "up"; an unknown short link
is a 404). The sign-in through it is tests/integration/test_signin.py's.

HealthTests: `credctl admin health` (any user) exits 0 while all is well,
8 (unhealthy, store unusable) while the store cannot be written (a full
tmpfs), 0 again once it can, 7 (degraded, IdP unusable) once the IdP
stops answering (stopped with SIGSTOP) and a refresh timed out, and 0
again after the next answer.
"""

import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

import faultlib as F
from faultlib import H

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # checked in setUpModule (skip, with the package's name)
    text_string_to_metric_families = None

ALICE, BOB, CAROL = "entra_alice", "entra_bob", "entra_carol"
EXIT_REFUSED, EXIT_DEGRADED, EXIT_UNHEALTHY = 5, 7, 8


def setUpModule():
    if text_string_to_metric_families is None:
        raise __import__("unittest").SkipTest(
            "python3-prometheus-client is not installed (scripts/install-deps)")
    F.setup_module()


tearDownModule = F.teardown_module


def parse(text):
    """{(sample name, frozenset(labels)): value} of a Prometheus page; the
    parser raises on anything malformed."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


# ---------------------------------------------------------------- readiness

class NotifyListener:
    """A NOTIFY_SOCKET of our own: a datagram socket credd (as the credd
    user) can send to. Each message is kept with its arrival time; on
    READY=1 a request is made on credd's socket at once."""

    def __init__(self, path, credd_sock):
        self.path = path
        self.credd_sock = credd_sock
        self.msgs = []          # (monotonic time, text)
        self.ready_reply = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop:
            try:
                d = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            text = d.decode("utf-8", "replace")
            t = time.monotonic()
            # Ask before the message is published: a test that sees
            # READY=1 in msgs must also see the answer to that request.
            if "READY=1" in text.split("\n") and self.ready_reply is None:
                self.ready_reply = self.ask_health()
            self.msgs.append((t, text))

    def ask_health(self):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(self.credd_sock)
            s.sendall(b'{"v":1,"op":"health"}\n')
            buf = b""
            while b"\n" not in buf:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            s.close()
            return json.loads(buf.split(b"\n")[0])
        except (OSError, ValueError) as e:
            return {"_io": repr(e)}

    def lines(self, prefix):
        return [(t, ln) for t, m in self.msgs for ln in m.split("\n") if ln.startswith(prefix)]

    def wait(self, prefix, deadline=20.0, after=0.0):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            got = [x for x in self.lines(prefix) if x[0] >= after]
            if got:
                return got
            time.sleep(0.05)
        return []

    def close(self):
        self.stop = True
        self.sock.close()
        self.thread.join(5)


class NotifyStack(F.FaultStack):
    WATCHDOG_USEC = 1000000

    def start_credd(self, timeout=30):
        if getattr(self, "notify", None) is None:
            self.notify = NotifyListener(os.path.join(self.root, "notify.sock"), self.sock)
        super().start_credd(timeout)

    def credd_popen_kw(self):
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path,
                   WATCHDOG_USEC=str(self.WATCHDOG_USEC))
        env.pop("WATCHDOG_PID", None)
        return {"env": env}

    def stop(self):
        try:
            super().stop()
        finally:
            if getattr(self, "notify", None) is not None:
                self.notify.close()


class ReadyTests(F.FaultTestCase):
    LIFETIME = 3600
    STACK = NotifyStack

    def test_01_ready_after_the_socket_answers(self):
        n = self.stack.notify
        got = n.wait("READY=1")
        self.assertTrue(got, "no READY=1; got %r" % n.msgs)
        self.assertIsNotNone(n.ready_reply)
        self.assertTrue(n.ready_reply.get("ok"), "a request made at READY=1 was not answered: %r"
                        % n.ready_reply)
        ready_msg = [m for _, m in n.msgs if "READY=1" in m.split("\n")][0]
        self.assertIn("STATUS=serving, 0 users", ready_msg)
        self.assertEqual(len(n.lines("READY=1")), 1, "READY=1 sent more than once")

    def test_02_watchdog_pings(self):
        n = self.stack.notify
        t0 = time.monotonic()
        time.sleep(3.2)
        pings = [t for t, _ in n.lines("WATCHDOG=1") if t >= t0]
        # Every 500 ms: at least 3 in 3.2 s even on a loaded machine.
        self.assertGreaterEqual(len(pings), 3, "WATCHDOG=1 pings in 3.2 s: %d" % len(pings))
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        F.figure("watchdog_ping_gaps_s", [round(g, 3) for g in gaps])
        # Within WATCHDOG_USEC (1 s) each, or systemd would have restarted us.
        self.assertLess(max(gaps), 1.0, "a watchdog gap reached WATCHDOG_USEC: %s" % gaps)

    def test_03_status_follows_users(self):
        n = self.stack.notify
        t0 = time.monotonic()
        self.stack.consent(ALICE)
        got = n.wait("STATUS=serving, 1 users", deadline=15, after=t0)
        self.assertTrue(got, "no STATUS= with the new user count: %r"
                        % [m for _, m in n.lines("STATUS=")][-5:])
        for _, ln in n.lines("STATUS="):
            self.assertNotIn(ALICE, ln, "a STATUS= line names a user")

    def test_04_stopping_on_sigterm(self):
        st = self.stack
        n = st.notify
        t0 = time.monotonic()
        rc = st.stop_credd()
        self.assertEqual(rc, 0, "credd did not stop cleanly on SIGTERM")
        got = n.wait("STOPPING=1", deadline=5, after=t0)
        self.assertTrue(got, "no STOPPING=1 on SIGTERM: %r" % n.msgs[-5:])
        st.start_credd()  # the leak sweep and the canary look at a live stack
        self.assertTrue(n.wait("READY=1", after=t0), "no READY=1 after the restart")


# ---------------------------------------------------------------- metrics

class MetricsStack(F.FaultStack):
    def write_conf(self, extra=""):
        if getattr(self, "mport", None) is None:
            self.mport = H.free_port()
        super().write_conf(extra + "\n[metrics]\nlisten = 127.0.0.1:%d\n" % self.mport)

    def http(self, path="/metrics", method="GET"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.mport, path), method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers.get("Content-Type"), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), e.read().decode()


def pipelined(path, lines):
    """(runs in the child) Send every line on one connection, read as many
    replies; returns the list of replies."""
    res = H.raw_conversation(path, "".join(lines), len(lines), 60.0)
    return res["replies"]


class MetricsTests(F.FaultTestCase):
    LIFETIME = 3600
    STACK = MetricsStack
    N_ALICE, N_BOB, N_BAD, N_REFUSED = 1200, 800, 100, 50

    def scrape(self):
        code, ctype, text = self.stack.http()
        self.assertEqual(code, 200, text[:200])
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        return text

    def test_01_counters_agree_with_the_load(self):
        st = self.stack
        toks = [st.consent(ALICE)["access_token"], st.consent(BOB)["access_token"]]
        before = parse(self.scrape())
        tok = json.dumps({"v": 1, "op": "token", "scope": "storage"}) + "\n"
        bad = json.dumps({"v": 1, "op": "token", "scope": "nonesuch"}) + "\n"
        loads = [(ALICE, [tok] * self.N_ALICE + [bad] * self.N_BAD),
                 (BOB, [tok] * self.N_BOB),
                 (CAROL, [json.dumps({"v": 1, "op": "metrics"}) + "\n"] * self.N_REFUSED)]
        results, mid = {}, []

        def run(user, lines):
            results[user] = H.run_as(user, pipelined, st.sock, lines, timeout=120)
        threads = [threading.Thread(target=run, args=lu) for lu in loads]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):  # scrapes under load parse too
            mid.append(parse(self.scrape()))
            time.sleep(0.01)
        for t in threads:
            t.join()
        F.figure("scrapes_during_load", len(mid))
        # Counters only grow while the load runs.
        for a, b in zip(mid, mid[1:]):
            self.assertLessEqual(val(a, "credd_requests_total", op="token", outcome="ok"),
                                 val(b, "credd_requests_total", op="token", outcome="ok"))
        for user, lines in loads:
            self.assertEqual(len(results[user]), len(lines), "%s: replies missing" % user)
        ok = [r for u in (ALICE, BOB) for r in results[u] if r.get("ok")]
        self.assertEqual(len(ok), self.N_ALICE + self.N_BOB)
        after_text = self.scrape()
        after = parse(after_text)
        F.figure("metrics_page_bytes", len(after_text))

        def delta(name, **labels):
            return val(after, name, **labels) - val(before, name, **labels)
        self.assertEqual(delta("credd_requests_total", op="token", outcome="ok"),
                         self.N_ALICE + self.N_BOB)
        self.assertEqual(delta("credd_requests_total", op="token", outcome="unknown_scope"),
                         self.N_BAD)
        self.assertEqual(delta("credd_requests_total", op="metrics", outcome="forbidden"),
                         self.N_REFUSED)
        self.assertEqual(delta("credd_listener_refusals_total", listener="socket",
                               reason="forbidden"), self.N_REFUSED)
        self.assertEqual(delta("credd_cache_lookups_total", result="hit"),
                         self.N_ALICE + self.N_BOB)
        self.assertEqual(delta("credd_cache_lookups_total", result="miss"), 0)
        self.assertEqual(delta("credd_cached_token_duration_seconds_count"),
                         self.N_ALICE + self.N_BOB)
        self.assertEqual(delta("credd_refresh_grants_sent_total"), 0)
        self.assertEqual(val(after, "credd_users"), 2)
        self.assertEqual(val(after, "credd_device_flows_completed_total"), 2)
        self.assertGreaterEqual(val(after, "credd_device_flows_started_total"), 2)
        self.assertGreater(val(after, "credd_idp_request_duration_seconds_count"), 0)
        # Cumulative buckets end at the count.
        self.assertEqual(val(after, "credd_cached_token_duration_seconds_bucket", le="+Inf"),
                         val(after, "credd_cached_token_duration_seconds_count"))
        # Median cached-path latency, for the report.
        n = val(after, "credd_cached_token_duration_seconds_count")
        for le in ("1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001"):
            if val(after, "credd_cached_token_duration_seconds_bucket", le=le) >= n / 2:
                F.figure("cached_path_median_le_seconds", le)
                break
        for t in toks:
            self.assertNotIn(t, after_text)
            self.assertNotIn(t[-20:], after_text)
        for u in (ALICE, BOB, CAROL):
            self.assertNotIn(u, after_text, "the page names a user")

    def test_02_http_and_socket_serve_the_same_page(self):
        st = self.stack
        rc, out, err = st.credctl("root", "admin", "metrics")
        self.assertEqual(rc, 0, err)
        http_fams = {f.name for f in text_string_to_metric_families(self.scrape())}
        sock_fams = {f.name for f in text_string_to_metric_families(out)}
        self.assertEqual(http_fams, sock_fams)
        for want in ("credd_requests", "credd_cache_lookups", "credd_refresh_grants",
                     "credd_device_flows_started", "credd_device_flows_completed",
                     "credd_idp_request_duration_seconds",
                     "credd_cached_token_duration_seconds", "credd_store_errors",
                     "credd_pinned_refresh_tokens", "credd_sessions", "credd_connections_open",
                     "credd_listener_refusals"):
            self.assertIn(want, sock_fams)
        rc, out, err = st.credctl(H.ADMIN_USER, "admin", "metrics", "--json")
        self.assertEqual(rc, 0, err)
        self.assertTrue(json.loads(out)["text"].startswith("# HELP"))
        code, _, _ = st.http("/nope")
        self.assertEqual(code, 404)
        code, _, _ = st.http("/metrics", method="POST")
        self.assertEqual(code, 405)

    def test_03_plain_user_refused(self):
        st = self.stack
        for op in (("admin", "metrics"), ("admin", "stats")):
            rc, out, err = st.credctl(ALICE, *op)
            self.assertEqual(rc, EXIT_REFUSED, "%s as a plain user: exit %d %s" % (op, rc, err))
            self.assertEqual(out, "")
        rc, out, err = st.credctl(ALICE, "admin", "health")
        self.assertEqual(rc, 0, "health is for any user: exit %d %s" % (rc, err))


# ---------------------------------------------------------------- health

class HealthTests(F.FaultTestCase):
    LIFETIME = 3600
    STACK = F.TmpfsStack

    def health(self, user=ALICE):
        rc, out, err = self.stack.credctl(user, "admin", "health", "--json")
        return rc, json.loads(out) if out.strip() else None, err

    def test_01_healthy(self):
        self.stack.consent(ALICE)
        rc, doc, err = self.health(CAROL)  # any user, consent or not
        self.assertEqual(rc, 0, "%s %s" % (doc, err))
        self.assertEqual(doc["health"], "healthy")
        for c in ("store", "idp", "keyring"):
            self.assertTrue(doc[c]["usable"], doc)
        rc, out, err = self.stack.credctl(CAROL, "admin", "health")
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("healthy\n"), out)

    def test_02_dead_store(self):
        st = self.stack
        filler = st.fill()
        try:
            rc, doc, err = st.token(ALICE, "vault")  # a refresh; its RT cannot be written
            self.assertEqual(rc, 0, err)
            rc, doc, err = self.health()
            self.assertEqual(rc, EXIT_UNHEALTHY, "%s %s" % (doc, err))
            self.assertEqual(doc["health"], "unhealthy")
            self.assertFalse(doc["store"]["usable"])
            self.assertTrue(doc["idp"]["usable"], doc)
            rc, out, _ = st.credctl(ALICE, "admin", "health")
            self.assertEqual(rc, EXIT_UNHEALTHY)
            self.assertIn("UNUSABLE", out)
        finally:
            os.unlink(filler)
        end = time.monotonic() + 90  # credd writes the pinned RT on its own
        while time.monotonic() < end:
            rc, doc, _ = self.health()
            if rc == 0:
                break
            time.sleep(0.5)
        self.assertEqual(rc, 0, "the store never came back healthy: %s" % doc)

    def test_03_idp_gone(self):
        st = self.stack
        # The IdP stops answering (a black hole: the kernel still accepts,
        # nothing replies); SIGCONT after, for the leak sweep's questions.
        st.emu.send_signal(signal.SIGSTOP)
        try:
            rc, _, _ = st.token(ALICE, "graph")  # a refresh that times out
            self.assertNotEqual(rc, 0)
            rc, doc, err = self.health()
            self.assertEqual(rc, EXIT_DEGRADED, "%s %s" % (doc, err))
            self.assertEqual(doc["health"], "degraded")
            self.assertFalse(doc["idp"]["usable"])
            self.assertIn("timed out", doc["idp"]["reason"])
            self.assertTrue(doc["store"]["usable"], doc)
            rc, out, _ = st.credctl(ALICE, "admin", "health")
            self.assertEqual(rc, EXIT_DEGRADED)
            self.assertTrue(out.startswith("degraded\n"), out)
            # the cached token is still served
            rc, _, err = st.token(ALICE, "storage")
            self.assertEqual(rc, 0, err)
        finally:
            st.emu.send_signal(signal.SIGCONT)
        # The next contact that gets an answer makes it usable again.
        end = time.monotonic() + 60
        while time.monotonic() < end:
            st.token(ALICE, "graph")
            rc, doc, _ = self.health()
            if rc == 0:
                break
            time.sleep(1)
        self.assertEqual(rc, 0, "the IdP never came back usable: %s" % doc)



# ------------------------------------------------- the sign-in callback

class CallbackStack(F.FaultStack):
    def write_conf(self, extra=""):
        if getattr(self, "cport", None) is None:
            self.cport = H.free_port()
        super().write_conf(extra + "\n[callback]\nlisten = 127.0.0.1:%d\n" % self.cport)


class CallbackUpTests(F.FaultTestCase):
    """[callback] listen set (issue 13, the listener always built): credd
    serves its socket and the listener is up on the port: stats and
    status report it "up", an unknown short link is a 404 (counted in
    links_unknown), and no "built without" warning is logged."""
    STACK = CallbackStack

    def test_01_up(self):
        st = self.stack
        self.assertIn("access_token", st.consent(ALICE))
        rc, _, err = st.token(ALICE, "storage")
        self.assertEqual(rc, 0, err)
        with open(st.credd_log, errors="replace") as f:
            log = f.read()
        self.assertNotIn("built without", log)
        deadline = time.monotonic() + 30
        while True:
            r = st.req("root", {"v": 1, "op": "stats"})
            self.assertTrue(r.get("ok"), r)
            if r.get("callback", {}).get("state") == "up" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(r["callback"].get("state"), "up", r)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen("http://127.0.0.1:%d/entra/login/%s"
                                   % (st.cport, "A" * 22), timeout=30)
        self.assertEqual(cm.exception.code, 404)
        r = st.req("root", {"v": 1, "op": "stats"})
        self.assertEqual(r["callback"].get("links_unknown"), 1, r)
        r = st.req(ALICE, {"v": 1, "op": "status"})
        self.assertTrue(r.get("ok"), r)
        self.assertEqual(r.get("callback", {}).get("state"), "up", r)


if __name__ == "__main__":
    sys.exit(F.main(__name__, __doc__))
