/*
 * session.h - open PAM sessions (session_open / session_close).
 *
 * In memory only: a session id (128 random bits, hex) bound to a user
 * and uid, with the service, tty and workload for status and audit. The
 * consent outlives sessions; this table only counts them.
 *
 * With the SDK endpoint ([msi] listen) it also holds the endpoint
 * secrets (IDENTITY_HEADER): 256 random bits as 64 hex digits, each
 * bound to one uid and user, with an expiry; minted by session_open (and
 * ended by session_close) or by sdk_env (credctl env; at most a
 * configured number per uid, the oldest evicted). Presented secrets are
 * compared in constant time with every live one. Secrets are kept in
 * struct secret and wiped when they end; they are never logged.
 */
#ifndef CREDD_SESSION_H
#define CREDD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SESSION_ID_LEN 32
#define SESSION_SECRET_LEN 64	/* hex digits: 256 random bits */

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

/*
 * Mint an endpoint secret for (user, uid), alive until now + ttl. With
 * session set (an open session's id) it ends with that session; without,
 * it is an sdk_env secret, and a uid holding max_per_uid of those loses
 * its oldest. out receives SESSION_SECRET_LEN hex digits + NUL (the
 * caller wipes it); *expires_on the expiry. 0 or -ENOMEM.
 */
int sessions_secret_mint(struct sessions *ss, const char *user, uid_t uid,
    const char *session, int64_t now, int64_t ttl, size_t max_per_uid,
    char out[SESSION_SECRET_LEN + 1], int64_t *expires_on);
/*
 * Check a presented secret (len bytes, need not be NUL-terminated)
 * against every live one in constant time. 0 with *uid and *user
 * (borrowed: valid until the table changes); -EKEYEXPIRED for a secret
 * past its expiry (then dropped); -ENOENT for an unknown one.
 */
int sessions_secret_check(struct sessions *ss, const char *presented,
    size_t len, int64_t now, uid_t *uid, const char **user);
/*
 * The secret of an open session (for a deferred session_open reply):
 * copies it into out and its expiry into *expires_on. -ENOENT if none.
 */
int sessions_secret_of(const struct sessions *ss, const char *session,
    char out[SESSION_SECRET_LEN + 1], int64_t *expires_on);
/* Live secrets (for stats). */
size_t sessions_secret_count(const struct sessions *ss);

#endif
