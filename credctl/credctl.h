/*
 * credctl.h - what credctl's files share: the connection, the
 * subcommand table's entry type and the calls to credd in credctl.c.
 * The SDK commands (env, az, sink) live in sdk.c, the output helpers in
 * out.c.
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

#include "exit.h"

struct ctx {
	const char *socket;
	int fd;
};

struct cmd {
	const char *name;
	int (*run)(struct ctx *c, const struct cmd *cmd, int argc,
	    char **argv);
	const char *usage;
};

/* The one error line for an error reply; returns its exit code. */
int report_error(const json_t *resp);
/* {"v":1,"op":op}, or NULL (printed). */
json_t *new_request(const char *op);
/* Send req, get *resp (ok or error); transport failures printed. */
int ctx_call(struct ctx *c, const json_t *req, json_t **resp, int64_t extra_ms);
/* Request -> ok reply in *resp, or an exit code (error printed). */
int roundtrip(struct ctx *c, json_t *req, json_t **resp, int64_t extra_ms);

/* sdk.c: the SDK commands. */
int credctl_cmd_env(struct ctx *c, const struct cmd *cmd, int argc, char **argv);
int credctl_cmd_az(struct ctx *c, const struct cmd *cmd, int argc, char **argv);
int credctl_cmd_sink(struct ctx *c, const struct cmd *cmd, int argc, char **argv);
/* The last component of path. */
const char *credctl_basename(const char *path);

#endif
