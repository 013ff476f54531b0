#!/usr/bin/python3
"""credd doctor, and the audit file's reopen on SIGUSR1 (issue 15 §2).

Run as root (CTest passes CREDD_BIN, CREDCTL_BIN and EMULATOR):
    /usr/bin/python3 tests/integration/test_doctor.py [--keep] [DoctorTests]
Not root: exits 77. One emulator and one credd (file store, [msi] listen
on a free port) for DoctorTests; a test PAM directory (--pam-dir).

DoctorTests: a healthy node passes (exit 0, no FAIL); each seeded fault
fails with its own message (key file mode 0644, no pam_entra.so line, a
bad module argument, the IdP unreachable, the IdP's Date header 10 min
off, the SDK port held by another process, a postgres store that does not
answer); a planted password in the DSN and the key ring never appear in
the output; SIGUSR1 makes credd reopen the audit file (rename, signal,
the next record lands in a new file, none lost); the key=value log lines
parse. DoctorPgTests (integration.doctor_pg, with the cluster suite's
PostgreSQL fixture, CREDD_PG_DSN_FILE): a postgres store passes, with the
DSN's password not shown.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness as H  # noqa: E402 (found next to this file)

ALICE, BOB = "entra_alice", "entra_bob"
PW_CANARY = "CANARYpgPassw0rd-must-not-show"
LINE = re.compile(r"^(ok|warn|FAIL)  +([a-z ]+): (.*)$")
KV = re.compile(r'\s*([a-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"]+)')


def setUpModule():
    H.global_setup()


def tearDownModule():
    H.global_teardown(keep=any(s.failed for s in H.ALL_STACKS))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def closed_port():
    """A loopback port nobody listens on (bound, never listened, kept)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def parse_kv(text):
    """key=value fields of a log message; None when something is left over."""
    out, pos = {}, 0
    while pos < len(text):
        m = KV.match(text, pos)
        if m is None:
            return None if text[pos:].strip() else out
        v = m.group(2)
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        out[m.group(1)] = v
        pos = m.end()
    return out


class DoctorBase(H.StackTestCase):
    LIFETIME = 300

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st = cls.stack
        cls.pam_dir = os.path.join(st.root, "pam.d")
        cls.write_pam(cls.pam_dir, "session optional pam_entra.so socket=%s" % st.sock)

    @staticmethod
    def write_pam(d, session_line, noninteractive=True):
        os.makedirs(d, exist_ok=True)
        files = {
            "common-session": "session required pam_unix.so\n%s\n" % session_line,
            "sshd": "@include common-auth\n@include common-session\n",
            "login": "# comment\n@include common-session\n",
        }
        if noninteractive:
            files["common-session-noninteractive"] = files["common-session"]
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)

    def doctor(self, conf=None, pam_dir=None, extra=()):
        st = self.stack
        cmd = [H.BIN["credd"], "doctor", "-c", conf or st.conf,
               "--pam-dir", pam_dir or self.pam_dir] + list(extra)
        t0 = time.monotonic()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        took = time.monotonic() - t0
        H.log("credd doctor: rc %d in %.2f s" % (r.returncode, took))
        if os.environ.get("DOCTOR_SHOW"):
            sys.stderr.write(r.stdout)
        return r.returncode, r.stdout

    def conf_copy(self, name, edit):
        """A copy of the stack's config with edit(text) applied."""
        with open(self.stack.conf) as f:
            text = f.read()
        path = os.path.join(self.stack.etc_dir, name)
        with open(path, "w") as f:
            f.write(edit(text))
        os.chmod(path, 0o644)
        return path

    def lines(self, out, level=None, check=None):
        res = []
        for ln in out.splitlines():
            m = LINE.match(ln)
            if m and (level is None or m.group(1) == level) and \
                    (check is None or m.group(2) == check):
                res.append(m.group(3))
        return res

    def assertFails(self, rc, out, check, pattern):
        self.assertEqual(rc, 1, "doctor should exit 1:\n" + out)
        fails = self.lines(out, "FAIL", check)
        self.assertTrue(any(re.search(pattern, f) for f in fails),
                        "no FAIL %s line matching %r:\n%s" % (check, pattern, out))
        # Every warn/FAIL line has its fix.
        ls = out.splitlines()
        for i, ln in enumerate(ls):
            if ln.startswith(("FAIL", "warn")):
                self.assertTrue(i + 1 < len(ls) and ls[i + 1].startswith("      fix: "),
                                "no fix under %r" % ln)
        return fails


class DoctorTests(DoctorBase):
    """credd doctor on a healthy node and one seeded fault at a time."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st = cls.stack
        cls.msi_port = free_port()
        st.stop_credd()
        st.write_conf(extra="\n[msi]\nlisten = 127.0.0.1:%d\n" % cls.msi_port)
        st.start_credd()

    def test_01_healthy(self):
        rc, out = self.doctor()
        self.assertEqual(rc, 0, "a healthy node fails:\n" + out)
        self.assertEqual(self.lines(out, "FAIL"), [], out)
        for check in ("config", "keys", "state", "store", "socket", "idp", "clock",
                      "sdk endpoint", "pam"):
            self.assertTrue(self.lines(out, "ok", check), "no ok %s line:\n%s" % (check, out))
        self.assertTrue(any("held by credd" in s for s in self.lines(out, "ok", "sdk endpoint")),
                        out)
        self.assertTrue(out.rstrip().endswith("0 failed, %d warnings" % len(self.lines(out, "warn"))),
                        out)

    def test_02_key_mode(self):
        st = self.stack
        os.chmod(st.key_file, 0o644)
        try:
            rc, out = self.doctor()
        finally:
            os.chmod(st.key_file, 0o600)
        self.assertFails(rc, out, "keys", r"mode 0644: open to group or others")
        self.assertIn("fix: chmod 0600 %s" % st.key_file, out)

    def test_03_missing_pam_line(self):
        d = os.path.join(self.stack.root, "pam-missing")
        self.write_pam(d, "session optional pam_systemd.so")
        rc, out = self.doctor(pam_dir=d)
        self.assertFails(rc, out, "pam", r"common-session: no session line for pam_entra\.so")
        self.assertIn("pam-auth-update --enable entra", out)

    def test_04_bad_pam_arguments(self):
        d = os.path.join(self.stack.root, "pam-bad")
        self.write_pam(d, "session optional pam_entra.so timeout=0 colour=blue socket=/run/x.sock")
        rc, out = self.doctor(pam_dir=d)
        self.assertFails(rc, out, "pam", r'argument "timeout=0": need milliseconds')
        self.assertFails(rc, out, "pam", r'argument "socket=/run/x.sock": not credd')
        self.assertTrue(any("colour=blue" in w for w in self.lines(out, "warn", "pam")), out)

    def test_05_idp_unreachable(self):
        hold, port = closed_port()
        try:
            conf = self.conf_copy("idp-down.conf", lambda t: re.sub(
                r"authority = https://127.0.0.1:\d+", "authority = https://127.0.0.1:%d" % port, t))
            rc, out = self.doctor(conf=conf)
        finally:
            hold.close()
        fails = self.assertFails(rc, out, "idp", r"Couldn't connect|Could not connect")
        self.assertIn(":%d/" % port, fails[0])
        self.assertFalse(self.lines(out, None, "clock"), "skew reported without a reply:\n" + out)

    def test_06_idp_tls(self):
        # A CA that did not sign the emulator's certificate: a TLS error, said plainly.
        other = "/etc/ssl/certs/ca-certificates.crt"
        if not os.path.isfile(other):
            self.skipTest("no system CA bundle at " + other)
        conf = self.conf_copy("idp-tls.conf", lambda t: re.sub(
            r"ca_file = .*", "ca_file = " + other, t))
        rc, out = self.doctor(conf=conf)
        self.assertFails(rc, out, "idp", r"(?i)ssl|certificate")
        self.assertIn("ca_file", out)

    def test_06b_discovered_endpoints(self):
        # The endpoints credd would use, and the rule that refuses a lying
        # document (the field named).
        st = self.stack
        rc, out = self.doctor()
        base = "https://127.0.0.1:%d/%s" % (st.port, H.TENANT)
        ok = self.lines(out, "ok", "endpoints")
        self.assertTrue(any(("token %s/oauth2/v2.0/token" % base) in s for s in ok), out)
        self.assertTrue(any(("device code %s/oauth2/v2.0/devicecode" % base) in s for s in ok),
                        out)
        self.assertTrue(any(("authorize %s/oauth2/v2.0/authorize" % base) in s for s in ok), out)
        try:
            st.ctl("POST", "discovery", {"mode": "foreign_token",
                                         "foreign": "https://198.51.100.7:443"})
            rc, out = self.doctor()
        finally:
            st.ctl("POST", "discovery", {"mode": "ok"})
        fails = self.assertFails(rc, out, "idp", r"discovery document refused: token_endpoint "
                                 r"is on host '198\.51\.100\.7'")
        self.assertIn("discovery_hosts", out)
        self.assertFalse(self.lines(out, "ok", "endpoints"), out)
        self.assertTrue(fails)

    def test_07_clock_skew(self):
        st = self.stack
        try:
            st.ctl("POST", "date_offset", {"seconds": 600})
            rc, out = self.doctor()
            fails = self.assertFails(rc, out, "clock", r"^\+(59[5-9]|60[0-5]) s against the IdP")
            self.assertIn("expired or not yet valid", fails[0])
            st.ctl("POST", "date_offset", {"seconds": -120})
            rc, out = self.doctor()
            self.assertEqual(rc, 0, out)
            warns = self.lines(out, "warn", "clock")
            self.assertTrue(warns and re.match(r"^-1[12]\d s", warns[0]), out)
        finally:
            st.ctl("POST", "date_offset", {"seconds": 0})
        with self.assertRaises(H.ControlError):
            st.ctl("POST", "date_offset", {"seconds": "ten"})

    def test_08_sdk_port_taken(self):
        taker = socket.socket()
        taker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taker.bind(("127.0.0.1", 0))
        taker.listen(1)
        port = taker.getsockname()[1]
        try:
            conf = self.conf_copy("port-taken.conf", lambda t: re.sub(
                r"listen = 127.0.0.1:\d+", "listen = 127.0.0.1:%d" % port, t))
            rc, out = self.doctor(conf=conf)
        finally:
            taker.close()
        self.assertFails(rc, out, "sdk endpoint",
                         r"127\.0\.0\.1:%d: port taken by pid %d \(python3?, uid 0\), not credd"
                         % (port, os.getpid()))

    def test_09_secrets_never_shown(self):
        # A password in the DSN (postgres that does not answer) and the key ring.
        hold, port = closed_port()
        try:
            def to_pg(t):
                t = t.replace("backend = file",
                              "backend = postgres\ndsn = host=127.0.0.1 port=%d dbname=credd "
                              "user=credd password=%s connect_timeout=3" % (port, PW_CANARY))
                return t
            conf = self.conf_copy("pg-down.conf", to_pg)
            rc, out = self.doctor(conf=conf)
        finally:
            hold.close()
        if "not built into this credd" in out:
            self.skipTest("credd built without ENTRA_PG")
        fails = self.assertFails(rc, out, "store", r"postgres host=127\.0\.0\.1 port=%d "
                                 r"dbname=credd user=credd: cannot connect" % port)
        self.assertNotIn("password", fails[0])
        with open(self.stack.key_file) as f:
            keys = re.findall(r"^key \d+ (\S+)", f.read(), re.M)
        self.assertTrue(keys)
        rc2, out2 = self.doctor()
        leaks = H.find_leaks({"doctor (pg)": out.encode(), "doctor": out2.encode()},
                             [PW_CANARY] + keys)
        self.assertEqual(leaks, [], "secret in doctor's output:\n" + "\n".join(leaks))

    def test_10_credd_down(self):
        st = self.stack
        st.stop_credd()
        try:
            rc, out = self.doctor()
        finally:
            st.start_credd()
        self.assertFails(rc, out, "socket", r"credd is not running")
        self.assertTrue(any("free (credd is not running)" in s
                            for s in self.lines(out, "ok", "sdk endpoint")), out)

    def test_11_bad_config_and_usage(self):
        conf = self.conf_copy("broken.conf", lambda t: t + "\n[nonsense]\nx = 1\n")
        rc, out = self.doctor(conf=conf)
        self.assertFails(rc, out, "config", r"broken\.conf:\d+:")
        r = subprocess.run([H.BIN["credd"], "doctor", "--bogus"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("usage: credd doctor", r.stderr)

    def test_20_audit_reopen_on_sigusr1(self):
        st = self.stack
        rotated = st.audit_file + ".1"
        before = st.request(ALICE, {"v": 1, "op": "stats"})
        self.assertEqual(before.get("ok"), False, before)
        os.rename(st.audit_file, rotated)
        st.credd.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not os.path.exists(st.audit_file):
            self.assertLess(time.monotonic(), deadline, "SIGUSR1: no new audit file")
            time.sleep(0.05)
        self.assertTrue(st.credd_alive(), "credd died on SIGUSR1")
        after = st.request(BOB, {"v": 1, "op": "stats"})
        self.assertEqual(after.get("ok"), False, after)
        deadline = time.monotonic() + 10
        while True:
            new = [json.loads(x) for x in H.read_bytes(st.audit_file).decode().splitlines() if x]
            if any(r.get("uid") == H.uid_of(BOB) for r in new) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        old = [json.loads(x) for x in H.read_bytes(rotated).decode().splitlines() if x]
        self.assertTrue(any(r.get("uid") == H.uid_of(ALICE) and r.get("event") == "request_refused"
                            for r in old), "alice's refusal is not in the rotated file: %s" % old)
        self.assertTrue(any(r.get("uid") == H.uid_of(BOB) and r.get("event") == "request_refused"
                            for r in new), "bob's refusal is not in the new file: %s" % new)
        self.assertFalse(any(r.get("uid") == H.uid_of(BOB) for r in old), old)
        self.assertEqual(os.stat(st.audit_file).st_mode & 0o777, 0o600)
        # The leak check reads the current file; keep the rotated records in it.
        with open(st.audit_file, "ab") as f:
            f.write(H.read_bytes(rotated))
        os.unlink(rotated)

    def test_30_key_value_log_lines(self):
        st = self.stack
        st.credd.send_signal(signal.SIGUSR1)
        st.credd.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        want = {"startup", "audit_reopened", "config_reloaded"}
        while True:
            seen = {}
            for ln in H.read_bytes(st.credd_log).decode("utf-8", "replace").splitlines():
                m = re.match(r"^credd\[\d+\]: (?:info|warning|fatal|debug): (event=.*)$", ln)
                if m:
                    seen.setdefault(parse_kv(m.group(1)) is not None and
                                    parse_kv(m.group(1)).get("event"), []).append(m.group(1))
            if want <= set(seen) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertNotIn(None, seen, "event= lines that do not parse as key=value: %s"
                         % seen.get(None))
        self.assertNotIn(False, seen, "event= lines that do not parse: %s" % seen.get(False))
        self.assertTrue(want <= set(seen), "missing events %s; seen %s" % (want - set(seen),
                                                                         sorted(seen)))
        start = parse_kv(seen["startup"][-1])
        for k in ("version", "socket", "uid", "node", "backend"):
            self.assertIn(k, start, seen["startup"][-1])
        self.assertEqual(start["socket"], st.sock)
        self.assertEqual(start["backend"], "file")


class DoctorPgTests(DoctorBase):
    """A postgres store against the cluster fixture's server."""

    @classmethod
    def setUpClass(cls):
        path = os.environ.get("CREDD_PG_DSN_FILE")
        if not path or not os.path.isfile(path):
            raise unittest.SkipTest("no PostgreSQL fixture (CREDD_PG_DSN_FILE)")
        with open(path) as f:
            cls.dsn = f.read().strip()
        super().setUpClass()

    def test_01_postgres_store(self):
        dsn = self.dsn  # the fixture's, with its role's password
        m = re.search(r"password=(\S+)", dsn)
        self.assertIsNotNone(m, "the fixture's DSN has no password to hide")
        conf = self.conf_copy("pg.conf", lambda t: t.replace(
            "backend = file", "backend = postgres\ndsn = " + dsn))
        r = subprocess.run([H.BIN["credd"], "db-init", "-c", conf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout)
        rc, out = self.doctor(conf=conf)
        self.assertTrue(any(re.search(r"^postgres .*: schema version \d+$", s)
                            for s in self.lines(out, "ok", "store")), out)
        self.assertNotIn(m.group(1), out, "the DSN's password is in doctor's output")
        self.assertNotIn("password", out)
        self.assertEqual(self.lines(out, "FAIL"), [], out)


def main():
    return H.run_suite(__name__, __doc__,
                       "doctor tests need root (credd as root, real users). Run as root.")


if __name__ == "__main__":
    sys.exit(main())
