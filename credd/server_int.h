/*
 * server_int.h - the state server.c (the listener) and server_conn.c
 * (its connections) share: struct server. Private to those two files;
 * everyone else sees server.h.
 */
#ifndef CREDD_SERVER_INT_H
#define CREDD_SERVER_INT_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "event.h"
#include "server.h"

struct conn;
struct uidlimit;
struct userdb;
struct userdb_req;

struct server {
	struct event_loop *ev;
	int lfd;
	const struct config *cf;
	server_request_cb *cb;
	void *cbarg;
	server_identify_cb *identify; /* NULL: by SO_PEERCRED uid only */
	void *identify_arg;
	gid_t admin_gid;
	int has_admin_gid;
	struct userdb *db;	      /* NSS, off the loop; NULL: no names */
	struct userdb_req *group_req; /* admin_group lookup after SIGHUP */
	struct uidlimit *limits;
	LIST_HEAD(, conn) conns;
	LIST_HEAD(, conn) paused;   /* waiting for output to drain or caps */
	struct event_timer *resume; /* looks at paused connections again */
	struct event_timer *accept_timer; /* listener paused until it fires */
	int64_t accept_backoff;		  /* ms; 0: not backing off */
	int64_t accept_since;		  /* start of a failing episode, or 0 */
	int64_t accept_warned;		  /* last warning, or 0 */
	int is_accept_warned;		  /* this episode was reported */
	uint64_t accept_fails;		  /* failures not yet reported */
	struct server_stats stats;
};

/*
 * The listener back in the epoll set, its backoff timer cancelled:
 * after the timer, or at once when a connection closes (a descriptor
 * is free again). Both files do it, neither calls the other for it.
 */
static inline void
server_accept_resume(struct server *s)
{
	event_timer_cancel(s->ev, &s->accept_timer);
	(void)event_mod(s->ev, s->lfd, EPOLLIN);
}

#endif
