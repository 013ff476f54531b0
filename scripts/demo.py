#!/usr/bin/python3
"""The end-to-end demo: the Entra emulator, credd, one consent and a token.

Run by scripts/demo (as root). It creates a demo user, starts the emulator
and credd in a temp directory, then walks through what a user sees:
  1. a session opens (pamtester + pam_entra) and shows the consent URL and
     code; a `credctl token` in a job shows the same;
  2. the user signs in in a browser (here: the emulator's control API
     approves the code as entra_alice@contoso.com);
  3. `credctl token` prints the access token, and its decoded claims.
Everything is torn down at the end.
"""
import base64
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402

USER = "entra_alice"


def say(msg):
    print("\n\033[1m== %s\033[0m" % msg if sys.stdout.isatty() else "\n== %s" % msg)
    sys.stdout.flush()


def claims(tok):
    payload = tok.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def pam_session(stack, build):
    """Open and close a session through pamtester and pam_entra."""
    module = os.path.abspath(os.path.join(build, "pam_entra", "pam_entra.so"))
    for need in (module, "/usr/bin/pamtester"):
        if not os.path.exists(need):
            sys.exit("demo: %s is missing (build the project, run scripts/install-deps)" % need)
    service = "entra-demo-%d" % os.getpid()
    path = os.path.join("/etc/pam.d", service)
    with open(path, "w") as f:
        f.write("session required pam_permit.so\n"
                "session optional %s socket=%s\n" % (module, stack.sock))
    try:
        r = subprocess.run(["pamtester", service, USER, "open_session", "close_session"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return r.stdout.decode("utf-8", "replace")
    finally:
        os.unlink(path)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "release")
    problems = harness.resolve_binaries(os.path.join(build, "credd", "credd"),
                                        os.path.join(build, "credctl", "credctl"))
    if problems:
        sys.exit("demo: " + "; ".join(problems))
    harness.global_setup()
    stack = harness.Stack("demo", account_match="%u@" + harness.DOMAIN)
    rc = 1
    try:
        say("Starting the Entra emulator and credd (temp dir %s)" % stack.root)
        stack.start()
        print("credd is listening on %s, Entra emulator on https://127.0.0.1:%s"
              % (stack.sock, stack.port))

        say("%s opens a session: pamtester -> pam_entra -> credd" % USER)
        out = pam_session(stack, build)
        print(out.strip())
        code = stack.code_from_text(out)

        say("a job of %s asks for a token before the consent: credctl token" % USER)
        r, _, err = stack.credctl(USER, "token")
        print(err.strip())
        print("(exit code %d: the user must act; it is the same code)" % r)

        say("%s signs in in a browser and enters %s (simulated through the emulator)"
            % (USER, code))
        stack.approve(code, USER)
        doc = stack.wait_token(USER)

        say("credctl token, as %s" % USER)
        r, out, _ = stack.credctl(USER, "token")
        tok = out.strip()
        print(tok)
        say("its decoded claims")
        print(json.dumps(claims(tok), indent=2, sort_keys=True))
        say("credctl token vault --json (a second resource, same consent)")
        r, out, _ = stack.credctl(USER, "token", "vault", "--json")
        v = json.loads(out)
        print("scope %s, expires_on %s, account %s, aud %s"
              % (v["scope"], v["expires_on"], v["account"], claims(v["access_token"])["aud"]))
        say("credctl status, as %s" % USER)
        print(stack.credctl(USER, "status")[1].strip())
        rc = 0 if doc and tok else 1
    finally:
        stack.stop()
        harness.global_teardown()
    say("demo %s" % ("passed" if rc == 0 else "FAILED"))
    return rc


if __name__ == "__main__":
    sys.exit(main())
