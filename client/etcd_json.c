/* client/etcd_json.c - the pieces of etcd's v3 gateway JSON that the lock
 * and pool calls build their requests from and read their answers with
 * (declared in client/etcd_op.h).
 *
 * Owns: base64 keys and values, the gateway's 64-bit numbers (strings,
 * zeros left out), prefix ranges, transactions.  Every builder returns
 * NULL when out of memory and takes the references it is given, so a
 * request is built in one expression and checked once.  Does not own: what
 * the requests mean (etcd.c, etcd_pool.c) or sending them (etcd_http.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/base64.h"
#include "client/etcd_op.h"
#include "client/wire.h"

/* The longest base64 value that can hold a pool's size (decimal, at most
 * 7 digits, WIRE_POOL_MAX_SIZE): a longer one is not one of ours. */
#define VALUE_MAX 16

json_t *ej_b64(const char *p, size_t n)
{
    char *text = malloc(BASE64_ENCODED_SIZE(n));
    json_t *s;

    if (text == NULL)
        return NULL;
    base64_encode(p, n, text);
    s = json_string(text);
    free(text);
    return s;
}

long long ej_num(const json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);

    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

json_t *ej_id(long long v)
{
    char buf[24];

    snprintf(buf, sizeof buf, "%lld", v);
    return json_string(buf);
}

json_t *ej_first_kv(const json_t *range)
{
    return json_array_get(json_object_get(range, "kvs"), 0);
}

json_t *ej_lease_body(long long lease)
{
    json_t *id = ej_id(lease);

    return id ? json_pack("{s:o}", "ID", id) : NULL;
}

json_t *ej_prefix(const char *p, size_t n)
{
    json_t *r = json_object();
    char *end = malloc(n);

    if (end != NULL) {
        /* '/' + 1 is '0': the end of the range just after every p... key. */
        memcpy(end, p, n);
        end[n - 1]++;
        ej_set(&r, "range_end", ej_b64(end, n));
        free(end);
    } else {
        json_decref(r);
        r = NULL;
    }
    ej_set(&r, "key", ej_b64(p, n));
    return r;
}

void ej_set(json_t **o, const char *k, json_t *v)
{
    if (*o == NULL) {
        json_decref(v);
        return;
    }
    if (json_object_set_new(*o, k, v) != 0) {
        json_decref(*o);
        *o = NULL;
    }
}

json_t *ej_txn(json_t *compare, json_t *success, json_t *failure)
{
    json_t *t = json_object();

    ej_set(&t, "compare", compare);
    ej_set(&t, "success", success);
    ej_set(&t, "failure", failure);
    return t;
}

json_t *ej_read_txn(json_t *ops)
{
    json_t *t = json_object();

    ej_set(&t, "success", ops);
    return t;
}

json_t *ej_list(size_t n, ...)
{
    json_t *a = json_array();
    va_list ap;

    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = va_arg(ap, json_t *);

        if (a != NULL && v != NULL) {
            if (json_array_append_new(a, v) != 0) { /* v freed by it */
                json_decref(a);
                a = NULL;
            }
            continue;
        }
        json_decref(v);
        json_decref(a);
        a = NULL;
    }
    va_end(ap);
    return a;
}

json_t *ej_read(json_t *range)
{
    return range ? json_pack("{s:o}", "request_range", range) : NULL;
}

const json_t *ej_txn_range(const json_t *reply, size_t i)
{
    return json_object_get(
        json_array_get(json_object_get(reply, "responses"), i),
        "response_range");
}

long long ej_value_num(const json_t *kv)
{
    json_t *v = json_object_get(kv, "value");
    unsigned char buf[BASE64_DECODED_SIZE(VALUE_MAX)];
    long long size = 0;
    long n;

    if (v == NULL)
        return 0; /* etcd leaves an empty value out */
    if (!json_is_string(v))
        return -1;
    if (json_string_length(v) > VALUE_MAX)
        return 0;
    n = base64_decode(json_string_value(v), json_string_length(v), buf);
    if (n < 0)
        return -1;
    /* Only what etcd_pool.c writes ("%u", 1..WIRE_POOL_MAX_SIZE) is a
     * size: strtoll would have read "12abc" as 12, " 5" as 5 and "-3" as
     * -3, taking someone else's entry for a pool's. */
    if (n == 0 || buf[0] == '0')
        return 0;
    for (long i = 0; i < n; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return 0;
        size = size * 10 + (buf[i] - '0');
        if (size > (long long)WIRE_POOL_MAX_SIZE)
            return 0;
    }
    return size;
}
