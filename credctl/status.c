/*
 * status.c - `credctl status`: what credd knows about the caller (the
 * consent's state, the account, the last refresh, the store's
 * condition, a pending sign-in, the cached scopes and their expiry), as
 * text or as credd's reply (--json).
 *
 * Must never: drop a field a newer credd sends (fields it does not
 * know are shown as "name  value" lines), or print server text that
 * out_clean has not made safe.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "call.h"
#include "cmd.h"
#include "exit.h"
#include "opts.h"
#include "out.h"

/* Scopes: [{"scope":..,"expires_on":..}], ["..."] or {"scope":expiry}. */
static void
print_scope(const char *name, const json_t *v)
{
	char s[OUT_MSG_MAX], when[64];
	int64_t exp = -1;

	if (json_is_integer(v))
		exp = json_integer_value(v);
	else if (json_is_object(v))
		exp = out_jint(v, "expires_on", -1);
	printf("  %-50s %s\n", out_clean(s, sizeof(s), name),
	    exp >= 0 ? out_expiry(when, sizeof(when), exp) : "");
}

static void
print_scopes(json_t *scopes)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_array_size(scopes) == 0 && json_object_size(scopes) == 0) {
		printf("Cached scopes: none\n");
		return;
	}
	printf("Cached scopes:\n");
	json_array_foreach(scopes, i, v)
	{
		if (json_is_string(v))
			print_scope(json_string_value(v), NULL);
		else if (json_is_object(v) && out_jstr(v, "scope") != NULL)
			print_scope(out_jstr(v, "scope"), v);
	}
	json_object_foreach(scopes, key, v) print_scope(key, v);
}

static void
print_status(json_t *r)
{
	static const char *const shown[] = { "ok", "state", "account", "scopes",
		"last_refresh", "store", "verification_uri", "user_code",
		"expires_on", "message", NULL };
	char buf[OUT_MSG_MAX], dev[2 * OUT_MSG_MAX];
	const char *state = out_jstr(r, "state");
	json_t *store = json_object_get(r, "store");
	json_t *rest;
	int i;

	printf("State:         %s\n",
	    out_clean(buf, sizeof(buf), state != NULL ? state : "unknown"));
	if (out_account(json_object_get(r, "account")) != NULL)
		printf("Account:       %s\n",
		    out_clean(buf, sizeof(buf),
			out_account(json_object_get(r, "account"))));
	if (json_object_get(r, "last_refresh") != NULL)
		printf("Last refresh:  %s\n",
		    out_when(buf, sizeof(buf), out_jint(r, "last_refresh", 0)));
	if (json_is_string(store))
		printf("Store:         %s\n",
		    out_clean(buf, sizeof(buf), json_string_value(store)));
	else if (json_is_object(store))
		out_tree("store", store);
	if (out_device_clause(dev, sizeof(dev), r))
		printf("Sign-in:       %s\n", dev);
	print_scopes(json_object_get(r, "scopes"));
	/* Anything newer than this credctl: show it rather than drop it. */
	rest = json_deep_copy(r);
	if (rest != NULL) {
		for (i = 0; shown[i] != NULL; i++)
			(void)json_object_del(rest, shown[i]);
		out_tree("", rest);
		json_decref(rest);
	}
	if (state != NULL &&
	    (strcmp(state, "none") == 0 ||
		strcmp(state, "reauth_required") == 0))
		printf("Run 'credctl login' to sign in.\n");
}

int
status_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	static const int allowed[] = { OPT_JSON, 0 };
	json_t *resp = NULL;
	struct opts o;
	int r;

	r = opts_parse(c, cmd, argc, argv, allowed, 0, &o);
	if (r >= 0)
		return r;
	r = call_op(c, "status", &resp);
	if (r != EXIT_OK)
		return r;
	if (o.is_json)
		r = out_json(resp);
	else
		print_status(resp);
	json_decref(resp);
	return r;
}
