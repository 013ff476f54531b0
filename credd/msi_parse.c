/*
 * msi_parse.c - the pure checks of an SDK endpoint request (see
 * msi_parse.h). The order of the checks is the order of the errors a
 * client sees; msi.c does the caller proof between pre and post.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "entra/util.h"

#include "config.h"
#include "msi_parse.h"

void
msi_scan_header(struct msi_scan *s, const char *key)
{
	static const char *const refused[] = { "Forwarded", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP", "Via",
		"Origin", "Access-Control-Request-Method" };
	size_t i;

	if (key == NULL)
		return;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (strcasecmp(key, refused[i]) == 0)
			s->is_proxied = 1;
}

/*
 * Any case: MHD_lookup_connection_value matches argument names in any
 * case, so "resource=A&Resource=B" is a duplicate as well (it used to
 * pass with strcmp, serving A; found with fuzz_msi's contract).
 */
void
msi_scan_arg(struct msi_scan *s, const char *key)
{
	if (key == NULL)
		return;
	if (strcasecmp(key, "resource") == 0 && ++s->resource_n > 1)
		s->is_dup = 1;
	if (strcasecmp(key, "api-version") == 0 && ++s->api_n > 1)
		s->is_dup = 1;
}

int
msi_host_is_loopback(const char *host, unsigned port)
{
	char name[64];
	const char *colon, *end;
	struct in_addr a4;
	long long p;
	size_t n;

	if (host == NULL)
		return 0;
	if (host[0] == '[') {
		end = strchr(host, ']');
		if (end == NULL)
			return 0;
		n = (size_t)(end - host - 1);
		if (n >= sizeof(name))
			return 0;
		memcpy(name, host + 1, n);
		name[n] = '\0';
		if (strcmp(name, "::1") != 0)
			return 0;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return 0;
	} else {
		colon = strchr(host, ':');
		n = colon != NULL ? (size_t)(colon - host) : strlen(host);
		if (n == 0 || n >= sizeof(name))
			return 0;
		memcpy(name, host, n);
		name[n] = '\0';
		if (strcasecmp(name, "localhost") != 0 &&
		    (inet_pton(AF_INET, name, &a4) != 1 ||
			(ntohl(a4.s_addr) >> 24) != 127))
			return 0;
	}
	if (colon == NULL)
		return 1;
	return util_strtonum(colon + 1, 1, 65535, &p) == 0 &&
	    (unsigned)p == port;
}

int
msi_scope_of(const char *resource, char *buf, size_t sz)
{
	int n = snprintf(buf, sz, "%s/.default", resource);

	if (n < 0 || (size_t)n >= sz)
		return -ENAMETOOLONG;
	return 0;
}

static int
verdict(struct msi_verdict *v, unsigned status, const char *error,
    const char *desc, const char *audit)
{
	v->status = status;
	v->error = error;
	v->desc = desc;
	v->audit = audit;
	return -1;
}

/* Everything before the caller proof. */
static int
check_pre(const struct msi_request *in, const struct config *cf,
    struct msi_parsed *out)
{
	struct msi_verdict *v = &out->pre;
	const char *api = in->api_version;

	if (in->url != NULL && strcmp(in->url, MSI_APP_SERVICE_PATH) == 0)
		out->is_imds = 0;
	else if (in->url != NULL && cf->msi_imds &&
	    (strcmp(in->url, MSI_IMDS_PATH) == 0 ||
		strcmp(in->url, MSI_IMDS_PATH "/") == 0))
		out->is_imds = 1;
	else
		return verdict(v, 404, "not_found",
		    "credd: no such endpoint; "
		    "use " MSI_APP_SERVICE_PATH,
		    NULL);
	if (in->method == NULL || strcmp(in->method, "GET") != 0)
		return verdict(v, 405, "invalid_request",
		    "credd: only GET is served", NULL);
	if (in->scan.is_proxied)
		return verdict(v, 403, "forbidden",
		    "credd: requests through a "
		    "proxy or from a browser (Forwarded, X-Forwarded-*, Via, "
		    "Origin) are refused",
		    "proxy or browser headers");
	if (!msi_host_is_loopback(in->host, in->port))
		return verdict(v, 403, "forbidden",
		    "credd: the Host header "
		    "must name this loopback endpoint",
		    "Host is not loopback");
	if (in->has_body)
		return verdict(v, 400, "invalid_request",
		    "credd: a token request has no body", NULL);
	if (in->scan.is_dup)
		return verdict(v, 400, "invalid_request",
		    "credd: resource and api-version may appear once", NULL);
	if (out->is_imds) {
		if (in->metadata == NULL ||
		    strcasecmp(in->metadata, "true") != 0)
			return verdict(v, 400, "invalid_request",
			    "Required metadata header not specified", NULL);
		if (api == NULL || api[0] == '\0')
			return verdict(v, 400, "invalid_request",
			    "Required "
			    "query variable 'api-version' is missing",
			    NULL);
		return 0;
	}
	if (api == NULL || strcmp(api, MSI_APP_SERVICE_API) != 0)
		return verdict(v, 400, "invalid_request",
		    "credd: api-version must be " MSI_APP_SERVICE_API, NULL);
	if (in->identity == NULL || in->identity[0] == '\0')
		return verdict(v, 401, "unauthorized",
		    "credd: missing "
		    "X-IDENTITY-HEADER; set IDENTITY_HEADER "
		    "(eval \"$(credctl env)\")",
		    "no X-IDENTITY-HEADER");
	out->identity = in->identity;
	return 0;
}

/* The resource, checked once the caller is proven. */
static int
check_post(const struct msi_request *in, const struct config *cf,
    struct msi_parsed *out)
{
	struct msi_verdict *v = &out->post;
	const char *res = in->resource;

	if (res == NULL || res[0] == '\0' || strlen(res) > MSI_RESOURCE_MAX)
		return verdict(v, 400, "invalid_request",
		    "credd: the resource parameter is required", NULL);
	out->resource = res;
	if (!config_msi_resource_allowed(cf, res))
		return verdict(v, 400, "invalid_resource",
		    "credd: this "
		    "resource is not served here; ask your administrator to "
		    "add it to [msi] resources",
		    NULL);
	if (msi_scope_of(res, out->scope, sizeof(out->scope)) < 0)
		return verdict(v, 400, "invalid_request",
		    "credd: the resource parameter is required", NULL);
	return 0;
}

int
msi_parse_request(const struct msi_request *in, const struct config *cf,
    struct msi_parsed *out)
{
	memset(out, 0, sizeof(*out));
	if (check_pre(in, cf, out) < 0)
		return -1;
	return check_post(in, cf, out);
}
