/*
 * opts.c - the options that token, login, status, logout and admin
 * share, and the one table main parses credctl's own options with:
 * --socket anywhere, --help, and each subcommand's own flags, refused
 * with one line where they do not belong.
 *
 * Must never: accept an option a subcommand did not list, or print
 * more than one line for a bad one. The SDK commands (env, az, sink)
 * parse their own options.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "entra/proto.h"
#include "entra/util.h"

#include "call.h"
#include "cmd.h"
#include "exit.h"
#include "opts.h"
#include "out.h"

const struct option opts_long[] = { { "socket", required_argument, NULL,
					OPT_SOCKET },
	{ "min-valid", required_argument, NULL, OPT_MIN_VALID },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "env", no_argument, NULL, OPT_ENV },
	{ "header", no_argument, NULL, OPT_HEADER },
	{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
	{ "qr", no_argument, NULL, OPT_QR },
	{ "paste", no_argument, NULL, OPT_PASTE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "cae", no_argument, NULL, OPT_CAE },
	{ "claims", required_argument, NULL, OPT_CLAIMS },
	{ "entra", no_argument, NULL, OPT_ENTRA },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "yes", no_argument, NULL, OPT_YES }, { NULL, 0, NULL, 0 } };

/*
 * Parse argv of a subcommand (argv[0] is its name). allowed lists the
 * option ids it takes besides --socket and --help. Returns -1 to go on,
 * or an exit code.
 */
int
opts_parse(struct ctx *c, const struct cmd *cmd, int argc, char **argv,
    const int *allowed, int maxpos, struct opts *o)
{
	long long n;
	int ch, i, is_ok;

	memset(o, 0, sizeof(*o));
	o->min_valid = -1;
	optind = 0; /* full reset: we parse several argv in one run */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", opts_long, NULL)) != -1) {
		if (ch == 'h') {
			printf("usage: credctl %s\n", cmd->usage);
			return EXIT_OK;
		}
		if (ch == OPT_SOCKET) {
			c->socket = optarg;
			continue;
		}
		is_ok = 0;
		for (i = 0; allowed[i] != 0; i++)
			if (allowed[i] == ch)
				is_ok = 1;
		if (ch == '?' || !is_ok) {
			out_errorf(
			    "%s: unknown or misplaced option '%s'; usage: "
			    "credctl %s",
			    cmd->name, argv[optind - 1], cmd->usage);
			return EXIT_USAGE;
		}
		switch (ch) {
		case OPT_MIN_VALID:
			if (util_strtonum(optarg, 0, PROTO_MIN_VALID_MAX, &n) <
			    0) {
				out_errorf("--min-valid wants seconds in 0..%d",
				    PROTO_MIN_VALID_MAX);
				return EXIT_USAGE;
			}
			o->min_valid = n;
			break;
		case OPT_JSON:
			o->is_json = 1;
			break;
		case OPT_ENV:
			o->is_env = 1;
			break;
		case OPT_HEADER:
			o->is_header = 1;
			break;
		case OPT_NO_WAIT:
			o->is_no_wait = 1;
			break;
		case OPT_QR:
			o->is_qr = 1;
			break;
		case OPT_ENTRA:
			o->is_entra = 1;
			break;
		case OPT_ALL:
			o->is_all = 1;
			break;
		case OPT_YES:
			o->is_yes = 1;
			break;
		case OPT_CAE:
			o->is_cae = 1;
			break;
		case OPT_CLAIMS:
			if (optarg[0] == '\0' ||
			    strlen(optarg) > PROTO_CLAIMS_MAX) {
				out_errorf("--claims wants the challenge's "
					   "claims (base64 or JSON), 1..%d "
					   "bytes",
				    PROTO_CLAIMS_MAX);
				return EXIT_USAGE;
			}
			o->claims = optarg;
			break;
		case OPT_PASTE:
			o->is_paste = 1;
			break;
		default:
			break;
		}
	}
	o->npos = argc - optind;
	o->pos = argv + optind;
	if (maxpos >= 0 && o->npos > maxpos) {
		out_errorf("%s: unexpected argument '%s'; usage: credctl %s",
		    cmd->name, o->pos[maxpos], cmd->usage);
		return EXIT_USAGE;
	}
	return -1;
}
