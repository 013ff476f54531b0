"""Integration harness for credd + credctl + the Entra emulator.

Python 3 standard library only; run with /usr/bin/python3 as root (real
Unix users are created). TLS verification is never switched off: control
calls trust the emulator's per-run CA (DIR/ca.pem), as credd does.

Pieces:
  - global_setup()/global_teardown(): users, RLIMIT_NOFILE, /dev/log capture
  - Stack: one emulator + one credd in a temp root; control-API helpers,
    credctl as a user, raw socket requests as a user, consent helpers
  - run_as(user, fn, *args): run fn in a forked child that has dropped to
    user (setgroups/setgid/setuid); the JSON-able result comes back on a pipe
  - StackTestCase: unittest base; one Stack per TestCase class; every class
    also gets the canary test (no issued secret in any log)
  - find_leaks(sources, secrets): the one leak check (the canary marker and
    exact secrets in named byte strings), for every suite
  - DebugResult: prints credd's and the emulator's log tails on failure
  - run_suite(): the one runner of every Python suite (options, the root
    and binary checks, unittest, the summary line CTest logs show)

Suites import this module by name: CTest puts tests/integration on their
PYTHONPATH; by hand, `PYTHONPATH=tests/integration` (docs/testing.md).
"""

import argparse
import base64
import grp
import hashlib
import json
import os
import pwd
import re
import resource
import select
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(os.path.dirname(HERE))

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
DATABRICKS = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
SCOPES = {
    "storage": "https://storage.azure.com/.default",
    "vault": "https://vault.azure.net/.default",
    "graph": "https://graph.microsoft.com/.default",
    "databricks": DATABRICKS + "/.default",
}
RESOURCES = {  # aud of the access token / resource name for the control API
    "storage": "https://storage.azure.com",
    "vault": "https://vault.azure.net",
    "graph": "https://graph.microsoft.com",
    "databricks": DATABRICKS,
}
DOMAIN = "contoso.com"
CREDD_USER = "credd"
ADMIN_GROUP = "credd-admin"
USERS = ("entra_alice", "entra_bob", "entra_carol", "entra_admin")
ADMIN_USER = "entra_admin"

# Exit codes of credctl (DESIGN §9).
EXIT_OK, EXIT_OTHER, EXIT_USAGE, EXIT_ACT, EXIT_UNAVAIL, EXIT_REFUSED, EXIT_MISCONF = range(7)

BIN = {"credd": None, "credctl": None, "emulator": None}
KEEP_TMP = os.environ.get("KEEP_TMP") == "1"
ALL_STACKS = []
SYSLOG = None


def log(msg):
    sys.stderr.write("[harness] %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------- binaries

def resolve_binaries(credd=None, credctl=None, emulator=None):
    """Fill BIN from arguments, then CREDD_BIN/CREDCTL_BIN/EMULATOR, then
    the usual build directories. Returns a list of problems (empty = ok)."""
    problems = []

    def pick(key, given, env, rel):
        cands = []
        if given:
            cands.append(given)
        elif os.environ.get(env):
            cands.append(os.environ[env])
        else:
            for b in ("build", "build-lead", "build-ci", "_build"):
                cands.append(os.path.join(PROJECT, b, rel))
        for c in cands:
            if os.path.isfile(c) and (key == "emulator" or os.access(c, os.X_OK)):
                BIN[key] = os.path.abspath(c)
                return
        problems.append("%s not found (set %s or pass --%s); looked at: %s"
                        % (key, env, key, ", ".join(cands)))

    pick("credd", credd, "CREDD_BIN", "credd/credd")
    pick("credctl", credctl, "CREDCTL_BIN", "credctl/credctl")
    if emulator or os.environ.get("EMULATOR"):
        pick("emulator", emulator, "EMULATOR", "")
    else:
        p = os.path.join(PROJECT, "tests", "entra-emulator", "emulator.py")
        if os.path.isfile(p):
            BIN["emulator"] = p
        else:
            problems.append("emulator not found at %s (set EMULATOR)" % p)
    return problems


# ---------------------------------------------------------------- users

def _run(cmd, check=True):
    # useradd/groupadd/usermod fail at once when another test holds the
    # passwd lock (CTest runs suites in parallel): try again a few times.
    for attempt in range(10):
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=60)
        if r.returncode == 0 or cmd[0] not in ("useradd", "groupadd", "usermod"):
            break
        time.sleep(0.3 + attempt * 0.2)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (rc %d): %s" % (" ".join(cmd), r.returncode, r.stdout))
    return r


def _group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def ensure_users():
    """Create (idempotently) the credd system user, the admin group and the
    test users. entra_admin is a member of credd-admin. Serialised across
    test processes with a lock file."""
    import fcntl
    with open("/tmp/.credd-test-users.lock", "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        _ensure_users_locked()


def _ensure_users_locked():
    if not _user_exists(CREDD_USER):
        _run(["useradd", "--system", "--no-create-home", "--shell",
              "/usr/sbin/nologin", CREDD_USER])
    if not _group_exists(ADMIN_GROUP):
        _run(["groupadd", ADMIN_GROUP])
    for u in USERS:
        if not _user_exists(u):
            cmd = ["useradd", "--no-create-home", "--shell", "/bin/sh"]
            if _group_exists(u):
                cmd += ["-g", u]
            _run(cmd + [u])
    if ADMIN_USER not in grp.getgrnam(ADMIN_GROUP).gr_mem:
        _run(["usermod", "-a", "-G", ADMIN_GROUP, ADMIN_USER])


def uid_of(user):
    return pwd.getpwnam(user).pw_uid


def groups_of(user):
    pw = pwd.getpwnam(user)
    return pw.pw_gid, os.getgrouplist(user, pw.pw_gid)


# ---------------------------------------------------------------- syslog

class SyslogCapture:
    """Bind a datagram socket at /dev/log (only if nothing listens there)
    and collect what is logged, for the canary and audit checks."""

    PATH = "/dev/log"

    def __init__(self, logfile):
        self.logfile = logfile
        self.active = False
        self.reason = ""
        self.lines = []
        self.lock = threading.Lock()
        self.sock = None
        self.thread = None
        self.stopping = False

    def start(self):
        if os.path.lexists(self.PATH):
            live = False
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                s.connect(self.PATH)
                s.close()
                live = True
            except OSError:
                pass
            if live:
                self.reason = "/dev/log already served by another daemon; syslog not captured"
                log(self.reason)
                return
            os.unlink(self.PATH)  # stale socket from an earlier run
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.PATH)
        os.chmod(self.PATH, 0o666)
        self.sock.settimeout(0.2)
        self.active = True
        self.thread = threading.Thread(target=self._loop, name="syslog", daemon=True)
        self.thread.start()

    def _loop(self):
        with open(self.logfile, "ab") as f:
            while not self.stopping:
                try:
                    d = self.sock.recv(1 << 17)
                except socket.timeout:
                    continue
                except OSError:
                    break
                with self.lock:
                    self.lines.append(d)
                f.write(d.rstrip(b"\n") + b"\n")
                f.flush()

    def data(self):
        with self.lock:
            return b"\n".join(self.lines)

    def stop(self):
        if not self.active:
            return
        self.stopping = True
        if self.thread:
            self.thread.join(2)
        try:
            self.sock.close()
        finally:
            try:
                os.unlink(self.PATH)
            except OSError:
                pass
        self.active = False


GLOBAL_TMP = None


def global_setup():
    """Users, fd limit (1000-connection test; inherited by credd) and the
    /dev/log capture. Call once (setUpModule)."""
    global SYSLOG, GLOBAL_TMP
    ensure_users()
    want = 65536
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    GLOBAL_TMP = tempfile.mkdtemp(prefix="credd-it-run-", dir="/tmp")
    os.chmod(GLOBAL_TMP, 0o755)
    SYSLOG = SyslogCapture(os.path.join(GLOBAL_TMP, "syslog.log"))
    SYSLOG.start()


def global_teardown(keep=False):
    if SYSLOG:
        SYSLOG.stop()
    if GLOBAL_TMP and not (keep or KEEP_TMP):
        shutil.rmtree(GLOBAL_TMP, ignore_errors=True)
    elif GLOBAL_TMP:
        log("kept %s" % GLOBAL_TMP)


# ---------------------------------------------------------------- run as user

def drop_to(user):
    """In a child: become user (groups from the group database)."""
    if user in (None, "root"):
        return
    gid, groups = groups_of(user)
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid_of(user))


def run_as(user, fn, *args, timeout=120):
    """Run fn(*args) in a forked child running as user; return its
    JSON-serialisable result. An exception in the child is re-raised here
    as RuntimeError with the child's traceback."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            drop_to(user)
            res = {"ok": True, "result": fn(*args)}
        except BaseException:  # noqa: B902 - report everything to the parent
            res = {"ok": False, "error": traceback.format_exc()}
        try:
            data = json.dumps(res).encode()
            while data:
                n = os.write(w, data)
                data = data[n:]
        except BaseException:
            code = 1
        os._exit(code)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError("child running as %s timed out after %ss" % (user, timeout))
            rd, _, _ = select.select([r], [], [], left)
            if not rd:
                continue
            d = os.read(r, 1 << 16)
            if not d:
                break
            chunks.append(d)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    raw = b"".join(chunks)
    if not raw:
        raise RuntimeError("child running as %s returned nothing" % user)
    res = json.loads(raw)
    if not res["ok"]:
        raise RuntimeError("child running as %s failed:\n%s" % (user, res["error"]))
    return res["result"]


def _parse_line(line):
    try:
        return json.loads(line)
    except ValueError:
        return {"_unparsed": line.decode("utf-8", "replace")}


def raw_conversation(path, payload, nreplies=1, timeout=15.0, expect_eof=False):
    """(runs in the child) One connection: send payload bytes, read up to
    nreplies reply lines. Returns {"replies", "eof", "send_error", "rest"}."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    s.settimeout(timeout)
    s.connect(path)
    send_error = None
    if isinstance(payload, str):
        payload = payload.encode()
    try:
        s.sendall(payload)
    except OSError as e:
        send_error = repr(e)
    replies, buf, eof = [], b"", False
    deadline = time.monotonic() + timeout
    while len(replies) < nreplies and time.monotonic() < deadline:
        try:
            d = s.recv(1 << 16)
        except ConnectionResetError:
            eof = True
            break
        except socket.timeout:
            break
        if not d:
            eof = True
            break
        buf += d
        while b"\n" in buf and len(replies) < nreplies:
            line, buf = buf.split(b"\n", 1)
            replies.append(_parse_line(line))
    if expect_eof and not eof:
        s.settimeout(5.0)
        try:
            while True:
                d = s.recv(1 << 16)
                if not d:
                    eof = True
                    break
                buf += d
        except ConnectionResetError:
            eof = True
        except socket.timeout:
            pass
    s.close()
    return {"replies": replies, "eof": eof, "send_error": send_error,
            "rest": buf.decode("utf-8", "replace")[:200]}


def free_port():
    """A loopback TCP port nothing listens on (now)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fingerprint(tok):
    return hashlib.sha256(tok.encode()).hexdigest()[:8]


def find_leaks(sources, secrets=(), canary=True):
    """Findings (empty: none) over sources, {name: bytes}: the canary
    marker in any case (refresh tokens and device codes carry "CANARY",
    JWTs "CanArY" in their base64 text, see the emulator README, so even
    part of a token is caught; canary=False skips it), and any of secrets
    (str) to the letter, named by fingerprint, at most one per source."""
    secrets = [s.encode() for s in secrets]
    leaks = []
    for name, data in sources.items():
        if canary and b"canary" in data.lower():
            leaks.append("%s contains the canary marker" % name)
        for s in secrets:
            if s in data:
                leaks.append("%s contains a secret (fp %s)" % (name, fingerprint(s.decode())))
                break
    return leaks


def flood(path, n, line, timeout=90.0):
    """(runs in the child) Open n connections, send line on each at once,
    then read every reply. Returns counts by token fingerprint and error."""
    if isinstance(line, str):
        line = line.encode()
    socks = []
    io_errors = []
    t0 = time.monotonic()
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.settimeout(timeout)
        try:
            s.connect(path)
            s.sendall(line)
        except OSError as e:
            io_errors.append(repr(e))
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    t_sent = time.monotonic() - t0
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    tokens, errors, other = {}, {}, []
    pending = len(socks)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                d = s.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError as e:
                d = b""
                io_errors.append(repr(e))
            if d:
                bufs[s] += d
                if b"\n" not in bufs[s]:
                    continue
            reply = _parse_line(bufs[s].split(b"\n", 1)[0]) if bufs[s] else {"_eof": True}
            sel.unregister(s)
            s.close()
            pending -= 1
            if reply.get("ok") is True and "access_token" in reply:
                fp = fingerprint(reply["access_token"])
                tokens[fp] = tokens.get(fp, 0) + 1
            elif isinstance(reply.get("error"), dict):
                c = reply["error"].get("code", "?")
                errors[c] = errors.get(c, 0) + 1
            else:
                if len(other) < 5:
                    other.append(str(reply)[:200])
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    return {"connected": len(socks), "tokens": tokens, "errors": errors,
            "other": other, "io_errors": io_errors[:10], "n_io_errors": len(io_errors),
            "unanswered": pending, "send_seconds": round(t_sent, 3),
            "total_seconds": round(time.monotonic() - t0, 3)}


# ---------------------------------------------------------------- helpers

def jwt_claims(tok):
    """Claims of a JWT access token (no signature check: only for aud)."""
    parts = tok.split(".")
    if len(parts) != 3:
        return {}
    p = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(p))
    except ValueError:
        return {}


def tail(path, n=60):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    return "\n".join(lines[-n:])


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


class ControlError(Exception):
    pass


_rim = os.environ.get("CREDD_RECORDS_IN_MEMORY")
RECORDS_IN_MEMORY = int(_rim) if _rim else None


class Stack:
    """One emulator and one credd in a fresh temp root."""

    def __init__(self, name, lifetime=None, interval=1, account_match=None,
                 records_in_memory=None):
        self.name = name
        self.records_in_memory = (RECORDS_IN_MEMORY if records_in_memory is None
                                  else records_in_memory)
        self.lifetime = lifetime
        self.interval = interval
        self.account_match = account_match
        self.root = tempfile.mkdtemp(prefix="credd-it-%s-" % name[:10].lower(), dir="/tmp")
        os.chmod(self.root, 0o755)
        self.run_dir = os.path.join(self.root, "run")
        self.log_dir = os.path.join(self.root, "log")
        self.state_dir = os.path.join(self.root, "state")
        self.etc_dir = os.path.join(self.root, "etc")
        self.emu_dir = os.path.join(self.root, "emu")
        self.sock = os.path.join(self.run_dir, "credd.sock")
        self.conf = os.path.join(self.etc_dir, "credd.conf")
        self.key_file = os.path.join(self.etc_dir, "credd.keys")
        self.audit_file = os.path.join(self.log_dir, "audit.jsonl")
        self.credd_log = os.path.join(self.root, "credd.stderr.log")
        self.emu_log = os.path.join(self.root, "emulator.log")
        self.emu = None
        self.credd = None
        self.port = None
        self.sslctx = None
        self.oids = {}
        self.credctl_records = []  # (user, args, rc, stderr)
        self.failed = False
        self.credd_starts = 0
        ALL_STACKS.append(self)

    # ---- setup / teardown
    def start(self):
        cu = pwd.getpwnam(CREDD_USER)
        for d, mode, owner in ((self.run_dir, 0o755, 0), (self.etc_dir, 0o755, 0),
                               (self.emu_dir, 0o755, 0), (self.log_dir, 0o755, cu.pw_uid),
                               (self.state_dir, 0o700, cu.pw_uid)):
            os.makedirs(d, exist_ok=True)
            os.chown(d, owner, cu.pw_gid if owner else 0)
            os.chmod(d, mode)
        self.start_emulator()
        if self.lifetime or self.interval:
            body = {}
            if self.lifetime:
                body["access_token"] = self.lifetime
            if self.interval:
                body["interval"] = self.interval
            self.ctl("POST", "lifetimes", body)
        self.write_conf()
        self.keygen()
        self.check_config()
        self.start_credd()

    def start_emulator(self):
        if not BIN["emulator"] or not os.path.isfile(BIN["emulator"]):
            raise RuntimeError("emulator not found: %s" % BIN["emulator"])
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        logf = open(self.emu_log, "ab")
        self.emu = subprocess.Popen(
            ["/usr/bin/python3", BIN["emulator"], "--state-dir", self.emu_dir, "--port", "0"],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True)
        logf.close()
        portf = os.path.join(self.emu_dir, "port")
        deadline = time.monotonic() + 60
        while True:
            if self.emu.poll() is not None:
                raise RuntimeError("emulator exited (rc %s) before it was ready:\n%s"
                                   % (self.emu.returncode, tail(self.emu_log)))
            try:
                with open(portf) as f:
                    txt = f.read().strip()
                if txt:
                    self.port = int(txt)
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("emulator not ready after 60 s:\n%s" % tail(self.emu_log))
            time.sleep(0.1)
        ca = os.path.join(self.emu_dir, "ca.pem")
        os.chmod(self.emu_dir, 0o755)
        os.chmod(ca, 0o644)  # credd reads it after dropping to the credd user
        self.sslctx = ssl.create_default_context(cafile=ca)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.counters()
                break
            except (OSError, ControlError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def write_conf(self, extra=""):
        lines = [
            "[entra]",
            "authority = https://127.0.0.1:%d" % self.port,
            "tenant = " + TENANT,
            "client_id = " + CLIENT_ID,
            "ca_file = " + os.path.join(self.emu_dir, "ca.pem"),
            "timeout = 5",
        ]
        if self.account_match:
            lines.append("account_match = " + self.account_match)
        lines += ["", "[scopes]"]
        lines += ["%s = %s" % kv for kv in SCOPES.items()]
        lines += ["default = storage", "",
                  "[server]",
                  "socket = " + self.sock,
                  "user = " + CREDD_USER,
                  "node = test-node",
                  "admin_group = " + ADMIN_GROUP,
                  "max_conns_per_uid = 4096",
                  "idle_timeout = 60", "",
                  "[limits]",
                  "requests_per_sec = 100000",
                  "request_burst = 100000",
                  "device_flows_per_hour = 100",
                  "device_flow_cooldown = 0", "",
                  "[audit]",
                  "file = " + self.audit_file, "",
                  "[store]",
                  "backend = file",
                  "path = " + self.state_dir,
                  "key_file = " + self.key_file, ""]
        if self.records_in_memory is not None:
            # CREDD_RECORDS_IN_MEMORY=0: every idle record leaves memory
            # (integration.core_evicted runs the whole suite that way).
            lines.insert(-1, "records_in_memory = %d" % self.records_in_memory)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + extra)
        os.chmod(self.conf, 0o644)

    def keygen(self):
        if os.path.exists(self.key_file):
            return
        r = subprocess.run([BIN["credd"], "keygen", "-k", self.key_file],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        if r.returncode != 0 or not os.path.isfile(self.key_file):
            raise RuntimeError("credd keygen -k %s failed (rc %d): %s"
                               % (self.key_file, r.returncode, r.stdout))

    def check_config(self):
        r = subprocess.run([BIN["credd"], "--check-config", "-c", self.conf],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        if r.returncode != 0:
            with open(self.conf) as f:
                conf = f.read()
            raise RuntimeError("credd --check-config rejected the test config (rc %d): %s\n%s"
                               % (r.returncode, r.stdout, conf))

    def credd_popen_kw(self):
        """More subprocess.Popen arguments for credd (a test's env or user)."""
        return {}

    def start_credd(self, timeout=20):
        if not BIN["credd"] or not os.access(BIN["credd"], os.X_OK):
            raise RuntimeError("credd binary not found/executable: %r (set CREDD_BIN)" % BIN["credd"])
        self.credd_starts += 1
        with open(self.credd_log, "ab") as logf:
            logf.write(b"===== harness: credd start #%d at %s =====\n"
                       % (self.credd_starts, time.strftime("%H:%M:%S").encode()))
            logf.flush()
            self.credd = subprocess.Popen([BIN["credd"], "-c", self.conf, "-f", "-d"],
                                          stdout=logf, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          **self.credd_popen_kw())
        self.wait_credd(time.monotonic() + timeout, timeout)

    def wait_credd(self, deadline, timeout):
        """Until the credd just started accepts on its socket; RuntimeError
        when it exits first or deadline (monotonic) passes."""
        while True:
            if self.credd.poll() is not None:
                raise RuntimeError("credd exited (rc %s) during start-up:\n%s"
                                   % (self.credd.returncode, tail(self.credd_log)))
            if os.path.exists(self.sock):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.sock)
                    return
                except OSError:
                    pass
                finally:
                    s.close()
            if time.monotonic() > deadline:
                raise RuntimeError("credd socket %s not accepting after %d s:\n%s"
                                   % (self.sock, timeout, tail(self.credd_log)))
            time.sleep(0.05)

    def stop_credd(self, timeout=15):
        """SIGTERM and wait; returns the exit status (None if killed)."""
        p = self.credd
        if p is None or p.poll() is not None:
            return p.returncode if p else None
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            log("credd did not stop within %d s of SIGTERM; killing" % timeout)
            p.kill()
            p.wait()
            return None

    def restart_credd(self):
        rc = self.stop_credd()
        self.start_credd()
        return rc

    def credd_alive(self):
        return self.credd is not None and self.credd.poll() is None

    def stop(self):
        try:
            self.stop_credd()
        finally:
            if self.emu and self.emu.poll() is None:
                self.emu.send_signal(signal.SIGTERM)
                try:
                    self.emu.wait(10)
                except subprocess.TimeoutExpired:
                    self.emu.kill()
                    self.emu.wait()
            if self.failed or KEEP_TMP:
                log("kept %s for inspection" % self.root)
            else:
                shutil.rmtree(self.root, ignore_errors=True)

    # ---- debugging
    def debug_dump(self, out=sys.stderr):
        out.write("\n----- %s: temp root %s (kept) -----\n" % (self.name, self.root))
        out.write("----- credd stderr (tail) %s -----\n%s\n" % (self.credd_log, tail(self.credd_log, 80)))
        out.write("----- emulator log (tail) %s -----\n%s\n" % (self.emu_log, tail(self.emu_log, 40)))
        out.write("----- audit (tail) -----\n%s\n" % tail(self.audit_file, 15))
        if self.credctl_records:
            out.write("----- last credctl calls -----\n")
            for user, args, rc, err in self.credctl_records[-8:]:
                out.write("  as %s: credctl %s -> rc %s; stderr: %s\n"
                          % (user, " ".join(args), rc, err.strip()[:300]))
        out.flush()

    # ---- emulator control API
    def ctl(self, method, path, body=None):
        url = "https://127.0.0.1:%d/_control/%s" % (self.port, path)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.sslctx, timeout=15) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise ControlError("%s /_control/%s -> HTTP %d: %s"
                               % (method, path, e.code, e.read()[:500].decode("utf-8", "replace")))

    def counters(self):
        c = self.ctl("GET", "counters")
        return c.get("counters", c)

    def reset_counters(self):
        self.ctl("POST", "reset_counters", {})

    def clear(self):
        self.ctl("POST", "clear", {})

    def fault(self, kind, **kw):
        body = {"kind": kind}
        body.update(kw)
        return self.ctl("POST", "fault", body)

    def lifetimes(self, **kw):
        return self.ctl("POST", "lifetimes", kw)

    def flows(self):
        f = self.ctl("GET", "flows")
        if isinstance(f, dict):
            f = f.get("flows", [])
        return f

    def issued(self):
        return self.ctl("GET", "issued").get("secrets", [])

    def issued_secrets(self):
        """The secrets the emulator issued, and credd's own it was shown
        (PKCE verifiers), that a leak check looks for."""
        r = self.ctl("GET", "issued")
        return [s for s in r.get("secrets", []) + r.get("client_secrets", [])
                if isinstance(s, str) and len(s) >= 16]

    def oid(self, user):
        return self.oids.setdefault(user, str(uuid.uuid4()))

    @staticmethod
    def upn(user):
        return "%s@%s" % (user, DOMAIN)

    def approve(self, user_code, user=None, oid=None, username=None):
        body = {"user_code": user_code,
                "oid": oid or self.oid(user),
                "preferred_username": username or self.upn(user)}
        return self.ctl("POST", "approve", body)

    # ---- credctl
    def credctl(self, user, *args, socket_opt=True, env_extra=None, timeout=45):
        """Run credctl as user; returns (rc, stdout, stderr)."""
        if not BIN["credctl"] or not os.access(BIN["credctl"], os.X_OK):
            raise RuntimeError("credctl binary not found/executable: %r (set CREDCTL_BIN)"
                               % BIN["credctl"])
        cmd = [BIN["credctl"]]
        if socket_opt:
            cmd += ["--socket", self.sock]
        cmd += list(args)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C", "HOME": "/"}
        if env_extra:
            env.update(env_extra)
        kw = {}
        if user not in (None, "root"):
            gid, groups = groups_of(user)
            kw = {"user": uid_of(user), "group": gid, "extra_groups": groups}
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           cwd="/", timeout=timeout, stdin=subprocess.DEVNULL, **kw)
        out = r.stdout.decode("utf-8", "replace")
        err = r.stderr.decode("utf-8", "replace")
        self.credctl_records.append((user, list(args), r.returncode, err))
        return r.returncode, out, err

    def token(self, user, scope=None, *extra):
        """credctl token [scope] --json extra...; returns (rc, dict|None, stderr)."""
        args = ["token"] + ([scope] if scope else []) + ["--json"] + list(extra)
        rc, out, err = self.credctl(user, *args)
        doc = None
        if rc == 0:
            try:
                doc = json.loads(out)
            except ValueError:
                raise AssertionError("credctl token --json printed no JSON: %r" % out[:200])
        return rc, doc, err

    # ---- raw socket
    def raw(self, user, payload, nreplies=1, timeout=15.0, expect_eof=False):
        return run_as(user, raw_conversation, self.sock, payload, nreplies, timeout, expect_eof,
                      timeout=timeout + 30)

    def request(self, user, obj, timeout=15.0):
        """One request on a new connection, as user; returns the reply."""
        line = json.dumps(obj) + "\n"
        res = self.raw(user, line, 1, timeout)
        if not res["replies"]:
            raise AssertionError("no reply to %s as %s (eof=%s)" % (obj.get("op"), user, res["eof"]))
        return res["replies"][0]

    # ---- consent helpers
    def code_from_text(self, text):
        """The pending user code shown in text (credctl stderr)."""
        flows = self.flows()
        codes = [f.get("user_code") for f in flows
                 if f.get("user_code") and f.get("status", "pending") == "pending"]
        for c in codes:
            if c in text:
                return c
        cands = re.findall(r"(?<![A-Za-z0-9])[A-Z0-9]{8}(?![A-Za-z0-9])", text)
        raise AssertionError("no pending user code in credctl output; candidates %s, pending %s; "
                             "text: %r" % (cands, codes, text[:500]))

    def start_consent(self, user, scope=None, settle=0.0):
        """A token request that must start (or show) a device flow.
        Returns the user code; asserts exit 3 and URL + code on stderr.
        settle: retry for that many seconds while the exit is not 3 (an
        earlier outcome such as account_mismatch may be reported first)."""
        args = ["token"] + ([scope] if scope else [])
        end = time.monotonic() + settle
        while True:
            rc, out, err = self.credctl(user, *args)
            if rc == EXIT_ACT or time.monotonic() >= end:
                break
            time.sleep(0.5)
        if rc != EXIT_ACT:
            raise AssertionError("credctl %s as %s: expected exit 3 (consent), got %d; "
                                 "stderr: %s" % (" ".join(args), user, rc, err[:500]))
        if "https://" not in err:
            raise AssertionError("no verification URL on stderr: %r" % err[:500])
        return self.code_from_text(err)

    def wait_token(self, user, scope=None, deadline=25.0, extra=()):
        """Retry credctl token --json every 0.5 s while it exits 3
        (consent pending) or 4 (backoff); return the token document."""
        end = time.monotonic() + deadline
        last = None
        while True:
            rc, doc, err = self.token(user, scope, *extra)
            if rc == 0:
                return doc
            last = (rc, err)
            if rc not in (EXIT_ACT, EXIT_UNAVAIL):
                raise AssertionError("credctl token %s as %s: exit %d: %s"
                                     % (scope or "", user, rc, err[:500]))
            if time.monotonic() > end:
                raise AssertionError("credctl token %s as %s: no token within %.0f s; last exit "
                                     "%d: %s" % (scope or "", user, deadline, last[0], last[1][:500]))
            time.sleep(0.5)

    def wait_result(self, user, scope=None, deadline=25.0):
        """Retry while the consent is pending (exit 3 with the same code);
        return (rc, doc, stderr) of the first other outcome."""
        end = time.monotonic() + deadline
        while True:
            rc, doc, err = self.token(user, scope)
            if rc != EXIT_ACT or time.monotonic() > end:
                return rc, doc, err
            time.sleep(0.5)

    def consent(self, user, scope=None, oid=None, username=None):
        """Full device flow for user: request, approve, wait for the token."""
        code = self.start_consent(user, scope)
        self.approve(code, user, oid=oid, username=username)
        return self.wait_token(user, scope)

    # ---- logs
    def audit_records(self):
        recs = []
        for line in read_bytes(self.audit_file).decode("utf-8", "replace").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                recs.append(json.loads(line))
            except ValueError:
                recs.append({"_unparsed": line})
        return recs

    def leak_sources(self):
        """Everything that must never hold a secret, by name."""
        src = {"credd stderr": read_bytes(self.credd_log),
               "audit file": read_bytes(self.audit_file),
               "credctl stderr": "\n".join(r[3] for r in self.credctl_records).encode()}
        if SYSLOG and SYSLOG.active:
            src["syslog"] = SYSLOG.data()
        for dirpath, _, files in os.walk(self.state_dir):
            for fn in files:
                p = os.path.join(dirpath, fn)
                src["store file " + os.path.relpath(p, self.state_dir)] = read_bytes(p)
        return src


# ---------------------------------------------------------------- unittest glue

class StackTestCase(unittest.TestCase):
    """One Stack per TestCase class. Subclasses set LIFETIME (access token
    lifetime in s, None = emulator default) and ACCOUNT_MATCH."""

    LIFETIME = 120
    ACCOUNT_MATCH = None
    RECORDS_IN_MEMORY = None    # None: the default (or CREDD_RECORDS_IN_MEMORY)
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(cls.__name__, lifetime=cls.LIFETIME, account_match=cls.ACCOUNT_MATCH,
                          records_in_memory=cls.RECORDS_IN_MEMORY)
        cls.addClassCleanup(cls.stack.stop)
        cls.stack.start()

    def setUp(self):
        self.assertTrue(self.stack.credd_alive(), "credd is not running (crashed earlier?)")
        self.stack.clear()

    # helpers
    def assertExit(self, got, want, what=""):
        rc = got[0] if isinstance(got, tuple) else got
        err = got[-1] if isinstance(got, tuple) else ""
        self.assertEqual(rc, want, "%s: exit %s, want %s; stderr: %s" % (what, rc, want, str(err)[:600]))

    def assertErrorCode(self, reply, code, what=""):
        self.assertIs(reply.get("ok"), False, "%s: expected error %s, got %s" % (what, code, _short(reply)))
        err = reply.get("error")
        self.assertIsInstance(err, dict, "%s: error is not an object: %s" % (what, _short(reply)))
        self.assertEqual(err.get("code"), code, "%s: %s" % (what, _short(reply)))
        self.assertIsInstance(err.get("message"), str, "%s: error without message" % what)
        return err

    def assertDeviceFields(self, err, what=""):
        for k in ("verification_uri", "user_code", "expires_on", "message"):
            self.assertIn(k, err, "%s: device-code field %s missing: %s" % (what, k, err))
        self.assertTrue(str(err["verification_uri"]).startswith("https://"), err)
        self.assertRegex(err["user_code"], r"^[A-Z0-9]{8}$")
        self.assertGreater(int(err["expires_on"]), time.time())

    def sleep_until_half_life(self, doc, margin=1.5):
        """Sleep until less than half of the token's lifetime remains, so a
        request with a large min_valid must refresh (min_valid is capped at
        half the lifetime)."""
        half = self.LIFETIME / 2.0
        t = float(doc["expires_on"]) - half + margin
        d = t - time.time()
        if d > 0:
            time.sleep(d)

    # every class: the canary
    def test_zz_canary_no_secret_in_logs(self):
        # No secret the emulator issued (and no CANARY marker) appears in
        # credd's stderr, the audit file, syslog, credctl's stderr or, in
        # clear, the sealed store.
        st = self.stack
        secrets = st.issued_secrets()
        sources = st.leak_sources()
        if secrets:
            self.assertTrue(sources["audit file"], "secrets were issued but the audit file is empty")
        leaks = find_leaks(sources, secrets)
        self.assertEqual(leaks, [], "secret material leaked:\n" + "\n".join(leaks[:20]))


def _short(v, n=400):
    s = json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= n else s[:n] + "..."


class DebugResult(unittest.TextTestResult):
    """Prints credd's and the emulator's log tails for a failing test."""

    def _dump(self, test):
        st = getattr(test, "stack", None)
        if st is None:  # setUpClass/tearDownClass error: dump the newest stack
            st = ALL_STACKS[-1] if ALL_STACKS else None
        if st is not None:
            st.failed = True
            st.debug_dump(self.stream)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._dump(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._dump(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._dump(test)


# ---------------------------------------------------------------- runner

def run_suite(module_name, doc, needs_root, options=None, check=None, banner=None,
              result_class=DebugResult, figures=None, finish=None):
    """Run the unittest classes of module_name; returns the exit status.

    Every suite's main() is this: the options --credd, --credctl,
    --emulator and --keep (plus the suite's own, added by options(ap));
    not root: "SKIP: needs_root" and 77 (CTest's SKIP_RETURN_CODE);
    binaries missing, or check(args) naming problems: ERROR lines and 1.
    Then one line of what runs (banner() adds to it), the tests with
    result_class, the FIGURES {json} line when figures (a dict) is given,
    and the summary "N passed, M failed, K skipped (T s)" that CTest logs,
    scripts/valgrind-integration and people read. finish() runs after
    the tests even when the run raised (pam.real restores /etc/pam.d).
    Anything after the options goes to unittest (a class or test name)."""
    global KEEP_TMP
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--credd")
    ap.add_argument("--credctl")
    ap.add_argument("--emulator")
    ap.add_argument("--keep", action="store_true", help="keep temp roots")
    if options:
        options(ap)
    args, rest = ap.parse_known_args()
    if os.geteuid() != 0:
        print("SKIP: " + needs_root)
        print("0 passed, 0 failed (skipped: not root)")
        return 77
    problems = resolve_binaries(args.credd, args.credctl, args.emulator)
    if check:
        problems += check(args)
    if problems:
        for p in problems:
            print("ERROR: " + p)
        print("0 passed, 1 failed (setup)")
        return 1
    if args.keep:
        KEEP_TMP = True
    line = "credd=%s credctl=%s emulator=%s" % (BIN["credd"], BIN["credctl"], BIN["emulator"])
    print(line + (" " + banner() if banner else ""))
    sys.stdout.flush()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=result_class)
    t0 = time.monotonic()
    try:
        prog = unittest.main(module=module_name, argv=[sys.argv[0]] + rest, testRunner=runner,
                             exit=False)
    finally:
        if finish:
            finish()
    r = prog.result
    failed = len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses)
    skipped = len(r.skipped)
    passed = max(r.testsRun - len(r.failures) - len(r.errors) - skipped, 0)
    if figures is not None:
        print("FIGURES " + json.dumps(figures, sort_keys=True))
    print("%d passed, %d failed, %d skipped (%.0f s)" % (passed, failed, skipped,
                                                         time.monotonic() - t0))
    return 0 if failed == 0 and r.testsRun > 0 else 1
