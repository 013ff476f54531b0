/*
 * doctor_store.c - `credd doctor`'s store check: the file backend's
 * directory is checked with the state (doctor_files.c); the postgres
 * backend is connected to and its schema version read.
 *
 * Must never: print the DSN (it may hold a password: only host, port,
 * dbname and user are shown), migrate or write anything (db-init does).
 */
#include <errno.h>
#include <string.h>

#include "config.h"
#include "doctor_int.h"
#ifdef ENTRA_HAVE_PG
#include "store_pg.h"
#endif

#ifdef ENTRA_HAVE_PG
static void
check_pg(struct doctor *d)
{
	char where[256];
	int r, version = 0, known = 0;

	store_pg_describe(d->cf->dsn, where, sizeof(where));
	r = store_pg_check(d->cf->dsn, &version, &known);
	if (r == -ECONNREFUSED || r == -EINVAL) {
		doctor_say(d, DOCTOR_FAIL, "store", "postgres %s: %s", where,
		    r == -EINVAL ? "the DSN does not parse" : "cannot connect");
		doctor_fix(d,
		    "check [store] dsn, the server, pg_hba.conf and the "
		    "password (psql with the same DSN shows the reason)");
		return;
	}
	if (r < 0) {
		doctor_say(d, DOCTOR_FAIL, "store", "postgres %s: %s", where,
		    strerror(-r));
		doctor_fix(d, "check the role's rights on the database");
		return;
	}
	if (version != known) {
		doctor_say(d, DOCTOR_FAIL, "store",
		    "postgres %s: schema version %d, this credd uses %d", where,
		    version, known);
		doctor_fix(d,
		    version < known ?
			"run credd db-init -c %s" :
			"upgrade credd on this node (another node has a newer "
			"schema); config %s",
		    d->conf_path);
		return;
	}
	doctor_say(d, DOCTOR_OK, "store", "postgres %s: schema version %d",
	    where, version);
}
#endif

void
doctor_check_store(struct doctor *d)
{
	if (strcmp(d->cf->backend, "file") == 0) {
		doctor_say(d, DOCTOR_OK, "store", "file backend in %s",
		    d->cf->store_path);
		return;
	}
#ifdef ENTRA_HAVE_PG
	if (strcmp(d->cf->backend, "postgres") == 0) {
		check_pg(d);
		return;
	}
#endif
	doctor_say(d, DOCTOR_FAIL, "store",
	    "backend \"%s\" is not built into this credd", d->cf->backend);
	doctor_fix(d, "install a credd built with it, or set [store] backend");
}
