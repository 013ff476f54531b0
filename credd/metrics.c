/*
 * metrics.c - histograms, outcomes and the Prometheus text builder (see
 * metrics.h).
 *
 * Must never: allocate or lock in metrics_hist_observe (the cached
 * path calls it), or write a label value unescaped.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

/* 10 µs .. 10 s: the cached path lands in the first few buckets, the
 * IdP's round trips in the middle, its timeouts at the top. */
static const uint64_t bounds_us[METRICS_HIST_BOUNDS] = { 10, 25, 50, 100, 250,
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000 };

static const char *const outcomes[METRICS_OUTCOMES] = { "ok", "bad_request",
	"too_large", "unsupported_version", "forbidden", "unknown_scope",
	"consent_required", "consent_pending", "consent_declined",
	"account_mismatch", "reauth_required", "policy_blocked", "rate_limited",
	"idp_unavailable", "idp_misconfigured", "unavailable", "internal" };

void
metrics_hist_observe(struct metrics_hist *h, uint64_t us)
{
	unsigned i = 0;

	/* A linear scan: the cached path stops after two or three. */
	while (i < METRICS_HIST_BOUNDS && us > bounds_us[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum_us += us;
}

uint64_t
metrics_now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

unsigned
metrics_outcome_of(const char *code)
{
	unsigned i;

	if (code == NULL)
		return 0;
	for (i = 1; i < METRICS_OUTCOMES; i++)
		if (strcmp(code, outcomes[i]) == 0)
			return i;
	return METRICS_OUTCOMES - 1; /* internal */
}

const char *
metrics_outcome_name(unsigned i)
{
	return i < METRICS_OUTCOMES ? outcomes[i] : "internal";
}

static void
text_grow(struct metrics_text *t, size_t need)
{
	size_t cap;
	char *p;

	if (t->failed || t->len + need + 1 <= t->cap)
		return;
	cap = t->cap != 0 ? t->cap : 4096;
	while (cap < t->len + need + 1)
		cap *= 2;
	p = realloc(t->buf, cap);
	if (p == NULL) {
		t->failed = 1;
		return;
	}
	t->buf = p;
	t->cap = cap;
}

static void
text_add(struct metrics_text *t, const char *s, size_t n)
{
	text_grow(t, n);
	if (t->failed)
		return;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

static void
text_str(struct metrics_text *t, const char *s)
{
	text_add(t, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
text_fmt(struct metrics_text *t, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		t->failed = 1; /* only numbers come here: never this long */
		return;
	}
	text_add(t, tmp, (size_t)n);
}

/* A label value: backslash, double quote and newline escaped. */
static void
text_label_value(struct metrics_text *t, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			text_str(t, "\\\\");
		else if (*v == '"')
			text_str(t, "\\\"");
		else if (*v == '\n')
			text_str(t, "\\n");
		else
			text_add(t, v, 1);
	}
}

static void
text_name_labels(struct metrics_text *t, const char *name,
    const char *const *labels)
{
	size_t i;

	text_str(t, name);
	if (labels == NULL || labels[0] == NULL)
		return;
	text_str(t, "{");
	for (i = 0; labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
		if (i > 0)
			text_str(t, ",");
		text_str(t, labels[i]);
		text_str(t, "=\"");
		text_label_value(t, labels[i + 1]);
		text_str(t, "\"");
	}
	text_str(t, "}");
}

/* HELP text: backslash and newline escaped (format 0.0.4). */
void
metrics_text_family(struct metrics_text *t, const char *name, const char *type,
    const char *help)
{
	const char *p;

	text_str(t, "# HELP ");
	text_str(t, name);
	text_str(t, " ");
	for (p = help; *p != '\0'; p++) {
		if (*p == '\\')
			text_str(t, "\\\\");
		else if (*p == '\n')
			text_str(t, "\\n");
		else
			text_add(t, p, 1);
	}
	text_str(t, "\n# TYPE ");
	text_str(t, name);
	text_str(t, " ");
	text_str(t, type);
	text_str(t, "\n");
}

void
metrics_text_sample(struct metrics_text *t, const char *name,
    const char *const *labels, uint64_t value)
{
	text_name_labels(t, name, labels);
	text_fmt(t, " %" PRIu64 "\n", value);
}

void
metrics_text_gauge(struct metrics_text *t, const char *name,
    const char *const *labels, int64_t value)
{
	text_name_labels(t, name, labels);
	text_fmt(t, " %" PRId64 "\n", value);
}

void
metrics_text_hist(struct metrics_text *t, const char *name, const char *help,
    const struct metrics_hist *h)
{
	const char *labels[3] = { "le", NULL, NULL };
	char le[32], sname[128];
	uint64_t cum = 0;
	unsigned i;

	metrics_text_family(t, name, "histogram", help);
	(void)snprintf(sname, sizeof(sname), "%s_bucket", name);
	for (i = 0; i <= METRICS_HIST_BOUNDS; i++) {
		cum += h->bucket[i];
		if (i < METRICS_HIST_BOUNDS)
			(void)snprintf(le, sizeof(le), "%g",
			    (double)bounds_us[i] / 1e6);
		else
			(void)snprintf(le, sizeof(le), "+Inf");
		labels[1] = le;
		metrics_text_sample(t, sname, labels, cum);
	}
	(void)snprintf(sname, sizeof(sname), "%s_sum", name);
	text_str(t, sname);
	text_fmt(t, " %.6f\n", (double)h->sum_us / 1e6);
	(void)snprintf(sname, sizeof(sname), "%s_count", name);
	metrics_text_sample(t, sname, NULL, h->count);
}

void
metrics_text_free(struct metrics_text *t)
{
	if (t == NULL)
		return;
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
}
