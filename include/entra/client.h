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

struct secret;

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

/*
 * The token op's answer when it is the usual one: an ok reply whose
 * strings need no JSON escapes (proto.h, proto_lite_token_reply).
 */
struct client_token {
	struct secret *access_token; /* owned */
	char *token_type;	     /* owned; NULL when the reply had none */
	int64_t expires_on;	     /* unix seconds; 0 when absent */
	char *scope;		     /* owned; NULL when absent */
	char *account;		     /* owned; NULL when null or absent */
};

/*
 * One token request (scope NULL: the default alias; min_valid < 0:
 * credd's default) without a JSON tree on the common path: the request
 * is written and the reply read as bytes (lib/proto_lite.c). Returns 0
 * with *tok filled and *resp NULL for an ok token reply of plain
 * strings; 0 with *resp (owned) and *tok empty for any other reply
 * client_call would accept (an error, or an ok reply with escapes or
 * members the byte reader does not know); or client_call's errors. The
 * request and reply lines are wiped; free *tok with client_token_clear.
 */
int client_token_call(int fd, const char *scope, int64_t min_valid,
    struct client_token *tok, json_t **resp, int64_t deadline_ms);
/* Wipe and free what *tok holds; *tok is empty after. NULL is fine. */
void client_token_clear(struct client_token *tok);

/* A new request object {"v":1,"op":op}; NULL on ENOMEM. */
json_t *client_request(const char *op);

#endif
