/*
 * test_clientauth.c - credd/clientauth.c: what credd --check-config and
 * startup say about [entra] client_auth (nothing for a good credential,
 * the loader's error, naming the file and never its bytes, for a bad
 * one), and how a confidential grant's form is decorated: the secret, a
 * fresh assertion per request (aud = the token endpoint), the federated
 * token re-read per request, and a clear admin error for a stale one.
 * The same checks for [offboarding]'s credential. Also times one signed
 * assertion (printed, not asserted).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "test.h"

#include <sodium.h>
#include <time.h>

#include "entra/secret.h"

#include "clientauth.h"
#include "config.h"

#define TOKEN_URL                                                              \
	"https://login.microsoftonline.com/"                                   \
	"11111111-2222-3333-4444-555555555555/oauth2/v2.0/token"

#define BASE                                                                   \
	"[entra]\n"                                                            \
	"tenant = 11111111-2222-3333-4444-555555555555\n"                      \
	"client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n"                   \
	"[scopes]\n"                                                           \
	"storage = https://storage.azure.com/.default\n"                       \
	"default = storage\n"                                                  \
	"[entra]\n"

static const char *dir;
static char cert_path[512], wide_path[512], tok_path[512];

static void
write_client_pem(const char *path, mode_t mode)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509 *c = X509_new();
	FILE *f;

	X509_set_pubkey(c, k);
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 3600);
	X509_sign(c, k, EVP_sha256());
	f = fopen(path, "w");
	if (f == NULL)
		abort();
	PEM_write_X509(f, c);
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	if (chmod(path, mode) < 0)
		abort();
	X509_free(c);
	EVP_PKEY_free(k);
}

static int
check(const char *extra, int64_t now, char *msg, size_t msgsz)
{
	char text[2048], err[512];
	struct config *cf = NULL;
	int r;

	snprintf(text, sizeof(text), "%s%s", BASE, extra);
	r = config_parse("t.conf", text, strlen(text), &cf, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "parse: %s\n", err);
		return -999;
	}
	r = clientauth_check(cf, now, msg, msgsz);
	config_free(cf);
	return r;
}

TEST(none_and_secret_say_nothing)
{
	char msg[512];

	ASSERT_EQ(check("timeout = 10\n", 0, msg, sizeof(msg)), 0);
	ASSERT_STREQ(msg, "");
	/* The secret file is read at startup, not here. */
	ASSERT_EQ(check("client_secret_file = /nonexistent\n", 0, msg,
		      sizeof(msg)),
	    0);
}

TEST(certificate)
{
	char extra[1024], msg[512];

	snprintf(extra, sizeof(extra),
	    "client_auth = certificate\nclient_certificate_file = %s\n",
	    cert_path);
	ASSERT_EQ(check(extra, 0, msg, sizeof(msg)), 0);
	ASSERT_STREQ(msg, "");
	snprintf(extra, sizeof(extra),
	    "client_auth = certificate\nclient_certificate_file = %s\n",
	    wide_path);
	ASSERT_EQ(check(extra, 0, msg, sizeof(msg)), -EPERM);
	ASSERT_TRUE(strstr(msg, wide_path) != NULL);
	ASSERT_TRUE(strstr(msg, "PRIVATE") == NULL);
	/* A systemd credential is checked at startup, where it exists. */
	ASSERT_EQ(check("client_auth = certificate\n"
			"client_certificate_file = %d/client.pem\n",
		      0, msg, sizeof(msg)),
	    0);
}

TEST(federated)
{
	char extra[1024], msg[512];

	snprintf(extra, sizeof(extra),
	    "client_auth = federated\nclient_assertion_file = %s\n", tok_path);
	/* exp 2000000000 in the token below. */
	ASSERT_EQ(check(extra, 1999999999, msg, sizeof(msg)), 0);
	ASSERT_EQ(check(extra, 2000000000, msg, sizeof(msg)), -EKEYEXPIRED);
	ASSERT_TRUE(strstr(msg, "expired") != NULL);
	ASSERT_TRUE(strstr(msg, "eyJ") == NULL); /* never the token */
	snprintf(extra, sizeof(extra),
	    "client_auth = federated\nclient_assertion_file = %s.none\n",
	    tok_path);
	ASSERT_EQ(check(extra, 0, msg, sizeof(msg)), -ENOENT);
}

static struct config *
conf(const char *extra)
{
	char text[2048], err[512];
	struct config *cf = NULL;

	snprintf(text, sizeof(text), "%s%s", BASE, extra);
	if (config_parse("t.conf", text, strlen(text), &cf, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "parse: %s\n", err);
		abort();
	}
	return cf;
}

/* A form "a=b", decorated by ca at now; its text in out. */
static int
decorate(const struct clientauth *ca, int64_t now, char *out, size_t outsz,
    char *msg, size_t msgsz)
{
	struct secret *form = secret_from_str("grant_type=refresh_token");
	int r;

	r = clientauth_decorate(ca, TOKEN_URL, now, &form, msg, msgsz);
	snprintf(out, outsz, "%s", form != NULL ? form->ptr : "(null)");
	secret_free(form);
	return r;
}

TEST(decorate_none_and_secret)
{
	struct clientauth *ca = NULL;
	struct config *cf = conf("timeout = 10\n");
	struct secret *s = secret_from_str("s3cr&t");
	char form[4096], msg[512];

	ASSERT_EQ(clientauth_new(cf, &ca, msg, sizeof(msg)), 0);
	ASSERT_TRUE(!clientauth_is_configured(ca));
	ASSERT_EQ(decorate(ca, 0, form, sizeof(form), msg, sizeof(msg)), 0);
	ASSERT_STREQ(form, "grant_type=refresh_token");
	ASSERT_EQ(decorate(NULL, 0, form, sizeof(form), msg, sizeof(msg)), 0);
	clientauth_free(ca);
	config_free(cf);

	cf = conf("client_secret_file = /nonexistent\n");
	ASSERT_EQ(clientauth_new(cf, &ca, msg, sizeof(msg)), 0);
	ASSERT_TRUE(clientauth_is_configured(ca));
	/* The secret was never read: an admin error, not an empty secret. */
	ASSERT_EQ(decorate(ca, 0, form, sizeof(form), msg, sizeof(msg)),
	    -EKEYREJECTED);
	clientauth_set_secret(ca, s);
	ASSERT_EQ(decorate(ca, 0, form, sizeof(form), msg, sizeof(msg)), 0);
	ASSERT_STREQ(form, "grant_type=refresh_token&client_secret=s3cr%26t");
	clientauth_free(ca);
	config_free(cf);
	secret_free(s);
}

/* The JSON payload of the assertion in form (base64url decoded). */
static void
assertion_payload(const char *form, char *out, size_t outsz)
{
	const char *a = strstr(form, "client_assertion=");
	const char *p, *e;
	size_t n = 0;

	out[0] = '\0';
	if (a == NULL)
		return;
	p = strchr(a, '.');
	if (p == NULL || (e = strchr(p + 1, '.')) == NULL)
		return;
	p++;
	if (sodium_base642bin((unsigned char *)out, outsz - 1, p,
		(size_t)(e - p), NULL, &n, NULL,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING) < 0)
		n = 0;
	out[n] = '\0';
}

TEST(decorate_certificate)
{
	struct clientauth *ca = NULL;
	struct config *cf;
	char extra[1024], form[8192], form2[8192], msg[512], pl[2048];
	struct timespec t0, t1;
	int i, n = 20;

	snprintf(extra, sizeof(extra),
	    "client_auth = certificate\nclient_certificate_file = %s\n",
	    cert_path);
	cf = conf(extra);
	ASSERT_EQ(clientauth_new(cf, &ca, msg, sizeof(msg)), 0);
	ASSERT_EQ(decorate(ca, 1900000000, form, sizeof(form), msg,
		      sizeof(msg)),
	    0);
	ASSERT_TRUE(
	    strstr(form,
		"client_assertion_type=urn%3Aietf%3Aparams"
		"%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer") != NULL);
	ASSERT_TRUE(strstr(form, "client_secret") == NULL);
	assertion_payload(form, pl, sizeof(pl));
	ASSERT_TRUE(strstr(pl, "\"aud\":\"" TOKEN_URL "\"") != NULL);
	ASSERT_TRUE(strstr(pl, "\"iss\":\"aaaaaaaa-bbbb") != NULL);
	ASSERT_TRUE(strstr(pl, "\"exp\":1900000300") != NULL);
	/* A fresh one per request (its own jti). */
	ASSERT_EQ(decorate(ca, 1900000000, form2, sizeof(form2), msg,
		      sizeof(msg)),
	    0);
	ASSERT_TRUE(strcmp(form, form2) != 0);

	/* The cost of one signed assertion (PS256, 2048-bit key). */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++)
		ASSERT_EQ(decorate(ca, 1900000000, form2, sizeof(form2), msg,
			      sizeof(msg)),
		    0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# one signed assertion + form: %.0f us (mean of %d)\n",
	    ((double)(t1.tv_sec - t0.tv_sec) * 1e6 +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e3) /
		n,
	    n);
	clientauth_free(ca);
	config_free(cf);
}

TEST(decorate_federated)
{
	struct clientauth *ca = NULL;
	struct config *cf;
	char extra[1024], form[8192], msg[512];

	snprintf(extra, sizeof(extra),
	    "client_auth = federated\nclient_assertion_file = %s\n", tok_path);
	cf = conf(extra);
	ASSERT_EQ(clientauth_new(cf, &ca, msg, sizeof(msg)), 0);
	ASSERT_EQ(decorate(ca, 1999999999, form, sizeof(form), msg,
		      sizeof(msg)),
	    0);
	ASSERT_TRUE(strstr(form,
			"&client_assertion=eyJhbGciOiJSUzI1NiJ9."
			"eyJleHAiOjIwMDAwMDAwMDB9.c2ln") != NULL);
	/* Stale: an admin error naming the file, never the token; the form
	 * is left for the caller to free. */
	ASSERT_EQ(decorate(ca, 2000000000, form, sizeof(form), msg,
		      sizeof(msg)),
	    -EKEYREJECTED);
	ASSERT_TRUE(strstr(msg, tok_path) != NULL);
	ASSERT_TRUE(strstr(msg, "eyJ") == NULL);
	ASSERT_TRUE(strstr(form, "client_assertion") == NULL);
	/* The method needs a restart; the path does not. */
	config_free(cf);
	cf = conf("timeout = 10\n");
	ASSERT_EQ(clientauth_set_config(ca, cf), -EINVAL);
	config_free(cf);
	snprintf(extra, sizeof(extra),
	    "client_auth = federated\nclient_assertion_file = %s.none\n",
	    tok_path);
	cf = conf(extra);
	ASSERT_EQ(clientauth_set_config(ca, cf), 0);
	config_free(cf);
	ASSERT_EQ(decorate(ca, 0, form, sizeof(form), msg, sizeof(msg)),
	    -EKEYREJECTED);
	clientauth_free(ca);
}

/* [offboarding]'s credential, as --check-config sees it (issue 17). */
static int
check_off(const char *extra, int64_t now, char *msg, size_t msgsz)
{
	char text[2048], err[512];
	struct config *cf = NULL;
	int r;

	snprintf(text, sizeof(text),
	    "%s[offboarding]\nclient_id = "
	    "99999999-8888-7777-6666-555555555555\n%s",
	    BASE, extra);
	r = config_parse("t.conf", text, strlen(text), &cf, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "parse: %s\n", err);
		return -999;
	}
	r = clientauth_check_offboarding(cf, now, msg, msgsz);
	config_free(cf);
	return r;
}

TEST(offboarding)
{
	char extra[1024], msg[512];

	/* Off, or a secret (read at startup): nothing to say. */
	ASSERT_EQ(check("timeout = 10\n", 0, msg, sizeof(msg)), 0);
	ASSERT_EQ(check_off("client_secret_file = /nonexistent\n", 0, msg,
		      sizeof(msg)),
	    0);
	snprintf(extra, sizeof(extra), "client_certificate_file = %s\n",
	    cert_path);
	ASSERT_EQ(check_off(extra, 0, msg, sizeof(msg)), 0);
	snprintf(extra, sizeof(extra), "client_certificate_file = %s\n",
	    wide_path);
	ASSERT_EQ(check_off(extra, 0, msg, sizeof(msg)), -EPERM);
	ASSERT_TRUE(strstr(msg, wide_path) != NULL);
	ASSERT_TRUE(strstr(msg, "PRIVATE") == NULL);
	snprintf(extra, sizeof(extra), "client_assertion_file = %s\n",
	    tok_path);
	ASSERT_EQ(check_off(extra, 1999999999, msg, sizeof(msg)), 0);
	ASSERT_EQ(check_off(extra, 2000000000, msg, sizeof(msg)), -EKEYEXPIRED);
	ASSERT_TRUE(strstr(msg, "eyJ") == NULL);
}

int
main(void)
{
	/* {"exp":2000000000} */
	static const char tok[] = "eyJhbGciOiJSUzI1NiJ9."
				  "eyJleHAiOjIwMDAwMDAwMDB9.c2ln\n";
	int fd;

	dir = fixture_tmpdir("clientauth");
	if (dir == NULL)
		return 1;
	snprintf(cert_path, sizeof(cert_path), "%s/client.pem", dir);
	snprintf(wide_path, sizeof(wide_path), "%s/wide.pem", dir);
	snprintf(tok_path, sizeof(tok_path), "%s/token", dir);
	write_client_pem(cert_path, 0600);
	write_client_pem(wide_path, 0644);
	fd = open(tok_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, tok, sizeof(tok) - 1) < 0)
		return 1;
	close(fd);

	RUN(none_and_secret_say_nothing);
	RUN(certificate);
	RUN(federated);
	RUN(decorate_none_and_secret);
	RUN(decorate_certificate);
	RUN(decorate_federated);
	RUN(offboarding);
	TEST_MAIN_END();
}
