export { publish, renderMetrics, type PublishOptions, type PublishResult, type PublishOutcome } from './publish.js'
export { writeFileAtomic } from './textfile.js'
export { GATE_VERDICTS, METRIC_HOST_STATUSES, METRIC_ROLLOUT_STATES, type GateVerdict, type MetricsSnapshot } from './snapshot.js'
export { DECISION_TYPES, snapshotFromEvents, type SnapshotInput } from './from-events.js'
