/*
 * cmd.h - the contract between credctl's command table (credctl.c) and
 * its commands: the table's entry, and each command's entry point. A
 * command lives in the file named after it and exports only NAME_cmd.
 *
 * Must never: declare anything but the table's entry and the commands'
 * entry points; what the commands share lives in opts.h, call.h and
 * out.h, below them.
 */
#ifndef CREDCTL_CMD_H
#define CREDCTL_CMD_H

struct ctx;

struct cmd {
	const char *name;
	int (*run)(struct ctx *c, const struct cmd *cmd, int argc, char **argv);
	const char *usage;
};

/*
 * Every entry point: argv[0] is the command's name (the program's path
 * when credctl runs as `az`), cmd its table entry (for its usage line),
 * c the run's connection (opened on first use; main closes it). Returns
 * an exit code (exit.h), its error line already printed.
 */

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
/* admin bind|unbind|bindings (bind.c); pos[0] is the subcommand. */
int bind_cmd(struct ctx *c, const char *sub, char **pos, size_t npos,
    int is_json);
/* revoke.c: admin revoke USER|--all [--entra] [--yes], parsed by admin. */
struct opts;
int revoke_cmd(struct ctx *c, const struct opts *o);

/* env.c: IDENTITY_ENDPOINT and IDENTITY_HEADER for eval. */
int env_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv);

/* az.c: the az shim. */
int az_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv);

/* sink.c: a token file kept fresh. */
int sink_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv);

#endif
