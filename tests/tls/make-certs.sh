#!/bin/sh
# make-certs.sh DIR - the certificates the TLS tests and benchmarks use,
# made fresh with openssl into DIR (nothing is checked in):
#   ca.pem ca.key          a local CA ("ecl-sock test CA")
#   server.pem server.key  localhost, DNS:localhost and IP:127.0.0.1, by the CA
#   expired.pem/.key       the same names, by the CA, expired in 2020
#   other.pem/.key         other.example only, by the CA
#   self.pem/.key          localhost, self-signed
#   client.pem/.key        a client certificate ("test client"), by the CA
#   rogue-client.pem/.key  a client certificate signed by nobody we trust
# EC P-256 keys: quick to make and to handshake with.  Prints nothing;
# exits non-zero when openssl fails.
set -e
dir=$1
[ -n "$dir" ] || { echo "usage: make-certs.sh DIR" >&2; exit 2; }
mkdir -p "$dir"
cd "$dir"
[ -f done ] && exit 0
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ext() {  # $1 file, $2 subjectAltName (or empty), $3 extendedKeyUsage
  { echo "basicConstraints=CA:FALSE"
    [ -n "$2" ] && echo "subjectAltName=$2"
    echo "extendedKeyUsage=$3"; } > "$1"
}
key ca.key
openssl req -x509 -new -key ca.key -subj "/O=ecl-sock/CN=ecl-sock test CA" -days 30 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem 2>/dev/null
signed() {  # $1 name, $2 subject, $3 SAN, $4 usage
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  ext "$1.ext" "$3" "$4"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
signed server "/O=ecl-sock/CN=localhost" "DNS:localhost,IP:127.0.0.1" serverAuth
signed other "/O=ecl-sock/CN=other.example" "DNS:other.example" serverAuth
signed client "/O=ecl-sock/CN=test client" "" clientAuth
# expired: openssl ca can set the dates in the past
key expired.key
openssl req -new -key expired.key -subj "/O=ecl-sock/CN=localhost" -out expired.csr 2>/dev/null
ext expired.ext "DNS:localhost,IP:127.0.0.1" serverAuth
mkdir -p ca-db && : > ca-db/index.txt && echo 1000 > ca-db/serial
cat > ca.cnf <<CNF
[ca]
default_ca = test
[test]
dir = ca-db
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
organizationName = optional
commonName = supplied
CNF
openssl ca -batch -config ca.cnf -startdate 20200101000000Z -enddate 20200201000000Z \
  -extfile expired.ext -in expired.csr -out expired.pem >/dev/null 2>&1
key self.key
openssl req -x509 -new -key self.key -subj "/O=ecl-sock/CN=localhost" -days 30 \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -out self.pem 2>/dev/null
key rogue-client.key
openssl req -x509 -new -key rogue-client.key -subj "/CN=rogue client" -days 30 \
  -out rogue-client.pem 2>/dev/null
touch done
