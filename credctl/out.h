/*
 * out.h - credctl's output helpers (out.c): the error line, safe server
 * text, reply fields, times, JSON and secret lines on stdout.
 *
 * Must never: declare anything that talks to credd or runs a command.
 */
#ifndef CREDCTL_OUT_H
#define CREDCTL_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "entra/secret.h"

#define OUT_MSG_MAX 512 /* longest server text we echo */

/* Set the name out_errorf prints: "credctl", or "az" for the az shim. */
void out_set_progname(const char *name);
/* The name set above ("credctl" until then); a static string. */
const char *out_progname(void);

/* One line on stderr, prefixed with the program name; stops the countdown. */
void out_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Server text made safe for a terminal (controls become '?'); returns dst. */
const char *out_clean(char *dst, size_t dstsz, const char *src);
/* obj[key] when it is a string, else NULL; borrowed from obj. */
const char *out_jstr(const json_t *obj, const char *key);
/* obj[key] when it is a number (reals truncated), else dflt. */
int64_t out_jint(const json_t *obj, const char *key, int64_t dflt);
/* "expires in 52m" / "expired 3m ago" into buf; returns buf. */
const char *out_expiry(char *buf, size_t sz, int64_t when);
/* "2024-05-01 12:00:00 (3m ago)" in local time, "never" for 0; returns buf. */
const char *out_when(char *buf, size_t sz, int64_t when);
/* The best name for an account (a string or an object), or NULL; borrowed. */
const char *out_account(const json_t *acct);
/* v on stdout (indented on a terminal, else one line); an exit code. */
int out_json(const json_t *v);
/* "open URL and enter code CODE" into buf; 0 when the fields are absent. */
int out_device_clause(char *buf, size_t sz, const json_t *o);
/* True when s can stand unquoted in a shell word. */
int out_is_shell_safe(const char *s);
/* Write line to fd 1 without stdio buffering; an exit code. */
int out_secret(const struct secret *line);
/* out_secret, then free line; NULL (a failed allocation) says so. */
int out_secret_take(struct secret *line);
/* "prefix.key  value" on stdout for every scalar in obj (nested), "ok" aside. */
void out_tree(const char *prefix, json_t *obj);

#endif
