// Private keys in the formats people have: OpenSSH's own, and PEM (PKCS#1
// RSA, which ssh2 reads itself, and PKCS#8, which it does not: we convert).
import { createHash, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import ssh2 from 'ssh2';

// ssh2 is CommonJS: Node's ESM loader only gives its default export.
const { utils } = ssh2;

export class KeyError extends Error {}

/** A key ssh2 accepts, or a KeyError saying why not. */
export function normalizePrivateKey(key: string | Buffer): Buffer {
  const buf = Buffer.isBuffer(key) ? key : Buffer.from(key);
  const text = buf.toString('utf8');
  if (/-----BEGIN (ENCRYPTED PRIVATE KEY|[A-Z ]*PRIVATE KEY)-----/.test(text) && /ENCRYPTED|Proc-Type: 4,ENCRYPTED/.test(text)) {
    throw new KeyError('the private key is protected by a passphrase, which is not supported: use a key without one');
  }
  if (text.includes('-----BEGIN PRIVATE KEY-----')) return fromPkcs8(text);
  const parsed = utils.parseKey(buf);
  if (parsed instanceof Error) {
    if (/encrypted/i.test(parsed.message))
      throw new KeyError('the private key is protected by a passphrase, which is not supported: use a key without one');
    throw new KeyError(`not a private key ssh2 can read (${parsed.message})`);
  }
  const k = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!k.isPrivateKey()) throw new KeyError('this is a public key; give the private key file');
  return buf;
}

function fromPkcs8(pem: string): Buffer {
  let obj: KeyObject;
  try {
    obj = createPrivateKey(pem);
  } catch (err) {
    throw new KeyError(`not a readable PKCS#8 private key (${(err as Error).message})`);
  }
  if (obj.asymmetricKeyType === 'rsa') return Buffer.from(obj.export({ type: 'pkcs1', format: 'pem' }) as string);
  if (obj.asymmetricKeyType === 'ed25519') return ed25519ToOpenSsh(obj);
  throw new KeyError(`key type ${obj.asymmetricKeyType} in PKCS#8 form is not supported; use an ed25519 or RSA key, or OpenSSH's format`);
}

/** The openssh-key-v1 container (PROTOCOL.key), unencrypted, for an ed25519 key. */
function ed25519ToOpenSsh(obj: KeyObject): Buffer {
  const jwk = obj.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d!, 'base64url');
  const pub = Buffer.from(createPublicKey(obj).export({ format: 'jwk' }).x!, 'base64url');
  const str = (b: Buffer | string) => {
    const data = Buffer.isBuffer(b) ? b : Buffer.from(b);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    return Buffer.concat([len, data]);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const pubBlob = Buffer.concat([str('ssh-ed25519'), str(pub)]);
  const check = randomBytes(4).readUInt32BE();
  let priv = Buffer.concat([u32(check), u32(check), str('ssh-ed25519'), str(pub), str(Buffer.concat([seed, pub])), str('')]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), str('none'), str('none'), str(''), u32(1), str(pubBlob), str(priv)]);
  const b64 = body.toString('base64').replace(/.{70}/g, '$&\n');
  return Buffer.from(`-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`);
}

/** OpenSSH's `SHA256:...` fingerprint of a raw host key blob. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a raw SSH key blob (`ssh-ed25519`, ...). */
export function keyType(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const n = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + n).toString('latin1');
}
