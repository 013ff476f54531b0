/*
 * test_migrate.c - credd/migrate.c: a file store with sealed records is
 * copied to PostgreSQL and from there to a second file store; the blobs
 * stay byte-identical and the records open. Re-runs are harmless, a
 * different record in the target stops the copy, and migrate_main
 * drives the same through a config file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "migrate.h"
#include "pgtest.h"
#include "record.h"
#include "seal.h"
#include "store.h"
#include "test.h"

#define NREC 70 /* more than one page (64) */

static const char *dsn;
static const char *root;

static struct store *
open_file(const char *name)
{
	struct store *st = NULL;
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return NULL;
	if (store_file_open(path, &st) < 0)
		return NULL;
	return st;
}

static int
same_blob(struct store *a, struct store *b, const char *t, const char *user)
{
	struct blob x = { 0 }, y = { 0 };
	int same;

	if (a->ops->get(a, t, user, &x) < 0 ||
	    b->ops->get(b, t, user, &y) < 0) {
		blob_clear(&x);
		return 0;
	}
	same = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
	blob_clear(&x);
	blob_clear(&y);
	return same;
}

TEST(file_to_pg_to_file)
{
	const char *t = pgtest_tenant("mig");
	struct store *f1 = open_file("f1"), *f2 = open_file("f2"), *pg = NULL;
	struct seal *seal = pgtest_ring();
	struct record *r, *back;
	char user[32];
	size_t count = 0;
	uint64_t nv = 0;
	int i;

	ASSERT_TRUE(f1 != NULL && f2 != NULL && seal != NULL);
	ASSERT_EQ(store_pg_open(dsn, "migrator", &pg), 0);
	for (i = 0; i < NREC; i++) {
		snprintf(user, sizeof(user), "user%03d", i);
		r = pgtest_record(user);
		ASSERT_TRUE(r != NULL);
		ASSERT_EQ(record_save(f1, seal, t, r), 0);
		if (i % 7 == 0) /* some at version 2 */
			ASSERT_EQ(record_save(f1, seal, t, r), 0);
		record_free(r);
	}
	ASSERT_EQ(store_migrate(f1, pg, t, &count), 0);
	ASSERT_EQ(count, NREC);
	ASSERT_EQ(store_migrate(pg, f2, t, &count), 0);
	ASSERT_EQ(count, NREC);
	for (i = 0; i < NREC; i++) {
		snprintf(user, sizeof(user), "user%03d", i);
		ASSERT_TRUE(same_blob(f1, pg, t, user));
		ASSERT_TRUE(same_blob(f1, f2, t, user));
		ASSERT_EQ(record_load(f2, seal, t, user, &back), 0);
		ASSERT_STREQ(back->user, user);
		ASSERT_EQ(back->version, 1); /* versions restart */
		ASSERT_TRUE(back->refresh_token != NULL);
		record_free(back);
		ASSERT_EQ(record_load(pg, seal, t, user, &back), 0);
		record_free(back);
	}
	/* Again: everything is there already, nothing is written. */
	ASSERT_EQ(store_migrate(f1, pg, t, &count), 0);
	ASSERT_EQ(count, 0);
	/* A new record is copied; a different one in the target stops it. */
	r = pgtest_record("zoe");
	ASSERT_EQ(record_save(f1, seal, t, r), 0);
	record_free(r);
	ASSERT_EQ(pg->ops->put_if(pg, t, "user005", (const uint8_t *)"other", 5,
		      1, &nv),
	    0);
	ASSERT_ERR(store_migrate(f1, pg, t, &count), -EEXIST);
	ASSERT_ERR(store_migrate(f1, f1, t, &count), -EINVAL);
	seal_free(seal);
	store_close(f1);
	store_close(f2);
	store_close(pg);
}

static int
write_config(const char *path, const char *tenant, const char *store_dir)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fprintf(f,
	    "[entra]\ntenant = %s\nclient_id = "
	    "22222222-2222-2222-2222-222222222222\n"
	    "[scopes]\nstorage = https://storage.azure.com/.default\n"
	    "default = storage\n"
	    "[server]\nnode = migrate-test\n"
	    "[store]\nbackend = postgres\npath = %s\ndsn = %s\n",
	    tenant, store_dir, dsn);
	fclose(f);
	return chmod(path, 0600);
}

/* migrate_main with argv built from copies (it takes char **). */
static int
run_migrate(const char *conf, const char *from, const char *to)
{
	const char *args[] = { "migrate", "-c", conf, "--from", from, "--to",
		to };
	char *argv[8] = { NULL };
	int i, r = 1;

	for (i = 0; i < 7; i++)
		if ((argv[i] = strdup(args[i])) == NULL)
			goto out;
	r = migrate_main(7, argv);
out:
	for (i = 0; i < 7; i++)
		free(argv[i]);
	return r;
}

TEST(migrate_command)
{
	const char *t = pgtest_tenant("cmd");
	struct store *f3 = open_file("f3"), *f4 = NULL, *pg = NULL;
	struct seal *seal = pgtest_ring();
	struct record *r, *back = NULL;
	char conf3[128], conf4[128], dir3[128], dir4[128];
	ASSERT_TRUE(f3 != NULL && seal != NULL);
	snprintf(dir3, sizeof(dir3), "%s/f3", root);
	snprintf(dir4, sizeof(dir4), "%s/f4", root);
	snprintf(conf3, sizeof(conf3), "%s/c3.conf", root);
	snprintf(conf4, sizeof(conf4), "%s/c4.conf", root);
	ASSERT_EQ(write_config(conf3, t, dir3), 0);
	ASSERT_EQ(write_config(conf4, t, dir4), 0);
	r = pgtest_record("alice");
	ASSERT_EQ(record_save(f3, seal, t, r), 0);
	record_free(r);
	ASSERT_EQ(run_migrate(conf3, "file", "postgres"), 0);
	ASSERT_EQ(run_migrate(conf4, "postgres", "file"), 0); /* makes dir4 */
	ASSERT_EQ(run_migrate(conf3, "file", "file"), 2);
	ASSERT_EQ(run_migrate(conf3, "file", "mysql"), 2);
	ASSERT_EQ(store_file_open(dir4, &f4), 0);
	ASSERT_EQ(record_load(f4, seal, t, "alice", &back), 0);
	record_free(back);
	ASSERT_EQ(store_pg_open(dsn, "x", &pg), 0);
	ASSERT_TRUE(same_blob(f3, pg, t, "alice"));
	ASSERT_TRUE(same_blob(f3, f4, t, "alice"));
	seal_free(seal);
	store_close(f3);
	store_close(f4);
	store_close(pg);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sodium_init() < 0)
		return 1;
	dsn = pgtest_env_file("CREDD_PG_DSN_FILE");
	root = fixture_tmpdir("migrate");
	if (root == NULL)
		return 1;
	RUN(file_to_pg_to_file);
	RUN(migrate_command);
	TEST_MAIN_END();
}
