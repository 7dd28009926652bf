/* cli_scan: what the searches that write into a scan's store (`rys beam`)
 * need from the command line beyond `rys scan`'s own: the probe files and
 * generation settings the scan recorded, so a search scores exactly as the
 * scan did without the user spelling them again. */
#ifndef RYS_CLI_SCAN_H
#define RYS_CLI_SCAN_H

#include "cli/cli.h"
#include "scan/evalset.h"

/* The probe files (as a --probes list, malloc'd) and generation settings that
 * the scan in db_path recorded, into *probes and *eo (eo->math_system
 * malloc'd); dies with a one-line error when the file holds no scan. */
void cli_scan_recorded(const char *db_path, char **probes, evalset_options *eo);

#endif
