/*
 * callback_parse.c - the strict, bounded parser of a sign-in callback
 * request target (see callback_parse.h). The order of the checks is the
 * order of the answers a browser sees: the target's length (414), its
 * bytes (400), the path (404), the method (405), then the query (400).
 *
 * Must never: allocate anything but the code's struct secret, leave a
 * decoded copy of the code on the stack (wiped before return), or
 * accept a request the header says it refuses.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "entra/secret.h"
#include "entra/util.h"

#include "callback_parse.h"

enum { K_CODE, K_STATE, K_ERROR, K_DESC, K_ISS, K_N };

static const char *const key_names[K_N] = { "code", "state", "error",
	"error_description", "iss" };

static int
refuse(struct callback_target *t, unsigned status, const char *why, int err)
{
	t->kind = CALLBACK_REFUSED;
	t->status = status;
	t->why = why;
	return err;
}

static int
is_b64url(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int
is_unreserved(int c)
{
	return is_b64url(c) || c == '.' || c == '~';
}

static int
is_visible(int c)
{
	return c > 0x20 && c < 0x7f;
}

int
callback_id_is_valid(const char *s, size_t n)
{
	size_t i;

	if (s == NULL ||
	    (n != CALLBACK_ID_LEN &&
		(n < CALLBACK_ID_CLUSTER_MIN || n > CALLBACK_ID_MAX)))
		return 0;
	for (i = 0; i < n; i++)
		if (!is_b64url((unsigned char)s[i]))
			return 0;
	return 1;
}

/*
 * %-decode src[0, n) into dst (dstsz bytes with the NUL), '+' as a
 * space. 0 and *len; -EMSGSIZE when it does not fit; -EBADMSG for a bad
 * escape or a NUL.
 */
static int
decode(const char *src, size_t n, char *dst, size_t dstsz, size_t *len)
{
	size_t i, o = 0;
	int c, hi, lo;

	for (i = 0; i < n; i++) {
		c = (unsigned char)src[i];
		if (c == '%') {
			if (n - i < 3)
				return -EBADMSG;
			hi = util_hexval((unsigned char)src[i + 1]);
			lo = util_hexval((unsigned char)src[i + 2]);
			if (hi < 0 || lo < 0)
				return -EBADMSG;
			c = hi * 16 + lo;
			i += 2;
			if (c == 0)
				return -EBADMSG;
		} else if (c == '+')
			c = ' ';
		if (o + 1 >= dstsz)
			return -EMSGSIZE;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	*len = o;
	return 0;
}

/* Every '%' in s[0, n) starts a valid escape of a byte other than NUL. */
static int
escapes_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] != '%')
			continue;
		if (n - i < 3 || util_hexval((unsigned char)s[i + 1]) < 0 ||
		    util_hexval((unsigned char)s[i + 2]) < 0 ||
		    (s[i + 1] == '0' && s[i + 2] == '0'))
			return 0;
		i += 2;
	}
	return 1;
}

/* Every byte of s[0, n) passes ok(). */
static int
all_of(const char *s, size_t n, int (*ok)(int))
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!ok((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Entra's descriptions carry CR LF: shown, never trusted, as '?'. */
static void
tame(char *s)
{
	for (; *s != '\0'; s++)
		if (!(*s >= 0x20 && *s < 0x7f))
			*s = *s == '\r' || *s == '\n' || *s == '\t' ? ' ' : '?';
}

static int
take_code(struct callback_target *t, const char *v, size_t n)
{
	char buf[CALLBACK_CODE_MAX + 1];
	size_t len = 0;
	int r;

	r = decode(v, n, buf, sizeof(buf), &len);
	if (r == 0 && (len == 0 || !all_of(buf, len, is_visible)))
		r = -EBADMSG;
	if (r == 0) {
		t->code = secret_new(buf, len);
		if (t->code == NULL)
			r = -ENOMEM;
	}
	secret_wipe(buf, sizeof(buf));
	return r;
}

/* One known key's value into t. */
static int
take(struct callback_target *t, int k, const char *v, size_t n)
{
	size_t len = 0;
	int r;

	switch (k) {
	case K_CODE:
		return take_code(t, v, n);
	case K_STATE:
		r = decode(v, n, t->state, sizeof(t->state), &len);
		if (r == 0 &&
		    (len == 0 || !all_of(t->state, len, is_unreserved)))
			r = -EBADMSG;
		return r;
	case K_ERROR:
		r = decode(v, n, t->error, sizeof(t->error), &len);
		if (r == 0 && (len == 0 || !all_of(t->error, len, is_visible)))
			r = -EBADMSG;
		t->has_error = 1;
		return r;
	case K_ISS:
		/* RFC 9207: the broker compares it with the discovered one. */
		r = decode(v, n, t->iss, sizeof(t->iss), &len);
		if (r == 0 &&
		    (strncmp(t->iss, "https://", 8) != 0 ||
			!all_of(t->iss, len, is_visible)))
			r = -EBADMSG;
		return r;
	default:
		r = decode(v, n, t->error_desc, sizeof(t->error_desc), &len);
		if (r == 0)
			tame(t->error_desc);
		return r;
	}
}

/* The key's index, or -1 (unknown, or too long to be one of ours). */
static int
key_of(const char *s, size_t n, int *err)
{
	char buf[24];
	size_t len = 0;
	int k, r;

	*err = 0;
	r = decode(s, n, buf, sizeof(buf), &len);
	if (r == -EMSGSIZE)
		return -1;
	if (r < 0) {
		*err = r;
		return -1;
	}
	for (k = 0; k < K_N; k++)
		if (strcmp(buf, key_names[k]) == 0)
			return k;
	return -1;
}

static int
parse_query(struct callback_target *t, const char *q)
{
	const char *item, *end, *eq;
	unsigned seen = 0;
	int k, r;

	for (item = q; *item != '\0'; item = *end != '\0' ? end + 1 : end) {
		end = strchr(item, '&');
		if (end == NULL)
			end = item + strlen(item);
		if (end == item)
			continue;
		eq = memchr(item, '=', (size_t)(end - item));
		k = key_of(item, (size_t)((eq != NULL ? eq : end) - item), &r);
		if (r < 0)
			return refuse(t, 400, "a malformed %-escape", r);
		if (k < 0 && !escapes_ok(item, (size_t)(end - item)))
			return refuse(t, 400, "a malformed %-escape", -EBADMSG);
		if (k < 0)
			continue; /* not ours: ignored */
		if (seen & (1u << k))
			return refuse(t, 400, "a parameter given twice",
			    -EBADMSG);
		seen |= 1u << k;
		if (eq == NULL)
			return refuse(t, 400, "a parameter without a value",
			    -EBADMSG);
		r = take(t, k, eq + 1, (size_t)(end - eq - 1));
		if (r == -EMSGSIZE)
			return refuse(t, 400, "a parameter is too long", r);
		if (r == -ENOMEM)
			return refuse(t, 500, "out of memory", r);
		if (r < 0)
			return refuse(t, 400, "a malformed parameter", r);
	}
	if (!(seen & (1u << K_STATE)))
		return refuse(t, 400, "the answer carries no state", -EBADMSG);
	if ((seen & (1u << K_CODE)) && (seen & (1u << K_ERROR)))
		return refuse(t, 400, "the answer carries both code and error",
		    -EBADMSG);
	if (!(seen & ((1u << K_CODE) | (1u << K_ERROR))))
		return refuse(t, 400,
		    "the answer carries neither code nor error", -EBADMSG);
	if ((seen & (1u << K_DESC)) && !(seen & (1u << K_ERROR)))
		return refuse(t, 400, "error_description without error",
		    -EBADMSG);
	return 0;
}

int
callback_parse(const char *method, const char *target,
    struct callback_target *out)
{
	const size_t lp = strlen(CALLBACK_LOGIN_PREFIX);
	const size_t cp = strlen(CALLBACK_REDIRECT_PATH);
	const char *q;
	size_t n, pathlen;
	int r;

	memset(out, 0, sizeof(*out));
	if (target == NULL)
		return refuse(out, 400, "no request target", -EBADMSG);
	n = strnlen(target, CALLBACK_TARGET_MAX + 1);
	if (n > CALLBACK_TARGET_MAX)
		return refuse(out, 414, "the address is too long", -EMSGSIZE);
	if (!all_of(target, n, is_visible) || memchr(target, '#', n) != NULL)
		return refuse(out, 400, "the address has bytes it may not have",
		    -EBADMSG);
	q = strchr(target, '?');
	pathlen = q != NULL ? (size_t)(q - target) : n;
	if (pathlen > lp && strncmp(target, CALLBACK_LOGIN_PREFIX, lp) == 0 &&
	    callback_id_is_valid(target + lp, pathlen - lp))
		out->kind = CALLBACK_LOGIN;
	else if (pathlen == cp &&
	    strncmp(target, CALLBACK_REDIRECT_PATH, cp) == 0)
		out->kind = CALLBACK_REDEEM;
	else
		return refuse(out, 404, "no such page", -ENOENT);
	if (method == NULL ||
	    (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
		return refuse(out, 405, "only GET is served", -EOPNOTSUPP);
	out->is_head = strcmp(method, "HEAD") == 0;
	if (out->kind == CALLBACK_LOGIN) {
		memcpy(out->id, target + lp, pathlen - lp);
		out->id[pathlen - lp] = '\0';
		return 0;
	}
	r = parse_query(out, q != NULL ? q + 1 : "");
	if (r < 0) {
		secret_free(out->code);
		out->code = NULL;
	}
	return r;
}

void
callback_target_clear(struct callback_target *t)
{
	if (t == NULL)
		return;
	secret_free(t->code);
	secret_wipe(t, sizeof(*t));
}
