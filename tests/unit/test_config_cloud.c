/*
 * test_config_cloud.c - credd/config_cloud.c (issue 17 part 2): [entra]
 * cloud = public | usgov | china, its authority and the "@NAME"
 * well-known resources of [scopes] for each cloud, overrides one by
 * one, no alias the admin did not write, [offboarding] graph_url and the
 * SDK endpoint's resource list following the cloud, [entra] provider,
 * the errors (file:line), the cross-cloud warnings and what
 * credd --check-config prints.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authcode.h"
#include "config.h"
#include "config_int.h"
#include "oauth.h"
#include "test.h"

#define IDS                                                                    \
	"tenant = 11111111-2222-3333-4444-555555555555\n"                      \
	"client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n"

/* Every well-known resource, one alias each. */
#define ALL_PRESETS                                                            \
	"[scopes]\n"                                                           \
	"storage = @storage\n"                                                 \
	"vault = @vault\n"                                                     \
	"sql = @sql\n"                                                         \
	"graph = @graph\n"                                                     \
	"arm = @arm\n"                                                         \
	"databricks = @databricks\n"                                           \
	"default = storage\n"

static char errbuf[1024];

static int
parse(const char *text, struct config **cf)
{
	errbuf[0] = '\0';
	return config_parse("t.conf", text, strlen(text), cf, errbuf,
	    sizeof(errbuf));
}

/* Parse text, expect failure r and exactly the error want. */
static int
parse_fails(const char *text, int r, const char *want)
{
	struct config *cf = (struct config *)1;
	int got;

	got = parse(text, &cf);
	if (got != r || cf != NULL || strcmp(errbuf, want) != 0) {
		fprintf(stderr,
		    "  text: %s\n  got %d (want %d): '%s'\n"
		    "  want '%s'\n",
		    text, got, r, errbuf, want);
		config_free(cf != (struct config *)1 ? cf : NULL);
		return 0;
	}
	return 1;
}

static const char *
scope_of(const struct config *cf, const char *alias)
{
	size_t i;

	for (i = 0; i < cf->nscopes; i++)
		if (strcmp(cf->scopes[i].alias, alias) == 0)
			return cf->scopes[i].scope;
	return NULL;
}

/* No cloud key: today's values, byte for byte; "cloud = public" alike. */
TEST(test_absent_is_public)
{
	static const char text[] =
	    "[entra]\n" IDS "[scopes]\n"
	    "storage = https://storage.azure.com/.default\n"
	    "default = storage\n";
	static const char text_public[] =
	    "[entra]\ncloud = public\n" IDS "[scopes]\n"
	    "storage = @storage\n"
	    "default = storage\n";
	struct config *cf = NULL, *pub = NULL;

	ASSERT_EQ(parse(text, &cf), 0);
	ASSERT_EQ(cf->cloud, CONFIG_CLOUD_PUBLIC);
	ASSERT_EQ(cf->provider, CONFIG_PROVIDER_ENTRA);
	ASSERT_STREQ(cf->authority, "https://login.microsoftonline.com");
	ASSERT_STREQ(cf->off_graph_url, "https://graph.microsoft.com");
	ASSERT_EQ(cf->cloud_line, 0);
	ASSERT_EQ(cf->authority_line, 0);
	ASSERT_EQ(cf->graph_url_line, 0);
	ASSERT_EQ(cf->nscopes, 1);
	ASSERT_STREQ(cf->scopes[0].scope, "https://storage.azure.com/.default");
	ASSERT_TRUE(cf->scopes[0].preset == NULL);
	ASSERT_EQ(cf->scopes[0].line, 5);
	ASSERT_EQ(config_cloud_warnings(cf, NULL, NULL), 0);

	ASSERT_EQ(parse(text_public, &pub), 0);
	ASSERT_EQ(pub->cloud_line, 2);
	ASSERT_STREQ(pub->authority, cf->authority);
	ASSERT_STREQ(pub->off_graph_url, cf->off_graph_url);
	ASSERT_STREQ(pub->scopes[0].scope, cf->scopes[0].scope);
	ASSERT_STREQ(pub->scopes[0].preset, "@storage");
	/* the SDK endpoint's list is the same too */
	ASSERT_EQ(pub->msi_nresources, cf->msi_nresources);
	ASSERT_STREQ(pub->msi_resources[0], cf->msi_resources[0]);
	ASSERT_STREQ(pub->msi_resources[1], cf->msi_resources[1]);
	config_free(pub);
	config_free(cf);
}

struct want {
	const char *cloud;
	const char *authority;
	const char *scopes[6]; /* storage vault sql graph arm databricks */
	const char *graph;
};

static const struct want wants[] = {
	{ "public", "https://login.microsoftonline.com",
	    { "https://storage.azure.com/.default",
		"https://vault.azure.net/.default",
		"https://database.windows.net/.default",
		"https://graph.microsoft.com/.default",
		"https://management.azure.com/.default",
		"2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default" },
	    "https://graph.microsoft.com" },
	{ "usgov", "https://login.microsoftonline.us",
	    { "https://storage.azure.com/.default",
		"https://vault.usgovcloudapi.net/.default",
		"https://database.usgovcloudapi.net/.default",
		"https://graph.microsoft.us/.default",
		"https://management.usgovcloudapi.net/.default",
		"2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default" },
	    "https://graph.microsoft.us" },
	{ "china", "https://login.chinacloudapi.cn",
	    { "https://storage.azure.com/.default",
		"https://vault.azure.cn/.default",
		"https://database.chinacloudapi.cn/.default",
		"https://microsoftgraph.chinacloudapi.cn/.default",
		"https://management.chinacloudapi.cn/.default",
		"2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default" },
	    "https://microsoftgraph.chinacloudapi.cn" },
};

/* Each preset: authority, graph_url, every "@NAME", the SDK list. */
TEST(test_presets)
{
	static const char *const aliases[6] = { "storage", "vault", "sql",
		"graph", "arm", "databricks" };
	char text[1024];
	struct config *cf;
	size_t c, i;

	for (c = 0; c < sizeof(wants) / sizeof(wants[0]); c++) {
		const struct want *w = &wants[c];

		(void)snprintf(text, sizeof(text),
		    "[entra]\ncloud = %s\n" IDS ALL_PRESETS, w->cloud);
		cf = NULL;
		ASSERT_EQ(parse(text, &cf), 0);
		ASSERT_EQ(cf->cloud, (int)c);
		ASSERT_STREQ(config_cloud_name(cf->cloud), w->cloud);
		ASSERT_STREQ(cf->authority, w->authority);
		ASSERT_STREQ(cf->off_graph_url, w->graph);
		ASSERT_EQ(cf->nscopes, 6);
		for (i = 0; i < 6; i++) {
			ASSERT_STREQ(scope_of(cf, aliases[i]), w->scopes[i]);
			ASSERT_EQ(cf->scopes[i].line, 6 + i);
			/* a client may name the resolved scope string too */
			ASSERT_STREQ(config_scope_resolve(cf, w->scopes[i]),
			    w->scopes[i]);
		}
		ASSERT_STREQ(cf->scopes[1].preset, "@vault");
		ASSERT_EQ(config_cloud_warnings(cf, NULL, NULL), 0);
		/* The SDK endpoint serves the cloud's resources. */
		for (i = 0; i < 6; i++) {
			char res[256];

			(void)snprintf(res, sizeof(res), "%.*s",
			    (int)(strlen(w->scopes[i]) - 9), w->scopes[i]);
			ASSERT_TRUE(config_msi_resource_allowed(cf, res));
		}
		config_free(cf);
	}
}

/* The SDK endpoint's allowed list follows the cloud (msi_resources_build). */
TEST(test_msi_follows_cloud)
{
	struct config *cf = NULL;

	ASSERT_EQ(parse("[entra]\ncloud = usgov\n" IDS
			"[scopes]\nvault = @vault\ndb = @databricks\n"
			"default = vault\n[msi]\nlisten = 127.0.0.1:8391\n",
		      &cf),
	    0);
	ASSERT_TRUE(
	    config_msi_resource_allowed(cf, "https://vault.usgovcloudapi.net"));
	ASSERT_TRUE(config_msi_resource_allowed(cf,
	    "https://vault.usgovcloudapi.net/"));
	ASSERT_TRUE(config_msi_resource_allowed(cf,
	    "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"));
	ASSERT_TRUE(
	    !config_msi_resource_allowed(cf, "https://vault.azure.net"));
	config_free(cf);

	/* An explicit list may name @NAME too: the cloud's resource. */
	cf = NULL;
	ASSERT_EQ(parse("[entra]\ncloud = china\n" IDS
			"[scopes]\nvault = @vault\ndefault = vault\n"
			"[msi]\nlisten = 127.0.0.1:8391\n"
			"resources = @vault https://x.example @databricks\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->msi_nresources, 4);
	ASSERT_STREQ(cf->msi_resources[0], "https://vault.azure.cn");
	ASSERT_STREQ(cf->msi_resources[1], "https://vault.azure.cn/");
	ASSERT_STREQ(cf->msi_resources[2], "https://x.example");
	ASSERT_STREQ(cf->msi_resources[3],
	    "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d");
	config_free(cf);
}

/*
 * What credd derives from the resolved authority follows the cloud: the
 * paste-back redirect URI (flow_code.c) and the token endpoint that the
 * IdP and offboarding use (idp_http.c, offboard_http.c).
 */
TEST(test_derived)
{
	struct config *cf = NULL;
	char buf[512];

	ASSERT_EQ(parse("[entra]\ncloud = china\n" IDS ALL_PRESETS, &cf), 0);
	ASSERT_EQ(authcode_nativeclient_uri(cf->authority, buf, sizeof(buf)),
	    0);
	ASSERT_STREQ(buf,
	    "https://login.chinacloudapi.cn/common/oauth2/"
	    "nativeclient");
	ASSERT_EQ(oauth_url_token(cf->authority, cf->tenant, buf, sizeof(buf)),
	    0);
	ASSERT_STREQ(buf,
	    "https://login.chinacloudapi.cn/"
	    "11111111-2222-3333-4444-555555555555/oauth2/v2.0/"
	    "token");
	config_free(cf);
}

/* Overrides one by one; a preset never adds an alias. */
TEST(test_overrides)
{
	struct config *cf = NULL;

	ASSERT_EQ(parse("[entra]\n"
			"cloud = usgov\n"
			"authority = https://127.0.0.1:8443/\n" IDS "[scopes]\n"
			"vault = https://myvault.example/.default\n"
			"graph = @graph/User.Read\n"
			"kv = @vault/user_impersonation\n"
			"default = graph\n"
			"[offboarding]\n"
			"graph_url = https://127.0.0.1:9443\n",
		      &cf),
	    0);
	ASSERT_STREQ(cf->authority, "https://127.0.0.1:8443");
	ASSERT_EQ(cf->authority_line, 3);
	ASSERT_STREQ(cf->off_graph_url, "https://127.0.0.1:9443");
	ASSERT_EQ(cf->graph_url_line, 12);
	ASSERT_EQ(cf->nscopes, 3); /* what the file lists, nothing more */
	ASSERT_STREQ(scope_of(cf, "vault"), "https://myvault.example/.default");
	ASSERT_TRUE(cf->scopes[0].preset == NULL);
	ASSERT_STREQ(scope_of(cf, "graph"),
	    "https://graph.microsoft.us/User.Read");
	ASSERT_STREQ(scope_of(cf, "kv"),
	    "https://vault.usgovcloudapi.net/user_impersonation");
	ASSERT_STREQ(config_default_scope(cf),
	    "https://graph.microsoft.us/User.Read");
	ASSERT_TRUE(scope_of(cf, "storage") == NULL);
	ASSERT_EQ(config_cloud_warnings(cf, NULL, NULL), 0);
	config_free(cf);

	/* [scopes] before [entra]: the cloud still applies */
	cf = NULL;
	ASSERT_EQ(parse("[scopes]\nvault = @vault\ndefault = vault\n"
			"[entra]\ncloud = china\n" IDS,
		      &cf),
	    0);
	ASSERT_STREQ(scope_of(cf, "vault"), "https://vault.azure.cn/.default");
	config_free(cf);
}

TEST(test_provider)
{
	struct config *cf = NULL;

	ASSERT_EQ(parse("[entra]\nprovider = oidc\n"
			"authority = https://idp.example\n" IDS
			"[scopes]\napi = api://x/read\ndefault = api\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->provider, CONFIG_PROVIDER_OIDC);
	ASSERT_STREQ(config_provider_name(cf->provider), "oidc");
	ASSERT_STREQ(cf->authority, "https://idp.example");
	/* Another cloud's host is no warning without Entra. */
	config_free(cf);
	cf = NULL;
	ASSERT_EQ(parse("[entra]\nprovider = entra\n" IDS
			"[scopes]\ns = @storage\ndefault = s\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->provider, CONFIG_PROVIDER_ENTRA);
	config_free(cf);
}

TEST(test_errors)
{
	ASSERT_TRUE(parse_fails("[entra]\ncloud = azure\n" IDS ALL_PRESETS,
	    -EINVAL, "t.conf:2: cloud must be public, usgov or china"));
	ASSERT_TRUE(parse_fails("[entra]\ncloud = USGov\n" IDS ALL_PRESETS,
	    -EINVAL, "t.conf:2: cloud must be public, usgov or china"));
	ASSERT_TRUE(parse_fails("[entra]\ncloud = usgov\ncloud = china\n" IDS
				    ALL_PRESETS,
	    -EEXIST, "t.conf:3: duplicate key 'cloud' in [entra]"));
	ASSERT_TRUE(
	    parse_fails("[entra]\nprovider = keycloak\n" IDS ALL_PRESETS,
		-EINVAL, "t.conf:2: provider must be entra or oidc"));
	ASSERT_TRUE(parse_fails("[entra]\nprovider = oidc\n" IDS
				"cloud = usgov\n"
				"[scopes]\na = api://x/read\ndefault = a\n",
	    -EINVAL,
	    "t.conf:5: [entra] cloud is for Entra ID; provider = oidc takes "
	    "no cloud (set authority to the provider's URL)"));
	ASSERT_TRUE(parse_fails("[entra]\nprovider = oidc\n" IDS
				"[scopes]\na = api://x/read\nv = @vault\n"
				"default = a\n",
	    -EINVAL,
	    "t.conf:7: v: well-known resources ('@NAME') are Entra's; with "
	    "provider = oidc, write the scope string"));
	ASSERT_TRUE(parse_fails("[entra]\n" IDS
				"[scopes]\ns = @storage\nkv = @keyvault\n"
				"default = s\n",
	    -EINVAL,
	    "t.conf:6: kv: '@keyvault' is not a well-known resource (known: "
	    "@storage @vault @sql @graph @arm @databricks)"));
	ASSERT_TRUE(
	    parse_fails("[entra]\n" IDS "[scopes]\ns = @\ndefault = s\n",
		-EINVAL, "t.conf:5: s: '@' must be @NAME or @NAME/SCOPE"));
	ASSERT_TRUE(parse_fails("[entra]\n" IDS
				"[scopes]\ns = @storage/\ndefault = s\n",
	    -EINVAL, "t.conf:5: s: '@storage/' must be @NAME or @NAME/SCOPE"));
	ASSERT_TRUE(
	    parse_fails("[entra]\n" IDS "[scopes]\ns = @/x\ndefault = s\n",
		-EINVAL, "t.conf:5: s: '@/x' must be @NAME or @NAME/SCOPE"));
	ASSERT_TRUE(
	    parse_fails("[entra]\n" IDS "[scopes]\ns = @storage\ndefault = s\n"
			"[msi]\nlisten = 127.0.0.1:8391\n"
			"resources = @storage @keyvault\n",
		-EINVAL,
		"t.conf:9: resources names an unknown well-known resource "
		"(known: @storage @vault @sql @graph @arm @databricks)"));
	ASSERT_TRUE(parse_fails("[entra]\nprovider = oidc\n"
				"authority = https://idp.example\n" IDS
				"[scopes]\ns = api://x/read\ndefault = s\n"
				"[msi]\nlisten = 127.0.0.1:8391\n"
				"resources = @storage\n",
	    -EINVAL,
	    "t.conf:11: [msi] resources: well-known resources ('@NAME') "
	    "are Entra's; with provider = oidc, write the resource"));
	/* The names are case-sensitive, like the keys. */
	ASSERT_TRUE(
	    parse_fails("[entra]\n" IDS "[scopes]\ns = @Vault\ndefault = s\n",
		-EINVAL,
		"t.conf:5: s: '@Vault' is not a well-known resource (known: "
		"@storage @vault @sql @graph @arm @databricks)"));
}

/*
 * A service a cloud lacks: no row of the real table has one (every
 * service credd serves exists in all three clouds), so a row of the
 * test's own shows what "@NAME" then does.
 */
TEST(test_absent_service)
{
	struct config_cloud_def c = *config_cloud_def(CONFIG_CLOUD_USGOV);
	char dst[CONFIG_SCOPE_MAX + 1];
	const char *res;
	size_t i;

	c.resources[5] = NULL; /* databricks */
	ASSERT_ERR(config_cloud_expand(&c, "@databricks", dst, sizeof(dst)),
	    -ENXIO);
	ASSERT_STREQ(dst, "");
	ASSERT_EQ(config_cloud_expand(&c, "@vault", dst, sizeof(dst)), 0);
	ASSERT_STREQ(dst, "https://vault.usgovcloudapi.net/.default");
	ASSERT_ERR(config_cloud_expand(&c, "@nosuch", dst, sizeof(dst)),
	    -ENOENT);
	ASSERT_ERR(config_cloud_expand(&c, "vault", dst, sizeof(dst)), -EINVAL);
	ASSERT_ERR(config_cloud_expand(&c, "@vault/a b", dst, sizeof(dst)),
	    -EINVAL);
	ASSERT_ERR(config_cloud_expand(&c, "@vault", dst, 20), -ENAMETOOLONG);
	ASSERT_STREQ(dst, "");

	/* The real table: every service in every cloud. */
	for (i = 0; i < CONFIG_CLOUDS; i++) {
		ASSERT_EQ(config_cloud_resource((int)i, "databricks", &res), 0);
		ASSERT_STREQ(res, "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d");
		ASSERT_EQ(config_cloud_resource((int)i, "storage", &res), 0);
		ASSERT_STREQ(res, "https://storage.azure.com");
	}
	ASSERT_ERR(config_cloud_resource(0, "nosuch", &res), -ENOENT);
	ASSERT_TRUE(res == NULL);
	ASSERT_ERR(config_cloud_resource(CONFIG_CLOUDS, "vault", &res),
	    -EINVAL);
	ASSERT_EQ(config_cloud_parse("usgov"), CONFIG_CLOUD_USGOV);
	ASSERT_EQ(config_cloud_parse("gov"), -1);
	ASSERT_STREQ(config_cloud_name(7), "?");
}

/* What the parser says about such an alias, at its line. */
TEST(test_absent_service_error)
{
	struct config_cloud_def c = *config_cloud_def(CONFIG_CLOUD_USGOV);
	struct config cf = { .provider = CONFIG_PROVIDER_ENTRA };
	char alias[] = "db";
	struct config_scope sc = { .alias = alias,
		.scope = strdup("@databricks"),
		.line = 7 };
	struct parser p = { .cf = &cf,
		.name = "t.conf",
		.err = errbuf,
		.errsz = sizeof(errbuf) };

	c.resources[5] = NULL; /* databricks */
	ASSERT_TRUE(sc.scope != NULL);
	ASSERT_ERR(config_cloud_resolve(&p, &c, &sc), -EINVAL);
	ASSERT_STREQ(errbuf,
	    "t.conf:7: db: Azure Databricks (@databricks) does not exist in "
	    "Azure Government (US) (cloud = usgov); remove the alias or write "
	    "a scope string");
	ASSERT_STREQ(sc.scope, "@databricks");
	ASSERT_TRUE(sc.preset == NULL);
	/* The real row has it. */
	ASSERT_EQ(config_cloud_resolve(&p, config_cloud_def(1), &sc), 0);
	ASSERT_STREQ(sc.scope, "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default");
	ASSERT_STREQ(sc.preset, "@databricks");
	free(sc.scope);
	free(sc.preset);
}

struct warnings {
	int n;
	char text[2048];
};

static void
collect(void *arg, const char *msg)
{
	struct warnings *w = arg;
	size_t len = strlen(w->text);

	w->n++;
	(void)snprintf(w->text + len, sizeof(w->text) - len, "%s\n", msg);
}

TEST(test_warnings)
{
	struct warnings w = { 0 };
	struct config *cf = NULL;

	ASSERT_EQ(parse("[entra]\n"
			"cloud = usgov\n"
			"authority = https://login.microsoftonline.com\n" IDS
			"[scopes]\n"
			"storage = https://storage.azure.com/.default\n"
			"vault = https://vault.azure.net/.default\n"
			"acct = https://acct.blob.core.windows.net/.default\n"
			"cn = https://management.chinacloudapi.cn/.default\n"
			"mine = https://vault.usgovcloudapi.net/.default\n"
			"db = 2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default\n"
			"odd = HTTPS://user:pw@GRAPH.microsoft.com:443/x\n"
			"default = storage\n"
			"[offboarding]\n"
			"graph_url = https://graph.microsoft.com\n",
		      &cf),
	    0);
	ASSERT_EQ(config_cloud_warnings(cf, collect, &w), 6);
	ASSERT_EQ(w.n, 6);
	ASSERT_STREQ(w.text,
	    "t.conf:8: warning: [scopes] vault names Key Vault of the Azure "
	    "public cloud (vault.azure.net), but [entra] cloud = usgov; write "
	    "'@vault' to follow the cloud\n"
	    "t.conf:9: warning: [scopes] acct names a host of the Azure public "
	    "cloud (acct.blob.core.windows.net), but [entra] cloud = usgov\n"
	    "t.conf:10: warning: [scopes] cn names Azure Resource Manager of "
	    "the Azure China (21Vianet) (management.chinacloudapi.cn), but "
	    "[entra] cloud = usgov; write '@arm' to follow the cloud\n"
	    "t.conf:13: warning: [scopes] odd names Microsoft Graph of the "
	    "Azure public cloud (graph.microsoft.com), but [entra] cloud = "
	    "usgov; write '@graph' to follow the cloud\n"
	    "t.conf:3: warning: [entra] authority is a host of the Azure "
	    "public cloud (login.microsoftonline.com), but cloud = usgov; "
	    "remove authority to use the cloud's\n"
	    "t.conf:16: warning: [offboarding] graph_url is a host of the "
	    "Azure public cloud (graph.microsoft.com), but [entra] cloud = "
	    "usgov; remove graph_url to use the cloud's\n");
	/* No secret-bearing part of a URL is echoed. */
	ASSERT_TRUE(strstr(w.text, "pw") == NULL);
	config_free(cf);

	/* Public URLs in the public cloud, and the emulator: no warning. */
	cf = NULL;
	ASSERT_EQ(parse("[entra]\nauthority = https://127.0.0.1:8443\n" IDS
			"[scopes]\n"
			"vault = https://vault.azure.net/.default\n"
			"graph = https://graph.microsoft.com/.default\n"
			"default = vault\n",
		      &cf),
	    0);
	ASSERT_EQ(config_cloud_warnings(cf, NULL, NULL), 0);
	config_free(cf);
	/* A usgov URL in the public cloud (the default) is one. */
	cf = NULL;
	ASSERT_EQ(parse("[entra]\n" IDS "[scopes]\n"
			"vault = https://vault.usgovcloudapi.net/.default\n"
			"default = vault\n",
		      &cf),
	    0);
	ASSERT_EQ(config_cloud_warnings(cf, NULL, NULL), 1);
	config_free(cf);
}

static char *
printed(const struct config *cf)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	config_cloud_print(cf, f);
	(void)fclose(f);
	return buf;
}

/* What credd --check-config prints after "FILE: ok". */
TEST(test_print)
{
	struct config *cf = NULL;
	char *out;

	ASSERT_EQ(parse("[entra]\ncloud = usgov\n" IDS "[scopes]\n"
			"vault = @vault\n"
			"sql = https://database.usgovcloudapi.net/.default\n"
			"default = vault\n"
			"[msi]\nlisten = 127.0.0.1:8391\n",
		      &cf),
	    0);
	out = printed(cf);
	ASSERT_TRUE(out != NULL);
	ASSERT_STREQ(out,
	    "[entra] provider = entra, cloud = usgov\n"
	    "[entra] authority = https://login.microsoftonline.us (cloud "
	    "usgov)\n"
	    "[scopes] vault = https://vault.usgovcloudapi.net/.default "
	    "(@vault, cloud usgov)\n"
	    "[scopes] sql = https://database.usgovcloudapi.net/.default\n"
	    "[scopes] default = vault\n"
	    "[msi] resources = https://vault.usgovcloudapi.net "
	    "https://vault.usgovcloudapi.net/ https://database.usgovcloudapi.net "
	    "https://database.usgovcloudapi.net/\n"
	    "[offboarding] graph_url = https://graph.microsoft.us (cloud "
	    "usgov)\n");
	free(out);
	config_free(cf);

	cf = NULL;
	ASSERT_EQ(
	    parse("[entra]\nauthority = https://u:secret@127.0.0.1:1/\n" IDS
		  "[scopes]\ns = https://storage.azure.com/.default\n"
		  "default = s\n",
		&cf),
	    0);
	out = printed(cf);
	ASSERT_TRUE(out != NULL);
	ASSERT_STREQ(out,
	    "[entra] provider = entra, cloud = public (default)\n"
	    "[entra] authority = https://(userinfo hidden)@127.0.0.1:1 (line "
	    "2)\n"
	    "[scopes] s = https://storage.azure.com/.default\n"
	    "[scopes] default = s\n"
	    "[offboarding] graph_url = https://graph.microsoft.com (cloud "
	    "public)\n");
	free(out);
	config_free(cf);

	cf = NULL;
	ASSERT_EQ(parse("[entra]\nprovider = oidc\n"
			"authority = https://idp.example\n" IDS
			"[scopes]\ns = api://x/read\ndefault = s\n",
		      &cf),
	    0);
	out = printed(cf);
	ASSERT_TRUE(out != NULL);
	ASSERT_TRUE(strncmp(out, "[entra] provider = oidc\n", 24) == 0);
	free(out);
	config_free(cf);
}

int
main(void)
{
	RUN(test_absent_is_public);
	RUN(test_presets);
	RUN(test_msi_follows_cloud);
	RUN(test_derived);
	RUN(test_overrides);
	RUN(test_provider);
	RUN(test_errors);
	RUN(test_absent_service);
	RUN(test_absent_service_error);
	RUN(test_warnings);
	RUN(test_print);
	TEST_MAIN_END();
}
