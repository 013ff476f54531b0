/*
 * cgwatch.h - watch bound cgroups on the loop (issue 14): inotify on
 * each cgroup's cgroup.events (its populated flag going from 1 to 0)
 * and on its parent directory (the cgroup removed: cgroupfs sends no
 * event on the files of a removed cgroup, only IN_DELETE on the parent).
 *
 * Paths are cgroup v2 paths below the mount given at cgwatch_new, and
 * are reference-counted: each bound session adds its path once and
 * deletes it when it ends. The callback hears of a path at most once
 * per emptying or removal; it may call cgwatch_del.
 *
 * Must never: read or poll the cgroup tree on a timer (the kernel tells
 * us), or keep an inotify watch for a path nobody holds.
 */
#ifndef CREDD_CGWATCH_H
#define CREDD_CGWATCH_H

#include <stddef.h>

struct event_loop;
struct cgwatch;

/* gone: 0 the cgroup emptied (populated 1 -> 0), 1 it was removed. */
typedef void cgwatch_fn(void *arg, const char *path, int gone);

/* 0 or -errno (inotify could not start). mnt is copied. */
int cgwatch_new(struct event_loop *ev, const char *mnt, cgwatch_fn *fn,
    void *arg, struct cgwatch **out);
/* Stops every watch. NULL does nothing. */
void cgwatch_free(struct cgwatch *cw);
/*
 * Hold path: watched from now (a second add only counts). 0, -ENOENT
 * when the cgroup is gone already, -ENOSPC (inotify's watch limit),
 * -ENOMEM.
 */
int cgwatch_add(struct cgwatch *cw, const char *path);
/* 1 when path is watched. */
int cgwatch_has(const struct cgwatch *cw, const char *path);
/* Release one hold; the last one stops the watches. */
void cgwatch_del(struct cgwatch *cw, const char *path);
/* Drop every path keep(arg, path) returns 0 for, whatever its holds. */
void cgwatch_prune(struct cgwatch *cw, int (*keep)(void *, const char *),
    void *arg);
/* Paths held, and inotify watches in use (for tests and stats). */
size_t cgwatch_count(const struct cgwatch *cw);
size_t cgwatch_watches(const struct cgwatch *cw);

#endif
