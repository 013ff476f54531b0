/*
 * doctor_net.c - `credd doctor`'s network checks: credd's socket (a
 * socket, owned and opened as server_listen makes it, and it answers a
 * `stats` request), the IdP (the discovery document over HTTPS with the
 * configured CA and proxy, and the clock skew from its Date header), and
 * the SDK endpoint's port (who holds it: /proc/net/tcp{,6} gives the
 * listening socket's inode and uid, /proc/PID/fd the processes holding
 * that inode).
 *
 * Must never: follow a redirect or speak anything but HTTPS to the IdP,
 * turn off certificate checks, wait past the configured timeout, read
 * more than DOCTOR_BODY_MAX bytes, or bind the SDK port.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "entra/client.h"
#include "entra/util.h"

#include "config.h"
#include "discovery_doc.h"
#include "doctor_int.h"

#define DOCTOR_BODY_MAX (256 * 1024)
#define DOCTOR_SOCKET_MS 3000

/* ---- the socket ---- */

static int
check_socket_dir(struct doctor *d, const char *path)
{
	char dir[256], *slash;
	struct stat st;

	(void)snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0; /* config_check refuses these */
	*slash = '\0';
	if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	    ((st.st_mode & 022) != 0 ||
		(st.st_uid != 0 && st.st_uid != d->run_uid))) {
		doctor_say(d, DOCTOR_FAIL, "socket",
		    "%s: owner uid %u, mode %04o: others could replace the "
		    "socket",
		    dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		doctor_fix(d, "chown root:root %s && chmod 0755 %s", dir, dir);
		return -1;
	}
	return 0;
}

static int
ping(const char *path, const char *user)
{
	json_t *req = NULL, *resp = NULL;
	int fd, r;

	fd = client_connect(path, user, util_mono_ms() + DOCTOR_SOCKET_MS);
	if (fd < 0)
		return fd;
	req = client_request("stats");
	r = req == NULL ?
	    -ENOMEM :
	    client_call(fd, req, &resp, util_mono_ms() + DOCTOR_SOCKET_MS);
	if (r == 0 && !json_is_true(json_object_get(resp, "ok")))
		r = -EPROTO;
	json_decref(req);
	json_decref(resp);
	(void)close(fd);
	return r;
}

void
doctor_check_socket(struct doctor *d)
{
	const char *path = d->cf->socket;
	struct stat st;
	int r;

	if (check_socket_dir(d, path) < 0)
		return;
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		doctor_say(d, DOCTOR_FAIL, "socket", "%s: %s", path,
		    errno == ENOENT ? "no socket: credd is not running" :
				      "not a socket");
		doctor_fix(d,
		    "start credd (systemctl start credd) and read its log "
		    "(journalctl -u credd)");
		return;
	}
	if (st.st_uid != 0 && st.st_uid != d->run_uid) {
		doctor_say(d, DOCTOR_FAIL, "socket",
		    "%s: owned by uid %u, not root or %s", path,
		    (unsigned)st.st_uid, d->cf->user);
		doctor_fix(d,
		    "stop whatever made it, remove it, restart credd");
		return;
	}
	r = ping(path, d->cf->user);
	if (r < 0) {
		doctor_say(d, DOCTOR_FAIL, "socket", "%s: %s", path,
		    r == -ECONNREFUSED ? "nobody answers (a stale socket): "
					 "credd is not running" :
			r == -EPERM    ? "the process behind it is not credd's "
					 "user" :
					 strerror(-r));
		doctor_fix(d, "restart credd and read its log");
		return;
	}
	d->is_credd_up = 1;
	if ((st.st_mode & 0666) != 0666) {
		doctor_say(d, DOCTOR_WARN, "socket",
		    "%s: mode %04o: users cannot connect", path,
		    (unsigned)(st.st_mode & 07777));
		doctor_fix(d, "restart credd (it makes the socket 0666)");
		return;
	}
	doctor_say(d, DOCTOR_OK, "socket",
	    "%s answers (owner uid %u, mode %04o)", path, (unsigned)st.st_uid,
	    (unsigned)(st.st_mode & 07777));
}

/* ---- the IdP ---- */

struct fetch {
	char date[128];
	char *body;
	size_t len;
};

static size_t
on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t len = size * n, k;

	if (len > 5 && strncasecmp(buf, "Date:", 5) == 0) {
		k = len - 5 < sizeof(f->date) - 1 ? len - 5 :
						    sizeof(f->date) - 1;
		memcpy(f->date, buf + 5, k);
		f->date[k] = '\0';
		f->date[strcspn(f->date, "\r\n")] = '\0';
	}
	return len;
}

static size_t
on_write(char *buf, size_t size, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t len = size * n;
	char *p;

	if (f->len + len > DOCTOR_BODY_MAX)
		return 0; /* aborts the transfer */
	p = realloc(f->body, f->len + len + 1);
	if (p == NULL)
		return 0;
	memcpy(p + f->len, buf, len);
	f->len += len;
	p[f->len] = '\0';
	f->body = p;
	return len;
}

static CURLcode
fetch(const struct config *cf, const char *url, struct fetch *f, long *status,
    char *errbuf)
{
	long tmo = cf->timeout > 0 ? cf->timeout : 10;
	CURLcode rc = CURLE_OK;
	CURL *e;

	e = curl_easy_init();
	if (e == NULL)
		return CURLE_OUT_OF_MEMORY;
#define SET(o, v)                                                              \
	if (rc == CURLE_OK)                                                    \
	rc = curl_easy_setopt(e, (o), (v))
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT, tmo);
	SET(CURLOPT_CONNECTTIMEOUT, tmo);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	if (cf->ca_file != NULL)
		SET(CURLOPT_CAINFO, cf->ca_file);
	SET(CURLOPT_PROXY, cf->proxy != NULL ? cf->proxy : "");
	SET(CURLOPT_NOPROXY, cf->proxy != NULL ? "" : "*");
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, f);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, f);
#undef SET
	if (rc == CURLE_OK)
		rc = curl_easy_perform(e);
	if (rc == CURLE_OK)
		(void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(e);
	return rc;
}

static const char *
curl_fix(CURLcode rc)
{
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
		return "check [entra] ca_file (or the system CA bundle) and "
		       "that no TLS-intercepting proxy sits in the way";
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return "check DNS (/etc/resolv.conf) and [entra] authority";
	default:
		return "check the network, [entra] proxy, the firewall and "
		       "[entra] authority";
	}
}

static void
check_skew(struct doctor *d, const char *date, time_t now)
{
	enum doctor_level lv;
	time_t t;
	int64_t skew;

	t = date[0] != '\0' ? curl_getdate(date, NULL) : (time_t)-1;
	if (t == (time_t)-1) {
		doctor_say(d, DOCTOR_WARN, "clock",
		    "the IdP's reply has no usable Date header: skew not "
		    "measured");
		doctor_fix(d,
		    "check the clock with chronyc tracking or "
		    "timedatectl");
		return;
	}
	skew = (int64_t)t - (int64_t)now;
	lv = doctor_skew_level(skew);
	doctor_say(d, lv, "clock",
	    "%+lld s against the IdP's Date header (%s)%s", (long long)skew,
	    lv == DOCTOR_OK ? "within 1 min" : "this host's clock is off",
	    lv == DOCTOR_FAIL ? ": tokens look expired or not yet valid" : "");
	if (lv != DOCTOR_OK)
		doctor_fix(d,
		    "synchronise the clock (chrony, systemd-timesyncd "
		    "or ntpd) and check timedatectl");
}

void
doctor_check_idp(struct doctor *d)
{
	char url[1024], errbuf[CURL_ERROR_SIZE] = "";
	char why[DISCOVERY_WHY_MAX];
	struct discovery_rules rules = { d->cf->authority, d->cf->tenant,
		d->cf->discovery_hosts,
		d->cf->provider == CONFIG_PROVIDER_OIDC };
	struct discovery_doc dd;
	struct fetch f = { .date = "" };
	int r;
	long status = 0;
	CURLcode rc;
	time_t now;

	if (discovery_doc_url(&rules, url, sizeof(url)) < 0) {
		doctor_say(d, DOCTOR_FAIL, "idp",
		    "[entra] authority and tenant give no discovery URL");
		doctor_fix(d, "check [entra] tenant and authority");
		return;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		doctor_say(d, DOCTOR_FAIL, "idp", "libcurl cannot initialise");
		doctor_fix(d, "reinstall libcurl");
		return;
	}
	rc = fetch(d->cf, url, &f, &status, errbuf);
	now = time(NULL);
	if (rc != CURLE_OK) {
		doctor_say(d, DOCTOR_FAIL, "idp", "%s: %s%s%s", url,
		    curl_easy_strerror(rc), errbuf[0] != '\0' ? ": " : "",
		    errbuf);
		doctor_fix(d, "%s", curl_fix(rc));
		goto out;
	}
	if (status != 200) {
		doctor_say(d, DOCTOR_FAIL, "idp", "%s: HTTP %ld", url, status);
		doctor_fix(d, "check [entra] tenant and authority");
		goto out;
	}
	r = f.body != NULL ?
	    discovery_doc_parse(f.body, f.len, &rules, &dd, why, sizeof(why)) :
	    -EBADMSG;
	if (r < 0) {
		doctor_say(d, DOCTOR_FAIL, "idp",
		    "%s: discovery document refused: %s", url,
		    f.body != NULL ? why : "no body");
		doctor_fix(d, "%s",
		    strstr(why, "not a JSON object") != NULL || f.body == NULL ?
			curl_fix(CURLE_OK) :
			"the IdP's document breaks credd's trust rules "
			"(docs/operations.md): check [entra] authority and "
			"tenant, or list the host in [entra] discovery_hosts "
			"if the IdP really serves its endpoints there");
		goto out;
	}
	doctor_say(d, DOCTOR_OK, "idp", "%s: TLS verified, issuer %s", url,
	    dd.issuer);
	doctor_say(d, DOCTOR_OK, "endpoints", "token %s", dd.token_endpoint);
	doctor_say(d, DOCTOR_OK, "endpoints", "device code %s",
	    dd.device_authorization_endpoint[0] != '\0' ?
		dd.device_authorization_endpoint :
		"(none: the device code flow cannot start)");
	doctor_say(d, DOCTOR_OK, "endpoints", "authorize %s",
	    dd.authorization_endpoint[0] != '\0' ?
		dd.authorization_endpoint :
		"(none: the code flow cannot start)");
	check_skew(d, f.date, now);
out:
	free(f.body);
	curl_global_cleanup();
}

/* ---- the SDK endpoint's port ---- */

struct listener {
	uid_t uid;
	unsigned long inode;
};

/* 16 or 4 bytes of /proc/net/tcp hex: the kernel prints each u32 raw. */
static int
parse_addr(const char *hex, size_t nwords, uint32_t *words)
{
	char w[9];
	size_t i;

	if (strlen(hex) != nwords * 8)
		return -EINVAL;
	for (i = 0; i < nwords; i++) {
		memcpy(w, hex + 8 * i, 8);
		w[8] = '\0';
		words[i] = (uint32_t)strtoul(w, NULL, 16);
	}
	return 0;
}

/*
 * The listening socket on port whose address is want (nwords u32s) or
 * the wildcard, from one /proc/net/tcp* file. 1 and *out when found.
 */
static int
find_listener(const char *file, size_t nwords, const uint32_t *want,
    unsigned port, struct listener *out)
{
	char line[512], hex[40];
	uint32_t addr[4], zero[4] = { 0 };
	unsigned lport, state, uid;
	unsigned long inode;
	FILE *fp;
	int found = 0;

	fp = fopen(file, "re");
	if (fp == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line,
			" %*u: %39[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %u "
			"%*d %lu",
			hex, &lport, &state, &uid, &inode) != 5)
			continue;
		if (state != 0x0A || lport != port ||
		    parse_addr(hex, nwords, addr) < 0)
			continue;
		if (memcmp(addr, want, nwords * 4) == 0 ||
		    memcmp(addr, zero, nwords * 4) == 0) {
			out->uid = (uid_t)uid;
			out->inode = inode;
			found = 1;
		}
	}
	(void)fclose(fp);
	return found;
}

/*
 * A process holding socket inode: the first found, preferring one named
 * "credd" (with socket activation, systemd holds it too). 1 with *pid
 * and comm; 0 when none is visible (not root, or another namespace).
 */
static int
find_holder(unsigned long inode, pid_t *pid, char *comm, size_t commsz)
{
	char want[64], path[600], link[64];
	struct dirent *pe, *fe;
	DIR *pd, *fd;
	FILE *fp;
	ssize_t n;
	int found = 0, is_credd;

	(void)snprintf(want, sizeof(want), "socket:[%lu]", inode);
	pd = opendir("/proc");
	if (pd == NULL)
		return 0;
	while ((pe = readdir(pd)) != NULL) {
		if (!isdigit((unsigned char)pe->d_name[0]))
			continue;
		(void)snprintf(path, sizeof(path), "/proc/%s/fd", pe->d_name);
		fd = opendir(path);
		if (fd == NULL)
			continue;
		is_credd = 0;
		while ((fe = readdir(fd)) != NULL) {
			(void)snprintf(path, sizeof(path), "/proc/%s/fd/%s",
			    pe->d_name, fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, want) != 0)
				continue;
			*pid = (pid_t)atoi(pe->d_name);
			(void)snprintf(path, sizeof(path), "/proc/%s/comm",
			    pe->d_name);
			comm[0] = '\0';
			fp = fopen(path, "re");
			if (fp != NULL) {
				if (fgets(comm, (int)commsz, fp) == NULL)
					comm[0] = '\0';
				(void)fclose(fp);
			}
			comm[strcspn(comm, "\n")] = '\0';
			found = 1;
			is_credd = strcmp(comm, "credd") == 0;
			break;
		}
		(void)closedir(fd);
		if (is_credd)
			break;
	}
	(void)closedir(pd);
	return found;
}

void
doctor_check_sdk_port(struct doctor *d)
{
	const char *listen = d->cf->msi_listen;
	struct sockaddr_storage ss;
	struct listener l;
	uint32_t want[4];
	unsigned port, sslen = 0;
	char comm[64];
	pid_t pid = 0;
	int found;

	if (listen == NULL) {
		doctor_say(d, DOCTOR_OK, "sdk endpoint",
		    "off ([msi] listen is not set)");
		return;
	}
	if (config_msi_addr(listen, &ss, &sslen) < 0)
		return; /* config_check refused it already */
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)&ss;

		want[0] = s4->sin_addr.s_addr;
		port = ntohs(s4->sin_port);
		found = find_listener("/proc/net/tcp", 1, want, port, &l);
		memset(want, 0, sizeof(want)); /* a [::] dual-stack socket */
		if (!found)
			found =
			    find_listener("/proc/net/tcp6", 4, want, port, &l);
	} else {
		const struct sockaddr_in6 *s6 = (const void *)&ss;

		memcpy(want, &s6->sin6_addr, sizeof(want));
		port = ntohs(s6->sin6_port);
		found = find_listener("/proc/net/tcp6", 4, want, port, &l);
	}
	if (!found) {
		doctor_say(d, d->is_credd_up ? DOCTOR_WARN : DOCTOR_OK,
		    "sdk endpoint", "%s: %s", listen,
		    d->is_credd_up ? "nothing listens: the endpoint is down" :
				     "free (credd is not running)");
		if (d->is_credd_up)
			doctor_fix(d,
			    "credctl status shows the reason "
			    "(sdk_endpoint.error); credd binds it "
			    "again every few seconds");
		return;
	}
	if (find_holder(l.inode, &pid, comm, sizeof(comm))) {
		if (strcmp(comm, "credd") == 0) {
			doctor_say(d, DOCTOR_OK, "sdk endpoint",
			    "%s: held by credd (pid %ld)", listen, (long)pid);
			return;
		}
		doctor_say(d, DOCTOR_FAIL, "sdk endpoint",
		    "%s: port taken by pid %ld (%s, uid %u), not credd", listen,
		    (long)pid, comm, (unsigned)l.uid);
	} else if (l.uid == d->run_uid) {
		doctor_say(d, DOCTOR_OK, "sdk endpoint",
		    "%s: held by uid %u (credd's user)", listen,
		    (unsigned)l.uid);
		return;
	} else
		doctor_say(d, DOCTOR_FAIL, "sdk endpoint",
		    "%s: port taken by uid %u, not credd", listen,
		    (unsigned)l.uid);
	doctor_fix(d,
	    "stop that process, or set [msi] listen to a free port (and "
	    "credd-msi.socket's ListenStream=)");
}
