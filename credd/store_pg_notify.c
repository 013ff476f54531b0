/*
 * store_pg_notify.c - the PostgreSQL backend's LISTEN connection, on the
 * event-loop thread: the loop polls its socket (notify_fd), drains it
 * (notify_next: other nodes' changes, then a resync marker after every
 * (re)connect) and, when it breaks, brings it back step by step on a
 * timer (store_pg_notify_connect: an asynchronous connect stepped with
 * PQconnectPoll while its socket is ready, then LISTEN sent without
 * waiting for the answer). At open it is made synchronously.
 *
 * Must never: block the loop (after open), touch the main connection
 * (the store thread's), or report this instance's own notifications.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "entra/util.h"
#include "store.h"
#include "store_pg_int.h"

/* LISTEN reconnect: the async connect ignores connect_timeout. */
#define PG_CONNECT_TIMEOUT_MS 5000

int
store_pg_notify_fd(struct store *st)
{
	struct store_pg *sp = st->priv;

	if (sp->lconn == NULL ||
	    (sp->lstate != LISTEN_SENT && sp->lstate != LISTEN_READY))
		return -1;
	return PQsocket(sp->lconn);
}

/*
 * The LISTEN connection broke: keep the PGconn (and so its fd) until
 * the loop has stopped watching it, which it does on -ENOTCONN; the next
 * store_pg_notify_reconnect closes it.
 */
static int
listen_lost(struct store_pg *sp)
{
	sp->lstate = LISTEN_DOWN;
	return -ENOTCONN;
}

/* Collect finished results (the LISTEN's) without blocking. */
static int
listen_results(struct store_pg *sp)
{
	PGresult *res;
	int ok;

	while (!PQisBusy(sp->lconn)) {
		res = PQgetResult(sp->lconn);
		if (res == NULL)
			break;
		ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		PQclear(res);
		if (!ok)
			return listen_lost(sp);
		if (sp->lstate == LISTEN_SENT) {
			sp->lstate = LISTEN_READY;
			sp->resync = 1; /* we may have missed changes */
		}
	}
	return 0;
}

/*
 * Parse a payload. 1 and *user for another instance's change, 0 for our
 * own or a malformed one (skipped), -ENOMEM.
 */
static int
parse_payload(const struct store_pg *sp, const char *p, char **user)
{
	const char *t, *u;

	if (strlen(p) < PG_INSTANCE_LEN + 2 || p[PG_INSTANCE_LEN] != PG_SEP)
		return 0;
	if (memcmp(p, sp->instance, PG_INSTANCE_LEN) == 0)
		return 0;
	t = p + PG_INSTANCE_LEN + 1;
	u = strchr(t, PG_SEP);
	if (u == NULL || u == t || u[1] == '\0')
		return 0;
	/*
	 * Every tenant's users are reported: the store does not know which
	 * tenant its caller serves, and a spurious reload is harmless.
	 */
	*user = strdup(u + 1);
	return *user != NULL ? 1 : -ENOMEM;
}

int
store_pg_notify_next(struct store *st, char **user)
{
	struct store_pg *sp = st->priv;
	PGnotify *nf;
	int r;

	*user = NULL;
	if (sp->lconn == NULL || sp->lstate == LISTEN_DOWN ||
	    sp->lstate == LISTEN_CONNECTING)
		return -ENOTCONN;
	if (PQflush(sp->lconn) < 0 || !PQconsumeInput(sp->lconn) ||
	    PQstatus(sp->lconn) != CONNECTION_OK)
		return listen_lost(sp);
	r = listen_results(sp);
	if (r < 0)
		return r;
	if (sp->resync) {
		sp->resync = 0;
		return 1; /* *user == NULL: drop everything, reload */
	}
	while ((nf = PQnotifies(sp->lconn)) != NULL) {
		r = strcmp(nf->relname, PG_CHANNEL) == 0 ?
		    parse_payload(sp, nf->extra, user) :
		    0;
		PQfreemem(nf);
		if (r != 0)
			return r;
	}
	return 0;
}

/* Connected: send LISTEN without waiting for its answer. */
static int
listen_send(struct store_pg *sp)
{
	if (store_pg_conn_setup(sp->lconn) < 0 ||
	    !PQsendQuery(sp->lconn, "LISTEN " PG_CHANNEL) ||
	    PQflush(sp->lconn) < 0) {
		PQfinish(sp->lconn);
		sp->lconn = NULL;
		sp->lstate = LISTEN_DOWN;
		return -ECONNREFUSED;
	}
	sp->lstate = LISTEN_SENT;
	return 0;
}

/* Start an asynchronous connect. */
static int
listen_start(struct store_pg *sp)
{
	const char *vals[10];

	PQfinish(sp->lconn);
	sp->lconn = NULL;
	store_pg_conn_values(sp->dsn, vals);
	sp->lconn = PQconnectStartParams(store_pg_conn_keys, vals, 1);
	if (sp->lconn == NULL)
		return -ENOMEM;
	if (PQstatus(sp->lconn) == CONNECTION_BAD) {
		PQfinish(sp->lconn);
		sp->lconn = NULL;
		return -ECONNREFUSED;
	}
	sp->lstate = LISTEN_CONNECTING;
	sp->lpoll = PGRES_POLLING_WRITING; /* as the libpq manual says */
	sp->lstarted = util_mono_ms();
	return 0;
}

int
store_pg_notify_connect(struct store_pg *sp)
{
	struct pollfd pfd;
	int r, steps;

	if (sp->lstate == LISTEN_SENT || sp->lstate == LISTEN_READY)
		return 0;
	if (sp->lstate == LISTEN_DOWN) {
		r = listen_start(sp);
		if (r < 0)
			return r;
	}
	/* Step PQconnectPoll while its socket is ready; never wait. */
	for (steps = 0; steps < 16; steps++) {
		if (sp->lpoll == PGRES_POLLING_OK)
			return listen_send(sp);
		if (sp->lpoll == PGRES_POLLING_FAILED)
			break;
		if (util_mono_ms() - sp->lstarted > PG_CONNECT_TIMEOUT_MS) {
			PQfinish(sp->lconn);
			sp->lconn = NULL;
			sp->lstate = LISTEN_DOWN;
			return -ETIMEDOUT;
		}
		pfd.fd = PQsocket(sp->lconn);
		pfd.events =
		    sp->lpoll == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pfd.revents = 0;
		if (pfd.fd < 0 || poll(&pfd, 1, 0) < 0)
			break;
		if (pfd.revents == 0)
			return -EINPROGRESS;
		sp->lpoll = PQconnectPoll(sp->lconn);
	}
	if (steps == 16)
		return -EINPROGRESS;
	PQfinish(sp->lconn);
	sp->lconn = NULL;
	sp->lstate = LISTEN_DOWN;
	return -ECONNREFUSED;
}

/* At open the LISTEN connection is made synchronously (start-up). */
int
store_pg_notify_open(struct store_pg *sp)
{
	PGresult *res;
	int ok;

	sp->lconn = store_pg_conn_connect(sp->dsn);
	if (sp->lconn == NULL)
		return -ECONNREFUSED;
	/* Blocking is fine here: start-up, and bounded by statement_timeout. */
	(void)PQsetnonblocking(sp->lconn, 0);
	res = PQexec(sp->lconn, "LISTEN " PG_CHANNEL);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok || PQsetnonblocking(sp->lconn, 1) != 0)
		return -EIO;
	sp->lstate = LISTEN_READY;
	return 0;
}
