/*
 * credctl.c - the user's and the administrator's command-line tool for
 * credd (DESIGN.md §9): fetch an access token, sign in with the device
 * code flow, show status, sign out, and the admin operations. It sees
 * credd only through include/entra (proto.h, client.h).
 *
 * Must never: print token material anywhere but the requested token on
 * stdout, take a token from argv or the environment, leave a token in
 * freed memory (jansson gets a wiping allocator here, and only here, as
 * lib/ must not touch process-wide state), or print more than one line
 * per error on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "entra/paths.h"
#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"
#include "entra/version.h"

#include "call.h"
#include "credctl.h"
#include "opts.h"
#include "out.h"

#define CREDCTL_LIST_PAGE 100
#define CREDCTL_LIST_PAGES_MAX 100000	/* a server that loops cursors */

/* ---- jansson's wiping allocator (credctl only) ---- */

static void *
wipe_malloc(size_t n)
{
	return malloc(n);
}

/* Replies carry tokens: wipe every jansson buffer before it is freed. */
static void
wipe_free(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

/* ---- admin ---- */

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
	json_array_foreach(scopes, i, v) {
		const char *s = json_is_string(v) ? json_string_value(v) :
		    out_jstr(v, "scope");

		if (s == NULL)
			continue;
		len = strlen(scope);
		snprintf(scope + len, sizeof(scope) - len, "%s%s",
		    n++ ? "," : "", s);
	}
	json_object_foreach(scopes, key, v) {
		len = strlen(scope);
		snprintf(scope + len, sizeof(scope) - len, "%s%s",
		    n++ ? "," : "", key);
	}
	out_clean(user, sizeof(user), out_jstr(e, "user") != NULL ? out_jstr(e, "user") :
	    out_jstr(e, "name"));
	out_clean(state, sizeof(state), out_jstr(e, "state"));
	out_clean(acct, sizeof(acct), out_account(json_object_get(e,
	    "account")));
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
	for (page = 0; page < CREDCTL_LIST_PAGES_MAX; page++) {
		req = call_new_request("admin_list");
		if (req == NULL || json_object_set_new(req, "limit",
		    json_integer(CREDCTL_LIST_PAGE)) < 0 || (cursor != NULL &&
		    json_object_set_new(req, "cursor", json_string(cursor)) <
		    0)) {
			r = EXIT_ERR;
			break;
		}
		r = call_roundtrip(c, req, &resp, 0);
		json_decref(req);
		req = NULL;
		if (r != EXIT_OK)
			break;
		ents = list_entries(resp);
		json_array_foreach(ents, i, e) {
			if (is_json)
				(void)json_array_append(all, e);
			else
				print_list_row(e);
		}
		next = out_jstr(resp, "next_cursor");
		if (next == NULL || next[0] == '\0' || json_array_size(ents) ==
		    0 || (cursor != NULL && strcmp(cursor, next) == 0))
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
admin_simple(struct ctx *c, const char *op, const char *user, int is_json)
{
	json_t *req = NULL, *resp = NULL;
	char u[128];
	int r;

	req = call_new_request(op);
	if (req == NULL || (user != NULL && json_object_set_new(req, "user",
	    json_string(user)) < 0)) {
		json_decref(req);
		return EXIT_ERR;
	}
	r = call_roundtrip(c, req, &resp, 0);
	json_decref(req);
	if (r != EXIT_OK)
		return r;
	if (user != NULL)
		printf("Revoked %s: refresh token and cached tokens dropped on "
		    "every node.\n", out_clean(u, sizeof(u), user));
	else if (is_json)
		r = out_json(resp);
	else
		out_tree("", resp);
	json_decref(resp);
	return r;
}

static int
cmd_admin(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	static const int allowed[] = { OPT_JSON, 0 };
	const char *sub;
	struct opts o;
	int r;

	r = opts_parse(c, cmd, argc, argv, allowed, &o);
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
		return admin_simple(c, "stats", NULL, o.is_json);
	if (strcmp(sub, "revoke") == 0 && o.npos == 2 && !o.is_json) {
		if (o.pos[1][0] == '\0' || strlen(o.pos[1]) > PROTO_STR_MAX) {
			out_errorf("admin revoke: USER must be a login name");
			return EXIT_USAGE;
		}
		return admin_simple(c, "admin_revoke", o.pos[1], 0);
	}
	out_errorf("admin: bad arguments; usage: credctl %s", cmd->usage);
	return EXIT_USAGE;
}

/* ---- the subcommand table and main ---- */

static const char *
credctl_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s != NULL ? s + 1 : path;
}

static const struct cmd cmds[] = {
	{ "token", token_cmd,
	    "token [SCOPE|ALIAS] [--min-valid S] [--json|--env|--header]" },
	{ "login", login_cmd, "login [--no-wait] [--qr]" },
	{ "status", status_cmd, "status [--json]" },
	{ "logout", logout_cmd, "logout" },
	{ "admin", cmd_admin, "admin list|revoke USER|stats [--json]" },
	{ "env", env_cmd, "env [--json]" },
	{ "az", az_cmd, "az account get-access-token|show [...] "
	    "(other subcommands run the real az)" },
	{ "sink", sink_cmd, "sink --scope SCOPE --out FILE" },
	{ NULL, NULL, NULL }
};

static const struct cmd *
find_cmd(const char *name)
{
	int i;

	for (i = 0; cmds[i].name != NULL; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static void
usage(FILE *f)
{
	int i;

	fprintf(f, "usage: credctl [--socket PATH] COMMAND [ARGS]\n");
	for (i = 0; cmds[i].name != NULL; i++)
		fprintf(f, "       credctl %s\n", cmds[i].usage);
	fprintf(f, "\nThe socket defaults to $CREDD_SOCKET, else %s.\n"
	    "Exit status: 0 ok, 1 error, 2 usage, 3 sign-in needed, "
	    "4 unavailable,\n5 refused, 6 misconfigured.\n",
	    ENTRA_SOCKET_PATH);
}

int
main(int argc, char **argv)
{
	struct ctx c = { NULL, -1 };
	const struct cmd *cmd;
	const char *env;
	int ch, r;

	json_set_alloc_funcs(wipe_malloc, wipe_free);
	env = getenv("CREDD_SOCKET");
	c.socket = env != NULL && env[0] != '\0' ? env : ENTRA_SOCKET_PATH;
	/* Installed as "az" (a symlink): act as the az shim. */
	if (argc > 0 && strcmp(credctl_basename(argv[0]), "az") == 0) {
		out_set_progname("az");
		r = az_cmd(&c, find_cmd("az"), argc, argv);
		util_closep(&c.fd);
		return r;
	}
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+h", opts_long, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case OPT_VERSION:
			printf("credctl %s (protocol v%d)\n", ENTRA_VERSION,
			    PROTO_VERSION);
			return EXIT_OK;
		case OPT_SOCKET:
			c.socket = optarg;
			break;
		default:
			out_errorf("unknown or misplaced option '%s'; see "
			    "'credctl --help'", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = find_cmd(argv[optind]);
	if (cmd == NULL) {
		out_errorf("unknown command '%s'; see 'credctl --help'",
		    argv[optind]);
		return EXIT_USAGE;
	}
	r = cmd->run(&c, cmd, argc - optind, argv + optind);
	util_closep(&c.fd);
	if (fflush(stdout) == EOF && r == EXIT_OK) {
		out_errorf("cannot write to stdout: %s", strerror(errno));
		r = EXIT_ERR;
	}
	return r;
}
