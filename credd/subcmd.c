/*
 * subcmd.c - credd's offline subcommands: keygen (make a key file or add
 * a key), rekey (reseal every stored record under the active key) and
 * db-init (create or migrate the PostgreSQL schema). main.c dispatches
 * to them; doctor and migrate have files of their own.
 *
 * Must never: print a key or a DSN, or write the store as root (rekey
 * drops to the run-as user first, as the daemon does).
 */
#include <errno.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "entra/paths.h"

#include "config.h"
#include "log.h"
#include "record.h"
#include "seal.h"
#include "startup.h"
#include "store.h"
#include "subcmd.h"
#ifdef ENTRA_HAVE_PG
#include "store_pg.h"
#endif

int
subcmd_keygen(int argc, char **argv)
{
	const char *path = ENTRA_KEY_FILE;
	int activate = 0, i, r, is_new;
	struct stat st;
	uint32_t id = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-k") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--activate") == 0)
			activate = 1;
		else
			return -1;
	}
	umask(077);
	if (sodium_init() < 0)
		fatalx("libsodium cannot initialise");
	is_new = lstat(path, &st) < 0 && errno == ENOENT; /* for the message */
	r = seal_keygen(path, activate, &id);
	if (r < 0)
		fatalx("keygen %s: %s", path, strerror(-r));
	printf("%s: key %u%s\n", path, id,
	    activate || is_new ? " (active)" : "");
	return 0;
}

int
subcmd_rekey(const char *conf_path)
{
	struct config *cf;
	struct store *st = NULL;
	struct seal *seal = NULL;
	struct passwd *pw;
	size_t n = 0;
	int r;

	startup_harden();
	cf = startup_config(conf_path);
	startup_credentials(cf);
	startup_load_keys(cf, NULL, &seal);
	if (geteuid() == 0) {
		/* Write the store as its owner, as the daemon does. */
		pw = getpwnam(cf->user);
		if (pw == NULL)
			fatalx("run-as user \"%s\" does not exist", cf->user);
		startup_drop_privileges(pw);
	}
	startup_open_store(cf, conf_path, &st);
	r = record_rekey_all(st, seal, cf->tenant, &n);
	store_close(st);
	if (r < 0)
		fatalx("rekey: %s (%zu records resealed before the error)",
		    strerror(-r), n);
	printf("resealed %zu records under key %u\n", n, seal_active_id(seal));
	seal_free(seal);
	config_free(cf);
	return 0;
}

/* credd db-init: create or migrate the postgres schema. */
int
subcmd_db_init(const char *conf_path)
{
	struct config *cf = startup_config(conf_path);
	int r;

	if (strcmp(cf->backend, "postgres") != 0)
		fatalx("%s: [store] backend is not postgres", conf_path);
#ifdef ENTRA_HAVE_PG
	r = store_pg_init(cf->dsn);
#else
	r = -EPROTONOSUPPORT;
#endif
	config_free(cf);
	if (r < 0)
		fatalx("db-init: %s", strerror(-r));
	printf("schema ready\n");
	return 0;
}
