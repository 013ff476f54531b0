/*
 * cgroup.h - cgroup v2 paths of processes and of socket peers (issue 14).
 *
 * The cgroup v2 hierarchy is found through a mountinfo file (the first
 * "cgroup2" mount; never a hard-coded /sys/fs/cgroup). A process's
 * cgroup is the "0::PATH" line of /proc/PID/cgroup, a path relative to
 * that mount ("/" is the root cgroup).
 *
 * A socket peer is resolved race-free against pid reuse:
 *   - with SO_PEERPIDFD (Linux >= 6.5) the kernel hands over a pidfd of
 *     the process that connected: its pid is read from the pidfd's
 *     fdinfo, then its cgroup, then the pidfd must still be live (a live
 *     process's pid cannot be reused);
 *   - else (Debian 12's 6.1: the production path) pidfd_open on the
 *     SO_PEERCRED pid, its start time (field 22 of /proc/PID/stat), its
 *     cgroup, and proof that this process holds the peer's end of the
 *     connection (a socket:[INODE] link among /proc/PID/fd, the inode
 *     from sock_diag's UDIAG_SHOW_PEER); then the pidfd must be live and
 *     the start time unchanged. A pid reused by a process that never had
 *     the socket is refused, whichever cgroup it runs in.
 * Either way the peer's user namespace is compared with credd's own.
 *
 * Must never: trust a pid read once without a pidfd check after it,
 * attribute a connection to a process that does not hold its socket
 * (fallback), or follow a symlink into the cgroup tree.
 */
#ifndef CREDD_CGROUP_H
#define CREDD_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CGROUP_PATH_MAX 1024

/* How cgroup_peer_resolve found the peer. */
enum cgroup_via {
	CGROUP_VIA_PEERPIDFD = 1, /* SO_PEERPIDFD */
	CGROUP_VIA_FALLBACK = 2,  /* pidfd_open + start time + fd holder */
};

struct cgroup_peer {
	char path[CGROUP_PATH_MAX]; /* "/a/b"; "/" is the root cgroup */
	pid_t pid;
	int is_other_userns; /* the peer runs in another user namespace */
	enum cgroup_via via;
};

/*
 * The mount point of the first cgroup2 filesystem in mountinfo (a
 * /proc/self/mountinfo-format file) into dir. 0, -ENOENT (no cgroup v2
 * mounted), -ENAMETOOLONG, or -errno opening the file.
 */
int cgroup_mount_find(const char *mountinfo, char *dir, size_t dirsz);

/*
 * The cgroup v2 path of pid, read from proc_dir (a procfs mount,
 * "/proc") into path. 0, -ESRCH (gone), -ENOENT (no v2 line: a cgroup v1
 * only process), -ENAMETOOLONG, -EBADMSG.
 */
int cgroup_pid_path(const char *proc_dir, pid_t pid, char *path, size_t pathsz);

/* Start time of pid (field 22 of PROC/PID/stat, clock ticks). 0 or -errno. */
int cgroup_pid_start(const char *proc_dir, pid_t pid, uint64_t *start);

/*
 * Resolve the process at the other end of the connected Unix stream
 * socket fd, whose SO_PEERCRED pid is cred_pid. force_fallback skips
 * SO_PEERPIDFD. own_map: credd's own uid_map (cgroup_uid_map), or NULL. 0 with *out filled; -ESRCH when the peer is gone or its
 * pid now names another process (never attributed), -EPERM when the pid
 * does not hold the peer socket, other -errno when /proc cannot tell.
 */
int cgroup_peer_resolve(int fd, pid_t cred_pid, int force_fallback,
    const char *own_map, struct cgroup_peer *out);
/*
 * The uid_map of pid (0: our own) into buf. own_map of
 * cgroup_peer_resolve is ours read once (NULL: read each time). 0 or
 * -errno.
 */
int cgroup_uid_map(pid_t pid, char *buf, size_t bufsz);

/* 1 when the kernel answered SO_PEERPIDFD on fd (it is >= 6.5). */
int cgroup_has_peerpidfd(int fd);

/*
 * 1 when child is path or below it ("/a/b" is below "/a", "/ab" is not;
 * every path is below "/").
 */
int cgroup_path_contains(const char *path, const char *child);

/*
 * The checks before a cgroup may be bound to one user (issue 14), on the
 * hierarchy mounted at mnt:
 *   - never the root cgroup; only paths below prefix (NULL or "": any);
 *   - never one whose cgroup.procs a non-root uid can write (a process
 *     could migrate itself into it);
 *   - with uid set (uid != (uid_t)-1): no process in it or below it of
 *     another uid; root's processes only when they are opener or its
 *     descendants (the session's own privileged helpers, not a host
 *     service that shares the cgroup).
 * 0 when it may be bound; else -EPERM with why (a fixed string, never
 * a user's value) in *why, or -ENOENT when the cgroup does not exist.
 */
int cgroup_bind_check(const char *mnt, const char *proc_dir, const char *path,
    const char *prefix, uid_t uid, pid_t opener, const char **why);

/*
 * populated of cgroup.events: 1, 0, or -errno (-ENOENT: the cgroup is
 * gone).
 */
int cgroup_populated(const char *mnt, const char *path);

#endif
