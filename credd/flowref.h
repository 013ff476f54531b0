/*
 * flowref.h - a cluster code flow's state and short-link id that carry
 * their user sealed (docs/cluster.md, "Code flows across nodes"), so a
 * node that did not start the flow learns whose sealed record holds it.
 *
 * A ref is base64url(seal_seal(tenant, "/flow-<kind>", user padded with
 * NULs to a multiple of 16 bytes)): the seal's nonce is 192 random bits
 * (unguessable), its tag makes the user unforgeable, the key ring hides
 * the name from whoever sees the URL (only its length class, in steps of
 * 16 bytes, shows). The pseudo-user "/flow-state" or "/flow-link" in the
 * associated data cannot be a login name and keeps a link from opening
 * as a state. Opening a ref only names a user: the ref must still equal
 * the one sealed in that user's record (compared in constant time).
 *
 * Must never: log a ref or the user it opened to; accept a ref whose
 * bytes are not exactly base64url.
 */
#ifndef CREDD_FLOWREF_H
#define CREDD_FLOWREF_H

#include <stddef.h>

struct seal;

/* The longest ref (fits [callback]'s 256-char state). */
#define FLOWREF_MAX 200
/* The shortest one (a user of up to 16 bytes): 64 bytes, 86 chars. */
#define FLOWREF_MIN 86
/* The longest user name a ref can carry. */
#define FLOWREF_USER_MAX 96

enum flowref_kind { FLOWREF_STATE, FLOWREF_LINK };

/*
 * A new ref for user into dst (dstsz >= FLOWREF_MAX + 1). 0,
 * -ENAMETOOLONG (user over FLOWREF_USER_MAX: such a flow stays on its
 * node), -ENOMEM or the seal's -errno.
 */
int flowref_make(const struct seal *s, const char *tenant,
    enum flowref_kind kind, const char *user, char *dst, size_t dstsz);
/*
 * The user a ref names into user (usersz >= FLOWREF_USER_MAX + 1). 0, or
 * -ENOENT: not a ref of this kind sealed by this key ring.
 */
int flowref_open(const struct seal *s, const char *tenant,
    enum flowref_kind kind, const char *ref, char *user, size_t usersz);

#endif
