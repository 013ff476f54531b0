/*
 * config_workload.c - the [sessions] and [workload.NAME] sections of
 * credd.conf (issue 14): their key tables, value checks, the lines the
 * policy keys were set on (a refusal names its line), and the check
 * that every alias a policy allows is in [scopes].
 *
 * The defaults are the ones a security team signs: [workload.default]
 * (callers with no session: cron without PAM, daemons) behaves as credd
 * did before policies existed; workspaces may start a sign-in; jobs and
 * scheduled jobs never do; apps get no user token and no SDK endpoint.
 *
 * Must never: accept identity = app or user-or-app without an [entra]
 * client_auth credential (the app's own; the offboarding credential,
 * with directory-write permissions, is never it: [offboarding]
 * client_id must differ from [entra] client_id), or echo a value it
 * refuses beyond config_err_quote.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

#define OFF(f) offsetof(struct config, f)
/* clang-format off */
#define KEY(n, t, f, d) { n, t, OFF(f), 0, 0, d, 0 }
/* One table per kind, sorted by name: identity, scopes, sdk, start_signin. */
#define WL_KEYS(i, d_identity, d_sdk, d_signin) {                            \
	KEY("identity", KT_IDENTITY, workload[i].identity, d_identity),        \
	KEY("scopes", KT_ALIASES, workload[i].scopes, "*"),                    \
	KEY("sdk", KT_BOOL, workload[i].sdk, d_sdk),                           \
	KEY("start_signin", KT_BOOL, workload[i].start_signin, d_signin),      \
}
/* clang-format on */

const struct key config_workload_sessions_keys[3] = {
	KEY("cgroup_prefix", KT_CGPATH, cgroup_prefix, "/user.slice/"),
	KEY("cgroups", KT_BOOL, cgroups, "yes"),
	KEY("peer_pidfd", KT_BOOL, peer_pidfd, "yes"),
};

const struct key config_workload_keys[CONFIG_WORKLOADS][CONFIG_WL_KEYS] = {
	[CONFIG_WL_DEFAULT] = WL_KEYS(CONFIG_WL_DEFAULT, "user", "yes", "yes"),
	[CONFIG_WL_WORKSPACE] =
	    WL_KEYS(CONFIG_WL_WORKSPACE, "user", "yes", "yes"),
	[CONFIG_WL_JOB] = WL_KEYS(CONFIG_WL_JOB, "user", "yes", "no"),
	[CONFIG_WL_SCHEDULED] =
	    WL_KEYS(CONFIG_WL_SCHEDULED, "user", "yes", "no"),
	[CONFIG_WL_APP] = WL_KEYS(CONFIG_WL_APP, "none", "no", "no"),
};

static const char *const kind_names[CONFIG_WORKLOADS] = {
	[CONFIG_WL_DEFAULT] = "default",
	[CONFIG_WL_WORKSPACE] = "workspace",
	[CONFIG_WL_JOB] = "job",
	[CONFIG_WL_SCHEDULED] = "scheduled",
	[CONFIG_WL_APP] = "app",
};

const char *
config_workload_name(int kind)
{
	if (kind < 0 || kind >= CONFIG_WORKLOADS)
		return NULL;
	return kind_names[kind];
}

int
config_workload_kind(const char *name)
{
	int i;

	if (name == NULL || name[0] == '\0')
		return -1;
	for (i = 0; i < CONFIG_WORKLOADS; i++)
		if (strcmp(kind_names[i], name) == 0)
			return i;
	return -1;
}

int
config_workload_section_kind(const char *section_name)
{
	if (strncmp(section_name, "workload.", 9) != 0)
		return -1;
	return config_workload_kind(section_name + 9);
}

void
config_workload_note(struct parser *p, const struct key *k)
{
	int kind = config_workload_section_kind(p->sec->name);

	if (kind < 0 || k < config_workload_keys[kind] ||
	    k >= config_workload_keys[kind] + CONFIG_WL_KEYS)
		return;
	p->cf->workload[kind].line[k - config_workload_keys[kind]] = p->line;
}

int
config_workload_parse_identity(const char *val)
{
	if (strcmp(val, "none") == 0)
		return CONFIG_IDENTITY_NONE;
	if (strcmp(val, "user") == 0)
		return CONFIG_IDENTITY_USER;
	if (strcmp(val, "app") == 0)
		return CONFIG_IDENTITY_APP;
	if (strcmp(val, "user-or-app") == 0)
		return CONFIG_IDENTITY_USER_OR_APP;
	return -1;
}

const char *
config_workload_check_identity(const char *val)
{
	int id = config_workload_parse_identity(val);

	return id < 0 ? "must be none, user, app or user-or-app" : NULL;
}

const char *
config_workload_check_aliases(const char *val)
{
	char one[CONFIG_ALIAS_MAX + 1];
	const char *s, *e;

	if (strcmp(val, "*") == 0)
		return NULL;
	for (s = val; *s != '\0'; s = e) {
		while (*s == ' ' || *s == '\t')
			s++;
		for (e = s; *e != '\0' && *e != ' ' && *e != '\t'; e++)
			;
		if (e == s)
			break;
		if ((size_t)(e - s) > CONFIG_ALIAS_MAX)
			return "must be * or [scopes] aliases separated by "
			       "spaces";
		memcpy(one, s, (size_t)(e - s));
		one[e - s] = '\0';
		if (!config_check_is_alias(one))
			return "must be * or [scopes] aliases separated by "
			       "spaces";
	}
	return NULL;
}

const char *
config_workload_check_cgpath(const char *val)
{
	const char *s;

	if (val[0] != '/' || strstr(val, "/..") != NULL || strlen(val) > 512)
		return "must be a cgroup path: / then [A-Za-z0-9@:._/-]";
	for (s = val; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			(*s >= '0' && *s <= '9') || strchr("@:._/-", *s)))
			return "must be a cgroup path: / then "
			       "[A-Za-z0-9@:._/-]";
	return NULL;
}

int
config_workload_allows(const struct config *cf, int kind, const char *alias)
{
	const char *s, *e;
	size_t n = strlen(alias);

	s = cf->workload[kind].scopes;
	if (s == NULL || strcmp(s, "*") == 0)
		return 1;
	for (; *s != '\0'; s = e) {
		while (*s == ' ' || *s == '\t')
			s++;
		for (e = s; *e != '\0' && *e != ' ' && *e != '\t'; e++)
			;
		if ((size_t)(e - s) == n && strncmp(s, alias, n) == 0)
			return 1;
	}
	return 0;
}

int
config_workload_check(struct parser *p)
{
	char qb[CONFIG_QUOTE_MAX + 1], one[CONFIG_ALIAS_MAX + 1];
	struct config *cf = p->cf;
	const char *s, *e;
	size_t i;
	int k, ok;

	for (k = 0; k < CONFIG_WORKLOADS; k++) {
		if ((cf->workload[k].identity == CONFIG_IDENTITY_APP ||
			cf->workload[k].identity ==
			    CONFIG_IDENTITY_USER_OR_APP) &&
		    cf->client_auth == CONFIG_CLIENT_AUTH_NONE) {
			p->line = cf->workload[k].line[CONFIG_WLK_IDENTITY];
			config_err(p,
			    "[workload.%s] identity = %s needs [entra] "
			    "client_auth = certificate|federated|secret (the "
			    "app's own credential; never the offboarding one)",
			    kind_names[k],
			    cf->workload[k].identity == CONFIG_IDENTITY_APP ?
				"app" :
				"user-or-app");
			return -EINVAL;
		}
		s = cf->workload[k].scopes;
		if (s == NULL || strcmp(s, "*") == 0)
			continue;
		for (; *s != '\0'; s = e) {
			while (*s == ' ' || *s == '\t')
				s++;
			for (e = s; *e != '\0' && *e != ' ' && *e != '\t'; e++)
				;
			if (e == s)
				break;
			memcpy(one, s, (size_t)(e - s));
			one[e - s] = '\0';
			for (i = 0, ok = 0; i < cf->nscopes && !ok; i++)
				ok = strcmp(cf->scopes[i].alias, one) == 0;
			if (!ok) {
				p->line =
				    cf->workload[k].line[CONFIG_WLK_SCOPES];
				config_err(p,
				    "[workload.%s] scopes names unknown alias "
				    "'%s' (see [scopes])",
				    kind_names[k],
				    config_err_quote(qb, sizeof(qb), one));
				return -EINVAL;
			}
		}
	}
	return 0;
}
