#!/usr/bin/python3
"""The environment credd starts in (issue 11, items 10 and 11).

EnvTests: credd started with an environment that changes TLS or proxies
when honoured -- SSLKEYLOGFILE (libcurl writes the TLS secrets there),
http(s)_proxy / HTTPS_PROXY / ALL_PROXY at a dead proxy, CURL_CA_BUNDLE /
SSL_CERT_FILE / SSL_CERT_DIR at a CA that is not the IdP's, OPENSSL_CONF
at a config that leaves no cipher the IdP speaks -- still signs a user in
and refreshes through the IdP, no key log appears, and /proc/PID/environ
holds only the documented NSS_WRAPPER_* variables (a canary it was given
is gone).

CredentialsTests: key_file = %d/credd.keys with $CREDENTIALS_DIRECTORY laid
out as systemd does it: on ramfs (directory 0500 and file 0400 owned by
the service user; credd started as that user, as under User=), on tmpfs
(root's, with an ACL entry for the service user; the mode reads 0440),
and for a unit without User= (root's; credd started as root, then drops).
Refused, each with its own message: %d without the variable, a loose
directory, a directory of another user, a group-readable key file, an ACL
that also names another user, a symlink.
"""

import os
import pwd
import shutil
import struct
import subprocess
import sys
import uuid

import faultlib as F
from faultlib import H

ALICE, BOB, CAROL = "entra_alice", "entra_bob", "entra_carol"
CANARY = "CANARY-env-" + uuid.uuid4().hex
# credd must keep these and only these (procenv.h).
KEPT_PREFIX = b"NSS_WRAPPER_"
KEPT_SYSTEMD = (b"NOTIFY_SOCKET=", b"WATCHDOG_USEC=", b"WATCHDOG_PID=")


setUpModule = F.setup_module          # users, /dev/log capture
tearDownModule = F.teardown_module


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

    def credd_popen_kw(self):
        kw = {}
        if self.env is not None:
            kw["env"] = self.env
        if self.as_user is not None:
            pw = pwd.getpwnam(self.as_user)
            kw.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        return kw

    def run_credd(self, what):
        """Start credd expecting it to refuse; returns (rc, output)."""
        self.stop_credd()
        p = subprocess.run([H.BIN["credd"], "-c", self.conf, "-f", "-d"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=60, **self.credd_popen_kw())
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


class EnvTests(F.FaultTestCase):
    LIFETIME = 3600
    STACK = EnvStack

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
                 if not (e.startswith(KEPT_PREFIX) or e.startswith(KEPT_SYSTEMD))
                 or b"=" not in e]
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
        proxy = "http://127.0.0.1:%d" % H.free_port()
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


# ---------------------------------------------------------------- %d

ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20)


def set_acl(path, entries):
    """Write an access ACL raw: [(tag, perm, id)] in the kernel's order."""
    blob = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)
    os.setxattr(path, "system.posix_acl_access", blob, follow_symlinks=False)


def acl_for(uids, perm):
    return ([(ACL_USER_OBJ, perm, 0)] + [(ACL_USER, perm, u) for u in sorted(uids)]
            + [(ACL_GROUP_OBJ, 0, 0), (ACL_MASK, perm, 0), (ACL_OTHER, 0, 0)])


class CredentialsTests(F.FaultTestCase):
    LIFETIME = 3600
    STACK = EnvStack

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # systemd's RuntimeDirectory= belongs to the service user.
        cu = pwd.getpwnam(H.CREDD_USER)
        os.chown(cls.stack.run_dir, cu.pw_uid, cu.pw_gid)
        cls.stack.conf_set["key_file"] = "%d/credd.keys"
        cls.stack.write_conf()
        cls.n = 0

    def make_creds(self, layout):
        """A credentials directory holding the stack's key ring as credd.keys."""
        st = self.stack
        type(self).n += 1
        d = os.path.join(st.root, "creds-%d-%s" % (self.n, layout))
        os.mkdir(d, 0o700)
        key = os.path.join(d, "credd.keys")
        shutil.copy(st.key_file, key)
        cu = pwd.getpwnam(H.CREDD_USER)
        if layout == "ramfs":     # no ACLs: systemd chowns to the service user
            os.chown(key, cu.pw_uid, cu.pw_gid)
            os.chown(d, cu.pw_uid, cu.pw_gid)
            os.chmod(key, 0o400)
            os.chmod(d, 0o500)
        elif layout == "tmpfs":   # root's, plus ACL entries for the service user
            os.chmod(key, 0o400)
            os.chmod(d, 0o500)
            try:
                set_acl(key, acl_for([cu.pw_uid], 4))
                set_acl(d, acl_for([cu.pw_uid], 5))
            except OSError as e:
                self.skipTest("no POSIX ACLs under %s: %s" % (st.root, e))
        else:                     # a unit without User=: root's, credd starts as root
            os.chmod(key, 0o400)
            os.chmod(d, 0o500)
        return d, key

    def start(self, creds_dir, as_user):
        st = self.stack
        st.stop_credd()
        env = base_env()
        if creds_dir is not None:
            env["CREDENTIALS_DIRECTORY"] = creds_dir
        st.env = env
        st.as_user = as_user
        st.start_credd()
        return st.credd.pid

    def serves(self, user):
        st = self.stack
        rc, doc, err = st.token(user)
        if rc == H.EXIT_ACT:
            doc = st.consent(user)
        else:
            self.assertEqual(rc, 0, err)
        self.assertTrue(doc["access_token"])
        s = F.proc_status(st.credd.pid)
        cu = pwd.getpwnam(H.CREDD_USER)
        self.assertEqual(s["Uid"].split(), [str(cu.pw_uid)] * 4)
        _, entries = environ_entries(st.credd.pid)
        self.assertFalse([e for e in entries if e.startswith(b"CREDENTIALS_DIRECTORY")],
                         "CREDENTIALS_DIRECTORY left in the environment")

    def refused(self, what, creds_dir, as_user, expect):
        st = self.stack
        env = base_env()
        if creds_dir is not None:
            env["CREDENTIALS_DIRECTORY"] = creds_dir
        st.env, st.as_user = env, as_user
        rc, out = st.run_credd(what)
        self.assertNotEqual(rc, 0, "credd started with %s:\n%s" % (what, out[-600:]))
        self.assertIn(expect, out, "%s: unclear refusal:\n%s" % (what, out[-600:]))
        return out

    def test_10_ramfs_layout_as_service_user(self):
        d, _ = self.make_creds("ramfs")
        self.start(d, H.CREDD_USER)
        self.serves(ALICE)

    def test_11_tmpfs_acl_layout_as_service_user(self):
        d, key = self.make_creds("tmpfs")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o440, "the ACL mask shows as group r")
        self.start(d, H.CREDD_USER)
        self.serves(BOB)

    def test_12_root_layout_started_as_root(self):
        d, _ = self.make_creds("root")
        self.start(d, None)
        self.serves(CAROL)

    def test_13_refusals(self):
        st = self.stack
        cu = pwd.getpwnam(H.CREDD_USER)
        bob = pwd.getpwnam(BOB)
        outs = {}
        outs["unset"] = self.refused("%d without CREDENTIALS_DIRECTORY", None, H.CREDD_USER,
                                     "CREDENTIALS_DIRECTORY, which is not set")
        d, key = self.make_creds("ramfs")
        os.chmod(d, 0o755)
        outs["loose dir"] = self.refused("credentials directory 0755", d, H.CREDD_USER,
                                         "credentials directory")
        d, key = self.make_creds("root")  # root reads any directory: the owner decides
        os.chown(d, bob.pw_uid, bob.pw_gid)
        outs["dir of bob"] = self.refused("credentials directory owned by bob", d, None,
                                          "credentials directory %s must be owned by root" % d)
        d, key = self.make_creds("ramfs")
        os.chmod(d, 0o700)
        os.chmod(key, 0o440)
        outs["group-readable key"] = self.refused("key file 0440 without an ACL", d,
                                                  H.CREDD_USER, "key file")
        d, key = self.make_creds("tmpfs")
        set_acl(key, acl_for([cu.pw_uid, bob.pw_uid], 4))
        outs["acl for bob too"] = self.refused("key file ACL naming bob", d, H.CREDD_USER,
                                               "key file")
        d, key = self.make_creds("ramfs")
        os.chmod(d, 0o700)
        os.rename(key, key + ".real")
        os.symlink(key + ".real", key)
        os.lchown(key, cu.pw_uid, cu.pw_gid)
        outs["symlink"] = self.refused("key file a symlink", d, H.CREDD_USER, "key file")
        F.figure("creds_refusals", {k: v.strip().splitlines()[-1][:160] for k, v in outs.items()})
        # and it still starts with a good one
        d, _ = self.make_creds("ramfs")
        self.start(d, H.CREDD_USER)
        self.serves(ALICE)


if __name__ == "__main__":
    sys.exit(F.main(__name__, __doc__))
