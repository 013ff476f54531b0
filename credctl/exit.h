/*
 * exit.h - credctl's exit codes, a contract that scripts and SDK
 * credential chains (through the az shim) rely on: credctl(1), --help and
 * docs/protocol.md §5 (which wire error gives which code) list them.
 *
 * Must never: change a value, or gain a code that credctl(1) and --help
 * do not list.
 */
#ifndef CREDCTL_EXIT_H
#define CREDCTL_EXIT_H

enum {
	EXIT_OK = 0,
	EXIT_ERR = 1,
	EXIT_USAGE = 2,
	EXIT_ACT = 3,	  /* the user must sign in or consent */
	EXIT_UNAVAIL = 4, /* credd or the IdP unavailable */
	EXIT_REFUSED = 5,
	EXIT_MISCONF = 6,
	EXIT_DEGRADED = 7, /* admin health: cached tokens only (the IdP) */
	EXIT_UNHEALTHY = 8 /* admin health: the store or the key ring */
};

#endif
