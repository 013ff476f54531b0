/*
 * cgroup.c - cgroup v2 paths of processes and socket peers (cgroup.h).
 *
 * credd runs unprivileged, so it reads only what /proc shows every uid:
 * PID/cgroup, PID/stat, PID/status, PID/uid_map and its own fdinfo
 * (never PID/fd or PID/ns, which need ptrace access). The fallback's
 * proof that the pid still names the peer is therefore: a pidfd taken
 * first, the start time read before and after the cgroup, the pidfd
 * still live after (a live process's pid is not reused), and the peer's
 * end of the connection still open (a peer that exited closed it: then
 * the pid may name anyone and nothing is attributed). The window left
 * (the peer forked, its child keeps the socket, the peer exits and its
 * pid is reused before credd accepts) is closed only by SO_PEERPIDFD;
 * docs/containers.md says so.
 *
 * The bind checks read cgroup.procs of a subtree: O(processes in it),
 * run at session_open and bind only, never per request.
 *
 * Must never: follow a symlink into the cgroup tree, attribute a peer
 * whose pidfd check failed, or log a path a caller chose unquoted.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5; Debian 12's headers lack it */
#endif

#define CGROUP_FILE_MAX 8192 /* /proc/PID/cgroup, stat, uid_map */
#define CGROUP_DEPTH_MAX 32  /* bind checks walk at most this deep */

static int
read_small(int dfd, const char *path, char *buf, size_t bufsz)
{
	ssize_t n;
	size_t len = 0;
	int fd, r = 0;

	fd = openat(dfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	while (len < bufsz - 1) {
		n = read(fd, buf + len, bufsz - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	(void)close(fd);
	buf[len] = '\0';
	return r < 0 ? r : (int)len;
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void
unescape(char *s)
{
	char *w = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
			    (s[3] - '0'));
			s += 3;
		} else
			*w++ = *s;
	}
	*w = '\0';
}

int
cgroup_mount_find(const char *mountinfo, char *dir, size_t dirsz)
{
	char *line = NULL, *save, *f, *mnt, *sep;
	size_t cap = 0;
	int r = -ENOENT, i;
	FILE *fp;

	dir[0] = '\0';
	fp = fopen(mountinfo, "re");
	if (fp == NULL)
		return -errno;
	while (r == -ENOENT && getline(&line, &cap, fp) > 0) {
		/* id parent maj:min root MOUNT opts [optional...] - TYPE ... */
		sep = strstr(line, " - ");
		if (sep == NULL)
			continue;
		if (strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		mnt = NULL;
		f = strtok_r(line, " ", &save);
		for (i = 0; f != NULL && i < 4; i++)
			f = strtok_r(NULL, " ", &save);
		mnt = f;
		if (mnt == NULL)
			continue;
		unescape(mnt);
		if (strlen(mnt) >= dirsz)
			r = -ENAMETOOLONG;
		else {
			memcpy(dir, mnt, strlen(mnt) + 1);
			r = 0;
		}
	}
	free(line);
	(void)fclose(fp);
	return r;
}

int
cgroup_pid_path(const char *proc_dir, pid_t pid, char *path, size_t pathsz)
{
	char file[PATH_MAX], buf[CGROUP_FILE_MAX], *p, *nl;
	size_t len;
	int r;

	path[0] = '\0';
	(void)snprintf(file, sizeof(file), "%s/%d/cgroup", proc_dir, (int)pid);
	r = read_small(AT_FDCWD, file, buf, sizeof(buf));
	if (r == -ENOENT)
		return -ESRCH;
	if (r < 0)
		return r;
	/* The v2 line is "0::PATH"; v1 lines have a hierarchy id > 0. */
	for (p = buf; p != NULL && *p != '\0'; p = nl != NULL ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (strncmp(p, "0::", 3) != 0)
			continue;
		p += 3;
		if (p[0] != '/')
			return -EBADMSG;
		len = strlen(p);
		/* " (deleted)": the cgroup went away under a zombie. */
		if (len >= pathsz)
			return -ENAMETOOLONG;
		memcpy(path, p, len + 1);
		return 0;
	}
	return -ENOENT;
}

int
cgroup_pid_start(const char *proc_dir, pid_t pid, uint64_t *start)
{
	char file[PATH_MAX], buf[CGROUP_FILE_MAX], *p, *end;
	unsigned long long v;
	int r, i;

	*start = 0;
	(void)snprintf(file, sizeof(file), "%s/%d/stat", proc_dir, (int)pid);
	r = read_small(AT_FDCWD, file, buf, sizeof(buf));
	if (r == -ENOENT)
		return -ESRCH;
	if (r < 0)
		return r;
	/* comm may hold spaces and ')': fields count from the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -EBADMSG;
	p++;
	/* After ')': field 3 (state) ... field 22 (starttime). */
	for (i = 3; i < 22 && p != NULL; i++)
		p = strchr(p + 1, ' ');
	if (p == NULL)
		return -EBADMSG;
	errno = 0;
	v = strtoull(p + 1, &end, 10);
	if (errno != 0 || end == p + 1)
		return -EBADMSG;
	*start = v;
	return 0;
}

static int
sys_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Live: the process exists (a zombie too: its pid is not free yet). */
static int
pidfd_is_live(int pidfd)
{
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0)
		return 1;
	return errno == EPERM; /* exists, another uid's */
}

/* The pid a pidfd names, from our own fdinfo ("Pid:\tN"; <= 0: gone). */
static int
pidfd_pid(int pidfd, pid_t *pid)
{
	char file[64], buf[CGROUP_FILE_MAX], *p;
	long v;
	int r;

	(void)snprintf(file, sizeof(file), "/proc/self/fdinfo/%d", pidfd);
	r = read_small(AT_FDCWD, file, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (strncmp(buf, "Pid:", 4) == 0)
		p = buf + 4;
	else if ((p = strstr(buf, "\nPid:")) != NULL)
		p += 5;
	else
		return -EBADMSG;
	v = strtol(p, NULL, 10);
	if (v <= 0)
		return -ESRCH;
	*pid = (pid_t)v;
	return 0;
}

int
cgroup_uid_map(pid_t pid, char *buf, size_t bufsz)
{
	char file[64];
	int r;

	if (pid > 0)
		(void)snprintf(file, sizeof(file), "/proc/%d/uid_map",
		    (int)pid);
	else
		(void)snprintf(file, sizeof(file), "/proc/self/uid_map");
	r = read_small(AT_FDCWD, file, buf, bufsz);
	return r < 0 ? r : 0;
}

/*
 * 1 when pid's user namespace maps uids as ours (own, or read now when
 * NULL) does: read, not ptrace.
 */
static int
same_uid_map(pid_t pid, const char *own)
{
	char a[CGROUP_FILE_MAX], b[CGROUP_FILE_MAX];
	int r;

	r = cgroup_uid_map(pid, b, sizeof(b));
	if (r == 0 && own == NULL && (r = cgroup_uid_map(0, a, sizeof(a))) == 0)
		own = a;
	if (r < 0)
		return r;
	return strcmp(own, b) == 0;
}

/* The peer's end is closed (it exited, nobody kept the socket). */
static int
peer_is_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, 0) < 0)
		return 0;
	return (p.revents & POLLHUP) != 0;
}

int
cgroup_has_peerpidfd(int fd)
{
	socklen_t len = sizeof(int);
	int pidfd = -1;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
		return 0;
	(void)close(pidfd);
	return 1;
}

/* The common tail: cgroup, user namespace, then the pidfd still live. */
static int
resolve_pid(int pidfd, pid_t pid, const char *own_map, struct cgroup_peer *out,
    uint64_t *start)
{
	int r;

	out->pid = pid;
	if (start != NULL && (r = cgroup_pid_start("/proc", pid, start)) < 0)
		return r;
	r = cgroup_pid_path("/proc", pid, out->path, sizeof(out->path));
	if (r < 0)
		return r;
	r = same_uid_map(pid, own_map);
	if (r < 0)
		return r;
	out->is_other_userns = !r;
	return pidfd_is_live(pidfd) ? 0 : -ESRCH;
}

int
cgroup_peer_resolve(int fd, pid_t cred_pid, int force_fallback,
    const char *own_map, struct cgroup_peer *out)
{
	socklen_t len = sizeof(int);
	uint64_t start1 = 0, start2 = 0;
	int pidfd = -1, r;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	if (!force_fallback &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) {
		out->via = CGROUP_VIA_PEERPIDFD;
		r = pidfd_pid(pidfd, &pid);
		if (r == 0)
			r = resolve_pid(pidfd, pid, own_map, out, NULL);
		goto out;
	}
	if (!force_fallback && errno == ESRCH)
		return -ESRCH; /* the kernel knows: the peer is gone */
	out->via = CGROUP_VIA_FALLBACK;
	if (cred_pid <= 0)
		return -ESRCH;
	pidfd = sys_pidfd_open(cred_pid);
	if (pidfd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	r = resolve_pid(pidfd, cred_pid, own_map, out, &start1);
	if (r == 0)
		r = cgroup_pid_start("/proc", cred_pid, &start2);
	if (r == 0 && start1 != start2)
		r = -ESRCH; /* another process under that pid meanwhile */
	if (r == 0 && peer_is_gone(fd))
		r = -ESRCH; /* the pid may name anyone now */
out:
	if (pidfd >= 0)
		(void)close(pidfd);
	if (r < 0)
		out->path[0] = '\0';
	return r;
}

int
cgroup_path_contains(const char *path, const char *child)
{
	size_t n = strlen(path);

	if (n > 0 && path[n - 1] == '/')
		n--; /* "/" and "/a/" */
	if (strncmp(path, child, n) != 0)
		return 0;
	return child[n] == '\0' || child[n] == '/';
}

/* The real and effective uid of pid; 0 or -errno. */
static int
pid_uids(int procfd, pid_t pid, uid_t *ruid, uid_t *euid)
{
	char file[64], buf[CGROUP_FILE_MAX];
	unsigned long r, e;
	const char *p;
	int n;

	(void)snprintf(file, sizeof(file), "%d/status", (int)pid);
	n = read_small(procfd, file, buf, sizeof(buf));
	if (n < 0)
		return n;
	p = strstr(buf, "\nUid:");
	if (p == NULL || sscanf(p + 5, "%lu %lu", &r, &e) != 2)
		return -EBADMSG;
	*ruid = (uid_t)r;
	*euid = (uid_t)e;
	return 0;
}

/* 1 when pid is anc or one of its descendants (PPid chain). */
static int
pid_descends(int procfd, pid_t pid, pid_t anc)
{
	char file[64], buf[CGROUP_FILE_MAX], *p;
	int i, n;

	for (i = 0; i < 64 && pid > 1; i++) {
		if (pid == anc)
			return 1;
		(void)snprintf(file, sizeof(file), "%d/status", (int)pid);
		n = read_small(procfd, file, buf, sizeof(buf));
		if (n < 0 || (p = strstr(buf, "\nPPid:")) == NULL)
			return 0;
		pid = (pid_t)strtol(p + 6, NULL, 10);
	}
	return pid == anc;
}

struct walk {
	int procfd;
	uid_t uid;
	pid_t opener;
	const char *why;
};

/* Every process in dfd's cgroup and below belongs to the session. */
static int
walk_procs(struct walk *w, int dfd, int depth)
{
	char buf[CGROUP_FILE_MAX * 8], *p, *nl;
	struct dirent *de;
	uid_t ruid, euid;
	DIR *d;
	int r, sub;

	if (depth > CGROUP_DEPTH_MAX) {
		w->why = "the cgroup tree below it is too deep to check";
		return -EPERM;
	}
	r = read_small(dfd, "cgroup.procs", buf, sizeof(buf));
	if (r < 0)
		return r;
	if ((size_t)r == sizeof(buf) - 1) {
		w->why = "it holds too many processes to check";
		return -EPERM;
	}
	for (p = buf; *p != '\0'; p = nl + 1) {
		pid_t pid = (pid_t)strtol(p, NULL, 10);

		nl = strchr(p, '\n');
		if (nl == NULL)
			break;
		if (pid <= 0 || pid_uids(w->procfd, pid, &ruid, &euid) < 0)
			continue; /* gone meanwhile */
		if ((ruid == w->uid || ruid == 0) &&
		    (euid == w->uid || euid == 0) &&
		    (ruid != 0 && euid != 0 ?
			    1 :
			    pid_descends(w->procfd, pid, w->opener)))
			continue;
		w->why = ruid == 0 || euid == 0 ?
		    "it holds a root process that is not the session's own "
		    "(a host service)" :
		    "it holds processes of another uid";
		return -EPERM;
	}
	sub = dup(dfd);
	if (sub < 0)
		return -errno;
	d = fdopendir(sub);
	if (d == NULL) {
		(void)close(sub);
		return -errno;
	}
	r = 0;
	while (r == 0 && (de = readdir(d)) != NULL) {
		int cfd;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		cfd = openat(dfd, de->d_name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0)
			continue; /* removed meanwhile */
		r = walk_procs(w, cfd, depth + 1);
		(void)close(cfd);
	}
	(void)closedir(d);
	return r;
}

static int
procs_writable_by_user(int dfd)
{
	struct stat st;

	if (fstatat(dfd, "cgroup.procs", &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 1; /* cannot tell: not bound */
	if (st.st_uid != 0 && (st.st_mode & S_IWUSR))
		return 1; /* delegated to a user */
	if (st.st_gid != 0 && (st.st_mode & S_IWGRP))
		return 1;
	return (st.st_mode & S_IWOTH) != 0;
}

int
cgroup_bind_check(const char *mnt, const char *proc_dir, const char *path,
    const char *prefix, uid_t uid, pid_t opener, const char **why)
{
	struct walk w = { .uid = uid, .opener = opener };
	int mfd, dfd, r;

	*why = NULL;
	if (path[0] != '/' || strstr(path, "/..") != NULL ||
	    strstr(path, "/./") != NULL) {
		*why = "not a cgroup path";
		return -EPERM;
	}
	if (strcmp(path, "/") == 0) {
		*why = "it is the root cgroup";
		return -EPERM;
	}
	if (prefix != NULL && prefix[0] != '\0' &&
	    (!cgroup_path_contains(prefix, path) ||
		strcmp(prefix, path) == 0)) {
		*why = "it is not below [sessions] cgroup_prefix";
		return -EPERM;
	}
	mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return -errno;
	dfd = openat(mfd, path + 1,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	(void)close(mfd);
	if (dfd < 0)
		return errno == ENOTDIR ? -ENOENT : -errno;
	if (procs_writable_by_user(dfd)) {
		*why = "its cgroup.procs is writable by a non-root uid "
		       "(a delegated cgroup)";
		(void)close(dfd);
		return -EPERM;
	}
	r = 0;
	if (uid != (uid_t)-1) {
		w.procfd = open(proc_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (w.procfd < 0)
			r = -errno;
		else {
			r = walk_procs(&w, dfd, 0);
			(void)close(w.procfd);
		}
		*why = w.why;
	}
	(void)close(dfd);
	return r;
}

int
cgroup_populated(const char *mnt, const char *path)
{
	char file[CGROUP_PATH_MAX + 64], buf[512], *p;
	int r;

	if (snprintf(file, sizeof(file), "%s%s/cgroup.events", mnt, path) >=
	    (int)sizeof(file))
		return -ENAMETOOLONG;
	r = read_small(AT_FDCWD, file, buf, sizeof(buf));
	if (r < 0)
		return r == -ENOTDIR ? -ENOENT : r;
	p = strstr(buf, "populated ");
	if (p == NULL)
		return -EBADMSG;
	return p[10] == '1';
}
