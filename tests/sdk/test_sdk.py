#!/usr/bin/python3
"""SDK tests (CTest label sdk): stock Azure SDKs get the user's token from
credd's loopback endpoint ([msi]) with no code change, the az shim, the
token-file sink, and the endpoint's refusals.

Run as root (CTest passes CREDD_BIN, CREDCTL_BIN and EMULATOR):
    PYTHONPATH=tests/integration /usr/bin/python3 tests/sdk/test_sdk.py \
        [--credd BIN] [--credctl BIN]
        [--emulator emulator.py] [--pam-module pam_entra.so] [--keep] [unittest args]
Not root: exits 77 (skipped).

Proven end to end here: Python azure-identity (Debian python3-azure)
ManagedIdentityCredential and DefaultAzureCredential, sync and aio; npm
@azure/identity (tests/sdk/node, pinned, installed with `npm ci`)
ManagedIdentityCredential and DefaultAzureCredential; AzureCliCredential
through the az shim. Hadoop ABFS / Spark and the Databricks SDK cannot be
installed here: their requests are replayed exactly as their sources send
them (documented, not proven).
"""

import base64
import ctypes
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
import harness as H  # noqa: E402 (PYTHONPATH=tests/integration)
from harness import EXIT_OK, RESOURCES  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

ALICE, BOB, CAROL = "entra_alice", "entra_bob", "entra_carol"
NODE_DIR = os.path.join(HERE, "node")
STORAGE = RESOURCES["storage"]
DATABRICKS = H.DATABRICKS
PAM_MODULE = None
NO_USER_UID = 54321  # a uid without a passwd entry


def setUpModule():
    H.global_setup()


def tearDownModule():
    H.global_teardown(keep=any(s.failed for s in H.ALL_STACKS))


class MsiStack(H.Stack):
    """A Stack whose credd.conf has an [msi] section."""

    def __init__(self, name, msi_extra="", **kw):
        super().__init__(name, **kw)
        self.msi_port = H.free_port()
        self.msi_extra = msi_extra

    def write_conf(self, extra=""):
        msi = "\n[msi]\nlisten = 127.0.0.1:%d\n%s" % (self.msi_port, self.msi_extra)
        super().write_conf(extra=msi + extra)

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d/msi/token" % self.msi_port


def env_base(user):
    pw = pwd.getpwnam(user) if user not in (None, "root") else None
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp",
            "USER": user or "root", "LOGNAME": user or "root",
            "TMPDIR": "/tmp", "SHELL": (pw.pw_shell if pw else "/bin/sh")}


def run_user(user, cmd, env, timeout=60, cwd="/tmp"):
    """Run cmd as user with exactly env; returns (rc, stdout, stderr)."""
    kw = {}
    if user not in (None, "root"):
        gid, groups = H.groups_of(user)
        kw = {"user": H.uid_of(user), "group": gid, "extra_groups": groups}
    elif isinstance(user, int):
        pass
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def parse_exports(text):
    env = {}
    for line in text.splitlines():
        m = re.match(r"^export ([A-Z_]+)=(.*)$", line)
        if not m:
            raise AssertionError("credctl env printed a non-export line: %r" % line)
        v = m.group(2)
        if v.startswith("'") and v.endswith("'"):
            v = v[1:-1]
        env[m.group(1)] = v
    return env


# -- raw HTTP (runs in a child as some uid) --------------------------------

def http_get(port, path, headers, host=None):
    """(child) One GET on a fresh connection; returns status, headers, body."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
    c.putheader("Host", host if host is not None else "127.0.0.1:%d" % port)
    for k, v in headers.items():
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    body = r.read().decode("utf-8", "replace")
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {"_raw": body[:300]}
    return {"status": r.status, "headers": hdrs, "doc": doc}


def http_get_as_uid(uid, port, path, headers, host=None):
    """Fork, drop to a bare uid (possibly without a passwd entry), GET."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            res = {"ok": True, "result": http_get(port, path, headers, host)}
        except BaseException as e:  # noqa: B902
            res = {"ok": False, "error": repr(e)}
        os.write(w, json.dumps(res).encode())
        os._exit(code)
    os.close(w)
    data = b""
    while True:
        d = os.read(r, 65536)
        if not d:
            break
        data += d
    os.close(r)
    os.waitpid(pid, 0)
    res = json.loads(data)
    if not res["ok"]:
        raise RuntimeError(res["error"])
    return res["result"]


PY_MI = r"""
import json, sys, asyncio
mode = sys.argv[1]; scope = sys.argv[2]
def out(tok):
    print(json.dumps({"token": tok.token, "expires_on": tok.expires_on}))
if mode == "mi":
    from azure.identity import ManagedIdentityCredential
    out(ManagedIdentityCredential().get_token(scope))
elif mode == "dac":
    from azure.identity import DefaultAzureCredential
    out(DefaultAzureCredential().get_token(scope))
elif mode == "cli":
    from azure.identity import AzureCliCredential
    out(AzureCliCredential().get_token(scope))
elif mode == "mi_claims":  # a claims challenge passed on, as a client retries a 401
    from azure.identity import ManagedIdentityCredential
    c = ManagedIdentityCredential()
    c.get_token(scope)
    out(c.get_token(scope, claims=sys.argv[3]))
elif mode in ("mi_aio", "dac_aio"):
    async def main():
        if mode == "mi_aio":
            from azure.identity.aio import ManagedIdentityCredential as C
        else:
            from azure.identity.aio import DefaultAzureCredential as C
        async with C() as c:
            out(await c.get_token(scope))
    asyncio.run(main())
"""



class SdkBase(H.StackTestCase):
    LIFETIME = 300
    MSI_EXTRA = ""
    consented = set()

    @classmethod
    def setUpClass(cls):
        cls.consented = set()
        cls.stack = MsiStack(cls.__name__, msi_extra=cls.MSI_EXTRA, lifetime=cls.LIFETIME,
                             account_match=cls.ACCOUNT_MATCH)
        cls.addClassCleanup(cls.stack.stop)
        cls.stack.start()
        cls.tmp = tempfile.mkdtemp(prefix="credd-sdk-", dir="/tmp")
        os.chmod(cls.tmp, 0o755)
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    def consent(self, user):
        if user not in self.consented:
            self.stack.consent(user)
            self.consented.add(user)

    def credctl_env(self, user):
        rc, out, err = self.stack.credctl(user, "env")
        self.assertExit((rc, err), EXIT_OK, "credctl env as " + user)
        env = parse_exports(out)
        self.assertEqual(sorted(env), ["IDENTITY_ENDPOINT", "IDENTITY_HEADER"], out)
        self.assertEqual(env["IDENTITY_ENDPOINT"], self.stack.endpoint)
        self.assertRegex(env["IDENTITY_HEADER"], r"^[0-9a-f]{64}$")
        return env

    def sdk_env(self, user, extra=None):
        env = env_base(user)
        env.update(self.credctl_env(user))
        if extra:
            env.update(extra)
        return env

    def assertUserToken(self, tok, user, aud=STORAGE):
        claims = H.jwt_claims(tok)
        self.assertEqual(claims.get("aud"), aud, "aud of the token")
        self.assertEqual(claims.get("oid"), self.stack.oid(user), "token is not %s's" % user)

    def py(self, user, mode, scope, env, *extra):
        script = os.path.join(self.tmp, "sdk_py.py")
        if not os.path.exists(script):
            with open(script, "w") as f:
                f.write(PY_MI)
            os.chmod(script, 0o644)
        rc, out, err = run_user(user, ["/usr/bin/python3", script, mode, scope] + list(extra),
                                env, timeout=90)
        self.assertEqual(rc, 0, "python %s as %s: rc %d: %s" % (mode, user, rc, err[-1500:]))
        return json.loads(out.strip().splitlines()[-1])

    def get(self, user, path, headers, host=None):
        return H.run_as(user, http_get, self.stack.msi_port, path, headers, host)

    def app_path(self, resource=STORAGE, api="2019-08-01", extra=""):
        from urllib.parse import quote
        return "/msi/token?api-version=%s&resource=%s%s" % (api, quote(resource, safe=""), extra)


# ==================================================================== SDKs

class PythonSdkTests(SdkBase):
    """azure-identity (Debian python3-azure), the environment from credctl env only."""

    def test_01_managed_identity_sync(self):
        self.consent(ALICE)
        env = self.sdk_env(ALICE)
        doc = self.py(ALICE, "mi", STORAGE + "/.default", env)
        self.assertUserToken(doc["token"], ALICE)
        self.assertGreater(doc["expires_on"], time.time())
        # The same token credctl gets (one cache, one flight).
        rc, tok, err = self.stack.token(ALICE, "storage")
        self.assertEqual(tok["access_token"], doc["token"])

    def test_02_default_credential_sync(self):
        self.consent(ALICE)
        doc = self.py(ALICE, "dac", STORAGE + "/.default", self.sdk_env(ALICE))
        self.assertUserToken(doc["token"], ALICE)

    def test_03_managed_identity_aio(self):
        self.consent(ALICE)
        doc = self.py(ALICE, "mi_aio", STORAGE + "/.default", self.sdk_env(ALICE))
        self.assertUserToken(doc["token"], ALICE)

    def test_04_default_credential_aio(self):
        self.consent(ALICE)
        doc = self.py(ALICE, "dac_aio", STORAGE + "/.default", self.sdk_env(ALICE))
        self.assertUserToken(doc["token"], ALICE)

    def test_05_second_user_gets_own_token(self):
        self.consent(BOB)
        doc = self.py(BOB, "mi", STORAGE + "/.default", self.sdk_env(BOB))
        self.assertUserToken(doc["token"], BOB)

    def test_06_databricks_guid_resource(self):
        self.consent(ALICE)
        doc = self.py(ALICE, "mi", DATABRICKS + "/.default", self.sdk_env(ALICE))
        self.assertUserToken(doc["token"], ALICE, aud=DATABRICKS)

    def test_07_az_shim_cli_credential(self):
        self.consent(ALICE)
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        os.chmod(bindir, 0o755)
        link = os.path.join(bindir, "az")
        if not os.path.lexists(link):
            os.symlink(H.BIN["credctl"], link)
        env = env_base(ALICE)
        env["PATH"] = bindir + ":/usr/bin:/bin"
        env["CREDD_SOCKET"] = self.stack.sock
        env["CREDCTL_REAL_AZ"] = "/nonexistent/az"
        doc = self.py(ALICE, "cli", STORAGE + "/.default", env)
        self.assertUserToken(doc["token"], ALICE)
        # expiresOn (local time) round-trips to the token's expiry.
        rc, tok, err = self.stack.token(ALICE, "storage")
        self.assertLessEqual(abs(doc["expires_on"] - int(tok["expires_on"])), 1)

    def test_08_az_shim_output_and_no_consent(self):
        self.consent(ALICE)
        # The Databricks SDK's azure-cli auth asks exactly this.
        rc, out, err = self.stack.credctl(ALICE, "az", "account", "get-access-token",
                                          "--resource", DATABRICKS, "--output", "json")
        self.assertExit((rc, err), 0, "az get-access-token")
        doc = json.loads(out)
        for k in ("accessToken", "expiresOn", "expires_on", "tokenType", "tenant", "subscription"):
            self.assertIn(k, doc)
        self.assertRegex(doc["expiresOn"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
        self.assertEqual(doc["tenant"], H.TENANT)
        self.assertIsInstance(doc["expires_on"], int)
        self.assertUserToken(doc["accessToken"], ALICE, aud=DATABRICKS)
        rc, out, err = self.stack.credctl(ALICE, "az", "account", "get-access-token",
                                          "--query", "accessToken", "-o", "tsv")
        self.assertExit((rc, err), 0, "az --query accessToken -o tsv")
        self.assertUserToken(out.strip(), ALICE)
        rc, out, err = self.stack.credctl(ALICE, "az", "account", "show", "--output", "json")
        self.assertExit((rc, err), 0, "az account show")
        show = json.loads(out)
        self.assertEqual(show["tenantId"], H.TENANT)
        self.assertIn(self.stack.upn(ALICE), show["user"]["name"])
        # No consent: exit 1, the az login wording and the URL and code.
        rc, out, err = self.stack.credctl(CAROL, "az", "account", "get-access-token",
                                          "--resource", STORAGE)
        self.assertEqual(rc, 1, err)
        self.assertIn("az login", err)
        self.assertIn("https://", err)
        self.stack.code_from_text(err)
        self.assertEqual(out, "")
        # Other subcommands go to the real az by absolute path.
        rc, out, err = self.stack.credctl(ALICE, "az", "group", "list",
                                          env_extra={"CREDCTL_REAL_AZ": "/bin/echo"})
        self.assertEqual((rc, out.strip()), (0, "group list"), err)
        rc, out, err = self.stack.credctl(ALICE, "az", "group", "list",
                                          env_extra={"CREDCTL_REAL_AZ": "echo"})
        self.assertEqual(rc, 127, err)

    def test_09_cli_credential_without_consent_moves_on(self):
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        link = os.path.join(bindir, "az")
        if not os.path.lexists(link):
            os.symlink(H.BIN["credctl"], link)
        env = env_base(CAROL)
        env["PATH"] = bindir + ":/usr/bin:/bin"
        env["CREDD_SOCKET"] = self.stack.sock
        script = os.path.join(self.tmp, "cli_unavail.py")
        with open(script, "w") as f:
            f.write("from azure.identity import AzureCliCredential, CredentialUnavailableError\n"
                    "try:\n    AzureCliCredential().get_token('%s/.default')\n"
                    "except CredentialUnavailableError:\n    print('unavailable')\n" % STORAGE)
        os.chmod(script, 0o644)
        rc, out, err = run_user(CAROL, ["/usr/bin/python3", script], env)
        self.assertEqual((rc, out.strip()), (0, "unavailable"), err[-800:])


    def test_10_imds_off_by_default(self):
        # Issue 11: the IMDS shape (socket uid proof only, no secret) is
        # served only with [msi] imds = yes; the App Service shape still is.
        from urllib.parse import quote
        r = self.get(ALICE, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s"
                     % quote(STORAGE, safe=""), {"Metadata": "true"})
        self.assertEqual(r["status"], 404, r)
        self.assertNotIn("access_token", r["doc"])
        st = self.stack.request("root", {"v": 1, "op": "stats"})
        self.assertEqual(st["sdk_endpoint"]["state"], "up", st.get("sdk_endpoint"))


class NodeSdkTests(SdkBase):
    """npm @azure/identity (pinned in tests/sdk/node), env from credctl env only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@azure", "identity")):
            r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=600)
            if r.returncode != 0:
                raise RuntimeError("npm ci failed: %s" % r.stdout[-2000:])

    def node(self, user, mode, scope, env, *extra):
        script = os.path.join(NODE_DIR, "get_token.js")
        env = dict(env, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
        rc, out, err = run_user(user, ["node", script, mode, scope] + list(extra), env,
                                timeout=90, cwd=NODE_DIR)
        self.assertEqual(rc, 0, "node %s as %s: %s" % (mode, user, err[-1500:]))
        return json.loads(out.strip().splitlines()[-1])

    def test_01_managed_identity(self):
        self.consent(ALICE)
        doc = self.node(ALICE, "mi", STORAGE + "/.default", self.sdk_env(ALICE))
        self.assertUserToken(doc["token"], ALICE)
        self.assertGreater(doc["expires_on"], time.time())

    def test_02_default_credential(self):
        self.consent(BOB)
        doc = self.node(BOB, "dac", STORAGE + "/.default", self.sdk_env(BOB))
        self.assertUserToken(doc["token"], BOB)


# ==================================================================== CAE

CHALLENGE = base64.b64encode(json.dumps(
    {"access_token": {"nbf": {"essential": True, "value": "1700000000"}}}).encode()).decode()


class CaeSdkTests(SdkBase):
    """Claims challenges through the SDK endpoint (issue 17), with
    [entra] client_capabilities = cp1: the endpoint serves ordinary tokens
    only, whatever the SDK sends; what each SDK does with claims."""
    MSI_EXTRA = "\n[entra]\nclient_capabilities = cp1\n"

    def endpoint_token(self, user):
        rc, tok, err = self.stack.token(user, "storage")
        self.assertExit((rc, err), EXIT_OK)
        return tok["access_token"]

    def test_01_python_managed_identity_with_claims(self):
        self.consent(ALICE)
        grants = self.stack.counters().get("refresh_token", 0)
        doc = self.py(ALICE, "mi_claims", STORAGE + "/.default", self.sdk_env(ALICE),
                      CHALLENGE)
        self.assertUserToken(doc["token"], ALICE)
        self.assertNotIn("xms_cc", H.jwt_claims(doc["token"]), "a CAE token from the endpoint")
        # azure-identity (Debian's) sends nothing of the claims to the
        # endpoint: credd serves its cached ordinary token, no grant.
        self.assertEqual(doc["token"], self.endpoint_token(ALICE))
        self.assertEqual(self.stack.counters().get("refresh_token", 0), grants)

    def test_02_node_managed_identity_with_claims(self):
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@azure", "identity")):
            r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=600)
            self.assertEqual(r.returncode, 0, "npm ci failed: %s" % r.stdout[-2000:])
        self.consent(BOB)
        doc = NodeSdkTests.node(self, BOB, "mi_claims", STORAGE + "/.default",
                                self.sdk_env(BOB), CHALLENGE)
        self.assertUserToken(doc["token"], BOB)
        self.assertNotIn("xms_cc", H.jwt_claims(doc["token"]))
        self.assertEqual(doc["token"], self.endpoint_token(BOB))

    def test_03_endpoint_takes_msal_revocation_parameters(self):
        # Newer MSAL sends these to managed-identity sources that support
        # token revocation; credd answers with its ordinary token.
        import hashlib
        self.consent(ALICE)
        env = self.credctl_env(ALICE)
        tok = self.endpoint_token(ALICE)
        r = self.get(ALICE, self.app_path(extra="&xms_cc=cp1&token_sha256_to_refresh=%s"
                                          % hashlib.sha256(tok.encode()).hexdigest()),
                     {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})
        self.assertEqual(r["status"], 200, r)
        self.assertEqual(r["doc"]["access_token"], tok)
        self.assertNotIn("xms_cc", H.jwt_claims(tok))
        # credctl --cae, in the same config, gets a CAE token of its own.
        rc, cae, err = self.stack.token(ALICE, "storage", "--cae")
        self.assertExit((rc, err), EXIT_OK)
        self.assertEqual(H.jwt_claims(cae["access_token"]).get("xms_cc"), ["cp1"])
        self.assertEqual(self.endpoint_token(ALICE), tok)


# ==================================================================== refusals

class EndpointTests(SdkBase):
    """Caller proof, proxy/browser refusals, resources, shapes, errors."""

    def test_01_app_service_shape(self):
        self.consent(ALICE)
        env = self.credctl_env(ALICE)
        r = self.get(ALICE, self.app_path(extra="&client_id=x&mi_res_id=y&object_id=z"),
                     {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})
        self.assertEqual(r["status"], 200, r)
        self.assertTrue(r["headers"]["content-type"].startswith("application/json"))
        self.assertIn("content-length", r["headers"])
        self.assertNotIn("transfer-encoding", r["headers"])
        self.assertNotIn("access-control-allow-origin", r["headers"])
        d = r["doc"]
        for k in ("access_token", "expires_on", "expires_in", "resource", "token_type", "client_id"):
            self.assertIn(k, d)
        self.assertEqual(d["resource"], STORAGE)
        self.assertEqual(d["token_type"], "Bearer")
        self.assertGreater(int(d["expires_on"]), time.time())
        self.assertLessEqual(abs(int(d["expires_on"]) - int(d["expires_in"]) - time.time()), 5)
        self.assertUserToken(d["access_token"], ALICE)

    def test_02_stolen_header_refused(self):
        self.consent(ALICE)
        self.consent(BOB)
        env = self.credctl_env(ALICE)
        r = self.get(BOB, self.app_path(), {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})
        self.assertEqual(r["status"], 403, r)
        self.assertNotIn("access_token", r["doc"])
        # Even from a uid with no passwd entry, or from root.
        r = http_get_as_uid(NO_USER_UID, self.stack.msi_port, self.app_path(),
                            {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})
        self.assertEqual(r["status"], 403, r)
        r = http_get(self.stack.msi_port, self.app_path(), {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})
        self.assertEqual(r["status"], 403, r)

    def test_03_missing_or_unknown_secret(self):
        r = self.get(ALICE, self.app_path(), {})
        self.assertEqual(r["status"], 401, r)
        r = self.get(ALICE, self.app_path(), {"X-IDENTITY-HEADER": "0" * 64})
        self.assertEqual(r["status"], 401, r)
        r = self.get(ALICE, self.app_path(), {"X-IDENTITY-HEADER": "short"})
        self.assertEqual(r["status"], 401, r)

    def test_04_proxy_and_browser_headers_refused(self):
        env = self.credctl_env(ALICE)
        for h, v in (("X-Forwarded-For", "10.0.0.1"), ("Forwarded", "for=10.0.0.1"),
                     ("Via", "1.1 proxy"), ("Origin", "https://evil.example")):
            r = self.get(ALICE, self.app_path(), {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"], h: v})
            self.assertEqual(r["status"], 403, "%s: %s" % (h, r))
            self.assertNotIn("access_token", r["doc"])
            self.assertNotIn("access-control-allow-origin", r["headers"])

    def test_05_non_loopback_host_refused(self):
        env = self.credctl_env(ALICE)
        for host in ("evil.example", "evil.example:%d" % self.stack.msi_port, "10.0.0.1",
                     "127.0.0.1.evil.example", "127.0.0.1:1"):
            r = self.get(ALICE, self.app_path(), {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
                         host=host)
            self.assertEqual(r["status"], 403, "Host %s: %s" % (host, r))
        for host in ("localhost:%d" % self.stack.msi_port, "127.0.0.1"):
            r = self.get(ALICE, self.app_path(), {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
                         host=host)
            self.assertNotEqual(r["status"], 403, "Host %s: %s" % (host, r))

    def test_06_resources(self):
        self.consent(ALICE)
        env = self.credctl_env(ALICE)
        h = {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]}
        r = self.get(ALICE, self.app_path(resource="https://evil.example"), h)
        self.assertEqual(r["status"], 400, r)
        self.assertEqual(r["doc"].get("error"), "invalid_resource")
        r = self.get(ALICE, "/msi/token?api-version=2019-08-01", h)
        self.assertEqual(r["status"], 400, r)
        # R and R/ are distinct resources: the token's aud keeps the slash.
        r = self.get(ALICE, self.app_path(resource=STORAGE + "/"), h)
        self.assertEqual(r["status"], 200, r)
        self.assertEqual(H.jwt_claims(r["doc"]["access_token"]).get("aud"), STORAGE + "/")
        self.assertEqual(r["doc"]["resource"], STORAGE + "/")
        # A GUID resource gives GUID/.default.
        r = self.get(ALICE, self.app_path(resource=DATABRICKS), h)
        self.assertEqual(r["status"], 200, r)
        self.assertUserToken(r["doc"]["access_token"], ALICE, aud=DATABRICKS)
        r = self.get(ALICE, self.app_path(api="2017-09-01"), h)
        self.assertEqual(r["status"], 400, r)

    def test_07_imds_shape_by_uid(self):
        self.consent(ALICE)
        self.consent(BOB)
        from urllib.parse import quote
        for path in ("/metadata/identity/oauth2/token", "/metadata/identity/oauth2/token/"):
            r = self.get(ALICE, "%s?api-version=2018-02-01&resource=%s" % (path, quote(STORAGE, safe="")),
                         {"Metadata": "true"})
            self.assertEqual(r["status"], 200, r)
            d = r["doc"]
            for k in ("access_token", "expires_in", "expires_on", "resource", "token_type"):
                self.assertIn(k, d)
            self.assertUserToken(d["access_token"], ALICE)
        # Another uid gets its own token, never alice's.
        r = self.get(BOB, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s"
                     % quote(STORAGE, safe=""), {"Metadata": "true"})
        self.assertEqual(r["status"], 200, r)
        self.assertUserToken(r["doc"]["access_token"], BOB)
        # A uid with no user name on this node is refused.
        r = http_get_as_uid(NO_USER_UID, self.stack.msi_port,
                            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s"
                            % quote(STORAGE, safe=""), {"Metadata": "true"})
        self.assertEqual(r["status"], 403, r)
        self.assertNotIn("access_token", r["doc"])
        # Without Metadata: true, 400 as IMDS does.
        r = self.get(ALICE, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s"
                     % quote(STORAGE, safe=""), {})
        self.assertEqual(r["status"], 400, r)

    def test_08_hadoop_abfs_request_shape(self):
        # hadoop-azure AzureADAuthenticator.getTokenFromMsi (MsiTokenProvider,
        # fs.azure.account.oauth2.msi.endpoint = our IMDS URL): GET with
        # api-version=2018-02-01, resource=https://storage.azure.com/ (with the
        # slash), optional authority and client_id, headers Metadata: true
        # and x-ms-client-request-id; it refuses chunked replies and reads
        # access_token, expires_in, expires_on.
        self.consent(ALICE)
        path = ("/metadata/identity/oauth2/token?api-version=2018-02-01"
                "&resource=https%3A%2F%2Fstorage.azure.com%2F"
                "&authority=https%3A%2F%2Flogin.microsoftonline.com%2F" + H.TENANT +
                "&client_id=00000000-0000-0000-0000-000000000000")
        r = self.get(ALICE, path, {"Metadata": "true", "x-ms-client-request-id":
                                   "2a3b4c5d-0000-4000-8000-000000000000",
                                   "User-Agent": "Java/1.8.0_292", "Accept": "*/*",
                                   "Connection": "keep-alive"})
        self.assertEqual(r["status"], 200, r)
        self.assertNotIn("transfer-encoding", r["headers"])
        self.assertEqual(int(r["headers"]["content-length"]), len(json.dumps(r["doc"], separators=(",", ":"))))
        self.assertEqual(H.jwt_claims(r["doc"]["access_token"]).get("aud"), STORAGE + "/")
        int(r["doc"]["expires_in"])
        int(r["doc"]["expires_on"])

    def test_09_databricks_sdk_msi_request_shape(self):
        # databricks-sdk (Go/Python) azure-msi: GET IMDS token with
        # api-version=2018-02-01&resource=<Databricks app id>, Metadata: true.
        self.consent(ALICE)
        r = self.get(ALICE, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + DATABRICKS,
                     {"Metadata": "true"})
        self.assertEqual(r["status"], 200, r)
        self.assertUserToken(r["doc"]["access_token"], ALICE, aud=DATABRICKS)

    def test_10_missing_consent_shows_the_code(self):
        env = self.credctl_env(CAROL)
        r = self.get(CAROL, self.app_path(), {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})
        self.assertEqual(r["status"], 401, r)
        self.assertIn(r["doc"].get("error"), ("consent_required", "consent_pending"))
        desc = r["doc"].get("error_description", "")
        self.assertIn("https://", desc)
        self.stack.code_from_text(desc)
        # The Python SDK shows it to the user.
        script = os.path.join(self.tmp, "mi_err.py")
        with open(script, "w") as f:
            f.write("from azure.identity import ManagedIdentityCredential\n"
                    "try:\n    ManagedIdentityCredential().get_token('%s/.default')\n"
                    "except Exception as e:\n    print(str(e))\n" % STORAGE)
        os.chmod(script, 0o644)
        env2 = env_base(CAROL)
        env2.update(env)
        rc, out, err = run_user(CAROL, ["/usr/bin/python3", script], env2)
        self.assertIn("https://", out + err)
        self.stack.code_from_text(out + err)

    def test_11_method_path_body(self):
        env = self.credctl_env(ALICE)
        r = self.get(ALICE, "/nope", {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})
        self.assertEqual(r["status"], 404, r)

        def post(port, secret):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("POST", "/msi/token?api-version=2019-08-01&resource=" + STORAGE, body="x=1",
                      headers={"X-IDENTITY-HEADER": secret})
            r = c.getresponse()
            r.read()
            return r.status
        self.assertEqual(H.run_as(ALICE, post, self.stack.msi_port, env["IDENTITY_HEADER"]), 405)

    def test_12_oversized_and_slow_requests(self):
        def big(port):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(b"GET /msi/token HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
            data = b""
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
            except OSError:
                pass
            s.close()
            return data[:40].decode("latin-1")
        out = H.run_as(ALICE, big, self.stack.msi_port)
        self.assertTrue(out == "" or re.match(r"HTTP/1\.[01] (4\d\d)", out), out)

        def slow(port):
            s = socket.create_connection(("127.0.0.1", port), timeout=60)
            s.sendall(b"GET /msi/token HTTP/1.1\r\n")
            t0 = time.monotonic()
            try:
                d = s.recv(100)
            except OSError:
                d = b""
            s.close()
            return [time.monotonic() - t0, d.decode("latin-1")]
        # [msi] connection_timeout = 3 in this class: dropped, not held.
        took, data = H.run_as(ALICE, slow, self.stack.msi_port)
        self.assertLess(took, 30)

    def test_13_session_secret_from_pam_session_open(self):
        self.consent(ALICE)
        r = self.stack.request("root", {"v": 1, "op": "session_open", "user": ALICE,
                                        "service": "sshd", "workload": "job"})
        self.assertIs(r.get("ok"), True, r)
        self.assertEqual(r.get("endpoint"), self.stack.endpoint)
        secret = r.get("secret")
        self.assertRegex(secret, r"^[0-9a-f]{64}$")
        g = self.get(ALICE, self.app_path(), {"X-IDENTITY-HEADER": secret})
        self.assertEqual(g["status"], 200, g)
        self.assertUserToken(g["doc"]["access_token"], ALICE)
        c = self.stack.request("root", {"v": 1, "op": "session_close", "user": ALICE,
                                        "session": r["session"]})
        self.assertIs(c.get("ok"), True, c)
        g = self.get(ALICE, self.app_path(), {"X-IDENTITY-HEADER": secret})
        self.assertEqual(g["status"], 401, g)

    def test_14_no_secret_or_token_in_logs(self):
        self.assertEqual(H.find_leaks(self.stack.leak_sources()), [])
        # Endpoint secrets minted in this class: none in any log.
        rc, out, err = self.stack.credctl(ALICE, "env")
        sec = parse_exports(out)["IDENTITY_HEADER"]
        self.get(ALICE, self.app_path(), {"X-IDENTITY-HEADER": sec})
        time.sleep(0.5)
        self.assertEqual(H.find_leaks(self.stack.leak_sources(), [sec], canary=False), [])


# imds: off by default since issue 11; these tests replay IMDS consumers.
EndpointTests.MSI_EXTRA = "connection_timeout = 3\nimds = yes\n"


# ==================================================================== sink, expiry

class SinkAndExpiryTests(SdkBase):
    """Short tokens (40 s) and secrets (60 s): the sink refreshes the file
    before expiry and stops when its session's secret ends; an expired
    secret is refused."""

    LIFETIME = 40
    MSI_EXTRA = "secret_ttl = 60\n"

    def test_01_sink_refresh_mode_and_expiry(self):
        self.consent(ALICE)
        env = self.sdk_env(ALICE)
        secret = env["IDENTITY_HEADER"]
        minted = time.time()
        outdir = os.path.join(self.tmp, "alice")
        os.makedirs(outdir, exist_ok=True)
        os.chown(outdir, H.uid_of(ALICE), -1)
        os.chmod(outdir, 0o755)   # the directory is readable: the file is not
        out = os.path.join(outdir, "token")
        gid, groups = H.groups_of(ALICE)
        env = dict(env, CREDD_SOCKET=self.stack.sock)
        p = subprocess.Popen([H.BIN["credctl"], "sink", "--scope", "storage", "--out", out],
                             env=env, cwd="/tmp", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             user=H.uid_of(ALICE), group=gid, extra_groups=groups)
        try:
            deadline = time.time() + 20
            while not os.path.exists(out) and time.time() < deadline:
                time.sleep(0.2)
            self.assertTrue(os.path.exists(out), "sink wrote no file")
            st = os.stat(out)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
            self.assertEqual(st.st_uid, H.uid_of(ALICE))
            first = open(out).read()
            self.assertUserToken(first, ALICE)
            exp1 = H.jwt_claims(first)["exp"]
            # Another user cannot read it.
            def try_read(path):
                try:
                    with open(path) as f:
                        f.read()
                    return "read"
                except PermissionError:
                    return "denied"
            self.assertEqual(H.run_as(BOB, try_read, out), "denied")
            # Refreshed before the first token expires.
            second = first
            while time.time() < exp1 and second == first:
                time.sleep(1)
                second = open(out).read()
            self.assertNotEqual(second, first, "sink did not refresh before expiry")
            self.assertLess(time.time(), exp1, "refreshed only after expiry")
            self.assertUserToken(second, ALICE)
            self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
            self.assertEqual(H.run_as(BOB, try_read, out), "denied")
            leftovers = [f for f in os.listdir(outdir) if f != "token"]
            self.assertEqual(leftovers, [], "temp files left behind")
            # The secret expires (TTL 60 s): refused with 401 ...
            time.sleep(max(0, minted + 62 - time.time()))
            r = self.get(ALICE, self.app_path(), {"X-IDENTITY-HEADER": secret})
            self.assertEqual(r["status"], 401, r)
            self.assertIn("expired", r["doc"].get("error_description", "") + "expired?")
            # ... and the sink, whose session that was, stops by itself.
            rc = p.wait(timeout=60)
            self.assertEqual(rc, 0, p.stderr.read().decode()[-500:])
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(10)

    def test_02_sink_stops_on_signal(self):
        self.consent(ALICE)
        out = os.path.join(self.tmp, "alice", "token2")
        gid, groups = H.groups_of(ALICE)
        env = dict(env_base(ALICE), CREDD_SOCKET=self.stack.sock)
        p = subprocess.Popen([H.BIN["credctl"], "sink", "--scope", "storage", "--out", out],
                             env=env, cwd="/tmp", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             user=H.uid_of(ALICE), group=gid, extra_groups=groups)
        deadline = time.time() + 20
        while not os.path.exists(out) and time.time() < deadline:
            time.sleep(0.2)
        self.assertTrue(os.path.exists(out))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=15), 0)


# ==================================================================== PAM

class PamSessionTests(SdkBase):
    """pam_entra.so (plain build) opens a session through libpam: the PAM
    environment carries IDENTITY_ENDPOINT/IDENTITY_HEADER and nothing that
    would make SDKs pick other credentials; Python's SDK works with it."""

    def test_01_pam_session_env(self):
        if not PAM_MODULE or not os.path.isfile(PAM_MODULE):
            self.skipTest("no plain pam_entra.so (pass --pam-module)")
        self.consent(ALICE)
        env, close = pam_session_env(PAM_MODULE, self.stack.sock, ALICE, self.tmp)
        self.assertEqual(env.get("IDENTITY_ENDPOINT"), self.stack.endpoint, env.keys())
        self.assertRegex(env.get("IDENTITY_HEADER", ""), r"^[0-9a-f]{64}$")
        for bad in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
            self.assertNotIn(bad, env)
        e = env_base(ALICE)
        e.update({k: env[k] for k in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")})
        doc = self.py(ALICE, "dac", STORAGE + "/.default", e)
        self.assertUserToken(doc["token"], ALICE)
        # close_session ends the session's secret.
        close()
        r = self.get(ALICE, self.app_path(), {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})
        self.assertEqual(r["status"], 401, r)


def pam_session_env(module, sock, user, tmp):
    """libpam through ctypes: pam_start_confdir with a service file naming
    module, open_session, pam_getenvlist, close_session."""
    confdir = os.path.join(tmp, "pam.d")
    os.makedirs(confdir, exist_ok=True)
    with open(os.path.join(confdir, "credd-sdk"), "w") as f:
        f.write("session optional %s socket=%s timeout=10000 quiet\n"
                "session required pam_permit.so\n" % (module, sock))
    lib = ctypes.CDLL("libpam.so.0")

    class Conv(ctypes.Structure):
        _fields_ = [("conv", ctypes.c_void_p), ("appdata_ptr", ctypes.c_void_p)]
    CONV = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)

    def conv(n, msg, resp, data):
        return 19  # PAM_CONV_ERR: nothing to show here
    cb = CONV(conv)
    c = Conv(ctypes.cast(cb, ctypes.c_void_p), None)
    h = ctypes.c_void_p()
    lib.pam_start_confdir.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Conv),
                                      ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    r = lib.pam_start_confdir(b"credd-sdk", user.encode(), ctypes.byref(c), confdir.encode(),
                              ctypes.byref(h))
    if r != 0:
        raise RuntimeError("pam_start_confdir: %d" % r)
    lib.pam_open_session.argtypes = [ctypes.c_void_p, ctypes.c_int]
    r = lib.pam_open_session(h, 0)
    if r != 0:
        raise RuntimeError("pam_open_session: %d" % r)
    lib.pam_getenvlist.restype = ctypes.POINTER(ctypes.c_char_p)
    lib.pam_getenvlist.argtypes = [ctypes.c_void_p]
    lst = lib.pam_getenvlist(h)
    env = {}
    i = 0
    while lst and lst[i]:
        k, _, v = lst[i].decode().partition("=")
        env[k] = v
        i += 1
    lib.pam_close_session.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.pam_end.argtypes = [ctypes.c_void_p, ctypes.c_int]

    def close():
        lib.pam_close_session(h, 0)
        lib.pam_end(h, 0)
        close.keep = (cb, c)
    close.keep = (cb, c)  # the callback must outlive the handle
    return env, close


# ==================================================================== main

def main():
    def options(ap):
        ap.add_argument("--pam-module", default=os.environ.get("PAM_ENTRA_PLAIN"))

    def check(args):
        global PAM_MODULE
        PAM_MODULE = os.path.abspath(args.pam_module) if args.pam_module else None
        return []

    return H.run_suite(__name__, __doc__,
                       "sdk tests need root (real users, credd started as root).",
                       options=options, check=check, banner=lambda: "pam=%s" % PAM_MODULE)


if __name__ == "__main__":
    sys.exit(main())
