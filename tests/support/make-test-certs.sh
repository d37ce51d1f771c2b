#!/bin/sh
# tests/support/make-test-certs.sh DIR - the certificates the TLS tests use,
# made fresh in DIR with openssl(1) (never committed, never reused between
# runs): a test CA, a server certificate it signs for 127.0.0.1, ::1 and
# localhost, a client certificate it signs, and a second, unrelated CA with
# a client certificate of its own, which a server trusting only the first
# must refuse.  EC P-256 keys: quick to make, even under valgrind.  Valid
# for 30 days from now.  docs/security.md walks through the same steps.
set -eu
dir=${1:?usage: make-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# ca NAME: a self-signed CA, NAME.crt and NAME.key.
ca() {
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -sha256 -days 30 \
        -subj "/CN=cachifyd test $1" -out "$1.crt"
}

# leaf NAME CA EXTENSIONS: NAME.crt and NAME.key, signed by CA.
leaf() {
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" \
        -CAcreateserial -sha256 -days 30 -extfile "$1.ext" \
        -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca
leaf server ca 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
extendedKeyUsage=serverAuth'
leaf client ca 'extendedKeyUsage=clientAuth'
ca rogue-ca
leaf rogue-client rogue-ca 'extendedKeyUsage=clientAuth'
rm -f ./*.srl
