#!/usr/bin/python3
"""A hostile IdP, driven by the emulator's fault injection.

For each fault: the refresh that meets it fails with credctl exit 4
(idp_unavailable or rate_limited: the RETRY class, never REAUTH), the
emulator shows the request really reached it, credd stays up with its RSS
bounded (100 MB bodies are not buffered), a valid cached token of another
scope keeps being served, and once the fault is cleared the same request
succeeds on its own (the consent survives: no new device flow).
TLS and connection failures (unknown CA, expired certificate, wrong host
name, a peer that accepts TCP and never speaks TLS) need a restart of
credd with another authority or ca_file; the consent must survive them.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import faultlib as F
from faultlib import H

USERS = ("entra_alice", "entra_bob", "entra_carol", "entra_flt1", "entra_flt2",
         "entra_flt3", "entra_flt4", "entra_flt5", "entra_flt6")
ALICE = "entra_alice"
MB = 1024 * 1024
FAULTS = [
    ("429", {"retry_after": 1}),
    ("503", {"retry_after": 1}),
    ("500", {}),
    ("slow", {"delay": 8}),          # no answer within credd's timeout (5 s)
    ("stall", {"delay": 8}),         # headers, then silence (read timeout)
    ("reset", {}),
    ("malformed", {}),
    ("truncated", {}),
    ("garbage", {}),
    ("html", {}),                    # wrong content type (captive portal)
    ("oversized", {}),               # 4 MiB with Content-Length
    ("huge", {"size": 100 * MB}),    # 100 MB with Content-Length
    ("oversized_chunked", {"size": 100 * MB}),  # 100 MB, length unknown
]
RSS_SLACK_KB = 96 * 1024  # ASan's quarantine included; a 100 MB body would exceed it


setUpModule = F.setup_module          # users, /dev/log capture
tearDownModule = F.teardown_module


def start_aux_emulator(root, name, mode):
    d = os.path.join(root, "aux-" + name)
    os.makedirs(d, exist_ok=True)
    logf = open(os.path.join(root, "aux-%s.log" % name), "ab")
    p = subprocess.Popen(["/usr/bin/python3", H.BIN["emulator"], "--state-dir", d, "--port", "0",
                          "--cert-mode", mode], stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    logf.close()
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            with open(os.path.join(d, "port")) as f:
                port = int(f.read().strip())
            os.chmod(d, 0o755)
            os.chmod(os.path.join(d, "ca.pem"), 0o644)
            F.snapshot_proc("aux emulator " + name, p.pid)
            return p, port, os.path.join(d, "ca.pem")
        except (OSError, ValueError):
            time.sleep(0.1)
    p.kill()
    raise RuntimeError("aux emulator %s not ready" % name)


class Tarpit:
    """Accepts TCP connections and never says a word (TLS handshake hangs)."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(64)
        self.port = self.s.getsockname()[1]
        self.conns = []
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        self.s.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.s.accept()
                self.conns.append(c)
            except OSError:
                continue

    def close(self):
        self.stop = True
        self.t.join(2)
        for c in self.conns:
            c.close()
        self.s.close()


class HostileIdPTests(F.FaultTestCase):
    LIFETIME = 3600

    def rss(self):
        return F.rss_kb(self.stack.credd.pid)

    def test_01_faults(self):
        st = self.stack
        for u in USERS:
            st.consent(u)
        cached = st.wait_token(ALICE, "storage")
        base = self.rss()
        peak = base
        pairs = [(u, s) for s in ("vault", "graph", "databricks") for u in USERS]
        injected = 0
        results = {}
        flows0 = st.counters()["devicecode"]
        for i, (kind, kw) in enumerate(FAULTS):
            user, scope = pairs[i]
            st.clear()
            before = st.counters()["refresh_token"]
            st.fault(kind, count=-1, grant="refresh_token", **kw)
            t0 = time.monotonic()
            rc, doc, err = st.token(user, scope)
            dt = time.monotonic() - t0
            hit = st.counters()["refresh_token"] - before
            injected += hit
            self.assertTrue(st.credd_alive(), "credd died on fault %s" % kind)
            rss = self.rss()
            peak = max(peak, rss)
            results[kind] = {"exit": rc, "s": round(dt, 1), "rss_kb": rss, "hits": hit}
            self.assertGreaterEqual(hit, 1, "fault %s never reached the emulator" % kind)
            self.assertEqual(rc, H.EXIT_UNAVAIL, "fault %s: exit %d (want 4): %s"
                             % (kind, rc, err[:300]))
            self.assertLess(rss - base, RSS_SLACK_KB, "fault %s: RSS grew by %d kB"
                            % (kind, rss - base))
            # a valid cached token is still served (other user, other scope)
            rc, doc, err = st.token(ALICE, "storage")
            self.assertEqual(rc, 0, "fault %s: cached token not served: %s" % (kind, err))
            self.assertEqual(doc["access_token"], cached["access_token"])
            # automatic recovery once the IdP behaves
            st.clear()
            doc = st.wait_token(user, scope, deadline=120)
            self.assertTrue(doc["access_token"])
        self.assertEqual(st.counters()["devicecode"], flows0, "a fault cost a consent")
        F.figure("idp_faults_injected", injected)
        F.figure("idp_fault_kinds", len(FAULTS))
        F.figure("idp_rss_base_kb", base)
        F.figure("idp_rss_peak_kb", peak)
        F.figure("idp_results", results)

    def test_02_tls_and_connect_failures(self):
        st = self.stack
        st.consent(ALICE) if st.token(ALICE, "storage")[0] != 0 else None
        auxes = []
        tarpit = Tarpit()
        try:
            other, oport, oca = start_aux_emulator(st.root, "otherca", "good")
            expd, eport, eca = start_aux_emulator(st.root, "expired", "expired")
            wrong, wport, wca = start_aux_emulator(st.root, "wronghost", "wronghost")
            auxes = [other, expd, wrong]
            good_ca = os.path.join(st.emu_dir, "ca.pem")
            cases = [
                ("unknown_ca", st.port, oca),  # the real emulator, another CA trusted
                ("expired_cert", eport, eca),
                ("wrong_host", wport, wca),
                ("tls_handshake_timeout", tarpit.port, good_ca),
            ]
            res = {}
            for name, port, ca in cases:
                st.conf_set.update({"authority": "https://127.0.0.1:%d" % port, "ca_file": ca})
                st.write_conf()
                st.restart_credd()
                t0 = time.monotonic()
                rc, _, err = st.token(ALICE, "storage")
                res[name] = {"exit": rc, "s": round(time.monotonic() - t0, 1)}
                self.assertTrue(st.credd_alive(), "credd died on %s" % name)
                self.assertEqual(rc, H.EXIT_UNAVAIL, "%s: exit %d (want 4): %s"
                                 % (name, rc, err[:300]))
            st.conf_set.pop("authority")
            st.conf_set.pop("ca_file")
            st.write_conf()
            st.restart_credd()
            doc = st.wait_token(ALICE, "storage", deadline=60)
            self.assertTrue(doc["access_token"], "no recovery after TLS failures")
            F.figure("idp_tls_results", res)
        finally:
            tarpit.close()
            for p in auxes:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    sys.exit(F.main(__name__, __doc__))
