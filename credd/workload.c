/*
 * workload.c - the workload policy applied (workload.h).
 *
 * Must never: allow what a policy line forbids, or refuse without
 * naming that line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "workload.h"

static const char *const key_names[CONFIG_WL_KEYS] = {
	[CONFIG_WLK_IDENTITY] = "identity",
	[CONFIG_WLK_SCOPES] = "scopes",
	[CONFIG_WLK_SDK] = "sdk",
	[CONFIG_WLK_START_SIGNIN] = "start_signin",
};

void
workload_print_table(const struct config *cf, FILE *f)
{
	int k;

	fprintf(f, "%-10s %-12s %-13s %-4s %s\n", "workload", "identity",
	    "start_signin", "sdk", "scopes");
	for (k = 0; k < CONFIG_WORKLOADS; k++) {
		const struct config_workload *p = &cf->workload[k];

		fprintf(f, "%-10s %-12s %-13s %-4s %s\n",
		    config_workload_name(k),
		    workload_identity_name(p->identity),
		    p->start_signin ? "yes" : "no", p->sdk ? "yes" : "no",
		    p->scopes != NULL ? p->scopes : "*");
	}
	fprintf(f,
	    "[sessions] cgroups = %s, cgroup_prefix = %s, "
	    "peer_pidfd = %s\n",
	    cf->cgroups ? "yes" : "no",
	    cf->cgroup_prefix != NULL ? cf->cgroup_prefix : "(none)",
	    cf->peer_pidfd ? "yes" : "no");
}

const char *
workload_identity_name(int identity)
{
	switch (identity) {
	case CONFIG_IDENTITY_NONE:
		return "none";
	case CONFIG_IDENTITY_USER:
		return "user";
	case CONFIG_IDENTITY_APP:
		return "app";
	case CONFIG_IDENTITY_USER_OR_APP:
		return "user-or-app";
	}
	return "?";
}

/* How many aliases kind allows (all: nscopes). */
static size_t
allowed_count(const struct config *cf, int kind)
{
	size_t i, n = 0;

	for (i = 0; i < cf->nscopes; i++)
		n += (size_t)config_workload_allows(cf, kind,
		    cf->scopes[i].alias);
	return n;
}

/* <0 when a is stricter than b, >0 when b is, 0 when alike. */
static int
compare(const struct config *cf, int a, int b)
{
	const struct config_workload *pa = &cf->workload[a],
				     *pb = &cf->workload[b];
	size_t na, nb;

	if ((pa->identity == CONFIG_IDENTITY_NONE) !=
	    (pb->identity == CONFIG_IDENTITY_NONE))
		return pa->identity == CONFIG_IDENTITY_NONE ? -1 : 1;
	if (pa->start_signin != pb->start_signin)
		return pa->start_signin ? 1 : -1;
	if (pa->sdk != pb->sdk)
		return pa->sdk ? 1 : -1;
	na = allowed_count(cf, a);
	nb = allowed_count(cf, b);
	return na < nb ? -1 : na > nb ? 1 : 0;
}

int
workload_strictest(const struct config *cf, const int *kinds, size_t n)
{
	size_t i;
	int best = -1;

	for (i = 0; i < n; i++)
		if (best < 0 || compare(cf, kinds[i], kinds[best]) < 0)
			best = (int)i;
	return best;
}

const char *
workload_line(const struct config *cf, int kind, enum config_wl_key key,
    char *buf, size_t bufsz)
{
	const struct config_workload *p = &cf->workload[kind];
	char val[128], where[300];

	switch (key) {
	case CONFIG_WLK_IDENTITY:
		(void)snprintf(val, sizeof(val), "%s",
		    workload_identity_name(p->identity));
		break;
	case CONFIG_WLK_SCOPES:
		(void)snprintf(val, sizeof(val), "%s",
		    p->scopes != NULL ? p->scopes : "*");
		break;
	case CONFIG_WLK_SDK:
		(void)snprintf(val, sizeof(val), "%s", p->sdk ? "yes" : "no");
		break;
	default:
		(void)snprintf(val, sizeof(val), "%s",
		    p->start_signin ? "yes" : "no");
		break;
	}
	if (p->line[key] > 0)
		(void)snprintf(where, sizeof(where), "%s:%u",
		    cf->path != NULL ? cf->path : "credd.conf", p->line[key]);
	else
		(void)snprintf(where, sizeof(where), "default");
	(void)snprintf(buf, bufsz, "[workload.%s] %s = %s (%s)",
	    config_workload_name(kind), key_names[key], val, where);
	return buf;
}

/* The alias of a configured scope string, or NULL. */
static const char *
alias_of(const struct config *cf, const char *scope)
{
	size_t i;

	for (i = 0; i < cf->nscopes; i++)
		if (strcmp(cf->scopes[i].scope, scope) == 0 ||
		    strcmp(cf->scopes[i].alias, scope) == 0)
			return cf->scopes[i].alias;
	return NULL;
}

static int
refuse(const struct config *cf, int kind, enum config_wl_key key,
    const char *what, char *why, size_t whysz)
{
	char line[WORKLOAD_WHY_MAX];

	(void)snprintf(why, whysz, "%s: refused by %s", what,
	    workload_line(cf, kind, key, line, sizeof(line)));
	return -EACCES;
}

int
workload_check_token(const struct config *cf, int kind, const char *scope,
    char *why, size_t whysz)
{
	const struct config_workload *p = &cf->workload[kind];
	const char *alias;

	why[0] = '\0';
	if (p->identity == CONFIG_IDENTITY_NONE)
		return refuse(cf, kind, CONFIG_WLK_IDENTITY,
		    "this workload gets no user token", why, whysz);
	alias = alias_of(cf, scope);
	if (p->scopes != NULL && strcmp(p->scopes, "*") == 0)
		return 0; /* every scope, the SDK endpoint's resources too */
	if (alias == NULL || !config_workload_allows(cf, kind, alias))
		return refuse(cf, kind, CONFIG_WLK_SCOPES,
		    "this scope is not allowed for this workload", why, whysz);
	return 0;
}

int
workload_check_signin(const struct config *cf, int kind, char *why,
    size_t whysz)
{
	why[0] = '\0';
	if (!cf->workload[kind].start_signin ||
	    cf->workload[kind].identity == CONFIG_IDENTITY_NONE)
		return refuse(cf, kind,
		    cf->workload[kind].start_signin ? CONFIG_WLK_IDENTITY :
						      CONFIG_WLK_START_SIGNIN,
		    "this workload may not start a sign-in; sign in from a "
		    "workspace or with 'credctl login' in a session that may",
		    why, whysz);
	return 0;
}

int
workload_check_sdk(const struct config *cf, int kind, char *why, size_t whysz)
{
	why[0] = '\0';
	if (!cf->workload[kind].sdk)
		return refuse(cf, kind, CONFIG_WLK_SDK,
		    "the SDK endpoint does not serve this workload", why,
		    whysz);
	return 0;
}
