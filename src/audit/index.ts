export { auditEntries, MANUAL_TYPES, type AuditEntry, type StoredEvent } from './entries.js'
export { auditJson, auditText, type AuditTextOptions } from './render.js'
export { auditMarkdown, md, type AuditRollout } from './markdown.js'
export { cooldownMessage, cooldownStatus, type Cooldown, type FinishedRollout } from './cooldown.js'
