/*
 * storeq.h - the store thread: every call into a store backend (and the
 * sealing around it) runs on one worker thread, in submission order, so
 * the event loop never waits on a disk flush or a database round trip.
 * Completions come back to the loop through an eventfd and run there.
 *
 * Jobs own what they carry (a record copy in, a record out); the loop
 * never touches a job between submit and its done callback.
 *
 * With high-water marks (marks.h), every record read is checked against
 * this node's mark and every write raises it (record_load_marked,
 * record_save_marked): a row older than the node has seen comes back as
 * RECORD_EROLLBACK with j->rb (LOAD, LOCK, FLOW_CLAIM, FLOW_TAKE), is
 * written over by a newer record of ours (SAVE: j->rollback = 2), and is
 * never adopted. The marks are touched by the store thread only.
 */
#ifndef CREDD_STOREQ_H
#define CREDD_STOREQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "record.h"

struct event_loop;
struct marks;
struct record;
struct record_flow;
struct seal;
struct store;
struct storeq;
struct storeq_job;

enum storeq_op {
	STOREQ_LOAD,   /* -> rec (NULL + -ENOENT if none) */
	STOREQ_SAVE,   /* rec (owned): CAS; on a lost race reload and, for the
			   same account, write ours over the newer version; for
			   another account theirs wins (replaced = 1, rec = theirs);
			   deleted meanwhile: -ENOENT unless may_create; a rolled
			   back row is written over (rollback = 2) */
	STOREQ_DELETE, /* delete whatever version is newest; the mark
			   becomes a deletion (no row of that epoch returns) */
	STOREQ_LIST,   /* cursor, limit -> items, next */
	STOREQ_LOCK,   /* cluster trylock (-EAGAIN when held elsewhere),
			   then LOAD under the lock (locked = 1 once taken,
			   whatever the LOAD gives) */
	STOREQ_UNLOCK,
	STOREQ_FLOW_CLAIM, /* flow (owned): store it in the user's record unless
			      another node's flow is pending there; -> rec (the
			      stored record), claimed (1: ours is the one).
			      With cflow instead of flow: the same for a code
			      flow, which replaces this node's own flows */
	STOREQ_FLOW_TAKE,  /* key (a code flow's state, or its link id with
			      take_link): use it up in the record with the CAS
			      (a state takes the link with it) -> cflow (the
			      flow as it was), rec (as stored); -ENOENT when no
			      unexpired flow has that key unused */
};

struct storeq_item {
	char *user;
	char *account; /* preferred_username or oid; NULL if unreadable */
	int64_t last_refresh;
	int has_refresh_token;
	int readable;
	int rolled_back; /* older than this node's mark */
};

typedef void storeq_done_cb(struct storeq_job *j);

struct storeq_job {
	enum storeq_op op;
	char *user;	    /* owned */
	struct record *rec; /* owned: SAVE in, LOAD/LOCK out */
	int result;	    /* 0 or -errno */
	int replaced;	    /* SAVE: another account's record won */
	int may_create;	    /* SAVE: recreate a record deleted meanwhile */
	struct record_flow *flow;   /* FLOW_CLAIM in (owned) */
	struct record_cflow *cflow; /* FLOW_CLAIM in, FLOW_TAKE out (owned) */
	char *key;		    /* FLOW_TAKE in (owned, wiped) */
	int take_link;		    /* FLOW_TAKE: key is a link id */
	char *node;   /* FLOW_CLAIM: this node (owned; NULL: any code
			 flow pending is another node's) */
	uid_t uid;    /* FLOW_CLAIM: for a record made from scratch */
	int claimed;  /* FLOW_CLAIM out */
	int locked;   /* LOCK out: the cluster lock is held */
	int rollback; /* 1: a rolled-back row was refused, 2: written
				   over (SAVE); details in rb */
	struct record_rollback rb;
	int marks_err; /* 0, or -errno: a mark was not written */
	char *cursor;  /* LIST in (owned) */
	size_t limit;
	struct storeq_item *items; /* LIST out */
	size_t nitems;
	char *next;    /* LIST out */
	char why[192]; /* LOAD, LOCK: when the record does not open
				   (-ENOKEY, -EBADMSG), why (record_explain) */
	storeq_done_cb *done;
	void *arg;
	struct storeq_job *qnext; /* private */
};

/*
 * Start the thread. tenant is copied. marks (may be NULL: no rollback
 * check) is borrowed and used by the thread only; it must outlive q.
 * 0 or -errno.
 */
int storeq_new(struct event_loop *ev, struct store *st, const struct seal *seal,
    struct marks *marks, const char *tenant, struct storeq **out);
/* Finish queued jobs (their callbacks run), then stop the thread. */
void storeq_free(struct storeq *q);

/* A new job for user (copied). NULL on ENOMEM. */
struct storeq_job *storeq_job_new(enum storeq_op op, const char *user,
    storeq_done_cb *done, void *arg);
/* Queue a job; done(j) runs later on the loop, then the caller frees j. */
void storeq_submit(struct storeq *q, struct storeq_job *j);
void storeq_job_free(struct storeq_job *j);
/* Jobs queued or running (stats). */
size_t storeq_pending(const struct storeq *q);
/* Does the backend lock across nodes (trylock implemented)? */
int storeq_is_cluster(const struct storeq *q);

#endif
