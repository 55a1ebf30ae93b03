/**
 * CRC32C (Castagnoli), the checksum of the PP2_TYPE_CRC32C TLV
 * (proxy-protocol.txt §2.2.3, which points to RFC 4960 Appendix B).
 */

/** The Castagnoli polynomial, bit-reflected, one table entry per byte value. */
const TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    table[n] = c
  }
  return table
})()

/**
 * CRC32C of the concatenation of `parts`, as an unsigned 32-bit number.
 * Several parts let a caller checksum a header with its checksum field
 * replaced by zeros without copying it.
 */
export function crc32c(...parts: readonly Buffer[]): number {
  let c = 0xffffffff
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) c = TABLE[(c ^ part[i]!) & 0xff]! ^ (c >>> 8)
  }
  return (c ^ 0xffffffff) >>> 0
}
