/*
 * workload.h - what a caller of each workload kind may do (issue 14):
 * the policy of [workload.NAME] (config.h) applied to one request, and
 * the words of a refusal, which always name the policy line that
 * refused ("[workload.job] start_signin = no (credd.conf:12)").
 *
 * Pure functions of the configuration: no I/O, no state; the caller's
 * kind comes from ident.h.
 */
#ifndef CREDD_WORKLOAD_H
#define CREDD_WORKLOAD_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

#define WORKLOAD_WHY_MAX 256

/*
 * The strictest of n kinds (an index into kinds), or -1 when n is 0.
 * Stricter: no identity, then no sign-in, then no SDK endpoint, then
 * fewer allowed aliases; ties go to the earlier one.
 */
int workload_strictest(const struct config *cf, const int *kinds, size_t n);

/*
 * "[workload.KIND] KEY = VALUE (FILE:LINE)" (or "(default)") into buf.
 * Returns buf.
 */
const char *workload_line(const struct config *cf, int kind,
    enum config_wl_key key, char *buf, size_t bufsz);

/*
 * May kind have a token for scope (a configured scope string, as
 * config_scope_resolve returns)? 0, or -EACCES with the refusal (naming
 * the line) in why.
 */
int workload_check_token(const struct config *cf, int kind, const char *scope,
    char *why, size_t whysz);
/* May kind start a sign-in? 0, or -EACCES with why. */
int workload_check_signin(const struct config *cf, int kind, char *why,
    size_t whysz);
/* Does the SDK endpoint serve kind? 0, or -EACCES with why. */
int workload_check_sdk(const struct config *cf, int kind, char *why,
    size_t whysz);

/*
 * The effective policy table (credd --check-config): one row per kind,
 * then the [sessions] settings.
 */
void workload_print_table(const struct config *cf, FILE *f);

/* "none", "user", "app", "user-or-app". */
const char *workload_identity_name(int identity);

#endif
