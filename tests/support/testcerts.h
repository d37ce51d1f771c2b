/* tests/support/testcerts.h - fresh TLS certificates for a test.
 *
 * Owns: running tests/support/make-test-certs.sh into a directory and
 * naming the files it made.  The script is found from the directory the
 * suite runs in (make runs suites from the project root); CACHIFY_SRCDIR
 * overrides that.  No Check here, like testserver.h.
 */
#ifndef CACHIFY_TESTS_TESTCERTS_H
#define CACHIFY_TESTS_TESTCERTS_H

#include <stddef.h>

struct test_certs {
    char dir[160];
    char ca[192], server_crt[192], server_key[192];
    char client_crt[192], client_key[192];
    /* Signed by a second CA that the first does not know. */
    char rogue_ca[192], rogue_client_crt[192], rogue_client_key[192];
};

/* Makes the certificates in dir (which may exist) and fills tc.  0, or -1
 * with the reason on stderr. */
int tcert_make(struct test_certs *tc, const char *dir);

#endif
