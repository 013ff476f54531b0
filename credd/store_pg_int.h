/*
 * store_pg_int.h - what the files of the PostgreSQL backend share: the
 * backend's state, the connection helpers (store_pg_conn.c) and the
 * LISTEN connection (store_pg_notify.c). Private to credd/store_pg*.c;
 * built only with ENTRA_PG.
 */
#ifndef CREDD_STORE_PG_INT_H
#define CREDD_STORE_PG_INT_H

#include <errno.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store.h"

#define PG_CHANNEL "credd"
#define PG_SEP '\x1f'
#define PG_INSTANCE_LEN 16

/* Internal: the connection broke during the statement (retry if idempotent). */
#define PG_LOST (-ECONNRESET)

enum listen_state {
	LISTEN_DOWN,	   /* no connection: notify_next says -ENOTCONN */
	LISTEN_CONNECTING, /* PQconnectPoll in progress */
	LISTEN_SENT,	   /* LISTEN sent, waiting for its result */
	LISTEN_READY,
};

struct store_pg {
	struct store st; /* first: st.priv points back here */
	char *dsn;	 /* immutable after open */
	char *node;
	char instance[PG_INSTANCE_LEN + 1];
	PGconn *conn;  /* store thread */
	PGconn *lconn; /* loop thread */
	enum listen_state lstate;
	PostgresPollingStatusType lpoll; /* what PQconnectPoll waits for */
	int64_t lstarted;		 /* mono ms of the connect attempt */
	int resync;			 /* report the resync marker once */
};

/*
 * store_pg_conn.c. Connection keywords and values for
 * PQconnectdbParams / PQconnectStartParams: store_pg_conn_values fills
 * vals (10 entries) for dsn.
 */
extern const char *const store_pg_conn_keys[];
void store_pg_conn_values(const char *dsn, const char **vals);
/* Nonblocking I/O and no notice printing on a fresh connection. 0 or -EIO. */
int store_pg_conn_setup(PGconn *c);
/* A blocking connect bounded by connect_timeout. NULL on failure. */
PGconn *store_pg_conn_connect(const char *dsn);
/*
 * Run one statement on sp's main connection within PG_OP_TIMEOUT_MS.
 * nparams < 0: a parameterless simple query. Results are binary. Returns
 * 0 and the result (*out, PGRES_TUPLES_OK or PGRES_COMMAND_OK; the caller
 * clears it), PG_LOST when the connection broke, -ECONNREFUSED when it
 * could not be made, -ETIMEDOUT, or the statement's error.
 */
int store_pg_conn_run(struct store_pg *sp, const char *sql, int nparams,
    const Oid *types, const char *const *vals, const int *lens, const int *fmts,
    PGresult **out);

/*
 * store_pg_notify.c: the LISTEN connection (loop thread). The store ops
 * notify_fd and notify_next (store.h).
 */
int store_pg_notify_fd(struct store *st);
int store_pg_notify_next(struct store *st, char **user);
/*
 * One step of bringing the LISTEN connection back, never blocking: what
 * store_pg_notify_reconnect (store_pg.h) returns, for sp.
 */
int store_pg_notify_connect(struct store_pg *sp);
/* At open: connect and LISTEN, blocking (start-up). 0 or -errno. */
int store_pg_notify_open(struct store_pg *sp);

#endif
