/*
 * test_flow_code.c - authorization-code sign-ins through the broker
 * (flow_code.c, broker_signin.c) on the bench of fake_core.h:
 * - paste-back: login answers method auth_code with the authorize URL
 *   (PKCE S256, state, login_hint, the nativeclient redirect); the pasted
 *   address is redeemed as a public client with the flow's verifier and
 *   the consent is stored public; another state, another site and a
 *   replayed address are refused; another account is account_mismatch;
 * - platform callback: a short link (single use) to the authorize URL,
 *   the code redeemed as a confidential client, the callback told after
 *   broker_signin_redeem returned, the refresh token's refreshes
 *   confidential; an unknown state is -ENOENT; Entra's error= ends it;
 * - fallback: signin = device_code,auth_code turns a device flow that
 *   Conditional Access blocks (53003, at the poll or at the start) into
 *   a code flow and says so; device_code alone stays policy_blocked;
 * - each app credential on the callback flow: its code redemption and
 *   its refreshes carry the secret, a fresh assertion for the token
 *   endpoint, or the federated token read afresh; a stale federated
 *   file fails the refresh as idp_misconfigured and keeps the consent;
 * - an unused link expires with the flow;
 * - on a cluster store (one node): the flow claimed in the record, a
 *   callback flow's link id and state sealed flowrefs, the link, the
 *   callback and a paste each used up in the record once (a racing
 *   second callback is told -ENOENT), a tampered state refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "entra/secret.h"

#include "broker.h"
#include "fake_core.h"
#include "test.h"

#define ALICE FAKE_CORE_ALICE
#define ALICE_UID FAKE_CORE_ALICE_UID
#define ALICE_OID FAKE_CORE_ALICE_OID
#define NATIVE "https://login.microsoftonline.com/common/oauth2/nativeclient"
#define PASTE "[entra]\nsignin = auth_code\naccount_match = %u@contoso.com\n"
#define CALLBACK_URI "https://ds.example.com/entra/callback"
#define CALLBACK                                                                      \
	PASTE                                                                         \
	"client_secret_file = /etc/credd/s\n[callback]\nredirect_uri = " CALLBACK_URI \
	"\n"
#define FALLBACK                                                               \
	"[entra]\nsignin = device_code,auth_code\n"                            \
	"account_match = %u@contoso.com\n"
#define CA_BLOCK                                                               \
	"{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS53003: "   \
	"Access has been blocked by Conditional Access policies.\","           \
	"\"error_codes\":[53003]}"

/* The value of key in url's query (not decoded), or "". */
static const char *
param(const char *url, const char *key, char *buf, size_t n)
{
	char pat[64];
	const char *p;
	size_t len;

	snprintf(pat, sizeof(pat), "%s=", key);
	buf[0] = '\0';
	for (p = strchr(url, '?'); p != NULL; p = strchr(p + 1, '&'))
		if (strncmp(p + 1, pat, strlen(pat)) == 0) {
			p += 1 + strlen(pat);
			len = strcspn(p, "&");
			snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1),
			    p);
			break;
		}
	return buf;
}

/* A login (no wait) answered pending with the code flow's fields. */
static int
login_code_flow(struct fake_core *fc, char *url, size_t n)
{
	struct fake_call c;
	const char *m, *s;

	fake_core_login(fc, &c, ALICE, ALICE_UID, 0);
	fake_core_settle(fc);
	m = fake_core_field(&c, "method");
	s = fake_core_field(&c, "signin_url");
	if (m == NULL || strcmp(m, "auth_code") != 0 || s == NULL) {
		fprintf(stderr, "login: method %s\n", m ? m : "(none)");
		fake_core_call_done(&c);
		return -1;
	}
	snprintf(url, n, "%s", s);
	fake_core_call_done(&c);
	return 0;
}

static const char *
token_body(struct fake_core *fc, const char *user)
{
	return fake_core_token_body(fc, "AT-code", "RT-code", 3600, ALICE_OID,
	    user);
}

TEST(paste_back_signs_in_as_a_public_client)
{
	struct fake_core *fc = fake_core_new(PASTE);
	char url[4096], state[64], ch[64], v[256], want[64], paste[512];
	unsigned char h[32];
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(login_code_flow(fc, url, sizeof(url)), 0);
	ASSERT_TRUE(strncmp(url,
			"https://login.microsoftonline.com/" FAKE_TENANT
			"/oauth2/v2.0/authorize?",
			60) == 0);
	ASSERT_STREQ(param(url, "redirect_uri", v, sizeof(v)),
	    "https%3A%2F%2Flogin.microsoftonline.com%2Fcommon%2Foauth2%2F"
	    "nativeclient");
	ASSERT_STREQ(param(url, "login_hint", v, sizeof(v)),
	    "alice%40contoso.com");
	ASSERT_STREQ(param(url, "code_challenge_method", v, sizeof(v)), "S256");
	param(url, "state", state, sizeof(state));
	param(url, "code_challenge", ch, sizeof(ch));
	ASSERT_EQ(strlen(state), 32);
	/* PAM's message says to run credctl login (it cannot paste). */
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_code(&c), "consent_pending");
	ASSERT_TRUE(
	    strstr(fake_core_field(&c, "message"), "credctl login") != NULL);
	fake_core_call_done(&c);

	snprintf(paste, sizeof(paste),
	    "  " NATIVE "?code=CODE-1&state=%s&session_state=x\n", state);
	fake_core_login_code(fc, &c, ALICE, ALICE_UID, paste);
	fake_core_settle(fc);
	ASSERT_EQ(c.r, WAITER_PARKED);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_CODE), 1);
	ASSERT_STREQ(fake_core_idp_code(fc), "CODE-1");
	ASSERT_EQ(fake_core_idp_client(fc, FAKE_CODE), 0);
	ASSERT_STREQ(fake_core_idp_redirect(fc), NATIVE);
	/* The verifier is the one the challenge was made from. */
	crypto_hash_sha256(h, (const unsigned char *)fake_core_idp_verifier(fc),
	    strlen(fake_core_idp_verifier(fc)));
	sodium_bin2base64(want, sizeof(want), h, sizeof(h),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	ASSERT_STREQ(want, ch);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_CODE, 200,
		      token_body(fc, "alice@contoso.com"), -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "");
	ASSERT_STREQ(fake_core_field(&c, "state"), "ready");
	fake_core_call_done(&c);
	ASSERT_TRUE(fake_core_store_has(fc, ALICE));
	/* The first token is served; its refreshes are public. */
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-code");
	fake_core_call_done(&c);
	fake_core_advance(fc, 3601);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_client(fc, FAKE_REFRESH), 0);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(paste_refusals_and_replay)
{
	struct fake_core *fc = fake_core_new(PASTE);
	char url[4096], state[64], paste[512];
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(login_code_flow(fc, url, sizeof(url)), 0);
	param(url, "state", state, sizeof(state));
	/* Another sign-in's state. */
	fake_core_login_code(fc, &c, ALICE, ALICE_UID,
	    NATIVE "?code=C&state=abcdefghijklmnopqrstuvwxyz012345");
	ASSERT_STREQ(fake_core_code(&c), "bad_request");
	ASSERT_TRUE(strstr(fake_core_field(&c, "message"), "another") != NULL);
	fake_core_call_done(&c);
	/* Another site. */
	snprintf(paste, sizeof(paste),
	    "https://evil.example/common/oauth2/nativeclient?code=C&state=%s",
	    state);
	fake_core_login_code(fc, &c, ALICE, ALICE_UID, paste);
	ASSERT_STREQ(fake_core_code(&c), "bad_request");
	fake_core_call_done(&c);
	/* Another user (bob) has no flow: nothing for him to paste. */
	snprintf(paste, sizeof(paste), NATIVE "?code=C&state=%s", state);
	fake_core_login_code(fc, &c, "bob", 1002, paste);
	ASSERT_STREQ(fake_core_code(&c), "consent_required");
	fake_core_call_done(&c);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_CODE), 0);
	/* The right one; then the same again (replay) finds no flow. */
	fake_core_login_code(fc, &c, ALICE, ALICE_UID, paste);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_CODE, 200,
		      token_body(fc, "mallory@contoso.com"), -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "account_mismatch");
	fake_core_call_done(&c);
	fake_core_login_code(fc, &c, ALICE, ALICE_UID, paste);
	ASSERT_STREQ(fake_core_code(&c), "consent_required");
	fake_core_call_done(&c);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_CODE), 1);
	ASSERT_TRUE(!fake_core_store_has(fc, ALICE));
	fake_core_free(fc);
}

struct told {
	int n, r;
	char user[64], reason[160];
};

static void
redeem_cb(void *arg, int r, const char *user, const char *reason)
{
	struct told *t = arg;

	t->n++;
	t->r = r;
	snprintf(t->user, sizeof(t->user), "%s", user ? user : "");
	snprintf(t->reason, sizeof(t->reason), "%s", reason ? reason : "");
}

TEST(callback_signs_in_as_a_confidential_client)
{
	struct fake_core *fc = fake_core_new(CALLBACK);
	struct broker *b;
	char url[4096], state[64], v[128], *az = NULL, *az2 = NULL;
	struct secret *code = secret_from_str("CODE-CB");
	struct told t = { 0 };
	struct fake_call c;
	const char *id;

	ASSERT_TRUE(fc != NULL);
	b = fake_core_broker(fc);
	ASSERT_EQ(login_code_flow(fc, url, sizeof(url)), 0);
	/* The short link a PAM message can carry. */
	ASSERT_TRUE(
	    strncmp(url, "https://ds.example.com/entra/login/", 35) == 0);
	id = url + 35;
	ASSERT_EQ(strlen(id), 22);
	ASSERT_ERR(broker_signin_link(b, "AAAAAAAAAAAAAAAAAAAAAA", &az, NULL,
		       NULL),
	    -ENOENT);
	ASSERT_EQ(broker_signin_link(b, id, &az, NULL, NULL), 0);
	ASSERT_STREQ(param(az, "redirect_uri", v, sizeof(v)),
	    "https%3A%2F%2Fds.example.com%2Fentra%2Fcallback");
	ASSERT_ERR(broker_signin_link(b, id, &az2, NULL, NULL),
	    -ENOENT); /* single use */
	ASSERT_TRUE(az2 == NULL);
	param(az, "state", state, sizeof(state));
	free(az);
	ASSERT_ERR(broker_signin_redeem(b, "abcdefghijklmnopqrstuvwxyz012345",
		       code, NULL, NULL, redeem_cb, &t),
	    -ENOENT);
	ASSERT_EQ(broker_signin_redeem(b, state, code, NULL, NULL, redeem_cb,
		      &t),
	    0);
	ASSERT_EQ(t.n, 0);
	/* Its state is used up: a replay is refused. */
	ASSERT_ERR(broker_signin_redeem(b, state, code, NULL, NULL, redeem_cb,
		       &t),
	    -ENOENT);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_client(fc, FAKE_CODE), 1);
	ASSERT_STREQ(fake_core_idp_redirect(fc), CALLBACK_URI);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_CODE, 200,
		      token_body(fc, "alice@contoso.com"), -1),
	    0);
	fake_core_advance(fc, 0);
	ASSERT_EQ(t.n, 1);
	ASSERT_EQ(t.r, 0);
	ASSERT_STREQ(t.user, ALICE);
	/* The refresh token is a confidential client's: so are its
	 * refreshes. */
	fake_core_advance(fc, 3601);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_REFRESH), 1);
	ASSERT_EQ(fake_core_idp_client(fc, FAKE_REFRESH), 1);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200,
		      fake_core_token_body(fc, "AT-2", "RT-2", 3600, NULL,
			  NULL),
		      -1),
	    0);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-2");
	fake_core_call_done(&c);
	secret_free(code);
	fake_core_free(fc);
}

struct linked {
	int n, r;
	char url[4096];
};

static void
link_cb(void *arg, int r, const char *url)
{
	struct linked *l = arg;

	l->n++;
	l->r = r;
	snprintf(l->url, sizeof(l->url), "%s", url ? url : "");
}

/*
 * Cluster store: the flow is claimed in the record; its link id and
 * state are flowrefs (the user unreadable); the link and the callback
 * are looked up in the record (answers later), each used up there once;
 * a second callback racing the first is told -ENOENT; a tampered state
 * is refused at once.
 */
TEST(cluster_callback_through_the_record)
{
	struct fake_core *fc = fake_core_new_cluster(CALLBACK);
	struct broker *b;
	char url[4096], state[256], bad[256], *az = NULL;
	struct secret *code = secret_from_str("CODE-CL");
	struct told t = { 0 }, t2 = { 0 };
	struct linked lk = { 0 };
	struct fake_call c;
	const char *id;

	ASSERT_TRUE(fc != NULL);
	b = fake_core_broker(fc);
	ASSERT_EQ(login_code_flow(fc, url, sizeof(url)), 0);
	ASSERT_TRUE(
	    strncmp(url, "https://ds.example.com/entra/login/", 35) == 0);
	id = url + 35;
	ASSERT_TRUE(strlen(id) >= 86);
	ASSERT_TRUE(strstr(id, ALICE) == NULL);
	ASSERT_ERR(broker_signin_link(b, id, &az, link_cb, &lk), -EINPROGRESS);
	ASSERT_EQ(lk.n, 0); /* never before it returned */
	fake_core_settle(fc);
	ASSERT_EQ(lk.n, 1);
	ASSERT_EQ(lk.r, 0);
	param(lk.url, "state", state, sizeof(state));
	ASSERT_TRUE(strlen(state) >= 86);
	ASSERT_TRUE(strstr(state, ALICE) == NULL);
	ASSERT_ERR(broker_signin_link(b, id, &az, link_cb, &lk), -EINPROGRESS);
	fake_core_settle(fc);
	ASSERT_EQ(lk.n, 2);
	ASSERT_EQ(lk.r, -ENOENT); /* single use, in the record */
	ASSERT_TRUE(az == NULL);
	snprintf(bad, sizeof(bad), "%s", state);
	bad[50] = bad[50] == 'A' ? 'B' : 'A';
	ASSERT_ERR(broker_signin_redeem(b, bad, code, NULL, NULL, redeem_cb,
		       &t),
	    -ENOENT);
	ASSERT_EQ(broker_signin_redeem(b, state, code, NULL, NULL, redeem_cb,
		      &t),
	    0);
	ASSERT_EQ(broker_signin_redeem(b, state, code, NULL, NULL, redeem_cb,
		      &t2),
	    0); /* racing: the record decides */
	fake_core_settle(fc);
	ASSERT_EQ(t2.n, 1);
	ASSERT_EQ(t2.r, -ENOENT);
	ASSERT_EQ(t.n, 0);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_CODE), 1);
	ASSERT_EQ(fake_core_idp_client(fc, FAKE_CODE), 1);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_CODE, 200,
		      token_body(fc, "alice@contoso.com"), -1),
	    0);
	fake_core_advance(fc, 0);
	ASSERT_EQ(t.n, 1);
	ASSERT_EQ(t.r, 0);
	ASSERT_STREQ(t.user, ALICE);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-code");
	fake_core_call_done(&c);
	secret_free(code);
	fake_core_free(fc);
}

/*
 * Cluster store, paste-back: the pasted address is matched here, then
 * its state used up in the record before the code is redeemed; the same
 * address again is refused.
 */
TEST(cluster_paste_through_the_record)
{
	struct fake_core *fc = fake_core_new_cluster(PASTE);
	char url[4096], state[64], back[512];
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(login_code_flow(fc, url, sizeof(url)), 0);
	param(url, "state", state, sizeof(state));
	ASSERT_EQ(strlen(state), 32);
	snprintf(back, sizeof(back), NATIVE "?code=CODE-P&state=%s", state);
	fake_core_login_code(fc, &c, ALICE, ALICE_UID, back);
	fake_core_settle(fc);
	ASSERT_EQ(c.answered, 0); /* parked: the record, then Entra */
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_CODE), 1);
	ASSERT_EQ(fake_core_idp_client(fc, FAKE_CODE), 0);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_CODE, 200,
		      token_body(fc, "alice@contoso.com"), -1),
	    0);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_field(&c, "state"), "ready");
	fake_core_call_done(&c);
	fake_core_login_code(fc, &c, ALICE, ALICE_UID, back);
	fake_core_settle(fc);
	ASSERT_TRUE(fake_core_code(&c) != NULL);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_CODE), 1);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(callback_error_ends_the_flow)
{
	struct fake_core *fc = fake_core_new(CALLBACK);
	char url[4096], state[64], *az = NULL;
	struct told t = { 0 };

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(login_code_flow(fc, url, sizeof(url)), 0);
	ASSERT_EQ(broker_signin_link(fake_core_broker(fc), url + 35, &az, NULL,
		      NULL),
	    0);
	param(az, "state", state, sizeof(state));
	free(az);
	ASSERT_EQ(broker_signin_redeem(fake_core_broker(fc), state, NULL,
		      "access_denied",
		      "AADSTS53003: Access has been blocked by Conditional "
		      "Access policies.",
		      redeem_cb, &t),
	    0);
	ASSERT_EQ(t.n, 0); /* never before it returned */
	fake_core_advance(fc, 0);
	ASSERT_EQ(t.n, 1);
	ASSERT_EQ(t.r, -EPERM);
	ASSERT_TRUE(strstr(t.reason, "53003") != NULL);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_CODE), 0);
	fake_core_free(fc);
}

/* A login whose device code was given; the first poll waiting. */
static void
device_started(struct fake_core *fc, struct fake_call *c)
{
	fake_core_login(fc, c, ALICE, ALICE_UID, 0);
	fake_core_settle(fc);
	fake_core_idp_answer(fc, FAKE_DEVICE, 200,
	    fake_core_device_body(fc, 900, 5), -1);
	fake_core_advance(fc, 5);
}

TEST(fallback_from_a_blocked_device_flow)
{
	struct fake_core *fc = fake_core_new(FALLBACK);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	device_started(fc, &c);
	ASSERT_STREQ(fake_core_field(&c, "method"), "device_code");
	fake_core_call_done(&c);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 400, CA_BLOCK, -1), 0);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_code(&c), "consent_pending");
	ASSERT_STREQ(fake_core_field(&c, "method"), "auth_code");
	ASSERT_TRUE(fake_core_field(&c, "signin_url") != NULL);
	ASSERT_TRUE(strstr(fake_core_field(&c, "message"), "blocks") != NULL);
	ASSERT_TRUE(fake_core_field(&c, "user_code") == NULL);
	fake_core_call_done(&c);
	fake_core_free(fc);

	/* Refused at its start (the devicecode endpoint says 53003). */
	fc = fake_core_new(FALLBACK);
	ASSERT_TRUE(fc != NULL);
	fake_core_login(fc, &c, ALICE, ALICE_UID, 0);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_DEVICE, 400, CA_BLOCK, -1), 0);
	ASSERT_STREQ(fake_core_field(&c, "method"), "auth_code");
	fake_core_call_done(&c);
	fake_core_free(fc);

	/* device_code alone: policy_blocked, as before. */
	fc = fake_core_new(NULL);
	ASSERT_TRUE(fc != NULL);
	device_started(fc, &c);
	fake_core_call_done(&c);
	fake_core_login(fc, &c, ALICE, ALICE_UID, 60);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 400, CA_BLOCK, -1), 0);
	ASSERT_STREQ(fake_core_code(&c), "policy_blocked");
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(a_user_who_does_not_finish_is_no_fallback)
{
	struct fake_core *fc = fake_core_new(FALLBACK);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	device_started(fc, &c);
	fake_core_call_done(&c);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 400,
		      "{\"error\":\"expired_token\",\"error_codes\":[70020]}",
		      -1),
	    0);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	/* A new device flow, not a code one. */
	ASSERT_TRUE(fake_core_field(&c, "method") == NULL ||
	    strcmp(fake_core_field(&c, "method"), "auth_code") != 0);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(an_unused_link_expires)
{
	struct fake_core *fc = fake_core_new(PASTE);
	char url[4096];
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(login_code_flow(fc, url, sizeof(url)), 0);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_code(&c), "consent_pending");
	fake_core_call_done(&c);
	fake_core_advance(fc, 901);
	ASSERT_EQ(fake_core_stat(fc, "device_flows_expired"), 1);
	fake_core_login_code(fc, &c, ALICE, ALICE_UID,
	    NATIVE "?code=C&state=abcdefghijklmnopqrstuvwxyz012345");
	ASSERT_STREQ(fake_core_code(&c), "consent_required");
	fake_core_call_done(&c);
	fake_core_free(fc);
}

static char cert_path[512], tok_path[512];
/* A federated token: {"exp":1900005000,...}, FAKE_T0 + 5000. */
#define FED_TOKEN                                                               \
	"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOiAxOTAwMDA1MDAwLCAiaXNzIjogImh0dHBzOi8v" \
	"azhzIiwgInN1YiI6ICJzeXN0ZW06c2VydmljZWFjY291bnQ6eDp5In0.c2ln"

static int
write_files(void)
{
	const char *dir = fixture_tmpdir("flow_code");
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509 *c = X509_new();
	FILE *f;
	int fd, ok;

	if (dir == NULL || k == NULL || c == NULL)
		return -1;
	snprintf(cert_path, sizeof(cert_path), "%s/client.pem", dir);
	snprintf(tok_path, sizeof(tok_path), "%s/token", dir);
	X509_set_pubkey(c, k);
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 3600);
	X509_sign(c, k, EVP_sha256());
	f = fopen(cert_path, "w");
	ok = f != NULL && PEM_write_X509(f, c) &&
	    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	if (f != NULL)
		fclose(f);
	X509_free(c);
	EVP_PKEY_free(k);
	if (!ok || chmod(cert_path, 0600) < 0)
		return -1;
	fd = open(tok_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, FED_TOKEN "\n", strlen(FED_TOKEN) + 1) < 0)
		return -1;
	close(fd);
	return 0;
}

/* A callback sign-in for alice; 0 or -1 (printed). */
static int
callback_sign_in(struct fake_core *fc, const char *want_cred)
{
	char url[4096], state[64], *az = NULL;
	struct secret *code = secret_from_str("CODE-CB");
	struct told t = { 0 };
	int ok;

	if (login_code_flow(fc, url, sizeof(url)) < 0 ||
	    broker_signin_link(fake_core_broker(fc), url + 35, &az, NULL,
		NULL) < 0) {
		secret_free(code);
		return -1;
	}
	param(az, "state", state, sizeof(state));
	free(az);
	ok = broker_signin_redeem(fake_core_broker(fc), state, code, NULL, NULL,
		 redeem_cb, &t) == 0;
	secret_free(code);
	fake_core_settle(fc);
	if (!ok ||
	    strstr(fake_core_idp_cred(fc, FAKE_CODE), want_cred) == NULL) {
		fprintf(stderr, "code redemption carries \"%s\", want %s\n",
		    fake_core_idp_cred(fc, FAKE_CODE), want_cred);
		return -1;
	}
	fake_core_idp_answer(fc, FAKE_CODE, 200,
	    token_body(fc, "alice@contoso.com"), -1);
	fake_core_advance(fc, 0);
	return t.n == 1 && t.r == 0 ? 0 : -1;
}

TEST(each_credential_on_the_confidential_grants)
{
	static const char *const method[] = { "secret", "certificate",
		"federated" };
	char conf[2048], pl[2048];
	const char *want[3] = { "client_secret=" FAKE_CLIENT_SECRET,
		"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
		"assertion-type%3Ajwt-bearer&client_assertion=eyJ",
		"&client_assertion=" FED_TOKEN };
	struct fake_core *fc;
	struct fake_call c;
	const char *a, *dot;
	size_t i, n;

	for (i = 0; i < 3; i++) {
		snprintf(conf, sizeof(conf),
		    "%sclient_auth = %s\n%s%s\n"
		    "[callback]\nredirect_uri = " CALLBACK_URI "\n",
		    PASTE, method[i],
		    i == 0     ? "client_secret_file = /etc/credd/s" :
			i == 1 ? "client_certificate_file = " :
				 "client_assertion_file = ",
		    i == 0     ? "" :
			i == 1 ? cert_path :
				 tok_path);
		fc = fake_core_new(conf);
		ASSERT_TRUE(fc != NULL);
		ASSERT_EQ(callback_sign_in(fc, want[i]), 0);
		/* Its refreshes carry the same kind of credential. */
		fake_core_advance(fc, 3601);
		fake_core_token(fc, &c, ALICE, ALICE_UID);
		fake_core_settle(fc);
		ASSERT_EQ(fake_core_idp_client(fc, FAKE_REFRESH), 1);
		ASSERT_TRUE(strstr(fake_core_idp_cred(fc, FAKE_REFRESH),
				want[i]) != NULL);
		if (i == 1) {
			a = strstr(fake_core_idp_cred(fc, FAKE_REFRESH),
			    "client_assertion=");
			ASSERT_TRUE(a != NULL);
			a = strchr(a, '.');
			ASSERT_TRUE(a != NULL && (dot = strchr(a + 1, '.')));
			n = 0;
			ASSERT_EQ(sodium_base642bin((unsigned char *)pl,
				      sizeof(pl) - 1, a + 1,
				      (size_t)(dot - a - 1), NULL, &n, NULL,
				      sodium_base64_VARIANT_URLSAFE_NO_PADDING),
			    0);
			pl[n] = '\0';
			ASSERT_TRUE(
			    strstr(pl,
				"\"aud\":\"https://login.microsoftonline."
				"com/" FAKE_TENANT
				"/oauth2/v2.0/token\"") != NULL);
		}
		ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200,
			      fake_core_token_body(fc, "AT-2", "RT-2", 3600,
				  NULL, NULL),
			      -1),
		    0);
		ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-2");
		fake_core_call_done(&c);
		if (i == 2) {
			/* The federated token file went stale: an admin's
			 * error, no grant sent, the consent kept. */
			fake_core_advance(fc, 5000);
			fake_core_token(fc, &c, ALICE, ALICE_UID);
			fake_core_settle(fc);
			ASSERT_STREQ(fake_core_code(&c), "idp_misconfigured");
			ASSERT_TRUE(strstr(fake_core_field(&c, "message"),
					"client_auth") != NULL);
			fake_core_call_done(&c);
			ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_REFRESH), 0);
			fake_core_status(fc, &c, ALICE, ALICE_UID);
			fake_core_settle(fc);
			ASSERT_STREQ(fake_core_field(&c, "state"), "ready");
			fake_core_call_done(&c);
		}
		fake_core_free(fc);
	}
}

int
main(void)
{
	if (sodium_init() < 0 || write_files() < 0)
		return 1;
	RUN(paste_back_signs_in_as_a_public_client);
	RUN(paste_refusals_and_replay);
	RUN(callback_signs_in_as_a_confidential_client);
	RUN(callback_error_ends_the_flow);
	RUN(cluster_callback_through_the_record);
	RUN(cluster_paste_through_the_record);
	RUN(fallback_from_a_blocked_device_flow);
	RUN(a_user_who_does_not_finish_is_no_fallback);
	RUN(each_credential_on_the_confidential_grants);
	RUN(an_unused_link_expires);
	TEST_MAIN_END();
}
