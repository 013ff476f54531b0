/*
 * test_store_pg.c - the postgres backend (credd/store_pg*.c) against the
 * real PostgreSQL of the cluster.pg_start fixture: round trip, CAS on put
 * and delete, create-only races, list paging, advisory locks across two
 * stores, LISTEN/NOTIFY latency, a hung server, a restarted server,
 * sealed blobs swapped between users in SQL, and rollback by a writer
 * with SQL rights but no key (issue 11, finding 8): two nodes, each with
 * its own high-water marks, refuse older rows and adopt newer ones.
 *
 * Each case uses its own tenant, so runs never see each other's rows.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <sodium.h>

#include "marks.h"
#include "pgtest.h"
#include "record.h"
#include "seal.h"
#include "store.h"
#include "store_pg.h"
#include "test.h"

static const char *dsn, *pgdir, *pgport, *scripts;

static struct store *
open_pg(const char *node)
{
	struct store *st = NULL;
	int r = store_pg_open(dsn, node, &st);

	if (r < 0)
		fprintf(stderr, "store_pg_open: %s\n", strerror(-r));
	return st;
}

/* First column of the first row as text into buf ("" if none). */
static int
sql_value(const char *sql, int n, const char *const *vals, char *buf,
    size_t bufsz)
{
	PGconn *c = PQconnectdb(dsn);
	PGresult *res;
	int ok;

	buf[0] = '\0';
	res = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (ok && PQntuples(res) > 0)
		snprintf(buf, bufsz, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(c);
	return ok ? 0 : -1;
}

static int
put(struct store *st, const char *tenant, const char *user, const char *data,
    uint64_t expect, uint64_t *nv)
{
	return st->ops->put_if(st, tenant, user, (const uint8_t *)data,
	    strlen(data), expect, nv);
}

/* Poll st's notify fd up to ms; notify_next's result (0: nothing). */
static int
wait_note(struct store *st, int ms, char **user)
{
	int64_t end = pgtest_ms() + ms, left;
	struct pollfd pfd;
	int r;

	for (;;) {
		r = st->ops->notify_next(st, user);
		if (r != 0)
			return r;
		left = end - pgtest_ms();
		if (left <= 0)
			return 0;
		pfd.fd = st->ops->notify_fd(st);
		pfd.events = POLLIN;
		if (pfd.fd < 0)
			return -EBADF;
		(void)poll(&pfd, 1, (int)left);
	}
}

static void
drain(struct store *st)
{
	char *u = NULL;
	int i;

	for (i = 0; i < 1000 && wait_note(st, 50, &u) == 1; i++) {
		free(u);
		u = NULL;
	}
}

TEST(schema_init)
{
	char v[32];

	ASSERT_EQ(store_pg_init(dsn), 0);
	ASSERT_EQ(store_pg_init(dsn), 0); /* idempotent */
	ASSERT_EQ(sql_value("SELECT max(version) FROM credd_schema", 0, NULL, v,
		      sizeof(v)),
	    0);
	ASSERT_STREQ(v, "1");
	ASSERT_EQ(sql_value("SELECT count(*) FROM credd_schema", 0, NULL, v,
		      sizeof(v)),
	    0);
	ASSERT_STREQ(v, "1");
	ASSERT_ERR(store_pg_init("host=127.0.0.1 port=1 connect_timeout=2"),
	    -ECONNREFUSED);
	ASSERT_ERR(store_pg_init("not a = valid ' dsn"), -EINVAL);
}

TEST(schema_newer_refused)
{
	struct store *st = NULL;

	ASSERT_EQ(pgtest_sql(dsn, "UPDATE credd_schema SET version = 99", 0,
		      NULL),
	    0);
	ASSERT_ERR(store_pg_open(dsn, "n1", &st), -EPROTONOSUPPORT);
	ASSERT_TRUE(st == NULL);
	ASSERT_EQ(pgtest_sql(dsn, "UPDATE credd_schema SET version = 1", 0,
		      NULL),
	    0);
}

TEST(roundtrip)
{
	static const uint8_t bin[] = { 0, 1, 2, 0xff, 0, 0x1f, '\'', '\\' };
	const char *t = pgtest_tenant("rt");
	struct store *st = open_pg("node-a");
	struct blob b = { 0 };
	uint64_t nv = 0;
	char v[64];
	const char *p[2] = { t, "alice" };

	ASSERT_TRUE(st != NULL);
	ASSERT_STREQ(st->ops->name, "postgres");
	ASSERT_ERR(st->ops->get(st, t, "alice", &b), -ENOENT);
	ASSERT_EQ(st->ops->put_if(st, t, "alice", bin, sizeof(bin), 0, &nv), 0);
	ASSERT_EQ(nv, 1);
	ASSERT_EQ(st->ops->get(st, t, "alice", &b), 0);
	ASSERT_EQ(b.version, 1);
	ASSERT_EQ(b.len, sizeof(bin));
	ASSERT_TRUE(memcmp(b.data, bin, sizeof(bin)) == 0);
	blob_clear(&b);
	ASSERT_EQ(put(st, t, "alice", "second", 1, &nv), 0);
	ASSERT_EQ(nv, 2);
	ASSERT_EQ(st->ops->get(st, t, "alice", &b), 0);
	ASSERT_EQ(b.version, 2);
	ASSERT_TRUE(b.len == 6 && memcmp(b.data, "second", 6) == 0);
	blob_clear(&b);
	/* An empty blob is a blob. */
	ASSERT_EQ(st->ops->put_if(st, t, "alice", NULL, 0, 2, &nv), 0);
	ASSERT_EQ(st->ops->get(st, t, "alice", &b), 0);
	ASSERT_TRUE(b.len == 0 && b.version == 3 && b.data != NULL);
	blob_clear(&b);
	/* Rows carry the node name; other tenants do not see them. */
	ASSERT_EQ(sql_value("SELECT updated_by FROM credd_records"
			    " WHERE tenant = $1 AND username = $2",
		      2, p, v, sizeof(v)),
	    0);
	ASSERT_STREQ(v, "node-a");
	ASSERT_ERR(st->ops->get(st, pgtest_tenant("other"), "alice", &b),
	    -ENOENT);
	/* Bad input. */
	ASSERT_ERR(st->ops->get(st, t, "", &b), -EINVAL);
	ASSERT_ERR(st->ops->get(st, "", "alice", &b), -EINVAL);
	ASSERT_ERR(put(st,
		       "a\x1f"
		       "b",
		       "alice", "x", 0, &nv),
	    -EINVAL);
	ASSERT_ERR(st->ops->put_if(st, t, "bob", bin, 2 * 1024 * 1024, 0, &nv),
	    -EMSGSIZE);
	ASSERT_ERR(put(st, t, "bob", "x", UINT64_MAX, &nv), -EOVERFLOW);
	/* A user name with odd bytes is just a key. */
	ASSERT_EQ(put(st, t, "o'brien; DROP TABLE credd_records;--", "x", 0,
		      &nv),
	    0);
	ASSERT_EQ(st->ops->get(st, t, "o'brien; DROP TABLE credd_records;--",
		      &b),
	    0);
	blob_clear(&b);
	store_close(st);
}

TEST(cas_conflicts)
{
	const char *t = pgtest_tenant("cas");
	struct store *a = open_pg("node-a"), *b = open_pg("node-b");
	struct blob bl = { 0 };
	uint64_t nv = 0;

	ASSERT_TRUE(a != NULL && b != NULL);
	/* put: an absent record cannot be updated. */
	ASSERT_ERR(put(a, t, "u", "x", 1, &nv), -ESTALE);
	ASSERT_EQ(nv, 0);
	ASSERT_EQ(put(a, t, "u", "v1", 0, &nv), 0);
	/* create-only on a present record */
	ASSERT_ERR(put(b, t, "u", "other", 0, &nv), -ESTALE);
	/* two nodes holding version 1: one wins */
	ASSERT_EQ(put(a, t, "u", "v2-a", 1, &nv), 0);
	ASSERT_EQ(nv, 2);
	ASSERT_ERR(put(b, t, "u", "v2-b", 1, &nv), -ESTALE);
	ASSERT_ERR(put(b, t, "u", "v9", 9, &nv), -ESTALE);
	ASSERT_EQ(b->ops->get(b, t, "u", &bl), 0);
	ASSERT_TRUE(
	    bl.version == 2 && bl.len == 4 && memcmp(bl.data, "v2-a", 4) == 0);
	blob_clear(&bl);
	/* delete-if-version */
	ASSERT_ERR(b->ops->del_if(b, t, "u", 1), -ESTALE);
	ASSERT_ERR(b->ops->del_if(b, t, "u", 0), -ESTALE);
	ASSERT_ERR(b->ops->del_if(b, t, "nobody", 1), -ENOENT);
	ASSERT_EQ(b->ops->del_if(b, t, "u", 2), 0);
	ASSERT_ERR(a->ops->del_if(a, t, "u", 2), -ENOENT);
	ASSERT_ERR(a->ops->get(a, t, "u", &bl), -ENOENT);
	/* recreated after a delete: version 1 again */
	ASSERT_EQ(put(b, t, "u", "again", 0, &nv), 0);
	ASSERT_EQ(nv, 1);
	store_close(a);
	store_close(b);
}

TEST(create_only_race)
{
	const char *t = pgtest_tenant("race");
	struct store *a = open_pg("node-a"), *b = open_pg("node-b");
	uint64_t nv = 0;
	int i, ra, rb, wins = 0;
	char user[32];

	ASSERT_TRUE(a != NULL && b != NULL);
	for (i = 0; i < 20; i++) {
		snprintf(user, sizeof(user), "user%02d", i);
		ra = put(i % 2 ? a : b, t, user, "first", 0, &nv);
		rb = put(i % 2 ? b : a, t, user, "second", 0, &nv);
		ASSERT_EQ(ra, 0);
		ASSERT_ERR(rb, -ESTALE);
		wins++;
	}
	ASSERT_EQ(wins, 20);
	store_close(a);
	store_close(b);
}

TEST(list_paging)
{
	/* Byte order (as strcmp), not a locale's. */
	static const char *const users[] = { "zed", "Bob", "alice", "_svc",
		"b\xc3\xa9la", "carol", "Alice", "dave", "erin", "a" };
	static const char *const sorted[] = { "Alice", "Bob", "_svc", "a",
		"alice", "b\xc3\xa9la", "carol", "dave", "erin", "zed" };
	const char *t = pgtest_tenant("list");
	struct store *st = open_pg("node-a");
	struct store_entry *e = NULL;
	char *cursor = NULL, *next = NULL;
	size_t n = 0, i, seen = 0, pages = 0;
	uint64_t nv = 0;

	ASSERT_TRUE(st != NULL);
	for (i = 0; i < 10; i++)
		ASSERT_EQ(put(st, t, users[i], users[i], 0, &nv), 0);
	ASSERT_EQ(put(st, t, "carol", "carol2", 1, &nv), 0);
	ASSERT_EQ(put(st, pgtest_tenant("list-other"), "bob", "x", 0, &nv), 0);
	do {
		ASSERT_EQ(st->ops->list(st, t, cursor, 3, 1, &e, &n, &next), 0);
		pages++;
		ASSERT_TRUE(n <= 3);
		for (i = 0; i < n; i++, seen++) {
			ASSERT_TRUE(seen < 10);
			ASSERT_STREQ(e[i].user, sorted[seen]);
			ASSERT_EQ(e[i].version,
			    strcmp(e[i].user, "carol") == 0 ? 2 : 1);
			ASSERT_EQ(e[i].blob.version, e[i].version);
			ASSERT_TRUE(e[i].blob.len >= strlen(e[i].user));
			ASSERT_TRUE(memcmp(e[i].blob.data, e[i].user,
					strlen(e[i].user)) == 0);
		}
		store_entries_free(e, n);
		e = NULL;
		free(cursor);
		cursor = next;
		next = NULL;
	} while (cursor != NULL && pages < 10);
	ASSERT_EQ(seen, 10);
	ASSERT_EQ(pages, 4);
	/* Without blobs; an exact multiple of the page ends with no cursor. */
	ASSERT_EQ(st->ops->list(st, t, "dave", 3, 0, &e, &n, &next), 0);
	ASSERT_EQ(n, 2);
	ASSERT_TRUE(next == NULL);
	ASSERT_TRUE(e[0].blob.data == NULL && e[0].version == 1);
	ASSERT_STREQ(e[1].user, "zed");
	store_entries_free(e, n);
	ASSERT_EQ(st->ops->list(st, t, "", 10, 0, &e, &n, &next), 0);
	ASSERT_EQ(n, 10);
	ASSERT_TRUE(next == NULL);
	store_entries_free(e, n);
	ASSERT_EQ(st->ops->list(st, pgtest_tenant("empty"), NULL, 5, 1, &e, &n,
		      &next),
	    0);
	ASSERT_EQ(n, 0);
	ASSERT_TRUE(next == NULL);
	store_entries_free(e, n);
	ASSERT_ERR(st->ops->list(st, t, NULL, 0, 0, &e, &n, &next), -EINVAL);
	store_close(st);
}

TEST(trylock_exclusive)
{
	const char *t = pgtest_tenant("lock");
	struct store *a = open_pg("node-a"), *b = open_pg("node-b");
	int i, r = 0;

	ASSERT_TRUE(a != NULL && b != NULL);
	ASSERT_EQ(a->ops->trylock(a, t, "alice"), 0);
	ASSERT_ERR(b->ops->trylock(b, t, "alice"), -EAGAIN);
	/* other users and other tenants are other locks */
	ASSERT_EQ(b->ops->trylock(b, t, "bob"), 0);
	ASSERT_EQ(b->ops->trylock(b, pgtest_tenant("lock2"), "alice"), 0);
	ASSERT_ERR(a->ops->trylock(a, t, "bob"), -EAGAIN);
	/* B cannot release A's lock */
	ASSERT_ERR(b->ops->unlock(b, t, "alice"), -ENOLCK);
	ASSERT_EQ(a->ops->unlock(a, t, "alice"), 0);
	ASSERT_EQ(b->ops->trylock(b, t, "alice"), 0);
	ASSERT_ERR(a->ops->trylock(a, t, "alice"), -EAGAIN);
	ASSERT_ERR(a->ops->unlock(a, t, "alice"), -ENOLCK);
	/* closing a store releases its locks (once its backend has exited) */
	store_close(b);
	for (i = 0; i < 200 && (r = a->ops->trylock(a, t, "alice")) == -EAGAIN;
	     i++)
		usleep(10000);
	ASSERT_EQ(r, 0);
	ASSERT_EQ(a->ops->trylock(a, t, "bob"), 0);
	ASSERT_EQ(a->ops->unlock(a, t, "alice"), 0);
	ASSERT_EQ(a->ops->unlock(a, t, "bob"), 0);
	store_close(a);
}

static int
cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return a < b ? -1 : a > b;
}

TEST(notify_latency)
{
	const char *t = pgtest_tenant("notify");
	struct store *a = open_pg("node-a"), *b = open_pg("node-b");
	int64_t lat[20], t0;
	char *u = NULL, user[32];
	uint64_t nv = 0;
	int i;

	ASSERT_TRUE(a != NULL && b != NULL);
	ASSERT_TRUE(a->ops->notify_fd(a) >= 0);
	drain(a);
	drain(b);
	for (i = 0; i < 20; i++) {
		snprintf(user, sizeof(user), "user%02d", i);
		t0 = pgtest_ms();
		ASSERT_EQ(put(a, t, user, "x", 0, &nv), 0);
		ASSERT_EQ(wait_note(b, 1000, &u), 1);
		lat[i] = pgtest_ms() - t0;
		ASSERT_STREQ(u, user);
		free(u);
		u = NULL;
	}
	qsort(lat, 20, sizeof(lat[0]), cmp_i64);
	printf("notify latency (put_if on A -> notify_next on B), 20 writes: "
	       "min %lld ms, median %lld ms, max %lld ms\n",
	    (long long)lat[0], (long long)lat[10], (long long)lat[19]);
	ASSERT_TRUE(lat[19] < 1000);
	/* an update, a delete and an explicit notify tell B too */
	ASSERT_EQ(put(a, t, "user00", "y", 1, &nv), 0);
	ASSERT_EQ(wait_note(b, 1000, &u), 1);
	ASSERT_STREQ(u, "user00");
	free(u);
	ASSERT_EQ(a->ops->del_if(a, t, "user01", 1), 0);
	ASSERT_EQ(wait_note(b, 1000, &u), 1);
	ASSERT_STREQ(u, "user01");
	free(u);
	ASSERT_EQ(a->ops->notify(a, t, "carol"), 0);
	ASSERT_EQ(wait_note(b, 1000, &u), 1);
	ASSERT_STREQ(u, "carol");
	free(u);
	u = NULL;
	/* failed writes do not notify; A never hears itself */
	ASSERT_ERR(put(a, t, "user02", "z", 7, &nv), -ESTALE);
	ASSERT_ERR(a->ops->del_if(a, t, "user03", 7), -ESTALE);
	ASSERT_EQ(wait_note(b, 300, &u), 0);
	ASSERT_EQ(wait_note(a, 100, &u), 0);
	/* B's writes reach A */
	ASSERT_EQ(put(b, t, "user05", "w", 1, &nv), 0);
	ASSERT_EQ(wait_note(a, 1000, &u), 1);
	ASSERT_STREQ(u, "user05");
	free(u);
	store_close(a);
	store_close(b);
}

/* The postmaster's pid and its children (the whole server). */
static int
server_pids(pid_t *pids, int max)
{
	char path[512], line[64];
	FILE *f;
	DIR *d;
	struct dirent *de;
	long pm, pp;
	int n = 0;

	snprintf(path, sizeof(path), "%s/data/postmaster.pid", pgdir);
	f = fopen(path, "r");
	if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	pm = atol(line);
	pids[n++] = (pid_t)pm;
	d = opendir("/proc");
	while (d != NULL && (de = readdir(d)) != NULL && n < max) {
		char stat[512], *p;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		p = fgets(stat, sizeof(stat), f);
		fclose(f);
		if (p == NULL || (p = strrchr(stat, ')')) == NULL)
			continue;
		if (sscanf(p + 2, "%*c %ld", &pp) == 1 && pp == pm)
			pids[n++] = (pid_t)atol(de->d_name);
	}
	if (d != NULL)
		closedir(d);
	return n;
}

TEST(hung_server_bounded)
{
	const char *t = pgtest_tenant("hung");
	struct store *a = open_pg("node-a");
	struct blob b = { 0 };
	pid_t pids[256];
	int64_t t0, took;
	uint64_t nv = 0;
	int n, i, r;

	ASSERT_TRUE(a != NULL);
	ASSERT_EQ(put(a, t, "u", "x", 0, &nv), 0);
	n = server_pids(pids, 256);
	ASSERT_TRUE(n >= 2);
	for (i = 0; i < n; i++)
		(void)kill(pids[i], SIGSTOP);
	t0 = pgtest_ms();
	r = a->ops->get(a, t, "u", &b);
	took = pgtest_ms() - t0;
	for (i = 0; i < n; i++)
		(void)kill(pids[i], SIGCONT);
	printf("get on a frozen server: %s after %lld ms\n", strerror(-r),
	    (long long)took);
	ASSERT_ERR(r, -ETIMEDOUT);
	ASSERT_TRUE(took < 20000);
	/* and it recovers on its own */
	ASSERT_EQ(a->ops->get(a, t, "u", &b), 0);
	blob_clear(&b);
	store_close(a);
}

static int
run_script(const char *name, int with_port)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "'%s/%s' '%s'%s%s >/dev/null", scripts, name,
	    pgdir, with_port ? " " : "", with_port ? pgport : "");
	return system(cmd);
}

TEST(reconnect_after_restart)
{
	const char *t = pgtest_tenant("restart");
	struct store *a = open_pg("node-a"), *b = open_pg("node-b");
	struct blob bl = { 0 };
	char *u = NULL;
	uint64_t nv = 0;
	int64_t t0;
	int r, i, fd;

	ASSERT_TRUE(a != NULL && b != NULL);
	ASSERT_EQ(put(a, t, "r1", "before", 0, &nv), 0);
	drain(b);
	fd = b->ops->notify_fd(b);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(run_script("pg-stop", 0), 0);

	/* Down: every call fails (no hang), nothing pretends to succeed. */
	r = a->ops->get(a, t, "r1", &bl);
	ASSERT_TRUE(r == -ECONNREFUSED || r == -EIO);
	ASSERT_TRUE(put(a, t, "r1", "lost", 1, &nv) < 0);
	ASSERT_TRUE(a->ops->trylock(a, t, "r1") < 0);
	ASSERT_TRUE(a->ops->notify(a, t, "r1") < 0);
	ASSERT_ERR(wait_note(b, 3000, &u), -ENOTCONN);
	ASSERT_TRUE(b->ops->notify_fd(b) < 0);
	ASSERT_ERR(b->ops->notify_next(b, &u), -ENOTCONN);
	r = store_pg_notify_reconnect(b);
	ASSERT_TRUE(r < 0);
	ASSERT_TRUE(r != -ENOTCONN);

	ASSERT_EQ(run_script("pg-start", 1), 0);
	/* The main connection comes back by itself; nothing was lost. */
	ASSERT_EQ(a->ops->get(a, t, "r1", &bl), 0);
	ASSERT_TRUE(bl.version == 1 && bl.len == 6 &&
	    memcmp(bl.data, "before", 6) == 0);
	blob_clear(&bl);
	/* The LISTEN connection comes back through the loop's timer. */
	t0 = pgtest_ms();
	for (i = 0; i < 500; i++) {
		r = store_pg_notify_reconnect(b);
		if (r == 0)
			break;
		usleep(r == -EINPROGRESS ? 10000 : 100000);
	}
	ASSERT_EQ(r, 0);
	printf("LISTEN reconnected in %lld ms (%d timer calls)\n",
	    (long long)(pgtest_ms() - t0), i + 1);
	ASSERT_EQ(store_pg_notify_reconnect(b), 0); /* no-op when up */
	ASSERT_TRUE(b->ops->notify_fd(b) >= 0);
	/* First the resync marker: changes may have been missed. */
	ASSERT_EQ(wait_note(b, 2000, &u), 1);
	ASSERT_TRUE(u == NULL);
	ASSERT_EQ(wait_note(b, 100, &u), 0);
	/* Then ordinary notifications again. */
	ASSERT_EQ(put(a, t, "r1", "after", 1, &nv), 0);
	ASSERT_EQ(nv, 2);
	ASSERT_EQ(wait_note(b, 1000, &u), 1);
	ASSERT_STREQ(u, "r1");
	free(u);
	ASSERT_EQ(a->ops->trylock(a, t, "r1"), 0);
	ASSERT_EQ(a->ops->unlock(a, t, "r1"), 0);
	store_close(a);
	store_close(b);
}

TEST(swapped_blobs_fail_to_open)
{
	static const char swap[] =
	    "UPDATE credd_records r SET blob = o.blob FROM credd_records o"
	    " WHERE r.tenant = $1 AND o.tenant = $1"
	    " AND r.username IN ('alice', 'bob')"
	    " AND o.username IN ('alice', 'bob')"
	    " AND r.username <> o.username";
	const char *t = pgtest_tenant("swap");
	struct store *st = open_pg("node-a");
	struct seal *seal = pgtest_ring();
	struct record *ra = pgtest_record("alice"), *rb = pgtest_record("bob");
	struct record *back = NULL;
	const char *p[1] = { t };

	ASSERT_TRUE(st != NULL && seal != NULL && ra != NULL && rb != NULL);
	ASSERT_EQ(record_save(st, seal, t, ra), 0);
	ASSERT_EQ(record_save(st, seal, t, rb), 0);
	ASSERT_EQ(record_load(st, seal, t, "alice", &back), 0);
	ASSERT_STREQ(back->user, "alice");
	record_free(back);
	back = NULL;
	ASSERT_EQ(pgtest_sql(dsn, swap, 1, p), 0);
	ASSERT_ERR(record_load(st, seal, t, "alice", &back), -EBADMSG);
	ASSERT_ERR(record_load(st, seal, t, "bob", &back), -EBADMSG);
	ASSERT_TRUE(back == NULL);
	/* Swapped back, both open again. */
	ASSERT_EQ(pgtest_sql(dsn, swap, 1, p), 0);
	ASSERT_EQ(record_load(st, seal, t, "bob", &back), 0);
	ASSERT_STREQ(back->user, "bob");
	record_free(back);
	record_free(ra);
	record_free(rb);
	seal_free(seal);
	store_close(st);
}

/* ---- rollback by a writer without the key ---- */

/* The writer's own tools: the blob as hex now, and putting one back. */
static int
row_hex(const char *t, const char *user, char *buf, size_t bufsz)
{
	const char *p[2] = { t, user };

	return sql_value("SELECT encode(blob, 'hex') FROM credd_records"
			 " WHERE tenant = $1 AND username = $2",
	    2, p, buf, bufsz);
}

/* Any version the writer likes: here one above the current one. */
static int
row_restore(const char *t, const char *user, const char *hex)
{
	const char *p[3] = { t, user, hex };

	return pgtest_sql(dsn,
	    "INSERT INTO credd_records"
	    " (tenant, username, version, blob, updated_by)"
	    " VALUES ($1, $2, 1, decode($3, 'hex'), 'restore')"
	    " ON CONFLICT (tenant, username) DO UPDATE SET"
	    " blob = EXCLUDED.blob, version = credd_records.version + 1,"
	    " updated_by = 'restore'",
	    3, p);
}

TEST(rollback_refused_by_marks)
{
	const char *t = pgtest_tenant("rollback");
	struct store *a = open_pg("node-a"), *b = open_pg("node-b");
	struct seal *seal = pgtest_ring();
	struct marks *ma = NULL, *mb = NULL;
	struct record *ra = pgtest_record("alice"), *l = NULL, *fresh = NULL;
	struct record_rollback rb;
	struct marks_mark m;
	const char *da = fixture_tmpdir("store_pg-ma"),
		   *db = fixture_tmpdir("store_pg-mb");
	static char first[16384], cur[16384];
	uint64_t e1;
	int me = 0, i;

	ASSERT_TRUE(a != NULL && b != NULL && seal != NULL && ra != NULL);
	ASSERT_TRUE(da != NULL && db != NULL);
	ASSERT_EQ(marks_open(da, &ma, NULL, 0), 0);
	ASSERT_EQ(marks_open(db, &mb, NULL, 0), 0);

	/* Node A: a consent (backed up by the writer), then rotations;
	 * node B reads each newer row A writes, and admits it. */
	ASSERT_EQ(record_save_marked(a, seal, ma, t, ra, 1, &me), 0);
	e1 = ra->epoch;
	ASSERT_EQ(row_hex(t, "alice", first, sizeof(first)), 0);
	ASSERT_TRUE(strlen(first) > 0);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(record_save_marked(a, seal, ma, t, ra, 0, &me), 0);
		ASSERT_EQ(record_load_marked(b, seal, mb, t, "alice", &l, &rb,
			      &me),
		    0);
		ASSERT_EQ(l->gen, (uint64_t)i + 2);
		record_free(l);
		l = NULL;
	}
	ASSERT_EQ(marks_get(mb, t, "alice", &m), 0);
	ASSERT_EQ(m.gen, 4);

	/* The writer puts the consent's row back, version bumped: the
	 * version says newer, the sealed generation says older. */
	ASSERT_EQ(row_restore(t, "alice", first), 0);
	ASSERT_EQ(record_load(a, seal, t, "alice", &l), 0);
	ASSERT_EQ(l->version, 5);
	ASSERT_EQ(l->gen, 1);
	record_free(l);
	l = NULL;
	ASSERT_ERR(record_load_marked(a, seal, ma, t, "alice", &l, &rb, &me),
	    RECORD_EROLLBACK);
	ASSERT_EQ(rb.gen, 1);
	ASSERT_EQ(rb.mark.gen, 4);
	ASSERT_ERR(record_load_marked(b, seal, mb, t, "alice", &l, &rb, &me),
	    RECORD_EROLLBACK);
	ASSERT_TRUE(l == NULL);

	/* A writes its newer record over that row; B admits it. */
	ASSERT_ERR(record_save_marked(a, seal, ma, t, ra, 0, &me), -ESTALE);
	ra->version = rb.version;
	ASSERT_EQ(record_save_marked(a, seal, ma, t, ra, 0, &me), 0);
	ASSERT_EQ(ra->gen, 5);
	ASSERT_EQ(record_load_marked(b, seal, mb, t, "alice", &l, &rb, &me), 0);
	ASSERT_EQ(l->gen, 5);
	record_free(l);
	l = NULL;

	/* An admin revoke on A (the row goes); A sees it gone. */
	ASSERT_EQ(row_hex(t, "alice", cur, sizeof(cur)), 0);
	ASSERT_EQ(a->ops->del_if(a, t, "alice", ra->version), 0);
	ASSERT_ERR(record_load_marked(a, seal, ma, t, "alice", &l, &rb, &me),
	    -ENOENT);
	ASSERT_EQ(marks_get(ma, t, "alice", &m), 0);
	ASSERT_EQ(m.deleted, 1);
	/* The writer restores the revoked row: neither node takes it. */
	ASSERT_EQ(row_restore(t, "alice", cur), 0);
	ASSERT_ERR(record_load_marked(a, seal, ma, t, "alice", &l, &rb, &me),
	    RECORD_EROLLBACK);
	ASSERT_EQ(rb.mark.deleted, 1);
	/* B never saw the deletion: it admits the row it had seen last (a
	 * limit, docs/threat-model.md), but nothing older. */
	ASSERT_EQ(record_load_marked(b, seal, mb, t, "alice", &l, &rb, &me), 0);
	record_free(l);
	l = NULL;
	ASSERT_EQ(row_restore(t, "alice", first), 0);
	ASSERT_ERR(record_load_marked(b, seal, mb, t, "alice", &l, &rb, &me),
	    RECORD_EROLLBACK);

	/* A new consent on A after the revoke: a new epoch, over the row
	 * the writer put there; both nodes admit it. */
	fresh = pgtest_record("alice");
	ASSERT_TRUE(fresh != NULL);
	ASSERT_ERR(record_load_marked(a, seal, ma, t, "alice", &l, &rb, &me),
	    RECORD_EROLLBACK);
	fresh->version = rb.version;
	ASSERT_EQ(record_save_marked(a, seal, ma, t, fresh, 1, &me), 0);
	ASSERT_TRUE(fresh->epoch > e1);
	ASSERT_EQ(fresh->gen, 1);
	ASSERT_EQ(record_load_marked(b, seal, mb, t, "alice", &l, &rb, &me), 0);
	ASSERT_EQ(l->epoch, fresh->epoch);
	record_free(l);
	l = NULL;
	ASSERT_EQ(record_load_marked(a, seal, ma, t, "alice", &l, &rb, &me), 0);
	record_free(l);
	l = NULL;
	ASSERT_EQ(me, 0);

	record_free(fresh);
	record_free(ra);
	marks_close(ma);
	marks_close(mb);
	(void)fixture_rmtree(da);
	(void)fixture_rmtree(db);
	seal_free(seal);
	store_close(a);
	store_close(b);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sodium_init() < 0)
		return 1;
	dsn = pgtest_env_file("CREDD_PG_DSN_FILE");
	pgdir = pgtest_env_file("CREDD_PG_DIR_FILE");
	pgport = pgtest_env_file("CREDD_PG_PORT_FILE");
	scripts = getenv("CREDD_SCRIPTS");
	if (scripts == NULL) {
		fprintf(stderr, "CREDD_SCRIPTS not set\n");
		return 1;
	}
	RUN(schema_init);
	RUN(schema_newer_refused);
	RUN(roundtrip);
	RUN(cas_conflicts);
	RUN(create_only_race);
	RUN(list_paging);
	RUN(trylock_exclusive);
	RUN(notify_latency);
	RUN(swapped_blobs_fail_to_open);
	RUN(rollback_refused_by_marks);
	RUN(hung_server_bounded);
	RUN(reconnect_after_restart);
	TEST_MAIN_END();
}
