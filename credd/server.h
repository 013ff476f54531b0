/*
 * server.h - the Unix socket server: listen, accept, peer credentials,
 * per-uid caps, line framing and replies. server.c is the listener,
 * server_conn.c each connection.
 *
 * The peer's uid, gid and supplementary groups are read once at accept
 * (SO_PEERCRED, SO_PEERGROUPS) and never from anything the client says.
 * A connection carries requests in turn: while one is being answered
 * (a reply may be deferred until a refresh completes), further lines
 * stay buffered. Replies are written non-blocking; buffers that held
 * tokens are wiped. Unsent output is bounded per connection, per uid
 * ([server] max_output_per_uid) and in all ([server] max_output): a
 * connection over a bound is not read from until its output drains.
 */
#ifndef CREDD_SERVER_H
#define CREDD_SERVER_H

#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "entra/proto.h"

#include "metrics.h"
#include "waiter.h"

struct event_loop;
struct event_timer;
struct config;
struct server;

/*
 * Handler for one decoded request: 0 with *out filled in (sent now: JSON
 * is encoded, bytes go as they are), WAITER_PARKED (the reply comes
 * later, or already came, through waiter_reply), or -errno (answered
 * with errmap_error: "internal" for -ENOMEM).
 */
typedef int server_request_cb(void *arg, struct waiter *w,
    const struct proto_request *req, struct reply *out);

struct server_stats {
	uint64_t connections; /* accepted, total */
	uint64_t open;	      /* open now */
	uint64_t requests;
	uint64_t refused_conns; /* over a cap */
	uint64_t rate_limited;
	uint64_t bad_requests;
	uint64_t output_bytes; /* reply bytes queued for peers now (buffers) */
	uint64_t output_bytes_peak;
	uint64_t
	    output_stalls; /* a connection stopped being read: its output */
	uint64_t
	    accept_pauses; /* accept4 failed (EMFILE...): listener paused */
	/* Replies by op (PROTO_OP_NONE: refused before the op was read) and
	 * outcome (metrics_outcome_of); the metrics page. */
	uint64_t replies[PROTO_OP_COUNT][METRICS_OUTCOMES];
	/* A token answered at once from the cache: from its line read to its
	 * reply queued. */
	struct metrics_hist cached_latency;
};

/*
 * Bind and listen on cf->socket (call as root, before dropping
 * privileges). The directory is created 0755 if missing; an existing one
 * must not be writable by group or others and must be owned by root or
 * owner_uid. The socket is made 0666 after bind. 0 or -errno, with a
 * message in err.
 */
int server_listen(const char *path, uid_t owner_uid, int *fd, char *err,
    size_t errsz);

/*
 * db resolves each peer uid's name off the loop (a connection's requests
 * wait for it); NULL leaves every caller without a name (benchmarks).
 */
struct userdb;
int server_new(struct event_loop *ev, int listen_fd, const struct config *cf,
    struct userdb *db, server_request_cb *cb, void *arg, struct server **out);
/*
 * Identify a new connection before anything else (issue 14, ident.h):
 * may fill in c's cgroup fields and, for a caller in a bound cgroup,
 * replace c->uid and set c->user (then no name is looked up). Per-uid
 * caps key on the uid it leaves. 0, or -errno to refuse the connection.
 */
typedef int server_identify_cb(void *arg, int fd, struct caller *c);
void server_set_identify(struct server *s, server_identify_cb *cb, void *arg);
/* Close every connection (cancelling their waiters) and the listener. */
void server_free(struct server *s);
/* Apply new limits after SIGHUP (cf must outlive the server or the next call). */
void server_set_config(struct server *s, const struct config *cf);
const struct server_stats *server_stats(const struct server *s);

#endif
