/*
 * store_pg_conn.c - the PostgreSQL backend's connections: the parameters
 * every connection gets (our defaults first, the DSN's settings win),
 * a blocking connect bounded by connect_timeout, and running one
 * statement on the main connection within PG_OP_TIMEOUT_MS: the main
 * connection is checked and re-made first (PG_CONNECT_TRIES attempts),
 * and one that broke or timed out is dropped. SQLSTATEs become -errno.
 *
 * Main connection: store thread only. Must never: build SQL from input,
 * wait past the deadline, print libpq's notices, or put a DSN or a
 * statement's parameters in an error.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>

#include <libpq-fe.h>

#include "entra/util.h"
#include "store.h"
#include "store_pg_int.h"

#define PG_OP_TIMEOUT_MS 8000 /* client side; the server's is 5 s */
#define PG_CONNECT_TRIES 2

static void
pg_quiet(void *arg, const char *msg)
{
	/* Notices (e.g. "you don't own a lock") are not ours to print. */
	(void)arg;
	(void)msg;
}

/*
 * Connection parameters: our defaults first, then the DSN (expanded from
 * dbname), so that anything the DSN sets wins (libpq keeps the last).
 */
const char *const store_pg_conn_keys[] = {
	"connect_timeout",
	"keepalives",
	"keepalives_idle",
	"keepalives_interval",
	"keepalives_count",
	"tcp_user_timeout",
	"application_name",
	"options",
	"dbname",
	NULL,
};

void
store_pg_conn_values(const char *dsn, const char **vals)
{
	vals[0] = "5";
	vals[1] = "1";
	vals[2] = "10";
	vals[3] = "5";
	vals[4] = "3";
	vals[5] = "10000";
	vals[6] = "credd";
	vals[7] = "-c statement_timeout=5000 -c lock_timeout=3000 "
		  "-c idle_in_transaction_session_timeout=10000";
	vals[8] = dsn;
	vals[9] = NULL;
}

/* Nonblocking I/O and no notice printing on a fresh connection. */
int
store_pg_conn_setup(PGconn *c)
{
	(void)PQsetNoticeProcessor(c, pg_quiet, NULL);
	return PQsetnonblocking(c, 1) == 0 ? 0 : -EIO;
}

/* A blocking connect bounded by connect_timeout. NULL on failure. */
PGconn *
store_pg_conn_connect(const char *dsn)
{
	const char *vals[10];
	PGconn *c;

	store_pg_conn_values(dsn, vals);
	c = PQconnectdbParams(store_pg_conn_keys, vals, 1);
	if (c == NULL)
		return NULL;
	if (PQstatus(c) != CONNECTION_OK || store_pg_conn_setup(c) < 0) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* SQLSTATE of a failed result -> -errno. */
static int
pg_errno(const PGresult *res)
{
	const char *s =
	    res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (s == NULL || strlen(s) != 5)
		return -EIO;
	if (strcmp(s, "57014") == 0 || strcmp(s, "55P03") == 0)
		return -ETIMEDOUT; /* statement_timeout, lock_timeout */
	if (strcmp(s, "53100") == 0)
		return -ENOSPC;
	if (strcmp(s, "25006") == 0)
		return -EROFS; /* read-only transaction: a standby */
	if (strcmp(s, "42501") == 0 || strncmp(s, "28", 2) == 0)
		return -EACCES;
	if (strcmp(s, "54000") == 0)
		return -EMSGSIZE;
	if (strncmp(s, "22", 2) == 0)
		return -EINVAL; /* data exception: e.g. bad encoding */
	return -EIO;
}

/* Wait until c has no pending output and a whole result, or deadline. */
static int
pg_wait(PGconn *c, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int f;

	for (;;) {
		f = PQflush(c);
		if (f < 0)
			return PG_LOST;
		if (f == 0 && !PQisBusy(c))
			return 0;
		left = deadline - util_mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		pfd.fd = PQsocket(c);
		pfd.events = POLLIN | (f == 1 ? POLLOUT : 0);
		pfd.revents = 0;
		if (pfd.fd < 0)
			return PG_LOST;
		if (poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) < 0 &&
		    errno != EINTR)
			return -errno;
		if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) != 0 &&
		    !PQconsumeInput(c))
			return PG_LOST;
	}
}

static void
pg_drop(struct store_pg *sp)
{
	PQfinish(sp->conn);
	sp->conn = NULL;
}

/*
 * Make sure the main connection is up: notice one the server closed
 * while we were idle (a restart), and re-make it (bounded attempts).
 */
static int
pg_ready(struct store_pg *sp)
{
	int i;

	if (sp->conn != NULL && PQstatus(sp->conn) == CONNECTION_OK &&
	    PQconsumeInput(sp->conn) && PQstatus(sp->conn) == CONNECTION_OK)
		return 0;
	pg_drop(sp);
	for (i = 0; i < PG_CONNECT_TRIES && sp->conn == NULL; i++)
		sp->conn = store_pg_conn_connect(sp->dsn);
	return sp->conn != NULL ? 0 : -ECONNREFUSED;
}

/*
 * Run one statement on the main connection within PG_OP_TIMEOUT_MS.
 * nparams < 0: a parameterless simple query. Results are binary. Returns
 * 0 and the result (*out, PGRES_TUPLES_OK or PGRES_COMMAND_OK; the caller
 * clears it), PG_LOST when the connection broke, -ECONNREFUSED when it
 * could not be made, -ETIMEDOUT, or the statement's error.
 */
int
store_pg_conn_run(struct store_pg *sp, const char *sql, int nparams,
    const Oid *types, const char *const *vals, const int *lens, const int *fmts,
    PGresult **out)
{
	PGresult *res, *last = NULL;
	int64_t deadline;
	int r, sent, broken = 0;

	*out = NULL;
	r = pg_ready(sp);
	if (r < 0)
		return r;
	if (nparams < 0)
		sent = PQsendQueryParams(sp->conn, sql, 0, NULL, NULL, NULL,
		    NULL, 1);
	else
		sent = PQsendQueryParams(sp->conn, sql, nparams, types, vals,
		    lens, fmts, 1);
	if (!sent) {
		r = PQstatus(sp->conn) == CONNECTION_BAD ? PG_LOST : -EIO;
		pg_drop(sp);
		return r;
	}
	deadline = util_mono_ms() + PG_OP_TIMEOUT_MS;
	for (;;) {
		r = pg_wait(sp->conn, deadline);
		if (r < 0) {
			broken = 1; /* a statement may still be running */
			break;
		}
		res = PQgetResult(sp->conn);
		if (res == NULL)
			break;
		PQclear(last);
		last = res;
	}
	if (r == 0 && PQstatus(sp->conn) == CONNECTION_BAD)
		r = PG_LOST;
	if (r == 0 && last == NULL)
		r = -EIO;
	if (r == 0 && PQresultStatus(last) != PGRES_TUPLES_OK &&
	    PQresultStatus(last) != PGRES_COMMAND_OK)
		r = PQstatus(sp->conn) == CONNECTION_BAD ? PG_LOST :
							   pg_errno(last);
	if (r < 0) {
		PQclear(last);
		/* A timed-out or broken connection is in an unknown state. */
		if (broken || r == PG_LOST)
			pg_drop(sp);
		return r;
	}
	*out = last;
	return 0;
}
