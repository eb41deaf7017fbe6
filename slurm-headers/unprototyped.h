/*
 * Symbols that libslurm exports (nm -D libslurm.so) on the releases we
 * support, 22.05 .. 26.05, but that no installed public header declares
 * (checked against the libslurm of bookworm, trixie and forky).
 * These prototypes are ours, written from the exported symbol and the types
 * the public headers already define; nothing here is copied from Slurm.
 */
#ifndef HA_EXPORTER_UNPROTOTYPED_H
#define HA_EXPORTER_UNPROTOTYPED_H

/* Frees what slurm_get_statistics() returned. */
extern void slurm_free_stats_response_msg(stats_info_response_msg_t *msg);

/* Static strings; the caller must not free them. The reason string was
 * renamed in 24.05 (same argument, same result). */
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(24, 5, 0)
extern const char *slurm_job_state_reason_string(int reason);
#else
extern const char *slurm_job_reason_string(int reason);
#endif
extern const char *slurm_job_state_string(uint32_t state);

/* A node state word as sinfo's %T and scontrol print it ("MIXED$",
 * "DRAINED*", "REBOOT^"), upper case; a static string, never freed. */
extern char *slurm_node_state_string(uint32_t state);

/* Number of set bits: the pending tasks of an array meta-record
 * (array_bitmap), exact where array_task_str is cut to 64 bytes. */
extern int64_t slurm_bit_set_count(bitstr_t *b);

#endif
