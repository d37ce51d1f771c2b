/* tests/unit/test_etcd_url.c - Check suite for what the etcd:// backend
 * parses and encodes without a cluster: etcd:// URLs (client/url.c) and
 * the base64 codec (client/base64.c).
 *
 * Owns: good URLs in every shape (one or many members, IPv6, default
 * port, credentials with ':' and '@' in the password, ?prefix=, the empty
 * prefix) and bad ones, each with its message, and base64 against RFC
 * 4648's vectors, every byte value, and text that is not base64.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "client/base64.h"
#include "client/cachify.h"
#include "client/url.h"

START_TEST(good_urls)
{
    struct cachify_url u;
    char err[256];

    ck_assert_int_eq(cachify_url_parse("etcd://127.0.0.1:2379", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_int_eq(u.kind, CACHIFY_URL_ETCD);
    ck_assert_int_eq(u.nendpoints, 1);
    ck_assert_str_eq(u.endpoints[0].host, "127.0.0.1");
    ck_assert_int_eq(u.endpoints[0].port, 2379);
    ck_assert_str_eq(u.etcd_prefix, "cachify/");
    ck_assert_str_eq(u.user, "");
    ck_assert_str_eq(u.password, "");

    ck_assert_int_eq(cachify_url_parse("etcd://a,b:2,[::1]:3,c.example/", &u,
                                       err, sizeof err), CACHIFY_OK);
    ck_assert_int_eq(u.nendpoints, 4);
    ck_assert_str_eq(u.endpoints[0].host, "a");
    ck_assert_int_eq(u.endpoints[0].port, 2379);
    ck_assert_int_eq(u.endpoints[1].port, 2);
    ck_assert_str_eq(u.endpoints[2].host, "::1");
    ck_assert_int_eq(u.endpoints[2].port, 3);
    ck_assert_str_eq(u.endpoints[3].host, "c.example");

    /* The user ends at the first ':', the password at the last '@'. */
    ck_assert_int_eq(cachify_url_parse("etcd://app:p:w@d@h1:1,h2:2?prefix=x/y/",
                                       &u, err, sizeof err), CACHIFY_OK);
    ck_assert_str_eq(u.user, "app");
    ck_assert_str_eq(u.password, "p:w@d");
    ck_assert_int_eq(u.nendpoints, 2);
    ck_assert_str_eq(u.etcd_prefix, "x/y/");

    ck_assert_int_eq(cachify_url_parse("etcd://h/?prefix=", &u, err, sizeof err),
                     CACHIFY_OK);
    ck_assert_str_eq(u.etcd_prefix, "");
}
END_TEST

/* Each bad URL and the start of its message. */
static const struct {
    const char *url, *msg;
} BAD[] = {
    {"etcd://", "bad URL \"etcd://\": no host"},
    {"etcd://h1,,h2", "bad URL \"etcd://h1,,h2\": no host"},
    {"etcd://h1,", "bad URL \"etcd://h1,\": no host"},
    {"etcd://h:0", "bad URL \"etcd://h:0\": port must be"},
    {"etcd://h:99999", "bad URL \"etcd://h:99999\": port must be"},
    {"etcd://h:x", "bad URL \"etcd://h:x\": port must be"},
    {"etcd://h/path", "bad URL \"etcd://h/path\": nothing but ?prefix="},
    {"etcd://h?foo=1", "bad URL \"etcd://h?foo=1\": the only option"},
    {"etcd://h?prefix=a&x=1", "bad URL \"etcd://h?prefix=a&x=1\": the only"},
    {"etcd://pw@h", "bad URL \"etcd://***@h\": write etcd://user:password@host"},
    {"etcd://:pw@h", "bad URL \"etcd://***@h\": write etcd://user:password@host"},
    {"etcd://h a", "bad URL \"etcd://h a\": bad host name"},
    {"etcd://::1", "bad URL \"etcd://::1\": write an IPv6 address"},
    {"etcd://[::1", "bad URL \"etcd://[::1\": '[' without ']'"},
    {"etcd://a,b,c,d,e,f,g,h,i,j", "bad URL \"etcd://a,b,c,d,e,f,g,h,i,j\": "
                                   "more than 9 members"},
    {"etcd:/h", "bad URL \"etcd:/h\": expected"},
};

START_TEST(bad_urls)
{
    struct cachify_url u;
    char err[256];
    const char *url = BAD[_i].url, *msg = BAD[_i].msg;

    ck_assert_int_eq(cachify_url_parse(url, &u, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_msg(strncmp(err, msg, strlen(msg)) == 0, "%s: got \"%s\"", url,
                  err);
    /* A password never shows in a message. */
    ck_assert_ptr_null(strstr(err, "pw"));
}
END_TEST

START_TEST(long_parts)
{
    static char url[2048];
    struct cachify_url u;
    char err[256];

    memset(url, 0, sizeof url);
    memcpy(url, "etcd://u:", 9);
    memset(url + 9, 'p', CACHIFY_URL_PASSWORD_MAX + 1);
    strcat(url, "@h");
    ck_assert_int_eq(cachify_url_parse(url, &u, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "bad URL: password longer than 512 bytes");
    memset(url, 0, sizeof url);
    memcpy(url, "etcd://h?prefix=", 16);
    memset(url + 16, 'x', CACHIFY_URL_ETCD_PREFIX_MAX + 1);
    ck_assert_int_eq(cachify_url_parse(url, &u, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "bad URL: etcd prefix longer than 255 bytes");
    url[16 + CACHIFY_URL_ETCD_PREFIX_MAX] = '\0'; /* exactly the bound */
    ck_assert_int_eq(cachify_url_parse(url, &u, err, sizeof err), CACHIFY_OK);
}
END_TEST

static const char *enc(const char *s, size_t n)
{
    static char out[BASE64_ENCODED_SIZE(64)];

    base64_encode(s, n, out);
    return out;
}

START_TEST(base64_vectors)
{
    /* RFC 4648, section 10. */
    ck_assert_str_eq(enc("", 0), "");
    ck_assert_str_eq(enc("f", 1), "Zg==");
    ck_assert_str_eq(enc("fo", 2), "Zm8=");
    ck_assert_str_eq(enc("foo", 3), "Zm9v");
    ck_assert_str_eq(enc("foob", 4), "Zm9vYg==");
    ck_assert_str_eq(enc("fooba", 5), "Zm9vYmE=");
    ck_assert_str_eq(enc("foobar", 6), "Zm9vYmFy");
    ck_assert_str_eq(enc("\xff\xfe\x00", 3), "//4A");
}
END_TEST

START_TEST(base64_round_trip)
{
    unsigned char in[256], out[BASE64_DECODED_SIZE(BASE64_ENCODED_SIZE(256))];
    char text[BASE64_ENCODED_SIZE(256)];

    for (int i = 0; i < 256; i++)
        in[i] = (unsigned char)i;
    /* Every length, so every padding, and every byte value. */
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t len = base64_encode(in, n, text);

        ck_assert_uint_eq(len, (n + 2) / 3 * 4);
        ck_assert_int_eq(base64_decode(text, len, out), (long)n);
        ck_assert(memcmp(in, out, n) == 0);
    }
}
END_TEST

START_TEST(base64_refuses)
{
    unsigned char out[64];

    ck_assert_int_eq(base64_decode("Zm9", 3, out), -1);     /* length */
    ck_assert_int_eq(base64_decode("Zm9v!A==", 8, out), -1);/* alphabet */
    ck_assert_int_eq(base64_decode("Z=9v", 4, out), -1);    /* '=' inside */
    ck_assert_int_eq(base64_decode("Zg=v", 4, out), -1);    /* after '=' */
    ck_assert_int_eq(base64_decode("Zg==Zg==", 8, out), -1);/* not the end */
    ck_assert_int_eq(base64_decode("====", 4, out), -1);
    ck_assert_int_eq(base64_decode("Zm\n9v", 5, out), -1);
    ck_assert_int_eq(base64_decode("", 0, out), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("etcd_url");
    TCase *tc = tcase_create("etcd_url");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, good_urls);
    tcase_add_loop_test(tc, bad_urls, 0, (int)(sizeof BAD / sizeof BAD[0]));
    tcase_add_test(tc, long_parts);
    tcase_add_test(tc, base64_vectors);
    tcase_add_test(tc, base64_round_trip);
    tcase_add_test(tc, base64_refuses);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
