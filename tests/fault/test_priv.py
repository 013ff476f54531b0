#!/usr/bin/python3
"""Privilege checks: credd refuses a key file or a state directory that
group or others can read; started as root it drops to the credd user (all
of the Uid and Gid lines, no supplementary groups, no capabilities, core
limit 0, not dumpable); clients refuse a socket whose server is neither
root nor the credd user, before sending anything.
"""

import os
import pwd
import socket
import subprocess
import sys
import threading
import time

import faultlib as F
from faultlib import H

ALICE, BOB = "entra_alice", "entra_bob"


setUpModule = F.setup_module          # users, /dev/log capture
tearDownModule = F.teardown_module


def fake_server(path, secs):
    """(child, as another user) listen on path, answer every line with a
    forged token, report the bytes clients sent."""
    try:
        os.unlink(path)
    except OSError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o666)
    srv.listen(16)
    srv.settimeout(0.2)
    got, conns = 0, 0
    end = time.monotonic() + secs
    reply = (b'{"ok":true,"access_token":"FORGED-TOKEN","token_type":"Bearer",'
             b'"expires_on":4102444800,"scope":"x","account":"x"}\n')
    while time.monotonic() < end:
        try:
            c, _ = srv.accept()
        except OSError:
            continue
        conns += 1
        c.settimeout(1.0)
        try:
            c.sendall(reply)  # unprompted, in case a client reads first
            d = c.recv(65536)
            got += len(d)
        except OSError:
            pass
        c.close()
    srv.close()
    return {"conns": conns, "bytes": got}


class PrivTests(F.FaultTestCase):
    LIFETIME = 3600

    def start_expect_refusal(self, what):
        st = self.stack
        st.stop_credd()
        p = subprocess.run([H.BIN["credd"], "-c", st.conf, "-f", "-d"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        with open(st.credd_log, "ab") as f:
            f.write(("===== fault: expected refusal (%s) =====\n" % what).encode() + p.stdout)
        self.assertNotEqual(p.returncode, 0, "credd started with %s:\n%s" % (what, out[-500:]))
        return out

    def test_01_loose_key_file_refused(self):
        st = self.stack
        for mode in (0o640, 0o604, 0o644):
            os.chmod(st.key_file, mode)
            try:
                out = self.start_expect_refusal("key file mode %o" % mode)
                self.assertIn("key", out.lower())
            finally:
                os.chmod(st.key_file, 0o600)
        st.start_credd()

    def test_02_loose_state_dir_refused(self):
        st = self.stack
        for mode in (0o750, 0o705, 0o755):
            os.chmod(st.state_dir, mode)
            try:
                self.start_expect_refusal("state dir mode %o" % mode)
            finally:
                os.chmod(st.state_dir, 0o700)
        st.start_credd()

    def test_03_drops_to_credd_user(self):
        st = self.stack
        if not st.credd_alive():
            st.start_credd()
        pid = st.credd.pid
        cu = pwd.getpwnam(H.CREDD_USER)
        s = F.proc_status(pid)
        self.assertEqual(s["Uid"].split(), [str(cu.pw_uid)] * 4, s["Uid"])
        self.assertEqual(s["Gid"].split(), [str(cu.pw_gid)] * 4, s["Gid"])
        self.assertEqual(s.get("Groups", ""), "", "supplementary groups kept")
        for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            self.assertEqual(int(s[cap], 16), 0, "%s %s" % (cap, s[cap]))
        with open("/proc/%d/limits" % pid) as f:
            core = [ln for ln in f if ln.startswith("Max core file size")][0]
        self.assertEqual(core.split()[4:6], ["0", "0"], core)
        # not dumpable: the kernel makes /proc/PID/* root-owned
        self.assertEqual(os.stat("/proc/%d/status" % pid).st_uid, 0,
                         "credd is dumpable (its /proc files belong to it)")
        F.figure("priv_credd_status", {k: s[k] for k in ("Uid", "Gid", "CapEff", "NoNewPrivs")
                                       if k in s})

    def test_04_client_refuses_fake_server(self):
        st = self.stack
        d = os.path.join(st.root, "fake")
        os.makedirs(d, exist_ok=True)
        bob = pwd.getpwnam(BOB)
        os.chown(d, bob.pw_uid, bob.pw_gid)
        os.chmod(d, 0o755)
        path = os.path.join(d, "credd.sock")
        res = {}
        t = threading.Thread(target=lambda: res.update(H.run_as(BOB, fake_server, path, 12)))
        t.start()
        for _ in range(100):
            if os.path.exists(path):
                break
            time.sleep(0.05)
        outs = []
        for args in (("token", "--json"), ("status", "--json"), ("login", "--no-wait")):
            rc, out, err = st.credctl(ALICE, "--socket", path, *args, socket_opt=False)
            outs.append((args[0], rc))
            self.assertNotEqual(rc, 0, "credctl %s accepted a fake server: %s" % (args[0], out))
            self.assertNotIn("FORGED", out + err)
        t.join()
        self.assertGreaterEqual(res["conns"], 1, "credctl never connected: %s" % res)
        self.assertEqual(res["bytes"], 0, "credctl sent a request to a fake server: %s" % res)
        F.figure("priv_fake_server", {"credctl_exits": outs, "server_saw": res})


if __name__ == "__main__":
    sys.exit(F.main(__name__, __doc__))
