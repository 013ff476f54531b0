/*
 * client.h - the blocking one-request client shared by pam_entra and
 * credctl. Every call is bounded by a deadline (CLOCK_MONOTONIC ms, from
 * util_mono_ms()): connect, write and read together use non-blocking I/O
 * and poll, so a hung credd cannot hang the caller. The socket is opened
 * with SOCK_CLOEXEC. Nothing here logs.
 */
#ifndef ENTRA_CLIENT_H
#define ENTRA_CLIENT_H

#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

/*
 * Connect to the credd socket at path and check the server: its
 * SO_PEERCRED uid must be 0 or the uid of server_user (getpwnam; NULL
 * means ENTRA_CREDD_USER). Returns a connected fd, or
 * -ENOENT/-ECONNREFUSED (credd not running), -ETIMEDOUT, -EPERM (server
 * is not who it should be), or another -errno.
 */
int client_connect(const char *path, const char *server_user,
    int64_t deadline_ms);

/*
 * Send one request object and read one response line. Returns 0 and
 * *resp (owned by the caller) or -ETIMEDOUT, -EBADMSG (malformed or
 * oversized reply), -ECONNRESET (closed early), -errno. The request line
 * is wiped from memory after sending. May be called again on the same fd.
 */
int client_call(int fd, const json_t *req, json_t **resp, int64_t deadline_ms);

/* A new request object {"v":1,"op":op}; NULL on ENOMEM. */
json_t *client_request(const char *op);

#endif
