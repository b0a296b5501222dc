import stripAnsi from 'strip-ansi'

/**
 * C0 and C1 controls except \n and \t (a lone ESC, BEL, \r that rewrites a
 * line, backspace…), and the bidirectional overrides that reorder what a
 * reader sees ("Trojan Source").
 */
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g

/**
 * Everything a host sends back (command output, error text, banners) is
 * untrusted: escape sequences could clear the operator's screen, set the
 * terminal title or hide a line. strip-ansi removes whole sequences (CSI, and
 * OSC with its payload); what is left of any other control is dropped.
 * Newlines and tabs stay so output keeps its shape.
 */
export const sanitize = (text: string): string => stripAnsi(text).replace(CONTROLS, '')

/** sanitize() for a single line: newlines and tabs become spaces too. */
export const sanitizeLine = (text: string): string => sanitize(text).replace(/[\n\t]+/g, ' ')

/** sanitize() applied to every string inside a JSON-like value (keys included): for `--json` and notification bodies. */
export function sanitizeDeep(value: unknown): unknown {
  if (typeof value === 'string') return sanitize(value)
  if (Array.isArray(value)) return value.map(sanitizeDeep)
  if (typeof value === 'object' && value !== null && !(value instanceof Date))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [sanitize(k), sanitizeDeep(v)]))
  return value
}

/** What a person types as a reason (`--reason`): one clean line, bounded, so the audit trail and every view can show it. */
export const cleanReason = (text: string | undefined): string | undefined => (text === undefined ? undefined : sanitizeLine(text).trim().slice(0, 500))
