/*
 * procenv.c - capture the environment credd uses, clear the rest (see
 * procenv.h for the list and why).
 *
 * Must never: leave a variable outside the documented list in environ,
 * leave the text of a removed variable readable in /proc/PID/environ,
 * log or print a value (nothing here is meant to be secret, but whatever
 * an operator's shell held might be), or run after a thread started.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procenv.h"

/* Variables whose text stays in the environment (tests only). */
#define PROCENV_KEEP_PREFIX "NSS_WRAPPER_"
/* And systemd's, read by libsystemd at each sd_notify (procenv.h). */
static const char *const procenv_kept[] = { "NOTIFY_SOCKET=", "WATCHDOG_USEC=",
	"WATCHDOG_PID=", NULL };

enum {
	PE_CREDENTIALS_DIRECTORY,
	PE_LISTEN_FDNAMES,
	PE_LISTEN_FDS,
	PE_LISTEN_PID,
	PE_NOTIFY_SOCKET,
	PE_COUNT
};

static const char *const procenv_names[PE_COUNT] = {
	[PE_CREDENTIALS_DIRECTORY] = "CREDENTIALS_DIRECTORY",
	[PE_LISTEN_FDNAMES] = "LISTEN_FDNAMES",
	[PE_LISTEN_FDS] = "LISTEN_FDS",
	[PE_LISTEN_PID] = "LISTEN_PID",
	[PE_NOTIFY_SOCKET] = "NOTIFY_SOCKET",
};

/* Process-wide on purpose (procenv.h): written once, before threads. */
static char *procenv_values[PE_COUNT];

static int
is_kept(const char *entry)
{
	size_t i;

	for (i = 0; procenv_kept[i] != NULL; i++)
		if (strncmp(entry, procenv_kept[i], strlen(procenv_kept[i])) ==
		    0)
			return 1;
	return strncmp(entry, PROCENV_KEEP_PREFIX,
		   sizeof(PROCENV_KEEP_PREFIX) - 1) == 0 &&
	    strchr(entry, '=') != NULL;
}

/* The value of entry when it is "name=value", else NULL. */
static const char *
value_of(const char *entry, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(entry, name, n) != 0 || entry[n] != '=')
		return NULL;
	return entry + n + 1;
}

/* Copy what we use from entry (first occurrence wins, as getenv). */
static int
capture_entry(const char *entry)
{
	const char *v;
	int i;

	for (i = 0; i < PE_COUNT; i++) {
		v = value_of(entry, procenv_names[i]);
		if (v == NULL || procenv_values[i] != NULL || *v == '\0')
			continue;
		procenv_values[i] = strdup(v);
		if (procenv_values[i] == NULL)
			return -ENOMEM;
	}
	return 0;
}

int
procenv_capture(void)
{
	char **env = environ, **keep = NULL;
	size_t n = 0, nkeep = 0, i;
	int r = 0;

	for (i = 0; i < PE_COUNT; i++) {
		free(procenv_values[i]);
		procenv_values[i] = NULL;
	}
	while (env != NULL && env[n] != NULL)
		n++;
	/* clearenv() may free the array itself: keep our own list. */
	keep = calloc(n + 1, sizeof(*keep));
	if (keep == NULL)
		r = -ENOMEM;
	for (i = 0; i < n; i++) {
		if (capture_entry(env[i]) < 0)
			r = -ENOMEM;
		if (keep != NULL && is_kept(env[i]))
			keep[nkeep++] = env[i];
		else /* the kernel's copy is what /proc/PID/environ shows */
			explicit_bzero(env[i], strlen(env[i]));
	}
	(void)clearenv();
	/* putenv keeps the kernel's string: no copy, same /proc view. */
	for (i = 0; i < nkeep; i++)
		if (putenv(keep[i]) != 0)
			r = -ENOMEM;
	free(keep);
	return r;
}

const char *
procenv_listen_fds(void)
{
	return procenv_values[PE_LISTEN_FDS];
}

const char *
procenv_listen_pid(void)
{
	return procenv_values[PE_LISTEN_PID];
}

const char *
procenv_listen_fdnames(void)
{
	return procenv_values[PE_LISTEN_FDNAMES];
}

const char *
procenv_notify_socket(void)
{
	return procenv_values[PE_NOTIFY_SOCKET];
}

const char *
procenv_credentials_directory(void)
{
	return procenv_values[PE_CREDENTIALS_DIRECTORY];
}
