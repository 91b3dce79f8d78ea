// The tasks every contender and every baseline runs. Each counts its runs, so
// a repetition can check that the work was done (the task ran N times, or
// never ran while the breaker was open). Baselines and contenders call the
// very same functions, so the counter costs both the same.

export const counts = { runs: 0, fallbacks: 0 }

/** The task of the success paths: `async () => 1`, counted. */
export const task = async () => {
  counts.runs++
  return 1
}

/** A failing task as real failures are: a fresh Error (with its stack) per call. */
export const failing = async () => {
  counts.runs++
  throw new Error('boom')
}

/** The labelled variant: one Error allocated once, thrown on every call. */
export const PREALLOCATED_ERROR = new Error('boom')
export const failingPreallocated = async () => {
  counts.runs++
  throw PREALLOCATED_ERROR
}

export const FALLBACK_VALUE = 'from the fallback'
/** The open fallback every contender is given; counts its calls. */
export const openFallback = () => {
  counts.fallbacks++
  return FALLBACK_VALUE
}

export const TASKS = { task, failing, failingPreallocated }
