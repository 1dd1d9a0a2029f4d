/* cffi declarations of csrc/epoch.h (what Python uses: its retired objects wait for the same
 * grace periods as C memory). */
uint64_t ebpfjit_epoch_retire(void);
int ebpfjit_epoch_passed(uint64_t ticket);
void ebpfjit_reclaim(void);
uint64_t ebpfjit_deferred_pending(void);
int ebpfjit_epoch_in_run(void);
