/* Minimal .npy writer (float32, 2-D) so reference scripts read our logits
 * with numpy.load and nothing else. */
#ifndef RYS_NPY_H
#define RYS_NPY_H
#include <stddef.h>
int npy_write_f32(const char *path, const float *data, size_t rows, size_t cols);
#endif
