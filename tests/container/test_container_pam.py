#!/usr/bin/python3
"""Where pam_entra sits in the session stack (issue 14): after pam_systemd.

This machine has no logind, so a pam_exec stand-in plays pam_systemd's
part: it creates a per-session cgroup below this run's [sessions]
cgroup_prefix and moves the PAM host (pamtester, its parent) into it.
Real pamtester, real /etc/pam.d service files, the plain pam_entra.so.

  - stand-in first, then pam_entra (the documented order): the session is
    bound to the new cgroup (audit session_open names the service, and
    the session ends with reason cgroup_empty once pamtester exits);
  - pam_entra first, then the stand-in (the wrong order): the session is
    recorded by uid, and the audit record says why (the opener's cgroup
    is not below the prefix, or is the root cgroup).
"""
import os
import sys
import tempfile
import time
import unittest
import uuid

import harness as H

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pam"))
import test_pam_real as P  # noqa: E402 (add_service, restore_all, pamtester)
import test_container as C  # noqa: E402 (cgroup mount and prefix)

USER = "entra_carol"


def setUpModule():
    H.global_setup()


def tearDownModule():
    P.restore_all()
    H.global_teardown()


class PamOrder(H.StackTestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(C.MNT + C.PREFIX, exist_ok=True)
        cls.tmp = tempfile.mkdtemp(prefix="credd-ctpam-", dir="/tmp")
        os.chmod(cls.tmp, 0o755)
        cls.standin = os.path.join(cls.tmp, "pam_systemd_standin.sh")
        with open(cls.standin, "w") as f:
            f.write("#!/bin/sh\n"
                    "# pam_systemd's part: a cgroup of the session's own, the\n"
                    "# PAM host (our parent) moved into it.\n"
                    "[ \"$PAM_TYPE\" = open_session ] || exit 0\n"
                    "d='%s%s/session-'$PPID\n"
                    "mkdir -p \"$d\" && echo $PPID > \"$d/cgroup.procs\"\n"
                    % (C.MNT, C.PREFIX))
        os.chmod(cls.standin, 0o755)
        cls.stack = C.CtStack(cls.__name__, lifetime=cls.LIFETIME)
        cls.addClassCleanup(cls.cleanup)
        cls.stack.start()
        tag = "entra-ct-" + uuid.uuid4().hex[:8]
        entra = P.module_line(cls.stack, extra="workload=job")
        exec_line = "session required pam_exec.so %s" % cls.standin
        cls.good = P.add_service(tag + "-good", "session required pam_permit.so\n%s\n%s\n"
                                 % (exec_line, entra))
        cls.bad = P.add_service(tag + "-bad", "session required pam_permit.so\n%s\n%s\n"
                                % (entra, exec_line))

    @classmethod
    def cleanup(cls):
        cls.stack.stop()
        P.restore_all()
        base = C.MNT + C.PREFIX
        for d in os.listdir(base) if os.path.isdir(base) else ():
            C.cg_remove(d)
        try:
            os.rmdir(base)
        except OSError:
            pass

    def opens(self, service):
        return [r for r in self.stack.audit_records()
                if r.get("event") == "session_open" and r.get("workload") == "job"
                and r.get("user") == USER and r.get("session")]

    def wait_end(self, session, deadline=10.0):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            for r in self.stack.audit_records():
                if r.get("event") == "session_end" and r.get("reason") == "cgroup_empty":
                    return r
            time.sleep(0.2)
        return None

    def test_1_after_pam_systemd_binds(self):
        n = len(self.opens(self.good))
        rc, out, _ = P.pamtester(self.good, USER, "open_session")
        self.assertEqual(rc, 0, out)
        recs = self.opens(self.good)
        self.assertEqual(len(recs), n + 1, recs)
        rec = recs[-1]
        self.assertNotIn("unbound_reason", rec, rec)  # bound
        self.assertIsNotNone(self.wait_end(rec["session"]),
                             "the bound session did not end with its cgroup")

    def test_2_before_pam_systemd_is_recorded_by_uid(self):
        n = len(self.opens(self.bad))
        rc, out, _ = P.pamtester(self.bad, USER, "open_session")
        self.assertEqual(rc, 0, out)
        recs = self.opens(self.bad)
        self.assertEqual(len(recs), n + 1, recs)
        why = recs[-1].get("unbound_reason", "")
        self.assertTrue("cgroup_prefix" in why or "root cgroup" in why, why)
        print("\n    pam_entra before the stand-in: %s" % why)


def main():
    def options(ap):
        ap.add_argument("--module", default=os.environ.get("PAM_ENTRA_MODULE"))

    def check(args):
        problems = []
        if not args.module or not os.path.isfile(args.module):
            problems.append("pam_entra.so not found (--module or PAM_ENTRA_MODULE)")
        if not os.access(P.PAMTESTER, os.X_OK):
            problems.append("pamtester missing")
        if not problems:
            P.MODULE = os.path.abspath(args.module)
        return problems

    if os.geteuid() == 0 and (C.MNT is None or not os.access(C.MNT, os.W_OK)):
        print("SKIP: no writable cgroup v2 mount here")
        return 77
    return H.run_suite(__name__, __doc__, "needs root (/etc/pam.d, cgroups)",
                       options=options, check=check, finish=P.restore_all)


if __name__ == "__main__":
    sys.exit(main())
