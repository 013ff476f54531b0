/*
 * startup.h - credd's start-up steps (startup.c), for main.c and the
 * offline subcommands. Each ends the process with a message when it
 * fails, except startup_read_secret, which returns -errno.
 */
#ifndef CREDD_STARTUP_H
#define CREDD_STARTUP_H

#include <stddef.h>
#include <stdint.h>

#include "clientauth.h"

struct clientauth;
struct config;
struct marks;
struct offboard_cred;
struct passwd;
struct seal;
struct secmem;
struct secret;
struct store;

/* No core, no new privileges, umask 077, jansson's frees wiped, libsodium. */
void startup_harden(void);
/* The config at path, or exit with the parser's message. */
struct config *startup_config(const char *path);
/* %d/NAME in key_file and client_secret_file, and that directory's mode. */
void startup_credentials(struct config *cf);
/* The key ring (path, or cf's key_file), owner-only. */
void startup_load_keys(const struct config *cf, const char *path,
    struct seal **seal);
/*
 * [entra] client_auth: the app credential, made before the privilege
 * drop (a certificate's key is loaded; a bad one ends the process; a
 * stale federated token file is only warned about). Never NULL.
 */
struct clientauth *startup_client_auth(const struct config *cf);
/*
 * Run check as [server] user when we are root, in a child process (so
 * nothing of ours changes): a federated token file is read per request
 * after the privilege drop, so the question is whether it is private to,
 * and readable by, that user; root's view would refuse a file that user
 * owns and pass one it cannot read. Not root, or no such user: check as
 * we are. check's result, or -EIO with a message when the child failed.
 */
int startup_check_as_user(const struct config *cf, clientauth_check_fn *check,
    int64_t now, char *msg, size_t msgsz);
/*
 * [offboarding]'s credential into *cred (all empty when offboarding is
 * off), before the privilege drop; a bad secret or certificate ends the
 * process. The caller hands cred to offboard_http_new (or clears it).
 */
void startup_offboard_cred(const struct config *cf, struct offboard_cred *cred);
/* An owner-only secret file, trailing newlines cut. 0 or -errno. */
int startup_read_secret(const char *path, struct secret **out);
/* dir is ours and mode 0700. */
void startup_state_dir(const char *dir);
/* setgroups, setresgid, setresuid to pw for good; checked. */
void startup_drop_privileges(const struct passwd *pw);
/* The configured store backend (conf_path names the config in messages). */
void startup_open_store(const struct config *cf, const char *conf_path,
    struct store **st);
/* The high-water marks ([store] marks), after the privilege drop. */
void startup_open_marks(const struct config *cf, struct marks **marks);
/*
 * Lock the key ring again (after daemon()'s fork) and give later secrets
 * a locked arena ([server] locked_memory_kib); *client_secret, read
 * before the arena existed, is moved into it.
 */
void startup_lock_secrets(const struct config *cf, struct seal *seal,
    struct secmem **secmem, struct secret **client_secret);

#endif
