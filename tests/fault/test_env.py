#!/usr/bin/python3
"""The environment credd starts in (issue 11, item 10).

EnvTests: credd started with an environment that changes TLS or proxies
when honoured -- SSLKEYLOGFILE (libcurl writes the TLS secrets there),
http(s)_proxy / HTTPS_PROXY / ALL_PROXY at a dead proxy, CURL_CA_BUNDLE /
SSL_CERT_FILE / SSL_CERT_DIR at a CA that is not the IdP's, OPENSSL_CONF
at a config that leaves no cipher the IdP speaks -- still signs a user in
and refreshes through the IdP, no key log appears, and /proc/PID/environ
holds only the documented NSS_WRAPPER_* variables (a canary it was given
is gone).
"""

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import uuid

import faultlib as F
from faultlib import H

ALICE, BOB = "entra_alice", "entra_bob"
CANARY = "CANARY-env-" + uuid.uuid4().hex
# credd must keep these and only these (procenv.h).
KEPT_PREFIX = b"NSS_WRAPPER_"


def setUpModule():
    F.setup_module()


def tearDownModule():
    F.teardown_module()


def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def environ_entries(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        data = f.read()
    return data, [e for e in data.split(b"\0") if e]


class EnvStack(F.FaultStack):
    """FaultStack whose credd gets an environment of our choosing, and
    optionally starts as another user (systemd's User=)."""

    def __init__(self, name, **kw):
        super().__init__(name, **kw)
        self.env = None       # None: the harness's (inherited) environment
        self.as_user = None   # e.g. "credd"

    def popen_kw(self):
        kw = {}
        if self.env is not None:
            kw["env"] = self.env
        if self.as_user is not None:
            pw = pwd.getpwnam(self.as_user)
            kw.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        return kw

    def start_credd(self, timeout=30):
        if self.env is None and self.as_user is None:
            return super().start_credd(timeout)
        self.credd_starts += 1
        with open(self.credd_log, "ab") as logf:
            logf.write(b"===== test_env: credd start #%d (%s) =====\n"
                       % (self.credd_starts, (self.as_user or "root").encode()))
            logf.flush()
            self.credd = subprocess.Popen([H.BIN["credd"], "-c", self.conf, "-f", "-d"],
                                          stdout=logf, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          **self.popen_kw())
        deadline = time.monotonic() + timeout
        while True:
            if self.credd.poll() is not None:
                raise RuntimeError("credd exited (rc %s) during start-up:\n%s"
                                   % (self.credd.returncode, H.tail(self.credd_log)))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.sock)
                break
            except OSError:
                pass
            finally:
                s.close()
            if time.monotonic() > deadline:
                raise RuntimeError("credd not accepting after %d s:\n%s"
                                   % (timeout, H.tail(self.credd_log)))
            time.sleep(0.05)
        F.snapshot_proc("credd", self.credd.pid)

    def run_credd(self, what):
        """Start credd expecting it to refuse; returns (rc, output)."""
        self.stop_credd()
        p = subprocess.run([H.BIN["credd"], "-c", self.conf, "-f", "-d"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=60, **self.popen_kw())
        with open(self.credd_log, "ab") as f:
            f.write(("===== test_env: expected refusal (%s) =====\n" % what).encode() + p.stdout)
        return p.returncode, p.stdout.decode("utf-8", "replace")


def base_env():
    """What every credd here gets besides the hostile part."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C", "NSS_WRAPPER_DEBUGLEVEL": "0",
           "CREDD_TEST_CANARY": CANARY}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:  # read by the runtime before main()
            env[k] = os.environ[k]
    return env


class EnvTests(H.StackTestCase):
    LIFETIME = 3600

    @classmethod
    def setUpClass(cls):
        cls.stack = EnvStack(cls.__name__, lifetime=cls.LIFETIME)
        cls.addClassCleanup(cls.stack.stop)
        cls.stack.start()

    def restart_with(self, extra):
        st = self.stack
        st.stop_credd()
        env = base_env()
        env.update(extra)
        st.env = env
        st.start_credd()
        return st.credd.pid

    def check_environ(self, pid):
        data, entries = environ_entries(pid)
        stray = [e.split(b"=", 1)[0].decode("utf-8", "replace") for e in entries
                 if not e.startswith(KEPT_PREFIX) or b"=" not in e]
        self.assertEqual(stray, [], "credd kept undocumented variables in its environment")
        self.assertIn(b"NSS_WRAPPER_DEBUGLEVEL=0", entries, "NSS_WRAPPER_* must stay")
        self.assertNotIn(CANARY.encode(), data, "the text of a removed variable is still there")
        return len(entries)

    def refresh_through_idp(self, user, scope):
        """A token for another scope of an existing consent: a refresh grant."""
        st = self.stack
        before = st.counters().get("refresh_token", 0)
        rc, doc, err = st.token(user, scope)
        self.assertEqual(rc, 0, "refresh (%s) failed: %s" % (scope, err))
        self.assertGreater(st.counters().get("refresh_token", 0), before,
                           "the token did not come from a refresh grant")
        return doc

    def test_01_keylog_and_proxies_ignored(self):
        st = self.stack
        keydir = os.path.join(st.root, "keylog")
        os.makedirs(keydir, exist_ok=True)
        cu = pwd.getpwnam(H.CREDD_USER)
        os.chown(keydir, cu.pw_uid, cu.pw_gid)  # credd could write it, if it wanted
        os.chmod(keydir, 0o700)
        keylog = os.path.join(keydir, "sslkeys.log")
        proxy = "http://127.0.0.1:%d" % dead_port()
        pid = self.restart_with({
            "SSLKEYLOGFILE": keylog,
            "http_proxy": proxy, "https_proxy": proxy, "HTTPS_PROXY": proxy,
            "HTTP_PROXY": proxy, "ALL_PROXY": proxy, "all_proxy": proxy,
            "CURL_HOME": keydir, "HOME": keydir,
        })
        doc = st.consent(ALICE)
        self.assertTrue(doc["access_token"])
        self.refresh_through_idp(ALICE, "vault")
        self.assertFalse(os.path.exists(keylog), "credd wrote TLS secrets to SSLKEYLOGFILE")
        self.assertEqual(os.listdir(keydir), [])
        n = self.check_environ(pid)
        F.figure("env_keylog_proxies", {"environ_entries_left": n, "keylog_written": False})

    def test_02_openssl_and_ca_environment_ignored(self):
        st = self.stack
        hostile = os.path.join(st.root, "hostile-openssl.cnf")
        with open(hostile, "w") as f:
            # Honoured, this leaves no cipher suite the emulator (or Entra)
            # accepts: every handshake fails (curl(1) exits 35 with it).
            f.write("openssl_conf = hostile_init\n"
                    "[hostile_init]\nssl_conf = hostile_ssl\n"
                    "[hostile_ssl]\nsystem_default = hostile_sys\n"
                    "[hostile_sys]\nCiphersuites = TLS_AES_128_CCM_8_SHA256\n"
                    "CipherString = eNULL:@SECLEVEL=0\nMaxProtocol = TLSv1.2\n")
        os.chmod(hostile, 0o644)
        wrong_ca = os.path.join(st.root, "wrong-ca.pem")
        src = "/etc/ssl/certs/ca-certificates.crt"
        if os.path.exists(src):
            shutil.copy(src, wrong_ca)  # public CAs: not the emulator's
        else:
            open(wrong_ca, "w").close()
        os.chmod(wrong_ca, 0o644)
        empty = os.path.join(st.root, "empty-certs")
        os.makedirs(empty, exist_ok=True)
        pid = self.restart_with({
            "OPENSSL_CONF": hostile, "OPENSSL_ENGINES": "/nonexistent",
            "OPENSSL_MODULES": "/nonexistent", "CURL_CA_BUNDLE": wrong_ca,
            "SSL_CERT_FILE": wrong_ca, "SSL_CERT_DIR": empty,
        })
        doc = st.consent(BOB)
        self.assertTrue(doc["access_token"])
        self.refresh_through_idp(BOB, "graph")
        n = self.check_environ(pid)
        F.figure("env_openssl_ca", {"environ_entries_left": n})

    def test_zz_leak_sweep(self):
        leaks, cores = F.leak_sweep([self.stack])
        self.assertEqual(cores, [], "core files found")
        self.assertEqual(leaks, [], "\n".join(leaks[:20]))


if __name__ == "__main__":
    sys.exit(F.main(__name__, __doc__))
