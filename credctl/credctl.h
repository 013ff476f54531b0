/*
 * credctl.h - what credctl's files share: the connection, the
 * subcommand table's entry type, exit codes and the output helpers of
 * credctl.c. The SDK commands (env, az, sink) live in sdk.c.
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

#define CREDCTL_MSG_MAX 512	/* longest server text we echo */

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

/* "credctl", or "az" when run as the az shim. */
extern const char *progname;

/* One line on stderr, prefixed with progname. */
void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Server text made safe for a terminal (controls become '?'). */
const char *clean(char *dst, size_t dstsz, const char *src);
const char *jstr(const json_t *obj, const char *key);
int64_t jint(const json_t *obj, const char *key, int64_t dflt);
/* "open URL and enter code CODE" into buf; 0 when the fields are absent. */
int device_clause(char *buf, size_t sz, const json_t *o);
/* The one error line for an error reply; returns its exit code. */
int report_error(const json_t *resp);
/* {"v":1,"op":op}, or NULL (printed). */
json_t *new_request(const char *op);
/* Send req, get *resp (ok or error); transport failures printed. */
int ctx_call(struct ctx *c, const json_t *req, json_t **resp, int64_t extra_ms);
/* Request -> ok reply in *resp, or an exit code (error printed). */
int roundtrip(struct ctx *c, json_t *req, json_t **resp, int64_t extra_ms);
/* True when s can stand unquoted in a shell word. */
int is_shell_safe(const char *s);
/* Write line to fd 1 without stdio buffering. */
int write_secret_out(const struct secret *line);

/* sdk.c: the SDK commands. */
int credctl_cmd_env(struct ctx *c, const struct cmd *cmd, int argc, char **argv);
int credctl_cmd_az(struct ctx *c, const struct cmd *cmd, int argc, char **argv);
int credctl_cmd_sink(struct ctx *c, const struct cmd *cmd, int argc, char **argv);
/* The last component of path. */
const char *credctl_basename(const char *path);

#endif
