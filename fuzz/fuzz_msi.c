/*
 * fuzz_msi.c - libFuzzer target for the SDK endpoint's request handling
 * (credd/msi_parse.c, called by msi.c on every request): the endpoint
 * paths, the method, the proxy and browser header scan, duplicated
 * parameters, the Host check, Metadata and X-IDENTITY-HEADER presence,
 * api-version, the resource check against [msi] resources and the
 * resource to scope mapping.
 *
 * Input: byte 0 holds flags (bit 0: a config with imds = no; bit 1: the
 * request had a body; bit 2: the endpoint listens on another port than
 * the seeds' Host says). The rest is a request head as text:
 *   METHOD SP TARGET LF   (TARGET = path [? query])
 *   Name: value LF        (any number)
 * libmicrohttpd parses the real request line and headers; here a small
 * stand-in does what MHD hands msi.c: the path and every query key and
 * value %-decoded ('+' is a space in the query), a query item without
 * '=' has a NULL value, lookups take the first case-insensitive match.
 * MHD's own parser is fuzzed upstream; what is fuzzed here is ours.
 *
 * Must never: accept a request that fails a documented check (trapped
 * below), or read past what it was given.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "entra/util.h"

#include "config.h"
#include "msi_parse.h"

#define FUZZ_PORT 50342
#define FUZZ_MAXKV 128

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_conf_head[] =
    "[entra]\n"
    "authority = https://127.0.0.1:8443\n"
    "tenant = 72f988bf-86f1-41af-91ab-2d7cd011db47\n"
    "client_id = 04b07795-8ddb-461a-bbee-02f9e1bf7b46\n"
    "[scopes]\n"
    "storage = https://storage.azure.com/.default\n"
    "databricks = 2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default\n"
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

static struct config *cf_imds, *cf_noimds;

struct kv {
	char *key, *value;
};

static struct config *
load(const char *imds)
{
	char text[2048], err[256];
	struct config *cf = NULL;
	size_t n;

	n = strlen(fuzz_conf_head);
	memcpy(text, fuzz_conf_head, n);
	n += (size_t)snprintf(text + n, sizeof(text) - n, "imds = %s\n", imds);
	if (config_parse("fuzz_msi.conf", text, n, &cf, err, sizeof(err)) < 0)
		abort();
	return cf;
}

/* %XX (and '+' when plus) decoded in place, as MHD does. */
static void
unescape(char *s, int plus)
{
	char *w = s;
	int h, l;

	for (; *s != '\0'; s++) {
		if (plus && *s == '+') {
			*w++ = ' ';
		} else if (*s == '%' &&
		    (h = util_hexval((unsigned char)s[1])) >= 0 &&
		    (l = util_hexval((unsigned char)s[2])) >= 0) {
			*w++ = (char)(h * 16 + l);
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

static const char *
lookup(const struct kv *v, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(v[i].key, key) == 0)
			return v[i].value;
	return NULL;
}

/* How many items lookup() could have picked key from. */
static size_t
count(const struct kv *v, size_t n, const char *key)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		if (strcasecmp(v[i].key, key) == 0)
			c++;
	return c;
}

static size_t
split_query(char *q, struct kv *args, size_t max)
{
	char *item, *eq;
	size_t n = 0;

	while (q != NULL && n < max) {
		item = q;
		q = strchr(q, '&');
		if (q != NULL)
			*q++ = '\0';
		if (item[0] == '\0')
			continue;
		eq = strchr(item, '=');
		if (eq != NULL)
			*eq++ = '\0';
		unescape(item, 1);
		if (eq != NULL)
			unescape(eq, 1);
		args[n].key = item;
		args[n].value = eq;
		n++;
	}
	return n;
}

static size_t
split_headers(char *p, struct kv *hdrs, size_t max)
{
	char *line, *colon;
	size_t n = 0;

	while (p != NULL && n < max) {
		line = p;
		p = strchr(p, '\n');
		if (p != NULL)
			*p++ = '\0';
		colon = strchr(line, ':');
		if (colon == NULL || colon == line)
			continue;
		*colon++ = '\0';
		while (*colon == ' ' || *colon == '\t')
			colon++;
		hdrs[n].key = line;
		hdrs[n].value = colon;
		n++;
	}
	return n;
}

/* The documented contract of a verdict. */
static void
check_verdict(const struct msi_verdict *v)
{
	if (v->status == 0)
		return;
	if (v->error == NULL || v->desc == NULL)
		__builtin_trap();
	switch (v->status) {
	case 400:
	case 401:
	case 403:
	case 404:
	case 405:
		break;
	default:
		__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kv hdrs[FUZZ_MAXKV], args[FUZZ_MAXKV];
	struct msi_request in = { 0 };
	struct msi_parsed out;
	const struct config *cf;
	static char get[] = "GET";
	char *buf, *line, *rest, *target, *query, *sp;
	size_t nh, na, i, rl;
	int flags, rc;

	if (cf_imds == NULL) {
		cf_imds = load("yes");
		cf_noimds = load("no");
	}
	if (size < 1)
		return 0;
	flags = data[0];
	cf = flags & 1 ? cf_noimds : cf_imds;
	buf = malloc(size);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';

	line = buf;
	rest = strchr(buf, '\n');
	if (rest != NULL)
		*rest++ = '\0';
	sp = strchr(line, ' ');
	if (sp != NULL) {
		*sp = '\0';
		target = sp + 1;
	} else {
		target = line;
		line = get;
	}
	query = strchr(target, '?');
	if (query != NULL)
		*query++ = '\0';
	unescape(target, 0);
	na = split_query(query, args, FUZZ_MAXKV);
	nh = split_headers(rest, hdrs, FUZZ_MAXKV);

	in.url = target;
	in.method = line;
	in.has_body = (flags & 2) != 0;
	in.port = flags & 4 ? FUZZ_PORT + 1 : FUZZ_PORT;
	for (i = 0; i < nh; i++)
		msi_scan_header(&in.scan, hdrs[i].key);
	for (i = 0; i < na; i++)
		msi_scan_arg(&in.scan, args[i].key);
	in.host = lookup(hdrs, nh, "Host");
	in.metadata = lookup(hdrs, nh, "Metadata");
	in.identity = lookup(hdrs, nh, "X-IDENTITY-HEADER");
	in.api_version = lookup(args, na, "api-version");
	in.resource = lookup(args, na, "resource");

	rc = msi_parse_request(&in, cf, &out);
	check_verdict(&out.pre);
	check_verdict(&out.post);
	if ((rc == 0) != (out.pre.status == 0 && out.post.status == 0))
		__builtin_trap();
	if (out.pre.status != 0 && out.post.status != 0)
		__builtin_trap(); /* post is decided only after pre passed */
	if (rc == 0) {
		/* Everything a served request must have passed. */
		if (strcmp(in.method, "GET") != 0 || in.has_body ||
		    in.scan.is_proxied || in.scan.is_dup ||
		    !msi_host_is_loopback(in.host, in.port))
			__builtin_trap();
		if (out.is_imds ?
			(!cf->msi_imds || in.metadata == NULL) :
			(strcmp(in.url, MSI_APP_SERVICE_PATH) != 0 ||
			    out.identity == NULL || out.identity[0] == '\0'))
			__builtin_trap();
		/* Once: in any case, as the lookup matches in any case. */
		if (count(args, na, "resource") != 1 ||
		    count(args, na, "api-version") > 1)
			__builtin_trap();
		if (out.resource == NULL || out.resource != in.resource ||
		    !config_msi_resource_allowed(cf, out.resource))
			__builtin_trap();
		rl = strlen(out.resource);
		if (rl == 0 || rl > MSI_RESOURCE_MAX ||
		    strncmp(out.scope, out.resource, rl) != 0 ||
		    strcmp(out.scope + rl, "/.default") != 0)
			__builtin_trap();
	}
	free(buf);
	return 0;
}
