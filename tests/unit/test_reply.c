/*
 * test_reply.c - replies as values (reply.h) and how the Unix socket
 * server sends them: pre-serialized bytes go out byte for byte, now and
 * after the waiter was parked; JSON is encoded as one line; a handler's
 * -ENOMEM is answered "internal" at once (never a parked connection);
 * an empty reply (nothing could be built) is the static "internal" line.
 * Shared lines (reply_line) are counted references, sent byte for byte
 * without a copy, larger than the socket buffer too (the rest queued).
 * Also the checked setters, and waiter_reply's hook and waiter_finish.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "entra/proto.h"

#include "config.h"
#include "errmap.h"
#include "event.h"
#include "reply.h"
#include "server.h"
#include "waiter.h"
#include "test.h"

/* Not what proto_encode writes (spaces, key order): only bytes do this. */
static const char odd_line[] = "{ \"ok\" : true,   \"z\":1, \"a\":\"b\" }\n";

TEST(test_reply_values)
{
	struct reply r = { 0 };
	char *b = strdup(odd_line);

	ASSERT_TRUE(reply_is_empty(&r));
	ASSERT_ERR(reply_set_json(&r, NULL), -ENOMEM);
	ASSERT_TRUE(reply_is_empty(&r));
	ASSERT_EQ(reply_set_json(&r, proto_ok()), 0);
	ASSERT_TRUE(!reply_is_empty(&r));
	ASSERT_EQ(reply_set_bytes(&r, b, strlen(b)), 0); /* drops the JSON */
	ASSERT_TRUE(
	    r.json == NULL && r.bytes == b && r.len == strlen(odd_line));
	reply_clear(&r);
	ASSERT_TRUE(reply_is_empty(&r) && r.len == 0);
	ASSERT_ERR(reply_set_bytes(&r, NULL, 3), -ENOMEM);
	reply_clear(&r);
	reply_clear(NULL);
}

TEST(test_reply_lines)
{
	struct reply a = { 0 }, b = { 0 };
	struct reply_line *l = reply_line_new(strlen(odd_line) + 8);

	ASSERT_TRUE(l != NULL);
	ASSERT_EQ(l->refs, 1);
	ASSERT_EQ(l->len, 0);
	ASSERT_EQ(l->cap, strlen(odd_line) + 8);
	memcpy(l->bytes, odd_line, strlen(odd_line));
	l->len = strlen(odd_line);
	/* Two replies share it; neither copies. */
	ASSERT_EQ(reply_set_line(&a, l), 0);
	ASSERT_EQ(reply_set_line(&b, l), 0);
	ASSERT_EQ(l->refs, 3);
	ASSERT_TRUE(a.bytes == l->bytes && a.len == l->len && a.line == l);
	ASSERT_TRUE(!reply_is_empty(&a) && a.json == NULL);
	reply_clear(&a);
	ASSERT_EQ(l->refs, 2);
	ASSERT_TRUE(reply_is_empty(&a) && a.line == NULL);
	/* Another answer replaces the line's reference. */
	ASSERT_EQ(reply_set_json(&b, proto_ok()), 0);
	ASSERT_EQ(l->refs, 1);
	ASSERT_TRUE(b.line == NULL && b.bytes == NULL);
	reply_clear(&b);
	ASSERT_EQ(reply_set_line(&a, l), 0);
	reply_line_unref(l); /* the maker lets go first: a still holds it */
	ASSERT_TRUE(memcmp(a.bytes, odd_line, a.len) == 0);
	reply_clear(&a); /* the last reference: wiped and freed (ASan) */
	reply_line_unref(NULL);
}

TEST(test_checked_setters)
{
	json_t *o = json_object(), *a = json_array();
	int bad = 0;

	reply_put(o, "k", json_integer(1), &bad);
	reply_append(a, json_integer(2), &bad);
	ASSERT_EQ(bad, 0);
	ASSERT_EQ(json_integer_value(json_object_get(o, "k")), 1);
	reply_put(o, "n", NULL, &bad); /* a constructor failed */
	ASSERT_EQ(bad, 1);
	bad = 0;
	reply_put(NULL, "k", json_string("taken and released"), &bad);
	ASSERT_EQ(bad, 1);
	bad = 0;
	reply_append(a, NULL, &bad);
	ASSERT_EQ(bad, 1);
	bad = 0;
	reply_append(o, json_integer(3), &bad); /* not an array */
	ASSERT_EQ(bad, 1);
	json_decref(o);
	json_decref(a);
}

static int hook_calls, reply_calls;

static void
count_hook(struct waiter *w, struct reply *rep)
{
	(void)w;
	ASSERT_EQ(reply_calls, 0); /* before the owner's reply */
	hook_calls++;
	reply_clear(rep); /* a hook may empty it: "internal" */
}

static void
count_reply(struct waiter *w, struct reply *rep)
{
	(void)w;
	ASSERT_TRUE(reply_is_empty(rep));
	reply_calls++;
	reply_clear(rep);
}

TEST(test_waiter_hook_and_finish)
{
	struct waiter w = { 0 };
	struct reply rep = { 0 };

	w.reply = count_reply;
	w.hook = count_hook;
	w.linked = 1;
	waiter_reply_json(&w, proto_ok());
	ASSERT_EQ(hook_calls, 1);
	ASSERT_EQ(reply_calls, 1);
	ASSERT_TRUE(w.hook == NULL && !w.linked); /* once */
	waiter_finish(&w, WAITER_PARKED, &rep);	  /* still parked: nothing */
	ASSERT_EQ(reply_calls, 1);
	w.reply = count_reply;
	hook_calls = reply_calls = 0;
}

/* ---- the socket server ---- */

enum mode {
	M_BYTES,
	M_JSON,
	M_NOMEM,
	M_PARK_BYTES,
	M_PARK_EMPTY,
	M_LINE,
	M_PARK_LINE
};

static struct {
	enum mode mode;
	struct waiter *parked;
	struct reply_line *line; /* M_LINE, M_PARK_LINE: what is served */
	char got[PROTO_LINE_MAX + 1];
	size_t gotlen;
	int fd;
} T;

static void
answer_later(struct event_loop *ev, void *arg)
{
	struct reply rep = { 0 };

	(void)ev;
	(void)arg;
	if (T.mode == M_PARK_BYTES)
		(void)reply_set_bytes(&rep, strdup(odd_line), strlen(odd_line));
	else if (T.mode == M_PARK_LINE)
		(void)reply_set_line(&rep, T.line);
	waiter_reply(T.parked, &rep); /* M_PARK_EMPTY: empty */
	T.parked = NULL;
}

static struct event_loop *test_ev;

static int
handler(void *arg, struct waiter *w, const struct proto_request *req,
    struct reply *out)
{
	json_t *o;

	(void)arg;
	(void)req;
	switch (T.mode) {
	case M_BYTES:
		return reply_set_bytes(out, strdup(odd_line), strlen(odd_line));
	case M_JSON:
		o = proto_ok();
		json_object_set_new(o, "a", json_string("b"));
		return reply_set_json(out, o);
	case M_NOMEM:
		return -ENOMEM;
	case M_LINE:
		return reply_set_line(out, T.line);
	default:
		T.parked = w;
		(void)event_timer_in(test_ev, 0, answer_later, NULL);
		return WAITER_PARKED;
	}
}

static void
client_cb(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	ssize_t n;

	(void)revents;
	(void)arg;
	n = read(fd, T.got + T.gotlen, sizeof(T.got) - 1 - T.gotlen);
	if (n > 0)
		T.gotlen += (size_t)n;
	if (n <= 0 || memchr(T.got, '\n', T.gotlen) != NULL)
		event_stop(ev);
}

static void
give_up(struct event_loop *ev, void *arg)
{
	(void)arg;
	event_stop(ev);
}

/* One request on a new connection; the reply line in T.got. */
static int
roundtrip(struct event_loop *ev, const char *path)
{
	static const char req[] = "{\"v\":1,\"op\":\"stats\"}\n";
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct event_timer *t;
	int fd;

	T.gotlen = 0;
	memset(T.got, 0, sizeof(T.got)); /* got[] keeps a NUL at the end */
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1 ||
	    event_add(ev, fd, EPOLLIN, client_cb, NULL) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	t = event_timer_in(ev, 5000, give_up, NULL);
	(void)event_run(ev);
	event_timer_cancel(ev, &t);
	event_del(ev, fd);
	close(fd);
	return 0;
}

static const char conf[] = "[entra]\n"
			   "authority = https://127.0.0.1:1\n"
			   "tenant = 72f988bf-86f1-41af-91ab-2d7cd011db47\n"
			   "client_id = 04b07795-8ddb-461a-bbee-02f9e1bf7b46\n"
			   "[scopes]\n"
			   "storage = https://storage.azure.com/.default\n"
			   "default = storage\n";

TEST(test_server_sends_replies)
{
	const char *dir = fixture_tmpdir("reply");
	char path[256], err[256];
	struct config *cf = NULL;
	struct server *srv = NULL;
	const char *nomem;
	json_t *resp = NULL;
	size_t len;
	int lfd = -1;

	ASSERT_TRUE(dir != NULL);
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	ASSERT_EQ(config_parse("test.conf", conf, sizeof(conf) - 1, &cf, err,
		      sizeof(err)),
	    0);
	ASSERT_EQ(server_listen(path, geteuid(), &lfd, err, sizeof(err)), 0);
	test_ev = event_new();
	ASSERT_TRUE(test_ev != NULL);
	ASSERT_EQ(server_new(test_ev, lfd, cf, NULL, handler, NULL, &srv), 0);

	/* Bytes go out as they are, byte for byte. */
	T.mode = M_BYTES;
	ASSERT_EQ(roundtrip(test_ev, path), 0);
	ASSERT_EQ(T.gotlen, strlen(odd_line));
	ASSERT_TRUE(memcmp(T.got, odd_line, T.gotlen) == 0);
	/* ... and after the waiter was parked. */
	T.mode = M_PARK_BYTES;
	ASSERT_EQ(roundtrip(test_ev, path), 0);
	ASSERT_EQ(T.gotlen, strlen(odd_line));
	ASSERT_TRUE(memcmp(T.got, odd_line, T.gotlen) == 0);
	/* JSON is encoded as one compact line. */
	T.mode = M_JSON;
	ASSERT_EQ(roundtrip(test_ev, path), 0);
	ASSERT_STREQ(T.got, "{\"ok\":true,\"a\":\"b\"}\n");
	/* -ENOMEM: "internal", at once. */
	T.mode = M_NOMEM;
	ASSERT_EQ(roundtrip(test_ev, path), 0);
	ASSERT_TRUE(T.gotlen > 0);
	ASSERT_EQ(proto_response_decode(T.got, T.gotlen - 1, &resp), 0);
	ASSERT_STREQ(proto_response_error(resp), "internal");
	json_decref(resp);
	/* An empty reply: the static line. */
	T.mode = M_PARK_EMPTY;
	ASSERT_EQ(roundtrip(test_ev, path), 0);
	nomem = errmap_nomem_line(&len);
	ASSERT_EQ(T.gotlen, len);
	ASSERT_TRUE(memcmp(T.got, nomem, len) == 0);
	ASSERT_EQ(proto_response_decode(T.got, T.gotlen - 1, &resp), 0);
	ASSERT_STREQ(proto_response_error(resp), "internal");
	json_decref(resp);
	/*
	 * A shared line goes out byte for byte, now and after parking, and
	 * the server lets go of its reference once sent. The second line is
	 * larger than the socket takes at once (SO_SNDBUF): the rest is
	 * queued and sent as the client reads.
	 */
	for (size_t big = 0; big < 2; big++) {
		size_t n = big ? PROTO_LINE_MAX - 1 : strlen(odd_line);

		T.line = reply_line_new(n);
		ASSERT_TRUE(T.line != NULL);
		if (big) {
			memset(T.line->bytes, 'x', n - 1);
			T.line->bytes[n - 1] = '\n';
		} else
			memcpy(T.line->bytes, odd_line, n);
		T.line->len = n;
		T.mode = M_LINE;
		ASSERT_EQ(roundtrip(test_ev, path), 0);
		ASSERT_EQ(T.gotlen, n);
		ASSERT_TRUE(memcmp(T.got, T.line->bytes, n) == 0);
		ASSERT_EQ(T.line->refs, 1);
		T.mode = M_PARK_LINE;
		ASSERT_EQ(roundtrip(test_ev, path), 0);
		ASSERT_EQ(T.gotlen, n);
		ASSERT_TRUE(memcmp(T.got, T.line->bytes, n) == 0);
		ASSERT_EQ(T.line->refs, 1);
		reply_line_unref(T.line);
		T.line = NULL;
	}

	server_free(srv);
	event_free(test_ev);
	config_free(cf);
}

int
main(void)
{
	RUN(test_reply_values);
	RUN(test_reply_lines);
	RUN(test_checked_setters);
	RUN(test_waiter_hook_and_finish);
	RUN(test_server_sends_replies);
	TEST_MAIN_END();
}
