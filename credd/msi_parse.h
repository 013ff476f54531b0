/*
 * msi_parse.h - the pure part of the SDK endpoint's request handling
 * (msi.c): which endpoint, the method, proxy and browser headers,
 * duplicated parameters, the Host check, the Metadata and
 * X-IDENTITY-HEADER presence, api-version, the resource and its scope.
 * No I/O, no allocation, no libmicrohttpd: msi.c feeds it what MHD
 * parsed, and fuzz/fuzz_msi.c feeds it arbitrary bytes.
 *
 * Use: msi_scan_header for every request header and msi_scan_arg for
 * every query argument (as received, in any order), then look up the
 * single values (first match, as MHD_lookup_connection_value does) and
 * call msi_parse_request. The caller proof (the endpoint secret, the
 * socket's uid) is not here: it happens between the two verdicts, so
 * the order of the errors a client sees is the one documented in msi.h.
 */
#ifndef CREDD_MSI_PARSE_H
#define CREDD_MSI_PARSE_H

#include <stddef.h>

struct config;

#define MSI_RESOURCE_MAX 512
#define MSI_SCOPE_MAX (MSI_RESOURCE_MAX + 16)
#define MSI_APP_SERVICE_PATH "/msi/token"
#define MSI_IMDS_PATH "/metadata/identity/oauth2/token"
#define MSI_APP_SERVICE_API "2019-08-01"

struct msi_scan {
	int is_proxied; /* Forwarded, X-Forwarded-*, Via, Origin, ... */
	int is_dup;	/* resource or api-version more than once */
	unsigned resource_n, api_n;
};

/* What MHD parsed out of one request (values NULL when absent). */
struct msi_request {
	const char *url; /* path, without the query */
	const char *method;
	int has_body;
	unsigned port; /* the endpoint's port (for Host) */
	struct msi_scan scan;
	const char *host;     /* Host */
	const char *metadata; /* Metadata */
	const char *identity; /* X-IDENTITY-HEADER */
	const char *api_version;
	const char *resource;
};

/* One verdict: status 0 is "go on"; else the error response to send. */
struct msi_verdict {
	unsigned status;   /* HTTP status, 0: none */
	const char *error; /* "error" of the body (a static string) */
	const char *desc;  /* "error_description" (static) */
	const char *audit; /* refusal reason to audit, or NULL */
};

struct msi_parsed {
	int is_imds; /* IMDS shape (else App Service) */
	/* Before the caller proof. */
	struct msi_verdict pre;
	/* App Service: the secret to check (in->identity); NULL for IMDS. */
	const char *identity;
	/* After the caller proof: the resource (in->resource) and scope. */
	struct msi_verdict post;
	const char *resource;
	char scope[MSI_SCOPE_MAX];
};

void msi_scan_header(struct msi_scan *s, const char *key);
void msi_scan_arg(struct msi_scan *s, const char *key);

/* Host: a loopback literal or localhost, with our port if any. 1 or 0. */
int msi_host_is_loopback(const char *host, unsigned port);

/*
 * The scope of a resource: R + "/.default", nothing else ("R/" keeps its
 * slash, a GUID gives GUID/.default). 0, or -ENAMETOOLONG when it does
 * not fit in sz (never for a resource msi_parse_request accepted).
 */
int msi_scope_of(const char *resource, char *buf, size_t sz);

/*
 * Check in against cf ([msi] imds and resources). Always fills out
 * (out's pointers point into in or at static strings); returns 0 when
 * both verdicts say go on, -1 otherwise.
 */
int msi_parse_request(const struct msi_request *in, const struct config *cf,
    struct msi_parsed *out);

#endif
