/*
 * test_config.c - credd.conf parsing: a good file, every error class with
 * its file:line, defaults, scope resolution, account_match expansion,
 * file permission checks, %d (systemd's credentials directory) in the
 * secret file paths, client_auth and its files, [offboarding], and the
 * shipped etc/credd.conf.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "entra/paths.h"

#include "config.h"
#include "test.h"

#define BASE                                                                   \
	"[entra]\n"                                                            \
	"tenant = 11111111-2222-3333-4444-555555555555\n"                      \
	"client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n"                   \
	"[scopes]\n"                                                           \
	"storage = https://storage.azure.com/.default\n"                       \
	"default = storage\n"

static char errbuf[1024];

static int
parse(const char *text, struct config **cf)
{
	errbuf[0] = '\0';
	return config_parse("t.conf", text, strlen(text), cf, errbuf,
	    sizeof(errbuf));
}

/* Parse text, expect failure r, and an error starting with prefix. */
static int
parse_fails(const char *text, int r, const char *prefix)
{
	struct config *cf = (struct config *)1;
	int got;

	got = parse(text, &cf);
	if (got != r || cf != NULL ||
	    strncmp(errbuf, prefix, strlen(prefix)) != 0) {
		fprintf(stderr,
		    "  text: %s\n  got %d (want %d): '%s'\n"
		    "  want prefix '%s'\n",
		    text, got, r, errbuf, prefix);
		return 0;
	}
	return 1;
}

TEST(test_good)
{
	struct config *cf = NULL;

	ASSERT_EQ(
	    parse(
		"; a comment\n"
		"# another\n"
		"[entra]\n"
		"authority = https://login.example.test/   ; trailing / goes\n"
		"tenant = contoso.onmicrosoft.com\n"
		"client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\r\n"
		"client_secret_file = /etc/credd/client-secret\n"
		"ca_file = /etc/credd/ca.pem\n"
		"proxy = http://user@proxy:3128/#frag\n"
		"timeout = 30\n"
		"account_match = %u@contoso.com\n"
		"\n"
		"  [ scopes ]  # spaces are fine\n"
		"storage = https://storage.azure.com/.default\n"
		"databricks=2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default\n"
		"default = databricks\n"
		"[server]\n"
		"socket = /tmp/credd.sock\n"
		"user = credd2\n"
		"node = node-1.example\n"
		"admin_group = Domain-Admins\n"
		"max_conns_per_uid = 10\n"
		"idle_timeout = 5\n"
		"max_conns = 100\n"
		"max_output_per_uid = 65536\n"
		"max_output = 2147483647\n"
		"locked_memory_kib = 0\n"
		"[limits]\n"
		"requests_per_sec = 7\n"
		"request_burst = 8\n"
		"device_flows_per_hour = 9\n"
		"device_flow_cooldown = 0\n"
		"recent_use = 11\n"
		"[audit]\n"
		"file = /var/log/credd/audit.jsonl\n"
		"[store]\n"
		"backend = postgres\n"
		"dsn = host=db dbname=credd user=credd\n"
		"key_file = /etc/credd/keys\n"
		"path = /srv/credd\n",
		&cf),
	    0);
	ASSERT_TRUE(cf != NULL);
	ASSERT_STREQ(cf->path, "t.conf");
	ASSERT_STREQ(cf->authority, "https://login.example.test");
	ASSERT_STREQ(cf->tenant, "contoso.onmicrosoft.com");
	ASSERT_STREQ(cf->client_id, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
	ASSERT_STREQ(cf->client_secret_file, "/etc/credd/client-secret");
	ASSERT_STREQ(cf->ca_file, "/etc/credd/ca.pem");
	/* '#' not after whitespace is part of the value. */
	ASSERT_STREQ(cf->proxy, "http://user@proxy:3128/#frag");
	ASSERT_EQ(cf->timeout, 30);
	ASSERT_STREQ(cf->account_match, "%u@contoso.com");
	ASSERT_EQ(cf->nscopes, 2);
	ASSERT_STREQ(cf->scopes[0].alias, "storage");
	ASSERT_STREQ(cf->scopes[1].scope,
	    "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default");
	ASSERT_STREQ(cf->default_alias, "databricks");
	ASSERT_STREQ(cf->socket, "/tmp/credd.sock");
	ASSERT_STREQ(cf->user, "credd2");
	ASSERT_STREQ(cf->node, "node-1.example");
	ASSERT_STREQ(cf->admin_group, "Domain-Admins");
	ASSERT_EQ(cf->max_conns_per_uid, 10);
	ASSERT_EQ(cf->idle_timeout, 5);
	ASSERT_EQ(cf->max_conns, 100);
	ASSERT_EQ(cf->max_output_per_uid, 65536);
	ASSERT_EQ(cf->max_output, 2147483647);
	ASSERT_EQ(cf->locked_memory_kib, 0);
	ASSERT_EQ(cf->requests_per_sec, 7);
	ASSERT_EQ(cf->request_burst, 8);
	ASSERT_EQ(cf->device_flows_per_hour, 9);
	ASSERT_EQ(cf->device_flow_cooldown, 0);
	ASSERT_EQ(cf->recent_use, 11);
	ASSERT_STREQ(cf->audit_file, "/var/log/credd/audit.jsonl");
	ASSERT_STREQ(cf->backend, "postgres");
	ASSERT_STREQ(cf->dsn, "host=db dbname=credd user=credd");
	ASSERT_STREQ(cf->key_file, "/etc/credd/keys");
	ASSERT_STREQ(cf->store_path, "/srv/credd");
	config_free(cf);
}

TEST(test_defaults)
{
	struct config *cf = NULL;
	char host[256] = "";

	ASSERT_EQ(parse(BASE, &cf), 0);
	ASSERT_STREQ(cf->authority, "https://login.microsoftonline.com");
	ASSERT_EQ(cf->timeout, 10);
	ASSERT_TRUE(cf->client_secret_file == NULL);
	ASSERT_TRUE(cf->ca_file == NULL);
	ASSERT_TRUE(cf->proxy == NULL);
	ASSERT_TRUE(cf->account_match == NULL);
	ASSERT_TRUE(cf->client_capabilities == NULL); /* CAE off */
	ASSERT_STREQ(cf->socket, ENTRA_SOCKET_PATH);
	ASSERT_STREQ(cf->user, ENTRA_CREDD_USER);
	ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
	ASSERT_STREQ(cf->node, host);
	ASSERT_STREQ(cf->admin_group, "credd-admin");
	ASSERT_EQ(cf->max_conns_per_uid, 4096);
	ASSERT_EQ(cf->idle_timeout, 60);
	ASSERT_EQ(cf->max_conns, 65536);
	ASSERT_EQ(cf->max_output_per_uid, 1048576);
	ASSERT_EQ(cf->max_output, 33554432);
	ASSERT_EQ(cf->locked_memory_kib, 4096);
	ASSERT_EQ(cf->requests_per_sec, 20000);
	ASSERT_EQ(cf->request_burst, 40000);
	ASSERT_EQ(cf->device_flows_per_hour, 10);
	ASSERT_EQ(cf->device_flow_cooldown, 300);
	ASSERT_EQ(cf->recent_use, 3600);
	ASSERT_TRUE(cf->audit_file == NULL);
	ASSERT_STREQ(cf->backend, "file");
	ASSERT_STREQ(cf->store_path, ENTRA_STATE_DIR);
	ASSERT_STREQ(cf->marks_path, ENTRA_STATE_DIR "-marks");
	ASSERT_TRUE(cf->dsn == NULL);
	ASSERT_STREQ(cf->key_file, ENTRA_KEY_FILE);
	config_free(cf);
}

TEST(test_errors)
{
	char line[5000];

	ASSERT_TRUE(parse_fails(BASE "[server]\nfoo = 1\n", -EINVAL,
	    "t.conf:8: unknown key 'foo' in [server]"));
	ASSERT_TRUE(parse_fails(BASE "[nosuch]\nport = 1\n", -EINVAL,
	    "t.conf:7: unknown section [nosuch]"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\ntimeout = 5\ntimeout = 6\n",
	    -EEXIST, "t.conf:9: duplicate key 'timeout' in [entra]"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nsecret = x\n", -EINVAL,
	    "t.conf:8: unknown key 'secret' in [entra]"));
	ASSERT_TRUE(parse_fails(BASE "storage = x\n", -EEXIST,
	    "t.conf:7: duplicate key 'storage' in [scopes]"));
	ASSERT_TRUE(parse_fails(BASE "default = storage\n", -EEXIST,
	    "t.conf:7: duplicate key 'default' in [scopes]"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\ntimeout = 1O\n", -EINVAL,
	    "t.conf:8: timeout: '1O' is not a number"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\ntimeout = 301\n", -ERANGE,
	    "t.conf:8: timeout: '301' is out of range 1..300"));
	ASSERT_TRUE(
	    parse_fails(BASE "[server]\nlocked_memory_kib = 1048577\n", -ERANGE,
		"t.conf:8: locked_memory_kib: '1048577' is out of range "
		"0..1048576"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\ntimeout = 0\n", -ERANGE,
	    "t.conf:8: timeout: '0' is out of range"));
	ASSERT_TRUE(parse_fails(BASE "[limits]\ndevice_flow_cooldown = -1\n",
	    -ERANGE, "t.conf:8: device_flow_cooldown: '-1' is out of range"));
	/* one reply (up to 64 KiB) must always fit a uid's output cap */
	ASSERT_TRUE(parse_fails(BASE "[server]\nmax_output_per_uid = 65535\n",
	    -ERANGE, "t.conf:8: max_output_per_uid: '65535' is out of range"));
	ASSERT_TRUE(parse_fails(BASE "[server]\nmax_output = 2147483648\n",
	    -ERANGE, "t.conf:8: max_output: '2147483648' is out of range"));
	ASSERT_TRUE(
	    parse_fails(BASE "[entra]\n"
			     "authority = http://login.microsoftonline.com\n",
		-EINVAL, "t.conf:8: authority must be an https:// URL"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nauthority = https://\n", -EINVAL,
	    "t.conf:8: authority must be an https:// URL"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nproxy = socks5://p:1080\n",
	    -EINVAL, "t.conf:8: proxy must be an http:// or https:// URL"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nca_file = ca.pem\n", -EINVAL,
	    "t.conf:8: ca_file must be an absolute path"));
	ASSERT_TRUE(parse_fails(BASE "[store]\npath = var/lib\n", -EINVAL,
	    "t.conf:8: path must be an absolute path"));
	ASSERT_TRUE(parse_fails(BASE "[audit]\nfile = a.jsonl\n", -EINVAL,
	    "t.conf:8: file must be an absolute path"));
	ASSERT_TRUE(parse_fails(BASE "[store]\nbackend = sqlite\n", -EINVAL,
	    "t.conf:8: backend must be 'file' or 'postgres'"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\naccount_match = %s@x\n", -EINVAL,
	    "t.conf:8: account_match must be"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nclient_capabilities = cp2\n",
	    -EINVAL, "t.conf:8: client_capabilities must be cp1"));
	ASSERT_TRUE(parse_fails(BASE "[server]\nuser = Bad User\n", -EINVAL,
	    "t.conf:8: user is not a valid user name"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nproxy =\n", -EINVAL,
	    "t.conf:8: proxy: empty value"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\njunk\n", -EINVAL,
	    "t.conf:8: expected 'key = value'"));
	ASSERT_TRUE(parse_fails(BASE "[entra\n", -EINVAL,
	    "t.conf:7: malformed section header"));
	ASSERT_TRUE(parse_fails("timeout = 5\n" BASE, -EINVAL,
	    "t.conf:1: key 'timeout' outside any [section]"));
	ASSERT_TRUE(parse_fails(BASE "Bad Alias = x\n", -EINVAL,
	    "t.conf:7: scope alias 'Bad Alias' must be"));
	ASSERT_TRUE(parse_fails(BASE "two = a b\n", -EINVAL,
	    "t.conf:7: two: scope must be one scope string"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\ntenant = x\n", -EEXIST,
	    "t.conf:8: duplicate key 'tenant' in [entra]"));

	/* Line too long, on line 7. */
	memset(line, 'x', sizeof(line));
	memcpy(line, BASE, strlen(BASE));
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	ASSERT_TRUE(parse_fails(line, -EMSGSIZE,
	    "t.conf:7: line longer than 4096 bytes"));

	/* User strings are quoted and capped: no newline, no 200 bytes. */
	ASSERT_TRUE(parse_fails(BASE
	    "[server]\n"
	    "k\x1b["
	    "31mxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx = 1\n",
	    -EINVAL, "t.conf:8: unknown key 'k?[31mxxx"));
	ASSERT_TRUE(strlen(errbuf) < 120);
	ASSERT_TRUE(strstr(errbuf, "...' in [server]") != NULL);
}

TEST(test_missing)
{
	ASSERT_TRUE(parse_fails("[entra]\nclient_id = a\n"
				"[scopes]\ns = x\ndefault = s\n",
	    -EINVAL, "t.conf: missing 'tenant' in [entra]"));
	ASSERT_TRUE(parse_fails("[entra]\ntenant = a\n"
				"[scopes]\ns = x\ndefault = s\n",
	    -EINVAL, "t.conf: missing 'client_id' in [entra]"));
	ASSERT_TRUE(parse_fails("[entra]\ntenant = a\nclient_id = b\n", -EINVAL,
	    "t.conf: missing scopes"));
	ASSERT_TRUE(parse_fails("[entra]\ntenant = a\nclient_id = b\n"
				"[scopes]\ns = x\n",
	    -EINVAL, "t.conf: missing 'default' in [scopes]"));
	ASSERT_TRUE(parse_fails("[entra]\ntenant = a\nclient_id = b\n"
				"[scopes]\ndefault = nope\ns = x\n",
	    -EINVAL, "t.conf:5: default names unknown alias 'nope'"));
	ASSERT_TRUE(parse_fails(BASE "[store]\nbackend = postgres\n", -EINVAL,
	    "t.conf: missing 'dsn' in [store]"));
	ASSERT_TRUE(parse_fails(BASE "[store]\ndsn = host=x\n", -EINVAL,
	    "t.conf: [store] dsn is only for backend = postgres"));
	ASSERT_TRUE(parse_fails("", -EINVAL, "t.conf: missing 'client_id'"));
}

/* [store] marks: beside the store by default, never inside a file store. */
TEST(test_marks_path)
{
	struct config *cf = NULL;

	ASSERT_EQ(parse(BASE "[store]\npath = /srv/credd/\n", &cf), 0);
	ASSERT_STREQ(cf->marks_path, "/srv/credd-marks");
	config_free(cf);
	ASSERT_EQ(parse(BASE "[store]\npath = /srv/credd\n"
			     "marks = /var/lib/credd-hw\n",
		      &cf),
	    0);
	ASSERT_STREQ(cf->marks_path, "/var/lib/credd-hw");
	config_free(cf);
	/* A sibling sharing the prefix is outside. */
	ASSERT_EQ(parse(BASE "[store]\npath = /srv/credd\n"
			     "marks = /srv/credd2\n",
		      &cf),
	    0);
	config_free(cf);
	ASSERT_TRUE(parse_fails(BASE "[store]\npath = /srv/credd\n"
				     "marks = /srv/credd/marks\n",
	    -EINVAL, "t.conf: [store] marks must lie outside path"));
	ASSERT_TRUE(parse_fails(BASE "[store]\npath = /srv/credd/\n"
				     "marks = /srv/credd\n",
	    -EINVAL, "t.conf: [store] marks must lie outside path"));
	ASSERT_TRUE(parse_fails(BASE "[store]\nmarks = relative\n", -EINVAL,
	    "t.conf:8: marks"));
	/* The postgres store is not under path: marks may be. */
	ASSERT_EQ(parse(BASE
		      "[store]\nbackend = postgres\ndsn = host=x\n"
		      "path = /var/lib/credd\nmarks = /var/lib/credd/marks\n",
		      &cf),
	    0);
	config_free(cf);
}

TEST(test_scope_resolve)
{
	struct config *cf = NULL;

	ASSERT_EQ(parse("[entra]\ntenant = t\nclient_id = c\n[scopes]\n"
			"storage = https://storage.azure.com/.default\n"
			"vault = https://vault.azure.net/.default\n"
			"default = vault\n",
		      &cf),
	    0);
	ASSERT_STREQ(config_default_scope(cf),
	    "https://vault.azure.net/.default");
	ASSERT_STREQ(config_scope_resolve(cf, NULL),
	    "https://vault.azure.net/.default");
	ASSERT_STREQ(config_scope_resolve(cf, ""),
	    "https://vault.azure.net/.default");
	ASSERT_STREQ(config_scope_resolve(cf, "storage"),
	    "https://storage.azure.com/.default");
	ASSERT_STREQ(config_scope_resolve(cf,
			 "https://storage.azure.com/.default"),
	    "https://storage.azure.com/.default");
	/* The pointer is the configured string, not the argument. */
	ASSERT_TRUE(config_scope_resolve(cf, "storage") == cf->scopes[0].scope);
	ASSERT_TRUE(config_scope_resolve(cf,
			"https://graph.microsoft.com/"
			".default") == NULL);
	ASSERT_TRUE(config_scope_resolve(cf, "Storage") == NULL);
	ASSERT_TRUE(config_scope_resolve(cf, "default") == NULL);
	config_free(cf);
}

TEST(test_account_match)
{
	struct config *cf = NULL;
	char buf[64];

	ASSERT_EQ(parse(BASE, &cf), 0);
	ASSERT_ERR(config_account_match(cf, "alice", buf, sizeof(buf)),
	    -ENOENT);
	config_free(cf);

	ASSERT_EQ(parse(BASE "[entra]\naccount_match = %u.%%x%%@%u.com\n", &cf),
	    0);
	ASSERT_EQ(config_account_match(cf, "alice", buf, sizeof(buf)), 0);
	ASSERT_STREQ(buf, "alice.%x%@alice.com");
	/* "alice.%x%@alice.com" is 19 bytes: 19 fail, 20 fit. */
	ASSERT_ERR(config_account_match(cf, "alice", buf, 19), -ENAMETOOLONG);
	ASSERT_STREQ(buf, "");
	ASSERT_EQ(config_account_match(cf, "alice", buf, 20), 0);
	ASSERT_STREQ(buf, "alice.%x%@alice.com");
	config_free(cf);
}

static int
write_file(const char *path, const char *text, mode_t mode)
{
	int fd;
	ssize_t n;

	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (fchmod(fd, mode) < 0 || n != (ssize_t)strlen(text)) {
		(void)close(fd);
		return -EIO;
	}
	return close(fd) < 0 ? -errno : 0;
}

TEST(test_load)
{
	const char *dir = fixture_tmpdir("config");
	char path[PATH_MAX];
	char link[PATH_MAX];
	struct config *cf = NULL;

	ASSERT_TRUE(dir != NULL);
	(void)snprintf(path, sizeof(path), "%s/credd.conf", dir);
	(void)snprintf(link, sizeof(link), "%s/link.conf", dir);

	ASSERT_EQ(write_file(path, BASE "[entra]\ntimeout = 0\n", 0644), 0);
	ASSERT_ERR(config_load(path, &cf, errbuf, sizeof(errbuf)), -ERANGE);
	ASSERT_TRUE(strncmp(errbuf, path, strlen(path)) == 0);
	ASSERT_TRUE(strstr(errbuf, ":8: timeout") != NULL);

	ASSERT_EQ(write_file(path, BASE, 0644), 0);
	ASSERT_EQ(config_load(path, &cf, errbuf, sizeof(errbuf)), 0);
	ASSERT_STREQ(cf->path, path);
	config_free(cf);
	cf = NULL;

	/* Symlinks are followed: config management links /etc files. */
	ASSERT_EQ(symlink(path, link), 0);
	ASSERT_EQ(config_load(link, &cf, errbuf, sizeof(errbuf)), 0);
	config_free(cf);
	cf = NULL;

	ASSERT_EQ(write_file(path, BASE, 0664), 0);
	ASSERT_ERR(config_load(path, &cf, errbuf, sizeof(errbuf)), -EPERM);
	ASSERT_TRUE(strstr(errbuf, "writable by group or others") != NULL);
	ASSERT_EQ(write_file(path, BASE, 0646), 0);
	ASSERT_ERR(config_load(path, &cf, errbuf, sizeof(errbuf)), -EPERM);
	ASSERT_TRUE(cf == NULL);

	ASSERT_ERR(config_load(dir, &cf, errbuf, sizeof(errbuf)), -EPERM);
	ASSERT_TRUE(strstr(errbuf, "not a regular file") != NULL);

	(void)unlink(link);
	(void)unlink(path);
	ASSERT_ERR(config_load(path, &cf, errbuf, sizeof(errbuf)), -ENOENT);
	ASSERT_EQ(rmdir(dir), 0);
}

/* The shipped example, found from this file's path (or TEST_DATA_DIR). */
static int
example_path(char *dst, size_t dstsz)
{
	char src[PATH_MAX];
	const char *data;

	if (__FILE__[0] == '/') {
		(void)snprintf(src, sizeof(src), "%s", __FILE__);
		/* tests/unit/test_config.c -> the source root */
		(void)snprintf(dst, dstsz, "%s/../../etc/credd.conf",
		    dirname(src));
		if (access(dst, R_OK) == 0)
			return 0;
	}
	/*
	 * A relative __FILE__ (a package build maps the source root to ".").
	 * TEST_DATA_DIR is SOURCE/tests/data, which need not exist, so strip
	 * its last two components as text rather than resolve "..".
	 */
	data = getenv("TEST_DATA_DIR");
	if (data == NULL)
		return -ENOENT;
	(void)snprintf(src, sizeof(src), "%s", data);
	(void)snprintf(dst, dstsz, "%s/etc/credd.conf", dirname(dirname(src)));
	return access(dst, R_OK) == 0 ? 0 : -ENOENT;
}

TEST(test_example_file)
{
	char path[PATH_MAX];
	struct config *cf = NULL, *def = NULL;
	static char text[65536];
	size_t len;
	FILE *f;

	ASSERT_EQ(example_path(path, sizeof(path)), 0);
	f = fopen(path, "re");
	ASSERT_TRUE(f != NULL);
	len = fread(text, 1, sizeof(text), f);
	(void)fclose(f);
	ASSERT_TRUE(len > 0 && len < sizeof(text));
	/* config_parse: the checkout's file mode depends on the umask. */
	errbuf[0] = '\0';
	ASSERT_EQ(config_parse(path, text, len, &cf, errbuf, sizeof(errbuf)),
	    0);
	ASSERT_STREQ(config_scope_resolve(cf, NULL),
	    "https://storage.azure.com/.default");

	/* "every keyword at its default": same values as an empty file. */
	ASSERT_EQ(parse(BASE, &def), 0);
	ASSERT_STREQ(cf->authority, def->authority);
	ASSERT_EQ(cf->cloud, def->cloud);
	ASSERT_EQ(cf->provider, def->provider);
	ASSERT_STREQ(cf->off_graph_url, def->off_graph_url);
	ASSERT_EQ(cf->timeout, def->timeout);
	ASSERT_STREQ(cf->user, def->user);
	ASSERT_STREQ(cf->admin_group, def->admin_group);
	ASSERT_EQ(cf->max_conns_per_uid, def->max_conns_per_uid);
	ASSERT_EQ(cf->idle_timeout, def->idle_timeout);
	ASSERT_EQ(cf->max_conns, def->max_conns);
	ASSERT_EQ(cf->max_output_per_uid, def->max_output_per_uid);
	ASSERT_EQ(cf->max_output, def->max_output);
	ASSERT_EQ(cf->locked_memory_kib, def->locked_memory_kib);
	ASSERT_EQ(cf->locked_memory_kib, 4096);
	ASSERT_EQ(cf->requests_per_sec, def->requests_per_sec);
	ASSERT_EQ(cf->request_burst, def->request_burst);
	ASSERT_EQ(cf->device_flows_per_hour, def->device_flows_per_hour);
	ASSERT_EQ(cf->device_flow_cooldown, def->device_flow_cooldown);
	ASSERT_EQ(cf->recent_use, def->recent_use);
	ASSERT_EQ(cf->session_check, def->session_check);
	ASSERT_EQ(cf->session_idle, def->session_idle);
	ASSERT_EQ(cf->session_liveness, def->session_liveness);
	ASSERT_STREQ(cf->backend, def->backend);
	ASSERT_STREQ(cf->marks_path, def->marks_path);
	config_free(def);
	config_free(cf);
}

/* [server] session_*: how credd ends sessions nobody closed. */
TEST(test_session_keys)
{
	struct config *cf = NULL;

	ASSERT_EQ(parse(BASE, &cf), 0);
	ASSERT_EQ(cf->session_check, 60);
	ASSERT_EQ(cf->session_idle, 86400);
	ASSERT_EQ(cf->session_liveness, 1);
	config_free(cf);
	ASSERT_EQ(parse(BASE "[server]\nsession_check = 1\nsession_idle = 0\n"
			     "session_liveness = no\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->session_check, 1);
	ASSERT_EQ(cf->session_idle, 0);
	ASSERT_EQ(cf->session_liveness, 0);
	config_free(cf);
	ASSERT_TRUE(parse_fails(BASE "[server]\nsession_check = 0\n", -ERANGE,
	    "t.conf:8: session_check: '0' is out of range 1..3600"));
	ASSERT_TRUE(parse_fails(BASE "[server]\nsession_idle = -1\n", -ERANGE,
	    "t.conf:8: session_idle: '-1' is out of range"));
	ASSERT_TRUE(parse_fails(BASE "[server]\nsession_liveness = maybe\n",
	    -EINVAL, "t.conf:8: session_liveness must be yes or no"));
}

/* [msi]: off by default; listen, TTL, resources (given or derived). */
TEST(test_msi)
{
	struct sockaddr_storage ss;
	struct config *cf = NULL;
	char ep[128];
	unsigned len;

	ASSERT_EQ(parse(BASE, &cf), 0);
	ASSERT_TRUE(cf->msi_listen == NULL);
	ASSERT_EQ(cf->msi_secret_ttl, 86400);
	ASSERT_EQ(cf->msi_imds, 0); /* off unless asked for (issue 11) */
	ASSERT_EQ(cf->msi_request_timeout, 30);
	ASSERT_EQ(cf->msi_conn_timeout, 10);
	ASSERT_ERR(config_msi_endpoint(cf, ep, sizeof(ep)), -ENOENT);
	/* Default resources: each .default scope's resource, and R/ too. */
	ASSERT_EQ(cf->msi_nresources, 2);
	ASSERT_TRUE(
	    config_msi_resource_allowed(cf, "https://storage.azure.com"));
	ASSERT_TRUE(
	    config_msi_resource_allowed(cf, "https://storage.azure.com/"));
	ASSERT_TRUE(
	    !config_msi_resource_allowed(cf, "https://vault.azure.net"));
	ASSERT_TRUE(!config_msi_resource_allowed(cf,
	    "https://storage.azure.com/.default"));
	config_free(cf);

	ASSERT_EQ(
	    parse(BASE
		"databricks = 2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default\n"
		"graph = https://graph.microsoft.com/User.Read\n"
		"[msi]\nlisten = 127.0.0.1:8391\nsecret_ttl = 3600\nimds = yes\n"
		"request_timeout = 5\n",
		&cf),
	    0);
	ASSERT_STREQ(cf->msi_listen, "127.0.0.1:8391");
	ASSERT_EQ(cf->msi_secret_ttl, 3600);
	ASSERT_EQ(cf->msi_imds, 1);
	ASSERT_EQ(cf->msi_request_timeout, 5);
	ASSERT_EQ(config_msi_endpoint(cf, ep, sizeof(ep)), 0);
	ASSERT_STREQ(ep, "http://127.0.0.1:8391/msi/token");
	/* A GUID resource has no slash twin; a non-.default scope none. */
	ASSERT_EQ(cf->msi_nresources, 3);
	ASSERT_TRUE(config_msi_resource_allowed(cf,
	    "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"));
	ASSERT_TRUE(
	    !config_msi_resource_allowed(cf, "https://graph.microsoft.com"));
	config_free(cf);

	ASSERT_EQ(
	    parse(BASE
		"[msi]\nlisten = [::1]:9000\n"
		"resources = https://vault.azure.net  https://storage.azure.com/ "
		"11111111-2222-3333-4444-555555555555\n",
		&cf),
	    0);
	ASSERT_EQ(config_msi_endpoint(cf, ep, sizeof(ep)), 0);
	ASSERT_STREQ(ep, "http://[::1]:9000/msi/token");
	ASSERT_EQ(cf->msi_nresources, 3);
	ASSERT_TRUE(config_msi_resource_allowed(cf, "https://vault.azure.net"));
	ASSERT_TRUE(
	    config_msi_resource_allowed(cf, "https://storage.azure.com/"));
	ASSERT_TRUE(
	    !config_msi_resource_allowed(cf, "https://storage.azure.com"));
	config_free(cf);

	ASSERT_EQ(config_msi_addr("127.0.0.1:8391", &ss, &len), 0);
	ASSERT_EQ(ss.ss_family, AF_INET);
	ASSERT_EQ(config_msi_addr("127.1.2.3:1", &ss, &len), 0);
	ASSERT_EQ(config_msi_addr("[::1]:8391", &ss, &len), 0);
	ASSERT_EQ(ss.ss_family, AF_INET6);
	ASSERT_ERR(config_msi_addr("0.0.0.0:8391", &ss, &len), -EINVAL);
	ASSERT_ERR(config_msi_addr("10.0.0.1:8391", &ss, &len), -EINVAL);
	ASSERT_ERR(config_msi_addr("localhost:8391", &ss, &len), -EINVAL);
	ASSERT_ERR(config_msi_addr("[::]:8391", &ss, &len), -EINVAL);
	ASSERT_ERR(config_msi_addr("127.0.0.1", &ss, &len), -EINVAL);
	ASSERT_ERR(config_msi_addr("127.0.0.1:0", &ss, &len), -EINVAL);
	ASSERT_ERR(config_msi_addr("127.0.0.1:65536", &ss, &len), -EINVAL);

	ASSERT_TRUE(parse_fails(BASE "[msi]\nlisten = 0.0.0.0:80\n", -EINVAL,
	    "t.conf:8: listen must be a loopback address"));
	ASSERT_TRUE(parse_fails(BASE "[msi]\nsecret_ttl = 10\n", -ERANGE,
	    "t.conf:8: secret_ttl: '10' is out of range"));
	ASSERT_TRUE(parse_fails(BASE "[msi]\nimds = maybe\n", -EINVAL,
	    "t.conf:8: imds must be yes or no"));
	ASSERT_TRUE(parse_fails(BASE
	    "[msi]\nresources = https://storage.azure.com/.default\n",
	    -EINVAL, "t.conf:8: resources must be resources"));
	ASSERT_TRUE(parse_fails(BASE "[msi]\nresources = http://insecure\n",
	    -EINVAL, "t.conf:8: resources must be resources"));
	ASSERT_TRUE(parse_fails(BASE
	    "[msi]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n",
	    -EEXIST, "t.conf:9: duplicate key 'listen' in [msi]"));
}

/* [metrics] listen: off by default, loopback only, not [msi]'s. */
TEST(test_metrics)
{
	struct config *cf = NULL;

	ASSERT_EQ(parse(BASE, &cf), 0);
	ASSERT_TRUE(cf->metrics_listen == NULL);
	config_free(cf);
	ASSERT_EQ(parse(BASE "[metrics]\nlisten = 127.0.0.1:9464\n", &cf), 0);
	ASSERT_STREQ(cf->metrics_listen, "127.0.0.1:9464");
	config_free(cf);
	ASSERT_EQ(parse(BASE "[metrics]\nlisten = [::1]:9464\n", &cf), 0);
	config_free(cf);
	ASSERT_TRUE(parse_fails(BASE "[metrics]\nlisten = 0.0.0.0:9464\n",
	    -EINVAL, "t.conf:8: listen must be a loopback address"));
	ASSERT_TRUE(parse_fails(BASE "[metrics]\nlisten = 127.0.0.1\n", -EINVAL,
	    "t.conf:8: listen must be a loopback address"));
	ASSERT_TRUE(parse_fails(BASE "[metrics]\nport = 9464\n", -EINVAL,
	    "t.conf:8: unknown key 'port' in [metrics]"));
	ASSERT_TRUE(parse_fails(BASE "[metrics]\nlisten = 127.0.0.1:8391\n"
				     "[msi]\nlisten = 127.0.0.1:8391\n",
	    -EINVAL, "t.conf: [metrics] listen must differ from [msi] listen"));
}

/* [callback] listen (issue 13): off by default, any IP literal, its own port. */
TEST(test_callback)
{
	static const char *const good[] = { "127.0.0.1:8080", "10.1.2.3:8080",
		"0.0.0.0:8080", "[::]:8080", "[::1]:8080" };
	struct config *cf = NULL;
	char text[512];
	size_t i;

	ASSERT_EQ(parse(BASE, &cf), 0);
	ASSERT_TRUE(cf->callback_listen == NULL);
	config_free(cf);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		(void)snprintf(text, sizeof(text),
		    BASE "[callback]\nlisten = %s\n", good[i]);
		ASSERT_EQ(parse(text, &cf), 0);
		ASSERT_STREQ(cf->callback_listen, good[i]);
		config_free(cf);
	}
	ASSERT_TRUE(parse_fails(BASE "[callback]\nlisten = host.example:80\n",
	    -EINVAL, "t.conf:8: listen must be an IP address and port"));
	ASSERT_TRUE(parse_fails(BASE "[callback]\nlisten = 10.1.2.3\n", -EINVAL,
	    "t.conf:8: listen must be an IP address and port"));
	ASSERT_TRUE(parse_fails(BASE "[callback]\nlisten = 10.1.2.3:0\n",
	    -EINVAL, "t.conf:8: listen must be an IP address and port"));
	ASSERT_TRUE(parse_fails(BASE "[callback]\nlisten = 10.1.2.3:65536\n",
	    -EINVAL, "t.conf:8: listen must be an IP address and port"));
	ASSERT_TRUE(parse_fails(BASE "[callback]\nbogus = 1\n", -EINVAL,
	    "t.conf:8: unknown key 'bogus' in [callback]"));
	/* Not the SDK endpoint's or the metrics page's port, on any address. */
	ASSERT_TRUE(parse_fails(BASE "[callback]\nlisten = 0.0.0.0:50342\n"
				     "[msi]\nlisten = 127.0.0.1:50342\n",
	    -EINVAL, "t.conf: [callback] listen must differ"));
	ASSERT_TRUE(parse_fails(BASE "[callback]\nlisten = 127.0.0.1:9464\n"
				     "[metrics]\nlisten = 127.0.0.1:9464\n",
	    -EINVAL, "t.conf: [callback] listen must differ"));
}

/* key_file / client_secret_file = %d/NAME: systemd's credentials. */
TEST(test_credentials_directory)
{
	struct config *cf = NULL;
	char big[PATH_MAX + 16];

	/* Parsed as written; --check-config needs no environment. */
	ASSERT_EQ(parse(BASE "[store]\nkey_file = %d/credd.keys\n"
			     "[entra]\nclient_secret_file = %d/client-secret\n",
		      &cf),
	    0);
	ASSERT_STREQ(cf->key_file, "%d/credd.keys");
	ASSERT_TRUE(cf->creds_dir == NULL);
	ASSERT_EQ(config_expand_credentials(cf,
		      "/run/credentials/credd.service", errbuf, sizeof(errbuf)),
	    0);
	ASSERT_STREQ(cf->key_file, "/run/credentials/credd.service/credd.keys");
	ASSERT_STREQ(cf->client_secret_file,
	    "/run/credentials/credd.service/client-secret");
	ASSERT_STREQ(cf->creds_dir, "/run/credentials/credd.service");
	/* Idempotent: nothing left to expand. */
	ASSERT_EQ(config_expand_credentials(cf, NULL, errbuf, sizeof(errbuf)),
	    0);
	ASSERT_STREQ(cf->key_file, "/run/credentials/credd.service/credd.keys");
	config_free(cf);

	/* A trailing '/' on the directory is not doubled. */
	ASSERT_EQ(parse(BASE "[store]\nkey_file = %d/k\n", &cf), 0);
	ASSERT_EQ(config_expand_credentials(cf, "/run/c//", errbuf,
		      sizeof(errbuf)),
	    0);
	ASSERT_STREQ(cf->key_file, "/run/c/k");
	config_free(cf);

	/* No %d: the directory is neither needed nor recorded. */
	ASSERT_EQ(parse(BASE "[store]\nkey_file = /etc/credd/keys\n", &cf), 0);
	ASSERT_EQ(config_expand_credentials(cf, NULL, errbuf, sizeof(errbuf)),
	    0);
	ASSERT_EQ(config_expand_credentials(cf, "relative", errbuf,
		      sizeof(errbuf)),
	    0);
	ASSERT_STREQ(cf->key_file, "/etc/credd/keys");
	ASSERT_TRUE(cf->creds_dir == NULL);
	config_free(cf);

	/* %d without $CREDENTIALS_DIRECTORY: a clear error, file unchanged. */
	ASSERT_EQ(parse(BASE "[store]\nkey_file = %d/credd.keys\n", &cf), 0);
	ASSERT_ERR(config_expand_credentials(cf, NULL, errbuf, sizeof(errbuf)),
	    -ENOENT);
	ASSERT_TRUE(strstr(errbuf,
			"t.conf: key_file = %d/credd.keys needs "
			"$CREDENTIALS_DIRECTORY, which is not set") != NULL);
	ASSERT_ERR(config_expand_credentials(cf, "", errbuf, sizeof(errbuf)),
	    -ENOENT);
	ASSERT_ERR(config_expand_credentials(cf, "run/creds", errbuf,
		       sizeof(errbuf)),
	    -EINVAL);
	ASSERT_TRUE(strstr(errbuf, "not an absolute path") != NULL);
	ASSERT_ERR(config_expand_credentials(cf, "/run/my creds", errbuf,
		       sizeof(errbuf)),
	    -EINVAL);
	ASSERT_TRUE(strstr(errbuf, "spaces or control characters") != NULL);
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	ASSERT_ERR(config_expand_credentials(cf, big, errbuf, sizeof(errbuf)),
	    -EINVAL);
	ASSERT_TRUE(strstr(errbuf, "too long") != NULL);
	ASSERT_STREQ(cf->key_file, "%d/credd.keys");
	ASSERT_TRUE(cf->creds_dir == NULL);
	config_free(cf);
	ASSERT_ERR(config_expand_credentials(NULL, "/x", NULL, 0), -EINVAL);

	/* Only a leading %d/NAME, NAME one component; no other '%'. */
	ASSERT_TRUE(parse_fails(BASE "[store]\nkey_file = %d/\n", -EINVAL,
	    "t.conf:8: key_file must be %d/NAME"));
	ASSERT_TRUE(parse_fails(BASE "[store]\nkey_file = %d/a/b\n", -EINVAL,
	    "t.conf:8: key_file must be %d/NAME"));
	ASSERT_TRUE(parse_fails(BASE "[store]\nkey_file = %d/..\n", -EINVAL,
	    "t.conf:8: key_file must be %d/NAME"));
	ASSERT_TRUE(parse_fails(BASE "[store]\nkey_file = %d/%d\n", -EINVAL,
	    "t.conf:8: key_file must be %d/NAME"));
	ASSERT_TRUE(parse_fails(BASE "[store]\nkey_file = /etc/%d/keys\n",
	    -EINVAL, "t.conf:8: key_file may use '%' only as a leading %d/"));
	ASSERT_TRUE(parse_fails(BASE "[store]\nkey_file = %D/keys\n", -EINVAL,
	    "t.conf:8: key_file may use '%' only as a leading %d/"));
	ASSERT_TRUE(parse_fails(BASE "[store]\nkey_file = keys\n", -EINVAL,
	    "t.conf:8: key_file must be an absolute path"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nclient_secret_file = %d\n",
	    -EINVAL, "t.conf:8: client_secret_file may use '%' only"));
	/* Other paths do not expand %d. */
	ASSERT_TRUE(parse_fails(BASE "[entra]\nca_file = %d/ca.pem\n", -EINVAL,
	    "t.conf:8: ca_file must be an absolute path"));
}

/* [entra] client_auth and the file of each method (issue 13). */
TEST(test_client_auth)
{
	struct config *cf = NULL;

	/* Default: secret when client_secret_file is set, else none. */
	ASSERT_EQ(parse(BASE, &cf), 0);
	ASSERT_EQ(cf->client_auth, CONFIG_CLIENT_AUTH_NONE);
	ASSERT_STREQ(config_client_auth_name(cf->client_auth), "none");
	config_free(cf);
	ASSERT_EQ(parse(BASE "[entra]\nclient_secret_file = /etc/credd/s\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->client_auth, CONFIG_CLIENT_AUTH_SECRET);
	config_free(cf);
	ASSERT_EQ(parse(BASE "[entra]\nclient_auth = certificate\n"
			     "client_certificate_file = %d/client.pem\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->client_auth, CONFIG_CLIENT_AUTH_CERTIFICATE);
	ASSERT_STREQ(config_client_auth_name(cf->client_auth), "certificate");
	ASSERT_EQ(config_expand_credentials(cf, "/run/c", errbuf,
		      sizeof(errbuf)),
	    0);
	ASSERT_STREQ(cf->client_certificate_file, "/run/c/client.pem");
	config_free(cf);
	ASSERT_EQ(parse(BASE "[entra]\nclient_auth = federated\n"
			     "client_assertion_file = /var/run/secrets/azure/"
			     "tokens/azure-identity-token\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->client_auth, CONFIG_CLIENT_AUTH_FEDERATED);
	ASSERT_STREQ(config_client_auth_name(cf->client_auth), "federated");
	config_free(cf);
	ASSERT_STREQ(config_client_auth_name(-1), "?");
	ASSERT_STREQ(config_client_auth_name(4), "?");

	ASSERT_TRUE(parse_fails(BASE "[entra]\nclient_auth = cert\n", -EINVAL,
	    "t.conf:8: client_auth must be none, secret, certificate or "
	    "federated"));
	ASSERT_TRUE(
	    parse_fails(BASE "[entra]\nclient_auth = certificate\n", -EINVAL,
		"t.conf: missing 'client_certificate_file' in [entra] "
		"(client_auth = certificate)"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nclient_auth = federated\n",
	    -EINVAL, "t.conf: missing 'client_assertion_file'"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nclient_auth = secret\n", -EINVAL,
	    "t.conf: missing 'client_secret_file'"));
	/* One credential: a second file is a mistake, not a fallback. */
	ASSERT_TRUE(parse_fails(BASE "[entra]\nclient_auth = none\n"
				     "client_secret_file = /etc/credd/s\n",
	    -EINVAL,
	    "t.conf: [entra] client_secret_file is set but client_auth = "
	    "none (set client_auth = secret, or remove client_secret_file)"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nclient_auth = certificate\n"
				     "client_certificate_file = /etc/c.pem\n"
				     "client_secret_file = /etc/credd/s\n",
	    -EINVAL,
	    "t.conf: [entra] client_secret_file is set but client_auth = "
	    "certificate"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nclient_certificate_file = "
				     "/etc/c.pem\n",
	    -EINVAL,
	    "t.conf: [entra] client_certificate_file is set but client_auth "
	    "= none"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nclient_secret_file = /s\n"
				     "client_assertion_file = /t\n",
	    -EINVAL,
	    "t.conf: [entra] client_assertion_file is set but client_auth = "
	    "secret"));
	/* The federated file is a plain path: no %d (it rotates on disk). */
	ASSERT_TRUE(parse_fails(BASE "[entra]\nclient_auth = federated\n"
				     "client_assertion_file = %d/t\n",
	    -EINVAL, "t.conf:9: client_assertion_file must be an absolute"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nclient_auth = none\n"
				     "client_auth = none\n",
	    -EEXIST, "t.conf:9: duplicate key 'client_auth'"));
}

/* [entra] signin, domain_hint and [callback] redirect_uri (issue 13). */
TEST(test_signin)
{
	struct config *cf = NULL;

	ASSERT_EQ(parse(BASE, &cf), 0);
	ASSERT_EQ(cf->signin, CONFIG_SIGNIN_DEVICE_CODE);
	ASSERT_STREQ(config_signin_name(cf->signin), "device_code");
	ASSERT_TRUE(cf->domain_hint == NULL);
	ASSERT_TRUE(cf->callback_redirect_uri == NULL);
	config_free(cf);
	ASSERT_EQ(parse(BASE "[entra]\nsignin = device_code,auth_code\n"
			     "account_match = %u@contoso.com\n"
			     "domain_hint = contoso.com\n"
			     "[callback]\nredirect_uri = "
			     "https://ds.contoso.com/entra/callback\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->signin, CONFIG_SIGNIN_DEVICE_THEN_CODE);
	ASSERT_STREQ(config_signin_name(cf->signin), "device_code,auth_code");
	ASSERT_STREQ(cf->domain_hint, "contoso.com");
	ASSERT_STREQ(cf->callback_redirect_uri,
	    "https://ds.contoso.com/entra/callback");
	config_free(cf);
	ASSERT_EQ(parse(BASE "[entra]\nsignin = auth_code\n"
			     "account_match = %u@contoso.com\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->signin, CONFIG_SIGNIN_AUTH_CODE);
	config_free(cf);
	ASSERT_STREQ(config_signin_name(7), "?");
	/* Without account_match anyone opening the link binds the user. */
	ASSERT_TRUE(parse_fails(BASE "[entra]\nsignin = auth_code\n", -EINVAL,
	    "t.conf: [entra] signin = auth_code needs account_match"));
	ASSERT_TRUE(parse_fails(BASE
	    "[entra]\nsignin = device_code,auth_code\n",
	    -EINVAL, "t.conf: [entra] signin = device_code,auth_code needs"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\nsignin = password\n", -EINVAL,
	    "t.conf:8: signin must be device_code, auth_code or"));
	ASSERT_TRUE(
	    parse_fails(BASE "[entra]\nsignin = auth_code,device_code\n",
		-EINVAL, "t.conf:8: signin must be"));
	ASSERT_TRUE(parse_fails(BASE "[entra]\ndomain_hint = a b\n", -EINVAL,
	    "t.conf:8: domain_hint must be"));
	ASSERT_TRUE(parse_fails(BASE "[callback]\nredirect_uri = "
				     "http://ds.contoso.com/cb\n",
	    -EINVAL, "t.conf:8: redirect_uri must be an https:// URL"));
	ASSERT_TRUE(parse_fails(BASE "[callback]\nredirect_uri = "
				     "https://ds.contoso.com\n",
	    -EINVAL, "t.conf:8: redirect_uri must be an https:// URL with"));
	ASSERT_TRUE(parse_fails(BASE "[callback]\nredirect_uri = "
				     "https://ds.contoso.com/cb?x=1\n",
	    -EINVAL, "t.conf:8: redirect_uri must not have a query"));
	ASSERT_TRUE(parse_fails(BASE "[callback]\nport = 1\n", -EINVAL,
	    "t.conf:8: unknown key"));
}

/* [offboarding]: the admin credential for Graph (issue 17 part 3). */
#define OFF_ID "99999999-8888-7777-6666-555555555555"
/* parse fails (-EINVAL, -ERANGE) with an error that holds what. */
static int
fails_with(const char *text, const char *what)
{
	struct config *cf = NULL;
	int got = parse(text, &cf);

	if (got >= 0 || cf != NULL || strstr(errbuf, what) == NULL) {
		fprintf(stderr, "  got %d: '%s' (want '%s')\n", got, errbuf,
		    what);
		config_free(cf);
		return 0;
	}
	return 1;
}

/* [entra] provider and the discovery keys (issue 17 part 2). */
TEST(test_provider)
{
	struct config *cf = NULL;

	ASSERT_EQ(parse(BASE, &cf), 0);
	ASSERT_EQ(cf->provider, CONFIG_PROVIDER_ENTRA);
	ASSERT_EQ(cf->discovery_min_ttl, 300);
	ASSERT_TRUE(cf->discovery_hosts == NULL);
	config_free(cf);
	ASSERT_EQ(parse(BASE
		      "[entra]\nprovider = oidc\n"
		      "authority = https://sso.example.org\n"
		      "discovery_hosts = sso.example.org idp.example:8443\n"
		      "discovery_min_ttl = 2\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->provider, CONFIG_PROVIDER_OIDC);
	ASSERT_STREQ(cf->discovery_hosts, "sso.example.org idp.example:8443");
	ASSERT_EQ(cf->discovery_min_ttl, 2);
	config_free(cf);
	ASSERT_TRUE(fails_with(BASE "[entra]\nprovider = keycloak\n",
	    "provider must be entra or oidc"));
	ASSERT_TRUE(fails_with(BASE "[entra]\ndiscovery_hosts = a/b\n",
	    "discovery_hosts must be host names"));
	ASSERT_TRUE(fails_with(BASE "[entra]\ndiscovery_hosts = a:0\n",
	    "discovery_hosts has a port outside"));
	ASSERT_TRUE(fails_with(BASE "[entra]\ndiscovery_min_ttl = 0\n",
	    "discovery_min_ttl"));
	/* Microsoft's login host is no default for a generic provider. */
	ASSERT_TRUE(fails_with(BASE "[entra]\nprovider = oidc\n",
	    "provider = oidc needs authority"));
	/* Entra-only features are refused with a generic provider. */
	ASSERT_TRUE(fails_with(BASE "[entra]\nprovider = oidc\n"
				    "client_capabilities = cp1\n",
	    "client_capabilities is Entra's"));
	ASSERT_TRUE(fails_with(BASE "[entra]\nprovider = oidc\n"
				    "authority = https://sso.example.org\n"
				    "[offboarding]\nclient_id = " OFF_ID "\n"
				    "client_secret_file = /etc/s\n",
	    "[offboarding] revokes sessions through Microsoft Graph"));
}

TEST(test_offboarding)
{
	struct config *cf = NULL;

	/* Absent: off, graph_url still has its default. */
	ASSERT_EQ(parse(BASE, &cf), 0);
	ASSERT_TRUE(cf->off_client_id == NULL);
	ASSERT_STREQ(cf->off_graph_url, "https://graph.microsoft.com");
	config_free(cf);
	/* The one file set implies the method. */
	ASSERT_EQ(parse(BASE "[offboarding]\nclient_id = " OFF_ID "\n"
			     "client_secret_file = /etc/credd/off-secret\n"
			     "graph_url = https://127.0.0.1:8443/\n",
		      &cf),
	    0);
	ASSERT_STREQ(cf->off_client_id, OFF_ID);
	ASSERT_EQ(cf->off_client_auth, CONFIG_CLIENT_AUTH_SECRET);
	ASSERT_STREQ(cf->off_client_secret_file, "/etc/credd/off-secret");
	ASSERT_STREQ(cf->off_graph_url, "https://127.0.0.1:8443");
	ASSERT_EQ(cf->client_auth, CONFIG_CLIENT_AUTH_NONE); /* [entra] */
	config_free(cf);
	ASSERT_EQ(parse(BASE "[offboarding]\nclient_id = " OFF_ID "\n"
			     "client_auth = certificate\n"
			     "client_certificate_file = %d/offboard.pem\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->off_client_auth, CONFIG_CLIENT_AUTH_CERTIFICATE);
	ASSERT_EQ(config_expand_credentials(cf, "/run/creds", errbuf,
		      sizeof(errbuf)),
	    0);
	ASSERT_STREQ(cf->off_client_certificate_file,
	    "/run/creds/offboard.pem");
	config_free(cf);
	ASSERT_EQ(parse(BASE "[offboarding]\nclient_id = " OFF_ID "\n"
			     "client_assertion_file = /run/fed/token\n",
		      &cf),
	    0);
	ASSERT_EQ(cf->off_client_auth, CONFIG_CLIENT_AUTH_FEDERATED);
	config_free(cf);

	ASSERT_TRUE(parse_fails(BASE "[offboarding]\n"
				     "client_secret_file = /etc/s\n",
	    -EINVAL, "t.conf: missing 'client_id' in [offboarding]"));
	ASSERT_TRUE(parse_fails(BASE "[offboarding]\nclient_id = "
				     "AAAAAAAA-bbbb-cccc-dddd-eeeeeeeeeeee\n"
				     "client_secret_file = /etc/s\n",
	    -EINVAL,
	    "t.conf: [offboarding] client_id must name an app of its own"));
	ASSERT_TRUE(parse_fails(BASE "[offboarding]\nclient_id = " OFF_ID "\n",
	    -EINVAL, "t.conf: [offboarding] needs one credential"));
	ASSERT_TRUE(parse_fails(BASE "[offboarding]\nclient_id = " OFF_ID "\n"
				     "client_secret_file = /etc/s\n"
				     "client_assertion_file = /run/t\n",
	    -EINVAL, "t.conf: [offboarding] needs one credential"));
	ASSERT_TRUE(parse_fails(BASE "[offboarding]\nclient_id = " OFF_ID "\n"
				     "client_auth = none\n",
	    -EINVAL,
	    "t.conf: [offboarding] client_auth = none: Microsoft "
	    "Graph takes no public client"));
	ASSERT_TRUE(parse_fails(BASE "[offboarding]\nclient_id = " OFF_ID "\n"
				     "client_auth = certificate\n"
				     "client_secret_file = /etc/s\n",
	    -EINVAL,
	    "t.conf: missing 'client_certificate_file' in [offboarding]"));
	ASSERT_TRUE(parse_fails(BASE "[offboarding]\nclient_id = " OFF_ID "\n"
				     "client_auth = secret\n"
				     "client_secret_file = /etc/s\n"
				     "client_assertion_file = /run/t\n",
	    -EINVAL,
	    "t.conf: [offboarding] client_assertion_file is set but "
	    "client_auth = secret"));
	ASSERT_TRUE(parse_fails(BASE "[offboarding]\nclient_id = " OFF_ID "\n"
				     "client_secret_file = /etc/s\n"
				     "graph_url = http://graph\n",
	    -EINVAL, "t.conf:10: graph_url must be an https:// URL"));
	ASSERT_TRUE(parse_fails(BASE "[offboarding]\nscope = x\n", -EINVAL,
	    "t.conf:8: unknown key 'scope' in [offboarding]"));
}

int
main(void)
{
	RUN(test_good);
	RUN(test_defaults);
	RUN(test_errors);
	RUN(test_missing);
	RUN(test_marks_path);
	RUN(test_scope_resolve);
	RUN(test_account_match);
	RUN(test_load);
	RUN(test_example_file);
	RUN(test_session_keys);
	RUN(test_msi);
	RUN(test_metrics);
	RUN(test_callback);
	RUN(test_credentials_directory);
	RUN(test_client_auth);
	RUN(test_signin);
	RUN(test_provider);
	RUN(test_offboarding);
	TEST_MAIN_END();
}
