/*
 * config_keys.c - the sections and keys of credd.conf, and what setting
 * a key does.
 *
 * Each section is a row in section_table: either a sorted key table
 * (looked up with bsearch) or a handler for free-form keys ([scopes]).
 * Each key names its type, where it lands in struct config, its range
 * and its default; defaults go through the same checks as file values
 * (config_check.c checks a value by its key's type).
 * Adding a section ([msi], ...) is one key table plus one row.
 * Also here: the checks across keys once the file is read, and
 * config_free(), which frees what the tables say is a string.
 *
 * Must never: echo a value that may carry credentials (URLs, the DSN) in
 * an error, or open the files the keys name (their readers check them).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "entra/paths.h"
#include "entra/util.h"

#include "config.h"
#include "config_int.h"

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

#define OFF(f) offsetof(struct config, f)
/* clang-format off */
#define STR(n, t, f, d, req) { n, t, OFF(f), 0, 0, d, req }
#define NUM(n, f, lo, hi, d) { n, KT_INT, OFF(f), lo, hi, d, 0 }
/* clang-format on */

/* Keep every table sorted by name (checked at parse time). */
static const struct key entra_keys[] = {
	STR("account_match", KT_ACCOUNT, account_match, NULL, 0),
	/* Default: the cloud's (config_cloud_apply). */
	STR("authority", KT_AUTHORITY, authority, NULL, 0),
	STR("ca_file", KT_PATH, ca_file, NULL, 0),
	STR("client_assertion_file", KT_PATH, client_assertion_file, NULL, 0),
	STR("client_auth", KT_CLIENT_AUTH, client_auth, NULL, 0),
	STR("client_capabilities", KT_CAPS, client_capabilities, NULL, 0),
	STR("client_certificate_file", KT_CRED_PATH, client_certificate_file,
	    NULL, 0),
	STR("client_id", KT_ID, client_id, NULL, 1),
	STR("client_secret_file", KT_CRED_PATH, client_secret_file, NULL, 0),
	STR("cloud", KT_CLOUD, cloud, "public", 0),
	STR("discovery_hosts", KT_HOSTS, discovery_hosts, NULL, 0),
	NUM("discovery_min_ttl", discovery_min_ttl, 1, 86400, "300"),
	STR("domain_hint", KT_ID, domain_hint, NULL, 0),
	STR("provider", KT_PROVIDER, provider, "entra", 0),
	STR("proxy", KT_PROXY, proxy, NULL, 0),
	STR("signin", KT_SIGNIN, signin, "device_code", 0),
	STR("tenant", KT_ID, tenant, NULL, 1),
	NUM("timeout", timeout, 1, 300, "10"),
};

static const struct key server_keys[] = {
	STR("admin_group", KT_GROUP, admin_group, "credd-admin", 0),
	NUM("idle_timeout", idle_timeout, 1, 86400, "60"),
	NUM("locked_memory_kib", locked_memory_kib, 0, 1048576, "4096"),
	NUM("max_conns", max_conns, 1, 1000000, "65536"),
	NUM("max_conns_per_uid", max_conns_per_uid, 1, 1000000, "4096"),
	NUM("max_output", max_output, 65536, INT_MAX, "33554432"),
	NUM("max_output_per_uid", max_output_per_uid, 65536, INT_MAX,
	    "1048576"),
	STR("node", KT_NODE, node, NULL, 0), /* default: gethostname() */
	NUM("session_check", session_check, 1, 3600, "60"),
	NUM("session_idle", session_idle, 0, 31536000, "86400"),
	STR("session_liveness", KT_BOOL, session_liveness, "yes", 0),
	STR("socket", KT_PATH, socket, ENTRA_SOCKET_PATH, 0),
	STR("user", KT_USER, user, ENTRA_CREDD_USER, 0),
};

static const struct key limits_keys[] = {
	NUM("device_flow_cooldown", device_flow_cooldown, 0, 86400, "300"),
	NUM("device_flows_per_hour", device_flows_per_hour, 1, 1000, "10"),
	NUM("recent_use", recent_use, 1, 604800, "3600"),
	NUM("request_burst", request_burst, 1, 10000000, "40000"),
	NUM("requests_per_sec", requests_per_sec, 1, 10000000, "20000"),
};

/*
 * [callback]: the platform-callback sign-in (issue 13): the listener
 * (off unless listen is set) and the public redirect URI.
 */
static const struct key callback_keys[] = {
	STR("listen", KT_ADDR, callback_listen, NULL, 0),
	STR("redirect_uri", KT_URL, callback_redirect_uri, NULL, 0),
};

static const struct key audit_keys[] = {
	STR("file", KT_PATH, audit_file, NULL, 0),
};

static const struct key store_keys[] = {
	STR("backend", KT_BACKEND, backend, "file", 0),
	STR("dsn", KT_DSN, dsn, NULL, 0),
	STR("key_file", KT_CRED_PATH, key_file, ENTRA_KEY_FILE, 0),
	STR("marks", KT_PATH, marks_path, NULL,
	    0), /* default: path + "-marks" */
	STR("path", KT_PATH, store_path, ENTRA_STATE_DIR, 0),
	NUM("records_in_memory", records_in_memory, 0, 100000000, "1000"),
};

/* [metrics]: the Prometheus page over HTTP; off unless listen is set. */
static const struct key metrics_keys[] = {
	STR("listen", KT_LISTEN, metrics_listen, NULL, 0),
};

/* [msi]: the SDK endpoint; off unless listen is set. */
static const struct key msi_keys[] = {
	NUM("connection_timeout", msi_conn_timeout, 1, 3600, "10"),
	STR("imds", KT_BOOL, msi_imds, "no", 0),
	STR("listen", KT_LISTEN, msi_listen, NULL, 0),
	NUM("max_connections", msi_max_conns, 1, 100000, "1024"),
	NUM("request_timeout", msi_request_timeout, 1, 900, "30"),
	STR("resources", KT_RESOURCES, msi_resources_text, NULL, 0),
	NUM("secret_ttl", msi_secret_ttl, 60, 31536000, "86400"),
	NUM("secrets_per_uid", msi_secrets_per_uid, 1, 100000, "64"),
};

/*
 * [offboarding]: the admin credential for Graph's revokeSignInSessions;
 * off unless client_id is set (offboarding_check).
 */
static const struct key offboarding_keys[] = {
	STR("client_assertion_file", KT_PATH, off_client_assertion_file, NULL,
	    0),
	STR("client_auth", KT_CLIENT_AUTH, off_client_auth, NULL, 0),
	STR("client_certificate_file", KT_CRED_PATH,
	    off_client_certificate_file, NULL, 0),
	STR("client_id", KT_ID, off_client_id, NULL, 0),
	STR("client_secret_file", KT_CRED_PATH, off_client_secret_file, NULL,
	    0),
	/* Default: the cloud's Graph (config_cloud_apply). */
	STR("graph_url", KT_AUTHORITY, off_graph_url, NULL, 0),
};

static int scopes_kv(struct parser *, const char *, const char *);

/* [sessions] and [workload.NAME]: config_workload.c (issue 14). */
#define WL_SECTION(name, kind)                                                 \
	{                                                                      \
		name, config_workload_keys[kind], CONFIG_WL_KEYS, NULL         \
	}

/* Sorted by name too. */
static const struct section section_table[] = {
	{ "audit", audit_keys, nitems(audit_keys), NULL },
	{ "callback", callback_keys, nitems(callback_keys), NULL },
	{ "entra", entra_keys, nitems(entra_keys), NULL },
	{ "limits", limits_keys, nitems(limits_keys), NULL },
	{ "metrics", metrics_keys, nitems(metrics_keys), NULL },
	{ "msi", msi_keys, nitems(msi_keys), NULL },
	{ "offboarding", offboarding_keys, nitems(offboarding_keys), NULL },
	{ "scopes", NULL, 0, scopes_kv },
	{ "server", server_keys, nitems(server_keys), NULL },
	{ "sessions", config_workload_sessions_keys,
	    nitems(config_workload_sessions_keys), NULL },
	{ "store", store_keys, nitems(store_keys), NULL },
	WL_SECTION("workload.app", CONFIG_WL_APP),
	WL_SECTION("workload.default", CONFIG_WL_DEFAULT),
	WL_SECTION("workload.job", CONFIG_WL_JOB),
	WL_SECTION("workload.scheduled", CONFIG_WL_SCHEDULED),
	WL_SECTION("workload.workspace", CONFIG_WL_WORKSPACE),
};

_Static_assert(nitems(section_table) <= 20, "grow parser.seen");

static int
key_cmp(const void *a, const void *b)
{
	const char *name = a;
	const struct key *k = b;

	return strcmp(name, k->name);
}

static int
section_cmp(const void *a, const void *b)
{
	const char *name = a;
	const struct section *s = b;

	return strcmp(name, s->name);
}

/* The tables must stay sorted for bsearch; a mistake fails every parse. */
int
config_keys_sorted(void)
{
	size_t i, j;

	for (i = 0; i < nitems(section_table); i++) {
		const struct section *s = &section_table[i];

		if (i > 0 && strcmp(section_table[i - 1].name, s->name) >= 0)
			return 0;
		if (s->nkeys > 64)
			return 0;
		for (j = 1; j < s->nkeys; j++)
			if (strcmp(s->keys[j - 1].name, s->keys[j].name) >= 0)
				return 0;
	}
	return 1;
}

const struct section *
config_keys_section(const char *name)
{
	return bsearch(name, section_table, nitems(section_table),
	    sizeof(section_table[0]), section_cmp);
}

static char **
str_field(struct config *cf, const struct key *k)
{
	return (char **)(void *)((char *)cf + k->off);
}

static int *
int_field(struct config *cf, const struct key *k)
{
	return (int *)(void *)((char *)cf + k->off);
}

static int
set_int(struct parser *p, const struct key *k, const char *val)
{
	char qb[CONFIG_QUOTE_MAX + 1];
	long long n;
	int r;

	r = util_strtonum(val, k->min, k->max, &n);
	if (r == -ERANGE) {
		config_err(p, "%s: '%s' is out of range %lld..%lld", k->name,
		    config_err_quote(qb, sizeof(qb), val), k->min, k->max);
		return -ERANGE;
	}
	if (r < 0) {
		config_err(p, "%s: '%s' is not a number", k->name,
		    config_err_quote(qb, sizeof(qb), val));
		return -EINVAL;
	}
	*int_field(p->cf, k) = (int)n;
	return 0;
}

static int
set_value(struct parser *p, const struct key *k, const char *val)
{
	const char *why;
	char **dst;
	char *copy;
	size_t n;

	if (k->type == KT_INT)
		return set_int(p, k, val);
	why = config_check_str(k, val);
	if (why != NULL) {
		config_err(p, "%s %s", k->name, why);
		return -EINVAL;
	}
	if (k->type == KT_BOOL) {
		*int_field(p->cf, k) = config_check_parse_bool(val);
		return 0;
	}
	if (k->type == KT_CLIENT_AUTH) {
		*int_field(p->cf, k) = config_check_parse_client_auth(val);
		return 0;
	}
	if (k->type == KT_IDENTITY) {
		*int_field(p->cf, k) = config_workload_parse_identity(val);
		return 0;
	}
	if (k->type == KT_SIGNIN) {
		*int_field(p->cf, k) = config_check_parse_signin(val);
		return 0;
	}
	if (k->type == KT_CLOUD) {
		*int_field(p->cf, k) = config_cloud_parse(val);
		return 0;
	}
	if (k->type == KT_PROVIDER) {
		*int_field(p->cf, k) = config_cloud_parse_provider(val);
		return 0;
	}
	copy = strdup(val);
	if (copy == NULL) {
		config_err(p, "out of memory");
		return -ENOMEM;
	}
	n = strlen(copy);
	if (k->type == KT_AUTHORITY && n > 0 && copy[n - 1] == '/')
		copy[n - 1] = '\0';
	dst = str_field(p->cf, k);
	free(*dst);
	*dst = copy;
	return 0;
}

static int
scopes_kv(struct parser *p, const char *key, const char *val)
{
	struct config *cf = p->cf;
	struct config_scope *sc;
	char qb[CONFIG_QUOTE_MAX + 1];
	size_t i;

	if (strcmp(key, "default") == 0) {
		if (cf->default_alias != NULL) {
			config_err(p, "duplicate key 'default' in [scopes]");
			return -EEXIST;
		}
		if (!config_check_is_alias(val)) {
			config_err(p, "default: '%s' is not an alias name",
			    config_err_quote(qb, sizeof(qb), val));
			return -EINVAL;
		}
		cf->default_alias = strdup(val);
		p->default_line = p->line;
		return cf->default_alias != NULL ? 0 : -ENOMEM;
	}
	if (!config_check_is_alias(key)) {
		config_err(p,
		    "scope alias '%s' must be [a-z0-9_-]+ (at most %d)",
		    config_err_quote(qb, sizeof(qb), key), CONFIG_ALIAS_MAX);
		return -EINVAL;
	}
	for (i = 0; i < cf->nscopes; i++) {
		if (strcmp(cf->scopes[i].alias, key) == 0) {
			config_err(p, "duplicate key '%s' in [scopes]", key);
			return -EEXIST;
		}
	}
	if (cf->nscopes >= CONFIG_SCOPES_MAX) {
		config_err(p, "too many scopes (at most %d)",
		    CONFIG_SCOPES_MAX);
		return -EMSGSIZE;
	}
	/* One scope per alias: a space would make it a scope list. */
	if (strlen(val) > CONFIG_SCOPE_MAX ||
	    config_check_has_ctl_or_space(val)) {
		config_err(p,
		    "%s: scope must be one scope string without spaces "
		    "(at most %d bytes)",
		    key, CONFIG_SCOPE_MAX);
		return -EINVAL;
	}
	sc = &cf->scopes[cf->nscopes];
	sc->line = p->line;
	/* "@vault": resolved for [entra] cloud at the end (config_cloud.c). */
	sc->alias = strdup(key);
	sc->scope = strdup(val);
	if (sc->alias == NULL || sc->scope == NULL) {
		free(sc->alias);
		free(sc->scope);
		sc->alias = sc->scope = NULL;
		config_err(p, "out of memory");
		return -ENOMEM;
	}
	cf->nscopes++;
	return 0;
}

int
config_keys_set(struct parser *p, const char *key, const char *val)
{
	const struct section *s = p->sec;
	const struct key *k;
	char qb[CONFIG_QUOTE_MAX + 1];
	uint64_t *seen, bit;
	int r;

	if (s == NULL) {
		config_err(p, "key '%s' outside any [section]",
		    config_err_quote(qb, sizeof(qb), key));
		return -EINVAL;
	}
	if (*val == '\0') {
		config_err(p, "%s: empty value",
		    config_err_quote(qb, sizeof(qb), key));
		return -EINVAL;
	}
	if (s->kv != NULL)
		return s->kv(p, key, val);
	k = bsearch(key, s->keys, s->nkeys, sizeof(*k), key_cmp);
	if (k == NULL) {
		config_err(p, "unknown key '%s' in [%s]",
		    config_err_quote(qb, sizeof(qb), key), s->name);
		return -EINVAL;
	}
	seen = &p->seen[s - section_table];
	bit = (uint64_t)1 << (k - s->keys);
	if (*seen & bit) {
		config_err(p, "duplicate key '%s' in [%s]", k->name, s->name);
		return -EEXIST;
	}
	*seen |= bit;
	r = set_value(p, k, val);
	if (r == 0) {
		config_workload_note(p, k); /* a policy line names its line */
		config_cloud_note(p, k);
	}
	return r;
}

static int
set_node_default(struct parser *p)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0) {
		config_err(p, "gethostname: %s", strerror(errno));
		return -errno;
	}
	host[sizeof(host) - 1] = '\0';
	if (!config_check_is_node(host)) {
		config_err(p,
		    "host name is not usable as node; set [server] node");
		return -EINVAL;
	}
	p->cf->node = strdup(host);
	return p->cf->node != NULL ? 0 : -ENOMEM;
}

/*
 * [store] marks defaults to a sibling of path ("/var/lib/credd" ->
 * "/var/lib/credd-marks"): outside the file store, so a restore of the
 * store alone does not bring older marks back with it.
 */
static int
set_marks_default(struct config *cf)
{
	size_t n = strlen(cf->store_path);

	while (n > 1 && cf->store_path[n - 1] == '/')
		n--;
	if (asprintf(&cf->marks_path, "%.*s-marks", (int)n, cf->store_path) <
	    0) {
		cf->marks_path = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Is path dir itself or below it (both absolute, as written)? */
static int
path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 &&
	    (path[n] == '\0' || path[n] == '/' || (n == 1 && dir[0] == '/'));
}

/* Defaults for every key not in the file; required keys must be there. */
int
config_keys_defaults(struct parser *p)
{
	size_t i, j;
	int r;

	for (i = 0; i < nitems(section_table); i++) {
		const struct section *s = &section_table[i];

		for (j = 0; j < s->nkeys; j++) {
			const struct key *k = &s->keys[j];

			if (p->seen[i] & ((uint64_t)1 << j))
				continue;
			if (k->is_required) {
				config_err(p, "missing '%s' in [%s]", k->name,
				    s->name);
				return -EINVAL;
			}
			if (k->def == NULL)
				continue;
			r = set_value(p, k, k->def);
			if (r < 0)
				return r;
		}
	}
	if (p->cf->marks_path == NULL && set_marks_default(p->cf) < 0)
		return -ENOMEM;
	if (p->cf->node == NULL)
		return set_node_default(p);
	return 0;
}

static int
msi_resource_add(struct config *cf, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < cf->msi_nresources; i++)
		if (strlen(cf->msi_resources[i]) == n &&
		    memcmp(cf->msi_resources[i], s, n) == 0)
			return 0;
	if (cf->msi_nresources >= CONFIG_MSI_RESOURCES_MAX)
		return -EMSGSIZE;
	cf->msi_resources[cf->msi_nresources] = strndup(s, n);
	if (cf->msi_resources[cf->msi_nresources] == NULL)
		return -ENOMEM;
	cf->msi_nresources++;
	return 0;
}

/*
 * "@vault" in [msi] resources: [entra] cloud's resource R, and for a URL
 * also "R/" (as for the resources derived from [scopes]).
 */
static int
msi_preset_add(struct parser *p, const char *name, size_t n)
{
	char buf[CONFIG_SCOPE_MAX + 2];
	const char *res;
	size_t len;
	int r;

	r = config_cloud_msi_resource(p, name, n, &res);
	if (r < 0)
		return r;
	len = strlen(res);
	r = msi_resource_add(p->cf, res, len);
	if (r == 0 && strncmp(res, "https://", 8) == 0 &&
	    len + 1 < sizeof(buf)) {
		memcpy(buf, res, len);
		buf[len] = '/';
		r = msi_resource_add(p->cf, buf, len + 1);
	}
	return r;
}

/*
 * The allowed resources: as listed ("@NAME": the cloud's), or from [scopes]: "R/.default" gives
 * R, and for URL resources also "R/" (a distinct resource to Entra: the
 * token's aud keeps the slash; Hadoop ABFS asks for it).
 */
static int
msi_resources_build(struct parser *p)
{
	static const char suffix[] = "/.default";
	const size_t sl = sizeof(suffix) - 1;
	struct config *cf = p->cf;
	const char *s, *e;
	char buf[CONFIG_SCOPE_MAX + 2];
	size_t i, n;
	int r = 0;

	if (cf->msi_resources_text != NULL) {
		for (s = cf->msi_resources_text; r == 0 && *s != '\0'; s = e) {
			while (*s == ' ' || *s == '\t')
				s++;
			for (e = s; *e != '\0' && *e != ' ' && *e != '\t'; e++)
				;
			if (e > s && *s == '@')
				r = msi_preset_add(p, s + 1,
				    (size_t)(e - s - 1));
			else if (e > s)
				r = msi_resource_add(cf, s, (size_t)(e - s));
		}
		goto out;
	}
	for (i = 0; r == 0 && i < cf->nscopes; i++) {
		s = cf->scopes[i].scope;
		n = strlen(s);
		if (n <= sl || strcmp(s + n - sl, suffix) != 0)
			continue; /* not a .default scope: no resource */
		n -= sl;
		if (!config_check_is_resource(s, n))
			continue;
		r = msi_resource_add(cf, s, n);
		if (r == 0 && strncmp(s, "https://", 8) == 0 &&
		    s[n - 1] != '/' && n + 1 < sizeof(buf)) {
			memcpy(buf, s, n);
			buf[n] = '/';
			r = msi_resource_add(cf, buf, n + 1);
		}
	}
out:
	if (r == -EMSGSIZE)
		config_err(p, "[msi] too many resources (at most %d)",
		    CONFIG_MSI_RESOURCES_MAX);
	return r;
}

/* Was key set in the file's section sec? */
static int
is_seen(const struct parser *p, const char *sec, const char *key)
{
	const struct section *s = config_keys_section(sec);
	const struct key *k;

	k = bsearch(key, s->keys, s->nkeys, sizeof(*k), key_cmp);
	return (p->seen[s - section_table] >> (k - s->keys)) & 1;
}

/*
 * client_auth and its files: the default follows client_secret_file (as
 * before client_auth existed); the chosen method needs its file, and the
 * files of the other methods must not be set, so that nobody believes a
 * credential is in use that is not.
 */
/* [callback] listen shares no port with the other listeners. */
static int
callback_listen_check(struct parser *p)
{
	const struct config *cf = p->cf;

	if (cf->callback_listen == NULL)
		return 0;
	if ((cf->msi_listen != NULL &&
		config_listen_same(cf->callback_listen, cf->msi_listen)) ||
	    (cf->metrics_listen != NULL &&
		config_listen_same(cf->callback_listen, cf->metrics_listen))) {
		config_err(p,
		    "[callback] listen must differ from [msi] listen and "
		    "[metrics] listen");
		return -EINVAL;
	}
	return 0;
}

static int
client_auth_check(struct parser *p)
{
	static const char *const file_of[] = { NULL, "client_secret_file",
		"client_certificate_file", "client_assertion_file" };
	struct config *cf = p->cf;
	const char *set[4] = { NULL, cf->client_secret_file,
		cf->client_certificate_file, cf->client_assertion_file };
	int i, m;

	if (!is_seen(p, "entra", "client_auth"))
		cf->client_auth = cf->client_secret_file != NULL ?
		    CONFIG_CLIENT_AUTH_SECRET :
		    CONFIG_CLIENT_AUTH_NONE;
	m = cf->client_auth;
	if (m != CONFIG_CLIENT_AUTH_NONE && set[m] == NULL) {
		config_err(p, "missing '%s' in [entra] (client_auth = %s)",
		    file_of[m], config_client_auth_name(m));
		return -EINVAL;
	}
	for (i = 1; i < 4; i++) {
		if (i == m || set[i] == NULL)
			continue;
		config_err(p,
		    "[entra] %s is set but client_auth = %s (set "
		    "client_auth = %s, or remove %s)",
		    file_of[i], config_client_auth_name(m),
		    config_client_auth_name(i), file_of[i]);
		return -EINVAL;
	}
	return 0;
}

/*
 * [offboarding]: with client_id, exactly one credential (client_auth
 * names it, or the one file set implies it; never none: Graph takes no
 * public client), and an app of its own: the [entra] app serves tokens
 * to workloads (identity = app), so it must never hold the directory
 * permission. Without client_id, no other key but graph_url.
 */
static int
offboarding_check(struct parser *p)
{
	static const char *const file_of[] = { NULL, "client_secret_file",
		"client_certificate_file", "client_assertion_file" };
	struct config *cf = p->cf;
	const char *set[4] = { NULL, cf->off_client_secret_file,
		cf->off_client_certificate_file,
		cf->off_client_assertion_file };
	int i, m, nset = 0;

	for (i = 1; i < 4; i++)
		nset += set[i] != NULL;
	if (cf->off_client_id == NULL) {
		if (nset == 0 && !is_seen(p, "offboarding", "client_auth"))
			return 0;
		config_err(p,
		    "missing 'client_id' in [offboarding] (the "
		    "app registration that may revoke sessions)");
		return -EINVAL;
	}
	if (strcasecmp(cf->off_client_id, cf->client_id) == 0) {
		config_err(p,
		    "[offboarding] client_id must name an app of its own, not "
		    "[entra] client_id (that app serves tokens to workloads "
		    "and must never hold User.RevokeSessions.All)");
		return -EINVAL;
	}
	if (!is_seen(p, "offboarding", "client_auth")) {
		if (nset != 1) {
			config_err(p,
			    "[offboarding] needs one credential: "
			    "client_secret_file, client_certificate_file or "
			    "client_assertion_file");
			return -EINVAL;
		}
		for (i = 1; set[i] == NULL; i++)
			;
		cf->off_client_auth = i;
	}
	m = cf->off_client_auth;
	if (m == CONFIG_CLIENT_AUTH_NONE) {
		config_err(p,
		    "[offboarding] client_auth = none: Microsoft "
		    "Graph takes no public client (use secret, "
		    "certificate or federated)");
		return -EINVAL;
	}
	if (set[m] == NULL) {
		config_err(p,
		    "missing '%s' in [offboarding] (client_auth = %s)",
		    file_of[m], config_client_auth_name(m));
		return -EINVAL;
	}
	for (i = 1; i < 4; i++) {
		if (i == m || set[i] == NULL)
			continue;
		config_err(p,
		    "[offboarding] %s is set but client_auth = %s (set "
		    "client_auth = %s, or remove %s)",
		    file_of[i], config_client_auth_name(m),
		    config_client_auth_name(i), file_of[i]);
		return -EINVAL;
	}
	return 0;
}

int
config_keys_check(struct parser *p)
{
	struct config *cf = p->cf;
	char qb[CONFIG_QUOTE_MAX + 1];
	int is_pg, r;

	if (cf->nscopes == 0) {
		config_err(p,
		    "missing scopes: [scopes] needs at least one alias");
		return -EINVAL;
	}
	if (cf->default_alias == NULL) {
		config_err(p, "missing 'default' in [scopes]");
		return -EINVAL;
	}
	if (config_default_scope(cf) == NULL) {
		p->line = p->default_line;
		config_err(p, "default names unknown alias '%s'",
		    config_err_quote(qb, sizeof(qb), cf->default_alias));
		return -EINVAL;
	}
	/* Before anything reads authority, graph_url or a scope string. */
	r = config_cloud_apply(p);
	if (r < 0)
		return r;
	if (cf->provider == CONFIG_PROVIDER_OIDC &&
	    cf->client_capabilities != NULL) {
		config_err(p,
		    "[entra] client_capabilities is Entra's (CAE): unset it "
		    "with provider = oidc");
		return -EINVAL;
	}
	if (cf->provider == CONFIG_PROVIDER_OIDC && cf->authority_line == 0) {
		/* Microsoft's public login host is no generic provider's. */
		config_err(p,
		    "[entra] provider = oidc needs authority (the provider's "
		    "issuer URL)");
		return -EINVAL;
	}
	if (cf->provider == CONFIG_PROVIDER_OIDC && cf->off_client_id != NULL) {
		config_err(p,
		    "[offboarding] revokes sessions through Microsoft Graph: "
		    "remove it with provider = oidc");
		return -EINVAL;
	}
	is_pg = strcmp(cf->backend, "postgres") == 0;
	if (is_pg && cf->dsn == NULL) {
		config_err(p, "missing 'dsn' in [store] (backend = postgres)");
		return -EINVAL;
	}
	if (!is_pg && cf->dsn != NULL) {
		config_err(p, "[store] dsn is only for backend = postgres");
		return -EINVAL;
	}
	if (!is_pg && path_within(cf->marks_path, cf->store_path)) {
		config_err(p,
		    "[store] marks must lie outside path (a restore of the "
		    "file store would bring its marks back with it)");
		return -EINVAL;
	}
	if (cf->metrics_listen != NULL && cf->msi_listen != NULL &&
	    strcmp(cf->metrics_listen, cf->msi_listen) == 0) {
		config_err(p, "[metrics] listen must differ from [msi] listen");
		return -EINVAL;
	}
	if (callback_listen_check(p) < 0)
		return -EINVAL;
	if (client_auth_check(p) < 0 || offboarding_check(p) < 0 ||
	    config_workload_check(p) < 0)
		return -EINVAL;
	if (cf->signin != CONFIG_SIGNIN_DEVICE_CODE &&
	    cf->account_match == NULL) {
		/* Anyone who opens another user's link would bind their own
		 * Entra account to that Unix user. */
		config_err(p,
		    "[entra] signin = %s needs account_match (the account "
		    "each user must sign in as)",
		    config_signin_name(cf->signin));
		return -EINVAL;
	}
	return msi_resources_build(p);
}

void
config_free(struct config *cf)
{
	size_t i, j;

	if (cf == NULL)
		return;
	for (i = 0; i < nitems(section_table); i++) {
		const struct section *s = &section_table[i];

		for (j = 0; j < s->nkeys; j++)
			if (s->keys[j].type != KT_INT &&
			    s->keys[j].type != KT_BOOL &&
			    s->keys[j].type != KT_CLIENT_AUTH &&
			    s->keys[j].type != KT_IDENTITY &&
			    s->keys[j].type != KT_SIGNIN &&
			    s->keys[j].type != KT_CLOUD &&
			    s->keys[j].type != KT_PROVIDER)
				free(*str_field(cf, &s->keys[j]));
	}
	for (i = 0; i < cf->nscopes; i++) {
		free(cf->scopes[i].alias);
		free(cf->scopes[i].scope);
		free(cf->scopes[i].preset);
	}
	for (i = 0; i < cf->msi_nresources; i++)
		free(cf->msi_resources[i]);
	free(cf->default_alias);
	free(cf->creds_dir);
	free(cf->path);
	free(cf);
}
