/*
 * revoke.c - `credctl admin revoke USER [--entra]` and `credctl admin
 * revoke --all [--entra] [--yes]`: the local and cluster-wide revoke
 * (admin_revoke, as before), and with --entra first Microsoft Graph's
 * revokeSignInSessions through credd (admin_offboard, with the
 * [offboarding] app credential, which only credd holds). Each user gets
 * one line per step with its outcome; the exit code is that of the worst
 * step. --all revokes every user credd lists, after a confirmation: a
 * typed "yes" on a terminal, or --yes; without either it refuses.
 *
 * Must never: skip the local revoke because Graph failed (the refresh
 * tokens must leave this cluster whatever Entra said), or revoke --all
 * unconfirmed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "entra/proto.h"

#include "call.h"
#include "cmd.h"
#include "exit.h"
#include "opts.h"
#include "out.h"

#define REVOKE_ALL_MAX 1000000 /* users; a server that pages forever */

/* The exit code an admin_offboard outcome stands for. */
static int
entra_exit(const char *outcome)
{
	if (strcmp(outcome, "revoked") == 0)
		return EXIT_OK;
	if (strcmp(outcome, "not_configured") == 0 ||
	    strcmp(outcome, "refused") == 0 ||
	    strcmp(outcome, "credential_rejected") == 0)
		return EXIT_MISCONF;
	if (strcmp(outcome, "unavailable") == 0)
		return EXIT_UNAVAIL;
	return EXIT_ERR;
}

/* The worse of two exit codes (any failure beats EXIT_OK). */
static int
worse(int a, int b)
{
	return a != EXIT_OK ? a : b;
}

static int
revoke_entra(struct ctx *c, const char *user)
{
	json_t *req, *resp = NULL;
	char u[128], outcome[32], msg[OUT_MSG_MAX];
	int r;

	req = call_new_request("admin_offboard");
	if (req == NULL ||
	    json_object_set_new(req, "user", json_string(user)) < 0) {
		json_decref(req);
		return EXIT_ERR;
	}
	r = call_roundtrip(c, req, &resp, 0);
	json_decref(req);
	if (r != EXIT_OK) {
		printf("%s: entra: not asked (credd did not take the request; "
		       "an older credd has no admin_offboard)\n",
		    out_clean(u, sizeof(u), user));
		return r;
	}
	out_clean(outcome, sizeof(outcome), out_jstr(resp, "entra"));
	out_clean(msg, sizeof(msg), out_jstr(resp, "message"));
	printf("%s: entra: %s: %s\n", out_clean(u, sizeof(u), user),
	    outcome[0] ? outcome : "?", msg[0] ? msg : "-");
	json_decref(resp);
	return entra_exit(outcome);
}

static int
revoke_local(struct ctx *c, const char *user)
{
	json_t *req, *resp = NULL;
	char u[128];
	int r;

	req = call_new_request("admin_revoke");
	if (req == NULL ||
	    json_object_set_new(req, "user", json_string(user)) < 0) {
		json_decref(req);
		return EXIT_ERR;
	}
	r = call_roundtrip(c, req, &resp, 0);
	json_decref(req);
	json_decref(resp);
	if (r == EXIT_OK)
		printf("%s: local: revoked (refresh token and cached tokens "
		       "dropped on every node)\n",
		    out_clean(u, sizeof(u), user));
	else
		printf("%s: local: FAILED (see above)\n",
		    out_clean(u, sizeof(u), user));
	return r;
}

/* Graph first (it needs the record's oid), then the local purge always. */
static int
revoke_one(struct ctx *c, const char *user, int is_entra)
{
	int re = EXIT_OK, rl;

	if (is_entra)
		re = revoke_entra(c, user);
	rl = revoke_local(c, user);
	return worse(rl, re);
}

/* Every user name credd lists, in *out (a JSON array of strings). */
static int
list_users(struct ctx *c, json_t **out)
{
	json_t *all = json_array(), *req, *resp = NULL, *ents, *e;
	char *cursor = NULL;
	const char *next, *name;
	size_t i;
	int r = EXIT_OK;

	*out = NULL;
	while (all != NULL && json_array_size(all) < REVOKE_ALL_MAX) {
		req = call_new_request("admin_list");
		if (req == NULL ||
		    json_object_set_new(req, "limit", json_integer(100)) < 0 ||
		    (cursor != NULL &&
			json_object_set_new(req, "cursor",
			    json_string(cursor)) < 0)) {
			json_decref(req);
			r = EXIT_ERR;
			break;
		}
		r = call_roundtrip(c, req, &resp, 0);
		json_decref(req);
		if (r != EXIT_OK)
			break;
		ents = json_object_get(resp, "users");
		json_array_foreach(ents, i, e)
		{
			name = out_jstr(e, "user");
			if (name != NULL &&
			    json_array_append_new(all, json_string(name)) < 0)
				r = EXIT_ERR;
		}
		next = out_jstr(resp, "next_cursor");
		if (r != EXIT_OK || next == NULL || next[0] == '\0' ||
		    json_array_size(ents) == 0 ||
		    (cursor != NULL && strcmp(cursor, next) == 0))
			break;
		free(cursor);
		cursor = strdup(next);
		json_decref(resp);
		resp = NULL;
		if (cursor == NULL)
			r = EXIT_ERR;
	}
	json_decref(resp);
	free(cursor);
	if (all == NULL || r != EXIT_OK) {
		json_decref(all);
		return all == NULL ? EXIT_ERR : r;
	}
	*out = all;
	return EXIT_OK;
}

/* A typed "yes" on the terminal, or --yes. 1 when confirmed. */
static int
confirmed(size_t n, int is_entra, int is_yes)
{
	char line[16];

	if (is_yes)
		return 1;
	if (!isatty(STDIN_FILENO)) {
		out_errorf("admin revoke --all: confirm with --yes (stdin is "
			   "not a terminal)");
		return 0;
	}
	fprintf(stderr,
	    "This revokes %zu users on every node%s.\nType yes to go on: ", n,
	    is_entra ? ", and asks Entra to sign each of them out of every "
		       "Microsoft 365 session" :
		       "");
	if (fgets(line, sizeof(line), stdin) == NULL ||
	    strcmp(line, "yes\n") != 0) {
		out_errorf("admin revoke --all: not confirmed; nothing done");
		return 0;
	}
	return 1;
}

static int
revoke_all(struct ctx *c, int is_entra, int is_yes)
{
	json_t *users = NULL, *v;
	size_t i, nfail = 0;
	int r, rr = EXIT_OK;

	/* Refuse early, before any request, when nobody can confirm. */
	if (!is_yes && !isatty(STDIN_FILENO)) {
		(void)confirmed(0, is_entra, 0);
		return EXIT_USAGE;
	}
	r = list_users(c, &users);
	if (r != EXIT_OK)
		return r;
	if (!confirmed(json_array_size(users), is_entra, is_yes)) {
		json_decref(users);
		return EXIT_USAGE;
	}
	json_array_foreach(users, i, v)
	{
		r = revoke_one(c, json_string_value(v), is_entra);
		if (r != EXIT_OK)
			nfail++;
		rr = worse(rr, r);
	}
	printf("revoked %zu users; %zu with a failed step\n",
	    json_array_size(users), nfail);
	json_decref(users);
	return rr;
}

int
revoke_cmd(struct ctx *c, const struct opts *o)
{
	if (o->is_json) {
		out_errorf("admin revoke: --json is not supported");
		return EXIT_USAGE;
	}
	if (o->is_all) {
		if (o->npos != 1) {
			out_errorf("admin revoke --all takes no USER");
			return EXIT_USAGE;
		}
		return revoke_all(c, o->is_entra, o->is_yes);
	}
	if (o->npos != 2 || o->pos[1][0] == '\0' ||
	    strlen(o->pos[1]) > PROTO_STR_MAX) {
		out_errorf("admin revoke: USER must be a login name");
		return EXIT_USAGE;
	}
	if (o->is_yes) {
		out_errorf("admin revoke: --yes is for --all");
		return EXIT_USAGE;
	}
	return revoke_one(c, o->pos[1], o->is_entra);
}
