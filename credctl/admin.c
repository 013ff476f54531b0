/*
 * admin.c - `credctl admin list|revoke USER|stats|metrics|health`: the
 * operations for root and credd's admin group. list pages through every
 * user's consent, revoke (revoke.c) drops one user's refresh token and
 * cached tokens on every node, and with --entra asks Graph to revoke
 * their sessions too, stats shows credd's counters, metrics prints
 * them in the Prometheus text format; text or --json. health (any user:
 * a monitoring agent) says whether the store, the IdP and the key ring
 * are usable, and exits 0, EXIT_DEGRADED or EXIT_UNHEALTHY.
 *
 * Must never: decide who is an admin (credd does, from the caller's
 * SO_PEERCRED uid and groups), or follow a server's cursors forever
 * (ADMIN_LIST_PAGES_MAX pages at most, and a repeated cursor stops).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "entra/proto.h"

#include "call.h"
#include "cmd.h"
#include "exit.h"
#include "opts.h"
#include "out.h"

#define ADMIN_LIST_PAGE 100
#define ADMIN_LIST_PAGES_MAX 100000 /* a server that loops cursors */

/* The list reply's entries, under whichever name this credd uses. */
static json_t *
list_entries(const json_t *resp)
{
	static const char *const names[] = { "users", "entries", "items",
		NULL };
	json_t *v;
	int i;

	for (i = 0; names[i] != NULL; i++) {
		v = json_object_get(resp, names[i]);
		if (json_is_array(v))
			return v;
	}
	return NULL;
}

static void
print_list_row(json_t *e)
{
	char user[64], state[32], acct[128], when[64], scope[OUT_MSG_MAX];
	json_t *scopes = json_object_get(e, "scopes");
	const char *key;
	json_t *v;
	size_t i, n = 0, len;

	scope[0] = '\0';
	json_array_foreach(scopes, i, v)
	{
		const char *s = json_is_string(v) ? json_string_value(v) :
						    out_jstr(v, "scope");

		if (s == NULL)
			continue;
		len = strlen(scope);
		snprintf(scope + len, sizeof(scope) - len, "%s%s",
		    n++ ? "," : "", s);
	}
	json_object_foreach(scopes, key, v)
	{
		len = strlen(scope);
		snprintf(scope + len, sizeof(scope) - len, "%s%s",
		    n++ ? "," : "", key);
	}
	out_clean(user, sizeof(user),
	    out_jstr(e, "user") != NULL ? out_jstr(e, "user") :
					  out_jstr(e, "name"));
	out_clean(state, sizeof(state), out_jstr(e, "state"));
	out_clean(acct, sizeof(acct),
	    out_account(json_object_get(e, "account")));
	if (json_object_get(e, "last_refresh") != NULL)
		out_when(when, sizeof(when), out_jint(e, "last_refresh", 0));
	else
		snprintf(when, sizeof(when), "-");
	out_clean(scope, sizeof(scope), scope);
	printf("%-16s %-16s %-32s %-32s %s\n", user, state[0] ? state : "-",
	    acct[0] ? acct : "-", when, scope[0] ? scope : "-");
}

static int
admin_list(struct ctx *c, int is_json)
{
	json_t *req = NULL, *resp = NULL, *all = NULL, *ents, *e;
	char *cursor = NULL;
	const char *next;
	size_t i;
	int r = EXIT_OK, page;

	all = json_array();
	if (all == NULL)
		return EXIT_ERR;
	if (!is_json)
		printf("%-16s %-16s %-32s %-32s %s\n", "USER", "STATE",
		    "ACCOUNT", "LAST REFRESH", "SCOPES");
	for (page = 0; page < ADMIN_LIST_PAGES_MAX; page++) {
		req = call_new_request("admin_list");
		if (req == NULL ||
		    json_object_set_new(req, "limit",
			json_integer(ADMIN_LIST_PAGE)) < 0 ||
		    (cursor != NULL &&
			json_object_set_new(req, "cursor",
			    json_string(cursor)) < 0)) {
			r = EXIT_ERR;
			break;
		}
		r = call_roundtrip(c, req, &resp, 0);
		json_decref(req);
		req = NULL;
		if (r != EXIT_OK)
			break;
		ents = list_entries(resp);
		json_array_foreach(ents, i, e)
		{
			if (is_json)
				(void)json_array_append(all, e);
			else
				print_list_row(e);
		}
		next = out_jstr(resp, "next_cursor");
		if (next == NULL || next[0] == '\0' ||
		    json_array_size(ents) == 0 ||
		    (cursor != NULL && strcmp(cursor, next) == 0))
			break;
		free(cursor);
		cursor = strdup(next);
		json_decref(resp);
		resp = NULL;
		if (cursor == NULL) {
			r = EXIT_ERR;
			break;
		}
	}
	if (r == EXIT_OK && is_json)
		r = out_json(all);
	json_decref(req);
	json_decref(resp);
	json_decref(all);
	free(cursor);
	return r;
}

static int
admin_simple(struct ctx *c, const char *op, int is_json)
{
	json_t *resp = NULL;
	int r;

	r = call_op(c, op, &resp);
	if (r != EXIT_OK)
		return r;
	if (is_json)
		r = out_json(resp);
	else
		out_tree("", resp);
	json_decref(resp);
	return r;
}

/* The page as it is (credd built it; no terminal escapes in it). */
static int
admin_metrics(struct ctx *c, int is_json)
{
	json_t *resp = NULL;
	const char *text;
	int r;

	r = call_op(c, "metrics", &resp);
	if (r != EXIT_OK)
		return r;
	text = out_jstr(resp, "text");
	if (is_json)
		r = out_json(resp);
	else if (text == NULL) {
		out_errorf("admin metrics: credd sent no page");
		r = EXIT_ERR;
	} else
		fputs(text, stdout);
	json_decref(resp);
	return r;
}

static void
print_component(const json_t *resp, const char *name)
{
	const json_t *o = json_object_get(resp, name);
	char why[OUT_MSG_MAX];

	out_clean(why, sizeof(why), out_jstr(o, "reason"));
	printf("%-8s %-9s %s\n", name,
	    json_is_true(json_object_get(o, "usable")) ? "usable" : "UNUSABLE",
	    why[0] != '\0' ? why : "-");
}

static int
admin_health(struct ctx *c, int is_json)
{
	json_t *resp = NULL;
	const char *h;
	int r;

	r = call_op(c, "health", &resp);
	if (r != EXIT_OK)
		return r;
	h = out_jstr(resp, "health");
	if (h == NULL)
		h = "";
	if (is_json)
		r = out_json(resp);
	else {
		printf("%s\n",
		    strcmp(h, "healthy") == 0	   ? "healthy" :
			strcmp(h, "degraded") == 0 ? "degraded" :
						     "unhealthy");
		print_component(resp, "store");
		print_component(resp, "idp");
		print_component(resp, "keyring");
	}
	if (r == EXIT_OK && strcmp(h, "healthy") != 0)
		r = strcmp(h, "degraded") == 0 ? EXIT_DEGRADED : EXIT_UNHEALTHY;
	json_decref(resp);
	return r;
}

int
admin_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	static const int allowed[] = { OPT_JSON, OPT_ENTRA, OPT_ALL, OPT_YES,
		0 };
	const char *sub;
	struct opts o;
	int r;

	r = opts_parse(c, cmd, argc, argv, allowed, -1, &o);
	if (r >= 0)
		return r;
	if (o.npos == 0) {
		out_errorf("admin: which one? usage: credctl %s", cmd->usage);
		return EXIT_USAGE;
	}
	sub = o.pos[0];
	if (strcmp(sub, "list") == 0 && o.npos == 1)
		return admin_list(c, o.is_json);
	if (strcmp(sub, "stats") == 0 && o.npos == 1)
		return admin_simple(c, "stats", o.is_json);
	if (strcmp(sub, "metrics") == 0 && o.npos == 1)
		return admin_metrics(c, o.is_json);
	if (strcmp(sub, "health") == 0 && o.npos == 1)
		return admin_health(c, o.is_json);
	if (strcmp(sub, "revoke") == 0)
		return revoke_cmd(c, &o);
	if (o.is_entra || o.is_all || o.is_yes) {
		out_errorf("admin %s: --entra, --all and --yes are for revoke",
		    sub);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "bind") == 0 || strcmp(sub, "unbind") == 0 ||
	    strcmp(sub, "bindings") == 0)
		return bind_cmd(c, sub, o.pos, o.npos, o.is_json);
	out_errorf("admin: bad arguments; usage: credctl %s", cmd->usage);
	return EXIT_USAGE;
}
