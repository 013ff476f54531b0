/*
 * credctl.h - what credctl's files share: the subcommand table's entry
 * type, and the SDK commands in env.c, az.c and sink.c. The output
 * helpers live in out.c, the calls to credd in call.c.
 *
 * Must never: print token material anywhere but the requested output
 * on stdout (or the sink file), or print more than one line per error.
 */
#ifndef CREDCTL_H
#define CREDCTL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "entra/secret.h"

#include "call.h"
#include "exit.h"

struct cmd {
	const char *name;
	int (*run)(struct ctx *c, const struct cmd *cmd, int argc,
	    char **argv);
	const char *usage;
};

/* token.c: an access token on stdout. */
int token_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv);

/* login.c: the device-code sign-in. */
int login_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv);

/* logout.c: forget the caller's consent everywhere. */
int logout_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv);

/* status.c: what credd knows about the caller. */
int status_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv);

/* admin.c: list, revoke and stats for root and the admin group. */
int admin_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv);

/* env.c: IDENTITY_ENDPOINT and IDENTITY_HEADER for eval. */
int env_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv);

/* az.c: the az shim. */
int az_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv);

/* sink.c: a token file kept fresh. */
int sink_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv);

#endif
