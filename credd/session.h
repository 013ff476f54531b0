/*
 * session.h - open PAM sessions (session_open / session_close).
 *
 * In memory only: a session id (128 random bits, hex) bound to a user
 * and uid, with the service, tty and workload for status and audit. The
 * consent outlives sessions; this table only counts them (and, with the
 * SDK endpoint, will hold its per-session secrets).
 */
#ifndef CREDD_SESSION_H
#define CREDD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SESSION_ID_LEN 32

struct sessions;

struct sessions *sessions_new(void);
void sessions_free(struct sessions *ss);
/* New session; id receives SESSION_ID_LEN hex chars + NUL. 0 or -errno. */
int sessions_open(struct sessions *ss, const char *user, uid_t uid,
    const char *service, const char *tty, const char *workload,
    char id[SESSION_ID_LEN + 1]);
/* -ENOENT if no such session for this user. */
int sessions_close(struct sessions *ss, const char *user, const char *id);
size_t sessions_count(const struct sessions *ss);

#endif
