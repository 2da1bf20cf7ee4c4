// A small pool for batches of independent jobs in which the caller never
// waits for a worker that has not started: the caller works through the
// batch itself, and the workers that wake in time take jobs from the same
// counter. On a shared machine a worker can wait a whole scheduler time
// slice to wake; with OpenMP's fork-join the call waits for it, here the
// call only waits for jobs a worker has actually claimed (spinning briefly
// for them before it sleeps). Between batches workers spin ~50 us (held:
// up to 20 ms, see hold_workers), then block on a condition variable.
#pragma once
#include <functional>

#include "convcore/common.h"

namespace convcore {

// Runs f(job) for every job in [0, n) on up to get_num_threads() threads,
// each with FTZ/DAZ set. Thread t starts on the t-th contiguous range of
// jobs (callers number jobs in spatial order, so consecutive layers keep
// their rows on one core) and then helps with the others'; which thread
// runs a job is not fixed, so a job's result must not depend on it.
// Reentrant calls (another Python thread) run serially on their caller.
void run_jobs(index_t n, const std::function<void(index_t)>& f);

// While at least one hold is open, idle workers keep spinning (up to 20 ms
// between batches) instead of sleeping after ~50 us. The ONNX runner holds
// the pool for the length of one model run, so the workers are awake for
// each layer and asleep once run() returns. Calls nest (a counter).
void hold_workers(bool on);

}  // namespace convcore
