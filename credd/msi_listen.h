/*
 * msi_listen.h - the SDK endpoint's listening socket and its accepts:
 * bind [msi] listen, or take the socket the service manager passed in
 * (systemd socket activation, credd-msi.socket); retry a failed bind on
 * a backoff timer; accept on credd's loop; and prove each caller's uid
 * once, at accept, before a byte of the request is read (sockdiag.h).
 *
 * A failed bind never stops credd: the Unix socket is served, the
 * endpoint reports "down" with the reason (msi_listen_report) and binds
 * again every few seconds. Once credd has dropped root it cannot bind a
 * port below 1024: socket activation holds any port from boot and is the
 * recommended setup (docs/sdk.md). EMFILE and its kin pause the accepts
 * on a backoff timer instead of spinning on a readable listener.
 *
 * The same machinery serves the platform sign-in callback ([callback]
 * listen, callback.h) through a struct msi_listen_spec: its own address
 * (any IP literal, for a reverse proxy), socket name, messages and
 * events, and no uid proof (its callers are browsers on other hosts).
 *
 * Must never: listen on anything but the configured address, take a
 * passed socket that is not a listening TCP socket on exactly that
 * address and port (loopback for the SDK endpoint), hand on an SDK
 * connection with a uid the kernel did not prove, or block the loop.
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

/* FileDescriptorName= of etc/systemd/credd-msi.socket (LISTEN_FDNAMES). */
#define MSI_LISTEN_FDNAME "credd-msi"

/*
 * What one listener is: its address and how it speaks of itself. Every
 * string is borrowed for the call (msi_listen_new copies listen and
 * keeps the others, which must be static).
 */
struct msi_listen_spec {
	const char *listen; /* "ADDR:PORT" as configured */
	const char *key;    /* "[msi] listen", for messages */
	const char *fdname; /* its LISTEN_FDNAMES name */
	const char *tag;    /* log prefix: "msi" */
	const char *what;   /* "SDK endpoint" */
	const char *event;  /* "sdk": event=sdk_endpoint_up, sdk_bind_failed */
	const char *path;   /* shown in the up message: "/msi/token" */
	const char *unit;   /* the socket unit that holds the port */
	const char *doc;    /* where that is explained: "docs/sdk.md" */
	int is_public;	    /* any address, no uid proof (the callback) */
};

/* The SDK endpoint's spec for cf ([msi] listen). */
void msi_listen_spec_msi(const struct config *cf, struct msi_listen_spec *s);

/* The endpoint's socket as found at start (msi_listen_open). */
struct msi_listen_sock {
	int fd;		  /* listening, non-blocking, CLOEXEC; -1: none */
	int is_activated; /* passed in by the service manager */
	int err;	  /* -errno of the failed bind when fd is -1 */
};

/*
 * Find the endpoint's socket for cf->msi_listen, before privileges are
 * dropped. fds, names (NULL, or nfds names) and nfds are what the service
 * manager passed (sd_listen_fds_with_names): the socket named
 * MSI_LISTEN_FDNAME, else the first one listening on [msi] listen, is
 * used as it is and never bound again; a named one that does not match
 * is logged and left alone. Otherwise [msi] listen is bound here.
 * *used is the index of the passed fd taken (-1: none; the caller owns
 * the others). Returns 0 with out->fd (or -1 with the endpoint off), or
 * -errno with out->err and a message in err: the endpoint starts down
 * and msi_listen_new retries the bind.
 */
int msi_listen_open(const struct config *cf, const int *fds, char *const *names,
    size_t nfds, struct msi_listen_sock *out, int *used, char *err,
    size_t errsz);
/* The same for any listener (spec->listen NULL: off). */
int msi_listen_open_spec(const struct msi_listen_spec *spec, const int *fds,
    char *const *names, size_t nfds, struct msi_listen_sock *out, int *used,
    char *err, size_t errsz);

/*
 * 0 when fd is a listening TCP socket bound to exactly want (a loopback
 * address and port), else -errno with the reason in why. For tests.
 */
int msi_listen_fd_matches(int fd, const struct sockaddr *want, char *why,
    size_t whysz);

/*
 * One accepted connection: fd (the callee owns it), the peer's address,
 * and the peer's uid as the kernel proves it at accept; when it cannot,
 * uid is (uid_t)-1 and unproven says why (a static string for the audit:
 * the caller refuses the request with 403).
 */
typedef void msi_listen_cb(void *arg, int fd, const struct sockaddr *peer,
    socklen_t peerlen, uid_t uid, const char *unproven);

/*
 * Serve sock (sock->fd is taken over, and closed on failure; -1 starts
 * down and retries binding cf->msi_listen's address, which later reloads
 * cannot move). cb is called for every accepted connection. 0 or -errno.
 */
int msi_listen_new(struct event_loop *ev, const struct config *cf,
    const struct msi_listen_sock *sock, msi_listen_cb *cb, void *arg,
    struct msi_listen **out);
/*
 * The same for any listener. With spec->is_public the callback gets
 * uid (uid_t)-1 and unproven NULL: nothing is proven.
 */
int msi_listen_new_spec(struct event_loop *ev,
    const struct msi_listen_spec *spec, const struct msi_listen_sock *sock,
    msi_listen_cb *cb, void *arg, struct msi_listen **out);
/* Close the listener, cancel the timers. NULL does nothing. */
void msi_listen_free(struct msi_listen *l);
/* 1 while listening. */
int msi_listen_is_up(const struct msi_listen *l);

/*
 * The listener's part of the "sdk_endpoint" object: state ("up" or
 * "down"), listen, socket ("bound" or "activated") when up, error and
 * retry_in_ms when down, since (unix time of the last change); with
 * is_stats also bind_failures, accept_pauses, connections_accepted and
 * connections_unproven. 0, or -ENOMEM (o may lack some of them).
 */
int msi_listen_report(const struct msi_listen *l, json_t *o, int is_stats);

/* A counter of a listener's owner, for msi_listen_report_in. */
struct msi_listen_count {
	const char *name;
	uint64_t value;
};

/*
 * o[name]: with is_on 0, {"state": "off"} in stats and nothing in
 * status; else a new object with msi_listen_report(l)'s fields and, with
 * is_stats, the n counters. 0, or -ENOMEM (o may lack some of it).
 */
int msi_listen_report_in(const struct msi_listen *l, int is_on, json_t *o,
    const char *name, int is_stats, const struct msi_listen_count *counts,
    size_t n);

#endif
