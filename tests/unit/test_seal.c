/*
 * test_seal.c - seal.c: roundtrip, tampering, wrong key and wrong
 * associated data, key rotation, key file permissions and syntax; and
 * seal_keygen.c: keygen.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <sodium.h>

#include "entra/secret.h"
#include "seal.h"
#include "test.h"

static const char *tmpdir;

static int
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f;

	(void)unlink(path);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	fclose(f);
	return chmod(path, mode);
}

/* How many names in dir contain part (what `ls dir | grep part` lists:
 * dot files are not counted). */
static int
names_with(const char *dir, const char *part)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strstr(de->d_name, part) != NULL)
			n++;
	closedir(d);
	return n;
}

static char *
path_in(const char *name)
{
	static char p[128];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	return p;
}

TEST(test_roundtrip)
{
	struct seal *s = fixture_ring(1, 0xaa);
	struct secret *plain = secret_from_str("{\"refresh_token\":\"x\"}");
	struct secret *back = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;

	ASSERT_TRUE(s != NULL && plain != NULL);
	ASSERT_EQ(seal_active_id(s), 1);
	ASSERT_EQ(seal_seal(s, "t1", "alice", plain, &blob, &len), 0);
	ASSERT_EQ(len, 4 + 4 + 24 + plain->len + 16);
	ASSERT_TRUE(memcmp(blob, "CRS1", 4) == 0);
	ASSERT_EQ(seal_blob_key_id(blob, len), 1);
	ASSERT_EQ(seal_open(s, "t1", "alice", blob, len, &back), 0);
	ASSERT_TRUE(secret_equal(plain, back));
	ASSERT_EQ(back->ptr[back->len], 0);
	secret_free(back);

	/* Empty plaintext works too; two seals differ (random nonce). */
	{
		struct secret *empty = secret_new("", 0);
		uint8_t *b2 = NULL, *b3 = NULL;
		size_t l2 = 0, l3 = 0;

		ASSERT_EQ(seal_seal(s, "t1", "alice", empty, &b2, &l2), 0);
		ASSERT_EQ(seal_seal(s, "t1", "alice", empty, &b3, &l3), 0);
		ASSERT_TRUE(l2 == l3 && memcmp(b2, b3, l2) != 0);
		ASSERT_EQ(seal_open(s, "t1", "alice", b2, l2, &back), 0);
		ASSERT_EQ(back->len, 0);
		secret_free(back);
		secret_free(empty);
		free(b2);
		free(b3);
	}
	free(blob);
	secret_free(plain);
	seal_free(s);
}

TEST(test_tamper)
{
	struct seal *s = fixture_ring(1, 0xaa);
	struct secret *plain = secret_from_str("sealed payload");
	struct secret *back = NULL;
	uint8_t *blob = NULL;
	size_t len = 0, i;
	int r;

	ASSERT_EQ(seal_seal(s, "t", "u", plain, &blob, &len), 0);
	for (i = 0; i < len; i++) {
		blob[i] ^= 0x01;
		r = seal_open(s, "t", "u", blob, len, &back);
		blob[i] ^= 0x01;
		if (i >= 4 && i < 8) /* key id bytes: another id */
			ASSERT_TRUE(r == -ENOKEY || r == -EBADMSG);
		else
			ASSERT_ERR(r, -EBADMSG);
		ASSERT_TRUE(back == NULL);
	}
	/* Truncations, down to the empty blob. */
	for (i = 0; i < len; i++)
		ASSERT_ERR(seal_open(s, "t", "u", blob, i, &back), -EBADMSG);
	ASSERT_ERR(seal_open(s, "t", "u", NULL, 0, &back), -EBADMSG);
	ASSERT_EQ(seal_blob_key_id(blob, 10), 0);
	ASSERT_EQ(seal_open(s, "t", "u", blob, len, &back), 0);
	secret_free(back);
	free(blob);
	secret_free(plain);
	seal_free(s);
}

TEST(test_wrong_key)
{
	struct seal *a = fixture_ring(1, 0xaa), *b = fixture_ring(1, 0xbb);
	struct secret *plain = secret_from_str("x"), *back = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;

	ASSERT_EQ(seal_seal(a, "t", "u", plain, &blob, &len), 0);
	ASSERT_ERR(seal_open(b, "t", "u", blob, len, &back), -EBADMSG);
	ASSERT_TRUE(back == NULL);
	free(blob);
	secret_free(plain);
	seal_free(a);
	seal_free(b);
}

TEST(test_wrong_ad)
{
	struct seal *s = fixture_ring(7, 0x11);
	struct secret *plain = secret_from_str("x"), *back = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;

	ASSERT_EQ(seal_seal(s, "tenant-a", "alice", plain, &blob, &len), 0);
	ASSERT_ERR(seal_open(s, "tenant-a", "bob", blob, len, &back), -EBADMSG);
	ASSERT_ERR(seal_open(s, "tenant-b", "alice", blob, len, &back),
	    -EBADMSG);
	/* The NUL separator keeps ("tenant-a","alice") apart from shifted splits. */
	ASSERT_ERR(seal_open(s, "tenant-aa", "lice", blob, len, &back),
	    -EBADMSG);
	ASSERT_ERR(seal_open(s, "tenant-", "aalice", blob, len, &back),
	    -EBADMSG);
	ASSERT_ERR(seal_open(s, "", "alice", blob, len, &back), -EBADMSG);
	ASSERT_EQ(seal_open(s, "tenant-a", "alice", blob, len, &back), 0);
	secret_free(back);
	free(blob);
	secret_free(plain);
	seal_free(s);
}

TEST(test_rotation)
{
	char t1[256] = "", t2[512] = "", t3[256] = "";
	struct seal *r1, *r2, *r3;
	struct secret *plain = secret_from_str("rt"), *back = NULL;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0;

	fixture_ring_key(t1, sizeof(t1), 1, 0x01, 1);
	fixture_ring_key(t2, sizeof(t2), 1, 0x01, 0);
	fixture_ring_key(t2, sizeof(t2), 2, 0x02, 1);
	fixture_ring_key(t3, sizeof(t3), 2, 0x02, 1);
	r1 = fixture_ring_text(t1);
	r2 = fixture_ring_text(t2);
	r3 = fixture_ring_text(t3);
	ASSERT_TRUE(r1 && r2 && r3);
	ASSERT_EQ(seal_seal(r1, "t", "u", plain, &b1, &l1), 0);
	ASSERT_EQ(seal_blob_key_id(b1, l1), 1);
	/* Key 2 active: old blobs still open, new blobs use key 2. */
	ASSERT_EQ(seal_active_id(r2), 2);
	ASSERT_EQ(seal_open(r2, "t", "u", b1, l1, &back), 0);
	ASSERT_TRUE(secret_equal(back, plain));
	secret_free(back);
	back = NULL;
	ASSERT_EQ(seal_seal(r2, "t", "u", plain, &b2, &l2), 0);
	ASSERT_EQ(seal_blob_key_id(b2, l2), 2);
	/* Key 1 retired: its blobs are -ENOKEY, key 2's still open. */
	ASSERT_ERR(seal_open(r3, "t", "u", b1, l1, &back), -ENOKEY);
	ASSERT_EQ(seal_open(r3, "t", "u", b2, l2, &back), 0);
	secret_free(back);
	/* A ring without key 2 cannot open b2. */
	ASSERT_ERR(seal_open(r1, "t", "u", b2, l2, &back), -ENOKEY);
	free(b1);
	free(b2);
	secret_free(plain);
	seal_free(r1);
	seal_free(r2);
	seal_free(r3);
}

TEST(test_malformed)
{
	static const char *const bad[] = {
		"", "# only a comment\n\n",
		"key 1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", /* no active */
		"key 0 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= active\n",
		"key 4294967296 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= active\n",
		"key -1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= active\n",
		"key 01 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= active\n",
		"key x AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= active\n",
		"key 1 AAAA active\n", /* short key */
		"key 1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA active\n", /* long */
		"key 1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA active\n", /* no pad */
		"key 1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_= active\n", /* url b64 */
		"key 1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= Active\n",
		"key 1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= active extra\n",
		"key 1\n",
		"kye 1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= active\n",
		"key 1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= active\n"
		"key 1 AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n", /* dup id */
		"key 1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= active\n"
		"key 2 AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= active\n", /* 2 active */
	};
	struct seal *s = NULL;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (seal_load_buf(bad[i], strlen(bad[i]), &s) != -EBADMSG)
			FAILF("case %zu accepted", i);
		ASSERT_TRUE(s == NULL);
	}
	/* An embedded NUL. */
	ASSERT_ERR(seal_load_buf("key 1 A\0AA active\n", 18, &s), -EBADMSG);
	/* Comments, blank lines, tabs, CRLF and a trailing comment are fine. */
	{
		const char *ok =
		    "# keyring\n\n\tkey  3\tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
		    "key 4294967295 AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= active # new\n"
		    "key 9 AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

		ASSERT_EQ(seal_load_buf(ok, strlen(ok), &s), 0);
		ASSERT_EQ(seal_active_id(s), 4294967295u);
		seal_free(s);
	}
}

/*
 * The access ACL systemd puts on a LoadCredential= file on tmpfs,
 * "user::r-- user:UID:r-- group::--- mask::r-- other::---", written raw.
 * 0, or -errno (EOPNOTSUPP: no ACLs here).
 */
static int
set_credential_acl(const char *path, uint32_t uid)
{
	static const uint16_t tags[5] = { 0x01, 0x02, 0x04, 0x10, 0x20 };
	static const uint16_t perms[5] = { 4, 4, 0, 4, 0 };
	unsigned char buf[4 + 5 * 8] = { 2, 0, 0, 0 };
	unsigned char *e;
	int i;

	for (i = 0; i < 5; i++) {
		e = buf + 4 + 8 * i;
		e[0] = (unsigned char)tags[i];
		e[2] = (unsigned char)perms[i];
		if (tags[i] == 0x02) {
			e[4] = (unsigned char)uid;
			e[5] = (unsigned char)(uid >> 8);
			e[6] = (unsigned char)(uid >> 16);
			e[7] = (unsigned char)(uid >> 24);
		}
	}
	return setxattr(path, "system.posix_acl_access", buf, sizeof(buf), 0) <
		0 ?
	    -errno :
	    0;
}

TEST(test_key_file_perms)
{
	char text[256] = "";
	struct seal *s = NULL;
	char target[128];

	fixture_ring_key(text, sizeof(text), 5, 0x55, 1);
	ASSERT_EQ(write_file(path_in("k600"), text, 0600), 0);
	ASSERT_EQ(seal_load(path_in("k600"), &s), 0);
	ASSERT_EQ(seal_active_id(s), 5);
	seal_free(s);
	s = NULL;
	ASSERT_EQ(write_file(path_in("k400"), text, 0400), 0);
	ASSERT_EQ(seal_load(path_in("k400"), &s), 0);
	seal_free(s);
	s = NULL;
	ASSERT_EQ(write_file(path_in("k644"), text, 0644), 0);
	ASSERT_ERR(seal_load(path_in("k644"), &s), -EPERM);
	ASSERT_EQ(write_file(path_in("k640"), text, 0640), 0);
	ASSERT_ERR(seal_load(path_in("k640"), &s), -EPERM);
	ASSERT_EQ(write_file(path_in("k700"), text, 0700), 0);
	ASSERT_ERR(seal_load(path_in("k700"), &s), -EPERM);
	ASSERT_TRUE(s == NULL);
	/*
	 * systemd's credential on tmpfs: 0400 + an ACL entry letting us read
	 * (the mode then reads 0440) is ours alone; one for another uid is not.
	 */
	ASSERT_EQ(write_file(path_in("kacl"), text, 0400), 0);
	if (set_credential_acl(path_in("kacl"), (uint32_t)geteuid()) == 0) {
		ASSERT_EQ(seal_load(path_in("kacl"), &s), 0);
		seal_free(s);
		s = NULL;
		ASSERT_EQ(set_credential_acl(path_in("kacl"),
			      (uint32_t)geteuid() + 1),
		    0);
		ASSERT_ERR(seal_load(path_in("kacl"), &s), -EPERM);
	} else
		printf(
		    "(no POSIX ACLs here: the credential ACL case skipped)\n");
	/* A symlink to a good key file is refused, not followed. */
	snprintf(target, sizeof(target), "%s", path_in("k600"));
	ASSERT_EQ(symlink(target, path_in("klink")), 0);
	ASSERT_ERR(seal_load(path_in("klink"), &s), -ELOOP);
	/* Not a regular file. */
	ASSERT_EQ(mkdir(path_in("kdir"), 0700), 0);
	ASSERT_ERR(seal_load(path_in("kdir"), &s), -EPERM);
	ASSERT_ERR(seal_load(path_in("missing"), &s), -ENOENT);
	/* Malformed file with good permissions. */
	ASSERT_EQ(write_file(path_in("kbad"), "key 1 zz active\n", 0600), 0);
	ASSERT_ERR(seal_load(path_in("kbad"), &s), -EBADMSG);
	/* Owned by someone else (only testable as root). */
	if (geteuid() == 0) {
		ASSERT_EQ(chown(path_in("k600"), 12345, 12345), 0);
		ASSERT_ERR(seal_load(path_in("k600"), &s), -EPERM);
	}
	ASSERT_TRUE(s == NULL);
}

TEST(test_keygen)
{
	struct secret *plain = secret_from_str("rt"), *back = NULL;
	struct seal *s = NULL, *s2 = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;
	uint32_t id = 0;
	struct stat st;
	char buf[1024];
	FILE *f;
	size_t n;
	char target[128], line[64];
	uint32_t first;

	ASSERT_EQ(seal_keygen(path_in("kg"), 1, &id), 0);
	/* A new ring's first id is random in 1..2^31-1. */
	ASSERT_TRUE(id >= 1 && id <= 0x7fffffffU);
	first = id;
	ASSERT_EQ(stat(path_in("kg"), &st), 0);
	ASSERT_EQ(st.st_mode & 07777, 0600);
	ASSERT_EQ(seal_load(path_in("kg"), &s), 0);
	ASSERT_EQ(seal_active_id(s), first);
	ASSERT_EQ(seal_seal(s, "t", "u", plain, &blob, &len), 0);

	/* Add a comment by hand: keygen keeps it. Make the file 0400. */
	f = fopen(path_in("kg"), "a");
	ASSERT_TRUE(f != NULL);
	fputs("# hand-written note\n", f);
	fclose(f);
	ASSERT_EQ(chmod(path_in("kg"), 0400), 0);

	ASSERT_EQ(seal_keygen(path_in("kg"), 0, &id), 0); /* staged, inactive */
	ASSERT_EQ(id, first + 1);
	ASSERT_EQ(stat(path_in("kg"), &st), 0);
	ASSERT_EQ(st.st_mode & 07777, 0400);
	ASSERT_EQ(seal_load(path_in("kg"), &s2), 0);
	ASSERT_EQ(seal_active_id(s2), first);
	seal_free(s2);
	s2 = NULL;

	ASSERT_EQ(seal_keygen(path_in("kg"), 1, &id), 0); /* active */
	ASSERT_EQ(id, first + 2);
	ASSERT_EQ(seal_load(path_in("kg"), &s2), 0);
	ASSERT_EQ(seal_active_id(s2), first + 2);
	ASSERT_EQ(seal_open(s2, "t", "u", blob, len, &back), 0);
	ASSERT_TRUE(secret_equal(back, plain));

	f = fopen(path_in("kg"), "r");
	ASSERT_TRUE(f != NULL);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	ASSERT_TRUE(strstr(buf, "# hand-written note\n") != NULL);
	snprintf(line, sizeof(line), "key %u ", (unsigned)first);
	ASSERT_TRUE(strncmp(buf, line, strlen(line)) == 0);
	/* Only the third key's line says active now. */
	snprintf(line, sizeof(line), "key %u ", (unsigned)(first + 2));
	ASSERT_TRUE(strstr(buf, line) != NULL);
	ASSERT_TRUE(strstr(buf, "active") > strstr(buf, line));
	ASSERT_TRUE(strstr(strstr(buf, "active") + 1, "active") == NULL);

	/* No temp files left beside it. */
	ASSERT_EQ(names_with(tmpdir, "tmp"), 0);

	/* A symlink at the path, or a loose existing file, is refused. */
	snprintf(target, sizeof(target), "%s", path_in("kg"));
	ASSERT_EQ(symlink(target, path_in("kglink")), 0);
	ASSERT_ERR(seal_keygen(path_in("kglink"), 1, &id), -ELOOP);
	ASSERT_EQ(id, 0);
	ASSERT_EQ(write_file(path_in("kgloose"), "", 0644), 0);
	ASSERT_ERR(seal_keygen(path_in("kgloose"), 1, &id), -EPERM);
	ASSERT_EQ(write_file(path_in("kgbad"), "garbage\n", 0600), 0);
	ASSERT_ERR(seal_keygen(path_in("kgbad"), 1, &id), -EBADMSG);

	secret_free(back);
	free(blob);
	secret_free(plain);
	seal_free(s);
	seal_free(s2);
}

/*
 * Two rings made apart (keygen on each node, where a cluster needed one
 * shared ring) name different key ids, and a blob from the other ring is
 * explained by the id it needs.
 */
TEST(test_rings_apart_explain)
{
	struct secret *plain = secret_from_str("rt"), *back = NULL;
	struct seal *a = NULL, *b = NULL, *r2 = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;
	uint32_t ida = 0, idb = 0;
	char why[192], want[64], t2[512] = "";

	ASSERT_EQ(seal_keygen(path_in("node1.keys"), 0, &ida), 0);
	ASSERT_EQ(seal_keygen(path_in("node2.keys"), 0, &idb), 0);
	ASSERT_TRUE(ida != idb); /* 1 in 2^31 to fail */
	ASSERT_EQ(seal_load(path_in("node1.keys"), &a), 0);
	ASSERT_EQ(seal_load(path_in("node2.keys"), &b), 0);
	ASSERT_EQ(seal_seal(a, "t", "u", plain, &blob, &len), 0);
	ASSERT_ERR(seal_open(b, "t", "u", blob, len, &back), -ENOKEY);
	seal_explain(b, blob, len, why, sizeof(why));
	snprintf(want, sizeof(want), "sealed with key %u, which",
	    (unsigned)ida);
	ASSERT_TRUE(strstr(why, want) != NULL);
	snprintf(want, sizeof(want), "(its keys: %u)", (unsigned)idb);
	ASSERT_TRUE(strstr(why, want) != NULL);
	/* Same id, another key (two old rings both at id 1): named as such. */
	fixture_ring_key(t2, sizeof(t2), ida, 0x77, 1);
	r2 = fixture_ring_text(t2);
	ASSERT_TRUE(r2 != NULL);
	ASSERT_ERR(seal_open(r2, "t", "u", blob, len, &back), -EBADMSG);
	seal_explain(r2, blob, len, why, sizeof(why));
	snprintf(want, sizeof(want), "does not open with key %u (",
	    (unsigned)ida);
	ASSERT_TRUE(strstr(why, want) != NULL);
	ASSERT_TRUE(strstr(why, "another ring") != NULL);
	/* Not a blob; a tiny buffer is still terminated. */
	seal_explain(b, (const uint8_t *)"junk", 4, why, sizeof(why));
	ASSERT_TRUE(strstr(why, "not a sealed record") != NULL);
	seal_explain(b, blob, len, why, 8);
	ASSERT_EQ(strlen(why), 7);
	free(blob);
	secret_free(plain);
	seal_free(a);
	seal_free(b);
	seal_free(r2);
}

int
main(void)
{
	tmpdir = fixture_tmpdir("seal");
	if (tmpdir == NULL)
		return 1;
	RUN(test_roundtrip);
	RUN(test_tamper);
	RUN(test_wrong_key);
	RUN(test_wrong_ad);
	RUN(test_rotation);
	RUN(test_malformed);
	RUN(test_key_file_perms);
	RUN(test_keygen);
	RUN(test_rings_apart_explain);
	TEST_MAIN_END();
}
