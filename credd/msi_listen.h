/*
 * msi_listen.h - the SDK endpoint's listening socket and its accepts:
 * bind [msi] listen, accept on credd's loop, and prove each caller's uid
 * once, at accept, before a byte of the request is read (sockdiag.h).
 * EMFILE and its kin pause the accepts on a backoff timer instead of
 * spinning on a readable listener.
 *
 * Must never: listen on anything but the [msi] listen address, hand on
 * a connection with a uid the kernel did not prove, or block the loop.
 */
#ifndef CREDD_MSI_LISTEN_H
#define CREDD_MSI_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <jansson.h>

struct config;
struct event_loop;
struct msi_listen;

/* The endpoint's socket as bound at start (msi_listen_open). */
struct msi_listen_sock {
	int fd;			/* listening, non-blocking, CLOEXEC; -1: none */
};

/*
 * Bind cf->msi_listen, before privileges are dropped. Returns 0 with
 * out->fd (-1 when the endpoint is off), or -errno with a message in err.
 */
int msi_listen_open(const struct config *cf, struct msi_listen_sock *out,
    char *err, size_t errsz);

/*
 * One accepted connection: fd (the callee owns it), the peer's address,
 * and the peer's uid as the kernel proves it at accept; when it cannot,
 * uid is (uid_t)-1 and unproven says why (a static string for the audit:
 * the caller refuses the request with 403).
 */
typedef void msi_listen_cb(void *arg, int fd, const struct sockaddr *peer,
    socklen_t peerlen, uid_t uid, const char *unproven);

/*
 * Serve sock (sock->fd, taken over, and closed on failure). cb is called
 * for every accepted connection. 0 or -errno.
 */
int msi_listen_new(struct event_loop *ev, const struct config *cf,
    const struct msi_listen_sock *sock, msi_listen_cb *cb, void *arg,
    struct msi_listen **out);
/* Close the listener, cancel the timers. NULL does nothing. */
void msi_listen_free(struct msi_listen *l);
/* 1 while listening. */
int msi_listen_is_up(const struct msi_listen *l);

/*
 * The listener's part of the "sdk_endpoint" object: state ("up"), listen,
 * since (unix time it came up); with is_stats also accept_pauses,
 * connections_accepted and connections_unproven.
 */
void msi_listen_report(const struct msi_listen *l, json_t *o, int is_stats);

#endif
