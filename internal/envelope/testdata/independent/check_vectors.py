#!/usr/bin/env python3
"""An independent reader of the backup format, written from docs/FORMAT.md
alone (not from the Go code), run over every test vector. It checks that the
specification is complete: `python3 check_vectors.py ../vectors` must print
no FAIL. Needs the `cryptography` package. Not part of `go test`."""
import base64, hashlib, hmac, os, re, struct, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.exceptions import InvalidTag

class Integrity(Exception): pass
class Unsupported(Exception): pass
class Missing(Exception): pass

def hk(k, s, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=s, info=info.encode()).derive(k)

TENANT = re.compile(rb'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
BACKUP = re.compile(rb'^[A-Za-z0-9._~-]{1,64}$')

def parse(b):
    if len(b) < 9 or b[:8] != b'BYOKBKUP': raise Unsupported()
    if b[8] != 1: raise Unsupported()
    if len(b) > 65536: raise Integrity()
    o = 9
    def take(n):
        nonlocal o
        if o + n > len(b): raise Integrity()
        v = b[o:o+n]; o += n; return v
    def v8(): return take(take(1)[0])
    def v16(): return take(struct.unpack('>H', take(2))[0])
    m = {}
    m['tenant'], m['backup'], m['source'] = v8(), v8(), v8()
    m['keyid'], m['alg'], m['wrapped'] = v16(), v8(), v16()
    m['salt'] = take(32); m['cs'] = struct.unpack('>I', take(4))[0]; m['commit'] = take(32)
    n = struct.unpack('>H', take(2))[0]
    if n > 1024: raise Integrity()
    m['streams'] = [struct.unpack('>IQQQ', take(28)) for _ in range(n)]
    m['mac'] = take(32)
    if o != len(b): raise Integrity()
    if not TENANT.match(m['tenant']) or not BACKUP.match(m['backup']): raise Integrity()
    if m['source'] not in (b'customer', b'platform'): raise Integrity()
    kid = m['keyid']
    if len(kid) > 2048 or any(c < 0x21 or c > 0x7e for c in kid) or not kid.startswith(b'https://'): raise Integrity()
    parts = kid[8:].split(b'/')
    if len(parts) != 4 or parts[1] != b'keys' or not all(parts): raise Integrity()
    # Version 1 wraps only with RSA-OAEP-256 (FORMAT.md 4.2 rule 2).
    if m['alg'] != b'RSA-OAEP-256': raise Integrity()
    if not 1 <= len(m['wrapped']) <= 1024: raise Integrity()
    cs = m['cs']
    if not 1 <= cs <= 64 << 20: raise Integrity()
    prev = -1
    for sid, c, p, x in m['streams']:
        if sid <= prev: raise Integrity()
        prev = sid
        if not 1 <= c <= 1 << 56: raise Integrity()
        if not (c - 1) * cs <= p <= c * cs: raise Integrity()
        if c > 1 and p == (c - 1) * cs: raise Integrity()
        if x != p + 16 * c or x >= 1 << 64: raise Integrity()
    m['body'] = b[:-32]
    return m

def open_manifest(m, k, tenant, backup):
    s = m['salt']
    km, c = hk(k, s, 'byok-backup v1 manifest key'), hk(k, s, 'byok-backup v1 key commitment')
    ok = hmac.compare_digest(c, m['commit'])
    ok = hmac.compare_digest(hmac.new(km, m['body'], hashlib.sha256).digest(), m['mac']) and ok
    ok = m['tenant'] == tenant and m['backup'] == backup and ok
    if not ok: raise Integrity()
    return AESGCM(hk(k, s, 'byok-backup v1 payload key'))

def read_stream(m, gcm, st, chunks):
    sid, c, p, x = st
    cs, out = m['cs'], b''
    for i in range(c):
        if (sid, i) not in chunks: raise Missing()
        ch = chunks[(sid, i)]
        final = i == c - 1
        want = (p - (c - 1) * cs if final else cs) + 16
        if len(ch) != want: raise Integrity()
        nonce = struct.pack('>I', sid) + struct.pack('>Q', i)[1:] + bytes([final])
        aad = bytes([1, len(m['tenant'])]) + m['tenant'] + bytes([len(m['backup'])]) + m['backup'] + struct.pack('>IQB', sid, i, final)
        try:
            out += gcm.decrypt(nonce, ch, aad)
        except InvalidTag:
            raise Integrity()
    return out

def load(path):
    hdr, body = open(path).read().split('\n\n', 1)
    h = dict(l.split(': ', 1) for l in hdr.splitlines())
    chunks, man = {}, None
    for l in body.splitlines():
        f = l.split(' ')
        if f[0] == 'manifest': man = base64.b64decode(f[1])
        else: chunks[(int(f[1]), int(f[2]))] = base64.b64decode(f[3])
    return h, man, chunks

# What a re-wrap may change (FORMAT.md 10): the key fields and the MAC.
KEY_FIELDS = ('source', 'keyid', 'alg', 'wrapped', 'mac', 'body')

def check_rewrap(path, h, man, chunks):
    oh, oman, ochunks = load(os.path.join(os.path.dirname(path), h['rewrap of']))
    if chunks != ochunks: return 'rewrap changed a chunk'
    if h['expect'] != 'ok': return None
    a, b = parse(man), parse(oman)
    if any(a[k] != b[k] for k in a if k not in KEY_FIELDS): return 'rewrap changed more than the key fields'
    return None

def run(path):
    h, man, chunks = load(path)
    if 'rewrap of' in h:
        bad = check_rewrap(path, h, man, chunks)
        if bad: return h['expect'], bad
    try:
        m = parse(man)
        gcm = open_manifest(m, bytes.fromhex(h['data key']), h['tenant'].encode(), h['backup id'].encode())
        got = {st[0]: read_stream(m, gcm, st, chunks) for st in m['streams']}
    except Integrity: return h['expect'], 'integrity'
    except Unsupported: return h['expect'], 'unsupported'
    except Missing: return h['expect'], 'missing'
    for k, v in h.items():
        if k.startswith('stream '):
            d = got.get(int(k[7:]))
            if d is None or f'{len(d)} {hashlib.sha256(d).hexdigest()}' != v: return h['expect'], 'wrong plaintext'
    if len(got) != sum(k.startswith('stream ') for k in h): return h['expect'], 'wrong streams'
    if (m['source'].decode(), m['keyid'].decode(), m['alg'].decode(), m['wrapped'].hex()) != (h['key source'], h['key id'], h['algorithm'], h['wrapped key']):
        return h['expect'], 'key fields differ from the header'
    return h['expect'], 'ok'

if __name__ == '__main__':
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'vectors')
    names = sorted(os.listdir(d))
    bad = 0
    for n in names:
        want, got = run(os.path.join(d, n))
        if want != got:
            bad += 1
            print(f'FAIL {n}: got {got}, want {want}')
    print(f'{len(names) - bad}/{len(names)} vectors pass')
    sys.exit(1 if bad or not names else 0)
