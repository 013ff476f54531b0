/*
 * logout.c - `credctl logout`: credd forgets the caller's refresh token
 * and cached access tokens on every node.
 *
 * Must never: take a user name (logout acts on the caller's own uid
 * only; another user's consent is `credctl admin revoke`).
 */
#include <stdio.h>

#include <jansson.h>

#include "call.h"
#include "cmd.h"
#include "exit.h"
#include "opts.h"

int
logout_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	static const int allowed[] = { 0 };
	json_t *resp = NULL;
	struct opts o;
	int r;

	r = opts_parse(c, cmd, argc, argv, allowed, 0, &o);
	if (r >= 0)
		return r;
	r = call_op(c, "logout", &resp);
	if (r == EXIT_OK)
		printf("Signed out: your refresh token and cached tokens are "
		       "forgotten on every node.\n");
	json_decref(resp);
	return r;
}
