/*
 * migrate.h - copy every sealed record of a tenant from one store
 * backend to another (`credd migrate --from file --to postgres`, and
 * back).
 *
 * Blobs are copied as they are, still sealed: the associated data binds
 * (tenant, user), not the backend, so they open on the other side with
 * the same key ring. Versions restart at 1 in the target (they are
 * per-backend compare-and-swap tokens). Run it with credd stopped on
 * every node that uses either store.
 */
#ifndef CREDD_MIGRATE_H
#define CREDD_MIGRATE_H

#include <stddef.h>

struct store;

/*
 * Copy every record of tenant from `from` to `to` with put_if(0). A user
 * already in `to` with the very same bytes is skipped (so a re-run is
 * harmless); with other bytes the copy stops with -EEXIST. *count = the
 * records written. 0 or -errno (stops at the first failure; what was
 * copied stays).
 */
int store_migrate(struct store *from, struct store *to, const char *tenant,
    size_t *count);

/*
 * `credd migrate -c CONFIG --from file|postgres --to file|postgres`:
 * argv[0] is "migrate". The [store] path and dsn of CONFIG name the two
 * stores (a postgres config has both); [entra] tenant the tenant. Prints
 * a summary on stdout, errors on stderr (no secrets, no DSN). Returns
 * the exit status: 0 ok, 1 failure, 2 usage.
 */
int migrate_main(int argc, char **argv);

#endif
