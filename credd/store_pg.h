/*
 * store_pg.h - PostgreSQL-only extras of the postgres backend
 * (store_pg_open itself is in store.h, next to store_file_open).
 *
 * Built only with ENTRA_PG (ENTRA_HAVE_PG is defined then).
 */
#ifndef CREDD_STORE_PG_H
#define CREDD_STORE_PG_H

#include <stddef.h>

struct store;

/*
 * Create or migrate the schema (credd_schema, credd_records) and return:
 * `credd db-init`. store_pg_open does the same. 0; -EINVAL (bad DSN);
 * -ECONNREFUSED (cannot connect); -EACCES (no right to create the
 * tables); -EPROTONOSUPPORT (the database has a newer schema than this
 * credd knows); -EIO.
 */
int store_pg_init(const char *dsn);

/*
 * Connect and read the schema version, changing nothing (`credd doctor`).
 * 0 with *version (0: no schema yet) and *known (the version this credd
 * writes); the errors of store_pg_init otherwise.
 */
int store_pg_check(const char *dsn, int *version, int *known);

/*
 * The DSN's host, port, dbname and user (whichever it sets) as
 * "host=H port=P dbname=D user=U" in buf, for a message: never its
 * password or any other setting. "(unparsable)" when libpq cannot parse
 * it. Always NUL-terminates buf (bufsz > 0).
 */
void store_pg_describe(const char *dsn, char *buf, size_t bufsz);

/*
 * Bring the LISTEN connection back after notify_next returned
 * -ENOTCONN. Loop thread only; never blocks (except for a host-name
 * lookup: put an address in the DSN's hostaddr to avoid even that).
 * The loop calls it from a timer:
 *   0             connected and LISTEN sent: call notify_fd again (the
 *                 fd number may have changed) and watch it; once LISTEN
 *                 is confirmed, notify_next yields the resync marker
 *                 (1 with *user == NULL);
 *   -EINPROGRESS  still connecting: call again soon (50-100 ms);
 *   -ECONNREFUSED, -ETIMEDOUT, -ENOMEM: failed; call again with backoff.
 * Calling it while the connection is up returns 0 and does nothing.
 */
int store_pg_notify_reconnect(struct store *st);

#endif
