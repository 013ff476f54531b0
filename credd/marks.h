/*
 * marks.h - per-user high-water marks of sealed records, kept on this
 * node and outside the store (issue 11, finding 8: rollback by a store
 * writer).
 *
 * Whoever can write the store without the key (a PostgreSQL role, a
 * backup restore) cannot forge a record, but can put back an older
 * sealed blob under any version number: the store's version is not
 * sealed. So every record carries, inside its sealed plaintext, an epoch
 * (microseconds at the creation of its row; a row created again after a
 * deletion gets a new, larger one) and a generation (+1 at every write by
 * a key holder; record.c). This node remembers, per (tenant, user), the
 * highest (epoch, generation) it has read or written, and whether it saw
 * that epoch deleted. A row below the mark, or of an epoch seen deleted,
 * is a rollback (marks_admits() says no) and is refused by record.c.
 *
 * What it cannot catch: a row this node never saw newer (a fresh node, a
 * node that never loaded that user), and a restore of this directory
 * together with the store (docs/threat-model.md, finding 8).
 *
 * Layout: DIR/m-00 .. DIR/m-ff, 256 shard files chosen by the first byte
 * of the key, BLAKE2b-128("tenant\0user\0") (names are not kept). Shard:
 * "CHM1" | count u32 BE | count x (key[16] | epoch u64 BE | gen u64 BE |
 * flags u8, bit 0 = deleted), sorted by key | BLAKE2b-128 of the bytes
 * before it. A change rewrites its shard: DIR/.tmp-*, fdatasync, rename,
 * fsync(DIR); DIR/.lock is held (flock) while open, so one credd uses a
 * directory. At 100k users: ~3.3 MB on disk, ~4 MB in memory, a shard of
 * ~13 KB rewritten per change.
 *
 * Not thread-safe: credd uses it from the store thread only (every change
 * is an fsync, never on the event loop). Must never: lower a mark, keep a
 * user name or anything of a record but its (epoch, generation), or log
 * (errors return as -errno).
 */
#ifndef CREDD_MARKS_H
#define CREDD_MARKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct marks;

struct marks_mark {
	uint64_t epoch; /* sealed epoch of the newest row seen */
	uint64_t gen;	/* its sealed generation */
	int deleted;	/* this node saw the rows of that epoch deleted */
};

/*
 * Create dir (mode 0700, owned by uid:gid) when it does not exist; for
 * credd started as root, before it drops privileges. 0 or -errno.
 */
int marks_prepare(const char *dir, uid_t uid, gid_t gid);

/*
 * Open dir and read every shard into memory. dir must be a directory
 * owned by the effective uid with mode & 077 == 0 (-EPERM otherwise),
 * not used by another process (-EBUSY). A shard that does not parse is
 * -EBADMSG. On failure err (may be NULL) names what failed, for the
 * administrator. Temp files of a crashed writer are removed.
 */
int marks_open(const char *dir, struct marks **out, char *err, size_t errsz);
void marks_close(struct marks *m);

/* The mark of (tenant, user): 0 and *out, or -ENOENT (none yet). */
int marks_get(const struct marks *m, const char *tenant, const char *user,
    struct marks_mark *out);

/*
 * Raise the mark of (tenant, user) to (epoch, gen) if that is newer than
 * it (for a deleted mark: a newer epoch only); never lowers it. A change
 * is written through before this returns. 0 (changed or not), or -errno
 * when the write failed: the mark in memory is raised anyway and the
 * file catches up at the next change of its shard.
 */
int marks_raise(struct marks *m, const char *tenant, const char *user,
    uint64_t epoch, uint64_t gen);

/*
 * This node saw (tenant, user)'s row of epoch (or older) deleted: the
 * mark becomes "deleted at max(epoch, its epoch)", so no row of that
 * epoch is admitted again; a newer epoch (a new consent) is. Written
 * through as marks_raise.
 */
int marks_deleted(struct marks *m, const char *tenant, const char *user,
    uint64_t epoch);

/*
 * Is a row of (epoch, gen) admissible against mark (NULL: no mark)? 1
 * yes: no mark, or at or above it (the same row read again is fine); for
 * a deleted mark, a newer epoch only. 0: a rollback.
 */
int marks_admits(const struct marks_mark *mark, uint64_t epoch, uint64_t gen);

/* Users with a mark (stats, tests). */
size_t marks_count(const struct marks *m);

#endif
