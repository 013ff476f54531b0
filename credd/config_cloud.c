/*
 * config_cloud.c - the [entra] cloud presets (issue 17; docs/clouds.md):
 * for public, usgov and china, the authority and the resource of each
 * well-known service credd serves (Azure Storage, Key Vault, Azure SQL,
 * Microsoft Graph, ARM, Azure Databricks). [entra] cloud sets the default
 * authority and [offboarding] graph_url; a [scopes] alias written as
 * "@vault" or "@graph/User.Read" gets that cloud's resource. Also
 * [entra] provider (entra | oidc), which takes no cloud, what
 * credd --check-config prints about the cloud, and its cross-cloud
 * warnings.
 *
 * Must never: add an alias the admin did not write (a preset only
 * resolves the aliases in the file), override a value the file sets,
 * change anything when cloud is absent (public is today's behaviour,
 * byte for byte), or echo a whole URL in an error or warning (hosts
 * only: a URL may carry credentials).
 *
 * Where each value comes from (read 2026-12):
 * - authorities: ../shared/reference/entra-protocol.md "Hosts" (MSAL
 *   Python msal/authority.py); Azure/azure-cli
 *   src/azure-cli-core/azure/cli/core/cloud.py (active_directory).
 * - ARM and Graph: azure-cli cloud.py (resource_manager,
 *   _get_microsoft_graph_resource_id); hashicorp/go-azure-sdk
 *   sdk/environments/azure_{public,gov,china}.go (ResourceManagerAPI,
 *   MicrosoftGraphAPI). US Gov DoD (L5) tenants use
 *   dod-graph.microsoft.us (AzureUSGovernmentL5 there), which no preset
 *   gives: they set [offboarding] graph_url and write Graph scopes out.
 * - Key Vault and SQL: go-azure-sdk azure_*.go (KeyVault, Sql
 *   WithResourceIdentifier); the hosts match azure-cli's keyvault_dns
 *   and sql_server_hostname suffixes.
 * - Storage: https://storage.azure.com in every cloud (go-azure-sdk
 *   sdk/environments/apis.go StorageAPI, which cites Microsoft's
 *   "Authorize access to blobs using Microsoft Entra ID", MSAL section).
 * - Databricks: the AzureDatabricks application id
 *   2ff814a6-3304-4ab8-85cb-cd0e6f879c1d in all three clouds
 *   (databricks/databricks-sdk-py databricks/sdk/environments.py:
 *   .azuredatabricks.net, .databricks.azure.us and .databricks.azure.cn
 *   all use ARM_DATABRICKS_RESOURCE_ID).
 * Every service here exists in all three clouds; a row's NULL resource
 * is how a service missing from a cloud would be written, and "@NAME"
 * then fails with "does not exist in <cloud>".
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "entra/util.h"

#include "config.h"
#include "config_int.h"

#define HOST_MAX 256

enum { SVC_STORAGE, SVC_VAULT, SVC_SQL, SVC_GRAPH, SVC_ARM, SVC_DATABRICKS };

static const char *const service_name[CONFIG_CLOUD_SERVICES] = { "storage",
	"vault", "sql", "graph", "arm", "databricks" };
static const char *const service_title[CONFIG_CLOUD_SERVICES] = {
	"Azure Storage", "Key Vault", "Azure SQL", "Microsoft Graph",
	"Azure Resource Manager", "Azure Databricks"
};

#define DATABRICKS_APP "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"

/* By enum config_cloud; sources in the header comment. */
static const struct config_cloud_def clouds[CONFIG_CLOUDS] = {
	{
	    .name = "public",
	    .title = "Azure public cloud",
	    .authority = "https://login.microsoftonline.com",
	    .resources = { "https://storage.azure.com",
		"https://vault.azure.net", "https://database.windows.net",
		"https://graph.microsoft.com", "https://management.azure.com",
		DATABRICKS_APP },
	    .marks = { "login.microsoftonline.com", "graph.microsoft.com",
		"management.azure.com", "vault.azure.net",
		"database.windows.net", "core.windows.net",
		"azuredatabricks.net", NULL },
	},
	{
	    .name = "usgov",
	    .title = "Azure Government (US)",
	    .authority = "https://login.microsoftonline.us",
	    .resources = { "https://storage.azure.com",
		"https://vault.usgovcloudapi.net",
		"https://database.usgovcloudapi.net",
		"https://graph.microsoft.us",
		"https://management.usgovcloudapi.net", DATABRICKS_APP },
	    .marks = { "microsoftonline.us", "microsoft.us",
		"usgovcloudapi.net", "azure.us", NULL },
	},
	{
	    .name = "china",
	    .title = "Azure China (21Vianet)",
	    .authority = "https://login.chinacloudapi.cn",
	    .resources = { "https://storage.azure.com",
		"https://vault.azure.cn", "https://database.chinacloudapi.cn",
		"https://microsoftgraph.chinacloudapi.cn",
		"https://management.chinacloudapi.cn", DATABRICKS_APP },
	    .marks = { "chinacloudapi.cn", "azure.cn", NULL },
	},
};

const struct config_cloud_def *
config_cloud_def(int c)
{
	return c >= 0 && c < CONFIG_CLOUDS ? &clouds[c] : NULL;
}

const char *
config_cloud_name(int cloud)
{
	return cloud >= 0 && cloud < CONFIG_CLOUDS ? clouds[cloud].name : "?";
}

const char *
config_provider_name(int provider)
{
	switch (provider) {
	case CONFIG_PROVIDER_ENTRA:
		return "entra";
	case CONFIG_PROVIDER_OIDC:
		return "oidc";
	}
	return "?";
}

int
config_cloud_parse(const char *s)
{
	int c;

	for (c = 0; c < CONFIG_CLOUDS; c++)
		if (strcmp(s, clouds[c].name) == 0)
			return c;
	return -1;
}

int
config_cloud_parse_provider(const char *s)
{
	if (strcmp(s, "entra") == 0)
		return CONFIG_PROVIDER_ENTRA;
	if (strcmp(s, "oidc") == 0)
		return CONFIG_PROVIDER_OIDC;
	return -1;
}

int
config_cloud_service(const char *name, size_t n)
{
	int i;

	for (i = 0; i < CONFIG_CLOUD_SERVICES; i++)
		if (strlen(service_name[i]) == n &&
		    memcmp(service_name[i], name, n) == 0)
			return i;
	return -1;
}

int
config_cloud_resource(int cloud, const char *service, const char **out)
{
	int i;

	*out = NULL;
	if (cloud < 0 || cloud >= CONFIG_CLOUDS || service == NULL)
		return -EINVAL;
	i = config_cloud_service(service, strlen(service));
	if (i < 0)
		return -ENOENT;
	if (clouds[cloud].resources[i] == NULL)
		return -ENXIO;
	*out = clouds[cloud].resources[i];
	return 0;
}

int
config_cloud_expand(const struct config_cloud_def *c, const char *ref,
    char *dst, size_t dstsz)
{
	const char *name, *slash, *perm = ".default";
	size_t n;
	int i, r;

	if (dstsz > 0)
		dst[0] = '\0';
	if (ref == NULL || ref[0] != '@')
		return -EINVAL;
	name = ref + 1;
	slash = strchr(name, '/');
	n = slash != NULL ? (size_t)(slash - name) : strlen(name);
	if (slash != NULL) {
		perm = slash + 1;
		if (*perm == '\0' || config_check_has_ctl_or_space(perm))
			return -EINVAL;
	}
	if (n == 0)
		return -EINVAL;
	i = config_cloud_service(name, n);
	if (i < 0)
		return -ENOENT;
	if (c->resources[i] == NULL)
		return -ENXIO;
	r = snprintf(dst, dstsz, "%s/%s", c->resources[i], perm);
	if (r < 0 || (size_t)r >= dstsz) {
		if (dstsz > 0)
			dst[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

void
config_cloud_note(struct parser *p, const struct key *k)
{
	if (k->off == offsetof(struct config, cloud))
		p->cf->cloud_line = p->line;
	else if (k->off == offsetof(struct config, authority))
		p->cf->authority_line = p->line;
	else if (k->off == offsetof(struct config, off_graph_url))
		p->cf->graph_url_line = p->line;
	else if (k->off == offsetof(struct config, msi_resources_text))
		p->msi_resources_line = p->line;
}

int
config_cloud_resolve(struct parser *p, const struct config_cloud_def *c,
    struct config_scope *sc)
{
	char buf[CONFIG_SCOPE_MAX + 1], qb[CONFIG_QUOTE_MAX + 1];
	const char *name = sc->scope + 1;
	size_t n = strcspn(name, "/");
	char *s;
	int r;

	p->line = sc->line;
	if (p->cf->provider != CONFIG_PROVIDER_ENTRA) {
		config_err(p,
		    "%s: well-known resources ('@NAME') are Entra's; with "
		    "provider = %s, write the scope string",
		    sc->alias, config_provider_name(p->cf->provider));
		return -EINVAL;
	}
	r = config_cloud_expand(c, sc->scope, buf, sizeof(buf));
	if (r == -ENOENT) {
		config_err(p,
		    "%s: '%s' is not a well-known resource (known: @storage "
		    "@vault @sql @graph @arm @databricks)",
		    sc->alias, config_err_quote(qb, sizeof(qb), sc->scope));
		return -EINVAL;
	}
	if (r == -ENXIO) {
		config_err(p,
		    "%s: %s (@%.*s) does not exist in %s (cloud = %s); "
		    "remove the alias or write a scope string",
		    sc->alias, service_title[config_cloud_service(name, n)],
		    (int)n, name, c->title, c->name);
		return -EINVAL;
	}
	if (r == -ENAMETOOLONG) {
		config_err(p, "%s: scope longer than %d bytes", sc->alias,
		    CONFIG_SCOPE_MAX);
		return -EINVAL;
	}
	if (r < 0) {
		config_err(p, "%s: '%s' must be @NAME or @NAME/SCOPE",
		    sc->alias, config_err_quote(qb, sizeof(qb), sc->scope));
		return -EINVAL;
	}
	s = strdup(buf);
	if (s == NULL)
		return -ENOMEM;
	sc->preset = sc->scope;
	sc->scope = s;
	return 0;
}

int
config_cloud_msi_resource(struct parser *p, const char *name, size_t n,
    const char **out)
{
	const struct config_cloud_def *c = &clouds[p->cf->cloud];
	int i = config_cloud_service(name, n);

	*out = NULL;
	p->line = p->msi_resources_line;
	if (p->cf->provider != CONFIG_PROVIDER_ENTRA) {
		config_err(p,
		    "[msi] resources: well-known resources ('@NAME') are "
		    "Entra's; with provider = %s, write the resource",
		    config_provider_name(p->cf->provider));
		return -EINVAL;
	}
	if (i < 0 || c->resources[i] == NULL) {
		/* Unknown names were refused with the line already. */
		config_err(p,
		    "[msi] resources: %s (@%.*s) does not exist in %s "
		    "(cloud = %s)",
		    i < 0 ? "?" : service_title[i], (int)n, name, c->title,
		    c->name);
		return -EINVAL;
	}
	*out = c->resources[i];
	p->line = 0;
	return 0;
}

/* A default from the cloud for a key the file did not set. */
static int
set_default(char **field, const char *value)
{
	if (*field != NULL)
		return 0;
	*field = strdup(value);
	return *field != NULL ? 0 : -ENOMEM;
}

int
config_cloud_apply(struct parser *p)
{
	struct config *cf = p->cf;
	const struct config_cloud_def *c;
	size_t i;
	int r;

	if (cf->provider != CONFIG_PROVIDER_ENTRA && cf->cloud_line != 0) {
		p->line = cf->cloud_line;
		config_err(p,
		    "[entra] cloud is for Entra ID; provider = %s takes no "
		    "cloud (set authority to the provider's URL)",
		    config_provider_name(cf->provider));
		return -EINVAL;
	}
	c = &clouds[cf->cloud];
	if (set_default(&cf->authority, c->authority) < 0 ||
	    set_default(&cf->off_graph_url, c->resources[SVC_GRAPH]) < 0)
		return -ENOMEM;
	for (i = 0; i < cf->nscopes; i++) {
		if (cf->scopes[i].scope[0] != '@')
			continue;
		r = config_cloud_resolve(p, c, &cf->scopes[i]);
		if (r < 0)
			return r;
	}
	p->line = 0;
	return 0;
}

/*
 * The host of an http(s) URL or a scope built on one, lower-cased into
 * dst (userinfo and port cut). 0, or -EINVAL when s is no such URL.
 */
static int
host_of(const char *s, char *dst, size_t dstsz)
{
	const char *h, *e, *at;
	size_t n, i;

	if (strncasecmp(s, "https://", 8) == 0)
		h = s + 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		h = s + 7;
	else
		return -EINVAL;
	e = h + strcspn(h, "/?#");
	at = memchr(h, '@', (size_t)(e - h));
	if (at != NULL)
		h = at + 1;
	n = strcspn(h, ":/?#");
	if (n == 0 || n >= dstsz)
		return -EINVAL;
	for (i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)h[i]);
	dst[n] = '\0';
	return 0;
}

/* Is host mark itself or below it? */
static int
host_in(const char *host, const char *mark)
{
	size_t h = strlen(host), m = strlen(mark);

	if (h == m)
		return strcmp(host, mark) == 0;
	return h > m && host[h - m - 1] == '.' &&
	    strcmp(host + h - m, mark) == 0;
}

/* The cloud whose marks host carries, or -1. */
static int
cloud_of_host(const char *host)
{
	int c, j;

	for (c = 0; c < CONFIG_CLOUDS; c++)
		for (j = 0; j < CONFIG_CLOUD_MARKS && clouds[c].marks[j]; j++)
			if (host_in(host, clouds[c].marks[j]))
				return c;
	return -1;
}

/* The service whose resource in cloud c has this host, or -1. */
static int
service_of_host(int c, const char *host)
{
	char h[HOST_MAX];
	int i;

	for (i = 0; i < CONFIG_CLOUD_SERVICES; i++)
		if (clouds[c].resources[i] != NULL &&
		    host_of(clouds[c].resources[i], h, sizeof(h)) == 0 &&
		    strcmp(h, host) == 0)
			return i;
	return -1;
}

static void warn(const struct config *cf, unsigned line,
    void (*fn)(void *arg, const char *msg), void *arg, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
warn(const struct config *cf, unsigned line,
    void (*fn)(void *arg, const char *msg), void *arg, const char *fmt, ...)
{
	char msg[512], out[768];
	va_list ap;

	if (fn == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		(void)snprintf(out, sizeof(out), "%s:%u: %s", cf->path, line,
		    msg);
	else
		(void)snprintf(out, sizeof(out), "%s: %s", cf->path, msg);
	fn(arg, out);
}

/* The cloud another than cf's whose host s names, or -1. */
static int
other_cloud(const struct config *cf, const char *s, char *host, size_t hostsz)
{
	int c;

	if (host_of(s, host, hostsz) < 0)
		return -1;
	c = cloud_of_host(host);
	return c >= 0 && c != cf->cloud ? c : -1;
}

int
config_cloud_warnings(const struct config *cf,
    void (*fn)(void *arg, const char *msg), void *arg)
{
	const char *mine;
	char host[HOST_MAX], qb[CONFIG_QUOTE_MAX + 1];
	size_t i;
	int c, svc, n = 0;

	if (cf == NULL || cf->provider != CONFIG_PROVIDER_ENTRA)
		return 0;
	mine = clouds[cf->cloud].name;
	for (i = 0; i < cf->nscopes; i++) {
		const struct config_scope *sc = &cf->scopes[i];

		if (sc->preset != NULL)
			continue;
		c = other_cloud(cf, sc->scope, host, sizeof(host));
		if (c < 0)
			continue;
		svc = service_of_host(c, host);
		n++;
		if (svc >= 0)
			warn(cf, sc->line, fn, arg,
			    "warning: [scopes] %s names %s of the %s (%s), but "
			    "[entra] cloud = %s; write '@%s' to follow the cloud",
			    sc->alias, service_title[svc], clouds[c].title,
			    config_err_quote(qb, sizeof(qb), host), mine,
			    service_name[svc]);
		else
			warn(cf, sc->line, fn, arg,
			    "warning: [scopes] %s names a host of the %s (%s), "
			    "but [entra] cloud = %s",
			    sc->alias, clouds[c].title,
			    config_err_quote(qb, sizeof(qb), host), mine);
	}
	if (cf->authority_line != 0 && cf->authority != NULL &&
	    (c = other_cloud(cf, cf->authority, host, sizeof(host))) >= 0) {
		n++;
		warn(cf, cf->authority_line, fn, arg,
		    "warning: [entra] authority is a host of the %s (%s), but "
		    "cloud = %s; remove authority to use the cloud's",
		    clouds[c].title, config_err_quote(qb, sizeof(qb), host),
		    mine);
	}
	if (cf->graph_url_line != 0 && cf->off_graph_url != NULL &&
	    (c = other_cloud(cf, cf->off_graph_url, host, sizeof(host))) >= 0) {
		n++;
		warn(cf, cf->graph_url_line, fn, arg,
		    "warning: [offboarding] graph_url is a host of the %s (%s), "
		    "but [entra] cloud = %s; remove graph_url to use the "
		    "cloud's",
		    clouds[c].title, config_err_quote(qb, sizeof(qb), host),
		    mine);
	}
	return n;
}

/*
 * A URL for --check-config: as set, but userinfo ("user:pass@") is
 * never printed.
 */
static void
print_url(FILE *f, const char *url)
{
	const char *h = strstr(url, "://"), *e, *at;

	if (h == NULL) {
		fputs(url, f);
		return;
	}
	h += 3;
	e = h + strcspn(h, "/?#");
	at = memchr(h, '@', (size_t)(e - h));
	if (at == NULL) {
		fputs(url, f);
		return;
	}
	fprintf(f, "%.*s(userinfo hidden)%s", (int)(h - url), url, at);
}

void
config_cloud_print(const struct config *cf, FILE *f)
{
	const char *mine = config_cloud_name(cf->cloud);
	size_t i;

	fprintf(f, "[entra] provider = %s", config_provider_name(cf->provider));
	if (cf->provider == CONFIG_PROVIDER_ENTRA)
		fprintf(f, ", cloud = %s%s", mine,
		    cf->cloud_line != 0 ? "" : " (default)");
	fputs("\n[entra] authority = ", f);
	print_url(f, cf->authority);
	if (cf->authority_line != 0)
		fprintf(f, " (line %u)\n", cf->authority_line);
	else
		fprintf(f, " (cloud %s)\n", mine);
	for (i = 0; i < cf->nscopes; i++) {
		const struct config_scope *sc = &cf->scopes[i];

		fprintf(f, "[scopes] %s = %s", sc->alias, sc->scope);
		if (sc->preset != NULL)
			fprintf(f, " (%s, cloud %s)", sc->preset, mine);
		fputc('\n', f);
	}
	fprintf(f, "[scopes] default = %s\n", cf->default_alias);
	if (cf->msi_listen != NULL) {
		/* What the SDK endpoint serves, resolved. */
		fputs("[msi] resources =", f);
		for (i = 0; i < cf->msi_nresources; i++)
			fprintf(f, " %s", cf->msi_resources[i]);
		fputc('\n', f);
	}
	fputs("[offboarding] graph_url = ", f);
	print_url(f, cf->off_graph_url);
	if (cf->graph_url_line != 0)
		fprintf(f, " (line %u)\n", cf->graph_url_line);
	else
		fprintf(f, " (cloud %s)\n", mine);
}
