/* tests/unit/test_etcd_url.c - Check suite for what the etcd:// backend
 * parses and encodes without a cluster: etcd:// URLs (client/url.c), the
 * base64 codec (client/base64.c) and a pool entry's value
 * (client/etcd_json.c).
 *
 * Owns: good URLs in every shape (one or many members, IPv6, default
 * port, credentials with ':' and '@' in the password, ?prefix=, the empty
 * prefix) and bad ones, each with its message, base64 against RFC
 * 4648's vectors, every byte value, and text that is not base64 or not
 * canonical, and a pool entry's value read as its size
 * (client/etcd_json.c).
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "client/base64.h"
#include "client/cachify.h"
#include "client/etcd_op.h"
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
    /* Hostile text a gateway could send: bits left over that are not
     * zero ("Zh==" would be the "f" of "Zg=="), a NUL inside, blanks and
     * line ends around, the URL-safe alphabet, bytes above 0x7f, text
     * after the padding. */
    ck_assert_int_eq(base64_decode("Zh==", 4, out), -1);
    ck_assert_int_eq(base64_decode("Zm9=", 4, out), -1);
    ck_assert_int_eq(base64_decode("Zm9vZ/==", 8, out), -1);
    ck_assert_int_eq(base64_decode("Zm9v\0Zg=", 8, out), -1);
    ck_assert_int_eq(base64_decode(" Zm9", 4, out), -1);
    ck_assert_int_eq(base64_decode("Zm9v\r\n", 6, out), -1);
    ck_assert_int_eq(base64_decode("Zm9vYg==\n\n\n\n", 12, out), -1);
    ck_assert_int_eq(base64_decode("Zm-_", 4, out), -1);
    ck_assert_int_eq(base64_decode("Zm9\xc3", 4, out), -1);
    ck_assert_int_eq(base64_decode("Zg==Zm9v", 8, out), -1);
    ck_assert_int_eq(base64_decode("Zg===", 5, out), -1);
    ck_assert_int_eq(base64_decode("Zm8=", 4, out), 2); /* the canonical */
}
END_TEST

/* Every padded last group: decoded only when canonical, that is when the
 * encoder gives the same text back, so two texts never mean one value. */
START_TEST(base64_canonical_only)
{
    static const char A[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char out[8];
    char text[8], again[8];
    long accepted = 0;

    for (int a = 0; a < 64; a++)
        for (int b = 0; b < 64; b++)
            for (int c = 0; c <= 64; c++) {
                long n;
                text[0] = A[a];
                text[1] = A[b];
                text[2] = c < 64 ? A[c] : '=';
                text[3] = '=';
                n = base64_decode(text, 4, out);
                ck_assert(n == -1 || n == (c < 64 ? 2 : 1));
                if (n < 0)
                    continue;
                base64_encode(out, (size_t)n, again);
                ck_assert_msg(memcmp(text, again, 4) == 0,
                              "%.4s decoded, but encodes as %s", text, again);
                accepted++;
            }
    /* Each 1- and 2-byte value once: 256 + 65536 texts. */
    ck_assert_int_eq(accepted, 256 + 65536);
}
END_TEST

/* A pool's size as the gateway returns an entry's value: a size etcd's
 * client wrote, 0 for anything else (someone else's entry), -1 for a
 * value that is not base64, which the calls report as CACHIFY_ERR_PROTO. */
static long long value_num(const char *json)
{
    json_error_t e;
    json_t *kv = json_loads(json, JSON_ALLOW_NUL, &e);
    long long n;

    ck_assert_msg(kv != NULL, "%s: %s", json, e.text);
    n = ej_value_num(kv);
    json_decref(kv);
    return n;
}

START_TEST(pool_size_values)
{
    ck_assert_int_eq(value_num("{\"value\":\"Mg==\"}"), 2);
    ck_assert_int_eq(value_num("{\"value\":\"MTAwMDAwMA==\"}"), 1000000);
    /* Not one of ours: 0. */
    ck_assert_int_eq(value_num("{}"), 0);
    ck_assert_int_eq(value_num("{\"value\":\"\"}"), 0);
    ck_assert_int_eq(value_num("{\"value\":\"MTAwMDAwMQ==\"}"), 0);
    ck_assert_int_eq(value_num("{\"value\":\"MTJhYmM=\"}"), 0); /* 12abc */
    ck_assert_int_eq(value_num("{\"value\":\"IDU=\"}"), 0);     /* " 5" */
    ck_assert_int_eq(value_num("{\"value\":\"LTM=\"}"), 0);     /* -3 */
    ck_assert_int_eq(value_num("{\"value\":\"MDc=\"}"), 0);     /* 07 */
    ck_assert_int_eq(value_num("{\"value\":\"MA==\"}"), 0);     /* 0 */
    ck_assert_int_eq(value_num("{\"value\":\"MTExMTExMTExMTExMTEx\"}"), 0);
    /* Not base64, or not a string: -1. */
    ck_assert_int_eq(value_num("{\"value\":\"Mh==\"}"), -1);
    ck_assert_int_eq(value_num("{\"value\":\"M!==\"}"), -1);
    ck_assert_int_eq(value_num("{\"value\":\"Mg\"}"), -1);
    ck_assert_int_eq(value_num("{\"value\":\"Mg==\\n\"}"), -1);
    ck_assert_int_eq(value_num("{\"value\":\"Mg\\u0000=\"}"), -1);
    ck_assert_int_eq(value_num("{\"value\":2}"), -1);
    ck_assert_int_eq(value_num("{\"value\":null}"), -1);
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
    tcase_add_test(tc, base64_canonical_only);
    tcase_add_test(tc, pool_size_values);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
