"""Helpers shared by the fault tests (tests/fault/test_*.py).

Builds on tests/integration/harness.py (imported by name: CTest puts
tests/integration on PYTHONPATH, by hand `PYTHONPATH=tests/integration`):
the same Stack (emulator + credd in a temp root), run_as, users, /dev/log
capture, find_leaks and run_suite. Adds what fault tests need: config
overrides, kill -9, RSS and /proc snapshots, a direct look into the file
store (store_peek, which prints refresh-token fingerprints only), the
emulator's refresh-token chain, extra users, a leak sweep over everything
the suite produced (syslog, audit, stderr, /proc cmdline and environ of
every spawned process, core files), and FaultTestCase, the base of every
fault suite's classes (one FaultStack per class, and the leak sweep).
"""

import glob
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
import harness as H  # noqa: E402

LONG = os.environ.get("FAULT_LONG") == "1"
PEEK = {"bin": None}
PROC_SNAPSHOTS = []   # (what, pid, cmdline bytes, environ bytes)
FIGURES = {}          # name -> value, printed at the end of the run
EXTRA_USERS = ("entra_flt1", "entra_flt2", "entra_flt3", "entra_flt4", "entra_flt5",
               "entra_flt6")


def figure(name, value):
    FIGURES[name] = value
    H.log("FIGURE %s = %s" % (name, value))


def ensure_extra_users():
    for u in EXTRA_USERS:
        try:
            pwd.getpwnam(u)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", u],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def resolve_peek():
    cands = [os.environ.get("STORE_PEEK_BIN")] if os.environ.get("STORE_PEEK_BIN") else []
    for b in ("build-fault", "build", "build-lead"):
        cands.append(os.path.join(H.PROJECT, b, "tests", "fault", "store_peek"))
    for c in cands:
        if c and os.access(c, os.X_OK):
            PEEK["bin"] = c
            return None
    return "store_peek not found (set STORE_PEEK_BIN); looked at %s" % ", ".join(cands)


# ---------------------------------------------------------------- /proc

def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def snapshot_proc(what, pid):
    """Keep /proc/PID/cmdline and environ for the leak sweep (read as root:
    credd is not dumpable, so its /proc files are root-owned)."""
    def rd(name):
        try:
            with open("/proc/%d/%s" % (pid, name), "rb") as f:
                return f.read()
        except OSError:
            return b""
    PROC_SNAPSHOTS.append((what, pid, rd("cmdline"), rd("environ")))


# ---------------------------------------------------------------- stack

class FaultStack(H.Stack):
    """harness.Stack with config overrides: conf_set = {key: value} replaces
    'key = ...' lines (keys are unique across sections in credd.conf) or
    adds 'key = value' under conf_add = {section: [lines]}."""

    def __init__(self, name, conf_set=None, conf_add=None, **kw):
        super().__init__(name, **kw)
        self.conf_set = dict(conf_set or {})
        self.conf_add = dict(conf_add or {})

    def write_conf(self, extra=""):
        super().write_conf(extra)
        with open(self.conf) as f:
            lines = f.read().split("\n")
        out = []
        for line in lines:
            k = line.split("=", 1)[0].strip() if "=" in line else None
            if k in self.conf_set:
                line = "%s = %s" % (k, self.conf_set[k])
            out.append(line)
            sec = line.strip()[1:-1] if line.strip().startswith("[") else None
            if sec in self.conf_add:
                out.extend(self.conf_add[sec])
        with open(self.conf, "w") as f:
            f.write("\n".join(out))

    def start_credd(self, timeout=30):
        super().start_credd(timeout)
        snapshot_proc("credd", self.credd.pid)
        if self.emu is not None and self.emu.poll() is None and not getattr(self, "_emu_snap", 0):
            snapshot_proc("emulator", self.emu.pid)
            self._emu_snap = 1

    def kill9(self):
        """SIGKILL credd and reap it. Returns the elapsed ms."""
        p = self.credd
        if p is None or p.poll() is not None:
            return 0
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        return 0

    def peek(self, copy=False):
        """{user: {"version", "oid", "rt" (fp or None)} or {"error"}} straight
        from the store files (the store takes a lock per operation, so a
        peek while credd runs is safe too). copy: peek a copy of the
        directory (a read-only or full file system cannot take the lock)."""
        d = self.state_dir
        if copy:
            d = os.path.join(self.root, "peek-copy")
            shutil.rmtree(d, ignore_errors=True)
            os.mkdir(d, 0o700)
            cu = pwd.getpwnam(H.CREDD_USER)
            for fn in os.listdir(self.state_dir):
                if fn.endswith(".rec"):
                    shutil.copy2(os.path.join(self.state_dir, fn), os.path.join(d, fn))
                    os.chown(os.path.join(d, fn), cu.pw_uid, cu.pw_gid)
            os.chown(d, cu.pw_uid, cu.pw_gid)
        r = subprocess.run([PEEK["bin"], d, self.key_file, H.TENANT, H.CREDD_USER],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        rows = {}
        for line in r.stdout.decode().splitlines():
            d = json.loads(line)
            rows[d["user"]] = d
        if r.returncode == 2:
            raise AssertionError("store_peek failed: %s" % r.stderr.decode()[:500])
        return rows, r.returncode

    def chain(self):
        """{oid: [{"fp","seq","used"}...]} in issue order (emulator)."""
        return self.ctl("GET", "refresh_chain")["accounts"]

    def store_files(self):
        return sorted(os.listdir(self.state_dir))

    def req(self, user, obj, timeout=30.0):
        """One request as user; the reply, or {"_io": repr} when credd is not
        answering (connection refused, EOF)."""
        try:
            return self.request(user, obj, timeout=timeout)
        except (AssertionError, RuntimeError) as e:
            return {"_io": str(e)[:300]}


def sh(*cmd):
    """Run cmd (argv, no shell); its output, or RuntimeError naming it."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stdout))
    return r.stdout


class TmpfsStack(FaultStack):
    """The state directory on a small tmpfs (SIZE): fill() it to make
    every write fail with ENOSPC (fault.disk, fault.ops)."""
    SIZE = "512k"

    def start(self):
        os.makedirs(self.state_dir, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % self.SIZE, "credd-fault",
           self.state_dir)
        self.mounted = True
        super().start()

    def stop(self):
        try:
            self.stop_credd()
        finally:
            if getattr(self, "mounted", False):
                subprocess.run(["umount", "-l", self.state_dir], timeout=60)
                self.mounted = False
            super().stop()

    def fill(self):
        """Fill the tmpfs with a root-owned file until ENOSPC."""
        path = os.path.join(self.state_dir, "filler")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (65536, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        return path


def connect(path, deadline=60.0):
    """(runs in a child too) Connect to a Unix socket, retrying while the
    listen backlog is full (EAGAIN), as lib/client.c does."""
    end = time.monotonic() + deadline
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.settimeout(30)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.01)
        except OSError:
            s.close()
            raise


# ---------------------------------------------------------------- postgres

PG_DSN = {"dsn": None}


def pg_dsn():
    """The DSN of the cluster suite's PostgreSQL fixture (CREDD_PG_DSN_FILE),
    for the fault suites' postgres mode (CRASH_BACKEND, ROLLBACK_BACKEND)."""
    if PG_DSN["dsn"] is None:
        p = os.environ.get("CREDD_PG_DSN_FILE")
        if not p:
            raise RuntimeError("the postgres mode needs CREDD_PG_DSN_FILE (the cluster_pg "
                               "fixture: sh tests/cluster/pg-fixture.sh start DIR)")
        with open(p) as f:
            PG_DSN["dsn"] = f.read().strip()
    return PG_DSN["dsn"]


def psql(sql, timeout=30):
    """Rows of sql (psql with the fixture's DSN, the credd role)."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C", "PGCONNECT_TIMEOUT": "10"}
    r = subprocess.run(["psql", pg_dsn(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
                       input=sql, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, env=env)
    if r.returncode != 0:
        raise RuntimeError("psql failed (rc %d): %s" % (r.returncode, r.stderr.strip()[:500]))
    return [ln for ln in r.stdout.splitlines() if ln.strip()]


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


class PgFaultStack(FaultStack):
    """A FaultStack on the postgres store when PG is true (a suite sets it
    from CRASH_BACKEND or ROLLBACK_BACKEND), on the file store otherwise:
    the config names the fixture's database, peek() reads the rows with
    store_peek --pg, wipe_tenant() deletes the test tenant's rows."""

    PG = False

    def write_conf(self, extra=""):
        super().write_conf(extra)
        if not self.PG:
            return
        with open(self.conf) as f:
            txt = f.read()
        txt = txt.replace("backend = file\n", "backend = postgres\ndsn = %s\n" % pg_dsn())
        with open(self.conf, "w") as f:
            f.write(txt)
        # The DSN carries the role's password: readable by credd only.
        os.chown(self.conf, 0, pwd.getpwnam(H.CREDD_USER).pw_gid)
        os.chmod(self.conf, 0o640)

    def peek(self, copy=False):
        if not self.PG:
            return super().peek(copy)
        r = subprocess.run([PEEK["bin"], "--pg", pg_dsn(), self.key_file, H.TENANT,
                            H.CREDD_USER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        if r.returncode == 2:
            raise AssertionError("store_peek --pg failed: %s" % r.stderr.decode()[:500])
        rows = {}
        for line in r.stdout.decode().splitlines():
            d = json.loads(line)
            rows[d["user"]] = d
        self.peek_lines = len(r.stdout.decode().splitlines())
        return rows, r.returncode

    def wipe_tenant(self):
        psql("DO $$ BEGIN IF to_regclass('credd_records') IS NOT NULL THEN"
             " DELETE FROM credd_records WHERE tenant = %s; END IF; END $$;\n"
             % sql_str(H.TENANT))


def recv_line(s, buf=b"", eof_ok=True):
    """(runs in a child too) Read from socket s until buf holds a newline;
    returns buf. At EOF, what came so far (no newline) when eof_ok, else
    ConnectionResetError; socket errors and timeouts propagate."""
    while b"\n" not in buf:
        d = s.recv(65536)
        if not d:
            if eof_ok:
                return buf
            raise ConnectionResetError()
        buf += d
    return buf


def http_get(port, path, headers):
    """(runs in a child too) One GET of the SDK endpoint on a fresh
    connection; its status and JSON body ({"_raw": text} if not JSON)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Host": "127.0.0.1:%d" % port}
    h.update(headers)
    c.request("GET", path, headers=h)
    r = c.getresponse()
    body = r.read().decode("utf-8", "replace")
    c.close()
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {"_raw": body[:300]}
    return {"status": r.status, "doc": doc}


def token_req(scope=None, min_valid=None):
    r = {"v": 1, "op": "token"}
    if scope:
        r["scope"] = scope
    if min_valid is not None:
        r["min_valid"] = min_valid
    return r


def error_code(reply):
    e = reply.get("error") if isinstance(reply, dict) else None
    return e.get("code") if isinstance(e, dict) else None


# ---------------------------------------------------------------- leaks

def core_files(extra_dirs=()):
    pat = "core"
    try:
        with open("/proc/sys/kernel/core_pattern") as f:
            pat = f.read().strip()
    except OSError:
        pass
    found = []
    dirs = ["/", "/tmp", os.getcwd(), H.PROJECT] + list(extra_dirs)
    if pat.startswith("/"):
        dirs.append(os.path.dirname(pat))
    # core_pattern "core" (here) names core or core.PID in the crashing
    # process's cwd; a piped pattern ("|...") goes to a handler instead.
    for d in dirs:
        for p in glob.glob(os.path.join(d, "core*")):
            if re.match(r"^core(\.\d+)?$", os.path.basename(p)) and os.path.isfile(p):
                found.append(p)
    return found, pat


def leak_sweep(stacks, extra=None):
    """Every place a secret must never be: returns a list of findings.
    Case-insensitive 'canary' (refresh tokens and device codes carry
    CANARY, JWTs carry CanArY in their base64url text) plus every exact
    secret the emulators issued."""
    secrets = set()
    sources = {}
    for st in stacks:
        try:
            secrets.update(st.issued_secrets())
        except Exception as e:  # emulator already stopped: the issued list was saved
            secrets.update(getattr(st, "saved_issued", []))
            H.log("leak sweep: %s: issued() failed (%s)" % (st.name, e))
        for name, data in st.leak_sources().items():
            if name.startswith("store file "):
                continue  # sealed: checked in clear by the harness canary test
            sources["%s: %s" % (st.name, name)] = data
        sources["%s: emulator log" % st.name] = H.read_bytes(st.emu_log)
    if H.SYSLOG and H.SYSLOG.active:
        sources["syslog"] = H.SYSLOG.data()
    for what, pid, cmdline, environ in PROC_SNAPSHOTS:
        sources["/proc/%d/cmdline (%s)" % (pid, what)] = cmdline
        sources["/proc/%d/environ (%s)" % (pid, what)] = environ
    cores, _ = core_files([st.root for st in stacks])
    for c in cores:
        sources["core file " + c] = H.read_bytes(c)
    for k, v in (extra or {}).items():
        sources[k] = v
    leaks = H.find_leaks(sources, secrets)
    figure("leak_sweep_sources", len(sources))
    figure("leak_sweep_secrets", len(secrets))
    figure("canary_hits", len(leaks))
    return leaks, cores


# ---------------------------------------------------------------- base class

class FaultTestCase(H.StackTestCase):
    """The base of a fault suite's classes: one STACK (a FaultStack class)
    per class, made by make_stack() from LIFETIME, CONF_SET, CONF_ADD and
    RECORDS_IN_MEMORY and stopped by a class cleanup; prepare_stack() runs
    between the two (wipe rows, start a squatter). Besides the harness's
    canary test, every class gets the leak sweep over its stack, with
    leak_sweep_extra() as more sources. Reached as F.FaultTestCase, never
    imported by name: unittest would run it as a class of its own."""

    STACK = FaultStack
    CONF_SET = None
    CONF_ADD = None

    @classmethod
    def make_stack(cls):
        return cls.STACK(cls.__name__, lifetime=cls.LIFETIME, conf_set=cls.CONF_SET,
                         conf_add=cls.CONF_ADD, records_in_memory=cls.RECORDS_IN_MEMORY)

    @classmethod
    def prepare_stack(cls):
        """Before the stack starts; its stop is already a class cleanup."""

    @classmethod
    def setUpClass(cls):
        cls.stack = cls.make_stack()
        cls.addClassCleanup(cls.stack.stop)
        cls.prepare_stack()
        cls.stack.start()

    def leak_sweep_extra(self):
        """More {name: bytes} for the leak sweep (a second node's logs)."""
        return None

    def test_zz_leak_sweep(self):
        leaks, cores = leak_sweep([self.stack], self.leak_sweep_extra())
        self.assertEqual(cores, [], "core files found")
        self.assertEqual(leaks, [], "\n".join(leaks[:20]))


# ---------------------------------------------------------------- runner

def main(module_name, doc):
    """A fault suite's main: harness.run_suite with store_peek, FAULT_LONG
    in the first line and the FIGURES line."""
    def check(args):
        p = resolve_peek()
        return [p] if p else []

    return H.run_suite(module_name, doc,
                       "fault tests need root (users, mounts, credd dropping privileges).",
                       check=check, banner=lambda: "long=%s" % LONG, figures=FIGURES)


def setup_module():
    # credd inherits this environment: a small ASan quarantine keeps RSS
    # figures about credd, not about the sanitizer (no effect otherwise).
    a = os.environ.get("ASAN_OPTIONS", "")
    if "quarantine_size_mb" not in a:
        os.environ["ASAN_OPTIONS"] = (a + ":" if a else "") + "quarantine_size_mb=16"
    H.global_setup()
    ensure_extra_users()


def teardown_module():
    H.global_teardown(keep=any(s.failed for s in H.ALL_STACKS))
