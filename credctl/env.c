/*
 * env.c - `credctl env`: asks credd for an SDK endpoint secret
 * (sdk_env) and prints IDENTITY_ENDPOINT and IDENTITY_HEADER as shell
 * exports for eval, or as JSON, so Azure SDKs outside a PAM session
 * find credd's managed-identity endpoint.
 *
 * Must never: export AZURE_CLIENT_ID, AZURE_TENANT_ID or
 * AZURE_FEDERATED_TOKEN_FILE (they would make SDKs pick other
 * credentials first), print the secret anywhere but stdout (through a
 * wiped buffer), or print a value a shell could read as more than one
 * word.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "entra/secret.h"

#include "call.h"
#include "cmd.h"
#include "exit.h"
#include "out.h"

/* A value for a single-quoted shell word: no quote, no control bytes. */
static int
is_quotable(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\'' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int
env_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL,
						  'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	json_t *resp = NULL, *out;
	struct secret *line;
	const char *ep, *sec;
	char *buf;
	int ch, is_json = 0, r;
	size_t cap;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'j')
			is_json = 1;
		else if (ch == 's')
			c->socket = optarg;
		else if (ch == 'h') {
			printf("usage: credctl %s\n", cmd->usage);
			return EXIT_OK;
		} else {
			out_errorf("env: unknown option; usage: credctl %s",
			    cmd->usage);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		out_errorf("env: unexpected argument; usage: credctl %s",
		    cmd->usage);
		return EXIT_USAGE;
	}
	r = call_op(c, "sdk_env", &resp);
	if (r != EXIT_OK)
		return r;
	ep = out_jstr(resp, "endpoint");
	sec = out_jstr(resp, "secret");
	if (ep == NULL || sec == NULL || !is_quotable(ep) ||
	    !out_is_shell_safe(sec) || strncmp(ep, "http://", 7) != 0) {
		out_errorf(
		    "credd's sdk_env reply is unusable; check credd's log");
		json_decref(resp);
		return EXIT_ERR;
	}
	if (is_json) {
		out = json_pack("{s:s, s:s, s:I}", "IDENTITY_ENDPOINT", ep,
		    "IDENTITY_HEADER", sec, "expires_on",
		    (json_int_t)out_jint(resp, "expires_on", 0));
		buf = out != NULL ? json_dumps(out, JSON_COMPACT) : NULL;
		json_decref(out);
	} else {
		/* Only these two: never AZURE_CLIENT_ID/TENANT_ID/FEDERATED_TOKEN_FILE. */
		cap = strlen(ep) + strlen(sec) + 128;
		buf = malloc(cap);
		if (buf != NULL)
			snprintf(buf, cap,
			    "export IDENTITY_ENDPOINT='%s'\n"
			    "export IDENTITY_HEADER=%s",
			    ep, sec);
	}
	json_decref(resp);
	if (buf == NULL) {
		out_errorf("out of memory");
		return EXIT_ERR;
	}
	line = secret_new(buf, strlen(buf) + 1);
	if (line != NULL)
		line->ptr[line->len - 1] = '\n';
	secret_wipe_str(buf);
	return out_secret_take(line);
}
