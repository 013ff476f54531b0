/*
 * store.h - backend interface over opaque blobs (DESIGN.md §6).
 *
 * Backends store (key -> blob, version) and know nothing of keys or
 * records; sealing lives above them (record.c). Keys are "tenant/user"
 * pairs passed separately. Versions start at 1 and grow by one on every
 * successful put; version 0 means "no record" for put_if (create only).
 *
 * The calls are blocking and are made from credd's store thread
 * (credd/storeq.c), never from the event loop; notify_fd is the one
 * exception: it is polled by the loop. A backend is used by one thread at
 * a time, except notify_fd/notify_next (loop thread only).
 *
 * Errors: -ENOENT no record; -ESTALE version mismatch (lost a CAS race);
 * -EIO/-ENOSPC/-EDQUOT/-EROFS storage failure; -ENOMEM.
 */
#ifndef CREDD_STORE_H
#define CREDD_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct blob {
	uint8_t *data; /* malloc'd; may hold sealed bytes only */
	size_t len;
	uint64_t version;
};

struct store_entry {
	char *user;
	uint64_t version;
	struct blob blob; /* filled by list when want_blobs */
};

struct store_ops {
	const char *name;
	/* Read the current blob and version. */
	int (*get)(struct store *st, const char *tenant, const char *user,
	    struct blob *out);
	/*
	 * Write data if the stored version equals expect (0: only if absent).
	 * On success *new_version = expect + 1.
	 */
	int (*put_if)(struct store *st, const char *tenant, const char *user,
	    const uint8_t *data, size_t len, uint64_t expect,
	    uint64_t *new_version);
	/* Delete if the stored version equals expect. */
	int (*del_if)(struct store *st, const char *tenant, const char *user,
	    uint64_t expect);
	/*
	 * List users in name order after cursor (NULL/"" = from the start), at
	 * most limit. *out is an array of *n entries (free with
	 * store_entries_free); *next is a malloc'd cursor, or NULL at the end.
	 */
	int (*list)(struct store *st, const char *tenant, const char *cursor,
	    size_t limit, int want_blobs, struct store_entry **out, size_t *n,
	    char **next);
	/*
	 * An fd that becomes readable when another node changed a record, or
	 * -1 when the backend has no notifications (file).
	 */
	int (*notify_fd)(struct store *st);
	/*
	 * After notify_fd is readable: fetch one change. Returns 1 and *user
	 * (malloc'd) for a change, or 1 and *user NULL after a reconnect
	 * (changes may have been missed: resync everything), 0 when none is
	 * left, or -errno. Backends announce their own writes to the other
	 * nodes (postgres: NOTIFY in the writing statement) and skip ours.
	 */
	int (*notify_next)(struct store *st, char **user);
	/*
	 * Cluster-wide exclusive lock on (tenant, user), taken around a
	 * refresh so that N nodes rotate one user's refresh token one at a
	 * time. Never waits: 0 when taken, -EAGAIN when another node holds
	 * it (retry later), -errno on failure. NULL for single-node backends
	 * (file): the caller treats that as always taken.
	 */
	int (*trylock)(struct store *st, const char *tenant, const char *user);
	int (*unlock)(struct store *st, const char *tenant, const char *user);
	/*
	 * Tell the other nodes that user changed (consent, rotation, logout,
	 * revoke); they receive it through notify_fd/notify_next. NULL when
	 * the backend has no other nodes.
	 */
	int (*notify)(struct store *st, const char *tenant, const char *user);
	/*
	 * notify_next failed (-ENOTCONN): the loop stops watching notify_fd
	 * and calls this on a timer until it returns 0 (then watches the new
	 * notify_fd; a resync marker follows) or an error other than
	 * -EINPROGRESS. Never blocks. NULL when there is nothing to reconnect.
	 */
	int (*notify_reconnect)(struct store *st);
	void (*close)(struct store *st);
};

struct store {
	const struct store_ops *ops;
	void *priv;
};

/*
 * Open the file backend rooted at dir. dir must exist, be a directory
 * owned by the effective uid, and not be group/other-writable or
 * readable (mode & 077 == 0); otherwise -EPERM. Record files are
 * created 0600 with O_NOFOLLOW; writes go to a temp file, fsync, rename,
 * fsync(dir). A lock file serialises read-compare-write across processes.
 */
int store_file_open(const char *dir, struct store **out);

/*
 * Open the PostgreSQL backend (credd/store_pg.c, built with ENTRA_PG).
 * dsn is a libpq connection string (TLS from sslmode/sslrootcert); node
 * names this credd in updated_by. Creates or migrates the schema.
 */
int store_pg_open(const char *dsn, const char *node, struct store **out);

void store_close(struct store *st);
void blob_clear(struct blob *b);
void store_entries_free(struct store_entry *e, size_t n);
/*
 * Call fn(arg, entry) for every record of tenant, page records at a
 * time, blobs included. fn returns < 0 to stop with that error, > 0 to
 * count the entry, 0 to skip it. *count is the number counted. 0 or the
 * first error (of the list or of fn).
 */
int store_each(struct store *st, const char *tenant, size_t page,
    int (*fn)(void *arg, const struct store_entry *e), void *arg,
    size_t *count);

#endif
