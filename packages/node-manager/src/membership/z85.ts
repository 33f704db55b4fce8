/**
 * Z85 (ZeroMQ RFC 32), the text form of CURVE keys: 4 bytes become 5 printable characters.
 * zeromq.js gives keys in Z85 but does not export the codec; the ZAP handler sees raw 32-byte keys.
 */
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));

export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new Error(`Z85 encodes whole 4-byte words, got ${bytes.length} bytes`);
  let text = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let word = ((bytes[i]! << 24) >>> 0) + (bytes[i + 1]! << 16) + (bytes[i + 2]! << 8) + bytes[i + 3]!;
    const chunk: string[] = [];
    for (let j = 0; j < 5; j++) {
      chunk.unshift(ALPHABET[word % 85]!);
      word = Math.floor(word / 85);
    }
    text += chunk.join('');
  }
  return text;
}

/** The bytes of a Z85 text, or undefined when it is not Z85 (wrong length, foreign character, overflow). */
export function z85Decode(text: string): Buffer | undefined {
  if (text.length % 5 !== 0) return undefined;
  const bytes = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let word = 0;
    for (const c of text.slice(i, i + 5)) {
      const v = VALUE.get(c);
      if (v === undefined) return undefined;
      word = word * 85 + v;
    }
    if (word > 0xffffffff) return undefined;
    bytes.writeUInt32BE(word, (i / 5) * 4);
  }
  return bytes;
}
