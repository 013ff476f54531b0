/*
 * config_int.h - what the files of credd.conf's parser share: the key
 * types and table rows (config_keys.c), the parse state and its error message
 * (config_err.c), and the value checks (config_check.c). Private to
 * credd/config*.c.
 */
#ifndef CREDD_CONFIG_INT_H
#define CREDD_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define CONFIG_QUOTE_MAX 64 /* user strings echoed in errors */
#define CONFIG_ALIAS_MAX 64
#define CONFIG_SCOPE_MAX 512

enum key_type {
	KT_INT,	      /* int, util_strtonum in [min, max] */
	KT_ID,	      /* tenant, client_id: GUID or [A-Za-z0-9.-] */
	KT_AUTHORITY, /* https://host[...], one trailing '/' stripped */
	KT_PROXY,     /* http:// or https:// */
	KT_PATH,      /* absolute path */
	KT_CRED_PATH, /* absolute path, or %d/NAME: a systemd credential */
	KT_USER,      /* login name */
	KT_GROUP,     /* group name */
	KT_NODE,      /* host-like name */
	KT_ACCOUNT,   /* account_match pattern: only %u and %% */
	KT_BACKEND,   /* file | postgres */
	KT_DSN,	      /* libpq connection string; never echoed */
	KT_BOOL,      /* yes/no/true/false/1/0 into an int */
	KT_LISTEN, /* loopback literal and port: 127.0.0.1:PORT, [::1]:PORT */
	KT_ADDR,   /* any IP literal and port: 10.0.0.5:PORT, [::]:PORT */
	KT_RESOURCES,	/* space-separated resources (https:// URLs or GUIDs) */
	KT_CLIENT_AUTH, /* none | secret | certificate | federated, an int */
	KT_CAPS,	/* client_capabilities: cp1 (the one known) */
	KT_IDENTITY,	/* none | user (app, user-or-app refused for now) */
	KT_ALIASES,	/* "*" or [scopes] aliases, space separated */
	KT_CGPATH,	/* a cgroup path: "/" then [A-Za-z0-9@:._/-] */
	KT_SIGNIN,	/* device_code | auth_code | device_code,auth_code */
	KT_URL,	     /* an https:// URL with a path (callback redirect_uri) */
	KT_CLOUD,    /* public | usgov | china, an int (config_cloud.c) */
	KT_PROVIDER, /* entra | oidc, an int */
	KT_HOSTS,    /* space-separated host[:port] names */
};

struct key {
	const char *name;
	enum key_type type;
	size_t off;	    /* into struct config */
	long long min, max; /* KT_INT only */
	const char *def;    /* default as it would appear in the file */
	int is_required;
};

struct parser;

struct section {
	const char *name;
	const struct key *keys; /* sorted by name; NULL when kv is set */
	size_t nkeys;
	/* Free-form sections: called for every key = value. */
	int (*kv)(struct parser *, const char *, const char *);
};

struct parser {
	struct config *cf;
	const char *name; /* file name for messages */
	unsigned line;
	const struct section *sec;
	uint64_t seen[20];	     /* per section, one bit per key */
	unsigned default_line;	     /* line of [scopes] default */
	unsigned msi_resources_line; /* line of [msi] resources */
	char *err;
	size_t errsz;
};

/*
 * config_keys.c: the section and key tables. The tables are sorted by
 * name (bsearch): config_keys_sorted() is 1 when they are.
 */
int config_keys_sorted(void);
/* The section called name, or NULL. */
const struct section *config_keys_section(const char *name);
/*
 * key = val in p->sec: looked up, refused when unknown or seen before,
 * checked and set. 0 or -errno, with the error in p->err.
 */
int config_keys_set(struct parser *p, const char *key, const char *val);
/* After the last line: defaults for the keys not set, required keys. */
int config_keys_defaults(struct parser *p);
/* Then the checks across keys, and the [msi] resource list built. */
int config_keys_check(struct parser *p);

/*
 * config_err.c. Write "p->name:p->line: message" (without the line when
 * p->line is 0) to p->err, cut to p->errsz; nothing when p->err is NULL.
 */
void config_err(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* s made printable and cut to CONFIG_QUOTE_MAX bytes in buf. Returns buf. */
const char *config_err_quote(char *buf, size_t bufsz, const char *s);

/*
 * config_check.c. The checks of a value return NULL when it is good, else
 * why, as a fixed string that never echoes the value.
 */
/* val for key k (any type but KT_INT, which set_int reads). */
const char *config_check_str(const struct key *k, const char *val);
/* An absolute path without spaces or control characters. */
const char *config_check_path(const char *val);
/* The predicates return 1 or 0. */
int config_check_has_ctl_or_space(const char *s);
int config_check_is_node(const char *s);
/*
 * config_workload.c: the [sessions] and [workload.NAME] tables, their
 * checks, and the lines their keys were set on.
 */
extern const struct key config_workload_sessions_keys[3];
extern const struct key config_workload_keys[CONFIG_WORKLOADS][CONFIG_WL_KEYS];
/* The kind whose section s is, or -1. */
int config_workload_section_kind(const char *section_name);
/* Remember where key k of a [workload.NAME] section was set. */
void config_workload_note(struct parser *p, const struct key *k);
/* Checks across keys: aliases known in [scopes]. 0 or -EINVAL. */
int config_workload_check(struct parser *p);
/* Value checks (config_check_str). */
const char *config_workload_check_identity(const char *val);
int config_workload_parse_identity(const char *val);
const char *config_workload_check_aliases(const char *val);
const char *config_workload_check_cgpath(const char *val);

/*
 * config_cloud.c: the [entra] cloud presets. One cloud's table row: its
 * authority, the resource of each well-known service (NULL when the
 * service does not exist in that cloud) and the host names that mark
 * its endpoints (for the cross-cloud warning).
 */
#define CONFIG_CLOUD_SERVICES 6 /* storage vault sql graph arm databricks */
#define CONFIG_CLOUD_MARKS 8
struct config_cloud_def {
	const char *name;      /* "usgov" */
	const char *title;     /* "Azure Government (US)" */
	const char *authority; /* https://login.microsoftonline.us */
	const char *resources[CONFIG_CLOUD_SERVICES];
	/* Hosts and domains (a host is d or ends with ".d"); NULL-ended. */
	const char *marks[CONFIG_CLOUD_MARKS];
};
/* The row of enum config_cloud c (c in range). */
const struct config_cloud_def *config_cloud_def(int c);
/*
 * "@NAME" or "@NAME/SCOPE" for cloud row c into dst: "RESOURCE/.default"
 * or "RESOURCE/SCOPE". 0; -EINVAL (not @NAME[/SCOPE], or SCOPE empty or
 * with a space); -ENOENT (no service NAME); -ENXIO (NAME does not exist
 * in c); -ENAMETOOLONG.
 */
int config_cloud_expand(const struct config_cloud_def *c, const char *ref,
    char *dst, size_t dstsz);
/* The index of well-known service name (n bytes, no '@'), or -1. */
int config_cloud_service(const char *name, size_t n);
/*
 * "@NAME" (name, n bytes) in [msi] resources: the resource of
 * [entra] cloud into *out, or a "file:line: [msi] resources: ..." error
 * (no such service in the cloud, or provider = oidc). 0 or -EINVAL.
 */
int config_cloud_msi_resource(struct parser *p, const char *name, size_t n,
    const char **out);
/*
 * Alias sc's "@NAME[/SCOPE]" in cloud row c: sc->scope becomes the
 * resolved string, sc->preset what was written. 0, or -EINVAL with a
 * "file:line: alias: ..." error in p (unknown name, a service that does
 * not exist in c, malformed, provider not entra), -ENOMEM.
 */
int config_cloud_resolve(struct parser *p, const struct config_cloud_def *c,
    struct config_scope *sc);
/* A cloud or provider name -> its enum, else -1. */
int config_cloud_parse(const char *s);
int config_cloud_parse_provider(const char *s);
/* Remember where [entra] cloud, authority and [offboarding] graph_url were set. */
void config_cloud_note(struct parser *p, const struct key *k);
/*
 * After the defaults: provider and cloud together, authority and
 * graph_url from the cloud when not set, and every "@NAME" scope in
 * [scopes] resolved (errors name the alias's line). 0 or -errno.
 */
int config_cloud_apply(struct parser *p);

/* A [scopes] alias: [a-z0-9_-], at most CONFIG_ALIAS_MAX. */
int config_check_is_alias(const char *s);
/* One [msi] resource of n bytes: an https:// URL or an id, never a scope. */
int config_check_is_resource(const char *s, size_t n);
/* yes/true/1 -> 1, no/false/0 -> 0, else -1. */
int config_check_parse_bool(const char *s);
/* A client_auth name -> enum config_client_auth, else -1. */
int config_check_parse_client_auth(const char *s);
/* A signin value -> enum config_signin, else -1. */
int config_check_parse_signin(const char *s);

#endif
