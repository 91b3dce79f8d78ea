// The scenarios of the benchmark, by the names `--only` takes.
//
// A timing scenario runs in one child process per contender. `baselines`
// are measured in that same process, interleaved with the contender; the
// first one is the baseline the table's ratio uses, the others are reported
// as extra ratios.

export const TIMING_SCENARIOS = {
  'closed-seq': {
    label: 'CLOSED success, sequential',
    kind: 'closed',
    taskName: 'task',
    shape: 'seq',
    baselines: ['success'],
  },
  'closed-64': {
    label: 'CLOSED success, 64 in flight',
    kind: 'closed',
    taskName: 'task',
    shape: 'par',
    baselines: ['success'],
  },
  failure: {
    label: 'failure under threshold (new Error per call)',
    kind: 'failure',
    taskName: 'failing',
    shape: 'seq',
    baselines: ['reject'],
  },
  'failure-prealloc': {
    label: 'failure under threshold (one preallocated Error)',
    kind: 'failure',
    taskName: 'failingPreallocated',
    shape: 'seq',
    baselines: ['rejectPreallocated'],
  },
  open: {
    label: 'OPEN fast-fail, caller catches',
    kind: 'open',
    taskName: 'task',
    shape: 'seq',
    baselines: ['reject', 'rejectPreallocated'],
  },
  'open-fallback': {
    label: 'OPEN with openFallback',
    kind: 'openFallback',
    taskName: 'task',
    shape: 'seq',
    baselines: ['success'],
  },
}

export const OTHER_SCENARIOS = {
  threads: { label: 'worker threads, CLOSED success: 1 and 2 workers' },
  memory: { label: 'bytes per breaker instance, bytes allocated per call' },
}

export const SCENARIO_NAMES = [...Object.keys(TIMING_SCENARIOS), ...Object.keys(OTHER_SCENARIOS)]
