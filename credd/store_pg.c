/*
 * store_pg.c - the PostgreSQL backend of store.h (cluster mode): one
 * table shared by every node, compare-and-swap on a version column,
 * advisory locks for cluster-wide single flight, LISTEN/NOTIFY for
 * change propagation.
 *
 * Two connections. The main one (store thread) runs every statement,
 * holds the session-level advisory locks and sends the notifications.
 * The LISTEN one (event-loop thread) only listens: the loop polls its
 * socket (notify_fd), drains it (notify_next) and, when it breaks,
 * brings it back step by step with store_pg_notify_reconnect() on a
 * timer, so the loop never waits on the database. The two threads share
 * only the immutable dsn, node and instance fields.
 *
 * Every statement is parameterised, blobs travel as binary bytea, and a
 * statement that has not answered within PG_OP_TIMEOUT_MS drops its
 * connection (-ETIMEDOUT): a hung database cannot wedge the store thread.
 * A broken main connection is re-made (PG_CONNECT_TRIES attempts, each
 * bounded by connect_timeout) at the start of the next call; meanwhile
 * calls fail with -EIO or -ECONNREFUSED and the caller keeps what it
 * could not write. Advisory locks die with their connection, so a
 * reconnect silently releases them; the version CAS stays the guard.
 *
 * Notification payload: "<16 hex instance>\x1f<tenant>\x1f<user>". Every
 * successful put_if and del_if notifies in the same statement, so other
 * nodes hear of it exactly when it commits; notify_next skips this
 * instance's own notifications. TLS and the other connection settings
 * come from the DSN; ours (connect_timeout, keepalives,
 * statement_timeout) are defaults the DSN may override.
 *
 * store_pg_conn.c makes the connections and runs a statement within its
 * deadline, store_pg_notify.c keeps the LISTEN connection; this file has
 * the SQL of each store operation, the schema, and open and close.
 *
 * Must never: build SQL from input, look inside a blob, put a blob or a
 * DSN (it may hold a password) in an error string, or log (libpq's
 * notices are silenced; errors go back as -errno).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "entra/util.h"
#include "store.h"
#include "store_pg.h"
#include "store_pg_int.h"

#define PG_SCHEMA_VERSION 1
#define PG_TENANT_MAX 255
#define PG_USER_MAX 255
#define PG_NODE_MAX 255
#define PG_BLOB_MAX (1024 * 1024) /* a sealed record is a few KiB */
#define PG_LIST_MAX 100000	  /* rows per list page at most */
#define PG_PAYLOAD_MAX (PG_INSTANCE_LEN + 2 + PG_TENANT_MAX + PG_USER_MAX + 1)
/* Serialises schema creation across nodes starting together ("credd_sc"). */
#define PG_SCHEMA_LOCK "7165340450458248035"

#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25

static const struct store_ops store_pg_ops;

/*
 * Schema migrations: entry i takes the schema from version i to i + 1.
 * COLLATE "C" makes list order (and the primary key's index order) the
 * byte order the file backend uses.
 */
static const char *const pg_migrations[PG_SCHEMA_VERSION] = {
	"CREATE TABLE IF NOT EXISTS credd_records ("
	" tenant text COLLATE \"C\" NOT NULL,"
	" username text COLLATE \"C\" NOT NULL,"
	" version bigint NOT NULL CHECK (version > 0),"
	" blob bytea NOT NULL,"
	" updated_at timestamptz NOT NULL DEFAULT now(),"
	" updated_by text NOT NULL,"
	" PRIMARY KEY (tenant, username))",
};

/*
 * store_pg_conn_run, once more on a fresh connection if it broke: reads
 * only.
 */
static int
pg_read(struct store_pg *sp, const char *sql, int nparams, const Oid *types,
    const char *const *vals, const int *lens, const int *fmts, PGresult **out)
{
	int r;

	r = store_pg_conn_run(sp, sql, nparams, types, vals, lens, fmts, out);
	if (r == PG_LOST)
		r = store_pg_conn_run(sp, sql, nparams, types, vals, lens, fmts,
		    out);
	return r == PG_LOST ? -EIO : r;
}

/* Writes are not retried: the caller reloads and retries (CAS). */
static int
pg_write(struct store_pg *sp, const char *sql, int nparams, const Oid *types,
    const char *const *vals, const int *lens, const int *fmts, PGresult **out)
{
	int r;

	r = store_pg_conn_run(sp, sql, nparams, types, vals, lens, fmts, out);
	return r == PG_LOST ? -EIO : r;
}

static int
check_key(const char *tenant, const char *user)
{
	size_t tl, ul;

	if (tenant == NULL || user == NULL)
		return -EINVAL;
	tl = strnlen(tenant, PG_TENANT_MAX + 1);
	ul = strnlen(user, PG_USER_MAX + 1);
	if (tl == 0 || tl > PG_TENANT_MAX || ul == 0 || ul > PG_USER_MAX)
		return -EINVAL;
	/* The separator ends the tenant in a notification payload. */
	return memchr(tenant, PG_SEP, tl) == NULL ? 0 : -EINVAL;
}

/* "<instance>\x1f<tenant>\x1f<user>" into buf[PG_PAYLOAD_MAX]. */
static void
make_payload(const struct store_pg *sp, const char *tenant, const char *user,
    char *buf)
{
	(void)snprintf(buf, PG_PAYLOAD_MAX, "%s%c%s%c%s", sp->instance, PG_SEP,
	    tenant, PG_SEP, user);
}

/* A version column (binary int8, > 0). */
static int
get_version(const PGresult *res, int row, int col, uint64_t *out)
{
	const uint8_t *p;
	uint64_t v = 0;
	int i;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
		return -EBADMSG;
	p = (const uint8_t *)PQgetvalue(res, row, col);
	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	if (v == 0 || v > INT64_MAX)
		return -EBADMSG;
	*out = v;
	return 0;
}

/* A bytea column (binary) into a malloc'd blob. */
static int
get_blob(const PGresult *res, int row, int col, struct blob *out)
{
	int len;

	if (PQgetisnull(res, row, col))
		return -EBADMSG;
	len = PQgetlength(res, row, col);
	if (len < 0 || len > PG_BLOB_MAX)
		return -EBADMSG;
	out->data = malloc(len > 0 ? (size_t)len : 1);
	if (out->data == NULL)
		return -ENOMEM;
	memcpy(out->data, PQgetvalue(res, row, col), (size_t)len);
	out->len = (size_t)len;
	return 0;
}

static int
pg_get(struct store *st, const char *tenant, const char *user, struct blob *out)
{
	static const char sql[] = "SELECT version, blob FROM credd_records"
				  " WHERE tenant = $1 AND username = $2";
	static const Oid types[] = { OID_TEXT, OID_TEXT };
	struct store_pg *sp = st->priv;
	const char *vals[2] = { tenant, user };
	PGresult *res = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	r = check_key(tenant, user);
	if (r < 0)
		return r;
	r = pg_read(sp, sql, 2, types, vals, NULL, NULL, &res);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		r = -ENOENT;
	else if (PQnfields(res) != 2)
		r = -EBADMSG;
	if (r == 0)
		r = get_version(res, 0, 0, &out->version);
	if (r == 0)
		r = get_blob(res, 0, 1, out);
	PQclear(res);
	if (r < 0)
		blob_clear(out);
	return r;
}

static int
pg_put_if(struct store *st, const char *tenant, const char *user,
    const uint8_t *data, size_t len, uint64_t expect, uint64_t *new_version)
{
	/* The notification goes out only for a row written, at commit. */
	static const char sql_create[] =
	    "WITH w AS (INSERT INTO credd_records"
	    " (tenant, username, version, blob, updated_by)"
	    " VALUES ($1, $2, 1, $3, $4) ON CONFLICT DO NOTHING"
	    " RETURNING version)"
	    " SELECT version, pg_notify('" PG_CHANNEL "', $5) FROM w";
	static const Oid types_create[] = { OID_TEXT, OID_TEXT, OID_BYTEA,
		OID_TEXT, OID_TEXT };
	static const char sql_update[] =
	    "WITH w AS (UPDATE credd_records SET version = version + 1,"
	    " blob = $4, updated_at = now(), updated_by = $5"
	    " WHERE tenant = $1 AND username = $2 AND version = $3"
	    " RETURNING version)"
	    " SELECT version, pg_notify('" PG_CHANNEL "', $6) FROM w";
	static const Oid types_update[] = { OID_TEXT, OID_TEXT, OID_INT8,
		OID_BYTEA, OID_TEXT, OID_TEXT };
	struct store_pg *sp = st->priv;
	char payload[PG_PAYLOAD_MAX], ver[24];
	const char *vals[6];
	int lens[6] = { 0 }, fmts[6] = { 0 };
	static const uint8_t empty[1];
	PGresult *res = NULL;
	uint64_t v = 0;
	int r;

	*new_version = 0;
	r = check_key(tenant, user);
	if (r < 0)
		return r;
	if (len > PG_BLOB_MAX || (data == NULL && len > 0))
		return -EMSGSIZE;
	if (expect >= INT64_MAX)
		return -EOVERFLOW;
	make_payload(sp, tenant, user, payload);
	vals[0] = tenant;
	vals[1] = user;
	if (expect == 0) {
		vals[2] = (const char *)(data != NULL ? data : empty);
		lens[2] = (int)len;
		fmts[2] = 1;
		vals[3] = sp->node;
		vals[4] = payload;
		r = pg_write(sp, sql_create, 5, types_create, vals, lens, fmts,
		    &res);
	} else {
		(void)snprintf(ver, sizeof(ver), "%" PRIu64, expect);
		vals[2] = ver;
		vals[3] = (const char *)(data != NULL ? data : empty);
		lens[3] = (int)len;
		fmts[3] = 1;
		vals[4] = sp->node;
		vals[5] = payload;
		r = pg_write(sp, sql_update, 6, types_update, vals, lens, fmts,
		    &res);
	}
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		r = -ESTALE; /* absent, present (create) or another version */
	else
		r = get_version(res, 0, 0, &v);
	if (r == 0 && v != expect + 1)
		r = -EPROTO;
	PQclear(res);
	if (r == 0)
		*new_version = v;
	return r;
}

static int
pg_del_if(struct store *st, const char *tenant, const char *user,
    uint64_t expect)
{
	static const char sql_del[] =
	    "WITH d AS (DELETE FROM credd_records"
	    " WHERE tenant = $1 AND username = $2 AND version = $3"
	    " RETURNING version)"
	    " SELECT version, pg_notify('" PG_CHANNEL "', $4) FROM d";
	static const Oid types_del[] = { OID_TEXT, OID_TEXT, OID_INT8,
		OID_TEXT };
	static const char sql_exists[] = "SELECT version FROM credd_records"
					 " WHERE tenant = $1 AND username = $2";
	static const Oid types_exists[] = { OID_TEXT, OID_TEXT };
	struct store_pg *sp = st->priv;
	char payload[PG_PAYLOAD_MAX], ver[24];
	const char *vals[4];
	PGresult *res = NULL;
	int r;

	r = check_key(tenant, user);
	if (r < 0)
		return r;
	if (expect >= INT64_MAX)
		return -EOVERFLOW;
	make_payload(sp, tenant, user, payload);
	(void)snprintf(ver, sizeof(ver), "%" PRIu64, expect);
	vals[0] = tenant;
	vals[1] = user;
	vals[2] = ver;
	vals[3] = payload;
	r = pg_write(sp, sql_del, 4, types_del, vals, NULL, NULL, &res);
	if (r < 0)
		return r;
	r = PQntuples(res) > 0 ? 0 : 1;
	PQclear(res);
	if (r == 0)
		return 0;
	/* Nothing deleted: tell "no record" from "another version". */
	r = pg_read(sp, sql_exists, 2, types_exists, vals, NULL, NULL, &res);
	if (r < 0)
		return r;
	r = PQntuples(res) > 0 ? -ESTALE : -ENOENT;
	PQclear(res);
	return r;
}

/* Fill e from list row i. */
static int
list_row(const PGresult *res, int i, int want_blobs, struct store_entry *e)
{
	int r;

	if (PQgetisnull(res, i, 0))
		return -EBADMSG;
	r = get_version(res, i, 1, &e->version);
	if (r < 0)
		return r;
	e->blob.version = e->version;
	if (want_blobs) {
		r = get_blob(res, i, 2, &e->blob);
		if (r < 0)
			return r;
	}
	/* Binary text is the bytes, NUL-terminated by libpq. */
	e->user =
	    strndup(PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
	return e->user != NULL ? 0 : -ENOMEM;
}

static int
pg_list(struct store *st, const char *tenant, const char *cursor, size_t limit,
    int want_blobs, struct store_entry **out, size_t *n, char **next)
{
	static const char sql_blobs[] =
	    "SELECT username, version, blob"
	    " FROM credd_records WHERE tenant = $1 AND username > $2"
	    " ORDER BY username LIMIT $3";
	static const char sql_plain[] =
	    "SELECT username, version"
	    " FROM credd_records WHERE tenant = $1 AND username > $2"
	    " ORDER BY username LIMIT $3";
	static const Oid types[] = { OID_TEXT, OID_TEXT, OID_INT8 };
	struct store_pg *sp = st->priv;
	struct store_entry *e = NULL;
	char lim[24];
	const char *vals[3];
	PGresult *res = NULL;
	size_t cnt = 0, rows;
	int r, i;

	*out = NULL;
	*n = 0;
	*next = NULL;
	if (tenant == NULL || tenant[0] == '\0' ||
	    strnlen(tenant, PG_TENANT_MAX + 1) > PG_TENANT_MAX || limit == 0)
		return -EINVAL;
	if (limit > PG_LIST_MAX)
		limit = PG_LIST_MAX;
	/* One row more than asked tells whether there is a next page. */
	(void)snprintf(lim, sizeof(lim), "%zu", limit + 1);
	vals[0] = tenant;
	vals[1] = cursor != NULL ? cursor : "";
	vals[2] = lim;
	r = pg_read(sp, want_blobs ? sql_blobs : sql_plain, 3, types, vals,
	    NULL, NULL, &res);
	if (r < 0)
		return r;
	rows = (size_t)PQntuples(res);
	if (PQnfields(res) != (want_blobs ? 3 : 2)) {
		r = -EBADMSG;
		goto out;
	}
	e = calloc(rows > 0 ? (rows < limit ? rows : limit) : 1, sizeof(*e));
	if (e == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; (size_t)i < rows && cnt < limit; i++) {
		r = list_row(res, i, want_blobs, &e[cnt]);
		cnt++; /* a half-filled entry is freed with the rest */
		if (r < 0)
			goto out;
	}
	if (rows > limit) {
		*next = strdup(e[cnt - 1].user);
		if (*next == NULL) {
			r = -ENOMEM;
			goto out;
		}
	}
	*out = e;
	*n = cnt;
	e = NULL; /* transferred */
out:
	store_entries_free(e, cnt);
	PQclear(res);
	return r;
}

/*
 * A 64-bit advisory-lock key for (tenant, user): FNV-1a over
 * "credd-lock\0tenant\0user". Another application's key in the same
 * database could collide; the cost would be a needless wait, never a
 * lost write (the version CAS still guards the record).
 */
static void
lock_key(const char *tenant, const char *user, char *buf, size_t bufsz)
{
	static const char prefix[] = "credd-lock";
	const char *parts[3] = { prefix, tenant, user };
	uint64_t h = UINT64_C(14695981039346656037);
	const unsigned char *p;
	int64_t k;
	size_t i;

	for (i = 0; i < 3; i++) {
		p = (const unsigned char *)parts[i];
		do { /* each part with its NUL */
			h ^= *p;
			h *= UINT64_C(1099511628211);
		} while (*p++ != '\0');
	}
	/* Two's complement without implementation-defined conversion. */
	k = h > INT64_MAX ? -(int64_t)(~h) - 1 : (int64_t)h;
	(void)snprintf(buf, bufsz, "%" PRId64, k);
}

/* Run a one-boolean lock statement: 1 true, 0 false, -errno. */
static int
lock_stmt(struct store_pg *sp, const char *sql, const char *tenant,
    const char *user, int retry)
{
	static const Oid types[] = { OID_INT8 };
	const char *vals[1];
	PGresult *res = NULL;
	char key[24];
	int r;

	r = check_key(tenant, user);
	if (r < 0)
		return r;
	lock_key(tenant, user, key, sizeof(key));
	vals[0] = key;
	r = retry ? pg_read(sp, sql, 1, types, vals, NULL, NULL, &res) :
		    pg_write(sp, sql, 1, types, vals, NULL, NULL, &res);
	if (r < 0)
		return r;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0) ||
	    PQgetlength(res, 0, 0) != 1)
		r = -EBADMSG;
	else
		r = PQgetvalue(res, 0, 0)[0] != 0;
	PQclear(res);
	return r;
}

static int
pg_trylock(struct store *st, const char *tenant, const char *user)
{
	int r;

	/* Safe to retry: a broken connection held no locks any more. */
	r = lock_stmt(st->priv, "SELECT pg_try_advisory_lock($1)", tenant, user,
	    1);
	if (r < 0)
		return r;
	return r == 1 ? 0 : -EAGAIN;
}

/*
 * -ENOLCK when we did not hold it: a reconnect since trylock dropped it.
 * Session locks nest: two trylocks of one key need two unlocks.
 */
static int
pg_unlock(struct store *st, const char *tenant, const char *user)
{
	int r;

	r = lock_stmt(st->priv, "SELECT pg_advisory_unlock($1)", tenant, user,
	    0);
	if (r < 0)
		return r;
	return r == 1 ? 0 : -ENOLCK;
}

static int
pg_notify(struct store *st, const char *tenant, const char *user)
{
	static const char sql[] = "SELECT pg_notify('" PG_CHANNEL "', $1)";
	static const Oid types[] = { OID_TEXT };
	struct store_pg *sp = st->priv;
	char payload[PG_PAYLOAD_MAX];
	const char *vals[1] = { payload };
	PGresult *res = NULL;
	int r;

	r = check_key(tenant, user);
	if (r < 0)
		return r;
	make_payload(sp, tenant, user, payload);
	r = pg_write(sp, sql, 1, types, vals, NULL, NULL, &res);
	PQclear(res);
	return r;
}

/* ---- schema, open, close ---- */

/* Run a parameterless statement on a private connection. */
static int
schema_exec(struct store_pg *sp, const char *sql, PGresult **out)
{
	PGresult *res = NULL;
	int r;

	r = store_pg_conn_run(sp, sql, -1, NULL, NULL, NULL, NULL, &res);
	if (r == PG_LOST)
		r = -EIO;
	if (r == 0 && out != NULL) {
		*out = res;
		return 0;
	}
	PQclear(res);
	return r;
}

/* The schema version: 0 when there is none, -errno. */
static int
schema_version(struct store_pg *sp)
{
	PGresult *res = NULL;
	uint8_t *p;
	int r, v;

	r = schema_exec(sp, "SELECT to_regclass('credd_schema') IS NOT NULL",
	    &res);
	if (r < 0)
		return r;
	v = PQntuples(res) == 1 && PQgetlength(res, 0, 0) == 1 &&
	    PQgetvalue(res, 0, 0)[0] != 0;
	PQclear(res);
	if (!v)
		return 0;
	r = schema_exec(sp,
	    "SELECT coalesce(max(version), 0)"
	    " FROM credd_schema",
	    &res);
	if (r < 0)
		return r;
	if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != 4) {
		PQclear(res);
		return -EBADMSG;
	}
	p = (uint8_t *)PQgetvalue(res, 0, 0);
	v = (int)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3]);
	PQclear(res);
	return v < 0 ? -EBADMSG : v;
}

/* Apply the missing migrations in one transaction. Caller: v < current. */
static int
schema_migrate(struct store_pg *sp)
{
	char sql[64];
	int r, v;

	r = schema_exec(sp, "BEGIN", NULL);
	if (r < 0)
		return r;
	/* Nodes starting together: one migrates, the others then see it. */
	r = schema_exec(sp, "SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK ")",
	    NULL);
	if (r == 0)
		r = schema_exec(sp,
		    "CREATE TABLE IF NOT EXISTS credd_schema"
		    " (version integer NOT NULL)",
		    NULL);
	v = r == 0 ? schema_version(sp) : r;
	r = v < 0 ? v : 0;
	if (v > PG_SCHEMA_VERSION)
		r = -EPROTONOSUPPORT;
	for (; r == 0 && v < PG_SCHEMA_VERSION; v++)
		r = schema_exec(sp, pg_migrations[v], NULL);
	if (r == 0)
		r = schema_exec(sp, "DELETE FROM credd_schema", NULL);
	if (r == 0) {
		(void)snprintf(sql, sizeof(sql),
		    "INSERT INTO credd_schema VALUES (%d)", PG_SCHEMA_VERSION);
		r = schema_exec(sp, sql, NULL);
	}
	if (r == 0)
		r = schema_exec(sp, "COMMIT", NULL);
	if (r < 0 && sp->conn != NULL)
		(void)schema_exec(sp, "ROLLBACK", NULL);
	return r;
}

/* Create or migrate the schema through sp's main connection. */
static int
schema_ensure(struct store_pg *sp)
{
	int v;

	/* Up to date: no DDL, so a role without CREATE rights works. */
	v = schema_version(sp);
	if (v < 0)
		return v;
	if (v > PG_SCHEMA_VERSION)
		return -EPROTONOSUPPORT;
	if (v == PG_SCHEMA_VERSION)
		return 0;
	return schema_migrate(sp);
}

static void
pg_close(struct store *st)
{
	struct store_pg *sp;

	if (st == NULL)
		return;
	sp = st->priv;
	PQfinish(sp->conn);
	PQfinish(sp->lconn);
	free(sp->dsn);
	free(sp->node);
	free(sp);
}

/* A random instance id, so notify_next can skip our own changes. */
static int
make_instance(char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[PG_INSTANCE_LEN / 2];
	size_t i;

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -EIO;
	for (i = 0; i < sizeof(b); i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[PG_INSTANCE_LEN] = '\0';
	return 0;
}

/* A DSN libpq can parse. The parse error text is dropped (it may quote it). */
static int
check_dsn(const char *dsn)
{
	PQconninfoOption *opts;
	char *err = NULL;

	if (dsn == NULL)
		return -EINVAL;
	opts = PQconninfoParse(dsn, &err);
	PQfreemem(err);
	if (opts == NULL)
		return -EINVAL;
	PQconninfoFree(opts);
	return 0;
}

static int
pg_new(const char *dsn, const char *node, struct store_pg **out)
{
	struct store_pg *sp;
	int r;

	*out = NULL;
	r = check_dsn(dsn);
	if (r < 0)
		return r;
	if (node == NULL)
		node = "";
	if (strnlen(node, PG_NODE_MAX + 1) > PG_NODE_MAX)
		return -EINVAL;
	sp = calloc(1, sizeof(*sp));
	if (sp == NULL)
		return -ENOMEM;
	sp->st.ops = &store_pg_ops;
	sp->st.priv = sp;
	sp->lstate = LISTEN_DOWN;
	sp->dsn = strdup(dsn);
	sp->node = strdup(node);
	if (sp->dsn == NULL || sp->node == NULL) {
		pg_close(&sp->st);
		return -ENOMEM;
	}
	r = make_instance(sp->instance);
	if (r < 0) {
		pg_close(&sp->st);
		return r;
	}
	*out = sp;
	return 0;
}

int
store_pg_init(const char *dsn)
{
	struct store_pg *sp = NULL;
	int r;

	r = pg_new(dsn, NULL, &sp);
	if (r < 0)
		return r;
	r = schema_ensure(sp);
	pg_close(&sp->st);
	return r;
}

int
store_pg_check(const char *dsn, int *version, int *known)
{
	struct store_pg *sp = NULL;
	int r;

	*version = 0;
	*known = PG_SCHEMA_VERSION;
	r = pg_new(dsn, NULL, &sp);
	if (r < 0)
		return r;
	r = schema_version(sp);
	pg_close(&sp->st);
	if (r < 0)
		return r;
	*version = r;
	return 0;
}

void
store_pg_describe(const char *dsn, char *buf, size_t bufsz)
{
	static const char *const shown[] = { "host", "hostaddr", "port",
		"dbname", "user" };
	PQconninfoOption *opts, *o;
	char *err = NULL;
	size_t i, n = 0;

	buf[0] = '\0';
	opts = dsn != NULL ? PQconninfoParse(dsn, &err) : NULL;
	PQfreemem(err); /* it may quote the DSN */
	if (opts == NULL) {
		(void)snprintf(buf, bufsz, "(unparsable)");
		return;
	}
	for (i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
		for (o = opts; o->keyword != NULL; o++) {
			if (strcmp(o->keyword, shown[i]) != 0 ||
			    o->val == NULL || n >= bufsz)
				continue;
			n += (size_t)snprintf(buf + n, bufsz - n, "%s%s=%s",
			    n > 0 ? " " : "", o->keyword, o->val);
		}
	PQconninfoFree(opts);
	if (buf[0] == '\0')
		(void)snprintf(buf, bufsz, "(libpq defaults)");
}

int
store_pg_open(const char *dsn, const char *node, struct store **out)
{
	struct store_pg *sp = NULL;
	int r;

	*out = NULL;
	r = pg_new(dsn, node, &sp);
	if (r < 0)
		return r;
	r = schema_ensure(sp);
	if (r == 0)
		r = store_pg_notify_open(sp);
	if (r < 0) {
		pg_close(&sp->st);
		return r;
	}
	*out = &sp->st;
	return 0;
}

int
store_pg_notify_reconnect(struct store *st)
{
	if (st == NULL || st->ops != &store_pg_ops)
		return -EINVAL;
	return store_pg_notify_connect(st->priv);
}

static const struct store_ops store_pg_ops = {
	.name = "postgres",
	.get = pg_get,
	.put_if = pg_put_if,
	.del_if = pg_del_if,
	.list = pg_list,
	.notify_fd = store_pg_notify_fd,
	.notify_next = store_pg_notify_next,
	.trylock = pg_trylock,
	.unlock = pg_unlock,
	.notify = pg_notify,
	.notify_reconnect = store_pg_notify_reconnect,
	.close = pg_close,
};
