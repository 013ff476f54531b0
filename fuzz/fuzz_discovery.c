/*
 * fuzz_discovery.c - libFuzzer target for the OpenID discovery document
 * an IdP (or whoever answers in its place) sends (credd/discovery_doc.c:
 * discovery_doc_parse under Entra's rules, then discovery_doc_issuer as
 * flow.c uses it).
 *
 * Input: the response body, as http.c hands it over (any bytes).
 *
 * Must never: accept a document whose endpoints are not https:// URLs on
 * the authority's host, accept an issuer that is not the authority's,
 * leave a field filled after a refusal, refuse without a reason, or read
 * past what it was given.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "discovery_doc.h"

#define AUTH "https://login.microsoftonline.com"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_endpoint(const char *url)
{
	static const char host[] = AUTH "/";

	if (url[0] != '\0' && strcasecmp(url, AUTH) != 0 &&
	    strcasecmp(url, AUTH ":443") != 0 &&
	    strncasecmp(url, host, sizeof(host) - 1) != 0 &&
	    strncasecmp(url, "https://login.microsoftonline.com:443/", 38) != 0)
		abort();
	if (strpbrk(url, "?# @") != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct discovery_rules rules = { .authority = AUTH,
		.tenant = "organizations" };
	struct discovery_doc d, zero;
	char why[DISCOVERY_WHY_MAX], iss[DISCOVERY_URL_MAX];
	int r;

	memset(&zero, 0, sizeof(zero));
	r = discovery_doc_parse((const char *)data, size, &rules, &d, why,
	    sizeof(why));
	if (r < 0) {
		if (memcmp(&d, &zero, sizeof(d)) != 0 || why[0] == '\0' ||
		    (r != -EBADMSG && r != -EMSGSIZE && r != -ENOMEM))
			abort();
		return 0;
	}
	if (d.token_endpoint[0] == '\0' ||
	    strncasecmp(d.issuer, AUTH "/", sizeof(AUTH)) != 0)
		abort();
	check_endpoint(d.token_endpoint);
	check_endpoint(d.authorization_endpoint);
	check_endpoint(d.device_authorization_endpoint);
	check_endpoint(d.end_session_endpoint);
	check_endpoint(d.jwks_uri);
	r = discovery_doc_issuer(&d, "72f988bf-86f1-41af-91ab-2d7cd011db47",
	    iss, sizeof(iss));
	if (r < 0 && r != -ENAMETOOLONG)
		abort();
	return 0;
}
