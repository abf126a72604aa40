#!/bin/bash
# bench/msgauth_bench.sh: DKIM sign/verify throughput of postern's
# msgauth library (in process), dkimpy (in process) and the raw signing
# rate of OpenSSL on this machine (the physical limit).  Prints figures
# and ratios; asserts nothing.
#   SECS=n  seconds per measurement (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECS:-2}
build=${BUILD:-build-bench}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" src/msgauth/libpmsgauth.a src/core/libpcore.a >/dev/null
cc -O2 -std=c17 -D_GNU_SOURCE -Isrc bench/msgauth_bench.c \
  "$build/src/msgauth/libpmsgauth.a" "$build/src/core/libpcore.a" -lcrypto -o "$build/msgauth_bench"
out=$("$build/msgauth_bench" "$secs")
echo "$out"

/usr/bin/python3 - "$secs" <<'PY'
import sys, time, dkim, subprocess, base64
secs = float(sys.argv[1])
from cryptography.hazmat.primitives.asymmetric import rsa, ed25519
from cryptography.hazmat.primitives import serialization as s
def msg(n):
    h = b"From: Joe <joe@example.com>\r\nTo: x@example.net\r\nSubject: benchmark\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\n"
    body = bytes((ord('a') + i % 26) if i % 72 < 70 else (13 if i % 72 == 70 else 10) for i in range(n))
    return h + body
for kind in ("rsa2048", "ed25519"):
    if kind == "rsa2048":
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        priv = k.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption())
        pub = b"v=DKIM1; p=" + base64.b64encode(k.public_key().public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo))
        alg = b"rsa-sha256"
    else:
        k = ed25519.Ed25519PrivateKey.generate()
        priv = base64.b64encode(k.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption()))
        pub = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw))
        alg = b"ed25519-sha256"
    for size in (4096, 102400):
        m = msg(size)
        n, t0 = 0, time.time()
        while time.time() - t0 < secs:
            sig = dkim.sign(m, b"b", b"example.com", priv, signature_algorithm=alg, canonicalize=(b"relaxed", b"relaxed")); n += 1
        sr = n / (time.time() - t0)
        n, t0 = 0, time.time()
        while time.time() - t0 < secs:
            assert dkim.verify(sig + m, dnsfunc=lambda *a, **k: pub); n += 1
        vr = n / (time.time() - t0)
        print(f"dkimpy  {kind:8s} {size // 1024:4d}KB  sign {sr:9.1f}/s  verify {vr:9.1f}/s")
PY

echo "openssl speed (raw primitive, one core):"
speed=$(openssl speed -seconds "$secs" rsa2048 ed25519 2>/dev/null)
rsa=$(echo "$speed" | awk '/^rsa 2048 bits/ {print $6, $7}')
ed=$(echo "$speed" | awk '/^ +253 bits EdDSA|Ed25519\)/ {print $(NF-1), $NF}' | tail -1)
echo "openssl  rsa2048  sign ${rsa% *}/s  verify ${rsa#* }/s"
echo "openssl  ed25519  sign ${ed% *}/s  verify ${ed#* }/s"
echo "ratio of postern to the raw OpenSSL primitive (1.0 = no overhead beyond the signature):"
echo "$out" | while read -r _ kind size _ s _ v _; do
  if [ "$kind" = rsa2048 ]; then set -- $rsa; else set -- $ed; fi
  awk -v k="$kind" -v z="$size" -v s="${s%/s}" -v v="${v%/s}" -v os="$1" -v ov="$2" \
    'BEGIN { printf "  %-8s %6s  sign %.3f  verify %.3f\n", k, z, s / os, v / ov }'
done
