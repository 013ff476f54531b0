#!/usr/bin/python3
"""Integration tests for the cloud presets (issue 17 part 2): credd with
[entra] cloud = usgov, an explicit authority pointing at the Entra
emulator, and [scopes] aliases written as well-known resources (@vault,
@graph, @databricks, @storage), real Unix users.

Run as root (CTest passes CREDD_BIN, CREDCTL_BIN and EMULATOR):
    /usr/bin/python3 tests/integration/test_cloud.py [--keep] [unittest args]
Not root: prints a skip message and exits 77.

What it proves: credd --check-config prints the resolved authority (the
explicit one wins over the cloud's) and each alias's Azure Government
scope; a user's consent asks the emulator for the usgov storage scope;
`credctl token vault` (vault = @vault) makes credd ask the emulator for
https://vault.usgovcloudapi.net, seen through the emulator's control API
(its counters by resource, and the token's aud), never for the public
cloud's vault; the SDK endpoint serves an SDK asking for the usgov
vault and refuses the public one; a client may name the resolved scope
string, not the public one; on SIGHUP a new cloud re-resolves the @NAME aliases at once
(and credd warns that the cloud's new Graph waits for a restart); a public-cloud
scope in a usgov config is a --check-config warning naming its line
(exit 0); cloud with provider = oidc and an
unknown @NAME are errors with file:line.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from urllib.parse import quote

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness as H  # noqa: E402 (found next to this file)
from harness import EXIT_OK, EXIT_REFUSED  # noqa: E402

ALICE = "entra_alice"
USGOV = {
    "storage": "https://storage.azure.com/.default",
    "vault": "https://vault.usgovcloudapi.net/.default",
    "graph": "https://graph.microsoft.us/.default",
    "databricks": H.DATABRICKS + "/.default",
}
FIGURES = {}


def setUpModule():
    H.global_setup()


def tearDownModule():
    H.global_teardown(keep=any(s.failed for s in H.ALL_STACKS))


def http_get(port, path, headers):
    """(child, as the user) One GET to the SDK endpoint: status and body."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    body = r.read().decode("utf-8", "replace")
    c.close()
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {}
    return {"status": r.status, "doc": doc}


def usgov_conf(text):
    """The harness's config made an Azure Government one: cloud = usgov
    (the emulator's authority stays, written out), every alias @NAME."""
    text, n = re.subn(r"(?m)^\[entra\]\n", "[entra]\ncloud = usgov\n", text, count=1)
    assert n == 1, "no [entra] in the harness config"
    for alias, scope in H.SCOPES.items():
        text, n = re.subn(r"(?m)^%s = %s$" % (alias, re.escape(scope)),
                          "%s = @%s" % (alias, alias), text)
        assert n == 1, "alias %s not in the harness config" % alias
    return text


class CloudUsgov(H.StackTestCase):
    LIFETIME = None
    ACCOUNT_MATCH = "%u@" + H.DOMAIN

    @classmethod
    def setUpClass(cls):
        cls.stack = st = H.Stack(cls.__name__, account_match=cls.ACCOUNT_MATCH)
        cls.addClassCleanup(cls.stack.stop)
        cls.msi_port = H.free_port()
        write_conf = st.write_conf

        def conf(more=""):
            write_conf("\n[msi]\nlisten = 127.0.0.1:%d\n" % cls.msi_port + more)
            with open(st.conf) as f:
                text = usgov_conf(f.read())
            with open(st.conf, "w") as f:
                f.write(text)
        st.write_conf = conf
        st.start()

    def check_config(self, text=None):
        """credd --check-config on the running config, or on text."""
        path = self.stack.conf
        if text is not None:
            path = os.path.join(self.stack.etc_dir, "variant.conf")
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)
        r = subprocess.run([H.BIN["credd"], "--check-config", "-c", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        return r.returncode, r.stdout, r.stderr, path

    def conf_text(self):
        with open(self.stack.conf) as f:
            return f.read()

    def test_01_check_config_prints_resolved(self):
        rc, out, err, _ = self.check_config()
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0], self.stack.conf + ": ok")
        self.assertIn("[entra] provider = entra, cloud = usgov", lines)
        # The explicit authority (the emulator) wins over the cloud's.
        auth = [ln for ln in lines if ln.startswith("[entra] authority = ")]
        self.assertEqual(len(auth), 1, out)
        self.assertRegex(auth[0], r"^\[entra\] authority = https://127\.0\.0\.1:%d \(line \d+\)$"
                         % self.stack.port)
        for alias, scope in USGOV.items():
            self.assertIn("[scopes] %s = %s (@%s, cloud usgov)" % (alias, scope, alias), lines)
        self.assertIn("[scopes] default = storage", lines)
        self.assertIn("[offboarding] graph_url = https://graph.microsoft.us (cloud usgov)", lines)
        # Only the aliases the file lists: nothing added by the preset.
        self.assertEqual(len([ln for ln in lines if ln.startswith("[scopes] ")]),
                         len(H.SCOPES) + 1, out)
        self.assertNotIn("warning", err)

    def test_02_token_for_preset_alias(self):
        st = self.stack
        st.reset_counters()
        # The consent asks for the default alias's usgov scope.
        code = st.start_consent(ALICE)
        flows = [f for f in st.flows() if f.get("user_code") == code]
        self.assertEqual(len(flows), 1, st.flows())
        self.assertIn(USGOV["storage"], flows[0]["scope"].split())
        st.approve(code, ALICE)
        st.wait_token(ALICE)

        t0 = time.monotonic()
        rc, doc, err = st.token(ALICE, "vault")
        FIGURES["preset_alias_token_s"] = round(time.monotonic() - t0, 3)
        self.assertEqual(rc, EXIT_OK, err)
        # What the emulator received: the usgov vault, never the public one.
        by_res = st.counters().get("by_resource", {})
        self.assertGreaterEqual(by_res.get("https://vault.usgovcloudapi.net", 0), 1, by_res)
        self.assertNotIn("https://vault.azure.net", by_res)
        self.assertEqual(H.jwt_claims(doc["access_token"]).get("aud"),
                         "https://vault.usgovcloudapi.net")
        self.assertEqual(doc.get("scope"), USGOV["vault"])

        for alias, aud in (("graph", "https://graph.microsoft.us"),
                           ("databricks", H.DATABRICKS)):
            rc, doc, err = st.token(ALICE, alias)
            self.assertEqual(rc, EXIT_OK, "%s: %s" % (alias, err))
            self.assertEqual(H.jwt_claims(doc["access_token"]).get("aud"), aud)
        by_res = st.counters().get("by_resource", {})
        self.assertNotIn("https://graph.microsoft.com", by_res)

        # A client may name the resolved scope string, not the public one.
        rc, doc, err = st.token(ALICE, USGOV["vault"])
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(H.jwt_claims(doc["access_token"]).get("aud"),
                         "https://vault.usgovcloudapi.net")
        rc, _, err = st.token(ALICE, "https://vault.azure.net/.default")
        self.assertEqual(rc, EXIT_REFUSED, err)

    def test_03_sdk_endpoint_serves_the_cloud(self):
        st = self.stack
        rc, _, _ = st.token(ALICE)
        if rc != EXIT_OK:
            st.consent(ALICE)
        rc, out, err = st.credctl(ALICE, "env")
        self.assertEqual(rc, EXIT_OK, err)
        secret = re.search(r"(?m)^export IDENTITY_HEADER='?([0-9a-f]{64})'?$", out).group(1)
        path = "/msi/token?api-version=2019-08-01&resource=%s"
        h = {"X-IDENTITY-HEADER": secret}
        for res in ("https://vault.usgovcloudapi.net", "https://vault.usgovcloudapi.net/"):
            r = H.run_as(ALICE, http_get, self.msi_port, path % quote(res, safe=""), h)
            self.assertEqual(r["status"], 200, "%s: %s" % (res, r["doc"].get("error")))
            self.assertEqual(H.jwt_claims(r["doc"]["access_token"]).get("aud"), res)
        r = H.run_as(ALICE, http_get, self.msi_port,
                     path % quote("https://vault.azure.net", safe=""), h)
        self.assertEqual(r["status"], 400, r["doc"])
        self.assertEqual(r["doc"].get("error"), "invalid_resource", r["doc"])

    def test_04_public_scope_is_a_warning(self):
        text = self.conf_text().replace(
            "default = storage", "kv = https://vault.azure.net/.default\ndefault = storage", 1)
        line = text.splitlines().index("kv = https://vault.azure.net/.default") + 1
        rc, out, err, path = self.check_config(text)
        self.assertEqual(rc, 0, err)
        self.assertIn("%s:%d: warning: [scopes] kv names Key Vault of the Azure public cloud "
                      "(vault.azure.net), but [entra] cloud = usgov; write '@vault' to follow "
                      "the cloud" % (path, line), err)
        self.assertIn("[scopes] kv = https://vault.azure.net/.default", out.splitlines())

    def test_05_errors_name_the_line(self):
        base = self.conf_text()
        text = base.replace("[entra]\n", "[entra]\nprovider = oidc\n", 1)
        rc, out, err, path = self.check_config(text)
        self.assertEqual(rc, 1, out)
        self.assertRegex(err, r"%s:3: \[entra\] cloud is for Entra ID; provider = oidc takes "
                         r"no cloud" % re.escape(path))
        text = base.replace("default = storage", "kv = @keyvault\ndefault = storage", 1)
        line = text.splitlines().index("kv = @keyvault") + 1
        rc, out, err, path = self.check_config(text)
        self.assertEqual(rc, 1, out)
        self.assertIn("%s:%d: kv: '@keyvault' is not a well-known resource" % (path, line), err)

    def sighup(self, text):
        """Write text as the config, SIGHUP credd, wait (bounded) for the
        reload; returns what credd logged meanwhile."""
        st = self.stack
        with open(st.credd_log, "rb") as f:
            f.seek(0, os.SEEK_END)
            mark = f.tell()
        with open(st.conf, "w") as f:
            f.write(text)
        st.credd.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        log = b""
        while b"configuration reloaded" not in log and time.monotonic() < deadline:
            time.sleep(0.2)
            with open(st.credd_log, "rb") as f:
                f.seek(mark)
                log = f.read()
        self.assertIn(b"configuration reloaded", log)
        return log

    def test_06_sighup_resolves_again(self):
        st = self.stack
        conf0 = self.conf_text()
        rc, _, _ = st.token(ALICE)
        if rc != EXIT_OK:
            st.consent(ALICE)
        try:
            log = self.sighup(conf0.replace("cloud = usgov", "cloud = china", 1))
            # The explicit authority stays; the cloud's Graph does not.
            self.assertNotIn(b"[entra] authority changed", log)
            self.assertIn(b"[offboarding] graph_url changed (cloud = china): it takes effect "
                          b"at the next restart", log)
            rc, doc, err = st.token(ALICE, "vault")
            self.assertEqual(rc, EXIT_OK, err)
            self.assertEqual(H.jwt_claims(doc["access_token"]).get("aud"),
                             "https://vault.azure.cn")
        finally:
            self.sighup(conf0)
        rc, doc, err = st.token(ALICE, "vault")
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(H.jwt_claims(doc["access_token"]).get("aud"),
                         "https://vault.usgovcloudapi.net")

def main():
    return H.run_suite(__name__, __doc__,
                       "integration tests need root (they create Unix users and start credd "
                       "as root, which drops to the credd user). Run as root.",
                       figures=FIGURES)


if __name__ == "__main__":
    sys.exit(main())
