/*
 * bench_tokcli.c - the byte path of lib/client.c alone, as `credctl
 * token` runs it: connect (and check credd's uid, as credctl does),
 * client_token_call, write the token and a newline to stdout from a
 * wiped buffer, exit 0. Linked like credctl (lib/ and libjansson), so
 * bench/run can show what credctl adds to that path (options, allocator
 * hooks, output) against the same one-round-trip floor.
 *
 *   bench_tokcli --socket PATH [SCOPE]
 *   bench_tokcli smoke
 *	A one-shot server in a child answers one token reply; checks the
 *	token printed (CTest; never timing).
 *
 * Must never: print anything but the token on stdout, or leave it in
 * memory it frees unwiped.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "entra/client.h"
#include "entra/secret.h"
#include "entra/util.h"

#define TOKCLI_DEADLINE_MS 30000

static int
token(const char *path, const char *scope, const char *server_user, int out)
{
	struct client_token tok;
	json_t *resp = NULL;
	int64_t deadline = util_mono_ms() + TOKCLI_DEADLINE_MS;
	char *line;
	int fd, r;

	fd = client_connect(path, server_user, deadline);
	if (fd < 0) {
		fprintf(stderr, "bench_tokcli: connect: %s\n", strerror(-fd));
		return 4;
	}
	r = client_token_call(fd, scope, -1, &tok, &resp, deadline);
	close(fd);
	if (r < 0 || resp != NULL) {
		fprintf(stderr, "bench_tokcli: %s\n",
		    r < 0 ? strerror(-r) : "not the usual token reply");
		json_decref(resp);
		return 1;
	}
	line = malloc(tok.access_token->len + 1);
	if (line == NULL) {
		client_token_clear(&tok);
		return 1;
	}
	memcpy(line, tok.access_token->ptr, tok.access_token->len);
	line[tok.access_token->len] = '\n';
	r = util_write_all(out, line, tok.access_token->len + 1);
	secret_wipe(line, tok.access_token->len + 1);
	free(line);
	client_token_clear(&tok);
	return r < 0 ? 1 : 0;
}

static int
smoke(void)
{
	static const char reply[] =
	    "{\"ok\":true,\"access_token\":\"eyJ.a.b\","
	    "\"token_type\":\"Bearer\",\"expires_on\":1,\"scope\":\"s\","
	    "\"account\":null}\n";
	char dir[] = "/tmp/bench-tokcli-XXXXXX", path[PATH_MAX], buf[256];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int lfd, p[2], rc = 1, status;
	struct passwd *pw;
	pid_t pid;
	ssize_t n;

	if (mkdtemp(dir) == NULL || pipe(p) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(lfd, 1) < 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0 ||
		    util_write_all(fd, reply, sizeof(reply) - 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(lfd);
	pw = getpwuid(geteuid()); /* our own server: not root when we are not */
	if (pid > 0 && pw != NULL &&
	    token(path, "storage", pw->pw_name, p[1]) == 0) {
		close(p[1]);
		n = read(p[0], buf, sizeof(buf) - 1);
		rc = n == 8 && memcmp(buf, "eyJ.a.b\n", 8) == 0 ? 0 : 1;
	}
	if (pid > 0)
		(void)waitpid(pid, &status, 0);
	(void)unlink(path);
	(void)rmdir(dir);
	fprintf(stderr, "smoke: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 2 && strcmp(argv[1], "smoke") == 0)
		return smoke();
	if ((argc != 3 && argc != 4) || strcmp(argv[1], "--socket") != 0) {
		fprintf(stderr,
		    "usage: bench_tokcli --socket PATH [SCOPE]\n"
		    "       bench_tokcli smoke\n");
		return 2;
	}
	return token(argv[2], argc == 4 ? argv[3] : NULL, NULL, STDOUT_FILENO);
}
