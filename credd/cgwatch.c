/*
 * cgwatch.c - inotify on bound cgroups (cgwatch.h).
 *
 * One inotify descriptor on the loop. inotify gives one watch
 * descriptor per inode, so a parent directory shared by several bound
 * cgroups is one watch: watches are reference-counted in a small array.
 * Paths live on a list; each event scans it, O(paths): bindings change
 * at login rate.
 *
 * Must never: call the callback while walking the list (it may delete
 * entries), or leave a watch behind its last holder.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/queue.h>
#include <unistd.h>

#include "cgroup.h"
#include "cgwatch.h"
#include "event.h"

struct wref {
	int wd;
	unsigned refs;
};

struct cg {
	LIST_ENTRY(cg) link;
	char *path;
	const char *base; /* in path: the last component */
	int wd_events, wd_parent;
	unsigned holds;
	int was_populated;
	int fired; /* reported gone; not again */
};

struct cgwatch {
	struct event_loop *ev;
	int fd;
	char *mnt;
	cgwatch_fn *fn;
	void *arg;
	LIST_HEAD(, cg) cgs;
	size_t n;
	struct wref *w;
	size_t nw, capw;
};

static int
wref_add(struct cgwatch *cw, const char *file, uint32_t mask)
{
	struct wref *nw;
	size_t i;
	int wd;

	wd = inotify_add_watch(cw->fd, file, mask);
	if (wd < 0)
		return -errno;
	for (i = 0; i < cw->nw; i++)
		if (cw->w[i].wd == wd) {
			cw->w[i].refs++;
			return wd;
		}
	if (cw->nw == cw->capw) {
		size_t cap = cw->capw ? cw->capw * 2 : 16;

		nw = realloc(cw->w, cap * sizeof(*nw));
		if (nw == NULL) {
			(void)inotify_rm_watch(cw->fd, wd);
			return -ENOMEM;
		}
		cw->w = nw;
		cw->capw = cap;
	}
	cw->w[cw->nw].wd = wd;
	cw->w[cw->nw].refs = 1;
	cw->nw++;
	return wd;
}

static void
wref_del(struct cgwatch *cw, int wd)
{
	size_t i;

	if (wd < 0)
		return;
	for (i = 0; i < cw->nw; i++) {
		if (cw->w[i].wd != wd)
			continue;
		if (--cw->w[i].refs == 0) {
			(void)inotify_rm_watch(cw->fd, wd); /* EINVAL: gone */
			cw->w[i] = cw->w[--cw->nw];
		}
		return;
	}
}

static struct cg *
cg_find(const struct cgwatch *cw, const char *path)
{
	struct cg *c;

	LIST_FOREACH(c, &cw->cgs, link)
	if (strcmp(c->path, path) == 0)
		return c;
	return NULL;
}

/* Paths to report, collected first: the callback may delete entries. */
struct fire {
	char **paths;
	int *gone;
	size_t n, cap;
};

static void
fire_add(struct fire *f, struct cg *c, int gone)
{
	if (c->fired || f->n == f->cap)
		return; /* the rest on the next event */
	f->paths[f->n] = strdup(c->path);
	if (f->paths[f->n] == NULL)
		return;
	f->gone[f->n++] = gone;
	c->fired = gone; /* an emptied cgroup may be refilled and empty again */
}

static void
on_event(struct cgwatch *cw, const struct inotify_event *e, struct fire *f)
{
	struct cg *c;
	int p;

	LIST_FOREACH(c, &cw->cgs, link)
	{
		if (e->mask & IN_IGNORED) {
			if (c->wd_events == e->wd || c->wd_parent == e->wd)
				fire_add(f, c, 1);
			continue;
		}
		if ((e->mask & IN_MODIFY) && c->wd_events == e->wd) {
			p = cgroup_populated(cw->mnt, c->path);
			if (p == -ENOENT)
				fire_add(f, c, 1);
			else if (p == 0 && c->was_populated) {
				c->was_populated = 0;
				fire_add(f, c, 0);
			} else if (p == 1)
				c->was_populated = 1;
		}
		if ((e->mask & IN_DELETE) && c->wd_parent == e->wd &&
		    e->len > 0 && strcmp(e->name, c->base) == 0)
			fire_add(f, c, 1);
	}
}

static void
read_cb(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	struct cgwatch *cw = arg;
	char buf[8192]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	char *paths[64];
	int gone[64];
	struct fire f = { paths, gone, 0, 64 };
	const struct inotify_event *e;
	ssize_t n;
	char *p;
	size_t i;

	(void)ev;
	(void)revents;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (p = buf; p < buf + n; p += sizeof(*e) + e->len) {
			e = (const struct inotify_event *)(const void *)p;
			on_event(cw, e, &f);
		}
	}
	for (i = 0; i < f.n; i++) {
		cw->fn(cw->arg, f.paths[i], f.gone[i]);
		free(f.paths[i]);
	}
}

int
cgwatch_new(struct event_loop *ev, const char *mnt, cgwatch_fn *fn, void *arg,
    struct cgwatch **out)
{
	struct cgwatch *cw;
	int r;

	*out = NULL;
	cw = calloc(1, sizeof(*cw));
	if (cw == NULL || (cw->mnt = strdup(mnt)) == NULL) {
		free(cw);
		return -ENOMEM;
	}
	cw->ev = ev;
	cw->fn = fn;
	cw->arg = arg;
	LIST_INIT(&cw->cgs);
	cw->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (cw->fd < 0) {
		r = -errno;
		goto fail;
	}
	r = event_add(ev, cw->fd, EPOLLIN, read_cb, cw);
	if (r < 0) {
		(void)close(cw->fd);
		goto fail;
	}
	*out = cw;
	return 0;
fail:
	free(cw->mnt);
	free(cw);
	return r;
}

static void
cg_free(struct cgwatch *cw, struct cg *c)
{
	LIST_REMOVE(c, link);
	wref_del(cw, c->wd_events);
	wref_del(cw, c->wd_parent);
	free(c->path);
	free(c);
	cw->n--;
}

void
cgwatch_free(struct cgwatch *cw)
{
	if (cw == NULL)
		return;
	while (!LIST_EMPTY(&cw->cgs))
		cg_free(cw, LIST_FIRST(&cw->cgs));
	event_del(cw->ev, cw->fd);
	(void)close(cw->fd);
	free(cw->w);
	free(cw->mnt);
	free(cw);
}

int
cgwatch_add(struct cgwatch *cw, const char *path)
{
	char file[PATH_MAX];
	struct cg *c = cg_find(cw, path);
	char *slash;
	int r;

	if (c != NULL) {
		c->holds++;
		return 0;
	}
	if (path[0] != '/' || strcmp(path, "/") == 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->path = strdup(path)) == NULL) {
		free(c);
		return -ENOMEM;
	}
	c->base = strrchr(c->path, '/') + 1;
	c->holds = 1;
	c->wd_events = c->wd_parent = -1;
	r = -ENAMETOOLONG;
	if (snprintf(file, sizeof(file), "%s%s/cgroup.events", cw->mnt, path) >=
	    (int)sizeof(file))
		goto fail;
	r = c->wd_events = wref_add(cw, file, IN_MODIFY);
	if (r < 0)
		goto fail;
	(void)snprintf(file, sizeof(file), "%s%s", cw->mnt, path);
	slash = strrchr(file, '/');
	*slash = '\0';
	r = c->wd_parent = wref_add(cw, file, IN_DELETE | IN_ONLYDIR);
	if (r < 0)
		goto fail;
	/* Between the bind check and now it may have emptied or gone. */
	r = cgroup_populated(cw->mnt, path);
	if (r < 0)
		goto fail;
	c->was_populated = r;
	LIST_INSERT_HEAD(&cw->cgs, c, link);
	cw->n++;
	return 0;
fail:
	wref_del(cw, c->wd_events);
	wref_del(cw, c->wd_parent);
	free(c->path);
	free(c);
	return r == -ENOTDIR ? -ENOENT : r;
}

int
cgwatch_has(const struct cgwatch *cw, const char *path)
{
	return cg_find(cw, path) != NULL;
}

void
cgwatch_del(struct cgwatch *cw, const char *path)
{
	struct cg *c = cg_find(cw, path);

	if (c != NULL && --c->holds == 0)
		cg_free(cw, c);
}

void
cgwatch_prune(struct cgwatch *cw, int (*keep)(void *, const char *), void *arg)
{
	struct cg *c, *next;

	for (c = LIST_FIRST(&cw->cgs); c != NULL; c = next) {
		next = LIST_NEXT(c, link);
		if (!keep(arg, c->path))
			cg_free(cw, c);
	}
}

size_t
cgwatch_count(const struct cgwatch *cw)
{
	return cw->n;
}

size_t
cgwatch_watches(const struct cgwatch *cw)
{
	return cw->nw;
}
