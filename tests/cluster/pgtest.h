/*
 * pgtest.h - helpers shared by the cluster tests: the fixture's DSN and
 * server directory, the test key ring (fixture.h), sample records, raw SQL.
 */
#ifndef PGTEST_H
#define PGTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "entra/secret.h"
#include "fixture.h"
#include "record.h"
#include "seal.h"

/* Not every test uses every helper. */
#define PGTEST_UNUSED __attribute__((unused))

/* First line of the file named by environment variable var, or exit. */
PGTEST_UNUSED static char *
pgtest_env_file(const char *var)
{
	static char bufs[4][1024];
	static int next;
	const char *path = getenv(var);
	char *buf = bufs[next++ % 4];
	FILE *f;

	if (path == NULL || (f = fopen(path, "r")) == NULL) {
		fprintf(stderr,
		    "%s: not set or unreadable: run through ctest "
		    "(the cluster.pg_start fixture)\n",
		    var);
		exit(1);
	}
	if (fgets(buf, sizeof(bufs[0]), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

PGTEST_UNUSED static int64_t
pgtest_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A tenant name no other run or test case uses. */
PGTEST_UNUSED static const char *
pgtest_tenant(const char *tag)
{
	static char bufs[8][96];
	static int next;
	char *buf = bufs[next++ % 8];

	snprintf(buf, sizeof(bufs[0]), "t-%ld-%lld-%s", (long)getpid(),
	    (long long)pgtest_ms(), tag);
	return buf;
}

/* The cluster tests' key ring: one active key (fixture.h). */
PGTEST_UNUSED static struct seal *
pgtest_ring(void)
{
	return fixture_ring(7, 0x5a);
}

PGTEST_UNUSED static struct record *
pgtest_record(const char *user)
{
	struct record *r = record_new(user, 1001);
	char rt[128];

	if (r == NULL)
		return NULL;
	snprintf(rt, sizeof(rt), "0.AAAA-refresh-token-of-%s", user);
	r->oid = strdup("00000000-0000-0000-0000-0000000000aa");
	r->tid = strdup("11111111-1111-1111-1111-111111111111");
	r->username = strdup("someone@contoso.com");
	r->refresh_token = secret_from_str(rt);
	r->created = 1700000000;
	r->updated = 1700000100;
	r->last_refresh = 1700000200;
	if (r->oid == NULL || r->tid == NULL || r->username == NULL ||
	    r->refresh_token == NULL ||
	    record_set_scopes(r, "openid profile offline_access") < 0) {
		record_free(r);
		return NULL;
	}
	return r;
}

/* Run SQL with text parameters on a private connection; 0 or -1. */
PGTEST_UNUSED static int
pgtest_sql(const char *dsn, const char *sql, int n, const char *const *vals)
{
	PGconn *c = PQconnectdb(dsn);
	PGresult *res;
	int ok;

	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return -1;
	}
	res = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "sql: %s", PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
	return ok ? 0 : -1;
}

#endif
