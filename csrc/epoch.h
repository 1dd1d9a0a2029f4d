/* epoch.h: grace periods (the kernel's RCU, in miniature) for memory a running program may still
 * reach after it was unpublished: an inner map replaced in a map-in-map, a program replaced in a
 * PROG_ARRAY, a map whose regions were just unregistered.
 *
 * Every run holds its thread's epoch record from ebpfjit_loop_begin to ebpfjit_loop_end (nested
 * runs on a thread share the outermost one's). A writer first unpublishes (a slot store, a
 * region's len = 0), then takes a ticket with ebpfjit_epoch_retire; once
 * ebpfjit_epoch_passed(ticket), every run that could have seen the old pointer or region has
 * ended and the memory can go. Nothing here waits (a writer may itself be inside a run, through
 * a Python helper): deferred work runs once it is due, from ebpfjit_reclaim, which every
 * deferral and the end of a thread's outermost run (while work is pending) call.
 *
 * Its cffi section is what the generated cffi declarations take from it (csrc/cdefgen.py).
 */
#ifndef EBPFJIT_EPOCH_H
#define EBPFJIT_EPOCH_H

#include <stdint.h>
/* cffi:begin */

/* A run starts / ends on this thread (nestable; only the outermost counts). */
void ebpfjit_epoch_enter(void);
void ebpfjit_epoch_exit(void);

/* Call after unpublishing: the ticket of this removal (never 0). */
uint64_t ebpfjit_epoch_retire(void);
/* Has every run that started before the removal with this ticket ended? */
int ebpfjit_epoch_passed(uint64_t ticket);

/* Runs fn(arg) once a grace period after this call has passed (at once if no run is active).
 * Out of memory: fn never runs (a leak is safe, freeing under a run is not). */
void ebpfjit_defer(void (*fn)(void *), void *arg);
/* Runs the deferred work that is due. */
void ebpfjit_reclaim(void);
/* Deferred work not yet run (tests, diagnostics). */
uint64_t ebpfjit_deferred_pending(void);
/* Is a run active on this thread (a Python helper's caller)? Then it must not wait. */
int ebpfjit_epoch_in_run(void);

/* cffi:end */
#endif
