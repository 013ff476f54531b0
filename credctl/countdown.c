/*
 * countdown.c - the "Waiting for sign-in... MM:SS left" line on stderr
 * while `credctl login` waits, redrawn every second from SIGALRM.
 *
 * Must never: call anything but async-signal-safe functions from the
 * handler, leave SIGALRM's default action in place once started (a late
 * tick would kill credctl), or print anything but the countdown line.
 * Its state is the process's by necessity: a signal handler can reach
 * nothing else. It sits below the output helpers, which stop it before
 * they print an error line, so it calls none of them.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "countdown.h"

/*
 * The countdown runs from SIGALRM while client_call waits in poll (it
 * retries on EINTR), so the line stays live during each blocking call.
 * Only async-signal-safe calls in the handler. The handler stays
 * installed and does nothing while the countdown is off, so a late
 * SIGALRM can never take the default action and kill us.
 */
static volatile sig_atomic_t countdown_is_on;
static volatile int64_t countdown_end; /* written only while off */

static void
countdown_tick(int sig)
{
	char line[64] = "\rWaiting for sign-in... ";
	size_t n = strlen(line);
	struct timespec ts;
	int64_t left;
	int saved = errno;

	(void)sig;
	if (!countdown_is_on)
		return;
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	left = countdown_end - (int64_t)ts.tv_sec;
	if (left < 0)
		left = 0;
	if (left > 99 * 60 + 59)
		left = 99 * 60 + 59;
	line[n++] = (char)('0' + left / 600);
	line[n++] = (char)('0' + left / 60 % 10);
	line[n++] = ':';
	line[n++] = (char)('0' + left % 60 / 10);
	line[n++] = (char)('0' + left % 10);
	memcpy(line + n, " left ", 6);
	n += 6;
	(void)!write(STDERR_FILENO, line, n);
	errno = saved;
}

void
countdown_start(int64_t end)
{
	struct itimerval it;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = countdown_tick;
	(void)sigaction(SIGALRM, &sa, NULL);
	countdown_end = end;
	countdown_is_on = 1;
	memset(&it, 0, sizeof(it));
	it.it_interval.tv_sec = 1;
	it.it_value.tv_sec = 1;
	(void)setitimer(ITIMER_REAL, &it, NULL);
	countdown_tick(SIGALRM);
}

/* Stop the countdown and clear its line; nothing when it is off. */
void
countdown_stop(void)
{
	struct itimerval it;

	if (!countdown_is_on)
		return;
	memset(&it, 0, sizeof(it));
	(void)setitimer(ITIMER_REAL, &it, NULL);
	countdown_is_on = 0;
	fputs("\r\033[K", stderr);
}
