/* Input to bindgen: Slurm's public headers as installed by libslurm-dev,
 * plus our own declarations for symbols libslurm exports without a
 * public prototype. */
#include <stdint.h>
#include <time.h>
#include <slurm/slurm_version.h>
#include <slurm/slurm_errno.h>
#include <slurm/slurm.h>
#include <slurm/slurmdb.h>
#include "slurm-headers/unprototyped.h"
