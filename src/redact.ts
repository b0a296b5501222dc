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
  return masked.replace(/([?&]password=)[^&#]*/gi, '$1***')
}

/** Every URL in a text passed through redactUrl(). */
export const maskSecrets = (text: string): string => text.replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, redactUrl)
