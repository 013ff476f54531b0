/*
 * ident.h - who a caller is, from sessions bound to cgroups (issue 14).
 *
 * At accept (server_set_identify) the peer's cgroup is resolved once,
 * race-free (cgroup.h); a caller in a bound cgroup, or below one, is
 * the innermost bound session's user and workload kind whatever its
 * uid. Everyone else is known by its SO_PEERCRED uid, and its kind is
 * the strictest among that uid's live sessions that could not be bound,
 * or default when it has none (fail closed: an app session without a
 * cgroup makes its uid's unbound callers app callers). A caller in
 * another user namespace is known only through a binding.
 *
 * Sessions are bound at session_open to the opener's cgroup when the
 * checks allow (cgroup_bind_check: never the root cgroup, below
 * [sessions] cgroup_prefix, nobody else's processes, not delegated),
 * else recorded by uid with why. A bound cgroup is watched (cgwatch.h):
 * its emptying or removal ends its sessions. Admin binds (the bind op)
 * are sessions too, bound to a named cgroup.
 *
 * Must never: take identity from anything the client says, bind a
 * cgroup the checks refused, or let an unbound caller of another user
 * namespace act as the uid number the kernel reports for it.
 */
#ifndef CREDD_IDENT_H
#define CREDD_IDENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "waiter.h"

struct config;
struct event_loop;
struct ident;
struct sessions;

struct ident_stats {
	uint64_t resolved;     /* connections whose cgroup was found */
	uint64_t unresolved;   /* ... not found (peer gone, /proc) */
	uint64_t bound_conns;  /* connections identified by a binding */
	uint64_t ended_cgroup; /* sessions ended by their cgroup */
	uint64_t resolve_ns;   /* time spent resolving, in all */
};

/*
 * mountinfo: where to find the cgroup2 mount (NULL: /proc/self/mountinfo).
 * Without one, no caller has a cgroup and no session binds. 0 or -errno.
 */
int ident_new(struct event_loop *ev, const struct config *cf,
    struct sessions *ss, const char *mountinfo, struct ident **out);
void ident_free(struct ident *id);
void ident_set_config(struct ident *id, const struct config *cf);
/* The cgroup2 mount point in use, or NULL. */
const char *ident_mount(const struct ident *id);

/* server_identify_cb (server.h): arg is a struct ident. */
int ident_identify(void *arg, int fd, struct caller *c);

/*
 * Bind session id (already open for uid) to the opener's cgroup, or
 * record why not (*why, a static string; NULL when bound). kind is the
 * session's workload kind. 0 either way, -ENOMEM.
 */
int ident_bind_session(struct ident *id, const struct caller *opener,
    const char *session, const char *user, uid_t uid, int kind,
    const char **why);
/*
 * Bind session id to cgroup (an admin bind: the orchestrator vouches
 * for what runs in it). 0, -EPERM with *why, -ENOENT (no such cgroup),
 * -EEXIST (bound to another user already), -ENOMEM.
 */
int ident_bind_cgroup(struct ident *id, const char *cgroup, const char *session,
    const char *user, int kind, const char **why);
/* Stop watching cgroups no session is bound to any more. */
void ident_gc(struct ident *id);

/*
 * The caller's effective workload kind, and the session it comes from
 * (*session borrowed, NULL for default). A bound caller: its session's.
 */
int ident_kind(struct ident *id, const struct caller *c, const char **session);

const struct ident_stats *ident_stats(const struct ident *id);
/* Cgroups watched (held by sessions), for tests and stats. */
size_t ident_watched(const struct ident *id);

#endif
