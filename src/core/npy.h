/* NumPy .npy files (version 1/2, little-endian, C order): how tensors move
 * between mtmi and the shell or Python. */
#ifndef MT_NPY_H
#define MT_NPY_H

#include "core/core.h"

/* Reads an .npy file; t->data is malloc'ed. */
mtmi_status mt_npy_read(const char *path, mtmi_tensor *t);
mtmi_status mt_npy_read_buffer(const uint8_t *buf, size_t len, const char *what, mtmi_tensor *t);
/* Writes t atomically. */
mtmi_status mt_npy_write(const char *path, const mtmi_tensor *t);

#endif
