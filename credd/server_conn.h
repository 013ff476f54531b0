/*
 * server_conn.h - the Unix socket's connections (server_conn.c), as the
 * listener (server.c) drives them: a connection opened for an accepted
 * fd, a refusal at accept, closing them all, and a look at the
 * connections paused for their output once caps change.
 */
#ifndef CREDD_SERVER_CONN_H
#define CREDD_SERVER_CONN_H

#include <sys/socket.h>
#include <sys/types.h>

struct server;

/*
 * A connection for fd, accepted from a peer with cred: its uid's caps
 * (refused and audited when over them), its name (from the cache, or
 * looked up off the loop while its requests wait), SO_PEERGROUPS for
 * admin_group, its idle timer. fd is taken in every case.
 */
void server_conn_open(struct server *s, int fd, const struct ucred *cred);
/* Refuse fd at accept: counted, audited (coalesced), closed unanswered. */
void server_conn_refuse(struct server *s, int fd, uid_t uid,
    const char *reason);
/* Close every connection (their waiters cancelled or abandoned). */
void server_conn_close_all(struct server *s);
/*
 * Output was released or the caps changed: soon, see whether paused
 * connections may go on.
 */
void server_conn_resume_soon(struct server *s);

#endif
