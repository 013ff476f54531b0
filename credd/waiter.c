/*
 * waiter.c - completing and releasing a waiter (see waiter.h).
 *
 * Must never: free the waiter itself (its owner embeds it), or answer
 * one twice: waiter_reply hands the answer to the owner, who releases.
 * A handler's hook runs once, then is cleared.
 */
#include <stdlib.h>

#include "errmap.h"
#include "waiter.h"

void
waiter_release(struct waiter *w)
{
	free(w->scope);
	free(w->session);
	free(w->user);
	free(w->claims);
	free(w->no_signin);
	free(w->policy_session);
	w->scope = w->session = w->user = w->claims = NULL;
	w->no_signin = w->policy_session = NULL;
	w->app_identity = 0;
}

void
waiter_reply(struct waiter *w, struct reply *rep)
{
	void (*hook)(struct waiter *, struct reply *) = w->hook;

	w->linked = 0;
	if (hook != NULL) {
		w->hook = NULL;
		hook(w, rep);
	}
	w->reply(w, rep); /* the owner releases w (waiter_release) */
}

void
waiter_reply_json(struct waiter *w, json_t *resp)
{
	struct reply rep = { 0 };

	(void)reply_set_json(&rep, resp); /* NULL: empty, "internal" */
	waiter_reply(w, &rep);
}

void
waiter_finish(struct waiter *w, int r, struct reply *rep)
{
	if (r == WAITER_PARKED)
		return;
	if (r < 0)
		(void)errmap_reply(rep, r, NULL); /* empty on failure */
	waiter_reply(w, rep);
}
