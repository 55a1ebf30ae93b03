/**
 * Address ranges (`10.0.0.0/8`, `2001:db8::/32`, or a single address) for
 * `accept-proxy`: the peers whose connections must start with a PROXY
 * header. Parsing is pure; matching uses Node's net.BlockList.
 */
import { BlockList, isIP } from 'node:net'
import { canonicalIp } from './address.js'
import { TcpproxyError } from '../errors.js'

/** Parse a list separated by commas and/or blanks into canonical `address/prefix` items. */
export function parseCidrList(text: string): string[] {
  const items = text.split(/[\s,]+/).filter(w => w !== '')
  if (items.length === 0) throw new TcpproxyError('ERR_CONFIG', 'empty address list')
  return items.map(item => {
    const [addr = '', bits, extra] = item.split('/')
    const family = isIP(addr)
    if (family === 0 || extra !== undefined) throw new TcpproxyError('ERR_CONFIG', `not an address or network: ${JSON.stringify(item)}`)
    const max = family === 4 ? 32 : 128
    if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max)) {
      throw new TcpproxyError('ERR_CONFIG', `bad prefix length in ${JSON.stringify(item)} (0-${max})`)
    }
    const canon = canonicalIp(addr)
    // An IPv4-mapped network (::ffff:10.0.0.0/104) is the IPv4 network it maps
    // (10.0.0.0/8), as client addresses are compared in their IPv4 form.
    if (family === 6 && isIP(canon) === 4) {
      const v4bits = Number(bits ?? 128) - 96
      if (v4bits < 0) throw new TcpproxyError('ERR_CONFIG', `bad prefix length in ${JSON.stringify(item)} (96-128 for IPv4-mapped)`)
      return `${canon}/${v4bits}`
    }
    return `${canon}/${bits ?? max}`
  })
}

/** A predicate over canonical client addresses (IPv4-mapped already plain IPv4). */
export function cidrMatcher(list: readonly string[]): (ip: string) => boolean {
  const blocks = new BlockList()
  for (const item of list) {
    const [addr, bits] = item.split('/') as [string, string]
    blocks.addSubnet(addr, Number(bits), isIP(addr) === 4 ? 'ipv4' : 'ipv6')
  }
  return ip => blocks.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6')
}
