/*
 * store_peek.c - test helper for tests/fault: open a credd file store
 * exactly as credd does (seal_load, store_file_open, record_load) and
 * print one JSON line per record: the user, the store version, the
 * pinned oid and the *fingerprint* of the refresh token (first 8 hex of
 * its SHA-256, as credd logs it), so a test can place the stored token in
 * the emulator's chain without the token itself leaving this process.
 *
 *   store_peek STATE_DIR KEY_FILE TENANT RUN_AS_USER
 *   store_peek --pg DSN KEY_FILE TENANT RUN_AS_USER
 *
 * The key is read first (root-only file), then the helper drops to
 * RUN_AS_USER (the store directory must be owned by the euid). With --pg
 * the records are read from the postgres backend (store_pg_open, as
 * credd opens it, node "store-peek"; a build without ENTRA_PG exits 2).
 * Exit 0 if
 * every record opened, 1 if one did not (its line carries "error"), 2 on
 * usage or setup errors. Must never print a token, only fingerprints.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "entra/secret.h"
#include "record.h"
#include "seal.h"
#include "store.h"

static void
fingerprint(const struct secret *s, char out[9])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];

	crypto_hash_sha256(h, (const unsigned char *)s->ptr, s->len);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	memcpy(out, hex, 8);
	out[8] = '\0';
}

static int
drop_to(const char *name)
{
	struct passwd *pw = getpwnam(name);

	if (pw == NULL)
		return -ENOENT;
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		return -errno;
	return 0;
}

static int
peek_one(struct store *st, const struct seal *seal, const char *tenant,
    const struct store_entry *e)
{
	struct record *rec = NULL;
	char fp[9];
	int r;

	r = record_load(st, seal, tenant, e->user, &rec);
	if (r < 0) {
		printf("{\"user\":\"%s\",\"version\":%llu,\"error\":%d}\n",
		    e->user, (unsigned long long)e->version, r);
		return r;
	}
	if (rec->refresh_token != NULL)
		fingerprint(rec->refresh_token, fp);
	printf("{\"user\":\"%s\",\"version\":%llu,\"oid\":\"%s\","
	       "\"rt\":%s%s%s}\n",
	    e->user, (unsigned long long)rec->version, rec->oid ? rec->oid : "",
	    rec->refresh_token ? "\"" : "", rec->refresh_token ? fp : "null",
	    rec->refresh_token ? "\"" : "");
	record_free(rec);
	return 0;
}

static int
open_store(int is_pg, const char *where, struct store **st)
{
	if (!is_pg)
		return store_file_open(where, st);
#ifdef ENTRA_HAVE_PG
	return store_pg_open(where, "store-peek", st);
#else
	fprintf(stderr, "store_peek: built without ENTRA_PG\n");
	return -ENOTSUP;
#endif
}

int
main(int argc, char **argv)
{
	struct seal *seal = NULL;
	struct store *st = NULL;
	struct store_entry *ents = NULL;
	char *next = NULL;
	size_t n = 0, i;
	int r, bad = 0, is_pg = 0;

	if (argc == 6 && strcmp(argv[1], "--pg") == 0) {
		is_pg = 1;
		argc--;
		argv++;
	}
	if (argc != 5) {
		fprintf(stderr,
		    "usage: store_peek [--pg DSN | DIR] KEY_FILE "
		    "TENANT USER\n");
		return 2;
	}
	if ((r = seal_load(argv[2], &seal)) < 0) {
		fprintf(stderr, "store_peek: key file: %s\n", strerror(-r));
		return 2;
	}
	if ((r = drop_to(argv[4])) < 0 ||
	    (r = open_store(is_pg, argv[1], &st)) < 0) {
		fprintf(stderr, "store_peek: store: %s\n", strerror(-r));
		seal_free(seal);
		return 2;
	}
	r = st->ops->list(st, argv[3], NULL, 100000, 0, &ents, &n, &next);
	if (r < 0) {
		fprintf(stderr, "store_peek: list: %s\n", strerror(-r));
		bad = 1;
	}
	for (i = 0; r >= 0 && i < n; i++)
		if (peek_one(st, seal, argv[3], &ents[i]) < 0)
			bad = 1;
	store_entries_free(ents, n);
	free(next);
	store_close(st);
	seal_free(seal);
	return bad;
}
