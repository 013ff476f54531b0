/*
 * test_msi_parse.c - the SDK endpoint's pure request checks
 * (credd/msi_parse.c): both request shapes accepted with their scope,
 * each refusal with its status, code and audit reason, the order of the
 * checks, the Host check, duplicated parameters, the resource limits
 * and allow-list, and the resource to scope mapping. Regression: a
 * parameter repeated in another case ("resource" and "Resource") is a
 * duplicate (MHD's lookup matches names in any case).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "msi_parse.h"
#include "test.h"

#define PORT 50342

static const char conf_text[] =
    "[entra]\n"
    "authority = https://127.0.0.1:8443\n"
    "tenant = 72f988bf-86f1-41af-91ab-2d7cd011db47\n"
    "client_id = 04b07795-8ddb-461a-bbee-02f9e1bf7b46\n"
    "[scopes]\n"
    "storage = https://storage.azure.com/.default\n"
    "default = storage\n"
    "[server]\n"
    "socket = /tmp/run/credd.sock\n"
    "[store]\n"
    "backend = file\n"
    "path = /tmp/state\n"
    "key_file = /tmp/etc/credd.keys\n"
    "[msi]\n"
    "listen = 127.0.0.1:50342\n"
    "resources = https://storage.azure.com https://storage.azure.com/ "
    "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d\n";

static struct config *
conf(int imds)
{
	char text[2048], err[256];
	struct config *cf = NULL;
	int n;

	n = snprintf(text, sizeof(text), "%simds = %s\n", conf_text,
	    imds ? "yes" : "no");
	if (config_parse("t.conf", text, (size_t)n, &cf, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "config: %s\n", err);
		return NULL;
	}
	return cf;
}

static struct msi_request
app(void)
{
	struct msi_request in = { 0 };

	in.url = "/msi/token";
	in.method = "GET";
	in.port = PORT;
	in.host = "127.0.0.1:50342";
	in.identity = "secret";
	in.api_version = "2019-08-01";
	in.resource = "https://storage.azure.com";
	return in;
}

static struct msi_request
imds(void)
{
	struct msi_request in = app();

	in.url = "/metadata/identity/oauth2/token";
	in.identity = NULL;
	in.metadata = "true";
	in.api_version = "2018-02-01";
	return in;
}

TEST(test_accepted)
{
	struct config *cf = conf(1);
	struct msi_request in = app();
	struct msi_parsed p;

	ASSERT_TRUE(cf != NULL);
	ASSERT_EQ(msi_parse_request(&in, cf, &p), 0);
	ASSERT_EQ(p.is_imds, 0);
	ASSERT_STREQ(p.identity, "secret");
	ASSERT_STREQ(p.resource, "https://storage.azure.com");
	ASSERT_STREQ(p.scope, "https://storage.azure.com/.default");

	in = imds();
	in.url = "/metadata/identity/oauth2/token/";
	in.metadata = "TRUE";
	in.resource = "https://storage.azure.com/";
	ASSERT_EQ(msi_parse_request(&in, cf, &p), 0);
	ASSERT_EQ(p.is_imds, 1);
	ASSERT_TRUE(p.identity == NULL);
	ASSERT_STREQ(p.scope, "https://storage.azure.com//.default");

	in.resource = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";
	ASSERT_EQ(msi_parse_request(&in, cf, &p), 0);
	ASSERT_STREQ(p.scope, "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default");
	config_free(cf);
}

#define REFUSED(in, cf, v, st, code, aud)                                      \
	do {                                                                   \
		struct msi_parsed p_;                                          \
		ASSERT_EQ(msi_parse_request(&(in), (cf), &p_), -1);            \
		ASSERT_EQ(p_.v.status, (st));                                  \
		ASSERT_STREQ(p_.v.error, (code));                              \
		ASSERT_TRUE(p_.v.desc != NULL);                                \
		if ((aud) == NULL)                                             \
			ASSERT_TRUE(p_.v.audit == NULL);                       \
		else                                                           \
			ASSERT_STREQ(p_.v.audit, (aud));                       \
	} while (0)

TEST(test_refusals_before_proof)
{
	struct config *cf = conf(1), *noimds = conf(0);
	struct msi_request in;

	ASSERT_TRUE(cf != NULL && noimds != NULL);
	in = app();
	in.url = "/msi/token/";
	REFUSED(in, cf, pre, 404, "not_found", NULL);
	in = imds();
	REFUSED(in, noimds, pre, 404, "not_found", NULL);
	in = app();
	in.method = "POST";
	REFUSED(in, cf, pre, 405, "invalid_request", NULL);
	in = app();
	msi_scan_header(&in.scan, "x-forwarded-for");
	REFUSED(in, cf, pre, 403, "forbidden", "proxy or browser headers");
	in = app();
	msi_scan_header(&in.scan, "ORIGIN");
	REFUSED(in, cf, pre, 403, "forbidden", "proxy or browser headers");
	in = app();
	in.host = "evil.example:50342";
	REFUSED(in, cf, pre, 403, "forbidden", "Host is not loopback");
	in = app();
	in.has_body = 1;
	REFUSED(in, cf, pre, 400, "invalid_request", NULL);
	in = app();
	msi_scan_arg(&in.scan, "resource");
	msi_scan_arg(&in.scan, "resource");
	REFUSED(in, cf, pre, 400, "invalid_request", NULL);
	in = app();
	in.api_version = "2017-09-01";
	REFUSED(in, cf, pre, 400, "invalid_request", NULL);
	in = app();
	in.identity = "";
	REFUSED(in, cf, pre, 401, "unauthorized", "no X-IDENTITY-HEADER");
	in = imds();
	in.metadata = "yes";
	REFUSED(in, cf, pre, 400, "invalid_request", NULL);
	in = imds();
	in.api_version = "";
	REFUSED(in, cf, pre, 400, "invalid_request", NULL);
	/* Order: a proxy header wins over a bad Host, a Host over a body. */
	in = app();
	in.host = NULL;
	in.has_body = 1;
	msi_scan_header(&in.scan, "Via");
	REFUSED(in, cf, pre, 403, "forbidden", "proxy or browser headers");
	in.scan.is_proxied = 0;
	REFUSED(in, cf, pre, 403, "forbidden", "Host is not loopback");
	/* The resource is judged only after the caller proof. */
	in = app();
	in.identity = NULL;
	in.resource = NULL;
	REFUSED(in, cf, pre, 401, "unauthorized", "no X-IDENTITY-HEADER");
	config_free(cf);
	config_free(noimds);
}

TEST(test_resource)
{
	struct config *cf = conf(1);
	struct msi_request in = app();
	struct msi_parsed p;
	char big[MSI_RESOURCE_MAX + 2];

	ASSERT_TRUE(cf != NULL);
	in.resource = NULL;
	REFUSED(in, cf, post, 400, "invalid_request", NULL);
	in.resource = "";
	REFUSED(in, cf, post, 400, "invalid_request", NULL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	in.resource = big;
	REFUSED(in, cf, post, 400, "invalid_request", NULL);
	in.resource = "https://vault.azure.net";
	REFUSED(in, cf, post, 400, "invalid_resource", NULL);
	/* Not allowed, but named: msi.c keeps it for the audit line. */
	ASSERT_EQ(msi_parse_request(&in, cf, &p), -1);
	ASSERT_STREQ(p.resource, "https://vault.azure.net");
	ASSERT_EQ(p.pre.status, 0);
	config_free(cf);
}

TEST(test_host)
{
	static const char *const good[] = { "127.0.0.1", "127.0.0.1:50342",
		"127.1.2.3:50342", "localhost", "LocalHost:50342", "[::1]",
		"[::1]:50342" };
	static const char *const bad[] = { "", ":50342",
		"127.0.0.1:", "127.0.0.1:50343", "127.0.0.1:0",
		"127.0.0.1:65536", "127.0.0.1:50342x", "10.0.0.1",
		"169.254.169.254", "localhost.evil.example", "[::1", "[::1]x",
		"[::2]:50342", "[::ffff:127.0.0.1]", "0x7f.0.0.1", "2130706433",
		"127.0.0.1 ", "[]:50342" };
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!msi_host_is_loopback(good[i], PORT))
			FAILF("Host \"%s\" refused", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (msi_host_is_loopback(bad[i], PORT))
			FAILF("Host \"%s\" accepted", bad[i]);
	ASSERT_EQ(msi_host_is_loopback(NULL, PORT), 0);
}

TEST(test_scan_and_scope)
{
	struct msi_scan s = { 0 };
	char buf[16];

	msi_scan_arg(&s, "resource");
	msi_scan_arg(&s, "api-version");
	msi_scan_arg(&s, "client_id");
	msi_scan_arg(&s, NULL);
	ASSERT_EQ(s.is_dup, 0);
	msi_scan_arg(&s, "api-version");
	ASSERT_EQ(s.is_dup, 1);
	/* Regression (fuzz_msi): a duplicate in another case is one too. */
	memset(&s, 0, sizeof(s));
	msi_scan_arg(&s, "resource");
	msi_scan_arg(&s, "Resource");
	ASSERT_EQ(s.is_dup, 1);
	memset(&s, 0, sizeof(s));
	msi_scan_arg(&s, "API-VERSION");
	msi_scan_arg(&s, "api-version");
	ASSERT_EQ(s.is_dup, 1);
	msi_scan_header(&s, "User-Agent");
	msi_scan_header(&s, NULL);
	ASSERT_EQ(s.is_proxied, 0);
	msi_scan_header(&s, "access-control-request-method");
	ASSERT_EQ(s.is_proxied, 1);
	ASSERT_EQ(msi_scope_of("abc", buf, sizeof(buf)), 0);
	ASSERT_STREQ(buf, "abc/.default");
	ASSERT_ERR(msi_scope_of("abcdefg", buf, sizeof(buf)), -ENAMETOOLONG);
}

int
main(void)
{
	RUN(test_accepted);
	RUN(test_refusals_before_proof);
	RUN(test_resource);
	RUN(test_host);
	RUN(test_scan_and_scope);
	TEST_MAIN_END();
}
