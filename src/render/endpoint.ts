/**
 * How a host's address and port are shown: `[2001:db8::1]:22` for IPv6 (RFC 3986's bracketed
 * form, so the port is not read as part of the address), `host:22` otherwise.
 */
export const formatEndpoint = (address: string, port: number): string =>
  address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
