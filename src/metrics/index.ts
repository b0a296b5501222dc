export { publish, renderMetrics, type PublishOptions, type PublishResult, type PublishOutcome } from './publish.js'
export { buildRegistry } from './registry.js'
export { writeFileAtomic } from './textfile.js'
export { GATE_VERDICTS, METRIC_HOST_STATUSES, METRIC_ROLLOUT_STATES, type GateVerdict, type MetricsSnapshot } from './snapshot.js'
