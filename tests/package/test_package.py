#!/usr/bin/python3
"""The Debian packages, from dpkg-buildpackage to purge (CTest package.debian).

What README.md's "Install (Debian packages)" section shows, run as shown,
on this machine, without changing it: everything from the build on runs in
a mount namespace of its own with overlays over /etc, /usr, /var and /run
(upper layers on a tmpfs that dies with the namespace), so apt, dpkg, the
maintainer scripts and pam-auth-update write only there, and other suites
running at the same time never see a rewritten /etc/pam.d/common-session,
a new credd user or an installed /usr/sbin/credd.

Steps, each followed by checks of what it left:
  1. apt-get build-dep ./ and dpkg-buildpackage -us -uc -b in a copy of
     the source tree (no build/ directory reused); lintian: no error, no
     warning (overrides need a reason in debian/*.lintian-overrides);
  2. apt-get install ./credd_*.deb ./credctl_*.deb ./libpam-entra_*.deb
     on a machine without a credd user: user, groups, state directories,
     a new key ring (0600) and the postinst message, the module in the
     system's PAM directory, nothing enabled in PAM, versions;
  3. reinstall and an upgrade (the same package repacked with a higher
     version): the key ring is never touched; then the README's cluster
     step puts another ring (the "cluster's") in its place;
  4. the config from the packaged example, credd --check-config,
     pam-auth-update --enable entra, credd started as its installed unit
     would start it (systemd does not run here: the test does what
     LoadCredential=, RuntimeDirectory= and User= do, then runs
     ExecStart), then the README's demo against the installed paths:
     pamtester on sshd (its session stack includes common-session) shows
     the sign-in code, credctl shows the same, the emulator approves it,
     credctl token prints a token, credctl admin stats names the version,
     credd doctor exits 0 with no FAIL (README step 7) and the audit
     file's logrotate snippet is installed; then credd restarted with another node's ring names the key id the
     record needs, and the right ring goes back;
  5. pam-auth-update --disable entra: common-session as it was;
  6. remove (enabled again first: prerm must take pam_entra out of
     common-*): consents, key ring, user kept; install again: same ring,
     same record;
  7. purge: state, logs and key ring gone, the admin's credd.conf and the
     credd user stay (documented), no unit symlink left;
  8. every command of the README's install section was run (parsed from
     README.md; systemctl restart credd is the unit emulation of step 4).
The parent process (outside the namespace) checks afterwards that the
host's own files are as they were.

Root only (exit 77 otherwise). KEEP_TMP=1 keeps the work directory.
"""
import hashlib
import json
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import harness  # PYTHONPATH=tests/integration (CTest sets it)

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(os.path.dirname(HERE))

USER = "entra_pkgtest"
SERVICE = "credd-pkgtest"
KEYS = "/etc/credd/credd.keys"
CONF = "/etc/credd/credd.conf"
UNIT = "/lib/systemd/system/credd.service"
T0 = time.monotonic()
RAN = []        # every command run, as the shell would show it
# README commands the test cannot run as they are, and what it does instead.
EMULATED = {"systemctl restart credd": "start_as_unit() does what the installed unit says"}


def log(msg):
    sys.stderr.write("[package %5.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    log("ok: " + what)


def run(cmd, cwd=None, env=None, timeout=900, ok=(0,), shell=False, user=None):
    """Run cmd; return (rc, combined output). A status outside ok fails."""
    kw = {}
    if user is not None:
        pw = pwd.getpwnam(user)
        kw = {"user": pw.pw_uid, "group": pw.pw_gid,
              "extra_groups": os.getgrouplist(user, pw.pw_gid)}
    RAN.append(cmd if shell else " ".join(cmd))
    # The packaged programs, never a /usr/local one from a source install.
    e = dict(os.environ, LANG="C", DEBIAN_FRONTEND="noninteractive",
             PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    if env:
        e.update(env)
    r = subprocess.run(cmd, cwd=cwd, env=e, shell=shell, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=timeout, **kw)
    out = r.stdout.decode("utf-8", "replace")
    if ok is not None and r.returncode not in ok:
        raise Failure("%s: exit %d\n%s" % (cmd if shell else " ".join(cmd), r.returncode,
                                            out[-4000:]))
    return r.returncode, out


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def exists(path):
    return os.path.lexists(path)


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def pam_dir():
    _, out = run(["pkg-config", "--variable=libdir", "pam"])
    return os.path.join(out.strip(), "security")


def dpkg_status(pkg):
    rc, out = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", pkg], ok=None)
    return out.strip() if rc == 0 else "absent"


# ------------------------------------------------------------ host guard

HOST_FILES = ("/etc/pam.d/common-session", "/etc/pam.d/common-session-noninteractive",
              "/usr/sbin/credd", "/usr/bin/credctl", "/usr/share/pam-configs/entra",
              KEYS, "/var/lib/credd")


def host_snapshot():
    snap = {}
    for p in HOST_FILES + (os.path.join(pam_dir(), "pam_entra.so"),):
        if os.path.isfile(p):
            snap[p] = sha(p)
        else:
            snap[p] = "dir" if os.path.isdir(p) else None
    for pkg in ("credd", "credctl", "libpam-entra"):
        snap["dpkg:" + pkg] = dpkg_status(pkg)
    return snap


# ------------------------------------------------------------ namespace

def enter_overlays(work):
    """Overlays over /etc /usr /var /run; upper layers on a private tmpfs."""
    ovl = os.path.join(work, "ovl")
    os.makedirs(ovl)
    run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=4g", "pkgtest-ovl", ovl])
    for top in ("/etc", "/usr", "/var", "/run"):
        name = top.strip("/")
        up, wk = os.path.join(ovl, name + ".up"), os.path.join(ovl, name + ".work")
        os.makedirs(up)
        os.makedirs(wk)
        run(["mount", "-t", "overlay", "pkgtest-" + name, "-o",
             "lowerdir=%s,upperdir=%s,workdir=%s" % (top, up, wk), top])
    log("overlays over /etc /usr /var /run (upper layers in %s)" % ovl)


def drop_line(path, pred):
    with open(path) as f:
        lines = f.readlines()
    keep = [ln for ln in lines if not pred(ln)]
    if keep != lines:
        with open(path, "w") as f:
            f.writelines(keep)


def fresh_machine():
    """Make the (overlaid) system look like one that never had credd: the
    other suites create a credd user and credd-admin group on the host."""
    names = ("credd", "credd-admin")
    for f in ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"):
        if os.path.exists(f):
            drop_line(f, lambda ln: ln.split(":", 1)[0] in names)
    for f in ("/etc/group", "/etc/gshadow"):   # membership lists
        if not os.path.exists(f):
            continue
        with open(f) as fh:
            lines = fh.readlines()
        out = []
        for ln in lines:
            parts = ln.rstrip("\n").split(":")
            if len(parts) >= 4:
                parts[3] = ",".join(m for m in parts[3].split(",") if m and m not in names)
            out.append(":".join(parts) + "\n")
        with open(f, "w") as fh:
            fh.writelines(out)
    for p in ("/etc/credd", "/var/lib/credd", "/var/log/credd", "/run/credd"):
        shutil.rmtree(p, ignore_errors=True)
    check(not user_exists("credd") and not group_exists("credd-admin"),
          "the overlaid system has no credd user and no credd-admin group")
    for f in ("/etc/pam.d/common-session", "/etc/pam.d/common-session-noninteractive"):
        check("pam_entra" not in read(f), "%s does not name pam_entra before install" % f)


# ------------------------------------------------------------ unit start

def unit_settings(path):
    """[Service] key -> list of values of the installed unit."""
    sec, cfg = None, {}
    for ln in read(path).splitlines():
        ln = ln.strip()
        if not ln or ln[0] in "#;":
            continue
        if ln.startswith("["):
            sec = ln
            continue
        k, _, v = ln.partition("=")
        cfg.setdefault((sec, k.strip()), []).append(v.strip())
    return cfg


def start_as_unit(logfile):
    """What 'systemctl start credd' does with the installed unit, short of
    the sandboxing: the condition, LoadCredential= (a copy owned by the
    service user, 0400, in /run/credentials/credd.service, which %d
    names), RuntimeDirectory=, StateDirectory=, LogsDirectory=, UMask=,
    User=/Group=, then ExecStart."""
    u = unit_settings(UNIT)
    svc = lambda k: u.get(("[Service]", k), [])  # noqa: E731
    for cond in u.get(("[Unit]", "ConditionPathExists"), []):
        check(os.path.exists(cond), "unit condition: %s exists" % cond)
    pw = pwd.getpwnam(svc("User")[0])
    gid = grp.getgrnam(svc("Group")[0]).gr_gid
    creds = "/run/credentials/credd.service"
    os.makedirs(creds, mode=0o700, exist_ok=True)
    for spec in svc("LoadCredential"):
        name, _, src = spec.partition(":")
        dst = os.path.join(creds, name)
        shutil.copyfile(src, dst)
        os.chown(dst, pw.pw_uid, gid)
        os.chmod(dst, 0o400)
    os.chown(creds, pw.pw_uid, gid)
    os.chmod(creds, 0o500)
    for key, base, default in (("RuntimeDirectory", "/run", "0755"),
                               ("StateDirectory", "/var/lib", "0755"),
                               ("LogsDirectory", "/var/log", "0755")):
        for name in svc(key):
            mode = int((svc(key + "Mode") or [default])[0], 8)
            d = os.path.join(base, name)
            os.makedirs(d, exist_ok=True)
            os.chown(d, pw.pw_uid, gid)
            os.chmod(d, mode)
    argv = svc("ExecStart")[0].replace("%d", creds).split()
    umask = int((svc("UMask") or ["0022"])[0], 8)

    def become():
        os.setsid()
        os.setgroups([])
        os.setgid(gid)
        os.setuid(pw.pw_uid)
        os.umask(umask)

    log("starting, as the unit would: %s (as %s)" % (" ".join(argv), pw.pw_name))
    with open(logfile, "ab") as lf:
        proc = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=become,
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                     "CREDENTIALS_DIRECTORY": creds})
    sock = "/run/credd/credd.sock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure("credd exited (rc %s):\n%s" % (proc.returncode, read(logfile)[-3000:]))
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock)
            s.close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise Failure("credd not listening on %s after 30 s:\n%s" % (sock, read(logfile)[-3000:]))


def stop(proc, what):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        log("%s did not stop on SIGTERM; killing" % what)
        proc.kill()
        proc.wait()


# ------------------------------------------------------------ the steps

def build(work):
    src = os.path.join(work, "src")
    os.makedirs(src)
    # The tree as it is (uncommitted changes included), without build
    # directories or VCS data: nothing is reused from an earlier build.
    run("tar -C %s --exclude='./build*' --exclude=./.git --exclude='*/__pycache__' "
        "-cf - . | tar -C %s -xf -" % (PROJECT, src), shell=True)
    # README: the build dependencies, from debian/control.
    run(["apt-get", "build-dep", "-y", "./"], cwd=src)
    t = time.monotonic()
    env = {"DEB_BUILD_OPTIONS": "nocheck parallel=%d" % min(os.cpu_count() or 2, 2)}
    _, out = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env)
    with open(os.path.join(work, "build.log"), "w") as f:
        f.write(out)
    log("dpkg-buildpackage: %.0f s" % (time.monotonic() - t))
    debs = {}
    for pkg in ("credd", "credctl", "libpam-entra"):
        found = [f for f in os.listdir(work)
                 if f.startswith(pkg + "_") and f.endswith(".deb")]
        check(len(found) == 1, "one %s_*.deb built (%s)" % (pkg, found))
        debs[pkg] = os.path.join(work, found[0])
    cmake_install_layout(src, work)
    changes = [f for f in os.listdir(work) if f.endswith(".changes")]
    rc, out = run(["lintian", "--display-level", ">=pedantic", "--display-experimental",
                   "--show-overrides", os.path.join(work, changes[0])], ok=None)
    tags = [ln for ln in out.splitlines() if re.match(r"^[EWIPXO]: ", ln)]
    bad = [ln for ln in tags if ln[0] in "EW"]
    log("lintian: %d errors/warnings, %d info/pedantic/experimental, %d overridden"
        % (len(bad), sum(ln[0] in "IPX" for ln in tags), sum(ln[0] == "O" for ln in tags)))
    for ln in tags:
        log("  " + ln)
    check(rc == 0 and not bad, "lintian: no error and no warning")
    return src, debs


def cmake_install_layout(src, work):
    """README "Build from source": cmake --install with the default prefix
    (/usr/local), from the package build's own CMake tree (configured
    again, nothing rebuilt), into a DESTDIR: the PAM files go where PAM
    looks, the rest under the prefix."""
    obj = [d for d in os.listdir(src) if d.startswith("obj-")][0]
    obj = os.path.join(src, obj)
    run(["cmake", "-S", src, "-B", obj, "-DCMAKE_INSTALL_PREFIX=/usr/local",
         "-DCMAKE_INSTALL_LIBDIR=lib", "-DCMAKE_INSTALL_DOCDIR=share/doc/entra-credd"])
    dest = os.path.join(work, "destdir")
    run(["cmake", "--install", obj], env={"DESTDIR": dest})
    want = [os.path.join(pam_dir(), "pam_entra.so"), "/usr/share/pam-configs/entra",
            "/usr/local/sbin/credd", "/usr/local/bin/credctl",
            "/usr/local/lib/systemd/system/credd.service",
            "/usr/local/lib/sysusers.d/credd.conf", "/usr/local/lib/tmpfiles.d/credd.conf",
            "/usr/local/share/bash-completion/completions/credctl",
            "/usr/local/share/doc/entra-credd/examples/credd.conf",
            "/usr/local/share/man/man8/credd.8", "/usr/local/share/man/man8/pam_entra.8",
            "/usr/local/share/man/man5/credd.conf.5", "/usr/local/share/man/man1/credctl.1"]
    missing = [w for w in want if not os.path.isfile(dest + w)]
    check(not missing, "cmake --install (prefix /usr/local): every file where it belongs "
          "(missing: %s)" % missing)
    unit = read(dest + "/usr/local/lib/systemd/system/credd.service")
    check("ExecStart=/usr/local/sbin/credd " in unit, "the unit's ExecStart follows the prefix")


def readme_commands():
    """The commands of README.md's "Install (Debian packages)" section."""
    text = read(os.path.join(PROJECT, "README.md"))
    sec = text.split("## Install (Debian packages)", 1)[1].split("\n## ", 1)[0]
    cmds, inblock = [], False
    for ln in sec.splitlines():
        st = ln.strip()
        if st.startswith("```"):
            inblock = not inblock
            continue
        if inblock:
            st = re.sub(r"\s+#.*$", "", st).strip()
            if st and not st.startswith("#"):
                cmds.append(st)
    return cmds


def check_readme_ran():
    """Every command the README's install section shows was run here (as
    written; alice, the docs' user, is this test's user)."""
    ran = set(c.replace(USER, "alice") for c in RAN)
    cmds = readme_commands()
    missing = [c for c in cmds if c not in ran and c not in EMULATED]
    check(len(cmds) >= 10 and not missing,
          "the README's %d install commands were all run (%d emulated: %s); not run: %s"
          % (len(cmds), sum(c in EMULATED for c in cmds), "; ".join(EMULATED.values()), missing))


def version_of(deb):
    _, out = run(["dpkg-deb", "-f", deb, "Version"])
    v = out.strip()
    v = re.sub(r"^[0-9]+:", "", v)
    return re.sub(r"-[^-]+$", "", v)


def after_install(debs, out, pamdir):
    check("made a key ring for this node: %s" % KEYS in out and "cluster" in out,
          "postinst says it made a key ring and how to use a cluster's instead")
    for pkg in debs:
        check(dpkg_status(pkg) == "ii", "%s installed" % pkg)
    pw = pwd.getpwnam("credd")
    check(pw.pw_uid < 1000 and pw.pw_shell == "/usr/sbin/nologin" and pw.pw_dir == "/var/lib/credd",
          "credd is a system user (uid %d), nologin, home /var/lib/credd" % pw.pw_uid)
    check(group_exists("credd") and group_exists("credd-admin"), "groups credd and credd-admin")
    for d in ("/var/lib/credd", "/var/lib/credd-marks", "/var/log/credd"):
        st = os.stat(d)
        check(stat.S_ISDIR(st.st_mode) and st.st_uid == pw.pw_uid and stat.S_IMODE(st.st_mode) == 0o700,
              "%s: credd's, 0700" % d)
    st = os.lstat(KEYS)
    check(stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600,
          "%s: a regular file, root's, 0600" % KEYS)
    check(re.match(r"^key [0-9]+ \S+ active\n$", read(KEYS)) is not None, "the ring holds one active key")
    check(os.path.isfile(os.path.join(pamdir, "pam_entra.so")),
          "pam_entra.so in the system's PAM directory %s" % pamdir)
    check(os.path.isfile("/usr/share/pam-configs/entra"), "the pam-auth-update profile is installed")
    for f in ("/etc/pam.d/common-session", "/etc/pam.d/common-session-noninteractive"):
        check("pam_entra" not in read(f), "%s: nothing enabled without the admin" % f)
    check(os.path.islink("/etc/systemd/system/multi-user.target.wants/credd.service"),
          "the unit is enabled (it starts once credd.conf exists)")
    for f in ("/usr/share/man/man8/credd.8.gz", "/usr/share/man/man5/credd.conf.5.gz",
              "/usr/share/man/man1/credctl.1.gz", "/usr/share/man/man8/pam_entra.8.gz",
              "/usr/share/doc/credd/examples/credd.conf", "/usr/lib/sysusers.d/credd.conf",
              "/usr/lib/tmpfiles.d/credd.conf", "/usr/share/bash-completion/completions/credctl"):
        check(os.path.isfile(f), "installed: " + f)


def check_versions(want):
    _, out = run(["credd", "--version"])
    check(out.strip() == "credd " + want, "credd --version: %r" % out.strip())
    _, out = run(["credctl", "--version"])
    check(out.startswith("credctl %s " % want), "credctl --version: %r" % out.strip())


def repack_higher(deb, work):
    """The same credd package with a higher version: an upgrade."""
    d = os.path.join(work, "repack")
    shutil.rmtree(d, ignore_errors=True)
    run(["dpkg-deb", "-R", deb, d])
    ctl = os.path.join(d, "DEBIAN", "control")
    text = re.sub(r"(?m)^Version: (.*)$", r"Version: \1+upgrade1", read(ctl))
    with open(ctl, "w") as f:
        f.write(text)
    out = os.path.join(work, "upgrade")
    os.makedirs(out, exist_ok=True)
    run(["dpkg-deb", "--root-owner-group", "-b", d, out])
    return os.path.join(out, [f for f in os.listdir(out) if f.endswith(".deb")][0])


def write_config(stack):
    """README: copy the example and set tenant, client_id, the scopes and
    account_match (here: the emulator, its CA and the test tenant)."""
    run(["cp", "/usr/share/doc/credd/examples/credd.conf", CONF])
    text = read(CONF)
    subs = [
        (r"(?m)^#?authority = \S+", "authority = https://127.0.0.1:%d" % stack.port),
        (r"(?m)^tenant = \S+", "tenant = " + harness.TENANT),
        (r"(?m)^client_id = \S+", "client_id = " + harness.CLIENT_ID),
        (r"(?m)^#ca_file = \S+", "ca_file = " + os.path.join(stack.emu_dir, "ca.pem")),
        (r"(?m)^#account_match = \S+", "account_match = %u@" + harness.DOMAIN),
        (r"(?m)^#vault = ", "vault = "),
    ]
    for pat, rep in subs:
        text, n = re.subn(pat, rep.replace("\\", "\\\\"), text)
        check(n == 1, "config: %s set in the packaged example" % rep.split(" =")[0])
    with open(CONF, "w") as f:
        f.write(text)
    _, out = run(["credd", "--check-config"])
    # The first line; the effective workload policy table follows (issue 14).
    check(out.strip().splitlines()[0] == CONF + ": ok",
          "credd --check-config: %r" % out.strip())


def credctl(*args, user=USER):
    rc, out = run(["credctl"] + list(args), user=user, ok=None,
                  env={"HOME": "/", "PATH": "/usr/bin:/bin"})
    return rc, out


def demo(stack, version):
    """README's demo against the installed paths (scripts/demo.py's steps)."""
    run(["useradd", "--no-create-home", "--shell", "/bin/sh", USER])
    check(pwd.getpwnam(USER).pw_uid >= 1000, "%s is a regular user (module's minimum_uid)" % USER)
    service = "sshd"    # README and docs/pam.md: its session stack includes common-session
    if not os.path.exists("/etc/pam.d/sshd"):
        service = SERVICE
        with open("/etc/pam.d/" + SERVICE, "w") as f:
            f.write("# package test: a service whose session stack is Debian's common-session\n"
                    "session required pam_permit.so\n@include common-session\n")
    rc, out = run(["pamtester", "-v", service, USER, "open_session", "close_session"], ok=None)
    log("pamtester:\n" + out.strip())
    check(rc == 0 and "successfully opened a session" in out, "pamtester opened a session")
    check("https://" in out, "the session showed the sign-in URL (pam_entra from %s)" % pam_dir())
    code = stack.code_from_text(out)
    rc, out = credctl("token")
    check(rc == harness.EXIT_ACT and code in out, "credctl token before consent: exit 3 and the same code")
    stack.approve(code, USER)
    deadline = time.monotonic() + 30
    while True:
        rc, out = credctl("token", "--json")
        if rc == 0 or time.monotonic() > deadline or rc not in (harness.EXIT_ACT, harness.EXIT_UNAVAIL):
            break
        time.sleep(0.5)
    if rc != 0:
        raise Failure("credctl token after the sign-in: exit %d: %s" % (rc, out[-300:]))
    check(rc == 0, "credctl token after the sign-in prints a token")
    doc = json.loads(out)
    check(harness.jwt_claims(doc["access_token"]).get("aud") == "https://storage.azure.com",
          "the token is for storage (the default alias)")
    rc, out = credctl("token", "vault", "--json")
    check(rc == 0 and json.loads(out)["scope"] == "https://vault.azure.net/.default",
          "a second resource from the same consent")
    rc, out = credctl("admin", "stats", user="root")
    check(rc == 0 and re.search(r"(?m)^version +%s$" % re.escape(version), out) is not None,
          "credctl admin stats shows version: %s" % version)
    rc, out = credctl("admin", "stats", "--json", user="root")
    check(rc == 0 and json.loads(out).get("version") == version,
          "credctl admin stats: version %s" % version)
    check(len(os.listdir("/var/lib/credd")) >= 1, "the consent is sealed in /var/lib/credd")
    # bash completion: the installed script completes subcommands and the
    # config's aliases.
    _, out = run(["bash", "-c", "source /usr/share/bash-completion/completions/credctl; "
                  "COMP_WORDS=(credctl tok); COMP_CWORD=1; _credctl; echo \"${COMPREPLY[*]}\"; "
                  "COMP_WORDS=(credctl token ''); COMP_CWORD=2; _credctl; echo \"${COMPREPLY[*]}\""])
    lines = out.splitlines()
    check(lines[0] == "token" and "vault" in lines[1].split() and "storage" in lines[1].split(),
          "bash completion: %r" % lines)


def key_ids(path):
    return [int(m) for m in re.findall(r"(?m)^key ([0-9]+) ", read(path))]


def wrong_ring(work, credd_log, ring):
    """A node whose ring is not the one its records were sealed with (the
    package made its own and the cluster's was never copied): credd names
    the key id the record needs. Then the right ring goes back."""
    d = os.path.join(work, "wrong")
    os.makedirs(d, mode=0o700)
    run(["cp", "-p", KEYS, os.path.join(d, "right.keys")])
    run(["credd", "keygen", "-k", os.path.join(d, "other.keys")])
    run(["install", "-o", "root", "-g", "root", "-m", "0600", os.path.join(d, "other.keys"), KEYS])
    proc = start_as_unit(credd_log)
    rc, out = credctl("token")
    stop(proc, "credd")
    want = ("cannot load the stored record: sealed with key %d, which this key ring does not "
            "have (its keys: %d)" % (key_ids(os.path.join(d, "right.keys"))[0],
                                     key_ids(os.path.join(d, "other.keys"))[0]))
    check(rc != 0 and want in read(credd_log),
          "another node's ring: credctl token fails (exit %d), credd logs '%s'" % (rc, want))
    run(["install", "-o", "root", "-g", "root", "-m", "0600", os.path.join(d, "right.keys"), KEYS])
    check(sha(KEYS) == ring, "the cluster's ring is back")
    return start_as_unit(credd_log)


def main_inner(work):
    pamdir = pam_dir()
    enter_overlays(work)
    src, debs = build(work)
    version = version_of(debs["credd"])
    fresh_machine()
    session_before = {f: read(f) for f in ("/etc/pam.d/common-session",
                                           "/etc/pam.d/common-session-noninteractive")}

    # 2. install (README: from the source tree, the packages are in ..)
    _, out = run("apt-get install -y ../credd_*.deb ../credctl_*.deb ../libpam-entra_*.deb",
                 cwd=src, shell=True)
    after_install(debs, out, pamdir)
    check_versions(version)
    ring = sha(KEYS)

    # 3. reinstall, upgrade: the ring stays
    _, out = run(["apt-get", "install", "-y", "--reinstall", debs["credd"]])
    check(sha(KEYS) == ring and "made a key ring" not in out, "reinstall: key ring untouched")
    up = repack_higher(debs["credd"], work)
    _, out = run(["apt-get", "install", "-y", up])
    check(dpkg_status("credd") == "ii" and sha(KEYS) == ring and "made a key ring" not in out,
          "upgrade to %s: key ring untouched" % os.path.basename(up))

    # README step 3: a cluster's ring instead of the node's own (here: a
    # ring made elsewhere, as on the cluster's first node).
    os.makedirs(os.path.join(work, "ring"), mode=0o700)
    run(["credd", "keygen", "-k", os.path.join(work, "ring", "cluster.keys")])
    run(["install", "-o", "root", "-g", "root", "-m", "0600", "cluster.keys", KEYS],
        cwd=os.path.join(work, "ring"))
    ring = sha(KEYS)
    check(ring == sha(os.path.join(work, "ring", "cluster.keys")) and
          stat.S_IMODE(os.stat(KEYS).st_mode) == 0o600, "the cluster's ring is in place")

    # 4. configure, enable PAM, start, demo
    harness.BIN["emulator"] = os.path.join(PROJECT, "tests", "entra-emulator", "emulator.py")
    stack = harness.Stack("package", account_match="%u@" + harness.DOMAIN)
    os.makedirs(stack.emu_dir, exist_ok=True)
    syslog = harness.SyslogCapture(os.path.join(work, "syslog.log"))
    syslog.start()
    credd = None
    try:
        stack.start_emulator()
        stack.ctl("POST", "lifetimes", {"interval": 1})
        write_config(stack)
        run(["pam-auth-update", "--enable", "entra"])
        for f in session_before:
            check(re.search(r"(?m)^session\s+optional\s+pam_entra\.so", read(f)) is not None,
                  "pam-auth-update --enable entra: %s has pam_entra" % f)
        credd_log = os.path.join(work, "credd.log")
        credd = start_as_unit(credd_log)
        check(re.search(r"credd %s on /run/credd/credd.sock as uid %d" % (re.escape(version),
                        pwd.getpwnam("credd").pw_uid), read(credd_log)) is not None,
              "credd's start line names the version and runs as credd")
        demo(stack, version)
        # README step 7: credd doctor on the installed node passes.
        rc, out = run(["credd", "doctor"], ok=None)
        log("credd doctor:\n" + out.strip())
        check(rc == 0 and not re.search(r"(?m)^FAIL ", out),
              "credd doctor: exit 0, no FAIL (exit %d)" % rc)
        check(os.path.isfile("/etc/logrotate.d/credd"),
              "the audit file's logrotate snippet is installed")
        stop(credd, "credd")
        credd = wrong_ring(work, credd_log, ring)
        secrets = stack.issued_secrets()
        leaked = harness.find_leaks({"credd's log": read(credd_log).encode(),
                                     "syslog": syslog.data()}, secrets)
        check(secrets and not leaked,
              "none of the %d secrets the emulator issued is in credd's log or syslog"
              % len(secrets))
    finally:
        stop(credd, "credd")
        syslog.stop()
        stack.stop()

    # 5. disable
    run(["pam-auth-update", "--disable", "entra"])
    for f, before in session_before.items():
        check(read(f) == before, "pam-auth-update --disable entra: %s as before" % f)

    # 6. remove (with the profile enabled: prerm takes it out)
    run(["pam-auth-update", "--enable", "entra"])
    records = sorted(os.listdir("/var/lib/credd"))
    run(["apt-get", "remove", "-y", "credd", "credctl", "libpam-entra"])
    for f, before in session_before.items():
        check(read(f) == before, "remove: prerm took pam_entra out of %s" % f)
    check(not exists(os.path.join(pamdir, "pam_entra.so")) and not exists("/usr/sbin/credd")
          and not exists("/usr/bin/credctl"), "remove: the programs and the module are gone")
    check(dpkg_status("credd") == "rc", "remove: credd's config files stay (rc)")
    check(sorted(os.listdir("/var/lib/credd")) == records and sha(KEYS) == ring,
          "remove: /var/lib/credd (the sealed consents) and the key ring stay")
    check(user_exists("credd") and group_exists("credd-admin"), "remove: user and groups stay")
    _, out = run("apt-get install -y ../credd_*.deb", cwd=src, shell=True)
    check(sha(KEYS) == ring and "made a key ring" not in out
          and sorted(os.listdir("/var/lib/credd")) == records,
          "install after remove: the same key ring and records")

    # 7. purge
    _, out = run(["apt-get", "purge", "-y", "credd", "credctl", "libpam-entra"])
    for pkg in debs:
        check(dpkg_status(pkg) in ("absent", "un", "pn"), "purge: %s gone (%s)" % (pkg, dpkg_status(pkg)))
    for p in ("/var/lib/credd", "/var/lib/credd-marks", "/var/log/credd", KEYS,
              "/etc/systemd/system/multi-user.target.wants/credd.service",
              "/usr/share/pam-configs/entra", UNIT):
        check(not exists(p), "purge: %s removed" % p)
    check(exists(CONF), "purge: the admin's own %s stays (docs say so)" % CONF)
    check(user_exists("credd") and group_exists("credd-admin"),
          "purge: the credd user and groups stay (docs say so)")
    for f, before in session_before.items():
        check(read(f) == before, "purge: %s as before" % f)
    check_readme_ran()


def main():
    if os.geteuid() != 0:
        print("package test: needs root (namespaces, apt, dpkg); skipped")
        return 77
    for tool in ("unshare", "dpkg-buildpackage", "lintian", "pamtester", "pam-auth-update"):
        if shutil.which(tool) is None:
            print("package test: %s is missing (scripts/install-deps installs it)" % tool)
            return 1
    if os.environ.get("PKGTEST_INNER") != "1":
        before = host_snapshot()
        r = subprocess.run(["unshare", "--mount", "--propagation", "private",
                            sys.executable, os.path.abspath(__file__)],
                           env=dict(os.environ, PKGTEST_INNER="1"))
        after = host_snapshot()
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        if changed:
            print("package test: the host changed: %s" % changed)
            return 1
        log("the host is as it was: %s" % ", ".join(sorted(before)))
        if r.returncode == 0:
            print("package test: passed in %.0f s" % (time.monotonic() - T0))
        return r.returncode
    work = tempfile.mkdtemp(prefix="credd-pkg-", dir="/tmp")
    os.chmod(work, 0o755)
    rc = 1
    try:
        main_inner(work)
        rc = 0
    except Failure as e:
        log("FAILED: %s" % e)
    finally:
        keep = os.environ.get("KEEP_TMP") == "1" or rc != 0
        if keep:
            # The overlays die with this namespace; copy what explains a failure.
            log("kept %s (build.log, credd.log)" % work)
        try:
            subprocess.run(["umount", "-l", os.path.join(work, "ovl")], check=False)
        except OSError:
            pass
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
