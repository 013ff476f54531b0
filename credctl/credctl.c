/*
 * credctl.c - the user's and the administrator's command-line tool for
 * credd (DESIGN.md §9): fetch an access token, sign in with the device
 * code flow, show status, sign out, the admin operations and the SDK
 * helpers. This file is main: the wiping allocator, credctl's own
 * options, the command table and the az shim's entry by name. credctl
 * sees credd only through include/entra (proto.h, client.h).
 *
 * Its files, each calling only the ones below it (no circle):
 *   credctl.c    main and the command table (cmd.h)
 *   token.c login.c logout.c status.c admin.c env.c az.c sink.c
 *                one command each, exporting only NAME_cmd
 *   opts.c       the options token, login, logout, status, admin share
 *   call.c       connect, one request and its reply, error replies
 *   out.c        the error line, safe server text, renderers, stdout
 *   countdown.c  the sign-in countdown line (SIGALRM)
 * exit.h holds the exit codes.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "entra/paths.h"
#include "entra/proto.h"
#include "entra/util.h"
#include "entra/version.h"

#include "call.h"
#include "cmd.h"
#include "exit.h"
#include "opts.h"
#include "out.h"

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

/* ---- the subcommand table and main ---- */

static const char *
credctl_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s != NULL ? s + 1 : path;
}

static const struct cmd cmds[] = {
	{ "token", token_cmd,
	    "token [SCOPE|ALIAS] [--min-valid S] [--cae] [--claims B64] "
	    "[--json|--env|--header]" },
	{ "login", login_cmd, "login [--no-wait] [--qr]" },
	{ "status", status_cmd, "status [--json]" },
	{ "logout", logout_cmd, "logout" },
	{ "admin", admin_cmd,
	    "admin list|revoke USER [--entra]|revoke --all [--entra] [--yes]|"
	    "stats|metrics|health|bind CGROUP USER [WORKLOAD]|unbind CGROUP|"
	    "bindings [--json]" },
	{ "env", env_cmd, "env [--json]" },
	{ "az", az_cmd,
	    "az account get-access-token|show [...] "
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
	fprintf(f,
	    "\nThe socket defaults to $CREDD_SOCKET, else %s.\n"
	    "Exit status: 0 ok, 1 error, 2 usage, 3 sign-in needed, "
	    "4 unavailable,\n5 refused, 6 misconfigured; admin health: 7 "
	    "degraded, 8 unhealthy.\n",
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
				   "'credctl --help'",
			    argv[optind - 1]);
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
