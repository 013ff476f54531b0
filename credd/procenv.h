/*
 * procenv.h - the environment credd reads, captured once at start; the
 * rest is cleared before any library can read it.
 *
 * credd reads these variables and no others (docs/hardening.md, credd(8)
 * ENVIRONMENT):
 *   LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES   systemd socket activation
 *   NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID  systemd readiness and
 *                                            watchdog (sd_notify)
 *   CREDENTIALS_DIRECTORY                    systemd LoadCredential= (%d)
 * procenv_capture() copies them, then empties the environment except for
 * NSS_WRAPPER_* (libnss_wrapper, which only tests preload, reads those at
 * every lookup) and NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID
 * (libsystemd's sd_notify and sd_watchdog_enabled read them at each call
 * and offer no other way to name the socket; systemd set them, they name
 * its own socket and a number, nothing secret), and wipes each removed "NAME=value" where it lies (the
 * kernel's copy on the stack), so /proc/PID/environ shows only what stays.
 * libcurl (SSLKEYLOGFILE, http_proxy, https_proxy, ALL_PROXY, NO_PROXY),
 * OpenSSL (OPENSSL_CONF, OPENSSL_ENGINES, OPENSSL_MODULES, SSL_CERT_FILE,
 * SSL_CERT_DIR), libpq (PGSSLMODE, PGPASSWORD, ...) and glibc's resolver
 * (HOSTALIASES, RES_OPTIONS, LOCALDOMAIN) then find nothing to honour.
 *
 * The environment is process-wide, and so is this module, deliberately:
 * call procenv_capture() first thing in main(), before any library
 * initialises and before any thread starts. The getters only read what
 * was captured. Sanitizer runtimes (ASAN_OPTIONS, ...) and glibc's
 * GLIBC_TUNABLES are read before main() runs, so clearing them later
 * changes nothing; credd starts no other program.
 */
#ifndef CREDD_PROCENV_H
#define CREDD_PROCENV_H

/*
 * Capture the variables above from environ, then clear the environment
 * as described. Safe to call again (tests): the earlier capture is
 * dropped, and the variables, already cleared, then read as unset.
 * Returns 0, or -ENOMEM: then the environment is cleared entirely (kept
 * variables too) and what could not be copied reads as unset.
 */
int procenv_capture(void);

/*
 * The captured values: NULL when unset or empty. The strings live until
 * the next procenv_capture(); never modify them.
 */
const char *procenv_listen_fds(void);
const char *procenv_listen_pid(void);
const char *procenv_listen_fdnames(void);
const char *procenv_notify_socket(void);
const char *procenv_credentials_directory(void);

#endif
