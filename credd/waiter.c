/*
 * waiter.c - completing and releasing a waiter (see waiter.h).
 *
 * Must never: free the waiter itself (its owner embeds it), or answer
 * one twice: waiter_reply hands the answer to the owner, who releases.
 */
#include <stdlib.h>

#include "waiter.h"

void
waiter_release(struct waiter *w)
{
	free(w->scope);
	free(w->session);
	free(w->user);
	w->scope = w->session = w->user = NULL;
}

void
waiter_reply(struct waiter *w, json_t *resp)
{
	w->linked = 0;
	w->reply(w, resp);	/* the owner releases w (waiter_release) */
}
