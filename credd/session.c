/*
 * session.c - the open-session table. A linked list: sessions open and
 * close at login rate, not token rate, so O(n) lookups are fine up to a
 * few tens of thousands of sessions per node.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "session.h"
#include "entra/util.h"

struct session {
	char id[SESSION_ID_LEN + 1];
	char *user;
	uid_t uid;
	char *service, *tty, *workload;
	int64_t opened;
	struct session *next;
};

struct sessions {
	struct session *head;
	size_t n;
};

struct sessions *
sessions_new(void)
{
	return calloc(1, sizeof(struct sessions));
}

static void
session_free(struct session *s)
{
	free(s->user);
	free(s->service);
	free(s->tty);
	free(s->workload);
	free(s);
}

void
sessions_free(struct sessions *ss)
{
	struct session *s, *next;

	if (ss == NULL)
		return;
	for (s = ss->head; s != NULL; s = next) {
		next = s->next;
		session_free(s);
	}
	free(ss);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

int
sessions_open(struct sessions *ss, const char *user, uid_t uid,
    const char *service, const char *tty, const char *workload,
    char id[SESSION_ID_LEN + 1])
{
	unsigned char rnd[SESSION_ID_LEN / 2];
	struct session *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(s->id, sizeof(s->id), rnd, sizeof(rnd));
	s->user = strdup(user);
	s->uid = uid;
	s->service = dup_or_null(service);
	s->tty = dup_or_null(tty);
	s->workload = dup_or_null(workload);
	s->opened = util_now();
	if (s->user == NULL) {
		session_free(s);
		return -ENOMEM;
	}
	s->next = ss->head;
	ss->head = s;
	ss->n++;
	memcpy(id, s->id, sizeof(s->id));
	return 0;
}

int
sessions_close(struct sessions *ss, const char *user, const char *id)
{
	struct session **pp, *s;

	for (pp = &ss->head; (s = *pp) != NULL; pp = &s->next)
		if (strcmp(s->id, id) == 0 && strcmp(s->user, user) == 0) {
			*pp = s->next;
			session_free(s);
			ss->n--;
			return 0;
		}
	return -ENOENT;
}

size_t
sessions_count(const struct sessions *ss)
{
	return ss->n;
}
