/*
 * ident.c - caller identity from cgroup-bound sessions (ident.h).
 *
 * Resolution runs on the loop at accept: a pidfd, a few small reads of
 * /proc (procfs, no disk), once per connection, never per request. The
 * bind checks read the cgroup's process list at session_open and bind,
 * O(processes in the cgroup), at login rate.
 *
 * Must never: bind without cgroup_bind_check, or end a session for a
 * cgroup event of another path.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "cgroup.h"
#include "cgwatch.h"
#include "config.h"
#include "ident.h"
#include "log.h"
#include "session.h"
#include "workload.h"

#define IDENT_KINDS_MAX 64 /* unbound sessions of one uid looked at */

struct ident {
	struct event_loop *ev;
	const struct config *cf;
	struct sessions *ss;
	char mnt[PATH_MAX];
	int has_mnt;
	char own_map[1024]; /* our uid_map: another one is a user namespace */
	struct cgwatch *cw;
	struct ident_stats st;
};

/* A bound cgroup emptied or went: its sessions end. */
static void
cgroup_gone(void *arg, const char *path, int gone)
{
	struct ident *id = arg;
	size_t n;

	/* An admin binding outlives its containers: only removal ends it. */
	n = sessions_end_cgroup(id->ss, path, gone ? NULL : "bind",
	    gone ? "cgroup_removed" : "cgroup_empty", sessions_audit_end, id);
	id->st.ended_cgroup += n;
	ident_gc(id); /* path, and any left by sessions that ended idle */
	if (n > 0)
		log_debug("sessions: %zu ended: their cgroup %s", n,
		    gone ? "was removed" : "emptied");
}

int
ident_new(struct event_loop *ev, const struct config *cf, struct sessions *ss,
    const char *mountinfo, struct ident **out)
{
	struct ident *id;
	int r;

	*out = NULL;
	id = calloc(1, sizeof(*id));
	if (id == NULL)
		return -ENOMEM;
	id->ev = ev;
	id->cf = cf;
	id->ss = ss;
	if (cgroup_uid_map(0, id->own_map, sizeof(id->own_map)) < 0)
		id->own_map[0] = '\0'; /* read per connection instead */
	r = cgroup_mount_find(mountinfo != NULL ? mountinfo :
						  "/proc/self/mountinfo",
	    id->mnt, sizeof(id->mnt));
	if (r == 0 && ev != NULL) {
		r = cgwatch_new(ev, id->mnt, cgroup_gone, id, &id->cw);
		if (r < 0) {
			free(id);
			return r;
		}
		id->has_mnt = 1;
	} else if (r < 0)
		log_warnx("sessions: no cgroup v2 mount (%s): callers are "
			  "known by uid only, no session binds a cgroup",
		    strerror(-r));
	*out = id;
	return 0;
}

void
ident_free(struct ident *id)
{
	if (id == NULL)
		return;
	cgwatch_free(id->cw);
	free(id);
}

void
ident_set_config(struct ident *id, const struct config *cf)
{
	if (id != NULL)
		id->cf = cf;
}

const char *
ident_mount(const struct ident *id)
{
	return id->has_mnt ? id->mnt : NULL;
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
ident_identify(void *arg, int fd, struct caller *c)
{
	struct ident *id = arg;
	struct cgroup_peer peer;
	struct sessions_info in;
	uint64_t t0;
	int r;

	c->kind = -1;
	if (id == NULL || !id->has_mnt || !id->cf->cgroups)
		return 0;
	t0 = mono_ns();
	r = cgroup_peer_resolve(fd, c->pid, !id->cf->peer_pidfd,
	    id->own_map[0] != '\0' ? id->own_map : NULL, &peer);
	id->st.resolve_ns += mono_ns() - t0;
	if (r < 0) {
		id->st.unresolved++;
		c->resolve_err = r;
		return 0; /* known by uid; its kind fails closed */
	}
	id->st.resolved++;
	c->is_other_userns = peer.is_other_userns;
	c->cgroup = strdup(peer.path);
	if (c->cgroup == NULL)
		return -ENOMEM;
	if (sessions_bound_find(id->ss, peer.path, &in) < 0)
		return 0;
	c->session = strdup(in.id);
	c->user = strdup(in.user);
	if (c->session == NULL || c->user == NULL)
		return -ENOMEM; /* the server frees them */
	c->uid = in.uid;
	c->kind = in.kind;
	id->st.bound_conns++;
	return 0;
}

/* Watched once per path: ident_gc drops it when no session holds it. */
static int
watch(struct ident *id, const char *path)
{
	if (cgwatch_has(id->cw, path))
		return 0;
	return cgwatch_add(id->cw, path);
}

int
ident_bind_session(struct ident *id, const struct caller *opener,
    const char *session, const char *user, uid_t uid, int kind,
    const char **why)
{
	const char *other;
	int r;

	*why = NULL;
	if (id == NULL)
		return 0; /* unit tests of dispatch: no cgroups at all */
	if (!id->has_mnt || !id->cf->cgroups)
		*why = "no cgroup v2 here, or [sessions] cgroups = no";
	else if (opener->cgroup == NULL)
		*why = "the opener's cgroup could not be read";
	else if (sessions_cgroup_user(id->ss, opener->cgroup, &other) == 0 &&
	    strcmp(other, user) != 0)
		*why = "its cgroup is bound to another user's session";
	else {
		r = cgroup_bind_check(id->mnt, "/proc", opener->cgroup,
		    id->cf->cgroup_prefix, uid, opener->pid, why);
		if (r == -ENOENT)
			*why = "its cgroup is gone";
		else if (r < 0 && *why == NULL)
			*why = "its cgroup cannot be checked";
		else if (r == 0) {
			r = watch(id, opener->cgroup);
			if (r < 0)
				*why = r == -ENOSPC ? "no inotify watch left" :
						      "its cgroup is gone";
		}
	}
	if (*why != NULL)
		return sessions_set_binding(id->ss, session, kind, NULL, *why);
	r = sessions_set_binding(id->ss, session, kind, opener->cgroup, NULL);
	if (r < 0)
		ident_gc(id);
	return r;
}

int
ident_bind_cgroup(struct ident *id, const char *cgroup, const char *session,
    const char *user, int kind, const char **why)
{
	const char *other;
	int r;

	*why = NULL;
	if (id == NULL || !id->has_mnt) {
		*why = "no cgroup v2 mount";
		return -EPERM;
	}
	if (sessions_cgroup_user(id->ss, cgroup, &other) == 0 &&
	    strcmp(other, user) != 0) {
		*why = "the cgroup is bound to another user";
		return -EEXIST;
	}
	r = cgroup_bind_check(id->mnt, "/proc", cgroup, id->cf->cgroup_prefix,
	    (uid_t)-1, 0, why);
	if (r < 0)
		return r;
	r = watch(id, cgroup);
	if (r < 0) {
		*why = r == -ENOSPC ? "no inotify watch left" :
				      "the cgroup is gone";
		return r == -ENOSPC ? -EPERM : r;
	}
	r = sessions_set_binding(id->ss, session, kind, cgroup, NULL);
	if (r < 0)
		ident_gc(id);
	return r;
}

static int
is_held(void *arg, const char *path)
{
	const char *user;

	return sessions_cgroup_user(arg, path, &user) == 0;
}

void
ident_gc(struct ident *id)
{
	if (id != NULL && id->cw != NULL)
		cgwatch_prune(id->cw, is_held, id->ss);
}

int
ident_kind(struct ident *id, const struct caller *c, const char **session)
{
	const char *ids[IDENT_KINDS_MAX];
	int kinds[IDENT_KINDS_MAX];
	size_t n;
	int i;

	*session = NULL;
	if (c->session != NULL) {
		*session = c->session;
		return c->kind;
	}
	if (id == NULL)
		return CONFIG_WL_DEFAULT;
	n = sessions_unbound_kinds(id->ss, c->uid, kinds, IDENT_KINDS_MAX, ids);
	i = workload_strictest(id->cf, kinds, n);
	if (i < 0)
		return CONFIG_WL_DEFAULT;
	*session = ids[i];
	return kinds[i];
}

const struct ident_stats *
ident_stats(const struct ident *id)
{
	return &id->st;
}

size_t
ident_watched(const struct ident *id)
{
	return id->cw != NULL ? cgwatch_count(id->cw) : 0;
}
