/*
 * http_req.c - one request's libcurl easy handle for http.c: its options
 * (HTTPS only, no redirects, certificate checks kept, the proxy from
 * config and never the environment, the body without a copy), its
 * headers (a fresh client-request-id), the response body in a buffer
 * grown without realloc and capped at max_body, Retry-After (seconds or
 * an HTTP date, capped), and the count of names libcurl would resolve
 * itself.
 *
 * Must never: set CURLOPT_VERBOSE, let curl copy the request body
 * (CURLOPT_COPYPOSTFIELDS), leave an unwiped copy of a response body, or
 * log one. Its callbacks run inside curl: they touch only their request.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

#include "entra/secret.h"
#include "entra/version.h"
#include "http.h"
#include "http_int.h"

#define HTTP_USER_AGENT "credd/" ENTRA_VERSION
#define HTTP_RETRY_AFTER_MAX 3600
/* --- response buffer --------------------------------------------------- */

void
http_req_buf_free(struct http_req *req)
{
	if (req->buf != NULL) {
		secret_wipe(req->buf, req->cap);
		free(req->buf);
	}
	req->buf = NULL;
	req->len = req->cap = 0;
}

/* Grow without realloc, so no unwiped copy of the body is left behind. */
static int
buf_reserve(struct http_req *req, size_t need)
{
	size_t cap = req->cap > 0 ? req->cap : 1024;
	size_t len = req->len;
	char *nb;

	if (need <= req->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	nb = malloc(cap);
	if (nb == NULL)
		return -ENOMEM;
	if (len > 0)
		memcpy(nb, req->buf, len);
	nb[len] = '\0';
	http_req_buf_free(req);
	req->buf = nb;
	req->cap = cap;
	req->len = len;
	return 0;
}

static size_t
on_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_req *req = userp;
	size_t n = size * nmemb;

	if (n > req->h->max_body || req->len > req->h->max_body - n) {
		req->is_over_cap = true;
		return 0; /* CURLE_WRITE_ERROR, mapped to -EMSGSIZE */
	}
	if (buf_reserve(req, req->len + n + 1) < 0)
		return 0;
	memcpy(req->buf + req->len, data, n);
	req->len += n;
	req->buf[req->len] = '\0';
	return n;
}

/* --- Retry-After ------------------------------------------------------- */

static int64_t
clamp_retry(int64_t s)
{
	if (s < 0)
		return 0;
	return s > HTTP_RETRY_AFTER_MAX ? HTTP_RETRY_AFTER_MAX : s;
}

/* "120" or an HTTP date (RFC 9110 10.2.3); -1 if neither. */
static int64_t
parse_retry_after(const char *v, size_t len)
{
	char tmp[128];
	int64_t s = 0;
	time_t t;
	size_t i;

	while (len > 0 && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len > 0 &&
	    (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r' ||
		v[len - 1] == '\n'))
		len--;
	if (len == 0 || len >= sizeof(tmp))
		return -1;
	for (i = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++)
		if (s <= HTTP_RETRY_AFTER_MAX)
			s = s * 10 + (v[i] - '0');
	if (i == len)
		return clamp_retry(s);
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	t = curl_getdate(tmp, NULL);
	if (t == (time_t)-1)
		return -1;
	return clamp_retry((int64_t)t - (int64_t)time(NULL));
}

/*
 * Cache-Control's max-age (RFC 9111 5.2.2.1) in seconds, -1 when absent
 * or when no-store / no-cache say not to keep the answer at all. Bounded
 * to 10 years; the caller clamps further.
 */
static int64_t
parse_max_age(const char *v, size_t len)
{
	char buf[256];
	const char *p;
	int64_t age = -1;

	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	for (p = buf; *p != '\0'; p++)
		if ((p == buf || p[-1] == ' ' || p[-1] == ',' ||
			p[-1] == '\t') &&
		    (strncasecmp(p, "no-store", 8) == 0 ||
			strncasecmp(p, "no-cache", 8) == 0))
			return -1;
	p = strcasestr(buf, "max-age=");
	if (p != NULL && (p == buf || strchr(" ,\t", p[-1]) != NULL)) {
		age = 0;
		for (p += 8; *p >= '0' && *p <= '9'; p++) {
			age = age * 10 + (*p - '0');
			if (age > 10 * 365 * 86400)
				return 10 * 365 * 86400;
		}
	}
	return age;
}

static size_t
on_header(char *data, size_t size, size_t nitems, void *userp)
{
	static const char name[] = "retry-after:";
	static const char cc[] = "cache-control:";
	struct http_req *req = userp;
	size_t n = size * nitems;

	/* A new status line (after 100 Continue): forget the old headers. */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		req->retry_after = -1;
		req->max_age = -1;
	} else if (n > sizeof(cc) - 1 &&
	    strncasecmp(data, cc, sizeof(cc) - 1) == 0)
		req->max_age =
		    parse_max_age(data + sizeof(cc) - 1, n - (sizeof(cc) - 1));
	else if (n > sizeof(name) - 1 &&
	    strncasecmp(data, name, sizeof(name) - 1) == 0)
		req->retry_after = parse_retry_after(data + sizeof(name) - 1,
		    n - (sizeof(name) - 1));
	return n;
}

/*
 * CURLOPT_RESOLVER_START_FUNCTION: libcurl is about to resolve a name
 * itself, which it does for an address too (it checks for one after
 * this call). For a name that means resolve.c was bypassed: counted, so
 * tests see it; QUICK_EXIT still keeps that thread off the loop.
 */
static int
on_resolver_start(void *resolver_state, void *reserved, void *userdata)
{
	struct http_req *req = userdata;

	(void)resolver_state;
	(void)reserved;
	if (!req->is_literal)
		req->h->ncurl_resolves++;
	return 0;
}

/* A random UUIDv4 (RFC 9562 5.4) from getrandom. */
static int
uuid4(char dst[37])
{
	unsigned char b[16];
	ssize_t n;
	int i, o = 0;

	n = getrandom(b, sizeof(b), 0);
	if (n != (ssize_t)sizeof(b))
		return n < 0 ? -errno : -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		static const char hex[] = "0123456789abcdef";

		if (i == 4 || i == 6 || i == 8 || i == 10)
			dst[o++] = '-';
		dst[o++] = hex[b[i] >> 4];
		dst[o++] = hex[b[i] & 0x0f];
	}
	dst[o] = '\0';
	return 0;
}

/*
 * "Authorization: Bearer TOKEN" (a Graph call with the offboarding app
 * token). curl_slist_append copies the line; http_req_headers_free wipes
 * that copy, and ours is wiped here.
 */
static int
bearer_header(struct http_req *req, const struct secret *bearer)
{
	static const char pre[] = "Authorization: Bearer ";
	const size_t pl = sizeof(pre) - 1;
	struct curl_slist *l;
	char *line;

	line = malloc(pl + bearer->len + 1);
	if (line == NULL)
		return -ENOMEM;
	memcpy(line, pre, pl);
	memcpy(line + pl, bearer->ptr, bearer->len);
	line[pl + bearer->len] = '\0';
	l = curl_slist_append(req->headers, line);
	secret_wipe(line, pl + bearer->len);
	free(line);
	if (l == NULL)
		return -ENOMEM;
	req->headers = l;
	return 0;
}

void
http_req_headers_free(struct http_req *req)
{
	struct curl_slist *l;

	for (l = req->headers; l != NULL; l = l->next)
		if (l->data != NULL)
			secret_wipe(l->data, strlen(l->data));
	curl_slist_free_all(req->headers);
	req->headers = NULL;
}

int
http_req_headers(struct http_req *req, const struct secret *bearer)
{
	char rid[37], line[64];
	const char *fixed[] = {
		bearer != NULL ?
		    "Content-Type: application/json" :
		    "Content-Type: application/x-www-form-urlencoded",
		"Accept: application/json", "x-client-SKU: credd",
		"Expect:", /* no 100-continue round trip */
	};
	struct curl_slist *l;
	size_t i;
	int r;

	if (bearer != NULL) {
		r = bearer_header(req, bearer);
		if (r < 0)
			return r;
	}

	/* A GET has no body, so no Content-Type. */
	for (i = req->is_get ? 1 : 0; i < sizeof(fixed) / sizeof(fixed[0]);
	     i++) {
		l = curl_slist_append(req->headers, fixed[i]);
		if (l == NULL)
			return -ENOMEM;
		req->headers = l;
	}
	r = uuid4(rid);
	if (r < 0)
		return r;
	r = snprintf(line, sizeof(line), "client-request-id: %s", rid);
	if (r < 0 || (size_t)r >= sizeof(line))
		return -EIO;
	l = curl_slist_append(req->headers, line);
	if (l == NULL)
		return -ENOMEM;
	req->headers = l;
	return 0;
}

#define SETOPT(e, o, v)                                                        \
	do {                                                                   \
		if (curl_easy_setopt((e), (o), (v)) != CURLE_OK)               \
			return -EINVAL;                                        \
	} while (0)

int
http_req_setup(struct http *h, struct http_req *req, const char *url)
{
	CURL *e = req->easy;
	long tmo = h->timeout_sec > 0 ? h->timeout_sec : 10;

	SETOPT(e, CURLOPT_URL, url);
	SETOPT(e, CURLOPT_PROTOCOLS_STR, "https");
	SETOPT(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SETOPT(e, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(e, CURLOPT_NOSIGNAL, 1L);
	SETOPT(e, CURLOPT_TIMEOUT, tmo);
	SETOPT(e, CURLOPT_CONNECTTIMEOUT, tmo);
	SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Should libcurl resolve a name itself after all (see the top), a
	 * removal mid-lookup detaches its thread instead of joining it. */
	SETOPT(e, CURLOPT_QUICK_EXIT, 1L);
	SETOPT(e, CURLOPT_RESOLVER_START_FUNCTION, on_resolver_start);
	SETOPT(e, CURLOPT_RESOLVER_START_DATA, req);
	/* Our CURLOPT_RESOLVE entry must not go stale during the transfer. */
	SETOPT(e, CURLOPT_DNS_CACHE_TIMEOUT, tmo + 60);
	/* SSL_VERIFYPEER and SSL_VERIFYHOST keep their secure defaults. */
	if (h->ca_file != NULL)
		SETOPT(e, CURLOPT_CAINFO, h->ca_file);
	if (h->proxy != NULL) {
		SETOPT(e, CURLOPT_PROXY, h->proxy);
		SETOPT(e, CURLOPT_NOPROXY, ""); /* ignore $no_proxy */
	} else {
		/* "" turns off $https_proxy & co; "*" turns off $no_proxy. */
		SETOPT(e, CURLOPT_PROXY, "");
		SETOPT(e, CURLOPT_NOPROXY, "*");
	}
	SETOPT(e, CURLOPT_USERAGENT, HTTP_USER_AGENT);
	SETOPT(e, CURLOPT_HTTPHEADER, req->headers);
	if (req->is_get) {
		SETOPT(e, CURLOPT_HTTPGET, 1L);
	} else {
		SETOPT(e, CURLOPT_POST, 1L);
		/* Not COPYPOSTFIELDS: curl's copy would not be wiped. */
		SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)req->body->len);
		SETOPT(e, CURLOPT_POSTFIELDS, req->body->ptr);
	}
	/* Refuses early when Content-Length is known; on_write caps the rest. */
	SETOPT(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_body);
	SETOPT(e, CURLOPT_WRITEFUNCTION, on_write);
	SETOPT(e, CURLOPT_WRITEDATA, req);
	SETOPT(e, CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(e, CURLOPT_HEADERDATA, req);
	SETOPT(e, CURLOPT_PRIVATE, req);
	return 0;
}
