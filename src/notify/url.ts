/**
 * Webhook and Pushgateway URLs: validated once (config) and never printed whole. A webhook URL is
 * itself a credential (Slack's `/services/T…/B…/secret`), and a URL may carry `user:pass@`, so what
 * is shown is the scheme, host and port only (many services put the token in the path), and results
 * carry the target's index in `notify` to tell two targets on one host apart.
 */

/** Why `value` is not an http(s) URL we can POST to, or null when it is. */
export function checkHttpUrl(value: string): string | null {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return 'must be an http:// or https:// URL'
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must be an http:// or https:// URL (not ${url.protocol.slice(0, -1)}://)`
  if (url.hostname === '') return 'must name a host'
  if (/\s/.test(value)) return 'must not contain spaces'
  return null
}

/** `https://hooks.slack.com/…`: no user info, no path, no query. */
export function displayUrl(value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return '(invalid URL)'
  }
  const more = url.pathname !== '/' || url.search !== '' || url.hash !== '' ? '/…' : ''
  return `${url.protocol}//${url.host}${more}`
}
