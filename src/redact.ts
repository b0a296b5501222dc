/** Secrets kept out of what fleet prints: URL passwords masked in values and error messages. */

/**
 * A URL safe to print: the password (`user:***@`) and any `password=` parameter masked.
 * Errs on the side of masking: everything between the first ":" of the user info and the last "@".
 */
export function redactUrl(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? ''
  const at = url.lastIndexOf('@')
  const colon = url.indexOf(':', scheme.length)
  const masked = at > scheme.length && colon >= 0 && colon < at ? `${url.slice(0, colon)}:***${url.slice(at)}` : url
  return masked.replace(SECRET_PARAMS, '$1***').replace(WEBHOOK_PATH, '$1***')
}

/** Query parameters that carry credentials in URLs (`?password=`, `?token=`, `&api_key=`, a signature). */
const SECRET_PARAMS = /([?&;](?:password|passwd|pwd|token|access_token|auth|key|api[-_]?key|secret|sig|signature)=)[^&#\s]*/gi
/** Webhook URLs whose path is the secret: Slack, Mattermost/Discord-style `/hooks/…` and `/webhooks/…`. */
const WEBHOOK_PATH = /(\/(?:services|hooks|webhooks|api\/webhooks)\/)[^\s?#]+/gi

/**
 * libpq key/value settings (`host=db password=s3cret`, `password='two words'`) and the like in
 * free text: the value is masked, quoted or not.
 */
const KEY_VALUE = /\b(password|passwd|pwd|secret|token|api[-_]?key)(\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s,;&]+)/gi

/**
 * A URL's user info, password up to the last "@" before anything that ends it: a password may
 * contain spaces and "@", but not a quote or another "scheme://" (the next URL in the text).
 */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/[^\s/@:"']*:)(?:(?!:\/\/)[^\n"'])*@/gi
/** `user:password@host` without a scheme (a value pasted where a URL was expected). */
const BARE_USERINFO = /(^|[\s"'(=])([\w.%+-]+):(?!\/\/)[^\s@"'/]+@(?=[\w.[])/g
const ANY_URL = /[a-z][a-z0-9+.-]*:\/\/[^\s"']+/gi

/** Every secret in a text masked: URL passwords (any characters), key/value passwords, webhook tokens. */
export const maskSecrets = (text: string): string =>
  text
    .replace(URL_USERINFO, '$1***@')
    .replace(BARE_USERINFO, '$1$2:***@')
    .replace(ANY_URL, redactUrl)
    .replace(KEY_VALUE, '$1$2***')
