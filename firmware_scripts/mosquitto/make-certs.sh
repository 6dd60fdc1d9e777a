#!/bin/bash
# make-certs.sh: the certificate authority, broker certificate and per-device (or per-consumer) client
# certificates for an edgekit fleet's mosquitto broker (see edgekit.conf beside this script).
#
# Usage:
#   make-certs.sh [--dir DIR] [--days N] ca                      DIR/ca.key, DIR/ca.crt
#   make-certs.sh [--dir DIR] [--days N] broker NAME [--ip IP]... DIR/broker.key, DIR/broker.crt (SAN: NAME, IPs)
#   make-certs.sh [--dir DIR] [--days N] client NAME             DIR/clients/NAME.key, DIR/clients/NAME.crt
# DIR defaults to ./edgekit-pki; --days to 825 (leaf) and 3650 (CA). Keys are EC P-256, mode 0600.
# A client certificate's CN is NAME, which the broker uses as the MQTT username (use_identity_as_username):
# for a device, NAME is its device id, which the ACL confines to edgekit/v1/NAME/.
# Existing files are never overwritten; delete them first to re-issue.
# Then, per device: edgekit flash rpi ... --device-id NAME --broker-ca DIR/ca.crt \
#   --client-cert DIR/clients/NAME.crt --client-key DIR/clients/NAME.key
set -euo pipefail
umask 077

DIR=./edgekit-pki
DAYS=""
IPS=()

die() { echo "make-certs.sh: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
command -v openssl >/dev/null || die "openssl not found: apt-get install openssl"

ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=${2:?--dir needs a directory}; shift 2 ;;
    --days) DAYS=${2:?--days needs a number}; shift 2 ;;
    --ip) IPS+=("${2:?--ip needs an address}"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ ${#ARGS[@]} -ge 1 ] || { usage >&2; exit 2; }
CMD=${ARGS[0]}
NAME=${ARGS[1]:-}
if [ -n "$DAYS" ]; then [[ $DAYS =~ ^[0-9]+$ ]] || die "--days must be a whole number, not '$DAYS'"; fi

check_name() {
  # The name becomes an MQTT username substituted into ACL patterns: no / + # or spaces.
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] ||
    die "'$1' is not a valid name: use 1-64 letters, digits, '_', '.', '-' (starting with a letter or digit)"
}
refuse_existing() {
  local f
  for f in "$@"; do [ ! -e "$f" ] || die "$f exists; delete it first to issue a new one"; done
}
need_ca() {
  if [ ! -f "$DIR/ca.crt" ] || [ ! -f "$DIR/ca.key" ]; then die "no CA in $DIR: run 'make-certs.sh --dir $DIR ca' first"; fi
}
new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 0600 "$1"; }

# sign KEY CRT CN EXTFILE: a leaf certificate for CN signed by the CA.
sign() {
  local key=$1 crt=$2 cn=$3 ext=$4 csr
  csr=$(mktemp)
  openssl req -new -key "$key" -subj "/O=edgekit/CN=$cn" -out "$csr"
  openssl x509 -req -in "$csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial -sha256 \
    -days "${DAYS:-825}" -extfile "$ext" -out "$crt" 2>/dev/null
  chmod 0644 "$crt"
  rm -f "$csr" "$ext"
}

case "$CMD" in
  ca)
    mkdir -p "$DIR"
    refuse_existing "$DIR/ca.key" "$DIR/ca.crt"
    new_key "$DIR/ca.key"
    openssl req -new -x509 -key "$DIR/ca.key" -sha256 -days "${DAYS:-3650}" -subj "/O=edgekit/CN=edgekit fleet CA" \
      -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$DIR/ca.crt"
    chmod 0644 "$DIR/ca.crt"
    echo "$DIR/ca.crt (give it to every device and consumer); $DIR/ca.key (keep it offline)"
    ;;
  broker)
    [ -n "$NAME" ] || die "usage: make-certs.sh broker NAME [--ip IP]..."
    need_ca
    refuse_existing "$DIR/broker.key" "$DIR/broker.crt"
    san="DNS:$NAME"
    for ip in "${IPS[@]}"; do san+=",IP:$ip"; done
    ext=$(mktemp)
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >"$ext"
    new_key "$DIR/broker.key"
    sign "$DIR/broker.key" "$DIR/broker.crt" "$NAME" "$ext"
    echo "$DIR/broker.crt for $san"
    ;;
  client)
    [ -n "$NAME" ] || die "usage: make-certs.sh client NAME"
    check_name "$NAME"
    need_ca
    mkdir -p "$DIR/clients"
    refuse_existing "$DIR/clients/$NAME.key" "$DIR/clients/$NAME.crt"
    ext=$(mktemp)
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$ext"
    new_key "$DIR/clients/$NAME.key"
    sign "$DIR/clients/$NAME.key" "$DIR/clients/$NAME.crt" "$NAME" "$ext"
    echo "$DIR/clients/$NAME.crt and .key (MQTT username '$NAME')"
    echo "a device needs nothing more; for a consumer, add to the broker's acl:"
    printf '  user %s\n  topic read edgekit/v1/#\n  topic write edgekit/v1/+/infer\n  topic write edgekit/v1/+/cmd\n' "$NAME"
    ;;
  *) die "unknown command '$CMD': use ca, broker or client (see --help)" ;;
esac
