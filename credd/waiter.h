/*
 * waiter.h - who asked, and how a deferred answer gets back to them.
 *
 * struct caller is a requester's identity as its listener proved it
 * (the Unix socket: SO_PEERCRED and SO_PEERGROUPS at accept; the SDK
 * endpoint: the socket's uid from sock_diag). struct waiter is one
 * request in progress. Its owner (a connection of server.c, a request
 * of msi.c) embeds it; dispatch.c and the broker read the request from
 * it and, when the answer must wait (a refresh, a device flow, the
 * store thread), park it on a list of theirs and answer it later
 * through waiter_reply().
 *
 * A handler or an op answers in one of three ways: 0 with a reply
 * (reply.h) filled in, WAITER_PARKED (w was parked: its answer comes, or
 * already came, through waiter_reply), or a negative errno when no
 * answer could be built (the caller answers errmap_error(r, NULL),
 * "internal" for -ENOMEM). "Parked" is that value, never a missing
 * reply: an allocation failure is answered at once, never left to the
 * idle timeout.
 *
 * Must never: take identity from anything but the caller its owner
 * filled in, or be touched after its owner's cancel/abandon callbacks
 * ran (the requester is gone, and so is the waiter).
 */
#ifndef CREDD_WAITER_H
#define CREDD_WAITER_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <jansson.h>

#include "entra/proto.h"

#include "reply.h"

/* A handler or op parked its waiter (see above). */
#define WAITER_PARKED 1

struct event_timer;

struct caller {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char *user; /* login name of uid, NULL if uid has no passwd entry */
	int user_err; /* with user NULL: 0 (no such user) or the lookup's -errno */
	int is_admin; /* uid 0, or admin_group among the peer's groups */
	int is_root;  /* SO_PEERCRED uid 0 (root-only ops) */
	/*
	 * Issue 14 (ident.h), resolved once per connection at accept. When
	 * session is set the caller sits in that session's bound cgroup and
	 * uid and user above are that session's (whatever its own uid);
	 * kind is then the session's workload kind. Owned strings.
	 */
	char *cgroup;	     /* the peer's cgroup v2 path; NULL: unknown */
	char *session;	     /* bound session id; NULL: known by uid */
	int kind;	     /* with session: its kind (config.h) */
	int is_other_userns; /* the peer runs in another user namespace */
	int resolve_err;     /* why cgroup is NULL: -errno, or 0 */
};

/*
 * A request whose reply is deferred. Owned by whoever received the
 * request (a socket connection of server.c; the SDK endpoint has its own); the
 * broker parks it on a list and completes it with waiter_reply(), which
 * calls w->hook (once, when a handler set one: it may amend the answer)
 * and then w->reply. If the requester goes away first, it calls
 * w->cancel(w) so the broker can unlink it, then w->abandon(w) when the
 * handler set one (a session_open must not outlive a caller that never
 * heard of it); after that the waiter is gone.
 */
struct waiter {
	LIST_ENTRY(waiter) link;
	/* Set by the owner: takes what rep holds (rep is left empty). */
	void (*reply)(struct waiter *w, struct reply *rep);
	/* Set by a handler that must see a deferred answer first. */
	void (*hook)(struct waiter *w, struct reply *rep);
	void *hook_arg;
	int linked;			   /* on a broker list */
	void (*cancel)(struct waiter *w);  /* set by whoever parks it */
	void (*abandon)(struct waiter *w); /* set by the handler; optional */
	struct event_timer *timer; /* optional deadline, owned by the parker */
	void *parked_on;	   /* opaque to the owner */
	const struct caller *caller;
	enum proto_op op;
	char *scope;   /* token: resolved scope (owned) */
	char *session; /* session_open: the new session id (owned) */
	/* The request, kept so the broker can run it again once the user's
	 * record is loaded (set by the broker; owned, see waiter_release). */
	char *user;
	uid_t uid;
	int64_t wait;
	int interactive;
	uint64_t ticket; /* matches a store job to its parked waiter */
	int64_t min_valid;
	int cae;	     /* token: a CAE token asked for */
	char *claims;	     /* token: a challenge, compact JSON (owned) */
	int64_t deadline_ms; /* login wait */
	/* token, login: the policy forbids starting a sign-in; the refusal
	 * text (naming its policy line) when one would start. Owned, as is
	 * policy_session (the caller's session id, for the audit record);
	 * policy_kind is its workload kind. */
	char *no_signin;
	char *policy_session;
	int policy_kind;
	/* token: which identity answers it (issue 14, [workload.NAME]
	 * identity): 0 the user's, WAITER_APP the app's, WAITER_USER_OR_APP
	 * the user's when the user has consent, else the app's. */
	int app_identity;
};

#define WAITER_APP 1
#define WAITER_USER_OR_APP 2

LIST_HEAD(waiter_list, waiter);

/*
 * Complete a parked request with rep (emptied): calls w->hook, then
 * w->reply, which must release the waiter's strings (waiter_release).
 * An empty rep is answered "internal" (out of memory).
 */
void waiter_reply(struct waiter *w, struct reply *rep);
/* The same with a response object (NULL: out of memory). */
void waiter_reply_json(struct waiter *w, json_t *resp);
/*
 * Complete w with what an op that ran again returned: r WAITER_PARKED
 * leaves it parked, r < 0 answers errmap_error(r, NULL), else rep.
 */
void waiter_finish(struct waiter *w, int r, struct reply *rep);
/* Free what a waiter owns (scope, session, user); idempotent. */
void waiter_release(struct waiter *w);

#endif
