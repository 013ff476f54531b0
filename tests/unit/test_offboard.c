/*
 * test_offboard.c - Graph's revokeSignInSessions with the [offboarding]
 * credential (credd/offboard.c) over a scripted transport on a fixed
 * clock: the client credentials form for each method (secret,
 * certificate assertion, federated assertion), the app token cached and
 * renewed, 403/404/401 classified, 429/5xx retried with a bound, the
 * user id checked, cancel and free with requests in flight, and no
 * secret in any why text.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "entra/secret.h"

#include "assertion.h"
#include "offboard.h"
#include "test.h"

#define TOKEN_URL "https://login.example/tenant/oauth2/v2.0/token"
#define GRAPH "https://graph.example"
#define OFF_ID "99999999-8888-7777-6666-555555555555"
#define SECRET "canary-offboard-secret-7f3a"
#define APP_TOKEN "canary-app-token-91bc"
#define OID "0a1b2c3d-0000-1111-2222-333344445555"

/* --- the scripted transport ---------------------------------------------- */

struct call {
	int is_used;
	int is_bearer;
	char url[512];
	char body[8192]; /* form, or the bearer token */
	offboard_http_cb *cb;
	void *arg;
};

struct timer {
	int is_used;
	int64_t due;
	offboard_timer_cb *cb;
	void *arg;
};

static struct fake {
	int64_t now;
	struct call calls[16];
	struct timer timers[16];
	int nforms, nbearers;
} F;

static int
fake_post(void *ctx, const char *url, const struct secret *s, int is_bearer,
    offboard_http_cb *cb, void *arg, void **req)
{
	size_t i;

	(void)ctx;
	for (i = 0; i < 16 && F.calls[i].is_used; i++)
		;
	if (i == 16)
		return -EAGAIN;
	F.calls[i].is_used = 1;
	F.calls[i].is_bearer = is_bearer;
	(void)snprintf(F.calls[i].url, sizeof(F.calls[i].url), "%s", url);
	(void)snprintf(F.calls[i].body, sizeof(F.calls[i].body), "%.*s",
	    (int)s->len, s->ptr);
	F.calls[i].cb = cb;
	F.calls[i].arg = arg;
	*req = &F.calls[i];
	if (is_bearer)
		F.nbearers++;
	else
		F.nforms++;
	return 0;
}

static int
fake_post_form(void *ctx, const char *url, const struct secret *form,
    offboard_http_cb *cb, void *arg, void **req)
{
	return fake_post(ctx, url, form, 0, cb, arg, req);
}

static int
fake_post_bearer(void *ctx, const char *url, const struct secret *token,
    offboard_http_cb *cb, void *arg, void **req)
{
	return fake_post(ctx, url, token, 1, cb, arg, req);
}

static void
fake_cancel(void *ctx, void **req)
{
	(void)ctx;
	((struct call *)*req)->is_used = 0;
	*req = NULL;
}

static int
fake_timer_start(void *ctx, int64_t sec, offboard_timer_cb *cb, void *arg,
    void **timer)
{
	size_t i;

	(void)ctx;
	for (i = 0; i < 16 && F.timers[i].is_used; i++)
		;
	if (i == 16)
		return -EAGAIN;
	F.timers[i] = (struct timer){ 1, F.now + sec, cb, arg };
	*timer = &F.timers[i];
	return 0;
}

static void
fake_timer_stop(void *ctx, void **timer)
{
	(void)ctx;
	((struct timer *)*timer)->is_used = 0;
	*timer = NULL;
}

static int64_t
fake_now(void *ctx)
{
	(void)ctx;
	return F.now;
}

static const struct offboard_ops fake_ops = {
	.post_form = fake_post_form,
	.post_bearer = fake_post_bearer,
	.cancel = fake_cancel,
	.timer_start = fake_timer_start,
	.timer_stop = fake_timer_stop,
	.now = fake_now,
};

/* Fire the timers due by now (and those they start that are due). */
static void
run_timers(void)
{
	size_t i;
	int fired;

	do {
		fired = 0;
		for (i = 0; i < 16; i++) {
			if (F.timers[i].is_used && F.timers[i].due <= F.now) {
				F.timers[i].is_used = 0;
				F.timers[i].cb(F.timers[i].arg);
				fired = 1;
			}
		}
	} while (fired);
}

static int
ntimers(void)
{
	int i, n = 0;

	for (i = 0; i < 16; i++)
		n += F.timers[i].is_used;
	return n;
}

/* The pending call of that kind (the first), or NULL. */
static struct call *
pending(int is_bearer)
{
	size_t i;

	for (i = 0; i < 16; i++)
		if (F.calls[i].is_used && F.calls[i].is_bearer == is_bearer)
			return &F.calls[i];
	return NULL;
}

/* Answer the pending call of that kind. */
static int
answer(int is_bearer, long status, const char *body, int64_t retry_after)
{
	struct call *c = pending(is_bearer);
	struct http_response resp = { 0 };
	struct secret *b = NULL;

	if (c == NULL)
		return -ENOENT;
	if (body != NULL)
		b = secret_from_str(body);
	resp.status = status;
	resp.body = b;
	resp.retry_after = retry_after;
	if (status == 0) {
		resp.error = -ECONNRESET;
		resp.error_msg = "connection reset";
	}
	c->is_used = 0;
	c->cb(c->arg, &resp);
	secret_free(b);
	return 0;
}

#define TOKEN_OK                                                                       \
	"{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"" APP_TOKEN \
	"\"}"

/* --- completions ---------------------------------------------------------- */

struct done {
	int ncalls;
	int r;
	char why[OFFBOARD_WHY_MAX];
};

static void
on_done(void *arg, int r, const char *why)
{
	struct done *d = arg;

	d->ncalls++;
	d->r = r;
	(void)snprintf(d->why, sizeof(d->why), "%s", why);
}

static struct offboard *
new_secret_ob(void)
{
	struct offboard_cred cred = { .client_id = OFF_ID };
	struct offboard *ob = NULL;

	memset(&F, 0, sizeof(F));
	F.now = 1700000000;
	cred.secret = secret_from_str(SECRET);
	if (offboard_new(&fake_ops, NULL, TOKEN_URL, GRAPH, &cred, &ob) < 0)
		return NULL;
	return ob;
}

static int
why_is_clean(const char *why)
{
	return strstr(why, SECRET) == NULL && strstr(why, APP_TOKEN) == NULL &&
	    strstr(why, "eyJ") == NULL;
}

/* --- tests ---------------------------------------------------------------- */

TEST(test_secret_revoke_and_token_cache)
{
	struct offboard *ob = new_secret_ob();
	struct offboard_req *q = NULL;
	struct done d = { 0 }, d2 = { 0 };
	struct call *c;

	ASSERT_TRUE(ob != NULL);
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d, &q), 0);
	ASSERT_TRUE(q != NULL);
	ASSERT_EQ(d.ncalls, 0); /* never inside offboard_revoke */
	run_timers();
	c = pending(0);
	ASSERT_TRUE(c != NULL);
	ASSERT_STREQ(c->url, TOKEN_URL);
	ASSERT_TRUE(strstr(c->body, "grant_type=client_credentials") != NULL);
	ASSERT_TRUE(strstr(c->body, "client_id=" OFF_ID) != NULL);
	ASSERT_TRUE(
	    strstr(c->body, "scope=https%3A%2F%2Fgraph.example%2F.default") !=
	    NULL);
	ASSERT_TRUE(strstr(c->body, "client_secret=" SECRET) != NULL);
	ASSERT_TRUE(strstr(c->body, "client_assertion") == NULL);
	ASSERT_EQ(answer(0, 200, TOKEN_OK, -1), 0);
	c = pending(1);
	ASSERT_TRUE(c != NULL);
	ASSERT_STREQ(c->url, GRAPH "/v1.0/users/" OID "/revokeSignInSessions");
	ASSERT_STREQ(c->body, APP_TOKEN);
	ASSERT_EQ(answer(1, 200, "{\"value\":true}", -1), 0);
	ASSERT_EQ(d.ncalls, 1);
	ASSERT_EQ(d.r, 0);
	ASSERT_EQ(offboard_inflight(ob), 0);
	ASSERT_TRUE(offboard_has_token(ob));

	/* The cached token serves the next revoke: no second grant. */
	F.now += 3000;
	ASSERT_EQ(offboard_revoke(ob, "ada@contoso.example", on_done, &d2, &q),
	    0);
	run_timers();
	ASSERT_TRUE(pending(0) == NULL);
	c = pending(1);
	ASSERT_TRUE(c != NULL);
	ASSERT_STREQ(c->url,
	    GRAPH "/v1.0/users/ada@contoso.example/revokeSignInSessions");
	ASSERT_EQ(answer(1, 204, NULL, -1), 0);
	ASSERT_EQ(d2.r, 0);
	ASSERT_EQ(F.nforms, 1);

	/* Within OFFBOARD_TOKEN_MARGIN of its expiry: a new grant. */
	F.now += 3599 - 3000 - OFFBOARD_TOKEN_MARGIN + 1;
	memset(&d2, 0, sizeof(d2));
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d2, &q), 0);
	run_timers();
	ASSERT_TRUE(pending(0) != NULL);
	ASSERT_EQ(answer(0, 200, TOKEN_OK, -1), 0);
	ASSERT_EQ(answer(1, 204, NULL, -1), 0);
	ASSERT_EQ(d2.r, 0);
	ASSERT_EQ(F.nforms, 2);
	offboard_free(ob);
}

TEST(test_graph_refusals)
{
	struct offboard *ob = new_secret_ob();
	struct offboard_req *q = NULL;
	struct done d = { 0 };

	ASSERT_TRUE(ob != NULL);
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d, &q), 0);
	run_timers();
	ASSERT_EQ(answer(0, 200, TOKEN_OK, -1), 0);
	ASSERT_EQ(answer(1, 403,
		      "{\"error\":{\"code\":\"Authorization_RequestDenied\","
		      "\"message\":\"Insufficient privileges " APP_TOKEN "\"}}",
		      -1),
	    0);
	ASSERT_EQ(d.r, -EACCES);
	ASSERT_TRUE(strstr(d.why, "User.RevokeSessions.All") != NULL);
	ASSERT_TRUE(strstr(d.why, "403 Authorization_RequestDenied") != NULL);
	ASSERT_TRUE(why_is_clean(d.why));
	/* A 403 drops the app token: a granted permission needs a new one. */
	ASSERT_TRUE(!offboard_has_token(ob));

	memset(&d, 0, sizeof(d));
	ASSERT_EQ(offboard_revoke(ob, "gone@contoso.example", on_done, &d, &q),
	    0);
	run_timers();
	ASSERT_EQ(answer(0, 200, TOKEN_OK, -1), 0);
	ASSERT_EQ(answer(1, 404,
		      "{\"error\":{\"code\":\"Request_ResourceNotFound\"}}",
		      -1),
	    0);
	ASSERT_EQ(d.r, -ENOENT);
	ASSERT_TRUE(strstr(d.why, "'gone@contoso.example'") != NULL);
	ASSERT_TRUE(strstr(d.why, "Request_ResourceNotFound") != NULL);

	/* A code that is not a plain word is left out. */
	memset(&d, 0, sizeof(d));
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d, &q), 0);
	run_timers();
	ASSERT_EQ(answer(1, 400, "{\"error\":{\"code\":\"a b\\u001b[31m\"}}",
		      -1),
	    0);
	ASSERT_EQ(d.r, -EIO);
	ASSERT_STREQ(d.why, "Microsoft Graph refused the request (400)");
	offboard_free(ob);
}

TEST(test_retry_bounded)
{
	struct offboard *ob = new_secret_ob();
	struct offboard_req *q = NULL;
	struct done d = { 0 };

	ASSERT_TRUE(ob != NULL);
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d, &q), 0);
	run_timers();
	/* The grant: a 503, then success after the backoff. */
	ASSERT_EQ(answer(0, 503, NULL, -1), 0);
	ASSERT_TRUE(pending(0) == NULL);
	ASSERT_EQ(ntimers(), 1);
	F.now += 1;
	run_timers();
	ASSERT_EQ(answer(0, 200, TOKEN_OK, -1), 0);
	/* Graph: 429 with Retry-After 7, then 429 with 3600 (capped). */
	ASSERT_EQ(answer(1, 429, NULL, 7), 0);
	F.now += 6;
	run_timers();
	ASSERT_TRUE(pending(1) == NULL);
	F.now += 1;
	run_timers();
	ASSERT_EQ(answer(1, 429, NULL, 3600), 0);
	F.now += OFFBOARD_RETRY_MAX;
	run_timers();
	ASSERT_TRUE(pending(1) != NULL);
	ASSERT_EQ(answer(1, 200, "{\"value\":true}", -1), 0);
	ASSERT_EQ(d.r, 0);

	/* Three 5xx (or network failures) and it gives up. */
	memset(&d, 0, sizeof(d));
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d, &q), 0);
	run_timers();
	ASSERT_EQ(answer(1, 502, NULL, -1), 0);
	F.now += 1;
	run_timers();
	ASSERT_EQ(answer(1, 0, NULL, -1), 0);
	F.now += 2;
	run_timers();
	ASSERT_EQ(d.ncalls, 0);
	ASSERT_EQ(answer(1, 500, NULL, -1), 0);
	ASSERT_EQ(d.ncalls, 1);
	ASSERT_EQ(d.r, -EAGAIN);
	ASSERT_STREQ(d.why, "Microsoft Graph still answers 500 after 3 tries");
	ASSERT_EQ(ntimers(), 0);
	offboard_free(ob);
}

TEST(test_token_refused)
{
	struct offboard *ob = new_secret_ob();
	struct offboard_req *q1 = NULL, *q2 = NULL;
	struct done d1 = { 0 }, d2 = { 0 };

	ASSERT_TRUE(ob != NULL);
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d1, &q1), 0);
	ASSERT_EQ(offboard_revoke(ob, "b@contoso.example", on_done, &d2, &q2),
	    0);
	run_timers();
	ASSERT_EQ(F.nforms, 1); /* one grant for both */
	ASSERT_EQ(answer(0, 401,
		      "{\"error\":\"invalid_client\",\"error_description\":"
		      "\"AADSTS7000215: Invalid client secret " SECRET "\","
		      "\"error_codes\":[7000215]}",
		      -1),
	    0);
	ASSERT_EQ(d1.r, -EKEYREJECTED);
	ASSERT_EQ(d2.r, -EKEYREJECTED);
	ASSERT_TRUE(strstr(d1.why, "offboarding app credential") != NULL);
	ASSERT_TRUE(strstr(d1.why, "7000215") != NULL);
	ASSERT_TRUE(why_is_clean(d1.why));
	ASSERT_EQ(offboard_inflight(ob), 0);
	ASSERT_TRUE(!offboard_has_token(ob));
	offboard_free(ob);
}

TEST(test_graph_401_regrant_once)
{
	struct offboard *ob = new_secret_ob();
	struct offboard_req *q = NULL;
	struct done d = { 0 };

	ASSERT_TRUE(ob != NULL);
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d, &q), 0);
	run_timers();
	ASSERT_EQ(answer(0, 200, TOKEN_OK, -1), 0);
	ASSERT_EQ(answer(1, 401, NULL, -1), 0);
	ASSERT_EQ(d.ncalls, 0);
	ASSERT_EQ(answer(0, 200, TOKEN_OK, -1), 0); /* a fresh grant */
	ASSERT_EQ(answer(1, 401, NULL, -1), 0);
	ASSERT_EQ(d.r, -EKEYREJECTED);
	ASSERT_EQ(F.nforms, 2);
	offboard_free(ob);
}

TEST(test_bad_ids)
{
	static const char *const bad[] = { "", "a/b", "a?b", "a#b", "a%2Fb",
		"a b", "a\nb", "..", "\xc3\xa9@x", "a\\b" };
	struct offboard *ob = new_secret_ob();
	struct offboard_req *q = (struct offboard_req *)1;
	struct done d = { 0 };
	char longid[OFFBOARD_ID_MAX + 2];
	size_t i;

	ASSERT_TRUE(ob != NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(offboard_revoke(ob, bad[i], on_done, &d, &q),
		    -EINVAL);
		ASSERT_TRUE(q == NULL);
	}
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	ASSERT_EQ(offboard_revoke(ob, longid, on_done, &d, &q), -EINVAL);
	ASSERT_EQ(offboard_inflight(ob), 0);
	ASSERT_EQ(d.ncalls, 0);
	offboard_free(ob);
}

TEST(test_cancel_and_free)
{
	struct offboard *ob = new_secret_ob();
	struct offboard_req *q1 = NULL, *q2 = NULL, *q3 = NULL;
	struct done d = { 0 };

	ASSERT_TRUE(ob != NULL);
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d, &q1), 0);
	offboard_cancel(ob, &q1); /* still on its start timer */
	ASSERT_TRUE(q1 == NULL);
	ASSERT_EQ(ntimers(), 0);
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d, &q2), 0);
	ASSERT_EQ(offboard_revoke(ob, "x@y.example", on_done, &d, &q3), 0);
	run_timers();
	ASSERT_TRUE(pending(0) != NULL);
	offboard_cancel(ob, &q2); /* waiting for the grant */
	ASSERT_EQ(offboard_inflight(ob), 1);
	offboard_free(ob); /* the grant and q3 go, no callback */
	ASSERT_TRUE(pending(0) == NULL);
	ASSERT_EQ(d.ncalls, 0);
	offboard_cancel(NULL, &q3);
	offboard_free(NULL);
}

TEST(test_new_checks)
{
	struct offboard_cred cred = { .client_id = OFF_ID };
	struct offboard *ob = (struct offboard *)1;

	/* No credential, or two. */
	ASSERT_EQ(offboard_new(&fake_ops, NULL, TOKEN_URL, GRAPH, &cred, &ob),
	    -EINVAL);
	ASSERT_TRUE(ob == NULL);
	cred.secret = secret_from_str(SECRET);
	cred.assertion_file = "/nonexistent";
	ASSERT_EQ(offboard_new(&fake_ops, NULL, TOKEN_URL, GRAPH, &cred, &ob),
	    -EINVAL);
	ASSERT_TRUE(cred.secret == NULL); /* taken and freed */
}

/* Write text to a private file in dir; returns the path. */
static const char *
put_private(const char *dir, const char *name, const char *text)
{
	const char *path = fixture_path(dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	return path;
}

TEST(test_federated_form)
{
	const char *dir = fixture_tmpdir("offboard");
	/* header {"alg":"none"}, payload {"exp":4102444800}: not stale. */
	const char *jwt = "eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln";
	struct offboard_cred cred = { .client_id = OFF_ID };
	struct offboard *ob = NULL;
	struct offboard_req *q = NULL;
	struct done d = { 0 };
	struct call *c;

	ASSERT_TRUE(dir != NULL);
	memset(&F, 0, sizeof(F));
	F.now = 1700000000;
	cred.assertion_file = put_private(dir, "token", jwt);
	ASSERT_EQ(offboard_new(&fake_ops, NULL, TOKEN_URL, GRAPH, &cred, &ob),
	    0);
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d, &q), 0);
	run_timers();
	c = pending(0);
	ASSERT_TRUE(c != NULL);
	ASSERT_TRUE(strstr(c->body, "client_secret") == NULL);
	ASSERT_TRUE(
	    strstr(c->body, "client_assertion_type=urn%3Aietf") != NULL);
	ASSERT_TRUE(
	    strstr(c->body, "client_assertion=eyJhbGciOiJub25lIn0") != NULL);
	ASSERT_EQ(answer(0, 200, TOKEN_OK, -1), 0);
	ASSERT_EQ(answer(1, 204, NULL, -1), 0);
	ASSERT_EQ(d.r, 0);

	/* The file gone: the revoke fails with the file named, no token. */
	ASSERT_EQ(unlink(cred.assertion_file), 0);
	F.now += 4000; /* the cached token is past its margin */
	memset(&d, 0, sizeof(d));
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d, &q), 0);
	run_timers();
	ASSERT_EQ(d.r, -EKEYREJECTED);
	ASSERT_TRUE(strstr(d.why, "token") != NULL);
	ASSERT_TRUE(pending(0) == NULL);
	offboard_free(ob);
}

TEST(test_certificate_form)
{
	const char *dir = fixture_tmpdir("offboard");
	struct offboard_cred cred = { .client_id = OFF_ID };
	struct offboard *ob = NULL;
	struct offboard_req *q = NULL;
	struct done d = { 0 };
	char err[256];
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	X509_NAME *n;
	BIO *b = BIO_new(BIO_s_mem());
	char *pem, *text;
	long len;
	struct call *c;

	ASSERT_TRUE(dir != NULL && k != NULL && x != NULL && b != NULL);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"offboard", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_sign(x, k, EVP_sha256());
	PEM_write_bio_X509(b, x);
	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	len = BIO_get_mem_data(b, &pem);
	text = strndup(pem, (size_t)len);
	ASSERT_TRUE(text != NULL);
	ASSERT_EQ(assertion_key_load(put_private(dir, "cert.pem", text),
		      &cred.key, err, sizeof(err)),
	    0);
	free(text);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(k);

	memset(&F, 0, sizeof(F));
	F.now = 1700000000;
	ASSERT_EQ(offboard_new(&fake_ops, NULL, TOKEN_URL, GRAPH, &cred, &ob),
	    0);
	ASSERT_TRUE(cred.key == NULL); /* taken */
	ASSERT_EQ(offboard_revoke(ob, OID, on_done, &d, &q), 0);
	run_timers();
	c = pending(0);
	ASSERT_TRUE(c != NULL);
	ASSERT_TRUE(strstr(c->body, "client_secret") == NULL);
	/* A signed JWT: base64url of {"alg":"PS256",...}. */
	ASSERT_TRUE(strstr(c->body, "client_assertion=eyJ") != NULL);
	ASSERT_EQ(answer(0, 200, TOKEN_OK, -1), 0);
	ASSERT_EQ(answer(1, 204, NULL, -1), 0);
	ASSERT_EQ(d.r, 0);
	offboard_free(ob);
}

int
main(void)
{
	RUN(test_secret_revoke_and_token_cache);
	RUN(test_graph_refusals);
	RUN(test_retry_bounded);
	RUN(test_token_refused);
	RUN(test_graph_401_regrant_once);
	RUN(test_bad_ids);
	RUN(test_cancel_and_free);
	RUN(test_new_checks);
	RUN(test_federated_form);
	RUN(test_certificate_form);
	TEST_MAIN_END();
}
