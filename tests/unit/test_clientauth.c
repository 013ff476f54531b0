/*
 * test_clientauth.c - credd/clientauth.c, what credd --check-config and
 * startup say about [entra] client_auth: nothing for none and secret, a
 * "not wired yet" note for a good certificate or federated token, the
 * loader's error (naming the file, never its bytes) for a bad one; and
 * the same checks for [offboarding]'s credential.
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

#include "clientauth.h"
#include "config.h"

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
	ASSERT_EQ(check(extra, 0, msg, sizeof(msg)), CLIENTAUTH_NOT_WIRED);
	ASSERT_TRUE(strstr(msg, "client_auth = certificate") != NULL);
	ASSERT_TRUE(strstr(msg, "no grant sends it yet") != NULL);
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
	    CLIENTAUTH_NOT_WIRED);
}

TEST(federated)
{
	char extra[1024], msg[512];

	snprintf(extra, sizeof(extra),
	    "client_auth = federated\nclient_assertion_file = %s\n", tok_path);
	/* exp 2000000000 in the token below. */
	ASSERT_EQ(check(extra, 1999999999, msg, sizeof(msg)),
	    CLIENTAUTH_NOT_WIRED);
	ASSERT_TRUE(strstr(msg, "client_auth = federated") != NULL);
	ASSERT_EQ(check(extra, 2000000000, msg, sizeof(msg)), -EKEYEXPIRED);
	ASSERT_TRUE(strstr(msg, "expired") != NULL);
	ASSERT_TRUE(strstr(msg, "eyJ") == NULL); /* never the token */
	snprintf(extra, sizeof(extra),
	    "client_auth = federated\nclient_assertion_file = %s.none\n",
	    tok_path);
	ASSERT_EQ(check(extra, 0, msg, sizeof(msg)), -ENOENT);
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
	RUN(offboarding);
	TEST_MAIN_END();
}
