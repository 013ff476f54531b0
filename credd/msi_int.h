/*
 * msi_int.h - the state the SDK endpoint's two files share: msi.c
 * (libmicrohttpd on the loop, connections, the parked request, the
 * life cycle) and msi_req.c (request checks, the caller proof and
 * response shaping). Private to those two; everyone else sees msi.h.
 */
#ifndef CREDD_MSI_INT_H
#define CREDD_MSI_INT_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "mhd_loop.h"
#include "msi_parse.h"
#include "waiter.h"

struct MHD_Connection;
struct MHD_Daemon;
struct broker;
struct config;
struct event_loop;
struct event_timer;
struct msi_listen;
struct sessions;
struct uidlimit;
struct uidlimit_entry;
struct userdb;
struct userdb_req;

enum req_state {
	REQ_NEW,    /* headers in, body (if any) being read */
	REQ_PARKED, /* suspended, waiting for the broker */
	REQ_READY,  /* response built, connection resumed */
	REQ_QUEUED  /* response queued with MHD */
};

struct msi;

/* One connection (MHD's socket context): its caller, proven at accept. */
struct msi_conn {
	uid_t uid;		   /* (uid_t)-1: not proven */
	const char *unproven;	   /* why not (static), or NULL */
	struct uidlimit_entry *ul; /* the uid's caps; NULL when unproven */
	char *user;		   /* the uid's login name now, or NULL */
	int user_err; /* with user NULL: -ENOENT or the lookup's -errno */
	/* While the name is looked up (userdb.h), before MHD has the fd: */
	struct msi *m;
	struct userdb_req *name_req;
	int fd;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	LIST_ENTRY(msi_conn) nlink; /* on m->naming */
};

struct msi_req {
	struct waiter w; /* w.caller = &caller; the broker parks it */
	struct caller caller;
	struct msi *m;
	struct msi_conn *mc; /* the connection's proof; NULL: none */
	struct MHD_Connection *conn;
	LIST_ENTRY(msi_req) link;
	enum req_state state;
	int is_imds;
	int has_body;
	int is_parking; /* inside broker_token */
	int kind;	/* the caller's workload kind (msi_req_policy) */
	char *resource;
	struct event_timer *deadline;
	unsigned status; /* the response, once built */
	char *body;	 /* malloc'd JSON; wiped when freed */
	size_t bodylen;
	int retry_after;	   /* seconds, 0: none */
	char scope[MSI_SCOPE_MAX]; /* resource + "/.default" */
};

LIST_HEAD(msi_req_list, msi_req);

struct msi {
	struct event_loop *ev;
	const struct config *cf;
	struct broker *broker;
	struct sessions *sessions;
	struct MHD_Daemon *d;
	struct msi_listen *l;	  /* the listening socket, up or down */
	unsigned port;		  /* bound at start; a reload cannot move it */
	struct mhd_loop ml;	  /* MHD on the loop (mhd_loop.h) */
	struct msi_req_list reqs; /* every live request */
	struct uidlimit *limits;  /* per uid, the endpoint's own table */
	struct msi_conn *adding;  /* inside MHD_add_connection */
	unsigned nconns;	  /* connections MHD holds */
	struct userdb *db;	  /* uid -> name, off the loop */
	LIST_HEAD(, msi_conn) naming; /* accepted, name not known yet */
	unsigned nnaming;
	struct {
		uint64_t requests;
		uint64_t refused; /* audited refusals (coalesced records) */
		uint64_t refused_conns; /* closed at accept: over a cap */
		uint64_t rate_limited;
	} n;
	int is_closing;
};

#endif
