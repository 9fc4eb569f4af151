#!/bin/sh
# Prints deploy/.env.example with its secrets generated: each empty `NAME=` line right below a
# `# generate: KIND N` comment gets
#   hex N       N random bytes in hexadecimal (passwords: safe in URLs);
#   base64 N    N random bytes in base64 (ORDERS_DOCUMENT_KEY);
#   ed25519     the public half of a new Ed25519 key pair (openssl 1.1.1 or later), whose private
#               half is printed on stderr, for you to keep, and never written to stdout.
# Every other line is copied as it is.
#
#     sh deploy/generate-env.sh > .env && chmod 600 .env
#
# Run it once: running it again makes new secrets, which the database, the broker and the stored
# documents do not know (deploy/README.md, "Changing a secret").
set -eu
example="${1:-$(dirname "$0")/.env.example}"

random_bytes() {  # N -> N random bytes on stdout
    head -c "$1" /dev/urandom
}

ed25519_pair() {  # NAME -> the public key on stdout, NAME's private key on stderr
    if ! pem="$(openssl genpkey -algorithm ed25519 2>/dev/null)"; then
        echo "generate-env.sh: $1 needs openssl 1.1.1 or later (or: coc-support keygen)" >&2
        exit 1
    fi
    private="$(printf '%s\n' "$pem" | openssl pkey -outform DER | tail -c 32 | base64 | tr -d '\n')"
    printf '%s\n' "$pem" | openssl pkey -pubout -outform DER | tail -c 32 | base64 | tr -d '\n'
    printf '%s=%s\n' "$(echo "$1" | sed 's/PUBLIC_KEY$/PRIVATE_KEY/')" "$private" >&2
    echo "  ^ the key that signs staff tokens: keep it safe, outside .env (deploy/README.md);" >&2
    echo "    the support console reads it from deploy/secrets/staff-token-private.key (mode 600)" >&2
}

generate=""  # the last "# generate:" comment's words, until the line it applies to
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
        "# generate: "*)
            generate="${line#\# generate: }"
            printf '%s\n' "$line"
            continue
            ;;
    esac
    case "$line" in
        *=)
            if [ -n "$generate" ]; then
                # shellcheck disable=SC2086 # the comment's words
                set -- $generate
                case "$1" in
                    hex) value="$(random_bytes "$2" | od -An -v -tx1 | tr -d ' \n')" ;;
                    base64) value="$(random_bytes "$2" | base64 | tr -d '\n')" ;;
                    ed25519) value="$(ed25519_pair "${line%=}")" ;;
                    *) echo "generate-env.sh: unknown '# generate: $generate'" >&2; exit 1 ;;
                esac
                line="$line$value"
            fi
            ;;
    esac
    generate=""
    printf '%s\n' "$line"
done < "$example"
