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
#ifdef HAVE_QRENCODE
#include <dlfcn.h>
#include <qrencode.h>
#endif

#include "entra/paths.h"
#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"
#include "entra/version.h"

#include "countdown.h"
#include "call.h"
#include "credctl.h"
#include "opts.h"
#include "out.h"

#define CREDCTL_LOGIN_WAIT 5		/* seconds per login poll */
#define CREDCTL_LOGIN_SLACK_MS 10000	/* client deadline beyond the wait */
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

/* ---- login ---- */

#ifdef HAVE_QRENCODE
/*
 * Draw a QR code of text on stderr with Unicode half blocks: two module
 * rows per line, light modules drawn (like qrencode -t UTF8), so it
 * scans on the usual dark terminal.
 */
static void
print_qr(const char *text)
{
	const int quiet = 2;
	QRcode *(*encode)(const char *, int, QRecLevel, QRencodeMode, int);
	void (*qfree)(QRcode *);
	QRcode *qr;
	void *lib;
	int x, y, w, top, bot;

	/*
	 * Loaded only for --qr: linking libqrencode made every `credctl
	 * token` pay for loading it (a third of its start-up instructions).
	 */
	lib = dlopen("libqrencode.so.4", RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		out_errorf("cannot draw a QR code: libqrencode is not installed");
		return;
	}
	*(void **)&encode = dlsym(lib, "QRcode_encodeString");
	*(void **)&qfree = dlsym(lib, "QRcode_free");
	qr = encode != NULL && qfree != NULL ?
	    encode(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1) : NULL;
	if (qr == NULL) {
		out_errorf("cannot draw a QR code: %s", strerror(errno));
		dlclose(lib);
		return;
	}
	w = qr->width;
	for (y = -quiet; y < w + quiet; y += 2) {
		for (x = -quiet; x < w + quiet; x++) {
			top = y >= 0 && y < w && x >= 0 && x < w &&
			    (qr->data[y * w + x] & 1);
			bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w &&
			    (qr->data[(y + 1) * w + x] & 1);
			fputs(!top && !bot ? "\u2588" : !top ? "\u2580" :
			    !bot ? "\u2584" : " ", stderr);
		}
		fputc('\n', stderr);
	}
	qfree(qr);
	dlclose(lib);
}
#endif

/*
 * Show the device-code prompt: our own line with the URL, the code and
 * the time left, plus credd's (or Entra's) message when it says more.
 */
static void
show_prompt(const json_t *r, int is_qr)
{
	char msg[OUT_MSG_MAX], dev[2 * OUT_MSG_MAX], when[64];
	const char *uri = out_jstr(r, "verification_uri");
	const char *code = out_jstr(r, "user_code");
	const char *m = out_jstr(r, "message");
	int64_t end = out_jint(r, "expires_on", 0);

	if (out_device_clause(dev, sizeof(dev), r)) {
		if (end > 0)
			fprintf(stderr, "To sign in, %s (the code %s).\n", dev,
			    out_expiry(when, sizeof(when), end));
		else
			fprintf(stderr, "To sign in, %s.\n", dev);
	}
	if (m != NULL && (code == NULL || strstr(m, code) == NULL ||
	    uri == NULL))
		fprintf(stderr, "%s\n", out_clean(msg, sizeof(msg), m));
	if (is_qr && uri != NULL) {
#ifdef HAVE_QRENCODE
		print_qr(uri);
#else
		out_errorf("this credctl was built without QR code support");
#endif
	}
}

/* Poll credd with login(wait) until ready, an error or expiry. */
static int
login_wait(struct ctx *c, json_t *pending, int is_qr)
{
	char code[64], acct[OUT_MSG_MAX];
	json_t *req = NULL, *resp = NULL;
	int64_t end = out_jint(pending, "expires_on", 0);
	int r = EXIT_ACT;

	out_clean(code, sizeof(code), out_jstr(pending, "user_code"));
	req = call_new_request("login");
	if (req == NULL || json_object_set_new(req, "wait",
	    json_integer(CREDCTL_LOGIN_WAIT)) < 0) {
		json_decref(req);
		return EXIT_ERR;
	}
	countdown_start(end);
	for (;;) {
		int64_t t0 = util_mono_ms();
		const char *state, *uc;

		r = call_roundtrip(c, req, &resp, CREDCTL_LOGIN_WAIT * 1000 +
		    CREDCTL_LOGIN_SLACK_MS - CALL_DEADLINE_MS);
		if (r != EXIT_OK)
			break;
		state = out_jstr(resp, "state");
		if (state != NULL && strcmp(state, "ready") == 0) {
			countdown_stop();
			printf("Signed in as %s\n", out_clean(acct, sizeof(acct),
			    out_account(json_object_get(resp, "account"))));
			json_decref(resp);
			json_decref(req);
			return EXIT_OK;
		}
		uc = out_jstr(resp, "user_code");
		if (uc != NULL && strcmp(uc, code) != 0) {
			/* credd started a new flow: show the new code. */
			countdown_stop();
			show_prompt(resp, is_qr);
			out_clean(code, sizeof(code), uc);
			end = out_jint(resp, "expires_on", end);
			countdown_start(end);
		}
		json_decref(resp);
		resp = NULL;
		if (end > 0 && util_now() >= end) {
			countdown_stop();
			out_errorf("the sign-in code expired; run 'credctl login' "
			    "to get a new one");
			json_decref(req);
			return EXIT_ACT;
		}
		/* Never spin, even against a credd that ignores "wait". */
		t0 = util_mono_ms() - t0;
		if (t0 < 1000)
			(void)usleep((useconds_t)(1000 - t0) * 1000);
	}
	/* call_roundtrip printed the error on its own line; clear ours first. */
	countdown_stop();
	json_decref(req);
	return r;
}

static int
cmd_login(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	static const int allowed[] = { OPT_NO_WAIT, OPT_QR, 0 };
	char acct[OUT_MSG_MAX];
	json_t *req = NULL, *resp = NULL;
	const char *state;
	struct opts o;
	int r;

	r = opts_parse(c, cmd, argc, argv, allowed, &o);
	if (r >= 0)
		return r;
	if (opts_too_many(cmd, &o, 0))
		return EXIT_USAGE;
	req = call_new_request("login");
	if (req == NULL || json_object_set_new(req, "wait",
	    json_integer(0)) < 0) {
		json_decref(req);
		return EXIT_ERR;
	}
	r = call_roundtrip(c, req, &resp, 0);
	json_decref(req);
	if (r != EXIT_OK)
		return r;
	state = out_jstr(resp, "state");
	if (state != NULL && strcmp(state, "ready") == 0) {
		printf("already signed in as %s\n", out_clean(acct, sizeof(acct),
		    out_account(json_object_get(resp, "account"))));
		json_decref(resp);
		return EXIT_OK;
	}
	show_prompt(resp, o.is_qr);
	/* Off a terminal nobody watches a countdown: behave as --no-wait. */
	if (o.is_no_wait || !isatty(STDERR_FILENO)) {
		json_decref(resp);
		return EXIT_ACT;
	}
	r = login_wait(c, resp, o.is_qr);
	json_decref(resp);
	return r;
}

/* ---- status ---- */

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
	json_array_foreach(scopes, i, v) {
		if (json_is_string(v))
			print_scope(json_string_value(v), NULL);
		else if (json_is_object(v) && out_jstr(v, "scope") != NULL)
			print_scope(out_jstr(v, "scope"), v);
	}
	json_object_foreach(scopes, key, v)
		print_scope(key, v);
}

static void
print_status(json_t *r)
{
	static const char *const shown[] = { "ok", "state", "account",
		"scopes", "last_refresh", "store", "verification_uri",
		"user_code", "expires_on", "message", NULL };
	char buf[OUT_MSG_MAX], dev[2 * OUT_MSG_MAX];
	const char *state = out_jstr(r, "state");
	json_t *store = json_object_get(r, "store");
	json_t *rest;
	int i;

	printf("State:         %s\n", out_clean(buf, sizeof(buf),
	    state != NULL ? state : "unknown"));
	if (out_account(json_object_get(r, "account")) != NULL)
		printf("Account:       %s\n", out_clean(buf, sizeof(buf),
		    out_account(json_object_get(r, "account"))));
	if (json_object_get(r, "last_refresh") != NULL)
		printf("Last refresh:  %s\n", out_when(buf, sizeof(buf),
		    out_jint(r, "last_refresh", 0)));
	if (json_is_string(store))
		printf("Store:         %s\n", out_clean(buf, sizeof(buf),
		    json_string_value(store)));
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
	if (state != NULL && (strcmp(state, "none") == 0 ||
	    strcmp(state, "reauth_required") == 0))
		printf("Run 'credctl login' to sign in.\n");
}

static int
cmd_status(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	static const int allowed[] = { OPT_JSON, 0 };
	json_t *req = NULL, *resp = NULL;
	struct opts o;
	int r;

	r = opts_parse(c, cmd, argc, argv, allowed, &o);
	if (r >= 0)
		return r;
	if (opts_too_many(cmd, &o, 0))
		return EXIT_USAGE;
	req = call_new_request("status");
	if (req == NULL)
		return EXIT_ERR;
	r = call_roundtrip(c, req, &resp, 0);
	json_decref(req);
	if (r != EXIT_OK)
		return r;
	if (o.is_json)
		r = out_json(resp);
	else
		print_status(resp);
	json_decref(resp);
	return r;
}

/* ---- logout ---- */

static int
cmd_logout(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	static const int allowed[] = { 0 };
	json_t *req = NULL, *resp = NULL;
	struct opts o;
	int r;

	r = opts_parse(c, cmd, argc, argv, allowed, &o);
	if (r >= 0)
		return r;
	if (opts_too_many(cmd, &o, 0))
		return EXIT_USAGE;
	req = call_new_request("logout");
	if (req == NULL)
		return EXIT_ERR;
	r = call_roundtrip(c, req, &resp, 0);
	json_decref(req);
	if (r == EXIT_OK)
		printf("Signed out: your refresh token and cached tokens are "
		    "forgotten on every node.\n");
	json_decref(resp);
	return r;
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
	{ "login", cmd_login, "login [--no-wait] [--qr]" },
	{ "status", cmd_status, "status [--json]" },
	{ "logout", cmd_logout, "logout" },
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
