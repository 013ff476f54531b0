/*
 * test_discovery_doc.c - the discovery document's parser and trust rules
 * (credd/discovery_doc.c): Entra's real document accepted, each rule a
 * lying document breaks refused with the field named, the {tenantid}
 * issuer, the TTL clamp, the URL.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "discovery_doc.h"
#include "test.h"

#define AUTH "https://login.microsoftonline.com"
#define TEN "72f988bf-86f1-41af-91ab-2d7cd011db47"

static const struct discovery_rules rules = { .authority = AUTH,
	.tenant = TEN };

/* Entra's document with one field's value replaced (NULL: left out). */
static void
doc(char *buf, size_t bufsz, const char *field, const char *value)
{
	static const char *const fields[] = { "issuer", "token_endpoint",
		"authorization_endpoint", "device_authorization_endpoint",
		"end_session_endpoint", "jwks_uri" };
	static const char *const values[] = { AUTH "/" TEN "/v2.0",
		AUTH "/" TEN "/oauth2/v2.0/token",
		AUTH "/" TEN "/oauth2/v2.0/authorize",
		AUTH "/" TEN "/oauth2/v2.0/devicecode",
		AUTH "/" TEN "/oauth2/v2.0/logout",
		AUTH "/" TEN "/discovery/v2.0/keys" };
	size_t i, n;

	n = (size_t)snprintf(buf, bufsz,
	    "{\"token_endpoint_auth_methods_supported\":"
	    "[\"client_secret_post\",\"private_key_jwt\"],"
	    "\"userinfo_endpoint\":\"https://graph.microsoft.com/oidc/"
	    "userinfo\",\"cloud_instance_name\":\"microsoftonline.com\"");
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = values[i];

		if (field != NULL && strcmp(field, fields[i]) == 0) {
			if (value == NULL)
				continue;
			v = value;
		}
		n += (size_t)snprintf(buf + n, bufsz - n, ",\"%s\":%s%s%s",
		    fields[i], v[0] == '!' ? "" : "\"", v[0] == '!' ? v + 1 : v,
		    v[0] == '!' ? "" : "\"");
	}
	(void)snprintf(buf + n, bufsz - n, "}");
}

static int
parse(const char *body, const struct discovery_rules *r,
    struct discovery_doc *d, char *why)
{
	return discovery_doc_parse(body, strlen(body), r, d, why,
	    DISCOVERY_WHY_MAX);
}

TEST(test_entra_document)
{
	struct discovery_doc d;
	char buf[4096], why[DISCOVERY_WHY_MAX];

	doc(buf, sizeof(buf), NULL, NULL);
	ASSERT_EQ(parse(buf, &rules, &d, why), 0);
	ASSERT_STREQ(d.issuer, AUTH "/" TEN "/v2.0");
	ASSERT_STREQ(d.token_endpoint, AUTH "/" TEN "/oauth2/v2.0/token");
	ASSERT_STREQ(d.device_authorization_endpoint,
	    AUTH "/" TEN "/oauth2/v2.0/devicecode");
	ASSERT_STREQ(d.authorization_endpoint,
	    AUTH "/" TEN "/oauth2/v2.0/authorize");
	ASSERT_STREQ(why, "");
}

/* Optional endpoints may be absent; token_endpoint and issuer may not. */
TEST(test_required_fields)
{
	struct discovery_doc d;
	char buf[4096], why[DISCOVERY_WHY_MAX];

	doc(buf, sizeof(buf), "device_authorization_endpoint", NULL);
	ASSERT_EQ(parse(buf, &rules, &d, why), 0);
	ASSERT_STREQ(d.device_authorization_endpoint, "");
	doc(buf, sizeof(buf), "token_endpoint", NULL);
	ASSERT_EQ(parse(buf, &rules, &d, why), -EBADMSG);
	ASSERT_TRUE(strstr(why, "token_endpoint is missing") != NULL);
	ASSERT_STREQ(d.issuer, ""); /* nothing half-filled */
	doc(buf, sizeof(buf), "issuer", NULL);
	ASSERT_EQ(parse(buf, &rules, &d, why), -EBADMSG);
	ASSERT_TRUE(strstr(why, "issuer") != NULL);
	doc(buf, sizeof(buf), "token_endpoint", "!42");
	ASSERT_EQ(parse(buf, &rules, &d, why), -EBADMSG);
	ASSERT_TRUE(strstr(why, "token_endpoint is not a string") != NULL);
}

/* Every endpoint: https, the authority's host, no query or user info. */
TEST(test_endpoint_rules)
{
	static const struct {
		const char *field, *value, *why;
	} bad[] = {
		{ "token_endpoint", "https://evil.example/" TEN "/token",
		    "token_endpoint is on host 'evil.example'" },
		{ "token_endpoint", "http://login.microsoftonline.com/t/token",
		    "not an https:// URL" },
		{ "device_authorization_endpoint", "https://127.0.0.1:4443/dc",
		    "host '127.0.0.1:4443'" },
		{ "token_endpoint",
		    "https://login.microsoftonline.com@evil.example/token",
		    "user info" },
		{ "token_endpoint", AUTH "/t@x/token", "user info" },
		{ "token_endpoint",
		    "https://login.microsoftonline.com.evil.example/token",
		    "neither the authority's" },
		{ "token_endpoint", AUTH "/t/token?x=1", "a query" },
		{ "authorization_endpoint", AUTH "/t/authorize#f", "fragment" },
		{ "jwks_uri", AUTH "/t/ keys", "characters" },
		{ "token_endpoint", AUTH "/{tenantid}/token", "characters" },
		{ "token_endpoint", "https:///token", "with a host" },
		{ "token_endpoint", "https://:443/token", "with a host" },
	};
	struct discovery_doc d;
	char buf[4096], why[DISCOVERY_WHY_MAX];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		doc(buf, sizeof(buf), bad[i].field, bad[i].value);
		if (parse(buf, &rules, &d, why) != -EBADMSG ||
		    strstr(why, bad[i].why) == NULL ||
		    strstr(why, bad[i].field) == NULL)
			FAILF("%s = %s: got \"%s\"", bad[i].field, bad[i].value,
			    why);
		ASSERT_STREQ(d.token_endpoint, "");
	}
}

/* The admin's extra hosts; the port counts, :443 is the default. */
TEST(test_extra_hosts)
{
	struct discovery_rules r = { .authority = AUTH,
		.tenant = TEN,
		.hosts = "login.example.net  Sts.Example.org:8443" };
	struct discovery_doc d;
	char buf[4096], why[DISCOVERY_WHY_MAX];

	doc(buf, sizeof(buf), "token_endpoint",
	    "https://login.example.net:443/t/token");
	ASSERT_EQ(parse(buf, &r, &d, why), 0);
	doc(buf, sizeof(buf), "token_endpoint",
	    "https://sts.example.org:8443/t/token");
	ASSERT_EQ(parse(buf, &r, &d, why), 0);
	doc(buf, sizeof(buf), "token_endpoint",
	    "https://sts.example.org/t/token");
	ASSERT_EQ(parse(buf, &r, &d, why), -EBADMSG);
	doc(buf, sizeof(buf), "token_endpoint",
	    "https://LOGIN.microsoftonline.com:443/t/token");
	ASSERT_EQ(parse(buf, &rules, &d, why), 0);
}

TEST(test_issuer_rules)
{
	struct discovery_rules dom = { .authority = AUTH,
		.tenant = "contoso.onmicrosoft.com" };
	struct discovery_rules common = { .authority = AUTH,
		.tenant = "organizations" };
	struct discovery_doc d;
	char buf[4096], why[DISCOVERY_WHY_MAX], iss[DISCOVERY_URL_MAX];

	/* Another host, another tenant, a v1 issuer, a trailing part. */
	doc(buf, sizeof(buf), "issuer", "https://sts.windows.net/" TEN "/");
	ASSERT_EQ(parse(buf, &rules, &d, why), -EBADMSG);
	ASSERT_TRUE(strstr(why, "issuer is not the authority's") != NULL);
	doc(buf, sizeof(buf), "issuer",
	    AUTH "/00000000-0000-0000-0000-000000000000/v2.0");
	ASSERT_EQ(parse(buf, &rules, &d, why), -EBADMSG);
	doc(buf, sizeof(buf), "issuer", AUTH "/" TEN "/v2.0/x");
	ASSERT_EQ(parse(buf, &rules, &d, why), -EBADMSG);
	doc(buf, sizeof(buf), "issuer", AUTH ".evil.example/" TEN "/v2.0");
	ASSERT_EQ(parse(buf, &rules, &d, why), -EBADMSG);
	/* Tenant case does not matter (GUIDs). */
	doc(buf, sizeof(buf), "issuer",
	    AUTH "/72F988BF-86F1-41AF-91AB-2D7CD011DB47/v2.0");
	ASSERT_EQ(parse(buf, &rules, &d, why), 0);
	/* common / organizations: the literal {tenantid}, filled per token. */
	doc(buf, sizeof(buf), "issuer", AUTH "/{tenantid}/v2.0");
	ASSERT_EQ(parse(buf, &common, &d, why), 0);
	ASSERT_EQ(discovery_doc_issuer(&d, TEN, iss, sizeof(iss)), 0);
	ASSERT_STREQ(iss, AUTH "/" TEN "/v2.0");
	ASSERT_EQ(discovery_doc_issuer(&d, NULL, iss, sizeof(iss)), -EINVAL);
	ASSERT_EQ(discovery_doc_issuer(&d, "a/b", iss, sizeof(iss)), -EINVAL);
	/* A domain-name tenant: Entra answers with the tenant's GUID. */
	doc(buf, sizeof(buf), "issuer", AUTH "/" TEN "/v2.0");
	ASSERT_EQ(parse(buf, &dom, &d, why), 0);
	ASSERT_EQ(discovery_doc_issuer(&d, "ignored", iss, sizeof(iss)), 0);
	ASSERT_STREQ(iss, AUTH "/" TEN "/v2.0");
	doc(buf, sizeof(buf), "issuer", AUTH "/fabrikam.com/v2.0");
	ASSERT_EQ(parse(buf, &dom, &d, why), -EBADMSG);
}

TEST(test_not_a_document)
{
	static const char *const bodies[] = { "", "[]", "null", "<html>",
		"{\"issuer\":\"a\",\"issuer\":\"b\"}", "{\"token_endpoint\":" };
	struct discovery_doc d;
	char why[DISCOVERY_WHY_MAX];
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		ASSERT_EQ(parse(bodies[i], &rules, &d, why), -EBADMSG);
		ASSERT_TRUE(strstr(why, "not a JSON object") != NULL);
	}
	/* A NUL inside a value (jansson refuses it without ALLOW_NUL). */
	{
		static const char nul[] =
		    "{\"issuer\":\"" AUTH "/" TEN
		    "/v2.0\",\"token_endpoint\":\"" AUTH "/t\\u0000x\"}";

		ASSERT_EQ(parse(nul, &rules, &d, why), -EBADMSG);
		ASSERT_STREQ(d.token_endpoint, "");
	}
	ASSERT_EQ(discovery_doc_parse("{}", DISCOVERY_DOC_MAX + 1, &rules, &d,
		      why, sizeof(why)),
	    -EMSGSIZE);
}

TEST(test_issuer_matches)
{
	const char *t = AUTH "/{tenantid}/v2.0", *fixed = AUTH "/" TEN "/v2.0";

	ASSERT_EQ(discovery_doc_issuer_matches(fixed, fixed), 1);
	ASSERT_EQ(discovery_doc_issuer_matches(fixed, AUTH "/x/v2.0"), 0);
	ASSERT_EQ(discovery_doc_issuer_matches(fixed, NULL), 0);
	ASSERT_EQ(discovery_doc_issuer_matches(t, fixed), 1);
	ASSERT_EQ(discovery_doc_issuer_matches(t, AUTH "//v2.0"), 0);
	ASSERT_EQ(discovery_doc_issuer_matches(t, AUTH "/a/b/v2.0"), 0);
	ASSERT_EQ(discovery_doc_issuer_matches(t, "https://evil/" TEN "/v2.0"),
	    0);
	ASSERT_EQ(discovery_doc_issuer_matches(t, AUTH "/" TEN "/v2.0x"), 0);
}

TEST(test_ttl)
{
	ASSERT_EQ(discovery_doc_ttl(86400, 0), 86400);
	ASSERT_EQ(discovery_doc_ttl(10, 0), DISCOVERY_TTL_MIN);
	ASSERT_EQ(discovery_doc_ttl(10, 2), 10);
	ASSERT_EQ(discovery_doc_ttl(0, 2), 2);
	ASSERT_EQ(discovery_doc_ttl(10 * 86400, 0), DISCOVERY_TTL_MAX);
	ASSERT_EQ(discovery_doc_ttl(-1, 0), DISCOVERY_TTL_DEFAULT);
	ASSERT_EQ(discovery_doc_ttl(-1, 1000000), DISCOVERY_TTL_MAX);
}

/* provider = oidc: the issuer is the authority, the document at its root. */
TEST(test_generic_provider)
{
	static const char kc[] = "https://kc.example/realms/platform";
	struct discovery_rules r = { .authority = kc, .is_oidc = 1 };
	struct discovery_doc d;
	char buf[1024], why[DISCOVERY_WHY_MAX], url[256];

	ASSERT_EQ(discovery_doc_url(&r, url, sizeof(url)), 0);
	ASSERT_STREQ(url,
	    "https://kc.example/realms/platform/.well-known/"
	    "openid-configuration");
	(void)snprintf(buf, sizeof(buf),
	    "{\"issuer\":\"%s\",\"token_endpoint\":\"https://kc.example/"
	    "realms/platform/protocol/openid-connect/token\","
	    "\"device_authorization_endpoint\":\"https://kc.example/realms/"
	    "platform/protocol/openid-connect/auth/device\"}",
	    kc);
	ASSERT_EQ(parse(buf, &r, &d, why), 0);
	ASSERT_STREQ(d.issuer, kc);
	ASSERT_EQ(discovery_doc_issuer(&d, NULL, url, sizeof(url)), 0);
	ASSERT_STREQ(url, kc);
	/* Another realm's issuer, or Entra's shape, is refused. */
	(void)snprintf(buf, sizeof(buf),
	    "{\"issuer\":\"https://kc.example/realms/other\","
	    "\"token_endpoint\":\"https://kc.example/t\"}");
	ASSERT_EQ(parse(buf, &r, &d, why), -EBADMSG);
	ASSERT_TRUE(strstr(why, "issuer is not the authority") != NULL);
	(void)snprintf(buf, sizeof(buf),
	    "{\"issuer\":\"%s/{tenantid}\",\"token_endpoint\":"
	    "\"https://kc.example/t\"}",
	    kc);
	ASSERT_EQ(parse(buf, &r, &d, why), -EBADMSG);
	/* A trailing slash on the issuer is the same issuer. */
	(void)snprintf(buf, sizeof(buf),
	    "{\"issuer\":\"%s/\",\"token_endpoint\":\"https://kc.example/"
	    "t\"}",
	    kc);
	ASSERT_EQ(parse(buf, &r, &d, why), 0);
}

TEST(test_url)
{
	struct discovery_rules bad = { .authority = AUTH, .tenant = "a b" };
	char url[256];

	ASSERT_EQ(discovery_doc_url(&rules, url, sizeof(url)), 0);
	ASSERT_STREQ(url,
	    AUTH "/" TEN "/v2.0/.well-known/openid-configuration");
	ASSERT_EQ(discovery_doc_url(&bad, url, sizeof(url)), -EINVAL);
	ASSERT_EQ(discovery_doc_url(&rules, url, 20), -ENAMETOOLONG);
}

int
main(void)
{
	RUN(test_entra_document);
	RUN(test_required_fields);
	RUN(test_endpoint_rules);
	RUN(test_extra_hosts);
	RUN(test_issuer_rules);
	RUN(test_not_a_document);
	RUN(test_issuer_matches);
	RUN(test_ttl);
	RUN(test_generic_provider);
	RUN(test_url);
	TEST_MAIN_END();
}
