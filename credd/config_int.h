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
	KT_RESOURCES,	/* space-separated resources (https:// URLs or GUIDs) */
	KT_CLIENT_AUTH, /* none | secret | certificate | federated, an int */
	KT_CAPS,	/* client_capabilities: cp1 (the one known) */
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
	uint64_t seen[9];      /* per section, one bit per key */
	unsigned default_line; /* line of [scopes] default */
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
/* A [scopes] alias: [a-z0-9_-], at most CONFIG_ALIAS_MAX. */
int config_check_is_alias(const char *s);
/* One [msi] resource of n bytes: an https:// URL or an id, never a scope. */
int config_check_is_resource(const char *s, size_t n);
/* yes/true/1 -> 1, no/false/0 -> 0, else -1. */
int config_check_parse_bool(const char *s);
/* A client_auth name -> enum config_client_auth, else -1. */
int config_check_parse_client_auth(const char *s);

#endif
