/*
 * opts.h - the options the subcommands share (opts.c).
 *
 * Must never: reuse an OPT_ value: main and every subcommand parse
 * with the one table, opts_long.
 */
#ifndef CREDCTL_OPTS_H
#define CREDCTL_OPTS_H

#include <getopt.h>
#include <stdint.h>

struct cmd;
struct ctx;

enum {
	OPT_SOCKET = 256,
	OPT_MIN_VALID,
	OPT_JSON,
	OPT_ENV,
	OPT_HEADER,
	OPT_NO_WAIT,
	OPT_QR,
	OPT_VERSION,
	OPT_CAE,
	OPT_CLAIMS,
	OPT_PASTE,
	OPT_ENTRA,
	OPT_ALL,
	OPT_YES
};

/* Every long option credctl knows; main parses its own with it too. */
extern const struct option opts_long[];

struct opts {
	int64_t min_valid; /* -1: not given */
	int is_json, is_env, is_header, is_no_wait, is_qr, is_paste;
	int is_cae;	    /* token --cae */
	const char *claims; /* token --claims: a challenge (points into argv) */
	int is_entra, is_all, is_yes; /* admin revoke --entra --all --yes */
	int npos;
	char **pos;
};

/*
 * Parse argv of a subcommand (argv[0] is its name) into *o; allowed
 * lists the OPT_ ids it takes besides --socket (which sets c->socket)
 * and --help, ending in 0; maxpos is how many positional arguments it
 * takes (-1: any). Returns -1 to go on, or an exit code (usage printed
 * for --help, a line on stderr for a bad option or one argument too
 * many). o->pos points into argv.
 */
int opts_parse(struct ctx *c, const struct cmd *cmd, int argc, char **argv,
    const int *allowed, int maxpos, struct opts *o);

#endif
