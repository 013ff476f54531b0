"""Helpers shared by the fault tests (tests/fault/test_*.py).

Builds on tests/integration/harness.py (imported, never edited): the same
Stack (emulator + credd in a temp root), run_as, users and /dev/log
capture. Adds what fault tests need: config overrides, kill -9, RSS and
/proc snapshots, a direct look into the file store (store_peek, which
prints refresh-token fingerprints only), the emulator's refresh-token
chain, extra users, and a case-insensitive leak sweep over everything the
suite produced (syslog, audit, stderr, /proc cmdline and environ of every
spawned process, core files).
"""

import glob
import hashlib
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
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
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
            secrets.update(s for s in st.issued() if isinstance(s, str) and len(s) >= 16)
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
    leaks = []
    for name, data in sources.items():
        if b"canary" in data.lower():
            leaks.append("%s contains the canary marker" % name)
        for s in secrets:
            if s.encode() in data:
                leaks.append("%s contains an issued secret (fp %s)" % (name, H.fingerprint(s)))
                break
    figure("leak_sweep_sources", len(sources))
    figure("leak_sweep_secrets", len(secrets))
    figure("canary_hits", len(leaks))
    return leaks, cores


# ---------------------------------------------------------------- runner

def main(module_name, doc):
    import argparse
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--keep", action="store_true")
    args, rest = ap.parse_known_args()
    if os.geteuid() != 0:
        print("SKIP: fault tests need root (users, mounts, credd dropping privileges).")
        return 77
    problems = H.resolve_binaries()
    p = resolve_peek()
    if p:
        problems.append(p)
    if problems:
        for p in problems:
            print("ERROR: " + p)
        return 1
    if args.keep:
        H.KEEP_TMP = True
    print("credd=%s credctl=%s emulator=%s long=%s" % (H.BIN["credd"], H.BIN["credctl"],
                                                     H.BIN["emulator"], LONG))
    sys.stdout.flush()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=H.DebugResult)
    t0 = time.monotonic()
    prog = unittest.main(module=module_name, argv=[sys.argv[0]] + rest, testRunner=runner,
                         exit=False)
    r = prog.result
    failed = len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses)
    skipped = len(r.skipped)
    passed = max(r.testsRun - len(r.failures) - len(r.errors) - skipped, 0)
    print("FIGURES " + json.dumps(FIGURES, sort_keys=True))
    print("%d passed, %d failed, %d skipped (%.0f s)" % (passed, failed, skipped,
                                                         time.monotonic() - t0))
    return 0 if failed == 0 and r.testsRun > 0 else 1


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
