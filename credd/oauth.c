/*
 * oauth.c - Entra v2.0 OAuth without the network: endpoint URLs, form
 * bodies for the device-code and refresh grants, parsing of token and
 * devicecode replies and of error replies (which oauth_class.c then
 * classifies), and the resource a scope names. The id_token's account
 * claims are read in oauth_id_token.c.
 *
 * Must never: log, or copy a token, code or body into an error message
 * or an oauth_error field. Token strings are copied out of jansson into
 * struct secret at once and the JSON tree is released before returning
 * (credd installs a wiping allocator for jansson). An error reply's
 * error_description is never read: it is free text and can name the
 * user.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <jansson.h>

#include "entra/secret.h"
#include "entra/util.h"
#include "http.h"
#include "oauth.h"
#include "oauth_int.h"

#define OAUTH_GRAPH_RESOURCE "https://graph.microsoft.com"
#define OAUTH_I64_MAX 2147483647LL /* lifetimes beyond 68 years are malformed */
#define OAUTH_USER_CODE_MAX 64
#define OAUTH_URI_MAX 2048
#define OAUTH_MESSAGE_MAX 1024
#define OAUTH_SCOPE_MAX 4096

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* --- small JSON helpers ------------------------------------------------ */

/*
 * An integer field that may come as a number or a decimal string
 * (v1-like endpoints send "3599"). Absent or null: def. Anything else,
 * or a value outside [min, max]: -EBADMSG.
 */
static int
json_get_i64(const json_t *o, const char *key, int64_t def, int64_t min,
    int64_t max, int64_t *out)
{
	const json_t *v = json_object_get(o, key);
	long long n;
	double d;

	*out = def;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		n = json_integer_value(v);
	} else if (json_is_real(v)) {
		d = json_real_value(v);
		if (!(d >= (double)min && d <= (double)max) ||
		    d != (double)(long long)d)
			return -EBADMSG;
		n = (long long)d;
	} else if (json_is_string(v)) {
		if (util_strtonum(json_string_value(v), min, max, &n) < 0)
			return -EBADMSG;
	} else
		return -EBADMSG;
	if (n < min || n > max)
		return -EBADMSG;
	*out = n;
	return 0;
}

/* A string field: *out NULL when absent or null; -EBADMSG if not a string. */
int
oauth_json_get_str(const json_t *o, const char *key, const char **out)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -EBADMSG;
	*out = json_string_value(v);
	return 0;
}

bool
oauth_has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * Copy an IdP-supplied identifier (error name, GUID) for logs and audit:
 * only [A-Za-z0-9._:-] survive, other bytes become '?', cut to dstsz-1.
 */
static void
copy_ident(char *dst, size_t dstsz, const char *src)
{
	size_t i;

	for (i = 0; src != NULL && src[i] != '\0' && i + 1 < dstsz; i++) {
		unsigned char c = (unsigned char)src[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		    c == '.' || c == ':')
			dst[i] = (char)c;
		else
			dst[i] = '?';
	}
	dst[i] = '\0';
}

/* Parse a body into an object; NULL if it is not a JSON object. */
static json_t *
parse_object(const struct secret *body)
{
	json_error_t jerr;
	json_t *root;

	if (body == NULL || body->ptr == NULL || body->len == 0)
		return NULL;
	root = json_loadb(body->ptr, body->len, JSON_REJECT_DUPLICATES, &jerr);
	/* jerr.text can quote bytes of the body. */
	secret_wipe(&jerr, sizeof(jerr));
	if (root != NULL && !json_is_object(root)) {
		json_decref(root);
		root = NULL;
	}
	return root;
}

/* --- clearing ---------------------------------------------------------- */

void
oauth_token_clear(struct oauth_token *t)
{
	if (t == NULL)
		return;
	secret_free(t->access_token);
	secret_free(t->refresh_token);
	secret_free(t->id_token);
	free(t->scope);
	memset(t, 0, sizeof(*t));
	t->ext_expires_in = -1;
	t->refresh_in = -1;
}

void
oauth_device_clear(struct oauth_device *d)
{
	if (d == NULL)
		return;
	secret_free(d->device_code);
	free(d->user_code);
	free(d->verification_uri);
	free(d->message);
	memset(d, 0, sizeof(*d));
}

void
oauth_account_clear(struct oauth_account *a)
{
	if (a == NULL)
		return;
	free(a->oid);
	free(a->tid);
	free(a->preferred_username);
	free(a->upn);
	free(a->iss);
	memset(a, 0, sizeof(*a));
}

static void
error_init(struct oauth_error *err, long status, int64_t retry_after)
{
	memset(err, 0, sizeof(*err));
	err->cls = OAUTH_OK;
	err->http_status = status;
	err->retry_after = retry_after;
}

/* --- URLs and forms ---------------------------------------------------- */

/* -EINVAL for a tenant that could change the path or query of the URL. */
static int
build_url(const char *authority, const char *tenant, const char *suffix,
    char *dst, size_t dstsz)
{
	size_t alen;
	int n;

	if (dstsz > 0)
		dst[0] = '\0';
	if (authority == NULL || tenant == NULL || *authority == '\0' ||
	    *tenant == '\0' || strpbrk(tenant, "/?#%@ \t\r\n") != NULL ||
	    oauth_has_ctl(authority))
		return -EINVAL;
	alen = strlen(authority);
	while (alen > 0 && authority[alen - 1] == '/')
		alen--; /* "https://host/" and "https://host" alike */
	if (alen == 0 || alen > 1024)
		return -EINVAL;
	n = snprintf(dst, dstsz, "%.*s/%s%s", (int)alen, authority, tenant,
	    suffix);
	if (n < 0 || (size_t)n >= dstsz) {
		if (dstsz > 0)
			dst[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

int
oauth_url_devicecode(const char *authority, const char *tenant, char *dst,
    size_t dstsz)
{
	return build_url(authority, tenant, "/oauth2/v2.0/devicecode", dst,
	    dstsz);
}

int
oauth_url_token(const char *authority, const char *tenant, char *dst,
    size_t dstsz)
{
	return build_url(authority, tenant, "/oauth2/v2.0/token", dst, dstsz);
}

int
oauth_url_authorize(const char *authority, const char *tenant, char *dst,
    size_t dstsz)
{
	return build_url(authority, tenant, "/oauth2/v2.0/authorize", dst,
	    dstsz);
}

struct form_kv {
	const char *k;
	const char *v; /* NULL: leave the pair out */
};

/* Build a form from pairs; the partial form is wiped on failure. */
static int
form_build(const struct form_kv *kv, size_t n, struct secret **out)
{
	struct secret *f = NULL;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if (kv[i].v == NULL)
			continue;
		r = http_form_add(&f, kv[i].k, kv[i].v);
		if (r < 0) {
			secret_free(f);
			return r;
		}
	}
	*out = f;
	return 0;
}

static const char *
secret_str(const struct secret *s)
{
	return s != NULL ? s->ptr : NULL;
}

int
oauth_form_devicecode(const char *client_id, const char *scope,
    struct secret **out)
{
	const struct form_kv kv[] = {
		{ "client_id", client_id },
		{ "scope", scope },
	};

	*out = NULL;
	if (client_id == NULL || scope == NULL)
		return -EINVAL;
	return form_build(kv, sizeof(kv) / sizeof(kv[0]), out);
}

int
oauth_form_device_poll(const char *client_id, const struct secret *device_code,
    const struct secret *client_secret, struct secret **out)
{
	const struct form_kv kv[] = {
		{ "grant_type",
		    "urn:ietf:params:oauth:grant-type:device_code" },
		{ "client_id", client_id },
		{ "device_code", secret_str(device_code) },
		{ "client_info", "1" },
		{ "client_secret", secret_str(client_secret) },
	};

	*out = NULL;
	if (client_id == NULL || secret_str(device_code) == NULL)
		return -EINVAL;
	return form_build(kv, sizeof(kv) / sizeof(kv[0]), out);
}

int
oauth_form_refresh(const char *client_id, const struct secret *refresh_token,
    const char *scope, const struct secret *client_secret, struct secret **out)
{
	const struct form_kv kv[] = {
		{ "grant_type", "refresh_token" },
		{ "client_id", client_id },
		{ "refresh_token", secret_str(refresh_token) },
		{ "scope", scope },
		{ "client_info", "1" },
		{ "client_secret", secret_str(client_secret) },
	};

	*out = NULL;
	if (client_id == NULL || scope == NULL ||
	    secret_str(refresh_token) == NULL)
		return -EINVAL;
	return form_build(kv, sizeof(kv) / sizeof(kv[0]), out);
}

int
oauth_form_client_credentials(const char *client_id, const char *scope,
    struct secret **out)
{
	const struct form_kv kv[] = {
		{ "grant_type", "client_credentials" },
		{ "client_id", client_id },
		{ "scope", scope },
	};

	*out = NULL;
	if (client_id == NULL || scope == NULL)
		return -EINVAL;
	return form_build(kv, sizeof(kv) / sizeof(kv[0]), out);
}

int
oauth_form_add_claims(struct secret **form, const char *claims)
{
	int r;

	if (form == NULL || *form == NULL || claims == NULL || *claims == '\0')
		return -EINVAL;
	r = http_form_add(form, "claims", claims);
	if (r < 0) {
		secret_free(*form);
		*form = NULL;
	}
	return r;
}

int
oauth_form_authcode(const char *client_id, const struct secret *code,
    const struct secret *verifier, const char *redirect_uri, const char *scope,
    struct secret **out)
{
	const struct form_kv kv[] = {
		{ "grant_type", "authorization_code" },
		{ "client_id", client_id },
		{ "code", secret_str(code) },
		{ "code_verifier", secret_str(verifier) },
		{ "redirect_uri", redirect_uri },
		{ "scope", scope },
		{ "client_info", "1" },
	};

	*out = NULL;
	if (client_id == NULL || scope == NULL || redirect_uri == NULL ||
	    secret_str(code) == NULL || secret_str(verifier) == NULL)
		return -EINVAL;
	return form_build(kv, sizeof(kv) / sizeof(kv[0]), out);
}

int
oauth_form_add_assertion(struct secret **form, const struct secret *assertion)
{
	int r;

	if (form == NULL || *form == NULL || secret_str(assertion) == NULL ||
	    assertion->len == 0)
		return -EINVAL;
	/* RFC 6749 2.3: one authentication method per request. */
	if (strstr((*form)->ptr, "client_secret=") != NULL)
		return -EINVAL;
	r = http_form_add(form, "client_assertion_type",
	    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	if (r == 0)
		r = http_form_add(form, "client_assertion", assertion->ptr);
	if (r < 0) {
		secret_free(*form);
		*form = NULL;
	}
	return r;
}

/* --- error replies ----------------------------------------------------- */

static void
parse_error_codes(const json_t *arr, struct oauth_error *err)
{
	const json_t *v;
	long long n;
	size_t i;

	if (!json_is_array(arr))
		return;
	json_array_foreach(arr, i, v)
	{
		if (err->ncodes >= OAUTH_CODES_MAX)
			break;
		if (json_is_integer(v))
			n = json_integer_value(v);
		else if (!json_is_string(v) ||
		    util_strtonum(json_string_value(v), 0, 999999999, &n) < 0)
			continue; /* tolerate junk, keep the rest */
		if (n < 0 || n > 999999999)
			continue;
		err->codes[err->ncodes++] = (long)n;
	}
}

/* Fill err from a non-200 reply (the body may be anything) and classify. */
static void
parse_error(long status, const struct secret *body, struct oauth_error *err)
{
	const char *s;
	json_t *root;

	root = parse_object(body);
	if (root != NULL) {
		if (oauth_json_get_str(root, "error", &s) == 0 && s != NULL)
			copy_ident(err->error, sizeof(err->error), s);
		if (oauth_json_get_str(root, "suberror", &s) == 0 && s != NULL)
			copy_ident(err->suberror, sizeof(err->suberror), s);
		if (oauth_json_get_str(root, "trace_id", &s) == 0 && s != NULL)
			copy_ident(err->trace_id, sizeof(err->trace_id), s);
		if (oauth_json_get_str(root, "correlation_id", &s) == 0 &&
		    s != NULL)
			copy_ident(err->correlation_id,
			    sizeof(err->correlation_id), s);
		parse_error_codes(json_object_get(root, "error_codes"), err);
		json_decref(root);
	}
	err->http_status = status;
	oauth_classify(err);
}

/* A 200 we cannot use: RETRY, "malformed response". */
static int
fail_malformed(struct oauth_error *err)
{
	err->http_status = 200;
	err->error[0] = '\0';
	err->suberror[0] = '\0';
	err->ncodes = 0;
	oauth_classify(err);
	return -EPROTO;
}

/* --- token replies ----------------------------------------------------- */

/* Copy an optional string field into a new secret; -EBADMSG if mistyped. */
static int
take_secret(const json_t *o, const char *key, bool is_required,
    struct secret **out)
{
	const char *s;

	*out = NULL;
	if (oauth_json_get_str(o, key, &s) < 0)
		return -EBADMSG;
	if (s == NULL || *s == '\0')
		return is_required ? -EBADMSG : 0;
	*out = secret_from_str(s);
	return *out == NULL ? -ENOMEM : 0;
}

static int
token_fields(const json_t *root, struct oauth_token *tok)
{
	const char *s;
	int r;

	r = take_secret(root, "access_token", true, &tok->access_token);
	if (r < 0)
		return r;
	r = take_secret(root, "refresh_token", false, &tok->refresh_token);
	if (r < 0)
		return r;
	r = take_secret(root, "id_token", false, &tok->id_token);
	if (r < 0)
		return r;
	if (oauth_json_get_str(root, "token_type", &s) < 0)
		return -EBADMSG;
	if (s == NULL || *s == '\0')
		s = "Bearer";
	if (strlen(s) >= sizeof(tok->token_type) || oauth_has_ctl(s))
		return -EBADMSG;
	memcpy(tok->token_type, s, strlen(s) + 1);
	if (json_get_i64(root, "expires_in", 600, 0, OAUTH_I64_MAX,
		&tok->expires_in) < 0 ||
	    json_get_i64(root, "ext_expires_in", -1, 0, OAUTH_I64_MAX,
		&tok->ext_expires_in) < 0 ||
	    json_get_i64(root, "refresh_in", -1, 0, OAUTH_I64_MAX,
		&tok->refresh_in) < 0)
		return -EBADMSG;
	if (oauth_json_get_str(root, "scope", &s) < 0)
		return -EBADMSG;
	if (s != NULL) {
		if (strlen(s) > OAUTH_SCOPE_MAX || oauth_has_ctl(s))
			return -EBADMSG;
		tok->scope = strdup(s);
		if (tok->scope == NULL)
			return -ENOMEM;
	}
	return 0;
}

int
oauth_parse_token(long status, const struct secret *body, int64_t retry_after,
    struct oauth_token *tok, struct oauth_error *err)
{
	json_t *root;
	int r;

	memset(tok, 0, sizeof(*tok));
	tok->ext_expires_in = -1;
	tok->refresh_in = -1;
	error_init(err, status, retry_after);
	if (status != 200 || body == NULL) {
		parse_error(body == NULL ? 0 : status, body, err);
		return -EPROTO;
	}
	root = parse_object(body);
	if (root == NULL)
		return fail_malformed(err);
	r = token_fields(root, tok);
	json_decref(root);
	if (r < 0) {
		oauth_token_clear(tok);
		if (r == -ENOMEM)
			return r;
		return fail_malformed(err);
	}
	return 0;
}

/* --- devicecode replies ------------------------------------------------ */

/*
 * Strings shown to the user in their terminal: no control characters
 * (an escape sequence from a hostile reply must not reach a tty).
 */
static int
take_display(const json_t *o, const char *key, size_t max, char **out)
{
	const char *s;

	*out = NULL;
	if (oauth_json_get_str(o, key, &s) < 0)
		return -EBADMSG;
	if (s == NULL || *s == '\0')
		return 0;
	if (strlen(s) > max || oauth_has_ctl(s))
		return -EBADMSG;
	*out = strdup(s);
	return *out == NULL ? -ENOMEM : 0;
}

static int
device_fields(const json_t *root, struct oauth_device *dev)
{
	int r;

	r = take_secret(root, "device_code", true, &dev->device_code);
	if (r < 0)
		return r;
	r = take_display(root, "user_code", OAUTH_USER_CODE_MAX,
	    &dev->user_code);
	if (r < 0)
		return r;
	r = take_display(root, "verification_uri", OAUTH_URI_MAX,
	    &dev->verification_uri);
	if (r < 0)
		return r;
	r = take_display(root, "message", OAUTH_MESSAGE_MAX, &dev->message);
	if (r < 0)
		return r;
	if (dev->verification_uri == NULL) {
		/* The v1 endpoint spells it verification_url. */
		r = take_display(root, "verification_url", OAUTH_URI_MAX,
		    &dev->verification_uri);
		if (r < 0)
			return r;
	}
	if (dev->user_code == NULL || dev->verification_uri == NULL)
		return -EBADMSG;
	if (json_get_i64(root, "expires_in", 900, 1, OAUTH_I64_MAX,
		&dev->expires_in) < 0 ||
	    json_get_i64(root, "interval", 5, 0, 3600, &dev->interval) < 0)
		return -EBADMSG;
	if (dev->interval == 0)
		dev->interval = 5; /* 0 would poll in a tight loop */
	return 0;
}

int
oauth_parse_device(long status, const struct secret *body, int64_t retry_after,
    struct oauth_device *dev, struct oauth_error *err)
{
	json_t *root;
	int r;

	memset(dev, 0, sizeof(*dev));
	error_init(err, status, retry_after);
	if (status != 200 || body == NULL) {
		parse_error(body == NULL ? 0 : status, body, err);
		return -EPROTO;
	}
	root = parse_object(body);
	if (root == NULL)
		return fail_malformed(err);
	r = device_fields(root, dev);
	json_decref(root);
	if (r < 0) {
		oauth_device_clear(dev);
		if (r == -ENOMEM)
			return r;
		return fail_malformed(err);
	}
	return 0;
}

/* --- scopes ------------------------------------------------------------ */

static bool
is_oidc_scope(const char *s, size_t len)
{
	static const char *const oidc[] = { "openid", "profile", "email",
		"offline_access" };
	size_t i;

	for (i = 0; i < NELEM(oidc); i++)
		if (strlen(oidc[i]) == len && strncmp(oidc[i], s, len) == 0)
			return true;
	return false;
}

int
oauth_scope_resource(const char *scope, char *dst, size_t dstsz)
{
	const char *s, *e, *slash = NULL, *q;
	size_t len;

	if (dstsz > 0)
		dst[0] = '\0';
	if (scope == NULL || dst == NULL || dstsz == 0)
		return -EINVAL;
	/* The first scope that is not an OIDC one names the resource. */
	for (s = scope;; s = e) {
		s += strspn(s, " ");
		if (*s == '\0')
			break;
		e = s + strcspn(s, " ");
		if (!is_oidc_scope(s, (size_t)(e - s)))
			break;
	}
	if (*s == '\0') {
		/* OIDC scopes alone get a Graph token. */
		s = OAUTH_GRAPH_RESOURCE;
		len = strlen(s);
	} else {
		e = s + strcspn(s, " ");
		for (q = s; q < e; q++)
			if (*q == '/')
				slash = q;
		if (slash == NULL) {
			/* "User.Read": bare scopes are Graph's. */
			s = OAUTH_GRAPH_RESOURCE;
			len = strlen(s);
		} else if (slash - s >= 2 && slash[-1] == '/' &&
		    slash[-2] == ':') {
			len = (size_t)(e - s); /* "https://host": a bare URL */
		} else {
			/* "https://management.azure.com//.default" keeps one '/'. */
			len = (size_t)(slash - s);
		}
	}
	if (len == 0)
		return -EINVAL;
	if (len >= dstsz)
		return -ENAMETOOLONG;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}
