/*
 * countdown.h - the sign-in countdown line on stderr (countdown.c).
 *
 * Must never: be started twice without a stop in between.
 */
#ifndef CREDCTL_COUNTDOWN_H
#define CREDCTL_COUNTDOWN_H

#include <stdint.h>

/*
 * Draw "Waiting for sign-in... MM:SS left" now and every second until
 * end (unix seconds; 00:00 after it). Installs a SIGALRM handler that
 * stays installed for the life of the process.
 */
void countdown_start(int64_t end);
/* Stop the countdown and clear its line; nothing when it is off. */
void countdown_stop(void);

#endif
