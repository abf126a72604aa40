/* drivers.h: the option tables of driver kinds (internal to src/config). */
#ifndef POSTERN_CONFIG_DRIVERS_H
#define POSTERN_CONFIG_DRIVERS_H

#include "config/config.h"

typedef struct driver_entry {
    driver_info info;
    bool available;      /* false: known to Exim, not offered by postern */
} driver_entry;

typedef struct driver_table {
    const optdef *generic;
    int ngeneric;
    int ndrivers;
    driver_entry drivers[12];
} driver_table;

extern const driver_table driver_tables[DC__COUNT];

#endif
