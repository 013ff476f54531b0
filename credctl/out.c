/*
 * out.c - what credctl prints and how: the one error line on stderr,
 * server text made safe for a terminal, fields read from credd's
 * replies, times and spans, the account's name, a reply as JSON or as
 * "a.b  value" lines, and secret lines written straight to fd 1.
 *
 * Must never: print more than one line per error, let server text reach
 * the terminal with its control characters, or leave a token in a stdio
 * buffer (secrets and JSON go to fd 1 from buffers that are wiped). It
 * knows nothing of credd's socket or of any command; below it there is
 * only the countdown, which an error line stops first.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "entra/secret.h"
#include "entra/util.h"

#include "countdown.h"
#include "exit.h"
#include "out.h"

/*
 * "credctl", or "az" when run as the az shim: the process's name, set
 * once by main before anything is printed (like glibc's
 * program_invocation_short_name, but not taken from argv[0], so a
 * renamed credctl still says "credctl").
 */
static const char *progname = "credctl";

void
out_set_progname(const char *name)
{
	progname = name;
}

const char *
out_progname(void)
{
	return progname;
}

/* One line on stderr, prefixed with the program name. */
void
out_errorf(const char *fmt, ...)
{
	va_list ap;

	countdown_stop(); /* never print over the countdown line */
	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Copy server text for the terminal: control characters become '?' so a
 * reply cannot move the cursor or forge lines; UTF-8 passes through.
 */
const char *
out_clean(char *dst, size_t dstsz, const char *src)
{
	size_t i;

	if (src == NULL)
		src = "";
	for (i = 0; i + 1 < dstsz && src[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	dst[i] = '\0';
	return dst;
}

const char *
out_jstr(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int64_t
out_jint(const json_t *obj, const char *key, int64_t dflt)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return dflt;
}

/* "52m", "1h05m", "40s", "3d04h". */
static const char *
fmt_span(char *buf, size_t sz, int64_t s)
{
	if (s < 0)
		s = -s;
	if (s < 60)
		snprintf(buf, sz, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, sz, "%lldm", (long long)(s / 60));
	else if (s < 86400)
		snprintf(buf, sz, "%lldh%02lldm", (long long)(s / 3600),
		    (long long)(s % 3600 / 60));
	else
		snprintf(buf, sz, "%lldd%02lldh", (long long)(s / 86400),
		    (long long)(s % 86400 / 3600));
	return buf;
}

/* "expires in 52m" / "expired 3m ago" relative to now. */
const char *
out_expiry(char *buf, size_t sz, int64_t when)
{
	char span[32];
	int64_t left = when - util_now();

	if (left >= 0)
		snprintf(buf, sz, "expires in %s",
		    fmt_span(span, sizeof(span), left));
	else
		snprintf(buf, sz, "expired %s ago",
		    fmt_span(span, sizeof(span), left));
	return buf;
}

/* "2024-05-01 12:00:00 (3m ago)" in local time; "never" for 0. */
const char *
out_when(char *buf, size_t sz, int64_t when)
{
	char stamp[32], span[32];
	time_t t = (time_t)when;
	struct tm tm;
	int64_t ago;

	if (when <= 0 || localtime_r(&t, &tm) == NULL) {
		snprintf(buf, sz, "never");
		return buf;
	}
	if (strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		stamp[0] = '\0';
	ago = util_now() - when;
	if (ago >= 0)
		snprintf(buf, sz, "%s (%s ago)", stamp,
		    fmt_span(span, sizeof(span), ago));
	else
		snprintf(buf, sz, "%s (in %s)", stamp,
		    fmt_span(span, sizeof(span), ago));
	return buf;
}

/* The account may be a name or an object; give the best name for it. */
const char *
out_account(const json_t *acct)
{
	const char *s;

	if (json_is_string(acct))
		return json_string_value(acct);
	if (!json_is_object(acct))
		return NULL;
	s = out_jstr(acct, "preferred_username");
	if (s == NULL)
		s = out_jstr(acct, "username");
	if (s == NULL)
		s = out_jstr(acct, "oid");
	return s;
}

/* Print a JSON value on stdout: indented on a terminal, else one line. */
int
out_json(const json_t *v)
{
	size_t flags = isatty(STDOUT_FILENO) ? JSON_INDENT(2) : JSON_COMPACT;
	char *s;
	int r;

	/* Straight to fd 1, then wiped: no stdio buffer keeps a token. */
	s = json_dumps(v, flags | JSON_ENCODE_ANY);
	if (s == NULL) {
		out_errorf("out of memory");
		return EXIT_ERR;
	}
	r = fflush(stdout) == EOF ? -errno : 0;
	if (r == 0)
		r = util_write_all(STDOUT_FILENO, s, strlen(s));
	if (r == 0)
		r = util_write_all(STDOUT_FILENO, "\n", 1);
	secret_wipe_str(s);
	if (r < 0) {
		out_errorf("cannot write to stdout: %s", strerror(-r));
		return EXIT_ERR;
	}
	return EXIT_OK;
}

/* The "open URL and enter code CODE" clause, when the fields are there. */
int
out_device_clause(char *buf, size_t sz, const json_t *o)
{
	char uri[OUT_MSG_MAX], code[64];
	const char *u = out_jstr(o, "verification_uri");
	const char *k = out_jstr(o, "user_code");

	if (u == NULL || k == NULL)
		return 0;
	snprintf(buf, sz, "open %s and enter code %s",
	    out_clean(uri, sizeof(uri), u), out_clean(code, sizeof(code), k));
	return 1;
}

/* True when s can stand unquoted in a shell word. */
int
out_is_shell_safe(const char *s)
{
	static const char extra[] = "._~+/=-:";

	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			(*s >= '0' && *s <= '9') || strchr(extra, *s) != NULL))
			return 0;
	return 1;
}

/*
 * Write the token line(s) straight to fd 1 from a buffer we wipe, so no
 * stdio buffer keeps a copy.
 */
int
out_secret(const struct secret *line)
{
	int r;

	if (fflush(stdout) == EOF)
		return EXIT_ERR;
	r = util_write_all(STDOUT_FILENO, line->ptr, line->len);
	if (r < 0) {
		out_errorf("cannot write to stdout: %s", strerror(-r));
		return EXIT_ERR;
	}
	return EXIT_OK;
}

int
out_secret_take(struct secret *line)
{
	int r;

	if (line == NULL) {
		out_errorf("out of memory");
		return EXIT_ERR;
	}
	r = out_secret(line);
	secret_free(line);
	return r;
}

/* "a.b: 3" for every scalar in a (nested) object. */
void
out_tree(const char *prefix, json_t *obj)
{
	char name[256], val[OUT_MSG_MAX];
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v)
	{
		if (strcmp(key, "ok") == 0 && prefix[0] == '\0')
			continue;
		snprintf(name, sizeof(name), "%s%s%s", prefix,
		    prefix[0] != '\0' ? "." : "", key);
		if (json_is_object(v)) {
			out_tree(name, v);
		} else if (json_is_string(v)) {
			printf("%-32s %s\n", name,
			    out_clean(val, sizeof(val), json_string_value(v)));
		} else if (json_is_integer(v)) {
			printf("%-32s %lld\n", name,
			    (long long)json_integer_value(v));
		} else if (json_is_real(v)) {
			printf("%-32s %g\n", name, json_real_value(v));
		} else if (json_is_boolean(v)) {
			printf("%-32s %s\n", name,
			    json_is_true(v) ? "yes" : "no");
		} else if (json_is_array(v)) {
			printf("%-32s [%zu entries]\n", name,
			    json_array_size(v));
		}
	}
}
