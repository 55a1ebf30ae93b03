/**
 * The entry point for reading a PROXY header: tells version 1 (text, v1.ts)
 * from version 2 (binary, v2.ts) by the first byte and hands over.
 */
import { INCOMPLETE, notAHeader, type ParseResult } from './header.js'
import { V1_MAGIC, parseProxyV1 } from './v1.js'
import { V2_SIGNATURE, parseProxyV2 } from './v2.js'

/**
 * Parse a PROXY header at the start of `buf`. Returns `incomplete` only while
 * more bytes could still make a valid header, so it can be called again after
 * every read; throws ProxyHeaderError as soon as the bytes seen cannot start
 * one, with the offset of the first offending byte.
 */
export function parseProxyHeader(buf: Buffer): ParseResult {
  if (buf.length === 0) return INCOMPLETE
  // §2.2 tells the versions apart by their first bytes: "PROXY" or the signature.
  if (buf[0] === V1_MAGIC[0]) return parseProxyV1(buf)
  if (buf[0] === V2_SIGNATURE[0]) return parseProxyV2(buf)
  throw notAHeader(0)
}
